"""The web page in a real headless browser: Debian's chromium driven by Playwright, over
sample_docs indexed with the bundled model.

Without a Chromium this module is skipped, except where SEMSEARCH_REQUIRE_BROWSER=1 (CI
sets it), where that is a failure.
"""

from __future__ import annotations

import os
import shutil
import time
from urllib.parse import unquote

import pytest

from semsearch import Index
from tests.apps.http.conftest import serving
from tests.conftest import SAMPLE_DOCS

CHROMIUM = os.environ.get("SEMSEARCH_CHROMIUM", "/usr/bin/chromium")
TOKEN = "page-token-0123456789abcdef"


def _browser_or_skip():
    missing = None
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        missing = "playwright is not installed"
    if missing is None and not os.path.exists(CHROMIUM):
        missing = f"no Chromium at {CHROMIUM} (apt-get install chromium)"
    if missing:
        if os.environ.get("SEMSEARCH_REQUIRE_BROWSER") == "1":
            pytest.fail(f"The browser tests must run here: {missing}.")
        pytest.skip(missing)
    return sync_playwright


@pytest.fixture(scope="module")
def browser():
    sync_playwright = _browser_or_skip()
    with sync_playwright() as playwright:
        # --no-sandbox: CI runs as root, where Chromium's sandbox cannot start.
        launched = playwright.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox"])
        yield launched
        launched.close()


@pytest.fixture(scope="module")
def sample_index(tmp_path_factory):
    work = tmp_path_factory.mktemp("page")
    shutil.copytree(SAMPLE_DOCS, work / "sample_docs")
    with Index.open(work / "index", model="local") as index:
        index.add([work / "sample_docs"])
        yield index


@pytest.fixture
def page(browser, sample_index):
    with serving(sample_index, editor_url="vscode://file/{path}:{line}") as served:
        context = browser.new_context(viewport={"width": 1280, "height": 900})
        opened = context.new_page()
        errors: list[str] = []
        opened.on("pageerror", lambda error: errors.append(str(error)))
        opened.on("console", lambda message: errors.append(message.text) if message.type == "error" else None)
        opened.goto(served.url + "/")
        yield opened
        context.close()
        assert errors == []


def _until(page, expression: str, arg=None, timeout: float = 30.0) -> None:
    """Wait until `expression` (a JavaScript function) is true in the page. Polled from here:
    Playwright's own waiting evaluates strings inside the page, which its policy forbids."""
    deadline = time.monotonic() + timeout
    while not page.evaluate(expression, arg):
        assert time.monotonic() < deadline, f"timed out waiting for {expression}"
        time.sleep(0.05)


def _files(page) -> list[str]:
    return page.locator("#results li .file").all_inner_texts()


def _search(page, text: str) -> None:
    before = page.locator("#message").inner_text()
    page.locator("#q").fill(text)
    _until(page, "before => { const m = document.querySelector('#message').textContent; return m !== before && !m.startsWith('Searching'); }", before)


def test_a_question_finds_its_file_first_and_the_status_shows(page):
    page.locator("#q").press_sequentially("how do I reset my password", delay=20)
    page.wait_for_selector("#results li")
    _until(page, "() => document.querySelector('#message').textContent.includes('passage')")
    first = page.locator("#results li").first
    assert first.locator(".file").inner_text() == "sample_docs/manual/02-accounts-and-sign-in.rst"
    assert "Regaining access to your account" in first.locator(".where").inner_text()
    assert float(first.locator(".score").inner_text()) > 0.5
    assert first.locator(".snippet").inner_text().startswith("Forgotten the passphrase")
    status = page.locator("#status").inner_text()
    assert "local" in status and "30" in status and "152" in status and "sample_docs" in status
    assert "Last indexed" in status and "never" not in status


def test_the_query_words_are_marked(page):
    _search(page, "passphrase recovery link")
    marked = page.locator("#results li").first.locator("mark").all_inner_texts()
    assert marked and {word.lower() for word in marked} <= {"passphrase", "recovery", "link"}


def test_filters_and_mode_narrow_the_results(page):
    _search(page, "how do I reset my password")
    assert any(not name.endswith(".md") for name in _files(page))
    page.locator("#ext").fill("md")
    _until(page, "() => [...document.querySelectorAll('#results li .file')].every(f => f.textContent.endsWith('.md'))")
    assert _files(page) and all(name.endswith(".md") for name in _files(page))
    page.locator("#ext").fill("")
    page.locator("#path").fill("de/")
    _until(page, "() => [...document.querySelectorAll('#results li .file')].every(f => f.textContent.startsWith('sample_docs/de/'))")
    assert _files(page)
    page.locator("#path").fill("")
    page.locator("#mode").select_option("keyword")
    _search(page, "Sectigo")
    assert _files(page)[0] == "sample_docs/howto/renew-tls-certificates.txt"


def test_a_click_opens_the_passage_in_context_with_an_editor_link(page):
    _search(page, "how do I reset my password")
    page.locator("#results li").first.click()
    page.wait_for_selector("#passage:not([hidden])")
    assert page.locator("#passage-title").inner_text() == "sample_docs/manual/02-accounts-and-sign-in.rst"
    marked = page.locator("#passage-lines .line.hit").all_inner_texts()
    assert any("Forgotten the passphrase" in line for line in marked)
    assert page.locator("#passage-lines .line:not(.hit)").count() > 0
    numbers = [int(text) for text in page.locator("#passage-lines .line.hit .number").all_inner_texts()]
    assert numbers == list(range(numbers[0], numbers[-1] + 1))
    where = page.locator("#passage-where").inner_text()
    assert where.startswith(f"lines {numbers[0]}–")
    link = unquote(page.locator("#passage-open").get_attribute("href") or "")
    assert link.startswith("vscode://file/") and link.endswith(f"/sample_docs/manual/02-accounts-and-sign-in.rst:{numbers[0]}")


def test_keyboard_only(page):
    page.locator("#q").focus()
    page.keyboard.type("what caused the big outage in March?")
    _until(page, "() => document.querySelectorAll('#results li').length > 1 && !document.querySelector('#message').textContent.startsWith('Searching')")
    assert _files(page)[0] == "sample_docs/meetings/2024-03-20-retrospective.md"
    assert page.locator("#results li").first.get_attribute("aria-selected") == "true"
    page.keyboard.press("ArrowDown")
    second = page.locator("#results li").nth(1)
    assert second.get_attribute("aria-selected") == "true"
    page.keyboard.press("Enter")
    page.wait_for_selector("#passage:not([hidden])")
    assert page.locator("#passage-title").inner_text() == second.locator(".file").inner_text()
    page.keyboard.press("ArrowUp")
    page.keyboard.press("Enter")
    first_where = page.locator("#results li").first.locator(".where").inner_text()
    # The first hit's lines, which the second's (another chunk) do not share.
    _until(page, "lines => document.querySelector('#passage-where').textContent.startsWith(lines)", first_where.split(" · ")[0])
    assert page.locator("#passage-title").inner_text().endswith("2024-03-20-retrospective.md")
    page.keyboard.press("Escape")
    assert page.locator("#passage").is_hidden()
    assert page.evaluate("document.activeElement.id") == "q"
    page.keyboard.press("Escape")
    assert page.locator("#q").input_value() == ""
    assert page.locator("#results li").count() == 0


def test_the_page_follows_the_systems_dark_setting(browser, sample_index):
    with serving(sample_index) as served:
        colours = {}
        for scheme in ("light", "dark"):
            context = browser.new_context(color_scheme=scheme)
            opened = context.new_page()
            opened.goto(served.url + "/")
            colours[scheme] = opened.evaluate("getComputedStyle(document.body).backgroundColor")
            context.close()
    assert colours["light"] == "rgb(255, 255, 255)" and colours["dark"] != colours["light"]


def test_the_page_asks_for_the_token_of_a_guarded_server(browser, sample_index):
    with serving(sample_index, token=TOKEN) as served:
        context = browser.new_context()
        opened = context.new_page()
        opened.goto(served.url + "/")
        opened.wait_for_selector("#token:not([hidden])")
        opened.locator("#token-input").fill(TOKEN)
        opened.locator("#token-input").press("Enter")
        _until(opened, "() => document.querySelector('#status').textContent.includes('local')")
        opened.locator("#q").fill("how do I reset my password")
        opened.wait_for_selector("#results li")
        assert opened.locator("#results li .file").first.inner_text() == "sample_docs/manual/02-accounts-and-sign-in.rst"
        context.close()


def test_the_page_says_when_chunks_wait_for_their_vectors(browser, tmp_path, docs):
    import semsearch
    from tests.conftest import FakeEmbedder

    class Failing(FakeEmbedder):
        def embed_documents(self, texts):
            time.sleep(0.3)  # while every file is read
            raise semsearch.EmbeddingError("The service is down.")

    with Index.open(tmp_path / "index", embedder=Failing()) as index, pytest.raises(semsearch.EmbeddingError):
        index.add([docs])
    with Index.open(tmp_path / "index", embedder=FakeEmbedder()) as index, serving(index) as served:
        waiting = index.status().waiting_chunks
        assert waiting > 0
        context = browser.new_context(viewport={"width": 1280, "height": 900})
        try:
            opened = context.new_page()
            opened.goto(served.url + "/")
            _until(opened, "() => document.querySelector('#status').textContent.includes('Waiting for vectors')")
            assert f"{waiting} chunks" in opened.locator("#status").inner_text()
            _search(opened, "cats purr")
            message = opened.locator("#message").inner_text()
            assert "passage" in message and f"{waiting} chunks are still waiting for their vectors" in message
            assert _files(opened)[0].endswith("cats.md")
        finally:
            context.close()

"""`Index.watch` with real file events on a temporary folder: each case asserts on what the
index holds afterwards and on what the embedder was asked for."""

from __future__ import annotations

import os
import shutil
import threading
import time
from pathlib import Path

import pytest

from semsearch import Index
from tests.conftest import FakeEmbedder

WAIT = 20.0


def until(condition, timeout: float = WAIT, what: str = "the index to catch up"):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = condition()
        if value:
            return value
        time.sleep(0.05)
    raise AssertionError(f"timed out waiting for {what}")


class Watching:
    """An index watched by a thread: its updates and notices, and the paths it holds."""

    def __init__(self, index: Index, roots=None, poll: bool = False) -> None:
        self.index = index
        self.updates: list = []
        self.notices: list = []
        self.stop = threading.Event()
        self.thread = threading.Thread(
            target=index.watch, args=(roots,),
            kwargs=dict(poll=poll, on_update=self.updates.append, on_notice=self.notices.append, stop=self.stop),
            daemon=True,
        )
        self.thread.start()
        until(lambda: any(notice.kind == "watching" for notice in self.notices), what="the watcher to listen")

    def files(self) -> list[str]:
        return list(self.index._backend.document_states(self.index.folders()))

    def paths(self) -> set[str]:
        return {Path(path).name for path in self.files()}

    def close(self) -> None:
        self.stop.set()
        self.thread.join(10)
        assert not self.thread.is_alive()


@pytest.fixture
def folder(tmp_path) -> Path:
    root = tmp_path / "notes"
    root.mkdir()
    (root / "cats.md").write_text("# Cats\n\nCats purr and sleep in the sun.\n")
    (root / "trains.md").write_text("# Trains\n\nNight trains run from Zurich to Vienna.\n")
    return root


@pytest.fixture
def watched(tmp_path, folder):
    fake = FakeEmbedder()
    index = Index.open(tmp_path / "index", embedder=fake)
    index.add([folder])
    fake.calls.clear()
    watching = Watching(index)
    yield watching, fake, folder
    watching.close()
    index.close()


def test_a_new_file_becomes_searchable(watched):
    watching, fake, folder = watched
    (folder / "kiwi.md").write_text("Kiwis are flightless birds of New Zealand.\n")
    until(lambda: "kiwi.md" in watching.paths())
    assert watching.index.search("flightless kiwis", limit=1)[0].path.endswith("kiwi.md")
    assert all("Kiwis" in text for text in fake.embedded)


def test_an_edit_embeds_only_the_changed_text(watched):
    watching, fake, folder = watched
    (folder / "cats.md").write_text("# Cats\n\nCats purr and sleep in the sun.\n\n## Food\n\nCats eat sardines.\n")
    until(lambda: watching.index.search("sardines", mode="keyword"))
    assert not any("Night trains" in text for text in fake.embedded)


def test_an_atomic_save_is_one_update_and_the_temporary_file_never_indexed(watched):
    watching, fake, folder = watched
    temporary = folder / "cats.md.tmp"
    temporary.write_text("# Cats\n\nCats chase laser pointers.\n")
    os.replace(temporary, folder / "cats.md")
    until(lambda: watching.index.search("laser pointers", mode="keyword"))
    assert watching.paths() == {"cats.md", "trains.md"}


def test_editor_swap_backup_and_lock_files_are_never_indexed(watched):
    watching, fake, folder = watched
    for name in [".cats.md.swp", "cats.md~", ".#cats.md", "4913", "draft.tmp", "#cats.md#", "notes.txt.part"]:
        (folder / name).write_text("Swap files hold zebra text.\n")
    (folder / "marker.md").write_text("The marker is here.\n")
    until(lambda: "marker.md" in watching.paths())
    assert watching.paths() == {"cats.md", "trains.md", "marker.md"}
    assert not any("zebra" in text for text in fake.embedded)


def test_a_renamed_file_keeps_its_vectors_and_leaves_its_old_path(watched):
    watching, fake, folder = watched
    (folder / "trains.md").rename(folder / "railways.md")
    until(lambda: watching.paths() == {"cats.md", "railways.md"})
    assert fake.embedded == []
    hit = watching.index.search("night trains vienna", limit=1)[0]
    assert hit.path.endswith("railways.md")


def test_a_moved_folder_embeds_nothing(watched):
    watching, fake, folder = watched
    (folder / "travel").mkdir()
    (folder / "travel" / "ferries.md").write_text("Ferries cross the fjord at dawn.\n")
    until(lambda: "ferries.md" in watching.paths())
    fake.calls.clear()
    (folder / "travel").rename(folder / "journeys")
    until(lambda: any("journeys" in path for path in watching.files()))
    assert not any("travel" in path for path in watching.files())
    assert fake.embedded == []


def test_a_deleted_folder_leaves_and_a_folder_created_with_files_enters(watched):
    watching, fake, folder = watched
    made = folder / "new"
    made.mkdir()
    for i in range(5):
        (made / f"note{i}.md").write_text(f"Note number {i} mentions quokka{i}.\n")
    until(lambda: sum("note" in path for path in watching.paths()) == 5)
    shutil.rmtree(made)
    until(lambda: watching.paths() == {"cats.md", "trains.md"})


def test_a_storm_is_coalesced_into_few_updates(watched):
    watching, fake, folder = watched
    before = len(watching.updates)
    storm = folder / "storm"
    storm.mkdir()
    for i in range(1000):
        (storm / f"page{i}.txt").write_text(f"Page {i} of the storm, word storm{i}.\n")
    until(lambda: len(watching.files()) == 1002, timeout=60)
    # A thousand files written in a burst: one update, or a few if the burst outlasts the
    # debounce on a loaded machine; never one per file.
    assert len(watching.updates) - before <= 5
    assert len(fake.embedded) == 1000


def test_a_file_still_being_written_is_indexed_whole(watched):
    watching, fake, folder = watched
    path = folder / "growing.md"
    with path.open("w") as out:
        for i in range(8):
            out.write(f"Line {i} about the growing file, word part{i}.\n")
            out.flush()
            time.sleep(0.15)
        out.write("The end: omega.\n")
    until(lambda: watching.index.search("omega", mode="keyword"))
    partial = [text for text in fake.embedded if "part0" in text and "omega" not in text]
    assert partial == []


def test_an_ignore_file_edit_reapplies_the_rules(watched):
    watching, fake, folder = watched
    (folder / ".gitignore").write_text("trains.md\n")
    until(lambda: watching.paths() == {"cats.md"})
    (folder / ".gitignore").write_text("")
    until(lambda: watching.paths() == {"cats.md", "trains.md"})
    # Once out of the index its vectors went too: it is embedded again, once.
    assert fake.embedded == ["# Trains\n\nNight trains run from Zurich to Vienna."]


def test_events_during_an_update_are_applied_after_it(tmp_path, folder):
    embedding = threading.Event()

    class Slow(FakeEmbedder):
        def embed_documents(self, texts):
            if any("aardvarks" in text for text in texts):
                embedding.set()
                time.sleep(1.5)
            return super().embed_documents(texts)

    slow = Slow()
    with Index.open(tmp_path / "index", embedder=slow) as index:
        index.add([folder])
        watching = Watching(index)
        try:
            (folder / "first.md").write_text("The first file mentions aardvarks.\n")
            until(embedding.is_set, what="the update to start embedding")
            (folder / "second.md").write_text("The second file mentions narwhals.\n")
            until(lambda: {"first.md", "second.md"} <= watching.paths())
        finally:
            watching.close()


def test_a_folder_that_disappears_keeps_its_documents_and_is_picked_up_again(tmp_path, folder):
    fake = FakeEmbedder()
    with Index.open(tmp_path / "index", embedder=fake) as index:
        index.add([folder])
        watching = Watching(index)
        try:
            away = tmp_path / "unmounted"
            folder.rename(away)
            until(lambda: any(notice.kind == "missing" for notice in watching.notices))
            assert watching.paths() == {"cats.md", "trains.md"}
            (away / "while-away.md").write_text("Written while the drive was away: ocelots.\n")
            away.rename(folder)
            until(lambda: "while-away.md" in watching.paths())
            assert any(notice.kind == "back" for notice in watching.notices)
        finally:
            watching.close()


def test_polling_sees_changes_too(tmp_path, folder):
    with Index.open(tmp_path / "index", embedder=FakeEmbedder()) as index:
        index.add([folder])
        watching = Watching(index, poll=True)
        try:
            (folder / "polled.md").write_text("Polling finds pangolins.\n")
            until(lambda: "polled.md" in watching.paths())
        finally:
            watching.close()


def test_the_start_up_pass_finds_what_changed_while_nothing_watched(tmp_path, folder):
    fake = FakeEmbedder()
    with Index.open(tmp_path / "index", embedder=fake) as index:
        index.add([folder])
        (folder / "cats.md").unlink()
        (folder / "offline.md").write_text("Changed while nothing watched: tapirs.\n")
        watching = Watching(index)
        try:
            assert watching.paths() == {"trains.md", "offline.md"}
            assert [update.stats.new for update in watching.updates] == [1]
        finally:
            watching.close()


def test_the_watcher_embeds_the_backlog_in_slices_and_an_edit_meanwhile_is_searchable_at_once(tmp_path, monkeypatch):
    import semsearch
    from semsearch.indexing import watch

    class Failing(FakeEmbedder):
        def embed_documents(self, texts):
            time.sleep(0.5)  # while every file is read and written
            raise semsearch.EmbeddingError("The service is down.")

    class Slow(FakeEmbedder):
        batch_size = 4

        def embed_documents(self, texts):
            time.sleep(0.05)
            return super().embed_documents(texts)

    root = tmp_path / "notes"
    root.mkdir()
    for i in range(200):
        (root / f"note{i:03d}.md").write_text(f"# Note {i}\n\nNote {i} is about item{i} and nothing else.\n")
    with Index.open(tmp_path / "index", embedder=Failing()) as index, pytest.raises(semsearch.EmbeddingError):
        index.add([root])
    monkeypatch.setattr(watch, "BACKLOG_SLICE", 0.3)
    monkeypatch.setattr(watch, "CHECK_EVERY", 0.2)
    slow = Slow()
    index = Index.open(tmp_path / "index", embedder=slow)
    waiting = index.status().waiting_chunks
    assert waiting >= 200
    watching = Watching(index)
    try:
        (root / "fresh.md").write_text("# Fresh\n\nA brand new note about quokkas.\n")
        hits = until(lambda: index.search("quokkas", mode="keyword"), what="the new note by keywords")
        assert hits[0].path.endswith("fresh.md")
        assert index.status().waiting_chunks > 0, "found before the backlog was through"
        until(lambda: index.status().waiting_chunks == 0, timeout=60, what="the backlog to drain")
        assert sum(update.stats.chunks_embedded for update in watching.updates) >= waiting
        assert len(slow.embedded) == len(set(slow.embedded)), "nothing embedded twice"
        assert index.check().problems == [] and index.status().vectors >= waiting
    finally:
        watching.close()
        index.close()

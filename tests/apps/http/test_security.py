"""The server's rules, one test each: loopback unless a token, the token, Host names, Origin
and CORS, read-only, sizes and a stuck client, nothing outside the index."""

from __future__ import annotations

import logging
import os
import socket
import time

import httpx
import pytest
from click.testing import CliRunner

from semsearch.apps.cli import cli
from semsearch.apps.http.settings import ServeSettings
from semsearch.errors import ConfigError
from tests.apps.http.conftest import serving

TOKEN = "s3cret-token-for-tests-0123456789"


@pytest.mark.parametrize("host", ["0.0.0.0", "::", "192.168.1.20", "example.org"])
def test_other_addresses_than_loopback_are_refused_without_a_token(host):
    with pytest.raises(ConfigError) as caught:
        ServeSettings(host=host).check()
    assert caught.value.code == "token_required"
    ServeSettings(host=host, token=TOKEN).check()
    for loopback in ("127.0.0.1", "127.0.0.2", "::1", "localhost"):
        ServeSettings(host=loopback).check()


def test_the_command_refuses_a_public_address_without_a_token(indexed):
    result = CliRunner().invoke(cli, ["--index", str(indexed.path), "serve", "--host", "0.0.0.0"])
    assert result.exit_code == 1
    assert "refused without a token" in result.output and "SEMSEARCH_SERVE_TOKEN" in result.output


def test_with_a_token_every_request_carries_it(indexed):
    with serving(indexed, token=TOKEN) as served:
        for headers in ({}, {"Authorization": "Bearer wrong"}, {"Authorization": f"Basic {TOKEN}"},
                        {"Authorization": f"Bearer {TOKEN}x"}, {"Authorization": f"Bearer {TOKEN[:-1]}"}):
            for path in ("/api/search?q=cats", "/api/status", "/openapi.json", "/api/passage/1", "/api/document?path=x", "/api/nothing"):
                response = served.get(path, headers=headers)
                assert response.status_code == 401, (path, headers)
                assert response.json()["error"]["code"] == "unauthorised"
                assert response.headers["www-authenticate"].startswith("Bearer")
                assert TOKEN not in response.text
        good = {"Authorization": f"Bearer {TOKEN}"}
        assert served.get("/api/search?q=cats", headers=good).status_code == 200
        assert served.get("/openapi.json", headers=good).json()["security"] == [{"token": []}]
        # The page's own files hold no data; the page asks for the token before it searches.
        assert served.get("/").status_code == 200 and served.get("/static/app.js").status_code == 200


def test_the_token_is_never_logged_or_shown(indexed, caplog):
    caplog.set_level(logging.DEBUG)
    settings = ServeSettings(token=TOKEN)
    assert TOKEN not in repr(settings)
    with serving(indexed, token=TOKEN) as served:
        served.get("/api/status", headers={"Authorization": f"Bearer {TOKEN}"})
        served.get("/api/status", headers={"Authorization": f"Bearer {TOKEN}-wrong"})
        served.get("/api/search?q=", headers={"Authorization": f"Bearer {TOKEN}"})
    assert TOKEN not in caplog.text


@pytest.mark.parametrize("host", ["evil.example", "evil.example:8765", "127.0.0.1.evil.example", "localhost.evil.example", "[::2]"])
def test_a_foreign_host_name_is_refused(served, host):
    response = served.get("/api/status", headers={"Host": host})
    assert response.status_code == 421
    assert response.json()["error"]["code"] == "foreign_host"


def test_the_names_of_the_loopback_address_are_accepted(served):
    for host in (f"127.0.0.1:{served.port}", f"localhost:{served.port}", "LOCALHOST", "127.0.0.1"):
        assert served.get("/api/status", headers={"Host": host}).status_code == 200, host


def _raw(port: int, request: bytes) -> bytes:
    with socket.create_connection(("127.0.0.1", port), timeout=10) as connection:
        connection.sendall(request)
        answer = b""
        while chunk := connection.recv(65536):
            answer += chunk
    return answer


@pytest.mark.parametrize(
    "head",
    [b"GET /api/status HTTP/1.0\r\n\r\n", b"GET /api/status HTTP/1.1\r\nHost: 127.0.0.1\r\nHost: evil.example\r\nConnection: close\r\n\r\n",
     b"GET /api/status HTTP/1.1\r\nHost: 127.0.0.1:port\r\nConnection: close\r\n\r\n", b"GET /api/status HTTP/1.1\r\nHost: a@127.0.0.1\r\nConnection: close\r\n\r\n"],
)
def test_a_missing_or_malformed_host_is_refused(served, head):
    answer = _raw(served.port, head)
    assert answer.split(b"\r\n", 1)[0].split(b" ")[1] == b"400", answer[:200]


def test_no_cors_unless_asked_and_other_sites_pages_are_refused(served):
    foreign = {"Origin": "http://evil.example"}
    response = served.get("/api/search?q=cats", headers=foreign)
    assert response.status_code == 403 and response.json()["error"]["code"] == "cross_origin"
    assert not any(name.startswith("access-control") for name in response.headers)
    preflight = served.client.options("/api/search", headers={**foreign, "Access-Control-Request-Method": "GET"})
    assert preflight.status_code == 403 and "access-control-allow-origin" not in preflight.headers
    own = served.get("/api/search?q=cats", headers={"Origin": served.url})
    assert own.status_code == 200 and "access-control-allow-origin" not in own.headers


def test_cors_for_the_origins_given(indexed):
    allowed = "https://app.example:8443"
    with serving(indexed, cors=(allowed,)) as served:
        preflight = served.client.options(
            "/api/search", headers={"Origin": allowed, "Access-Control-Request-Method": "GET", "Access-Control-Request-Headers": "authorization"}
        )
        assert preflight.status_code == 204
        assert preflight.headers["access-control-allow-origin"] == allowed
        assert "Authorization" in preflight.headers["access-control-allow-headers"]
        response = served.get("/api/search?q=cats", headers={"Origin": allowed})
        assert response.status_code == 200 and response.headers["access-control-allow-origin"] == allowed
        assert served.get("/api/search?q=cats", headers={"Origin": "https://other.example"}).status_code == 403


def test_a_read_only_server_refuses_writes(served, docs):
    before = served.index.status()
    (docs / "new.txt").write_text("Parrots mimic the kettle.\n")
    response = served.post("/api/index", json={})
    assert response.status_code == 403 and response.json()["error"]["code"] == "read_only"
    for method in ("PUT", "DELETE", "PATCH"):
        assert served.client.request(method, "/api/status").status_code == 405
    assert served.index.status().documents == before.documents


def test_writes_with_allow_write_need_json(indexed, docs):
    (docs / "new.txt").write_text("Parrots mimic the kettle.\n")
    with serving(indexed, allow_write=True) as served:
        # What a form on a foreign page could send (it carries an Origin too, refused before this).
        form = served.post("/api/index", data={"a": "b"})
        assert form.status_code == 415
        response = served.post("/api/index", json={})
        assert response.status_code == 200 and response.json()["new"] == 1
        assert served.get("/api/search", params={"q": "parrots kettle"}).json()["results"][0]["path"].endswith("new.txt")
        assert served.post("/api/index", json={"paths": ["/etc"]}).status_code == 400


def test_a_long_query_and_a_large_body_are_refused(indexed):
    with serving(indexed, max_query_chars=100, max_body_bytes=1000, allow_write=True) as served:
        response = served.get("/api/search", params={"q": "cats " * 21})
        assert response.status_code == 414 and response.json()["error"]["code"] == "query_too_long"
        assert served.get("/api/search", params={"q": "c" * 100}).status_code == 200
        response = served.post("/api/index", content=b"{" + b" " * 2000 + b"}", headers={"Content-Type": "application/json"})
        assert response.status_code == 413 and response.json()["error"]["code"] == "body_too_large"
        chunked = served.post("/api/index", content=iter([b"{", b" " * 2000, b"}"]), headers={"Content-Type": "application/json"})
        assert chunked.status_code == 413
        assert served.get("/api/search", params={"q": "cats", "path": "x" * 20_000}).status_code == 414


def test_a_stuck_client_blocks_no_one(indexed):
    with serving(indexed, body_timeout=1.0, allow_write=True) as served:
        stuck_head = socket.create_connection(("127.0.0.1", served.port))
        stuck_head.sendall(b"GET /api/search?q=cats HTTP/1.1\r\nHost: 127.0.0.1\r\n")  # the head never ends
        stuck_body = socket.create_connection(("127.0.0.1", served.port))
        stuck_body.sendall(b"POST /api/index HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\nContent-Length: 100\r\n\r\n{")
        try:
            started = time.monotonic()
            with httpx.Client(base_url=served.url, timeout=5) as other:
                for _ in range(5):
                    assert other.get("/api/search", params={"q": "cats"}).status_code == 200
            assert time.monotonic() - started < 5
            stuck_body.settimeout(10)
            answer = stuck_body.recv(4096)
            assert answer.startswith(b"HTTP/1.1 408"), answer[:100]
        finally:
            stuck_head.close()
            stuck_body.close()


@pytest.mark.parametrize(
    "path",
    ["../outside.txt", "..%2Foutside.txt", "%2e%2e%2foutside.txt", "%252e%252e%252foutside.txt", "pets/../../outside.txt",
     "/etc/passwd", "{root}/../outside.txt", "{root}/image.png", "{root}", "pets%00/dogs.txt", "..\\outside.txt"],
)
def test_nothing_outside_the_index_is_served(served, docs, path):
    (docs.parent / "outside.txt").write_text("a secret outside the index\n")
    given = path.format(root=docs.resolve())
    # Sent as written: httpx would otherwise encode the percent signs once more.
    response = served.get(f"/api/document?path={given}&start=1")
    assert response.status_code == 404, response.text
    assert response.json()["error"]["code"] == "document_not_found"
    assert "secret" not in response.text


def test_a_symlink_out_of_the_folders_is_not_followed(served, docs):
    (docs.parent / "outside.txt").write_text("a secret outside the index\n")
    dogs = docs / "pets" / "dogs.txt"
    hit = served.get("/api/search", params={"q": "dogs bark strangers"}).json()["results"][0]
    assert hit["path"] == str(dogs.resolve())
    dogs.unlink()
    os.symlink(docs.parent / "outside.txt", dogs)
    response = served.get("/api/document", params={"path": hit["path"]})
    assert response.status_code == 404 and response.json()["error"]["code"] == "document_not_found"
    passage = served.get(f"/api/passage/{hit['chunk_id']}")
    assert passage.status_code == 200 and "secret" not in passage.text

"""A folder of hostile files: the run completes, finds every real document and reports every
skipped file with its reason, through the library and through the CLI.

The run happens in a separate process bound by file permissions (as root in CI: without the
capabilities that override them), so the unreadable file and folder really are unreadable.
"""

from __future__ import annotations

import json
import os
import random
import subprocess
import sys
from pathlib import Path

from tests.makedocs import write_docx, write_pdf

REPO = Path(__file__).resolve().parent.parent

PHRASES = {
    "report.pdf": "ultramarine kestrel migration",
    "letter.docx": "porcelain walrus invoice",
    "notes.md": "cardamom lighthouse keeper",
    "page.html": "velvet tram timetable",
    "latin1.txt": "Käsespätzle Überraschung Grüße",
    "utf16.txt": "Zwiebelkuchen Weißwein Herbst",
    "damaged.txt": "seventeen marmot burrows",
    "tool.py": "defragment_the_hamster",
}

EXPECTED_SKIPS = {
    "junk.txt": "binary file",
    "invalid-utf8.txt": "binary file",
    "empty.txt": "empty file",
    "huge.txt": "too large (200 MB, limit 20 MB)",
    "self-loop": "symlink loop",
    "nested/up": "symlink loop",
    "secret.md": "unreadable: Permission denied",
    "locked": "unreadable folder: Permission denied",
    "encrypted.pdf": "encrypted PDF",
    "scanned.pdf": "no text layer (scanned PDF?)",
    "corrupt.pdf": "corrupt PDF",
    "corrupt.docx": "corrupt DOCX",
    "photo.jpg": "unsupported file type",
}

WORKER = """
import json, sys
from click.testing import CliRunner
from semsearch import Index, embedding
from semsearch.apps.cli import cli
from tests.conftest import FakeEmbedder

root, index_dir, cli_index = sys.argv[1], sys.argv[2], sys.argv[3]
phrases = json.loads(sys.argv[4])
out = {}
with Index.open(index_dir, embedder=FakeEmbedder()) as index:
    stats = index.add([root])
    out["stats"] = stats.to_dict()
    out["skipped"] = [[item.path, item.reason] for item in stats.skipped]
    out["found"] = {name: [hit.path for hit in index.search(phrase, limit=1)] for name, phrase in phrases.items()}
fake = FakeEmbedder()
embedding.make_embedder = lambda model_id, **options: fake
runner = CliRunner()
out["index_cli"] = runner.invoke(cli, ["--index", cli_index, "index", root, "--model", "fake", "-v"]).output
out["status_cli"] = runner.invoke(cli, ["--index", cli_index, "status"]).output
out["status_cli_verbose"] = runner.invoke(cli, ["--index", cli_index, "status", "-v"]).output
print(json.dumps(out))
"""


def build_hostile_folder(root: Path) -> None:
    root.mkdir()
    write_pdf(root / "report.pdf", [["Quarterly report"], ["Birds", f"The {PHRASES['report.pdf']} was early."]])
    write_docx(root / "letter.docx", [("h1", "Billing"), ("p", f"About the {PHRASES['letter.docx']}.")])
    (root / "notes.md").write_text(f"# Notes\n\nThe {PHRASES['notes.md']} retired.\n")
    (root / "page.html").write_text(f"<html><body><nav>menu</nav><p>The {PHRASES['page.html']}.</p></body></html>")
    (root / "latin1.txt").write_bytes(f"{PHRASES['latin1.txt']} vom Wochenmarkt.".encode("latin-1"))
    (root / "utf16.txt").write_bytes(f"{PHRASES['utf16.txt']} im Oktober.".encode("utf-16"))
    (root / "damaged.txt").write_bytes(f"There are {PHRASES['damaged.txt']} ".encode() + b"\xc3 here.\n")
    (root / "tool.py").write_text(f"def {PHRASES['tool.py']}():\n    return 1\n")

    (root / "junk.txt").write_bytes(random.Random(3).randbytes(20000))
    (root / "invalid-utf8.txt").write_bytes(bytes(range(0x80, 0x100)) * 16)
    (root / "empty.txt").write_bytes(b"")
    with (root / "huge.txt").open("wb") as handle:
        handle.truncate(200 * 2**20)  # sparse: no disk, no time
    (root / "self-loop").symlink_to(root / "self-loop")
    (root / "nested").mkdir()
    (root / "nested" / "up").symlink_to(root)
    (root / "secret.md").write_text("# Secret\n\nNobody may read this.\n")
    (root / "secret.md").chmod(0)
    (root / "locked").mkdir()
    (root / "locked" / "inside.md").write_text("unreachable")
    (root / "locked").chmod(0)
    write_pdf(root / "encrypted.pdf", [["The vault combination is 1234."]], user_password="open sesame")
    write_pdf(root / "scanned.pdf", [[], [], []], scanned=True)
    write_pdf(root / "corrupt.pdf", [["This PDF will be cut in half."]])
    data = (root / "corrupt.pdf").read_bytes()
    (root / "corrupt.pdf").write_bytes(data[: len(data) // 3])
    (root / "corrupt.docx").write_bytes(b"PK\x03\x04" + random.Random(4).randbytes(3000))
    (root / "photo.jpg").write_bytes(b"\xff\xd8\xff\xe0" + bytes(100))


def run_without_override(code: str, *args: str) -> subprocess.CompletedProcess:
    env = dict(os.environ, PYTHONPATH=str(REPO))
    command = [sys.executable, "-c", code, *args]
    if os.geteuid() == 0:
        dropped = "-dac_override,-dac_read_search,-fowner"
        command = ["setpriv", f"--bounding-set={dropped}", f"--inh-caps={dropped}", *command]
    return subprocess.run(command, cwd=REPO, env=env, capture_output=True, text=True, timeout=300)


def test_hostile_folder_is_indexed_with_every_skip_explained(tmp_path):
    root = tmp_path / "hostile"
    build_hostile_folder(root)
    try:
        result = run_without_override(WORKER, str(root), str(tmp_path / "ix"), str(tmp_path / "ix-cli"), json.dumps(PHRASES))
    finally:
        (root / "secret.md").chmod(0o644)
        (root / "locked").chmod(0o755)
    assert result.returncode == 0, result.stderr
    out = json.loads(result.stdout)
    assert result.stderr == ""  # nothing printed by the library (pypdf's warnings included)

    found = {name: [os.path.relpath(path, root) for path in paths] for name, paths in out["found"].items()}
    assert found == {name: [name] for name in PHRASES}
    skipped = {os.path.relpath(path, root): reason for path, reason in out["skipped"]}
    assert skipped == EXPECTED_SKIPS
    assert out["stats"]["new"] == len(PHRASES)

    index_output = out["index_cli"]
    assert f"Indexed {len(PHRASES)} files" in index_output and f"{len(EXPECTED_SKIPS)} skipped" in index_output
    assert "Skipped: 2 binary file, 2 symlink loop, 1 corrupt DOCX, " in index_output
    for name, reason in EXPECTED_SKIPS.items():
        assert f"  {root / name}: {reason}\n" in index_output
    assert f"Skipped:    {len(EXPECTED_SKIPS)} files: 2 binary file, 2 symlink loop, 1 corrupt DOCX" in out["status_cli"]
    assert "(-v lists them)" in out["status_cli"]
    for name, reason in EXPECTED_SKIPS.items():
        assert f"  {root / name}: {reason}\n" in out["status_cli_verbose"]

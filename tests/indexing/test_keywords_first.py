"""A model that computes on this machine's cores starts once the files are read: every
document is written, and searchable by keywords, before the first text is embedded."""

from __future__ import annotations

from semsearch import Index
from tests.conftest import FakeEmbedder


class OnTheseCores(FakeEmbedder):
    uses_cores = True

    def __init__(self, location) -> None:
        super().__init__()
        self.location = location
        self.seen: list[int] = []

    def embed_documents(self, texts):
        if not self.seen:
            with Index.open(self.location, embedder=FakeEmbedder(), create=False) as reader:
                self.seen.append(reader.status().documents)
        return super().embed_documents(texts)


def test_files_are_read_and_written_before_the_model_starts(tmp_path, monkeypatch):
    import time

    from semsearch.indexing.reading import Reader

    folder = tmp_path / "notes"
    folder.mkdir()
    for i in range(200):
        (folder / f"note{i:03d}.md").write_text(f"# Note {i}\n\nNote {i} is about item{i}.\n")
    read = Reader.file

    def slowly(self, entry, state):  # a reader slow enough for the first batches to be ready long before the end
        time.sleep(0.005)
        return read(self, entry, state)

    monkeypatch.setattr(Reader, "file", slowly)
    embedder = OnTheseCores(tmp_path / "ix")
    with Index.open(tmp_path / "ix", embedder=embedder) as index:
        index.add([folder])
        assert index.status().waiting_chunks == 0
    assert embedder.seen == [200]

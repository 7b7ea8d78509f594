"""Finding the files to index under the folders a user names."""

from __future__ import annotations

import os
import stat
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from .errors import SemsearchError
from .loaders import reader_for

DEFAULT_MAX_FILE_SIZE = 20 * 1024 * 1024

# Dependency, cache and build folders: their text is someone else's or generated.
SKIP_DIRECTORIES = {
    "node_modules", "__pycache__", "site-packages", "bower_components", "venv", "env",
    "build", "dist", "target", "_build", "out", "htmlcov", "coverage",
}


@dataclass(frozen=True)
class FileEntry:
    """A file to consider, with what `stat` said about it."""

    path: Path
    size: int
    mtime_ns: int


@dataclass(frozen=True)
class Skipped:
    """A file that was not indexed, and why."""

    path: str
    reason: str


def resolve_roots(paths: list[str | os.PathLike]) -> list[Path]:
    """Absolute, resolved roots; raises SemsearchError naming any that does not exist."""
    roots = []
    for raw in paths:
        path = Path(raw).expanduser()
        if not path.exists():
            raise SemsearchError(f"{raw}: no such file or folder.")
        roots.append(path.resolve())
    return roots


def walk(roots: list[Path], *, max_file_size: int = DEFAULT_MAX_FILE_SIZE) -> Iterator[FileEntry | Skipped]:
    """Yield every indexable file under `roots` and every file skipped, with its reason.

    Hidden and dependency folders are not entered; symlinks are followed only when they
    point inside one of the roots, and each folder is visited once, so loops end.
    """
    seen_dirs: set[tuple[int, int]] = set()
    for root in roots:
        if root.is_dir():
            yield from _walk_dir(root, roots, seen_dirs, max_file_size)
        else:
            yield _entry(root, root.stat(), max_file_size)


def _inside(path: Path, roots: list[Path]) -> bool:
    return any(path == root or path.is_relative_to(root) for root in roots)


def _walk_dir(top: Path, roots: list[Path], seen: set[tuple[int, int]], max_file_size: int) -> Iterator[FileEntry | Skipped]:
    try:
        info = top.stat()
    except OSError as exc:
        yield Skipped(str(top), f"unreadable folder: {exc.strerror}")
        return
    key = (info.st_dev, info.st_ino)
    if key in seen:
        return
    seen.add(key)
    try:
        with os.scandir(top) as scan:
            entries = sorted(scan, key=lambda e: e.name)
    except OSError as exc:
        yield Skipped(str(top), f"unreadable folder: {exc.strerror}")
        return
    for entry in entries:
        path = Path(entry.path)
        if entry.name.startswith("."):
            continue
        try:
            is_link = entry.is_symlink()
            if is_link:
                target = path.resolve()
                if not _inside(target, roots):
                    yield Skipped(str(path), "symlink pointing outside the indexed folders")
                    continue
            info = entry.stat()  # follows symlinks
        except (OSError, RuntimeError) as exc:
            # RuntimeError: a symlink loop that pathlib detected while resolving.
            yield Skipped(str(path), f"unreadable: {getattr(exc, 'strerror', None) or 'broken symlink'}")
            continue
        if stat.S_ISDIR(info.st_mode):
            if entry.name in SKIP_DIRECTORIES or (path / "pyvenv.cfg").exists():
                continue
            yield from _walk_dir(path, roots, seen, max_file_size)
        elif stat.S_ISREG(info.st_mode):
            yield _entry(path, info, max_file_size)


def _entry(path: Path, info: os.stat_result, max_file_size: int) -> FileEntry | Skipped:
    if reader_for(path) is None:
        return Skipped(str(path), "unsupported file type")
    if info.st_size > max_file_size:
        return Skipped(str(path), f"too large ({info.st_size / 1e6:.0f} MB, limit {max_file_size / 1e6:.0f} MB)")
    return FileEntry(path, info.st_size, info.st_mtime_ns)

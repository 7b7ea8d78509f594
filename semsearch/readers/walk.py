"""Finding the files to index under the folders a user names.

What is walked, and what is said about what is not:

- *Ignored* (counted, not reported as a problem): hidden files and folders, editors' temporary files, VCS,
  dependency and build folders, virtualenvs, whatever `.gitignore` files (with git's own
  semantics: nested files, negation, `.git/info/exclude`, and the `.gitignore` files of an
  enclosing repository) and `.semsearchignore` files rule out, `--exclude`d paths, files
  not matched by `--include`, and a second path to a file already seen. These are the
  user's or the repository's stated wishes; listing each would bury real problems under
  every file of a `node_modules`.
- *Skipped* (listed with a reason): files the user would expect indexed but that cannot
  be: too large, empty, an unsupported type, unreadable, a symlink loop, a broken symlink
  or one leading outside the indexed folders.

Symlinks are followed only to places inside the indexed folders, after everything else,
so a file reachable both directly and through a link is indexed under its own path.
"""

from __future__ import annotations

import errno
import os
import re
import stat
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..errors import SemsearchError
from . import reader_for_name

DEFAULT_MAX_FILE_SIZE = 20 * 2**20

# Dependency, cache and build folders: their text is someone else's or generated.
SKIP_DIRECTORIES = {
    "node_modules", "__pycache__", "site-packages", "bower_components", "venv", "env",
    "build", "dist", "target", "_build", "out", "htmlcov", "coverage", "__pypackages__", "CVS",
}
IGNORE_FILES = (".gitignore", ".semsearchignore")
# Folders deeper than this below an indexed folder are skipped (a generated or hostile tree;
# no document collection nests so deep).
MAX_DEPTH = 100
# What editors and browsers write beside the file being saved: vim's swap files and the
# "4913" it writes to test a folder, emacs's backups (name~) and autosaves (#name#),
# temporary files and downloads in progress. Never documents, and gone within seconds.
_TEMPORARY = re.compile(r"(~|\.sw[a-p]|\.tmp|\.temp|\.part|\.crdownload)$|^#.*#$|^4913$", re.IGNORECASE)


def temporary(name: str) -> bool:
    """Whether a file of this name is an editor's or a download's temporary file."""
    return bool(_TEMPORARY.search(name))


@dataclass(frozen=True)
class FileEntry:
    """A file to consider, with what `stat` said about it."""

    path: Path
    size: int
    mtime_ns: int

    def read_bytes(self) -> bytes:
        """The file's content (OSError when it cannot be read).

        Fewer system calls than `Path.read_bytes` (which also asks whether the file is a
        terminal, and for its size twice): each call lets another indexing thread take
        the interpreter lock, and waiting to get it back costs more than the call.
        """
        descriptor = os.open(self.path, os.O_RDONLY | getattr(os, "O_BINARY", 0))
        try:
            # The size `stat` gave, and one byte more, so a file that grew is still read whole.
            parts = [os.read(descriptor, self.size + 1)]
            while parts[-1]:
                parts.append(os.read(descriptor, 1 << 20))
        finally:
            os.close(descriptor)
        return b"".join(parts)


@dataclass(frozen=True)
class Skipped:
    """A file that was not indexed, and why.

    `size` and `mtime_ns` are set when the reason came from reading the file, so an
    unchanged file need not be read again to be skipped again.
    """

    path: str
    reason: str
    size: int | None = None
    mtime_ns: int | None = None


@dataclass(frozen=True)
class Ignored:
    """A file or folder left out on purpose (hidden, a dependency folder, an ignore rule)."""

    path: str
    reason: str


def resolve_roots(paths: list[str | os.PathLike]) -> list[Path]:
    """Absolute, resolved roots; raises SemsearchError naming any that does not exist."""
    from ..text.checks import check_path

    roots = []
    for raw in paths:
        check_path(raw)
        path = Path(raw).expanduser()
        if not path.exists():
            raise SemsearchError(f"{raw}: no such file or folder.")
        roots.append(path.resolve())
    return roots


_SIZE = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([kmgt]?)(i?b)?\s*$", re.IGNORECASE)


def parse_size(text: str) -> int:
    """Bytes in a size such as "20MB", "512 KB", "1.5G" (binary units); a bare number is MB.

    Raises SemsearchError for anything else.
    """
    match = _SIZE.match(str(text))
    if not match:
        raise SemsearchError(f"{text!r} is not a size: write it like 20MB, 500KB or 1GB.")
    number, unit = float(match.group(1)), match.group(2).lower()
    if not unit:
        unit = "b" if match.group(3) else "m"
    return int(number * 2 ** (10 * "bkmgt".index(unit)))


def format_size(size: int) -> str:
    """A size for people: "200 MB", "1.5 GB", "300 KB" (binary units)."""
    for unit, power in (("GB", 30), ("MB", 20), ("KB", 10)):
        if size >= 2**power:
            value = size / 2**power
            return f"{value:.1f} {unit}" if value < 10 and value != int(value) else f"{value:.0f} {unit}"
    return f"{size} bytes"


def walk(
    roots: Sequence[Path],
    *,
    max_file_size: int | None = DEFAULT_MAX_FILE_SIZE,
    include: Sequence[str] = (),
    exclude: Sequence[str] = (),
    ignore_files: bool = True,
    index_dir: Path | None = None,
    index_files: Sequence[str] = (),
) -> Iterator[FileEntry | Skipped | Ignored]:
    """Yield every indexable file under `roots`, every file skipped with its reason, and
    every path ignored on purpose.

    Args:
        roots: absolute, resolved folders or files (see `resolve_roots`). A file named as
            a root is always considered, whatever the rules say.
        max_file_size: larger files are skipped (None or 0: no limit).
        include: gitignore-style patterns, relative to each root; when given, only files
            matching one are considered.
        exclude: gitignore-style patterns, relative to each root, for files and folders to
            leave out.
        ignore_files: honour `.gitignore` and `.semsearchignore` files.
        index_dir: the folder of the index being written (absolute, resolved), left out
            when it lies inside a root; when it is a root, its own files are.
        index_files: the names (or name prefixes) of the files the index keeps there.
    """
    walker = _Walker(list(roots), max_file_size, include, exclude, ignore_files)
    walker.index_dir = index_dir
    walker.index_files = tuple(index_files)
    for root in roots:
        yield from walker.root(root)
    yield from walker.links()


class _Rules:
    """The ignore rules in force in one folder: (base folder, spec, reason) levels from the
    top down. As in git, the deepest file with a matching pattern decides, and within a
    file the last matching pattern."""

    def __init__(self, levels: tuple[tuple[Path, Any, str], ...] = ()) -> None:
        self.levels = levels

    def below(self, directory: Path, names: Sequence[str] = IGNORE_FILES) -> _Rules:
        added = []
        for name in names:
            spec = _load_spec(directory / name)
            if spec is not None:
                added.append((directory, spec, f"ignored by {name}"))
        return _Rules(self.levels + tuple(added)) if added else self

    def reason(self, path: Path, is_dir: bool) -> str | None:
        for base, spec, reason in reversed(self.levels):
            try:
                relative = path.relative_to(base).as_posix()
            except ValueError:
                continue
            result = spec.check_file(relative + "/" if is_dir else relative)
            if result.include is not None:
                return reason if result.include else None
        return None


def _spec(lines: Sequence[str]):
    import pathspec

    return pathspec.GitIgnoreSpec.from_lines(lines)


def _load_spec(path: Path):
    try:
        lines = path.read_text(encoding="utf-8", errors="replace").splitlines()
    except OSError:  # absent or unreadable: no rules from it
        return None
    return _spec(lines) if any(line.strip() and not line.startswith("#") for line in lines) else None


def _repository_rules(root: Path) -> _Rules:
    """The ignore rules of the git repository holding `root`: its `.git/info/exclude`, and
    the ignore files from its top down to `root`'s parent, which apply to `root` as they
    would for git. (`root`'s own files are read when it is walked.)"""
    for top in (root, *root.parents):
        if os.path.exists(top / ".git"):
            break
    else:
        return _Rules()
    rules = _Rules().below(top, [".git/info/exclude"])
    folders = [folder for folder in root.parents if folder.is_relative_to(top)]
    for folder in reversed(folders):
        rules = rules.below(folder)
    return rules


@dataclass(frozen=True)
class _Folder:
    """A folder to walk into: the walk keeps these on a stack of its own, not Python's."""

    path: Path
    info: os.stat_result
    rules: _Rules
    root: Path
    depth: int


_Found = FileEntry | Skipped | Ignored


class _Walker:
    def __init__(self, roots: list[Path], max_file_size: int | None, include, exclude, ignore_files: bool) -> None:
        self.roots = roots
        self.max_file_size = max_file_size
        self.include = _spec(include) if include else None
        self.exclude = _spec(exclude) if exclude else None
        self.ignore_files = ignore_files
        self.seen: set[tuple[int, int]] = set()
        self.deferred: list[tuple[Path, _Rules, Path]] = []
        self.index_dir: Path | None = None
        self.index_files: tuple[str, ...] = ()

    def root(self, root: Path) -> Iterator[FileEntry | Skipped | Ignored]:
        try:
            info = root.stat()
        except OSError as exc:
            yield Skipped(str(root), f"unreadable: {exc.strerror}")
            return
        if stat.S_ISDIR(info.st_mode):
            rules = _repository_rules(root) if self.ignore_files else _Rules()
            yield from self._depth_first(iter([_Folder(root, info, rules, root, 0)]))
        elif self._first_visit(info):
            yield self._entry(root, info)

    def _depth_first(self, start: Iterator[_Found | _Folder]) -> Iterator[_Found]:
        """What `start` yields, with each folder it names walked in its place, depth first,
        on an explicit stack: a tree thousands of folders deep must not exhaust Python's."""
        stack = [start]
        while stack:
            item = next(stack[-1], None)
            if item is None:
                stack.pop()
            elif not isinstance(item, _Folder):
                yield item
            elif item.depth > MAX_DEPTH:
                yield Skipped(str(item.path), f"too deep: more than {MAX_DEPTH} folders below {item.root}")
            else:
                stack.append(self._directory(item))

    def _first_visit(self, info: os.stat_result) -> bool:
        key = (info.st_dev, info.st_ino)
        if key in self.seen:
            return False
        self.seen.add(key)
        return True

    def _directory(self, found: _Folder) -> Iterator[_Found | _Folder]:
        folder, rules, root = found.path, found.rules, found.root
        if not self._first_visit(found.info):
            return
        try:
            with os.scandir(folder) as scan:
                entries = sorted(scan, key=lambda e: e.name)
        except OSError as exc:
            yield Skipped(str(folder), f"unreadable folder: {exc.strerror}")
            return
        if self.ignore_files:
            names = {entry.name for entry in entries}
            rules = rules.below(folder, [name for name in IGNORE_FILES if name in names])
        for entry in entries:
            path = folder / entry.name  # parses the name alone, not the whole path again
            if not _utf8(entry.name):
                # SQLite stores text as UTF-8, so such a path could be neither stored nor shown.
                yield Skipped(_shown(path), "name is not valid UTF-8: rename it")
                continue
            if entry.name.startswith("."):
                yield Ignored(str(path), "hidden")
                continue
            if folder == self.index_dir and self.index_files and entry.name.startswith(self.index_files):
                yield Ignored(str(path), "the index's own file")
                continue
            try:
                if entry.is_symlink():
                    self.deferred.append((path, rules, root))
                    continue
                entry_info = entry.stat(follow_symlinks=False)
            except OSError as exc:
                yield Skipped(str(path), f"unreadable: {exc.strerror}")
                continue
            yield self._visit(path, entry_info, rules, root, found.depth + 1)

    def _visit(self, path: Path, info: os.stat_result, rules: _Rules, root: Path, depth: int) -> _Found | _Folder:
        # One item a path, returned: a generator for each of thousands of files costs more
        # than deciding.
        is_dir = stat.S_ISDIR(info.st_mode)
        reason = self._ignored(path, is_dir, rules, root)
        if reason:
            return Ignored(str(path), reason)
        elif is_dir:
            return _Folder(path, info, rules, root, depth)
        elif temporary(path.name):
            return Ignored(str(path), "an editor's temporary file")
        elif not stat.S_ISREG(info.st_mode):
            return Skipped(str(path), "not a regular file")
        elif self.include is not None and not self.include.match_file(path.relative_to(root).as_posix()):
            return Ignored(str(path), "not matched by --include")
        elif self._first_visit(info):
            return self._entry(path, info)
        else:
            return Ignored(str(path), "duplicate path")

    def _ignored(self, path: Path, is_dir: bool, rules: _Rules, root: Path) -> str | None:
        if self.exclude is not None:
            relative = path.relative_to(root).as_posix()
            if self.exclude.match_file(relative + "/" if is_dir else relative):
                return "excluded by --exclude"
        if is_dir and path == self.index_dir:
            return "the index's own folder"
        if is_dir and path.name in SKIP_DIRECTORIES:
            return "dependency or build folder"
        if is_dir and os.path.exists(path / "pyvenv.cfg"):
            return "virtualenv"
        return rules.reason(path, is_dir)

    def links(self) -> Iterator[FileEntry | Skipped | Ignored]:
        """The symlinks met on the way, once everything reachable without them was seen."""
        while self.deferred:
            path, rules, root = self.deferred.pop(0)
            try:
                info = path.stat()
            except OSError as exc:
                reason = {errno.ELOOP: "symlink loop", errno.ENOENT: "broken symlink"}.get(exc.errno or 0)
                yield Skipped(str(path), reason or f"unreadable: {exc.strerror}")
                continue
            target = Path(os.path.realpath(path))
            if not any(target.is_relative_to(top) for top in self.roots):
                yield Skipped(str(path), "symlink to outside the indexed folders")
                continue
            if stat.S_ISDIR(info.st_mode) and Path(os.path.realpath(path.parent)).is_relative_to(target):
                yield Skipped(str(path), "symlink loop")
                continue
            if (info.st_dev, info.st_ino) in self.seen:
                yield Ignored(str(path), "duplicate path")
                continue
            yield from self._depth_first(iter([self._visit(path, info, rules, root, len(path.relative_to(root).parts))]))

    def _entry(self, path: Path, info: os.stat_result) -> FileEntry | Skipped:
        if reader_for_name(path.name) is None:
            return Skipped(str(path), "unsupported file type")
        if info.st_size == 0:
            return Skipped(str(path), "empty file")
        if self.max_file_size and info.st_size > self.max_file_size:
            return Skipped(
                str(path), f"too large ({format_size(info.st_size)}, limit {format_size(self.max_file_size)})"
            )
        return FileEntry(path, info.st_size, info.st_mtime_ns)


def _utf8(name: str) -> bool:
    """Whether a name from the file system is valid UTF-8 (Python keeps other bytes as
    lone surrogates)."""
    try:
        name.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def _shown(path: Path) -> str:
    """A path that is not valid UTF-8, with its odd bytes written as \\xNN."""
    return os.fsencode(path).decode("utf-8", "backslashreplace")

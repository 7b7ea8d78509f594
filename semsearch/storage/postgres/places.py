"""Documents known by their folder's name, not by where a machine mounts it.

A document of a PostgreSQL index is stored as the name of the indexed folder it is in (the
last part of the folder's path) followed by its path inside it: `share/reports/q3.pdf`, for
`/mnt/share/reports/q3.pdf` on one machine and `/Volumes/share/reports/q3.pdf` on another.
Each machine records where it found each folder (`root_places`, by host name), and paths are
shown as that machine's absolute paths; a folder this machine never indexed is shown where
the last machine to index it found it. A folder indexed inside one already indexed is known
under the outer folder's name (`share/reports`), so its documents have one identity.
Records from `add_texts` keep their ids as they are.
"""

from __future__ import annotations

import os
import socket

from ...errors import SemsearchError
from .database import PostgresDatabase


def this_host() -> str:
    return socket.gethostname() or "localhost"


class Places:
    """The translation between absolute paths on this machine and stored document paths."""

    def __init__(self, database: PostgresDatabase) -> None:
        self.database = database
        self.host = this_host()
        self._here: dict[str, str] | None = None
        self._elsewhere: dict[str, str] = {}

    def _load(self) -> dict[str, str]:
        if self._here is None:
            here: dict[str, str] = {}
            elsewhere: dict[str, str] = {}
            for root, host, path in self.database.rows("SELECT root, host, path FROM root_places ORDER BY seen_at"):
                (here if host == self.host else elsewhere)[root] = path
            self._here, self._elsewhere = here, elsewhere
        return self._here

    def forget(self) -> None:
        """Read the places again (another writer may have added folders)."""
        self._here = None

    def _take_in(self, key: str, root: str) -> None:
        """Folders and files indexed before inside a new folder join it: their documents are
        renamed to its name, so each keeps one identity."""
        from .database import like_prefix

        here = self._load()
        for inner, place in list(here.items()):
            if place == root or not place.startswith(root.rstrip("/") + "/"):
                continue
            renamed = key + place[len(root.rstrip("/")):]
            for table, column in (("documents", "path"), ("skipped_files", "path"), ("roots", "path")):
                self.database.execute(
                    f"UPDATE {table} SET {column} = %s || substr({column}, %s) WHERE {column} = %s OR {column} LIKE %s",
                    [renamed, len(inner) + 1, inner, like_prefix(inner)],
                )
            self.database.execute("DELETE FROM root_places WHERE root = %s AND host = %s", [inner, self.host])
            del here[inner]

    def key(self, path: str) -> str:
        """The stored path of an absolute path on this machine (unchanged outside every folder)."""
        if not os.path.isabs(path):
            return path
        best: tuple[str, str] | None = None
        for root, place in self._load().items():
            if (path == place or path.startswith(place.rstrip("/") + "/")) and (best is None or len(place) < len(best[1])):
                best = (root, place)
        if best is None:
            return path
        root, place = best
        return root + path[len(place):]

    def path(self, key: str, kind: str = "file") -> str:
        """The absolute path on this machine of a stored path."""
        if kind != "file" or os.path.isabs(key):
            return key
        here = self._load()
        name, _, rest = key.partition("/")
        place = here.get(name) or self._elsewhere.get(name)
        if place is None:
            return key
        return place + ("/" + rest if rest else "")

    def learn(self, roots: list[str]) -> list[str]:
        """Record where these folders are on this machine; returns their stored names. Call
        inside a transaction. A new folder whose name another folder on this machine has is
        refused while that one exists (it would merge with it); if that one is gone, the
        folder was moved or mounted elsewhere, and its new place is recorded."""
        keys = []
        here = self._load()
        for root in roots:
            key = self.key(root)
            if key == root:
                key = os.path.basename(root.rstrip("/")) or root
                known = here.get(key)
                if known is not None and known != root and os.path.lexists(known):
                    raise SemsearchError(
                        f"Another folder named {key!r} ({known}) is already in this index, which knows folders "
                        f"by their name: rename one of them, or index a folder above both.",
                        code="folder_name_taken", folder=root, other=known,
                    )
                self._take_in(key, root)
                self.database.execute(
                    "INSERT INTO root_places (root, host, path) VALUES (%s, %s, %s)"
                    " ON CONFLICT (root, host) DO UPDATE SET path = EXCLUDED.path, seen_at = now()",
                    [key, self.host, root],
                )
                here[key] = root
            keys.append(key)
        return keys

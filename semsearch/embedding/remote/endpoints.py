"""What semsearch learned about remote endpoints, kept across runs in a small JSON file."""

from __future__ import annotations

import json
import logging
import os
import tempfile
import threading
import time
from collections.abc import Callable
from pathlib import Path

log = logging.getLogger(__name__)
# Seconds a learned batch size is used before the default is tried again.
BATCH_SIZE_KEPT = 24 * 3600


class EndpointState:
    """What was learned about endpoints, kept in a small JSON file across runs.

    {"endpoints": {base_url: {"encoding_format": "float",
                              "batch_size": {model: {"size": 64, "learned_at": 1790000000}}}}}
    The file only saves rediscovery: a missing, corrupt or unwritable one is ignored. A
    batch size is forgotten a day after it was learned, so that one bad moment of the
    service (a proxy's limit, an overloaded node) does not slow every later run.
    """

    def __init__(self, path: Path | None) -> None:
        if path is None:
            from platformdirs import user_state_path

            path = user_state_path("semsearch") / "endpoints.json"
        self.path = Path(path)
        self._lock = threading.Lock()
        self._data = self._load()

    def _load(self) -> dict:
        try:
            data = json.loads(self.path.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            return {}
        return data if isinstance(data, dict) and isinstance(data.get("endpoints"), dict) else {}

    def _entry(self, url: str) -> dict:
        entry = self._data.get("endpoints", {}).get(url)
        return entry if isinstance(entry, dict) else {}

    def batch_size(self, url: str, model: str) -> int | None:
        sizes = self._entry(url).get("batch_size")
        learned = sizes.get(model) if isinstance(sizes, dict) else None
        if not isinstance(learned, dict) or not isinstance(learned.get("learned_at"), (int, float)):
            return None  # none, or from a version that kept sizes for ever: learned anew
        size = learned.get("size")
        if time.time() - learned["learned_at"] > BATCH_SIZE_KEPT:
            return None
        return size if type(size) is int and size >= 1 else None

    def encoding_format(self, url: str) -> str | None:
        value = self._entry(url).get("encoding_format")
        return value if value in ("base64", "float") else None

    def remember_batch_size(self, url: str, model: str, size: int) -> None:
        def change(entry: dict) -> None:
            if not isinstance(entry.get("batch_size"), dict):
                entry["batch_size"] = {}
            entry["batch_size"][model] = {"size": size, "learned_at": round(time.time())}

        self._update(url, change)

    def remember_encoding_format(self, url: str, encoding: str) -> None:
        self._update(url, lambda entry: entry.__setitem__("encoding_format", encoding))

    def _update(self, url: str, change: Callable[[dict], None]) -> None:
        with self._lock:
            # Reread first so that what another process learned meanwhile is kept.
            data = self._load() or {"endpoints": {}}
            if not isinstance(data["endpoints"].get(url), dict):
                data["endpoints"][url] = {}
            change(data["endpoints"][url])
            self._data = data
            try:
                self.path.parent.mkdir(parents=True, exist_ok=True)
                handle, temporary = tempfile.mkstemp(dir=self.path.parent, prefix=".endpoints-", suffix=".tmp")
                try:
                    with os.fdopen(handle, "w", encoding="utf-8") as file:
                        json.dump(data, file, indent=2, sort_keys=True)
                    os.replace(temporary, self.path)
                except BaseException:
                    os.unlink(temporary)
                    raise
            except OSError as exc:
                log.debug("could not save endpoint state to %s: %s", self.path, exc)

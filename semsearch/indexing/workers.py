"""The threads of an indexing run: embedding workers, and the reader that runs ahead of them."""

from __future__ import annotations

import queue
import threading
from collections.abc import Callable
from concurrent.futures import Future
from typing import Any


class Workers:
    """Daemon threads running `function`: unlike ThreadPoolExecutor's, they never hold up
    the exit of an interrupted run while a slow batch finishes."""

    def __init__(self, count: int, function: Callable[[list[str]], Any]) -> None:
        self._tasks: queue.Queue = queue.Queue()
        self._function = function
        for number in range(count):
            threading.Thread(target=self._work, name=f"semsearch-embed-{number}", daemon=True).start()
        self._count = count
        self._closed = False

    def _work(self) -> None:
        while (task := self._tasks.get()) is not None:
            future, argument = task
            if not future.set_running_or_notify_cancel():
                continue
            try:
                future.set_result(self._function(argument))
            except BaseException as exc:
                future.set_exception(exc)

    def submit(self, argument: list[str]) -> Future:
        future: Future = Future()
        self._tasks.put((future, argument))
        return future

    def close(self) -> None:
        """Stop the workers once their current task ends; queued tasks are dropped."""
        if self._closed:
            return
        self._closed = True
        while True:
            try:
                future, _ = self._tasks.get_nowait()
            except queue.Empty:
                break
            future.cancel()
        for _ in range(self._count):
            self._tasks.put(None)

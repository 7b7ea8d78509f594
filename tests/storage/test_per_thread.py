"""PerThread: a store per thread, the connections of ended threads closed."""

from __future__ import annotations

import threading

import pytest

from semsearch.errors import SemsearchError
from semsearch.storage.per_thread import PerThread


class Store:
    def __init__(self) -> None:
        self.closed = False

    def close(self) -> None:
        self.closed = True

    def name(self) -> str:
        return threading.current_thread().name


def in_thread(function):
    found = []

    def run():
        try:
            found.append(function())
        except Exception as exc:  # noqa: BLE001 - raised again in the calling thread
            found.append(exc)

    thread = threading.Thread(target=run, name="worker")
    thread.start()
    thread.join()
    if isinstance(found[0], Exception):
        raise found[0]
    return found[0]


def test_each_thread_gets_its_own_store_and_calls_go_to_it():
    stores = PerThread("somewhere", Store)
    mine = stores.current()
    assert stores.current() is mine and stores.name() == threading.current_thread().name
    theirs = in_thread(stores.current)
    assert theirs is not mine and in_thread(stores.name) == "worker"


def test_the_store_of_an_ended_thread_is_closed_when_the_next_is_opened():
    stores = PerThread("somewhere", Store)
    ended = in_thread(stores.current)
    assert not ended.closed  # nothing opened since
    later = in_thread(stores.current)
    assert ended.closed and ended not in stores.each()
    assert not stores.current().closed and stores.current() in stores.each()
    in_thread(stores.current)
    assert later.closed and later not in stores.each()


def test_close_closes_every_store_and_refuses_new_ones():
    stores = PerThread("/x", Store)
    opened = [stores.current(), in_thread(stores.current)]
    stores.close()
    assert all(store.closed for store in opened)
    with pytest.raises(SemsearchError, match="closed"):
        in_thread(stores.current)

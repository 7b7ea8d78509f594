"""The contract suite: Index-level behaviour every storage backend must show.

Each test here opens its index at `location`, which names a fresh, empty index on each
backend in turn; a new backend joins by adding itself to `BACKENDS`.
"""

from __future__ import annotations

import pytest

BACKENDS = ["local", "postgres"]


@pytest.fixture(params=BACKENDS)
def location(request, tmp_path):
    """Where a test's index lives: a fresh one on each backend."""
    if request.param == "local":
        return tmp_path / "ix"
    if request.param == "postgres":
        return request.getfixturevalue("postgres_url")
    raise AssertionError(f"no such backend {request.param}")


@pytest.fixture
def other_location(request, location, tmp_path):
    """A second fresh index on the same backend as `location`."""
    if request.node.callspec.params["location"] == "local":
        return tmp_path / "other"
    from tests.conftest import fresh_database

    return fresh_database(request.getfixturevalue("postgres_server"))

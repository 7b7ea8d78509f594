"""The `semsearch` command: parse options, call the library, print. No indexing or search logic here.

`group.py` is the command group and what its commands share; each other module holds a family
of commands, registered with the group when it is imported."""

from __future__ import annotations

from . import indexing, searching, serving, tools, upkeep  # noqa: F401  (each registers its commands)
from .group import cli

__all__ = ["cli"]

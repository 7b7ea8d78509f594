"""Text that cannot be stored or sent: bytes that are not UTF-8 in a string.

Python keeps undecodable bytes of command-line arguments and file names as lone surrogates
(PEP 383). Such a string cannot be written to SQLite, sent to a model or shown as it is, so
it is refused where it enters, with the bytes written out.
"""

from __future__ import annotations

import os
import re

from ..errors import SemsearchError

_SURROGATE = re.compile("[\ud800-\udfff]")


def shown(text: str) -> str:
    """`text` with its undecodable bytes written as \\xNN."""
    return text.encode("utf-8", "surrogateescape").decode("utf-8", "backslashreplace")


def undecodable(text: str) -> bool:
    """Whether `text` holds bytes that are not UTF-8."""
    return _SURROGATE.search(text) is not None


def check_text(text: str, what: str) -> None:
    """Refuse a text holding bytes that are not UTF-8 (SemsearchError naming `what`)."""
    if _SURROGATE.search(text):
        raise SemsearchError(
            f"{what} holds bytes that are not valid UTF-8 ({shown(text)[:80]}): give it as UTF-8 text.",
            code="not_utf8", what=what,
        )


def check_path(path: str | os.PathLike, what: str = "The path") -> None:
    """Refuse a path whose name holds bytes that are not UTF-8: the index stores paths as text."""
    given = os.fspath(path)
    text = given.decode("utf-8", "surrogateescape") if isinstance(given, bytes) else given
    if _SURROGATE.search(text):
        raise SemsearchError(
            f"{what} {shown(text)} holds bytes that are not valid UTF-8: rename it, or name it another way.",
            code="not_utf8", what=what,
        )

"""Embedded files (`data:` URIs) are not text: their payload is left out of what is indexed.

Notion, Typora and other editors export pasted images into Markdown as
`![](data:image/png;base64,iVBORw0…)`: hundreds of kilobytes of base64 that would become
hundreds of junk chunks, ranking for real queries on the strength of chance letter runs.
The payload is replaced by a short placeholder; the newlines inside it are kept, so every
later line keeps its number.
"""

from __future__ import annotations

import re

PLACEHOLDER = "…"

# A media type, optional parameters, then the payload: base64 (possibly wrapped onto lines
# of their own, as MIME tools write it) or percent-encoded. The payload stops at what ends a
# URL in Markdown, HTML or CSS. Shorter payloads are left alone: they are not worth a
# placeholder and a word like "data:" in prose never reaches this length.
_DATA_URI = re.compile(
    r"data:(?<![\w-]data:)[a-z]+/[\w.+-]+(?:;[\w.+-]+=[\w.+-]+)*"
    r"(?:;base64,(?P<base64>[A-Za-z0-9+/]+"
    r"(?:(?:\r\n?|\n)[ \t]*(?:[A-Za-z0-9+/]{16,}(?=[=)\"'\r\n]|$)|[A-Za-z0-9+/]+=*(?=[)\"'])))*=*)"
    r"|,(?P<plain>[^\s)\"'<>]+))",
    re.IGNORECASE,
)
_SHORTEST = 64


def without_data_payloads(text: str) -> str:
    """`text` with each long `data:` URI payload replaced by a placeholder and its line breaks."""
    return _DATA_URI.sub(_placeholder, text)


def _placeholder(match: re.Match) -> str:
    name = "base64" if match.group("base64") is not None else "plain"
    payload = match.group(name)
    if len(payload) < _SHORTEST:
        return match.group()
    head = match.group()[: match.start(name) - match.start()]
    breaks = re.findall(r"\r\n?|\n", payload)
    return head + PLACEHOLDER + "".join(breaks)

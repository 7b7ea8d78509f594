"""`Index.add_texts`' arguments checked before anything is written: a run commits as it goes,
so a record that cannot be stored must be refused before the first."""

from __future__ import annotations

import json
from typing import Any

from ..errors import SemsearchError
from ..text.checks import undecodable


def checked_records(ids, texts, metadata) -> list[tuple[str, str, dict[str, Any] | None]]:
    """`add_texts`' arguments as records, refused before anything is written when they
    cannot all be stored (a run commits as it goes)."""
    if isinstance(ids, str) or isinstance(texts, str):
        raise SemsearchError("add_texts takes lists: ids=[...], texts=[...].")
    ids, texts = list(ids), list(texts)
    metadata = [None] * len(ids) if metadata is None else list(metadata)
    if not len(ids) == len(texts) == len(metadata):
        raise SemsearchError("add_texts needs as many ids (and metadata) as texts.")
    if len(set(ids)) != len(ids):
        raise SemsearchError("add_texts ids must be unique.")
    for number, (key, text, values) in enumerate(zip(ids, texts, metadata)):
        problem = None
        if not isinstance(key, str) or not isinstance(text, str):
            problem = "ids and texts must be strings"
        elif undecodable(key) or undecodable(text):
            problem = "ids and texts must be valid UTF-8 (this one holds bytes that are not)"
        elif values is not None and not isinstance(values, dict):
            problem = "metadata must be a dict or None"
        elif values is not None and not isinstance(values.get("title", ""), str):
            problem = "a title in metadata must be a string"
        else:
            try:
                json.dumps(values)
            except (TypeError, ValueError) as exc:
                problem = f"metadata must be JSON-serialisable ({exc})"
        if problem:
            raise SemsearchError(f"add_texts record {number} ({key!r}): {problem}. Nothing was written.")
    return list(zip(ids, texts, metadata))

"""The CLI's wording of the library's errors and findings: the facts as the library states
them, the advice in terms of `semsearch` commands and flags.

The library says what to do in its own terms (`rebuild=True`); a person at a terminal needs
the command to type. Errors whose code has no entry here are shown as the library words them.
"""

from __future__ import annotations

import shlex
from collections.abc import Callable

from ..errors import SemsearchError

_ADVICE: dict[str, Callable[[dict], str]] = {
    "index_not_found": lambda d: "Create one with `semsearch index FOLDER` (or pass --index).",
    "other_model": lambda d: (
        f"Search it without --model, use another --index for {d['requested']}, or rebuild it with "
        f"`semsearch index --rebuild --model {d['requested']}`."
    ),
    "other_chunking": lambda d: "Keep its settings, or rebuild it with `semsearch index --rebuild`.",
    "other_dimensions": lambda d: (
        "The model behind that name has changed (check SEMSEARCH_BASE_URL: another endpoint may serve another "
        "version of it). If it changed for good, rebuild the index with `semsearch index --rebuild`."
    ),
    "disk_full": lambda d: "The disk is full; free some space and run the command again (nothing committed was lost).",
    "not_writable": lambda d: "The index folder is not writable; check its permissions or choose another with --index.",
    "damaged": lambda d: (
        "The database file is damaged, which `check --repair` cannot mend; index your folders again into a new "
        "index (`semsearch --index NEW index FOLDER...`) and replace this one with it."
    ),
    "storage": lambda d: "Run `semsearch check` to verify the index.",
    "wal_unreadable": lambda d: (
        "Open it once where it is writable (`semsearch status` will do) and copy it again, or make the folder writable."
    ),
    "model_not_found": lambda d: "Run `semsearch models` to see the models it serves, or check SEMSEARCH_BASE_URL.",
    "token_required": lambda d: "Set SEMSEARCH_SERVE_TOKEN (or pass --token), or listen on 127.0.0.1.",
    "cannot_listen": lambda d: "Choose another --port, or stop what listens there.",
    "refused": lambda d: "Check the model id (`semsearch models` lists those it serves) and the service's reason.",
}

_FACTS: dict[str, Callable[[SemsearchError], str]] = {
    "bad_date": lambda e: f"--{e.details['name']} {e.details['value']!r} is not a date: use YYYY-MM-DD (or YYYY-MM-DDTHH:MM).",
}


# A service that failed for good: what to do depends on the command that needed it.
_SERVICE = ("service", "service_unreachable", "service_timeout")
_SERVICE_ADVICE = {
    "search": "`--mode keyword` searches without the service, offline.",
    "index": (
        "Nothing already embedded was lost, and the documents read are searchable by keyword; "
        "run the command again later to embed the rest."
    ),
    "eval": "Nothing already embedded was lost; run the command again later to continue.",
}


def message(error: SemsearchError, command: str | None = None) -> str:
    """What the CLI says for `error` raised by `command` ("search", "index", ...): its
    facts, and advice a terminal user can follow."""
    facts = _FACTS.get(error.code)
    if facts is not None:
        return facts(error)
    if error.code in _SERVICE:
        # The library's hint names the settings (SEMSEARCH_BASE_URL, SEMSEARCH_TIMEOUT), which
        # a terminal user sets too.
        then = _SERVICE_ADVICE.get(command or "", "Run the command again later.")
        return f"{error.message} {error.hint + ' ' if error.hint else ''}{then}"
    advice = _ADVICE.get(error.code)
    if advice is None:
        return str(error)
    return f"{error.message} {advice(error.details)}"


def damaged_index(details: dict) -> str:
    """What to do about an index database that `check --repair` cannot mend."""
    folders = " ".join(shlex.quote(folder) for folder in details.get("folders", [])) or "FOLDER..."
    model = shlex.quote(details.get("model") or "MODEL")
    again = f"`semsearch --index {shlex.quote(details['index'] + '.new')} index --model {model} {folders}`"
    return (
        "The index database is damaged, which `check --repair` cannot mend. Index your folders again "
        f"into a new index ({again}), then replace {details['index']} with it."
    )

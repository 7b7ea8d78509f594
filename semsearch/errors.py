"""The exceptions semsearch raises.

Each error states the facts (`message`), what kind of problem it is (`code`, stable, for
programs) and what to do about it in the library's own terms (`hint`), with the values it
names in `details`. `str(error)` is the message and the hint. A front end words its own
advice from the code and details: the CLI names its flags, an HTTP API its parameters, and
an agent gets neither.
"""

from __future__ import annotations

from typing import Any


class SemsearchError(Exception):
    "Base class for every error semsearch reports."

    code = "error"

    def __init__(self, message: str, *, hint: str | None = None, code: str | None = None, **details: Any) -> None:
        super().__init__(f"{message} {hint}" if hint else message)
        self.message = message
        self.hint = hint
        if code is not None:
            self.code = code
        self.details = details


class ConfigError(SemsearchError):
    "A setting is missing or invalid."

    code = "config"


class IndexNotFoundError(SemsearchError):
    "There is no index at the given location."

    code = "index_not_found"


class ModelMismatchError(SemsearchError):
    "The index was built with another embedding model or chunking settings."

    code = "model_mismatch"


class IndexLockedError(SemsearchError):
    "Another process is writing to this index."

    code = "index_locked"


class StorageError(SemsearchError):
    "The index could not be read or written (disk full, permissions, damage)."

    code = "storage"


class NotInIndexError(SemsearchError):
    "The chunk or document asked for is not in the index."

    code = "not_in_index"


class DocumentError(SemsearchError):
    "A document could not be read; the reason is the message."

    code = "document"


class DatasetError(SemsearchError):
    "An evaluation dataset is missing files or malformed."

    code = "dataset"


class EmbeddingError(SemsearchError):
    "The embedding model failed."

    code = "embedding"


class AuthenticationError(EmbeddingError):
    "The API token is missing or was rejected."

    code = "authentication"


class ModelNotFoundError(EmbeddingError):
    "The endpoint does not serve the requested model."

    code = "model_not_found"


class RequestTooLargeError(EmbeddingError):
    "The endpoint rejected a request as too large, even split down to one input."

    code = "request_too_large"
    # One entry per input of the failed call: its vector, or None for an input that was
    # rejected; None when the call gave up before embedding the others.
    vectors: list | None = None


class ServiceError(EmbeddingError):
    "The embedding service kept failing after retries."

    code = "service"

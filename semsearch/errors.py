"""The exceptions semsearch raises. Each message tells the user what to do next."""

from __future__ import annotations


class SemsearchError(Exception):
    "Base class for every error semsearch reports."


class ConfigError(SemsearchError):
    "A setting is missing or invalid."


class IndexNotFoundError(SemsearchError):
    "There is no index at the given location."


class ModelMismatchError(SemsearchError):
    "The index was built with another embedding model or chunking settings."


class IndexLockedError(SemsearchError):
    "Another process is writing to this index."


class StorageError(SemsearchError):
    "The index could not be read or written (disk full, permissions, damage)."


class DocumentError(SemsearchError):
    "A document could not be read; the reason is the message."


class DatasetError(SemsearchError):
    "An evaluation dataset is missing files or malformed."


class EmbeddingError(SemsearchError):
    "The embedding model failed."


class AuthenticationError(EmbeddingError):
    "The API token is missing or was rejected."


class ModelNotFoundError(EmbeddingError):
    "The endpoint does not serve the requested model."


class RequestTooLargeError(EmbeddingError):
    "The endpoint rejected a request as too large, even split down to one input."

    # One entry per input of the failed call: its vector, or None for an input that was
    # rejected; None when the call gave up before embedding the others.
    vectors: list | None = None


class ServiceError(EmbeddingError):
    "The embedding service kept failing after retries."

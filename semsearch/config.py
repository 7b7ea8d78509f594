"""Settings from the environment: where the index lives, which model, the API endpoint.

Every setting can come from an environment variable or, as with the IONOS tutorial's
python-dotenv setup, from a `.env` file in the working directory. The environment wins.
"""

from __future__ import annotations

import math
import os
from dataclasses import dataclass
from pathlib import Path

from .errors import ConfigError

DEFAULT_BASE_URL = "https://openai.inference.de-txl.ionos.com/v1"
DEFAULT_REMOTE_MODEL = "BAAI/bge-m3"
LOCAL_MODEL = "local"

TOKEN_VARIABLE = "IONOS_API_TOKEN"


def _dotenv_values() -> dict[str, str]:
    path = Path.cwd() / ".env"
    if not path.is_file():
        return {}
    from dotenv import dotenv_values

    try:
        values = dotenv_values(path)
    except (OSError, UnicodeDecodeError):
        return {}
    return {key: value for key, value in values.items() if value is not None}


def setting(name: str, default: str | None = None) -> str | None:
    """Return the value of `name` from the environment, else from `./.env`, else `default`."""
    value = os.environ.get(name)
    if value:
        return value
    return _dotenv_values().get(name) or default


def api_token() -> str | None:
    """The IONOS API token, or None when none is configured."""
    # Whitespace around it (a copied token, `TOKEN= x ` in .env) would make an invalid
    # header, which the HTTP client reports as a failed connection.
    return (setting(TOKEN_VARIABLE) or "").strip() or None


def base_url() -> str:
    """The OpenAI-compatible endpoint for remote models."""
    return (setting("SEMSEARCH_BASE_URL") or DEFAULT_BASE_URL).strip().rstrip("/")


def float_setting(name: str, default: float) -> float:
    raw = setting(name)
    if raw is None:
        return default
    try:
        value = float(raw)
    except ValueError:
        raise ConfigError(f"{name}={raw!r} is not a number.") from None
    if not (0 < value < math.inf):  # nan too
        raise ConfigError(f"{name} must be a number greater than zero, not {raw}.")
    return value


def int_setting(name: str, default: int) -> int:
    raw = setting(name)
    if raw is None:
        return default
    try:
        value = int(raw)
    except ValueError:
        raise ConfigError(f"{name}={raw!r} is not a whole number.") from None
    if value < 0:
        raise ConfigError(f"{name} cannot be negative, not {raw}.")
    return value


@dataclass(frozen=True)
class ModelChoice:
    """The model a new index will use, and why it was chosen."""

    model: str
    reason: str


def choose_model(explicit: str | None = None) -> ModelChoice:
    """Pick the model for a new index: explicit, else SEMSEARCH_MODEL, else bge-m3 with a token, else local."""
    if explicit:
        return ModelChoice(explicit, "--model")
    from_env = setting("SEMSEARCH_MODEL")
    if from_env:
        return ModelChoice(from_env, "SEMSEARCH_MODEL")
    if api_token():
        return ModelChoice(DEFAULT_REMOTE_MODEL, f"{TOKEN_VARIABLE} is set")
    return ModelChoice(LOCAL_MODEL, f"no {TOKEN_VARIABLE} is set")


def default_index_path() -> Path:
    """`SEMSEARCH_INDEX`, else the `default` index under the user data directory."""
    configured = setting("SEMSEARCH_INDEX")
    if configured:
        return Path(configured).expanduser()
    from platformdirs import user_data_path

    return user_data_path("semsearch") / "default"

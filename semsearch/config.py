"""Settings from the environment: where the index lives, which model, the API endpoint.

Every setting can come from an environment variable or, as with the IONOS tutorial's
python-dotenv setup, from a `.env` file in the working directory. The environment wins.

A `.env` comes with whatever folder one runs semsearch in, a downloaded one too, so it may
not send a token that came from elsewhere to an endpoint it names, nor the other way round:
the endpoint and the token must come from the same place (see `remote_endpoint`).
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


DOTENV = "./.env"
ENVIRONMENT = "the environment"


def setting(name: str, default: str | None = None) -> str | None:
    """Return the value of `name` from the environment, else from `./.env`, else `default`."""
    return setting_from(name, default)[0]


def setting_from(name: str, default: str | None = None) -> tuple[str | None, str | None]:
    """The value of `name` and where it came from: ENVIRONMENT, DOTENV, or None for `default`."""
    value = os.environ.get(name)
    if value:
        return value, ENVIRONMENT
    value = _dotenv_values().get(name)
    if value:
        return value, DOTENV
    return default, None


def api_token() -> str | None:
    """The IONOS API token, or None when none is configured."""
    # Whitespace around it (a copied token, `TOKEN= x ` in .env) would make an invalid
    # header, which the HTTP client reports as a failed connection.
    return (setting(TOKEN_VARIABLE) or "").strip() or None


def base_url() -> str:
    """The OpenAI-compatible endpoint for remote models."""
    return (setting("SEMSEARCH_BASE_URL") or DEFAULT_BASE_URL).strip().rstrip("/")


@dataclass(frozen=True)
class Endpoint:
    """Where remote models are asked, with which token, and where each came from."""

    url: str
    token: str | None
    url_from: str | None  # ENVIRONMENT, DOTENV, "given" or None (the default endpoint)
    token_from: str | None

    @property
    def host(self) -> str:
        from urllib.parse import urlsplit

        return urlsplit(self.url).netloc or self.url

    def describe(self) -> str:
        """A line for people: the host and where the token came from (never the token)."""
        origin = {ENVIRONMENT: f"{TOKEN_VARIABLE} in the environment", DOTENV: f"{TOKEN_VARIABLE} in ./.env"}
        token = origin.get(self.token_from or "", "the token given") if self.token else "no token"
        return f"{self.host} ({token})"


def remote_endpoint(url: str | None = None, token: str | None = None) -> Endpoint:
    """The endpoint and token for remote models: those given, else from the settings.

    Raises ConfigError when a `./.env` names the endpoint and the token comes from the
    environment, or the other way round: a folder's `.env` must not be able to send the
    user's token to a server of its choosing. Put both in one place to use them.
    """
    url_from: str | None = "given" if url else None
    if not url:
        url, url_from = setting_from("SEMSEARCH_BASE_URL", DEFAULT_BASE_URL)
    token_from: str | None = "given" if token is not None else None
    if token is None:
        token, token_from = setting_from(TOKEN_VARIABLE)
    token = (token or "").strip() or None
    url = (url or DEFAULT_BASE_URL).strip().rstrip("/")
    mixed = {url_from, token_from} == {ENVIRONMENT, DOTENV} and token is not None
    if mixed:
        named = "./.env names the endpoint" if url_from == DOTENV else "./.env holds the token"
        raise ConfigError(
            f"{named} ({'SEMSEARCH_BASE_URL' if url_from == DOTENV else TOKEN_VARIABLE}) while the "
            f"{'token' if url_from == DOTENV else 'endpoint'} comes from the environment: semsearch does not send a "
            "token to an endpoint set in another place.",
            hint=(
                f"Set SEMSEARCH_BASE_URL and {TOKEN_VARIABLE} in the same place (both in the environment, or both in "
                "./.env), or remove the one you did not mean from ./.env."
            ),
            code="mixed_endpoint",
        )
    return Endpoint(url, token, url_from, token_from if token else None)


def float_setting(name: str, default: float, *, meaning: str = "") -> float:
    """The setting `name` as a number greater than zero, else `default`; ConfigError for
    anything else, saying what the setting is (`meaning`) when given."""
    raw = setting(name)
    if raw is None:
        return default
    about = f" ({name} is {meaning})" if meaning else ""
    try:
        value = float(raw)
    except ValueError:
        raise ConfigError(f"{name}={raw!r} is not a number: give one greater than zero{about}.", code="bad_setting",
                          name=name, value=raw) from None
    if not (0 < value < math.inf):  # nan too
        raise ConfigError(f"{name} must be a number greater than zero, not {raw}{about}.", code="bad_setting",
                          name=name, value=raw)
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


def default_index_path() -> Path | str:
    """`SEMSEARCH_INDEX` (a folder, or a `postgresql://` URL), else the `default` index under
    the user data directory."""
    configured = setting("SEMSEARCH_INDEX")
    if configured and configured.lower().startswith(("postgresql://", "postgres://")):
        return configured
    if configured:
        return Path(configured).expanduser()
    from platformdirs import user_data_path

    return user_data_path("semsearch") / "default"

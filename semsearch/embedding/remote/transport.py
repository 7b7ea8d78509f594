"""The HTTP side of an OpenAI-compatible service, shared by the embedding and rerank clients.

This is the only module that imports openai, and it does so on the first request, so
importing semsearch stays fast. A `Transport` holds the endpoint and its token, paces
requests by the token bucket shared per endpoint (the contract's limit counts embeddings and
reranking alike), retries 429s (after their Retry-After), 5xx and network failures with
backoff, warns of each retry, and turns what failed for good into a named error.
"""

from __future__ import annotations

import email.utils
import errno
import json
import logging
import math
import random
import re
import socket
import threading
import time
import urllib.parse
from collections.abc import Callable
from typing import Any

from ... import config
from ...errors import AuthenticationError, ConfigError, EmbeddingError, ServiceError
from ..base import Usage
from .ratelimit import shared_bucket

log = logging.getLogger(__name__)

DEFAULT_RPS = 5.0
DEFAULT_BURST = 10
DEFAULT_MAX_RETRIES = 8
# Seconds to wait for one answer (SEMSEARCH_TIMEOUT): a batch of 256 long inputs takes the
# service a second or two, so this is a service that has stopped answering.
DEFAULT_TIMEOUT = 30.0
# Retries, at most, when nothing listens at the endpoint (connection refused, no such host)
# or a request got no answer in time: neither is the passing trouble that backoff outlasts,
# and the defaults would otherwise keep a user waiting for minutes without a result.
UNREACHABLE_RETRIES = 2
TIMEOUT_RETRIES = 1
MAX_BACKOFF = 30.0
# A Retry-After beyond this is more likely a misconfigured proxy than a real instruction.
MAX_RETRY_AFTER = 120.0


class Refused:
    """A 4xx answer other than 401/403/429, with the service's reason (token removed), for
    the caller to interpret (400/413: too big? 404: which model?)."""

    __slots__ = ("status", "reason")

    def __init__(self, status: int, reason: str = "") -> None:
        self.status = status
        self.reason = reason

    @property
    def about_size(self) -> bool:
        """Whether the refusal is about the request's size: a 413, or a reason that says so.
        Any other 400 (a bad model id at a gateway, a malformed input) is not split: cutting
        the request smaller cannot help, and would send thousands of requests."""
        return self.status == 413 or bool(_ABOUT_SIZE.search(self.reason))

    def explained(self) -> str:
        return f"HTTP {self.status}: {self.reason}" if self.reason else f"HTTP {self.status}"


_ABOUT_SIZE = re.compile(
    r"too (long|large|big|many)|exceed|maximum|\bmax\b|max[ _-]?(tokens|length|input|batch|context)"
    r"|context (length|window)|token limit|at most \d|length|payload",
    re.IGNORECASE,
)


class Stopped(Exception):
    """Another request of the same call failed (or time ran out), so this one gives up quietly."""


class _Secret:
    """Holds the API token so that no repr, debugger or locals dump shows it."""

    __slots__ = ("value",)

    def __init__(self, value: str | None) -> None:
        self.value = value

    def __repr__(self) -> str:
        return "<secret>" if self.value else "<none>"


class Transport:
    """Requests to one OpenAI-compatible endpoint: paced, retried, counted in `usage`.

    Args:
        service: what the endpoint is to its caller, for messages ("embedding service").
        base_url, api_key: the endpoint and token; default from the settings (see
            `config.remote_endpoint`).
        rps, burst: the contract's rate limit; default `SEMSEARCH_RPS`/`SEMSEARCH_BURST`,
            else 5 and 10. Shared by everything in the process using this base URL.
        max_retries: retries per request; default `SEMSEARCH_MAX_RETRIES`, else 8.
        timeout: seconds to wait for one answer; default `SEMSEARCH_TIMEOUT`, else 30.
        backoff: first retry delay in seconds; doubles per attempt, with full jitter.
    """

    def __init__(
        self,
        service: str,
        *,
        base_url: str | None = None,
        api_key: str | None = None,
        rps: float | None = None,
        burst: int | None = None,
        max_retries: int | None = None,
        timeout: float | None = None,
        backoff: float = 0.5,
    ) -> None:
        self.service = service
        endpoint = config.remote_endpoint(base_url, api_key)
        self.base_url = endpoint.url
        # For people: the host and where the token came from, never the token.
        self.endpoint = endpoint.describe()
        parts = urllib.parse.urlsplit(self.base_url)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise ConfigError(
                f"The endpoint {self.base_url!r} is not an http(s) URL: set SEMSEARCH_BASE_URL to "
                f"one such as {config.DEFAULT_BASE_URL}."
            )
        self.host = parts.netloc
        token = endpoint.token
        if token and not (token.isascii() and token.isprintable() and " " not in token):
            raise ConfigError(
                f"The API token holds spaces or characters no HTTP header can carry: check {config.TOKEN_VARIABLE}."
            )
        self._api_key = _Secret(token)
        self.rps = float(rps) if rps is not None else config.float_setting("SEMSEARCH_RPS", DEFAULT_RPS)
        self.burst = int(burst if burst is not None else config.float_setting("SEMSEARCH_BURST", DEFAULT_BURST))
        self.max_retries = (
            config.int_setting("SEMSEARCH_MAX_RETRIES", DEFAULT_MAX_RETRIES) if max_retries is None else max_retries
        )
        if timeout is None:
            timeout = config.float_setting(
                "SEMSEARCH_TIMEOUT", DEFAULT_TIMEOUT, meaning="the seconds to wait for one answer from the service"
            )
        self.timeout = timeout
        self.backoff = backoff
        for name, value, lowest in [("rps", self.rps, 0), ("timeout", timeout, 0), ("burst", self.burst, 1)]:
            if not (lowest <= value < math.inf) or value <= 0:  # nan fails too
                raise ConfigError(f"{name} must be {'at least 1' if lowest else 'greater than zero'}, not {value}.")
        if self.max_retries < 0 or backoff < 0:
            raise ConfigError("max_retries and backoff cannot be negative.")
        # One token short of the contract's burst: at full speed both buckets run empty, and a
        # request that travels a few ms faster than the one before it would reach the service
        # before its token does (a 429, and a second's pause). The spare token absorbs up to
        # 1/rps of such jitter and costs nothing at steady state.
        self._bucket: Any = shared_bucket(self.base_url, self.rps, max(self.burst - 1, 1))
        # (contract key, requests a second, burst), for a storage backend that shares the
        # contract's pace between machines (see `pace_with`).
        self.rate_limit = (self.base_url, self.rps, float(max(self.burst - 1, 1)))
        self.usage = Usage()
        self.lock = threading.Lock()
        self._client: Any = None

    def __repr__(self) -> str:
        return f"Transport({self.service!r}, base_url={self.base_url!r})"

    @property
    def has_token(self) -> bool:
        return bool(self._api_key.value)

    def pace_with(self, bucket: Any) -> Any:
        """Pace requests by `bucket` (with `acquire(stop)` and `pause(seconds)`) from now on;
        returns the bucket it replaces, to put back afterwards."""
        with self.lock:
            previous, self._bucket = self._bucket, bucket
        return previous

    def count(self, **deltas: float) -> None:
        """Add to `usage` (requests, inputs, tokens, ...), safely from any thread."""
        with self.lock:
            for name, delta in deltas.items():
                setattr(self.usage, name, getattr(self.usage, name) + delta)

    def client(self, model: str) -> Any:
        """The openai client for this endpoint, made on first use (AuthenticationError without a token)."""
        with self.lock:
            if self._client is None:
                if not self._api_key.value:
                    raise AuthenticationError(
                        f"No API token is set for {self.base_url}, which model {model} needs.",
                        hint=f"Set {config.TOKEN_VARIABLE} in the environment or in a .env file in the current directory.",
                        code="no_token", model=model,
                    )
                import openai

                # max_retries=0: retries happen here, so they are counted and paced.
                self._client = openai.OpenAI(
                    api_key=self._api_key.value, base_url=self.base_url, max_retries=0, timeout=self.timeout
                )
            return self._client

    def model_ids(self, model: str) -> list[str]:
        """The ids of the models the endpoint serves (`GET /models`); `model` is the one a
        missing token is reported for."""
        outcome = self.send(lambda client: client.models.with_raw_response.list(), None, model=model, what="model list request")
        if isinstance(outcome, Refused):
            hint = "; check SEMSEARCH_BASE_URL" if outcome.status == 404 else ""
            raise EmbeddingError(f"{self.base_url} did not list its models (HTTP {outcome.status}){hint}.")
        payload = json_or_none(outcome.http_response.content)
        data = payload.get("data") if isinstance(payload, dict) else None
        if not isinstance(data, list):
            raise ServiceError(f"{self.base_url} answered the model list with something that is not one.")
        return [item["id"] for item in data if isinstance(item, dict) and isinstance(item.get("id"), str)]

    def post(self, path: str, body: dict[str, Any], *, model: str, what: str, deadline: float | None = None) -> Any:
        """POST `body` as JSON to `path` under the base URL: the parsed JSON answer (None if it
        is not JSON) or a `Refused`. With `deadline` (a `time.monotonic()` value), no attempt
        waits past it and none starts once it has passed (ServiceError "over_time")."""
        outcome = self.send(posting(path, body), None, model=model, what=what, deadline=deadline)
        return outcome if isinstance(outcome, Refused) else json_or_none(outcome)

    def send(
        self,
        call: Callable[..., Any],
        stop: threading.Event | None,
        *,
        model: str,
        what: str,
        encoding_sensitive: bool = False,
        deadline: float | None = None,
    ) -> Any:
        """Make one API call, paced and retried: what the call returns, a `Refused`, or "encoding"
        (when `encoding_sensitive` and the endpoint objected to the encoding format). Each
        retry is logged as a warning, naming `what` was sent, why and how long it waits.
        With `deadline`, `call` is given the seconds left as its second argument.

        The named errors are raised outside any `except`, so no openai exception (whose
        request carries the Authorization header) is chained to them.
        """
        import openai

        client = self.client(model)
        attempt = 0
        while True:
            if not self._bucket.acquire(stop):
                raise Stopped()
            left = None if deadline is None else deadline - time.monotonic()
            if left is not None and left <= 0:
                raise self._over_time(model, attempt)
            status = problem = retry_after = None
            about_encoding = False
            body = ""
            try:
                response = call(client) if left is None else call(client, min(self.timeout, left))
            except openai.APIStatusError as exc:
                status = exc.status_code
                retry_after = _retry_after(exc.response.headers.get("retry-after"))
                body = exc.response.text
                if encoding_sensitive and status in (400, 422):
                    text = body.lower()
                    about_encoding = "encoding_format" in text or "base64" in text
            except openai.APITimeoutError:
                problem = "timeout"
            except openai.APIConnectionError as exc:
                problem = _unreachable(exc) or "connection"
            else:
                self.count(requests=1)
                return response
            self.count(requests=1, rate_limited=int(status == 429))
            if about_encoding:
                return "encoding"
            if status in (401, 403):
                raise AuthenticationError(
                    f"{self.base_url} rejected the API token (HTTP {status}): it is missing or wrong. "
                    f"Set {config.TOKEN_VARIABLE} (in the environment or in .env) to a valid token.",
                    endpoint=self.base_url,
                )
            if status is not None and status < 500 and status not in (408, 429):
                return Refused(status, _reason(body, self._api_key.value))
            if problem == "timeout" and left is not None and left < self.timeout:
                raise self._over_time(model, attempt + 1, "no answer before the time ran out")
            retries = self.max_retries
            if problem == "timeout":
                retries = min(retries, TIMEOUT_RETRIES)
            elif problem in _UNREACHABLE:
                retries = min(retries, UNREACHABLE_RETRIES)
            if attempt >= retries:
                raise self._gave_up(model, status, problem, attempt + 1)
            attempt += 1
            self.count(retries=1)
            if retry_after is None:
                retry_after = random.uniform(0, min(MAX_BACKOFF, self.backoff * 2 ** (attempt - 1)))
            if deadline is not None and time.monotonic() + retry_after >= deadline:
                raise self._over_time(model, attempt, self._why(status, problem))
            log.warning(
                "%s%s to %s failed (%s); retry %d of %d in %.1f s",
                what[:1].upper(), what[1:], self.host, self._why(status, problem), attempt, retries, retry_after,
            )
            if status == 429:
                # The limit is per contract: every thread must hold off, not just this one.
                self._bucket.pause(retry_after)
            elif stop is not None and stop.wait(retry_after):
                raise Stopped()
            elif stop is None:
                time.sleep(retry_after)

    def _why(self, status: int | None, problem: str | None) -> str:
        if status == 429:
            return "HTTP 429, over the rate limit"
        if status is not None:
            return f"HTTP {status}"
        if problem == "timeout":
            return f"no answer within {self.timeout:g} s"
        return _UNREACHABLE.get(problem or "", "the connection closed without an answer")

    def _over_time(self, model: str, attempts: int, why: str | None = None) -> ServiceError:
        last = f"; the last: {why}" if why else ""
        return ServiceError(
            f"The {self.service} at {self.base_url} gave no answer in the time allowed for model {model} "
            f"({attempts} attempt{'s' if attempts != 1 else ''}{last}).",
            code="over_time", model=model, endpoint=self.base_url, attempts=attempts,
        )

    def _gave_up(self, model: str, status: int | None, problem: str | None, attempts: int) -> ServiceError:
        facts: dict[str, Any] = {"model": model, "endpoint": self.base_url, "attempts": attempts}
        if problem in _UNREACHABLE:
            return ServiceError(
                f"Could not connect to the {self.service} at {self.base_url} ({attempts} attempts: "
                f"{_UNREACHABLE[problem or '']}).",
                hint="Check SEMSEARCH_BASE_URL and the network.",
                code="service_unreachable", **facts,
            )
        if problem == "timeout":
            return ServiceError(
                f"The {self.service} at {self.base_url} did not answer within {self.timeout:g} s for model "
                f"{model} ({attempts} attempts).",
                hint="SEMSEARCH_TIMEOUT sets how many seconds to wait.",
                code="service_timeout", **facts,
            )
        if problem == "connection":
            what = "closed the connection without answering"
        elif status == 429:
            what = "kept refusing requests over the rate limit (HTTP 429; a lower SEMSEARCH_RPS may help)"
        else:
            what = f"kept failing (HTTP {status})"
        return ServiceError(f"The {self.service} at {self.base_url} {what} for model {model} ({attempts} attempts).", **facts)


# Why a connection could not be made, by kind: nothing at the endpoint to retry soon.
_UNREACHABLE = {
    "refused": "connection refused",
    "no_host": "no such host",
    "no_route": "network unreachable",
}


def _unreachable(error: BaseException) -> str | None:
    """The kind of failure to connect behind an openai connection error (see _UNREACHABLE),
    or None for one that did connect (a connection dropped mid-answer)."""
    seen: set[int] = set()
    cause: BaseException | None = error
    while cause is not None and id(cause) not in seen:
        seen.add(id(cause))
        if isinstance(cause, ConnectionRefusedError):
            return "refused"
        if isinstance(cause, socket.gaierror):
            return "no_host"
        if isinstance(cause, OSError) and cause.errno in (errno.ENETUNREACH, errno.EHOSTUNREACH):
            return "no_route"
        cause = cause.__cause__ or cause.__context__
    return None


def _reason(body: str, secret: str | None) -> str:
    """The service's own words from an error body (its `error.message`, `detail` or
    `message`, else the text), short, with the API token and any bearer credential removed."""
    payload = json_or_none(body.encode())
    text = body
    if isinstance(payload, dict):
        found = payload.get("error")
        found = found.get("message") if isinstance(found, dict) else found
        found = found or payload.get("detail") or payload.get("message")
        if isinstance(found, str):
            text = found
    if secret:
        text = text.replace(secret, "***")
    text = re.sub(r"(?i)bearer\s+\S+", "Bearer ***", " ".join(text.split()))
    return text if len(text) <= 300 else text[:297] + "..."


def _retry_after(value: str | None) -> float | None:
    """Seconds from a Retry-After header (seconds or an HTTP date), capped; None if absent or bad."""
    if not value:
        return None
    try:
        seconds = float(value)
    except ValueError:
        try:
            seconds = email.utils.parsedate_to_datetime(value).timestamp() - time.time()
        except (TypeError, ValueError):
            return None
    if math.isnan(seconds):
        return None
    return min(max(seconds, 0.0), MAX_RETRY_AFTER)


def posting(path: str, body: dict[str, Any]) -> Callable[..., bytes]:
    """A call for `Transport.send` that POSTs `body` as JSON to `path` and gives the answer's
    bytes. The client's low-level post: its typed methods (`embeddings.create`) first walk
    every input through a type-driven transform, which holds the interpreter longer than the
    request does (4 ms a batch of 256 inputs)."""

    def call(client: Any, timeout: float | None = None) -> bytes:
        options = {} if timeout is None else {"timeout": timeout}
        return client.post(path, body=body, cast_to=bytes, options=options)

    return call


def json_or_none(body: bytes) -> Any:
    try:
        return json.loads(body)
    except ValueError:
        return None

"""One JSON POST delivered with retries, and secrets kept out of every trace.

Retry rules (the same for alert webhooks and the GitHub API):

- 2xx: delivered.
- 5xx, a connection that could not be opened, a body that could not be sent
  whole, or a connection the receiver closed without answering: retried up to
  ``retries`` times with exponential backoff (``backoff``, ``2 × backoff``, …
  capped at ``MAX_BACKOFF_SECONDS``). In each of these cases the receiver has
  either never seen the request or has finished with it (it answered, or it
  hung up), so a resend cannot overlap a delivery still being processed.
- no answer within ``timeout`` once the request was sent (a read timeout): the
  receiver got the request and may still be processing it. With
  ``resend_unanswered=False`` (alerts) the outcome is *unconfirmed* and nothing
  is resent now — resending is what gave a slow receiver four copies of one
  alert; the caller decides when a resend is safe. With ``True`` (the GitHub
  dispatch) it is retried like a 5xx.
- 429: the receiver's ``Retry-After`` (seconds or an HTTP date) is honoured
  when it is at most ``max_retry_after`` seconds; a longer wait is not spent
  here — the delivery fails and the caller keeps it for later.
- any other 4xx: permanent, not retried (the request itself is wrong).

So one call makes at most ``retries + 1`` requests and waits at most
``retries × max(MAX_BACKOFF_SECONDS, max_retry_after)`` between them.

Webhook URLs are secrets (a Slack URL is its own credential), so this module
never puts a URL in a result, an error or a log line: error texts are redacted
and a logging filter scrubs the records httpx itself writes while a request
is in flight.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from typing import Any

import httpx

BACKOFF_SECONDS = 0.5
MAX_BACKOFF_SECONDS = 30.0
MAX_RETRY_AFTER_SECONDS = 60.0
REDACTED = "<redacted>"
_HTTP_LOGGERS = ("httpx", "httpcore")


@dataclass(frozen=True)
class PostOutcome:
    """How one delivery went: never holds the URL."""

    ok: bool
    status: int | None
    attempts: int
    error: str | None = None
    waited_seconds: tuple[float, ...] = ()
    retry_after: float | None = None  # the last Retry-After the receiver asked for
    unconfirmed: bool = False  # the last request was sent but never answered (it may have arrived)


def redact(text: str, secrets: Sequence[str]) -> str:
    """``text`` with every secret (and its URL path, when it is a URL) replaced."""
    for secret in secrets:
        if not secret:
            continue
        text = text.replace(secret, REDACTED)
        try:
            path = httpx.URL(secret).raw_path.decode("ascii", "replace")
        except (httpx.InvalidURL, TypeError, ValueError):
            continue
        if len(path) > 1:
            text = text.replace(path, REDACTED)
    return text


class _RedactFilter(logging.Filter):
    """Scrubs secrets from the records of the HTTP libraries' loggers."""

    def __init__(self, secrets: Sequence[str]) -> None:
        super().__init__()
        self.secrets = secrets

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        cleaned = redact(message, self.secrets)
        if cleaned != message:
            record.msg = cleaned
            record.args = ()
        return True


@contextmanager
def redacted_logs(secrets: Sequence[str]) -> Iterator[None]:
    """While inside, httpx/httpcore log records never show ``secrets``."""
    flt = _RedactFilter(secrets)
    loggers = [logging.getLogger(name) for name in _HTTP_LOGGERS]
    for logger in loggers:
        logger.addFilter(flt)
    try:
        yield
    finally:
        for logger in loggers:
            logger.removeFilter(flt)


def parse_retry_after(value: str | None, now: datetime | None = None) -> float | None:
    """Seconds to wait from a ``Retry-After`` header (delta-seconds or HTTP date)."""
    if value is None or not value.strip():
        return None
    value = value.strip()
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        when = parsedate_to_datetime(value)
    except (TypeError, ValueError, IndexError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return max(0.0, (when - (now or datetime.now(UTC))).total_seconds())


def post_json(
    url: str,
    payload: Mapping[str, Any],
    *,
    retries: int,
    timeout: float,
    headers: Mapping[str, str] | None = None,
    secrets: Sequence[str] = (),
    backoff: float = BACKOFF_SECONDS,
    max_retry_after: float = MAX_RETRY_AFTER_SECONDS,
    resend_unanswered: bool = True,
) -> PostOutcome:
    """POST ``payload`` as JSON to ``url`` following the module's retry rules."""
    hidden = [url, *secrets]
    waits: list[float] = []
    status: int | None = None
    error: str | None = None
    retry_after: float | None = None
    attempts = 0
    with redacted_logs(hidden), httpx.Client(timeout=timeout, follow_redirects=False) as client:
        while True:
            attempts += 1
            wait: float | None = None
            try:
                response = client.post(url, json=dict(payload), headers=dict(headers or {}))
            except httpx.ReadTimeout:
                status, error = (
                    None,
                    f"no answer within {timeout:g} s (the receiver may still be processing it)",
                )
                if not resend_unanswered:
                    return PostOutcome(
                        False, None, attempts, error, tuple(waits), retry_after, unconfirmed=True
                    )
            except httpx.TimeoutException as exc:  # connect, write or pool: the request never arrived whole
                status, error = None, f"timed out after {timeout:g} s ({type(exc).__name__})"
            except httpx.TransportError as exc:
                status, error = None, redact(f"{type(exc).__name__}: {exc}", hidden)
            else:
                status = response.status_code
                if response.is_success:
                    return PostOutcome(True, status, attempts, None, tuple(waits), retry_after)
                error = f"HTTP {status}"
                if status == 429:
                    retry_after = parse_retry_after(response.headers.get("retry-after"))
                    if retry_after is not None and retry_after > max_retry_after:
                        error = f"HTTP 429, Retry-After {retry_after:g} s exceeds {max_retry_after:g} s"
                        break
                    wait = retry_after
                elif status < 500:
                    break  # the request itself is wrong: retrying cannot help
            if attempts > retries:
                break
            if wait is None:
                wait = min(MAX_BACKOFF_SECONDS, backoff * 2 ** (attempts - 1))
            waits.append(wait)
            time.sleep(wait)
    return PostOutcome(False, status, attempts, error, tuple(waits), retry_after)

"""POST JSON with retries: exponential backoff plus jitter on 429, 5xx, dropped connections and time-outs.

Standard library only (urllib): the client makes one blocking request per worker thread, which is all
the concurrency a sampling job needs, and it keeps the base install free of an HTTP dependency.
"""

from __future__ import annotations

import http.client
import json
import logging
import random
import time
import urllib.error
import urllib.request
from collections.abc import Iterable
from dataclasses import dataclass

logger = logging.getLogger(__name__)

# 408 request time-out and 409 conflict are transient by definition; 429 and 5xx are the server asking
# us to come back later.
RETRYABLE_STATUS = frozenset({408, 409, 429})


class RequestFailed(RuntimeError):
    """A request failed for good. `status` is the last HTTP status (None for connection errors)."""

    def __init__(self, message: str, status: int | None, attempts: int):
        super().__init__(message)
        self.status = status
        self.attempts = attempts


@dataclass(frozen=True)
class RetryPolicy:
    """How hard to try.

    Args:
        max_retries: retries after the first attempt (so at most max_retries + 1 requests).
        backoff_base_s: wait before retry k is about base * 2**k, with jitter, capped at backoff_max_s.
        backoff_max_s: longest single wait (also caps a server's Retry-After).
        timeout_s: socket time-out of one attempt.
    """

    max_retries: int = 5
    backoff_base_s: float = 0.5
    backoff_max_s: float = 30.0
    timeout_s: float = 120.0

    def delay_s(self, retry_index: int, rng: random.Random, retry_after_s: float | None = None) -> float:
        """Wait before retry `retry_index` (0-based): half fixed, half random, so clients spread out."""
        ceiling = min(self.backoff_max_s, self.backoff_base_s * (2**retry_index))
        wait = ceiling / 2 + rng.uniform(0, ceiling / 2)
        if retry_after_s is not None:
            wait = max(wait, min(retry_after_s, self.backoff_max_s))
        return wait


def post_json(
    url: str,
    payload: dict,
    headers: dict[str, str],
    policy: RetryPolicy,
    rng: random.Random,
    redact: Iterable[str] = (),
) -> dict:
    """POST `payload` as JSON and return the decoded JSON answer, retrying transient failures.

    Args:
        redact: strings (API keys) replaced by '***' in any error message or log line, in case a server
            echoes a header back in its error body.
    Raises:
        RequestFailed: on a non-retryable status, or when the last retry failed too.
    """
    data = json.dumps(payload).encode()
    secrets = [s for s in redact if s]
    for attempt in range(policy.max_retries + 1):
        request = urllib.request.Request(url, data=data, method="POST",
                                         headers={"Content-Type": "application/json", **headers})
        retry_after = None
        try:
            with urllib.request.urlopen(request, timeout=policy.timeout_s) as response:
                return json.loads(response.read())
        except urllib.error.HTTPError as err:
            status, reason = err.code, f"HTTP {err.code}: {_error_message(err)}"
            retry_after = _retry_after_s(err.headers.get("Retry-After"))
            if status not in RETRYABLE_STATUS and status < 500:
                raise RequestFailed(_scrub(f"POST {url} failed: {reason}", secrets), status, attempt + 1) from None
        except (urllib.error.URLError, http.client.HTTPException, ConnectionError, TimeoutError) as err:
            status, reason = None, f"{type(err).__name__}: {getattr(err, 'reason', err)}"
        if attempt == policy.max_retries:
            message = f"POST {url} failed after {attempt + 1} attempts; last error: {reason}"
            raise RequestFailed(_scrub(message, secrets), status, attempt + 1) from None
        wait = policy.delay_s(attempt, rng, retry_after)
        logger.warning(_scrub(f"POST {url}: {reason}; retry {attempt + 1}/{policy.max_retries} in {wait:.2f}s",
                              secrets))
        time.sleep(wait)
    raise AssertionError("unreachable: the loop returns or raises")


def _error_message(err: urllib.error.HTTPError) -> str:
    """The server's own error text (OpenAI shape {"error": {"message"}}), else the raw body, shortened."""
    try:
        raw = err.read().decode(errors="replace")
    except (OSError, http.client.HTTPException):
        return err.reason or ""
    try:
        return str(json.loads(raw)["error"]["message"])[:500]
    except (ValueError, KeyError, TypeError):
        return raw[:500]


def _retry_after_s(value: str | None) -> float | None:
    try:
        return float(value) if value is not None else None
    except ValueError:  # an HTTP date; rare enough that the computed backoff is used instead
        return None


def _scrub(text: str, secrets: list[str]) -> str:
    for secret in secrets:
        text = text.replace(secret, "***")
    return text

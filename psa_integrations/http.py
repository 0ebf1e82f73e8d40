"""HTTP calls to a vendor API with the retry rules every PSA client shares.

Reads are retried on throttling (honouring Retry-After), 5xx and timeouts, with exponential
backoff and jitter. Writes are retried only when the vendor certainly did not apply them
(429 and connection failures before a response); a 5xx or a timeout on a write is surfaced as
a TransientError so the whole idempotent pipeline step runs again and checks before it writes."""

from __future__ import annotations

import asyncio
import logging
import random
from typing import Any

import httpx

from tierone.errors import PermanentError, TransientError

log = logging.getLogger("tierone.psa.http")

READ_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})
MAX_RETRY_AFTER_SECONDS = 30.0


def retry_after_seconds(response: httpx.Response) -> float | None:
    value = response.headers.get("Retry-After")
    if value is None:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        return None


def backoff_delay(attempt: int, base: float = 0.5, cap: float = 8.0) -> float:
    return float(min(cap, base * 2**attempt) * (0.5 + random.random() / 2))


async def send(
    client: httpx.AsyncClient,
    method: str,
    url: str,
    *,
    vendor: str,
    attempts: int = 4,
    **kwargs: Any,
) -> httpx.Response:
    """Send a request; return a 2xx response or raise TransientError / PermanentError."""
    is_read = method.upper() in READ_METHODS
    last_problem = ""
    for attempt in range(attempts):
        try:
            response = await client.request(method, url, **kwargs)
        except httpx.ConnectError as exc:
            # Nothing reached the vendor: safe to retry even a write.
            last_problem = f"connection failed ({type(exc).__name__})"
            await asyncio.sleep(backoff_delay(attempt))
            continue
        except httpx.TransportError as exc:
            # A timeout or a connection dropped mid-exchange: the vendor may have acted on a write.
            last_problem = f"connection broke ({type(exc).__name__})"
            if not is_read:
                raise TransientError(f"{vendor} {method} {last_problem}") from exc
            await asyncio.sleep(backoff_delay(attempt))
            continue
        status = response.status_code
        if status < 300:
            return response
        if status == 429:
            wait = retry_after_seconds(response)
            last_problem = "throttled (429)"
            if wait is not None and wait > MAX_RETRY_AFTER_SECONDS:
                raise TransientError(f"{vendor} throttled", retry_after=wait)
            log.info("%s throttled, waiting %.1fs", vendor, wait if wait is not None else 0)
            await asyncio.sleep(wait if wait is not None else backoff_delay(attempt))
            continue
        if status >= 500:
            last_problem = f"answered {status}"
            if not is_read:
                raise TransientError(f"{vendor} {method} answered {status}")
            await asyncio.sleep(backoff_delay(attempt))
            continue
        raise PermanentError(f"{vendor} {method} {_path(url)} answered {status}: {error_message(response)}")
    raise TransientError(f"{vendor} {method} {_path(url)}: {last_problem} after {attempts} attempts")


def _path(url: str) -> str:
    return httpx.URL(url).path if "://" in url else url.split("?")[0]


def error_message(response: httpx.Response) -> str:
    """The vendor's own error text, bounded: it goes into internal notes and logs."""
    try:
        body = response.json()
    except ValueError:
        return response.text[:300]
    if isinstance(body, dict):
        parts = [str(body.get(k)) for k in ("code", "message", "error") if body.get(k)]
        for err in body.get("errors") or []:
            if isinstance(err, dict) and err.get("message"):
                parts.append(str(err["message"]))
        if parts:
            return "; ".join(parts)[:300]
    return str(body)[:300]

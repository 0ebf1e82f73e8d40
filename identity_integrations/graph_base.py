"""The Graph client's shared plumbing: error mapping, and writes that are never retried blindly.

msgraph-sdk's retry middleware repeats POST/PATCH/DELETE on 429/503/504. A write that may have
been applied must be read back before it is tried again, so writes go out with retries switched
off; a throttled or failed write surfaces as a TransientError, and the playbook's action ledger
checks the current state before the next attempt."""

from __future__ import annotations

import json
import logging
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

import httpx

from identity_integrations.models import WriteReceipt
from tierone.errors import PermanentError, TransientError

log = logging.getLogger("tierone.graph")

T = TypeVar("T")


class GraphError(PermanentError):
    """Graph refused the request for a reason retrying cannot change (a 4xx other than 429)."""

    def __init__(self, what: str, status: int, code: str | None, message: str) -> None:
        super().__init__(f"Graph {what}: {status} {code}: {message}")
        self.status = status
        self.code = code or ""
        self.message = message

    def mentions(self, *fragments: str) -> bool:
        text = self.message.lower()
        return any(fragment.lower() in text for fragment in fragments)


def raise_for(what: str, status: int, code: str | None, message: str, retry_after: float | None = None) -> None:
    if status == 429 or status >= 500:
        raise TransientError(f"Graph {what}: {status} {code}", retry_after=retry_after)
    raise GraphError(what, status, code, message)


def odata_literal(value: str) -> str:
    """A string literal for $filter: single quotes doubled, so input cannot close the literal."""
    return "'" + value.replace("'", "''") + "'"


def directory_object_url(object_id: str) -> str:
    return f"https://graph.microsoft.com/v1.0/directoryObjects/{object_id}"


class GraphBase:
    """What every group of Graph operations needs: the SDK client and the error mapping."""

    tenant_id: str
    _client: Any

    async def _call(self, what: str, call: Callable[[], Awaitable[T]]) -> T:
        """A read (the SDK may retry it): map SDK and identity errors to TransientError / PermanentError."""
        from azure.core.exceptions import ClientAuthenticationError, ServiceRequestError
        from msgraph.generated.models.o_data_errors.o_data_error import ODataError

        try:
            return await call()
        except ODataError as exc:
            status = exc.response_status_code or 0
            code = exc.error.code if exc.error else None
            message = (exc.error.message if exc.error else None) or str(exc)
            raise_for(what, status, code, message)
            raise  # unreachable: raise_for always raises
        except ClientAuthenticationError as exc:
            first_line = (exc.message or "").splitlines()[0] if exc.message else type(exc).__name__
            raise PermanentError(f"cannot sign in to tenant {self.tenant_id}: {first_line}") from exc
        except ServiceRequestError as exc:
            raise TransientError(f"Graph {what}: {type(exc).__name__}") from exc
        except httpx.TransportError as exc:
            # A timeout or a connection dropped mid-exchange; a write's ledger entry makes the retry check first.
            raise TransientError(f"Graph {what}: connection broke ({type(exc).__name__})") from exc

    @staticmethod
    def _write_config() -> Any:
        """Request options for a write: the raw response (for its request-id) and no automatic retry."""
        from kiota_abstractions.base_request_configuration import RequestConfiguration
        from kiota_abstractions.native_response_handler import NativeResponseHandler
        from kiota_http.middleware.options import ResponseHandlerOption, RetryHandlerOption

        return RequestConfiguration(
            options=[ResponseHandlerOption(NativeResponseHandler()), RetryHandlerOption(max_retries=0)]
        )

    async def _write(self, what: str, call: Callable[[Any], Awaitable[Any]]) -> WriteReceipt:
        """Send one write with `_write_config`; return its receipt or raise the mapped error."""
        response = await self._call(what, lambda: call(self._write_config()))
        status = int(getattr(response, "status_code", 0))
        headers = getattr(response, "headers", {}) or {}
        request_id = headers.get("request-id")
        body: dict[str, Any] | None = None
        content = getattr(response, "content", b"")
        if content:
            try:
                parsed = json.loads(content)
                body = parsed if isinstance(parsed, dict) else None
            except ValueError:
                body = None
        if status >= 300:
            error = (body or {}).get("error") or {}
            retry_after = headers.get("Retry-After")
            raise_for(
                what,
                status,
                error.get("code"),
                str(error.get("message") or "")[:300],
                float(retry_after) if retry_after and retry_after.isdigit() else None,
            )
        return WriteReceipt(status=status, request_id=request_id, body=body)

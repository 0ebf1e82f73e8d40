"""Webhook reception, PSA by PSA: size and type checks, parse, verify, then intake.

Every outcome is a deliberate status: 202 queued, 200 duplicate or ignored, 400 malformed,
401 forged, 413 too large, 415 wrong type, 503 when we cannot verify right now (not the
sender's fault). Nothing here lets an exception become a 500."""

from __future__ import annotations

import logging
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from tierone.errors import ConfigError
from tierone.settings import Settings

log = logging.getLogger("tierone.webhooks")


@dataclass(frozen=True)
class WebhookReply:
    status: int
    body: dict[str, Any]
    headers: dict[str, str] = field(default_factory=dict)


def _header(headers: Mapping[str, str], name: str) -> str | None:
    lowered = name.lower()
    return next((v for k, v in headers.items() if k.lower() == lowered), None)


def _precheck(raw: bytes | None, headers: Mapping[str, str], settings: Settings) -> WebhookReply | None:
    if raw is None or len(raw) == 0:
        return WebhookReply(400, {"error": "empty body"})
    if len(raw) > settings.max_webhook_bytes:
        return WebhookReply(413, {"error": f"body larger than {settings.max_webhook_bytes} bytes"})
    content_type = (_header(headers, "content-type") or "").split(";")[0].strip().lower()
    if content_type != "application/json":
        return WebhookReply(415, {"error": "content type must be application/json"})
    return None


_cw_verifier: Any = None


def _connectwise_verifier(settings: Settings) -> Any:
    global _cw_verifier
    from psa_integrations.connectwise.webhook import CallbackVerifier

    if _cw_verifier is None:
        settings.require("connectwise_callback_origin")
        assert settings.connectwise_callback_origin is not None
        _cw_verifier = CallbackVerifier(settings.connectwise_callback_origin)
    return _cw_verifier


async def receive_connectwise(raw: bytes | None, headers: Mapping[str, str], settings: Settings) -> WebhookReply:
    from psa_integrations.connectwise import webhook as cw
    from tierone.intake import accept
    from tierone.storage import get_storage

    rejected = _precheck(raw, headers, settings)
    if rejected is not None:
        log.warning("connectwise webhook rejected: %s", rejected.body["error"])
        return rejected
    assert raw is not None
    try:
        envelope = cw.parse_callback(raw)
        await _connectwise_verifier(settings).verify(raw, _header(headers, cw.SIGNATURE_HEADER), envelope)
    except cw.MalformedCallback as exc:
        log.warning("connectwise webhook malformed: %s", exc)
        return WebhookReply(400, {"error": str(exc)})
    except cw.ForgedCallback as exc:
        log.warning("connectwise webhook refused: %s", exc)
        return WebhookReply(401, {"error": "signature verification failed"})
    except cw.KeyServiceUnavailable as exc:
        log.error("connectwise webhook could not be verified now: %s", exc)
        return WebhookReply(503, {"error": "cannot verify the signature right now"}, {"Retry-After": "5"})
    except ConfigError as exc:
        log.error("connectwise webhook: %s", exc)
        return WebhookReply(503, {"error": "ConnectWise is not configured on this deployment"})
    event = cw.to_event(envelope, api_member=settings.connectwise_api_member)
    log.info("connectwise callback verified: %s", cw.describe(envelope))
    try:
        outcome = await accept(event, get_storage())
    except Exception:
        # Storage is unreachable: say so, so the sender (or reconciliation) tries again.
        log.exception("connectwise delivery %s could not be recorded", envelope.message_id)
        return WebhookReply(503, {"error": "temporarily unable to accept deliveries"}, {"Retry-After": "5"})
    status = 202 if outcome.value == "queued" else 200
    return WebhookReply(status, {"status": outcome.value, "ticket": event.ticket_id})

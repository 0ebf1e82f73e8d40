"""Webhook reception for every PSA: size and type checks, verification, then intake.

Every outcome is a deliberate status: 202 queued, 200 duplicate or ignored, 400 malformed,
401 forged, 413 too large, 415 wrong type, 503 when we cannot verify or record right now (not
the sender's fault). Nothing here lets an exception become a 500."""

from __future__ import annotations

import logging
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from psa_integrations.base import header
from psa_integrations.models import PsaKind
from tierone.errors import ConfigError
from tierone.settings import Settings

log = logging.getLogger("tierone.webhooks")


@dataclass(frozen=True)
class WebhookReply:
    status: int
    body: dict[str, Any]
    headers: dict[str, str] = field(default_factory=dict)


def _precheck(raw: bytes | None, headers: Mapping[str, str], settings: Settings) -> WebhookReply | None:
    if raw is None or len(raw) == 0:
        return WebhookReply(400, {"error": "empty body"})
    if len(raw) > settings.max_webhook_bytes:
        return WebhookReply(413, {"error": f"body larger than {settings.max_webhook_bytes} bytes"})
    content_type = (header(headers, "content-type") or "").split(";")[0].strip().lower()
    if content_type != "application/json":
        return WebhookReply(415, {"error": "content type must be application/json"})
    return None


async def receive(kind: PsaKind, raw: bytes | None, headers: Mapping[str, str], settings: Settings) -> WebhookReply:
    from psa_integrations.errors import ForgedWebhook, MalformedWebhook, VerificationUnavailable
    from psa_integrations.registry import webhook_verifier
    from tierone.intake import accept
    from tierone.storage import get_storage

    rejected = _precheck(raw, headers, settings)
    if rejected is not None:
        log.warning("%s webhook rejected: %s", kind.value, rejected.body["error"])
        return rejected
    assert raw is not None
    try:
        event = await webhook_verifier(kind, settings).verify(raw, headers)
    except MalformedWebhook as exc:
        log.warning("%s webhook malformed: %s", kind.value, exc)
        return WebhookReply(400, {"error": str(exc)})
    except ForgedWebhook as exc:
        log.warning("%s webhook refused: %s", kind.value, exc)
        return WebhookReply(401, {"error": "authentication failed"})
    except VerificationUnavailable as exc:
        log.error("%s webhook could not be verified now: %s", kind.value, exc)
        return WebhookReply(503, {"error": "cannot verify the delivery right now"}, {"Retry-After": "5"})
    except ConfigError as exc:
        log.error("%s webhook: %s", kind.value, exc)
        return WebhookReply(503, {"error": f"{kind.value} is not configured on this deployment"})
    try:
        outcome = await accept(event, get_storage())
    except Exception:
        # Storage is unreachable: say so, so the sender (or reconciliation) tries again.
        log.exception("%s delivery %s could not be recorded", kind.value, event.delivery_id)
        return WebhookReply(503, {"error": "temporarily unable to accept deliveries"}, {"Retry-After": "5"})
    status = 202 if outcome.value == "queued" else 200
    return WebhookReply(status, {"status": outcome.value, "ticket": event.ticket_id})

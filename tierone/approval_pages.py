"""The approval page (GET shows, POST decides) and the Slack interactivity endpoint.

Who is asking: in Azure, App Service Authentication signs the approver in (Entra ID) before the
request reaches us and passes the principal in X-MS-CLIENT-PRINCIPAL (base64 JSON of claims); the
platform strips such headers from client requests, so they are trusted. In the sandbox a test or
the demo sets the same header to simulate a signed-in user.

GET never changes anything (mail and chat scanners fetch links). The form's CSRF token is an HMAC
of (approval id, principal oid) under a key derived from TIERONE_SECRET_ENCRYPTION_KEY: stateless,
bound to both the request and the person, and useless to anyone else — a cross-site POST cannot
produce it, and a token leaked from one approver's page does not work for another person's session."""

from __future__ import annotations

import base64
import binascii
import html
import json
import logging
import re
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import parse_qs, quote

from tierone.approvals import (
    Actor,
    AlreadyDecided,
    ApprovalRefused,
    ApprovalRequest,
    Approvals,
    ApprovalState,
    approvals_from,
)
from tierone.pages import DECISION_STYLE, Page, form_token, form_token_valid, layout, message
from tierone.settings import Settings

log = logging.getLogger("tierone.approval_pages")

# Called once a decision is taken here (the worker resumes the parked ticket).
OnDecided = Callable[[ApprovalRequest], Awaitable[object]]

_ID = re.compile(r"^[A-Za-z0-9_-]{16,64}$")
OID_CLAIMS = ("http://schemas.microsoft.com/identity/claims/objectidentifier", "oid")
UPN_CLAIMS = ("preferred_username", "http://schemas.xmlsoap.org/ws/2005/05/identity/claims/upn", "upn", "name")


@dataclass(frozen=True)
class SlackReply:
    status: int
    body: dict[str, Any]


# --- who is asking


def principal_from(headers: Mapping[str, str]) -> Actor | None:
    """The signed-in Entra user from App Service Authentication's headers, or None."""
    h = {k.lower(): v for k, v in headers.items()}
    raw = h.get("x-ms-client-principal")
    claims: dict[str, str] = {}
    if raw:
        try:
            decoded = json.loads(base64.b64decode(raw + "=" * (-len(raw) % 4)))
            for claim in decoded.get("claims") or []:
                claims.setdefault(str(claim.get("typ")), str(claim.get("val")))
        except (ValueError, binascii.Error, AttributeError, TypeError):
            return None
    oid = next((claims[c] for c in OID_CLAIMS if claims.get(c)), None) or h.get("x-ms-client-principal-id")
    if not raw or not oid:
        return None
    upn = next((claims[c] for c in UPN_CLAIMS if claims.get(c)), None) or h.get("x-ms-client-principal-name")
    return Actor(oid=oid, upn=upn)


_CSRF_PURPOSE = b"tierone-approval-csrf-v1"


def csrf_token(settings: Settings, approval_id: str, oid: str) -> str:
    return form_token(settings, _CSRF_PURPOSE, approval_id, oid.lower())


def csrf_valid(settings: Settings, approval_id: str, oid: str, token: str) -> bool:
    return form_token_valid(settings, _CSRF_PURPOSE, token, approval_id, oid.lower())


# --- the page


def _layout(title: str, body: str) -> str:
    return layout(title, body, style=DECISION_STYLE)


def _message(status: int, title: str, text: str) -> Page:
    return message(status, title, text, style=DECISION_STYLE)


def _sign_in(approval_id: str) -> Page:
    target = quote(f"/api/approvals/{approval_id}", safe="")
    return Page(
        401,
        _layout(
            "Sign in to review this request",
            f"<p><a href='/.auth/login/aad?post_login_redirect_uri={target}'>Sign in with your work account</a> "
            "to see and decide this approval request.</p>",
        ),
    )


def _details(a: ApprovalRequest) -> str:
    e = html.escape
    rows = [("Ticket", a.ticket_ref), ("Action", a.intent), *a.facts.items()]
    rows += [("Requested by", a.requester.upn), ("Expires", f"{a.expires_at:%Y-%m-%d %H:%M} UTC")]
    table = "".join(f"<tr><th>{e(k)}</th><td>{e(v)}</td></tr>" for k, v in rows)
    return f"<p><b>{e(a.summary)}</b></p><table>{table}</table>"


def _request_page(a: ApprovalRequest, actor: Actor, settings: Settings) -> Page:
    if a.state is not ApprovalState.PENDING or a.is_expired():
        state = "expired" if a.state is ApprovalState.PENDING else a.state.value
        by = f" by {html.escape(a.decided_by_upn)}" if a.decided_by_upn else ""
        return Page(200, _layout("Approval request", f"{_details(a)}<p>This request is <b>{state}</b>{by}.</p>"))
    assert actor.oid is not None
    token = html.escape(csrf_token(settings, a.id, actor.oid), quote=True)
    form = (
        "<form method=post>"
        f"<input type=hidden name=csrf value='{token}'>"
        "<button class=go type=submit name=decision value=approve>Approve</button>"
        "<button class=stop type=submit name=decision value=deny>Deny</button></form>"
        f"<p><small>Signed in as {html.escape(actor.upn or actor.oid)}.</small></p>"
    )
    return Page(200, _layout("Approval request", _details(a) + form))


async def handle(
    method: str,
    approval_id: str,
    headers: Mapping[str, str],
    body: bytes,
    settings: Settings,
    approvals: Approvals | None = None,
    on_decided: OnDecided | None = None,
) -> Page:
    if not _ID.match(approval_id or ""):
        return _message(404, "Not found", "There is nothing here.")
    actor = principal_from(headers)
    if actor is None or actor.oid is None:
        return _sign_in(approval_id)
    approvals = approvals or approvals_from(settings)
    approval = await approvals.get(approval_id)
    if approval is None:
        return _message(404, "Not found", "There is no such approval request.")
    if method.upper() != "POST":
        return _request_page(approval, actor, settings)  # GET and HEAD: show, never change

    form = parse_qs(body.decode("utf-8", "replace"))
    decision = (form.get("decision") or [""])[0]
    if not csrf_valid(settings, approval_id, actor.oid, (form.get("csrf") or [""])[0]) or decision not in (
        "approve",
        "deny",
    ):
        return _message(403, "Request not accepted", "Open the approval link again and use its buttons.")
    try:
        result = await approvals.decide(approval_id, actor, decision == "approve", "web")
    except AlreadyDecided as exc:
        return _message(409, "Already decided", str(exc))
    except ApprovalRefused as exc:
        return _message(exc.status, "Not allowed", str(exc))
    if on_decided is not None:
        await on_decided(result.approval)
    verb = "approved" if result.approved else "denied"
    return Page(
        200,
        _layout(
            f"Request {verb}", f"{_details(result.approval)}<p>You {verb} this request. You can close this page.</p>"
        ),
    )


# --- Slack interactivity


async def handle_slack(
    raw_body: bytes,
    headers: Mapping[str, str],
    settings: Settings,
    approvals: Approvals | None = None,
    on_decided: OnDecided | None = None,
) -> SlackReply:
    """Verify, decide, answer. A few table calls: well inside Slack's 3-second budget."""
    from tierone.notify.slack import APPROVE_ACTION, DENY_ACTION, InvalidSlackRequest, verify_interaction

    if settings.slack_signing_secret is None:
        return SlackReply(404, {"error": "slack is not configured"})
    try:
        payload = verify_interaction(raw_body, headers, settings.slack_signing_secret.get_secret_value())
    except InvalidSlackRequest:
        return SlackReply(401, {"error": "invalid signature"})
    actions = [a for a in payload.get("actions") or [] if a.get("action_id") in (APPROVE_ACTION, DENY_ACTION)]
    if payload.get("type") != "block_actions" or not actions:
        return SlackReply(200, {})  # some other interaction: acknowledge, ignore
    action = actions[0]
    user = payload.get("user") or {}
    team = payload.get("team") or {}
    actor = Actor(slack_user_id=user.get("id"), slack_team_id=team.get("id") or user.get("team_id"))
    approvals = approvals or approvals_from(settings)
    try:
        result = await approvals.decide(
            str(action.get("value", "")), actor, action["action_id"] == APPROVE_ACTION, "slack"
        )
    except ApprovalRefused as exc:
        # 200 with a message: Slack shows a non-200 as a generic failure, hiding the reason.
        return SlackReply(200, {"response_type": "ephemeral", "replace_original": False, "text": str(exc)})
    if on_decided is not None:
        await on_decided(result.approval)
    verb = "approved" if result.approved else "denied"
    return SlackReply(
        200,
        {
            "response_type": "ephemeral",
            "replace_original": False,
            "text": f"You {verb} {result.approval.intent} for {result.approval.ticket_ref}.",
        },
    )

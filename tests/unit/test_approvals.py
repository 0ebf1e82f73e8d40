"""Approvals: one decision per request, by a designated approver who is not the requester; the
page shows on GET and decides only on a CSRF-protected POST; Slack clicks count only when signed."""

import asyncio
import base64
import json
import time
from datetime import timedelta
from urllib.parse import urlencode

import pytest
from pydantic import SecretStr

from sandbox.chat import SlackSandbox
from tierone.approval_pages import csrf_token, handle, handle_slack, principal_from
from tierone.approvals import (
    Actor,
    AlreadyDecided,
    ApprovalExpired,
    Approvals,
    ApprovalState,
    Approver,
    Identity,
    NotAnApprover,
    SelfApproval,
)
from tierone.notify.slack import APPROVE_ACTION, DENY_ACTION
from tierone.storage import APPROVALS, Table

REQUESTER = Identity(oid="aaaa0000-0000-4000-8000-00000000000a", upn="requester@contoso.example")
MANAGER = Approver(
    oid="bbbb0000-0000-4000-8000-00000000000b",
    upn="manager@contoso.example",
    slack_user_id="U0MANAGER",
    slack_team_id="T0SANDBOX",
)
OUTSIDER = Actor(oid="cccc0000-0000-4000-8000-00000000000c", upn="someone@contoso.example")
SIGNING_SECRET = "sandbox-signing-secret"


@pytest.fixture
def settings(settings):
    return settings.model_copy(update={"slack_signing_secret": SecretStr(SIGNING_SECRET)})


@pytest.fixture
def approvals(storage, settings, audit):
    return Approvals(Table(storage.account, APPROVALS), settings, audit)


@pytest.fixture
async def request_(approvals, unique):
    return await approvals.create(
        tenant_id=f"tenant-{unique}",
        ticket_ref=f"cw:{unique}",
        intent="mfa_reset",
        summary="Reset MFA methods of jane@contoso.example",
        facts={"User": "jane@contoso.example"},
        requester=REQUESTER,
        approvers=[MANAGER, Approver(oid=REQUESTER.oid, upn=REQUESTER.upn)],
    )


def principal_headers(oid: str, upn: str) -> dict[str, str]:
    claims = [
        {"typ": "http://schemas.microsoft.com/identity/claims/objectidentifier", "val": oid},
        {"typ": "preferred_username", "val": upn},
    ]
    encoded = base64.b64encode(json.dumps({"auth_typ": "aad", "claims": claims}).encode()).decode()
    return {"X-MS-CLIENT-PRINCIPAL": encoded, "X-MS-CLIENT-PRINCIPAL-ID": oid, "X-MS-CLIENT-PRINCIPAL-NAME": upn}


def form(settings, approval_id: str, oid: str, decision: str = "approve") -> bytes:
    return urlencode({"csrf": csrf_token(settings, approval_id, oid), "decision": decision}).encode()


# --- the record


async def test_a_new_request_is_pending_with_its_expiry_and_plan_hash(request_, approvals, audit):
    assert request_.state is ApprovalState.PENDING
    assert request_.expires_at - request_.created_at == timedelta(minutes=60)
    assert len(request_.plan_hash) == 64
    assert (await approvals.get(request_.id)) == request_
    assert [r["event_type"] for r in await audit.records(request_.tenant_id)] == ["approval_requested"]


async def test_a_designated_approver_decides_once_and_the_audit_says_so(request_, approvals, audit):
    decision = await approvals.decide(request_.id, Actor(oid=MANAGER.oid), approve=True, channel="web")
    assert decision.approved
    assert decision.approval.state is ApprovalState.APPROVED
    stored = await approvals.get(request_.id)
    assert stored is not None
    assert (stored.state, stored.decided_by, stored.decision_channel) == (ApprovalState.APPROVED, MANAGER.oid, "web")
    with pytest.raises(AlreadyDecided):
        await approvals.decide(request_.id, Actor(oid=MANAGER.oid), approve=False, channel="web")
    assert [r["event_type"] for r in await audit.records(request_.tenant_id)] == [
        "approval_requested",
        "approval_approved",
    ]
    assert await audit.verify(request_.tenant_id) == []


async def test_two_concurrent_decisions_make_exactly_one(request_, approvals):
    results = await asyncio.gather(
        approvals.decide(request_.id, Actor(oid=MANAGER.oid), approve=True, channel="web"),
        approvals.decide(request_.id, Actor(slack_user_id="U0MANAGER", slack_team_id="T0SANDBOX"), False, "slack"),
        return_exceptions=True,
    )
    assert sorted(type(r).__name__ for r in results) == ["AlreadyDecided", "Decision"]


async def test_the_requester_cannot_approve_their_own_request_even_as_a_listed_approver(request_, approvals):
    with pytest.raises(SelfApproval, match="someone else"):
        await approvals.decide(request_.id, Actor(oid=REQUESTER.oid), approve=True, channel="web")
    assert (await approvals.get(request_.id)).state is ApprovalState.PENDING


async def test_someone_not_designated_is_refused(request_, approvals):
    with pytest.raises(NotAnApprover):
        await approvals.decide(request_.id, OUTSIDER, approve=True, channel="web")
    with pytest.raises(NotAnApprover):  # the right Slack user id from another workspace is someone else
        await approvals.decide(request_.id, Actor(slack_user_id="U0MANAGER", slack_team_id="T0OTHER"), True, "slack")


async def test_a_request_past_its_expiry_expires_exactly_once_and_cannot_be_decided(request_, approvals, audit):
    later = request_.expires_at + timedelta(seconds=1)
    first, second = await asyncio.gather(approvals.expire_due(later), approvals.expire_due(later))
    mine = [a for a in first + second if a.id == request_.id]
    assert len(mine) == 1
    assert mine[0].state is ApprovalState.EXPIRED
    assert [a.id for a in await approvals.expire_due(later)] == []
    with pytest.raises(ApprovalExpired):
        await approvals.decide(request_.id, Actor(oid=MANAGER.oid), approve=True, channel="web")
    events = [r["event_type"] for r in await audit.records(request_.tenant_id)]
    assert events == ["approval_requested", "approval_expired"]


# --- the page


async def test_get_shows_the_request_and_changes_nothing(request_, approvals, settings):
    headers = principal_headers(MANAGER.oid, MANAGER.upn)
    for _ in range(3):  # a scanner, a preview, the approver
        page = await handle("GET", request_.id, headers, b"", settings, approvals)
        assert page.status == 200
        assert "Reset MFA methods of jane@contoso.example" in page.html
        assert "name=csrf" in page.html
        assert "value=approve" in page.html
        assert "value=deny" in page.html
        assert page.headers["Cache-Control"] == "no-store"
        assert page.headers["Referrer-Policy"] == "no-referrer"
    assert (await approvals.get(request_.id)) == request_


async def test_ticket_text_is_escaped_on_the_page(approvals, settings, unique):
    a = await approvals.create(
        tenant_id=f"tenant-{unique}",
        ticket_ref=f"cw:{unique}",
        intent="group_add",
        summary="<script>alert(1)</script>",
        requester=REQUESTER,
        approvers=[MANAGER],
    )
    page = await handle("GET", a.id, principal_headers(MANAGER.oid, MANAGER.upn), b"", settings, approvals)
    assert "<script>" not in page.html
    assert "&lt;script&gt;" in page.html


async def test_without_a_signed_in_principal_the_page_asks_to_sign_in(request_, approvals, settings):
    for method in ("GET", "POST"):
        page = await handle(method, request_.id, {}, form(settings, request_.id, MANAGER.oid), settings, approvals)
        assert page.status == 401
        assert "Sign in" in page.html
    assert (await approvals.get(request_.id)).state is ApprovalState.PENDING


async def test_post_decides_once_and_a_second_post_gets_409(request_, approvals, settings):
    headers = principal_headers(MANAGER.oid, MANAGER.upn)
    body = form(settings, request_.id, MANAGER.oid)
    first, second = await asyncio.gather(
        handle("POST", request_.id, headers, body, settings, approvals),
        handle("POST", request_.id, headers, body, settings, approvals),
    )
    assert sorted([first.status, second.status]) == [200, 409]
    assert (await approvals.get(request_.id)).state is ApprovalState.APPROVED


async def test_post_without_a_valid_csrf_token_is_refused(request_, approvals, settings):
    headers = principal_headers(MANAGER.oid, MANAGER.upn)
    for body in (
        urlencode({"decision": "approve"}).encode(),
        form(settings, request_.id, OUTSIDER.oid or ""),  # another person's token
        form(settings, "another-approval-id-123", MANAGER.oid),  # another request's token
    ):
        page = await handle("POST", request_.id, headers, body, settings, approvals)
        assert page.status == 403
    assert (await approvals.get(request_.id)).state is ApprovalState.PENDING


async def test_the_requester_posting_their_own_approval_gets_403(request_, approvals, settings):
    headers = principal_headers(REQUESTER.oid, REQUESTER.upn)
    page = await handle("POST", request_.id, headers, form(settings, request_.id, REQUESTER.oid), settings, approvals)
    assert page.status == 403
    assert "someone else" in page.html
    outsider = principal_headers(OUTSIDER.oid or "", OUTSIDER.upn or "")
    page = await handle(
        "POST", request_.id, outsider, form(settings, request_.id, OUTSIDER.oid or ""), settings, approvals
    )
    assert page.status == 403
    assert "not a designated approver" in page.html


def test_the_principal_is_read_from_app_service_authentication_headers():
    actor = principal_from(principal_headers(MANAGER.oid, MANAGER.upn))
    assert actor is not None
    assert (actor.oid, actor.upn) == (MANAGER.oid, MANAGER.upn)
    assert principal_from({"X-MS-CLIENT-PRINCIPAL-ID": MANAGER.oid}) is None  # the id alone is not a sign-in
    assert principal_from({"X-MS-CLIENT-PRINCIPAL": "not base64 json"}) is None


# --- Slack


async def test_a_signed_slack_click_by_the_enrolled_approver_decides(request_, approvals, settings):
    body, headers = SlackSandbox().interaction_request(request_.id, DENY_ACTION, "U0MANAGER")
    reply = await handle_slack(body, headers, settings, approvals)
    assert reply.status == 200
    assert "denied" in reply.body["text"]
    stored = await approvals.get(request_.id)
    assert stored is not None
    assert (stored.state, stored.decision_channel) == (ApprovalState.DENIED, "slack")


@pytest.mark.parametrize(
    ("forge", "age_seconds"),
    [(True, 0), (False, 310), (False, -310)],
    ids=["forged", "older-than-5-minutes", "from-the-future"],
)
async def test_a_forged_or_stale_slack_signature_gets_401_and_changes_nothing(
    request_, approvals, settings, forge, age_seconds
):
    body, headers = SlackSandbox().interaction_request(
        request_.id, APPROVE_ACTION, "U0MANAGER", forge=forge, timestamp=int(time.time()) - age_seconds
    )
    reply = await handle_slack(body, headers, settings, approvals)
    assert reply.status == 401
    assert (await approvals.get(request_.id)).state is ApprovalState.PENDING


async def test_a_tampered_slack_body_gets_401(request_, approvals, settings):
    body, headers = SlackSandbox().interaction_request(request_.id, APPROVE_ACTION, "U0OTHER")
    reply = await handle_slack(body.replace(b"U0OTHER", b"U0MANAGER"), headers, settings, approvals)
    assert reply.status == 401
    assert (await handle_slack(body, {}, settings, approvals)).status == 401


async def test_a_slack_click_by_someone_not_enrolled_is_refused_with_a_message(request_, approvals, settings):
    body, headers = SlackSandbox().interaction_request(request_.id, APPROVE_ACTION, "U0STRANGER")
    reply = await handle_slack(body, headers, settings, approvals)
    assert reply.status == 200
    assert "not a designated approver" in reply.body["text"]
    assert (await approvals.get(request_.id)).state is ApprovalState.PENDING

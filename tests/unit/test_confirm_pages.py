"""The confirmation page: opening the link (GET) shows the request and changes nothing; the answer
is a POST from the page's own form, taken once; anything else — a forged form, a second click, an
expired or unknown link — is refused and leaves the record as it was."""

import asyncio
from datetime import UTC, datetime, timedelta
from urllib.parse import urlencode

import pytest
from pydantic import SecretStr

from tierone.confirm_pages import csrf_token, handle
from tierone.confirmations import PARTITION, ConfirmationState
from tierone.secret_links import new_master_key
from tierone.storage import APPROVALS, Table


@pytest.fixture
def table(storage):
    return Table(storage.account, APPROVALS)


@pytest.fixture
async def pending(confirmations, unique):
    return await confirmations.create(
        tenant_id=f"tenant-{unique}",
        ticket_ref=f"cw:{unique}",
        intent="mfa_reset",
        summary="Reset MFA methods of jane@contoso.example",
        facts={"User": "jane@contoso.example"},
        recipient="jane.alt@fabrikam.com",
        recipient_role="the user's alternate e-mail on record",
        ttl_minutes=30,
    )


def form(settings, confirmation_id: str, decision: str = "yes") -> bytes:
    return urlencode({"csrf": csrf_token(settings, confirmation_id), "decision": decision}).encode()


async def snapshot(table, audit, c):
    """The row (with its ETag) and the tenant's audit chain: whatever a request changed shows here."""
    row = await table.get(PARTITION, c.id)
    return dict(row), row.metadata["etag"], await audit.records(c.tenant_id)


async def test_get_shows_the_request_and_changes_nothing(pending, confirmations, table, audit, settings):
    c, token = pending
    before = await snapshot(table, audit, c)
    for method in ("GET", "HEAD", "GET"):  # a link scanner, a preview, the person
        page, answered = await handle(method, token, b"", settings, confirmations)
        assert page.status == 200
        assert answered is None
        assert "Reset MFA methods of jane@contoso.example" in page.html
        assert "j***@fabrikam.com" in page.html
        assert "jane.alt@fabrikam.com" not in page.html
        assert f"{c.expires_at:%Y-%m-%d %H:%M} UTC" in page.html
        assert "Yes, I asked for this" in page.html
        assert "No, I did not ask" in page.html
        assert "method=post" in page.html
        assert "name=csrf" in page.html
    assert await snapshot(table, audit, c) == before
    assert (await confirmations.get(c.id)).state is ConfirmationState.PENDING


async def test_the_page_carries_the_security_headers(pending, confirmations, settings):
    _, token = pending
    page, _ = await handle("GET", token, b"", settings, confirmations)
    assert page.headers["Cache-Control"] == "no-store"
    assert page.headers["Referrer-Policy"] == "no-referrer"
    assert page.headers["X-Frame-Options"] == "DENY"
    assert "frame-ancestors 'none'" in page.headers["Content-Security-Policy"]
    assert "default-src 'none'" in page.headers["Content-Security-Policy"]


async def test_get_of_an_expired_link_says_so_and_still_changes_nothing(confirmations, table, audit, settings, unique):
    c, token = await confirmations.create(
        tenant_id=f"tenant-{unique}",
        ticket_ref=f"cw:{unique}",
        intent="password_reset",
        summary="Reset the password of jane@contoso.example",
        facts={},
        recipient="mgr@contoso.example",
        recipient_role="the user's manager",
        ttl_minutes=5,
        now=datetime.now(UTC) - timedelta(minutes=10),
    )
    before = await snapshot(table, audit, c)
    page, answered = await handle("GET", token, b"", settings, confirmations)
    assert (page.status, answered) == (200, None)
    assert "expired" in page.html
    assert "name=csrf" not in page.html
    assert await snapshot(table, audit, c) == before


async def test_yes_confirms_once_and_hands_back_the_answer(pending, confirmations, settings):
    c, token = pending
    page, answered = await handle("POST", token, form(settings, c.id, "yes"), settings, confirmations)
    assert page.status == 200
    assert "Thank you — IT support will go ahead" in page.html
    assert answered is not None
    assert (answered.id, answered.state) == (c.id, ConfirmationState.CONFIRMED)

    page, answered = await handle("POST", token, form(settings, c.id, "no"), settings, confirmations)
    assert (page.status, answered) == (409, None)
    assert "already confirmed" in page.html
    assert (await confirmations.get(c.id)).state is ConfirmationState.CONFIRMED


async def test_no_declines_and_says_nobody_will_act(pending, confirmations, settings):
    c, token = pending
    page, answered = await handle("POST", token, form(settings, c.id, "no"), settings, confirmations)
    assert page.status == 200
    assert "nobody will act on this request; IT support has been told" in page.html
    assert answered is not None
    assert answered.state is ConfirmationState.DECLINED
    assert (await confirmations.get(c.id)).state is ConfirmationState.DECLINED


async def test_two_simultaneous_posts_make_one_answer(pending, confirmations, audit, settings):
    c, token = pending
    (first, a1), (second, a2) = await asyncio.gather(
        handle("POST", token, form(settings, c.id, "yes"), settings, confirmations),
        handle("POST", token, form(settings, c.id, "no"), settings, confirmations),
    )
    assert sorted([first.status, second.status]) == [200, 409]
    winners = [a for a in (a1, a2) if a is not None]
    assert len(winners) == 1
    assert (await confirmations.get(c.id)).state is winners[0].state
    answers = [r for r in await audit.records(c.tenant_id) if r["event_type"] != "confirmation_requested"]
    assert len(answers) == 1


async def test_a_post_after_the_expiry_is_refused_and_the_link_is_expired(confirmations, settings, unique):
    c, token = await confirmations.create(
        tenant_id=f"tenant-{unique}",
        ticket_ref=f"cw:{unique}",
        intent="password_reset",
        summary="Reset the password of jane@contoso.example",
        facts={},
        recipient="mgr@contoso.example",
        recipient_role="the user's manager",
        ttl_minutes=5,
        now=datetime.now(UTC) - timedelta(minutes=10),
    )
    page, answered = await handle("POST", token, form(settings, c.id, "yes"), settings, confirmations)
    assert (page.status, answered) == (410, None)
    assert "expired" in page.html
    assert (await confirmations.get(c.id)).state is ConfirmationState.EXPIRED


async def test_a_post_without_the_pages_own_csrf_token_is_refused(pending, confirmations, table, audit, settings):
    c, token = pending
    other_key = settings.model_copy(update={"secret_encryption_key": SecretStr(new_master_key())})
    before = await snapshot(table, audit, c)
    for body in (
        urlencode({"decision": "yes"}).encode(),  # none at all
        urlencode({"csrf": "A" * 43, "decision": "yes"}).encode(),  # made up
        form(settings, "0" * 64, "yes"),  # another confirmation's token
        form(other_key, c.id, "yes"),  # signed with another deployment's key
        form(settings, c.id, "maybe"),  # a decision the page does not offer
        b"",
    ):
        page, answered = await handle("POST", token, body, settings, confirmations)
        assert (page.status, answered) == (403, None)
    assert await snapshot(table, audit, c) == before


@pytest.mark.parametrize("token", ["", "short", "has/a/slash-aaaaaaaaaaaaaaaaaaa", "a b" * 10, "x" * 101])
async def test_a_malformed_token_is_not_found(confirmations, settings, token):
    for method in ("GET", "POST"):
        page, answered = await handle(method, token, b"", settings, confirmations)
        assert (page.status, answered) == (404, None)


async def test_an_unknown_token_is_not_found(confirmations, settings):
    for method in ("GET", "POST"):
        page, answered = await handle(method, "u" * 43, form(settings, "0" * 64), settings, confirmations)
        assert (page.status, answered) == (404, None)


async def test_ticket_text_is_escaped_on_the_page(confirmations, settings, unique):
    _, token = await confirmations.create(
        tenant_id=f"tenant-{unique}",
        ticket_ref=f"cw:{unique}",
        intent="password_reset",
        summary="<script>alert(1)</script>",
        facts={},
        recipient="mgr@contoso.example",
        recipient_role="the <b>manager</b>",
        ttl_minutes=30,
    )
    page, _ = await handle("GET", token, b"", settings, confirmations)
    assert "<script>" not in page.html
    assert "&lt;script&gt;" in page.html
    assert "<b>manager</b>" not in page.html

"""Out-of-band confirmations: answered exactly once by whoever holds the mailed link, expired once
when nobody answers, audited once per state, and never storing or mailing the token anywhere but
in the link itself."""

import asyncio
from datetime import UTC, datetime, timedelta

import pytest

from tierone.confirmations import (
    PARTITION,
    AlreadyAnswered,
    Confirmation,
    ConfirmationExpired,
    ConfirmationNotFound,
    ConfirmationState,
    build_confirmation_mail,
    mask_address,
)
from tierone.secret_links import token_hash
from tierone.storage import APPROVALS, Table

RECIPIENT = "jane.alt@fabrikam.com"


@pytest.fixture
def table(storage):
    return Table(storage.account, APPROVALS)


async def new(confirmations, unique, *, ttl_minutes=30, summary="Reset the password of jane@contoso.example", now=None):
    return await confirmations.create(
        tenant_id=f"tenant-{unique}",
        ticket_ref=f"cw:{unique}",
        intent="password_reset",
        summary=summary,
        facts={"User": "jane@contoso.example"},
        recipient=RECIPIENT,
        recipient_role="the user's alternate e-mail on record",
        ttl_minutes=ttl_minutes,
        now=now,
    )


async def events(audit, c: Confirmation) -> list[str]:
    return [r["event_type"] for r in await audit.records(c.tenant_id)]


# --- the record


async def test_a_new_confirmation_is_pending_keyed_by_the_hash_of_its_token(confirmations, audit, unique):
    c, token = await new(confirmations, unique)
    assert c.state is ConfirmationState.PENDING
    assert c.id == token_hash(token)
    assert c.expires_at - c.created_at == timedelta(minutes=30)
    assert c.answered_at is None
    assert await confirmations.get(c.id) == c
    assert await confirmations.by_token(token) == c
    assert confirmations.url_for(token) == f"https://tierone.example.net/api/confirm/{token}"
    assert await events(audit, c) == ["confirmation_requested"]


async def test_the_token_is_stored_nowhere_and_the_audit_masks_the_recipient(confirmations, table, audit, unique):
    c, token = await new(confirmations, unique)
    await confirmations.answer(token, True)
    row = await table.get(PARTITION, c.id)
    assert row is not None
    assert token not in str(dict(row))
    records = await audit.records(c.tenant_id)
    assert token not in str(records)
    assert RECIPIENT not in str(records)
    assert "j***@fabrikam.com" in str(records)


async def test_an_answer_is_taken_once_and_a_second_answer_changes_nothing(confirmations, audit, unique):
    c, token = await new(confirmations, unique)
    answered = await confirmations.answer(token, True)
    assert answered.state is ConfirmationState.CONFIRMED
    assert answered.answered_at is not None
    with pytest.raises(AlreadyAnswered, match="already confirmed") as refused:
        await confirmations.answer(token, False)
    assert refused.value.status == 409
    stored = await confirmations.get(c.id)
    assert stored is not None
    assert stored.state is ConfirmationState.CONFIRMED
    assert await events(audit, c) == ["confirmation_requested", "confirmation_confirmed"]
    assert await audit.verify(c.tenant_id) == []


async def test_a_decline_is_recorded_as_declined(confirmations, audit, unique):
    c, token = await new(confirmations, unique)
    answered = await confirmations.answer(token, False)
    assert answered.state is ConfirmationState.DECLINED
    with pytest.raises(AlreadyAnswered, match="already declined"):
        await confirmations.answer(token, True)
    assert await events(audit, c) == ["confirmation_requested", "confirmation_declined"]


async def test_two_concurrent_answers_make_exactly_one(confirmations, audit, unique):
    c, token = await new(confirmations, unique)
    results = await asyncio.gather(
        confirmations.answer(token, True), confirmations.answer(token, False), return_exceptions=True
    )
    assert sorted(type(r).__name__ for r in results) == ["AlreadyAnswered", "Confirmation"]
    winner = next(r for r in results if isinstance(r, Confirmation))
    stored = await confirmations.get(c.id)
    assert stored is not None
    assert stored.state is winner.state
    assert await events(audit, c) == ["confirmation_requested", f"confirmation_{winner.state.value}"]


async def test_an_answer_after_the_expiry_is_refused_and_expires_the_confirmation(confirmations, audit, unique):
    c, token = await new(confirmations, unique)
    later = c.expires_at + timedelta(seconds=1)
    with pytest.raises(ConfirmationExpired, match="expired") as refused:
        await confirmations.answer(token, True, now=later)
    assert isinstance(refused.value, AlreadyAnswered)
    stored = await confirmations.get(c.id)
    assert stored is not None
    assert (stored.state, stored.answered_at) == (ConfirmationState.EXPIRED, later)
    with pytest.raises(ConfirmationExpired):  # and stays expired
        await confirmations.answer(token, True)
    assert await events(audit, c) == ["confirmation_requested", "confirmation_expired"]


async def test_an_unknown_token_is_not_found(confirmations):
    with pytest.raises(ConfirmationNotFound) as refused:
        await confirmations.answer("x" * 43, True)
    assert refused.value.status == 404
    assert await confirmations.by_token("x" * 43) is None
    assert await confirmations.get("not-a-hash") is None


async def test_expire_due_expires_only_due_pending_rows_once(confirmations, audit, unique):
    start = datetime.now(UTC)
    due, _ = await new(confirmations, unique, ttl_minutes=5, now=start)
    not_due, _ = await new(confirmations, unique, ttl_minutes=120, now=start)
    answered, answered_token = await new(confirmations, unique, ttl_minutes=5, now=start)
    await confirmations.answer(answered_token, True, now=start)
    later = start + timedelta(minutes=6)

    first, second = await asyncio.gather(confirmations.expire_due(later), confirmations.expire_due(later))
    mine = [c for c in first + second if c.id in {due.id, not_due.id, answered.id}]
    assert [(c.id, c.state) for c in mine] == [(due.id, ConfirmationState.EXPIRED)]
    assert not [c for c in await confirmations.expire_due(later) if c.id == due.id]  # idempotent

    states = {c.id: (await confirmations.get(c.id)).state for c in (due, not_due, answered)}
    assert states == {
        due.id: ConfirmationState.EXPIRED,
        not_due.id: ConfirmationState.PENDING,
        answered.id: ConfirmationState.CONFIRMED,
    }
    assert (await events(audit, due)).count("confirmation_expired") == 1


async def test_create_refuses_a_non_address_or_a_non_positive_lifetime(confirmations, unique):
    with pytest.raises(ValueError, match="time to live"):
        await new(confirmations, unique, ttl_minutes=0)
    with pytest.raises(ValueError, match="e-mail"):
        await confirmations.create(
            tenant_id="t",
            ticket_ref="cw:1",
            intent="password_reset",
            summary="Reset the password of jane@contoso.example",
            facts={},
            recipient="not an address",
            recipient_role="the user's manager",
            ttl_minutes=30,
        )


def test_the_recipient_is_masked_for_pages_notes_and_audit():
    assert mask_address("jane.alt@fabrikam.com") == "j***@fabrikam.com"
    assert mask_address("@fabrikam.com") == "***@fabrikam.com"
    assert mask_address("nobody") == "n***"
    assert mask_address("") == "***"


# --- the mail


def _confirmation(summary: str = "Reset the password of jane@contoso.example", **update) -> Confirmation:
    now = datetime(2030, 5, 1, 9, 0, tzinfo=UTC)
    fields = {
        "id": token_hash("t" * 43),
        "tenant_id": "tenant-1",
        "ticket_ref": "cw:4711",
        "intent": "password_reset",
        "summary": summary,
        "facts": {"User": "jane@contoso.example"},
        "recipient": "mgr@contoso.example",
        "recipient_role": "the user's manager",
        "created_at": now,
        "expires_at": now + timedelta(minutes=30),
        **update,
    }
    return Confirmation.model_validate(fields)


def test_the_mail_says_plainly_what_was_asked_and_what_to_do():
    url = "https://tierone.example.net/api/confirm/" + "A" * 43
    subject, body = build_confirmation_mail(_confirmation(), url, first_name="Maria")
    assert subject == "Please confirm a request made to IT support (ticket cw:4711)"
    assert "Hello Maria," in body
    assert "Someone asked IT support to <b>reset the password of jane@contoso.example</b> (ticket cw:4711)" in body
    assert "the user&#x27;s manager" in body
    assert "Yes, I asked for this" in body
    assert "No, I did not ask" in body
    assert "Nothing changes until someone confirms" in body
    assert "expires at 2030-05-01 09:30 UTC" in body
    assert "Opening the link changes nothing by itself" in body
    assert "tierone.example.net" in body


def test_the_mail_escapes_ticket_text_and_carries_the_token_only_in_the_link():
    token = "Zq3-" + "k" * 39
    url = f"https://tierone.example.net/api/confirm/{token}"
    c = _confirmation(
        summary="<script>alert(1)</script> for <b>jane</b>",
        ticket_ref="cw:1<img src=x>",
        recipient_role="the <i>manager</i>",
    )
    subject, body = build_confirmation_mail(c, url, first_name="<Maria>")
    assert "<script>" not in body
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in body
    assert "<img" not in body
    assert "<i>" not in body
    assert "&lt;Maria&gt;" in body
    assert body.count(token) == 1
    assert f"href='{url}'" in body
    assert token not in subject
    assert "\n" not in subject

"""Parked tickets: who may continue a run, how a hold's answer resumes it, and what the sweep does.

Against Azurite: the claim is an ETag-conditional update, and its guarantees only mean something
against a real table."""

from __future__ import annotations

import asyncio
import json
from datetime import UTC, datetime, timedelta

import pytest

from psa_integrations.models import PsaKind
from tierone.approvals import Actor, Approvals, Approver, Identity
from tierone.audit import AuditLog
from tierone.confirmations import Confirmations
from tierone.holds import AWAITING_APPROVAL, AWAITING_CONFIRMATION, RESUME_SOURCE, HoldSweeper, resume
from tierone.intake import TicketWork
from tierone.run_state import TicketState
from tierone.secret_links import cipher_from

SAM = Approver(oid="0b7c1e4e-58b4-4d4c-9a57-0f6f2b8f7a11", upn="sam@msp.example")
GRACE = Identity(oid="5d0b3a8e-9d7c-4a8e-8c3b-6a1f2e9d4c77", upn="grace@contoso.example")


def work(ticket_id: str, run_id: str = "run-1", **changes: object) -> TicketWork:
    return TicketWork(psa=PsaKind.CONNECTWISE, ticket_id=ticket_id, run_id=run_id, **changes)  # type: ignore[arg-type]


def state(storage, settings, w: TicketWork) -> TicketState:
    return TicketState(storage, cipher_from(settings, b"tierone-ticket-state-v1"), w)


async def park(storage, settings, ticket_id: str, **fields: object) -> TicketState:
    s = state(storage, settings, work(ticket_id))
    assert await s.claim(work(ticket_id), "m-first")
    await s.save(**fields)
    return s


async def queued(storage) -> list[dict]:
    """Take every message off the tickets queue (what the worker would receive)."""
    client = storage.account.queue_client(storage.ticket_queue.name)
    messages = await asyncio.to_thread(lambda: list(client.receive_messages(messages_per_page=32, max_messages=32)))
    for m in messages:
        await asyncio.to_thread(client.delete_message, m)
    return [json.loads(m.content) for m in messages]


async def test_the_first_message_owns_the_ticket_and_another_run_is_dropped(storage, settings, unique):
    assert await state(storage, settings, work(unique)).claim(work(unique), "m1")
    assert not await state(storage, settings, work(unique, "run-2")).claim(work(unique, "run-2"), "m2")


async def test_a_parked_ticket_ignores_retries_of_its_own_run_until_the_hold_is_answered(storage, settings, unique):
    await park(storage, settings, unique, State=AWAITING_APPROVAL, ApprovalId="a" * 32)
    assert not await state(storage, settings, work(unique)).claim(work(unique), "m-first")
    assert not await state(storage, settings, work(unique, deferrals=1)).claim(work(unique, deferrals=1), "m-later")


async def test_exactly_one_of_several_resume_messages_takes_the_parked_ticket(storage, settings, unique):
    await park(storage, settings, unique, State=AWAITING_APPROVAL, ApprovalId="a" * 32)
    resumes = [work(unique, source=RESUME_SOURCE, delivery_id="a" * 32) for _ in range(4)]
    won = await asyncio.gather(*(state(storage, settings, w).claim(w, f"m-resume-{i}") for i, w in enumerate(resumes)))
    assert sum(won) == 1
    row = await storage.tickets.get("connectwise", unique)
    assert row["State"] == "processing"
    winner = f"m-resume-{won.index(True)}"
    assert row["ResumeMessage"] == winner

    # The host redelivering the winning message continues the run; a late duplicate does not.
    assert await state(storage, settings, resumes[0]).claim(resumes[0], winner)
    assert not await state(storage, settings, resumes[0]).claim(resumes[0], "m-resume-late")
    # A deferred retry of the resumed run is a new message of the same run: it continues.
    deferred = work(unique, source=RESUME_SOURCE, delivery_id="a" * 32, deferrals=1)
    assert await state(storage, settings, deferred).claim(deferred, "m-deferred")


async def test_a_finished_ticket_is_never_resumed(storage, settings, unique):
    s = await park(storage, settings, unique, State=AWAITING_CONFIRMATION, ConfirmationId="c" * 64)
    await s.save(State="escalated")
    resumed = work(unique, source=RESUME_SOURCE, delivery_id="c" * 64)
    assert not await state(storage, settings, resumed).claim(resumed, "m-resume")
    assert not await resume(storage, f"connectwise:{unique}", "c" * 64)


async def test_resume_queues_the_owning_run_only_for_the_hold_it_waits_on(storage, settings, unique):
    await park(storage, settings, unique, State=AWAITING_APPROVAL, ApprovalId="a" * 32)
    await queued(storage)  # start from an empty queue
    assert not await resume(storage, f"connectwise:{unique}", "b" * 32), "another hold's answer"
    assert await resume(storage, f"connectwise:{unique}", "a" * 32)
    (message,) = [m for m in await queued(storage) if m["ticket_id"] == unique]
    assert (message["run_id"], message["source"], message["deferrals"]) == ("run-1", RESUME_SOURCE, 0)


async def test_the_sweep_expires_due_holds_and_resumes_their_tickets_and_answered_ones(storage, settings, unique):
    audit = AuditLog(storage.audit)
    approvals = Approvals(storage.approvals, settings, audit)
    confirmations = Confirmations(storage.approvals, settings, audit)
    now = datetime.now(UTC)

    expiring = await approvals.create(
        tenant_id=unique, ticket_ref=f"connectwise:{unique}-a", intent="license_change", summary="s",
        requester=GRACE, approvers=[SAM], now=now - timedelta(hours=2),
    )  # fmt: skip
    answered = await approvals.create(
        tenant_id=unique, ticket_ref=f"connectwise:{unique}-b", intent="license_change", summary="s",
        requester=GRACE, approvers=[SAM], now=now,
    )  # fmt: skip
    waiting = await approvals.create(
        tenant_id=unique, ticket_ref=f"connectwise:{unique}-c", intent="license_change", summary="s",
        requester=GRACE, approvers=[SAM], now=now,
    )  # fmt: skip
    for suffix, approval in (("a", expiring), ("b", answered), ("c", waiting)):
        s = state(storage, settings, work(f"{unique}-{suffix}"))
        assert await s.claim(work(f"{unique}-{suffix}"), "m")
        await s.save(State=AWAITING_APPROVAL, ApprovalId=approval.id)
    await approvals.decide(answered.id, Actor(oid=SAM.oid, upn=SAM.upn), True, "web")
    await queued(storage)

    report = await HoldSweeper(storage, approvals, confirmations).sweep(now)

    assert report.approvals_expired >= 1
    mine = sorted(r for r in report.resumed if unique in r)
    assert mine == [f"connectwise:{unique}-a", f"connectwise:{unique}-b"]
    still_waiting, expired = await approvals.get(waiting.id), await approvals.get(expiring.id)
    assert still_waiting is not None
    assert expired is not None
    assert (still_waiting.state.value, expired.state.value) == ("pending", "expired")


@pytest.mark.parametrize("state_name", [AWAITING_APPROVAL, AWAITING_CONFIRMATION])
async def test_a_parked_row_remembers_which_ticket_it_is(storage, settings, unique, state_name):
    s = await park(storage, settings, unique, State=state_name)
    assert s.data["TicketId"] == unique


async def test_a_stale_resume_for_an_earlier_hold_does_not_wake_a_ticket_waiting_on_a_later_one(
    storage, settings, unique
):
    """Confirmed, then parked for approval: a late resume for the confirmation must not run the action."""
    await park(storage, settings, unique, State=AWAITING_APPROVAL, ConfirmationId="c" * 64, ApprovalId="a" * 32)
    assert not await resume(storage, f"connectwise:{unique}", "c" * 64)
    stale = work(unique, source=RESUME_SOURCE, delivery_id="c" * 64)
    assert not await state(storage, settings, stale).claim(stale, "m-stale")
    current = work(unique, source=RESUME_SOURCE, delivery_id="a" * 32)
    assert await state(storage, settings, current).claim(current, "m-current")


async def test_the_time_a_ticket_waited_for_people_is_kept_apart_from_tierones_work(storage, settings, unique):
    parked_at = datetime.now(UTC) - timedelta(minutes=30)
    await park(storage, settings, unique, State=AWAITING_APPROVAL, ApprovalId="a" * 32, ParkedAt=parked_at)
    resumed = work(unique, source=RESUME_SOURCE, delivery_id="a" * 32)
    s = state(storage, settings, resumed)
    assert await s.claim(resumed, "m-resume")
    assert 1795 <= s.waited_seconds <= 1900

"""The step framework (tierone.playbooks.base) against a real ledger table in Azurite: a retried
ticket never repeats a change, a change is only "done" when it reads back, and a failure stops the
playbook honestly."""

from __future__ import annotations

import pytest

from identity_integrations.models import WriteReceipt
from tierone.errors import PermanentError, TransientError
from tierone.playbooks.base import (
    ActionLedger,
    Step,
    StepStatus,
    blocked_step,
    combined,
    never,
    note_step,
    run,
)


class Switch:
    """A fake piece of tenant state with a counter of the writes that changed it."""

    def __init__(self, on: bool = False, *, applies: bool = True) -> None:
        self.on = on
        self.applies = applies  # False: the write is answered but never takes effect
        self.writes = 0
        self.checks = 0

    async def check(self) -> bool:
        self.checks += 1
        return self.on

    async def apply(self) -> WriteReceipt:
        self.writes += 1
        if self.applies:
            self.on = True
        return WriteReceipt(status=204, request_id=f"req-{self.writes}")

    def step(self, name: str, **kwargs: object) -> Step:
        return Step(name, f"Turn {name} on", self.check, self.apply, settle_attempts=2, **kwargs)  # type: ignore[arg-type]


@pytest.fixture
def ledger(storage, unique) -> ActionLedger:
    return ActionLedger(storage.ledger, f"cw:{unique}")


async def test_a_change_that_reads_back_is_done_and_one_already_in_place_is_not_repeated(ledger):
    off, on = Switch(), Switch(on=True)
    result = await run([off.step("a"), on.step("b")], ledger, settle_delay=0)
    assert [s.status for s in result.steps] == [StepStatus.DONE, StepStatus.ALREADY]
    assert (off.writes, on.writes) == (1, 0)
    assert result.completed
    assert result.changed_anything
    assert result.request_ids == ["req-1"]


async def test_running_the_same_ticket_again_skips_done_steps_without_touching_the_tenant(ledger):
    switch = Switch()
    await run([switch.step("a")], ledger, settle_delay=0)
    switch.checks = 0
    again = await run([switch.step("a")], ledger, settle_delay=0)
    assert again.steps[0].status is StepStatus.DONE
    assert again.steps[0].request_id == "req-1"
    assert (switch.writes, switch.checks) == (1, 0)


async def test_a_step_recorded_started_is_checked_before_it_is_applied_again(ledger):
    switch = Switch(on=True)  # the earlier attempt's write landed, then the worker died
    await ledger.put("a", "started", sent=True)
    result = await run([switch.step("a")], ledger, settle_delay=0)
    assert result.steps[0].status is StepStatus.DONE  # ours, landed before the crash: not "already"
    assert switch.writes == 0
    assert switch.checks == 1


async def test_a_started_step_whose_write_did_not_land_is_applied_once_more(ledger):
    switch = Switch()
    await ledger.put("a", "started", sent=True)
    result = await run([switch.step("a")], ledger, settle_delay=0)
    assert result.steps[0].status is StepStatus.DONE
    assert switch.writes == 1


async def test_a_write_that_does_not_read_back_is_failed_never_done(ledger):
    stubborn = Switch(applies=False)
    after = Switch()
    result = await run([stubborn.step("a"), after.step("b")], ledger, settle_delay=0)
    assert [s.status for s in result.steps] == [StepStatus.FAILED, StepStatus.NOT_RUN]
    assert "reading it back does not show it" in result.steps[0].detail
    assert stubborn.checks == 1 + 2  # the check, then both read-backs
    assert after.writes == 0
    assert not result.completed
    row = await ledger.get("a")
    assert row is not None
    assert row["Status"] == "failed"


async def test_a_late_read_back_on_retry_counts_as_our_change(ledger):
    slow = Switch(applies=False)
    await run([slow.step("a")], ledger, settle_delay=0)
    slow.on = True  # replication caught up after the first attempt gave up
    result = await run([slow.step("a")], ledger, settle_delay=0)
    assert result.steps[0].status is StepStatus.DONE
    assert slow.writes == 1


async def test_a_permanent_failure_stops_the_later_steps_and_keeps_the_earlier_ones(ledger):
    first, last = Switch(), Switch()

    async def refuse() -> WriteReceipt:
        raise PermanentError("Graph set sign-in: 403 Authorization_RequestDenied")

    steps = [first.step("a"), Step("b", "Refused", never, refuse), last.step("c")]
    result = await run(steps, ledger, settle_delay=0)
    assert [s.status for s in result.steps] == [StepStatus.DONE, StepStatus.FAILED, StepStatus.NOT_RUN]
    assert result.failure is not None
    assert "Authorization_RequestDenied" in result.failure.detail
    assert last.writes == 0
    assert "failed" in result.lines()[1]


async def test_a_transient_error_propagates_and_the_retry_checks_first(ledger):
    switch = Switch()
    calls = 0

    async def throttled_once() -> WriteReceipt:
        nonlocal calls
        calls += 1
        switch.on = True  # landed, but the answer was a 429/504
        raise TransientError("Graph set sign-in: 504 UnknownError")

    with pytest.raises(TransientError):
        await run([Step("a", "Turn a on", switch.check, throttled_once)], ledger, settle_delay=0)
    assert (await ledger.get("a") or {})["Status"] == "started"
    result = await run([Step("a", "Turn a on", switch.check, throttled_once)], ledger, settle_delay=0)
    assert result.steps[0].status is StepStatus.DONE
    assert calls == 1


async def test_a_conflicting_state_we_did_not_make_fails_the_step(ledger):
    taken = Switch(on=True)
    step = taken.step("create", conflict_if_present="someone else has that name")
    result = await run([step], ledger, settle_delay=0)
    assert result.steps[0].status is StepStatus.FAILED
    assert result.steps[0].detail == "someone else has that name"


async def test_the_same_state_after_our_own_attempt_is_not_a_conflict(ledger):
    ours = Switch()
    first = await run([ours.step("create", conflict_if_present="taken")], ledger, settle_delay=0)
    assert first.steps[0].status is StepStatus.DONE
    await ledger.put("create", "started", sent=True)  # as if the first attempt crashed after the write
    again = await run([ours.step("create", conflict_if_present="taken")], ledger, settle_delay=0)
    assert again.steps[0].status is StepStatus.DONE


async def test_notes_and_blocked_steps(ledger):
    switch = Switch()
    steps = [
        note_step("lockout", "Smart lockout", "clears itself"),
        switch.step("a"),
        blocked_step("group", "Remove from 'HR (AD)'", "synced from on-premises AD"),
    ]
    result = await run(steps, ledger, settle_delay=0)
    assert [(s.status, s.detail) for s in result.steps] == [
        (StepStatus.NOTED, "clears itself"),
        (StepStatus.DONE, ""),
        (StepStatus.FAILED, "synced from on-premises AD"),
    ]


async def test_a_resumed_run_still_reports_steps_the_new_plan_no_longer_contains(ledger):
    group_a, group_b, block = Switch(), Switch(), Switch()

    async def storm() -> WriteReceipt:
        raise TransientError("429")

    first_plan = [block.step("block"), group_a.step("group-a"), Step("group-b", "Turn group-b on", never, storm)]
    with pytest.raises(TransientError):
        await run(first_plan, ledger, settle_delay=0)
    # Planned again from the tenant's state: group-a is done, so the plan no longer lists it.
    result = await run([block.step("block"), group_b.step("group-b")], ledger, settle_delay=0)
    assert [(s.name, s.status) for s in result.steps] == [
        ("block", StepStatus.DONE),
        ("group-a", StepStatus.DONE),
        ("group-b", StepStatus.DONE),
    ]


async def test_step_names_must_be_unique(ledger):
    switch = Switch()
    with pytest.raises(ValueError, match="unique"):
        await run([switch.step("a"), switch.step("a")], ledger, settle_delay=0)


def test_several_calls_make_one_receipt_with_every_request_id():
    receipt = combined(
        [WriteReceipt(status=204, request_id="r1"), WriteReceipt(status=404), WriteReceipt(status=204, request_id="r3")]
    )
    assert receipt is not None
    assert receipt.request_id == "r1 r3"
    assert combined([]) is None

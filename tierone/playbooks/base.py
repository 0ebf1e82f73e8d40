"""Playbooks are lists of steps; each step checks the current state (a no-op when it already
holds), changes it, and reads it back. Every step is recorded in the action ledger, keyed by
ticket and step, so a retried message never repeats a change:

- a step recorded done is not run again;
- a step recorded started (the change may or may not have landed) is checked first, and only
  applied if the check says it is still needed;
- a step whose read-back does not show the change is a failure, never "done".

A failing step stops the playbook; the steps before it stay recorded as they are, and the
result says honestly, step by step, what was and was not done. A resumed run also reports the
steps an earlier attempt finished that the new plan no longer contains (a plan reads the current
state, so e.g. a group removed before a crash is not planned again but was still done).

Secrets (temporary passwords, Temporary Access Passes) never reach a step's description, detail,
receipt or the ledger: a step that makes one hands it straight to the context's credential sink."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from enum import StrEnum

from pydantic import BaseModel, Field

from identity_integrations.models import WriteReceipt
from tierone.errors import PermanentError
from tierone.intake import table_key
from tierone.storage import Table

log = logging.getLogger("tierone.playbooks")

Check = Callable[[], Awaitable[bool]]
Apply = Callable[[], Awaitable[WriteReceipt | None]]


class StepStatus(StrEnum):
    DONE = "done"  # changed, and the read-back shows it
    ALREADY = "already"  # the desired state already held: nothing changed
    FAILED = "failed"
    NOT_RUN = "not run"  # an earlier step failed
    NOTED = "noted"  # nothing to change; the step only reports (e.g. smart lockout)


@dataclass
class Step:
    name: str  # stable key in the ledger, e.g. "block-sign-in"
    description: str  # what a technician reads in the note
    check: Check  # True when the desired state already holds
    apply: Apply
    verify: Check | None = None  # defaults to `check`
    settle_attempts: int = 3  # read-backs before calling a change unconfirmed (directory replication)
    note: str | None = None  # a step that changes nothing and only reports this
    # When set, finding the desired state already there (with no earlier attempt of ours that could
    # have made it) is a failure with this reason, not "already": e.g. an account with the new
    # user's name that this ticket did not create belongs to someone else.
    conflict_if_present: str | None = None


async def never() -> bool:
    """A check for actions with no prior state to find (e.g. revoking sessions): always apply."""
    return False


async def _nothing() -> None:
    return None


def note_step(name: str, description: str, note: str) -> Step:
    """A line in the playbook's report that changes nothing (e.g. 'smart lockout clears itself')."""
    return Step(name=name, description=description, check=never, apply=_nothing, note=note)


def blocked_step(name: str, description: str, reason: str) -> Step:
    """A step planning found impossible (e.g. an on-premises group): it fails with the reason, so the
    steps before it still run and the result names exactly what a technician has to finish."""

    async def refuse() -> WriteReceipt | None:
        raise PermanentError(reason)

    return Step(name=name, description=description, check=never, apply=refuse)


def combined(receipts: list[WriteReceipt]) -> WriteReceipt | None:
    """One receipt for a step that made several calls: the last status, every request id."""
    if not receipts:
        return None
    ids = [r.request_id for r in receipts if r.request_id]
    return WriteReceipt(status=receipts[-1].status, request_id=" ".join(ids) or None)


class StepRecord(BaseModel):
    name: str
    description: str
    status: StepStatus
    detail: str = ""
    request_id: str | None = None


class PlaybookResult(BaseModel):
    steps: list[StepRecord] = Field(default_factory=list)

    @property
    def completed(self) -> bool:
        return all(s.status in (StepStatus.DONE, StepStatus.ALREADY, StepStatus.NOTED) for s in self.steps)

    @property
    def changed_anything(self) -> bool:
        return any(s.status is StepStatus.DONE for s in self.steps)

    @property
    def request_ids(self) -> list[str]:
        return [rid for s in self.steps if s.request_id for rid in s.request_id.split()]

    @property
    def failure(self) -> StepRecord | None:
        return next((s for s in self.steps if s.status is StepStatus.FAILED), None)

    def status_of(self, name: str) -> StepStatus | None:
        return next((s.status for s in self.steps if s.name == name), None)

    def succeeded(self, name: str) -> bool:
        """The step ran to its desired state (changed, already so, or only reported)."""
        return self.status_of(name) in (StepStatus.DONE, StepStatus.ALREADY, StepStatus.NOTED)

    def lines(self) -> list[str]:
        return [f"{s.status.value:>8}  {s.description}{' — ' + s.detail if s.detail else ''}" for s in self.steps]


class ActionLedger:
    """One row per (ticket, step): what happened, so a retry resumes instead of repeating."""

    def __init__(self, table: Table, ticket_ref: str) -> None:
        self._table = table
        self._partition = table_key(ticket_ref)

    async def get(self, step: str) -> dict[str, object] | None:
        row = await self._table.get(self._partition, table_key(step))
        return dict(row) if row is not None else None

    async def put(
        self,
        step: str,
        status: str,
        detail: str = "",
        request_id: str | None = None,
        *,
        description: str = "",
        seq: int = 0,
        sent: bool = False,
    ) -> None:
        row: dict[str, object] = {
            "PartitionKey": self._partition,
            "RowKey": table_key(step),
            "Step": step,
            "Description": description,
            "Seq": seq,
            "Status": status,
            "Detail": detail[:1000],
            "RequestId": request_id or "",
            "At": datetime.now(UTC),
        }
        if sent:
            # Merged, never cleared: once any attempt sent the change, a later state match is ours.
            row["Sent"] = True
        await self._table.upsert(row)

    async def rows(self) -> list[dict[str, object]]:
        """Every step this ticket has recorded, in the order they were first planned."""
        found = await self._table.query("PartitionKey eq @pk", pk=self._partition)
        return sorted((dict(row) for row in found if row.get("Step")), key=lambda row: int(str(row.get("Seq") or 0)))


_FINISHED = frozenset({StepStatus.DONE.value, StepStatus.ALREADY.value, StepStatus.NOTED.value})
STARTED = "started"  # ledger-only status: the change was (or was about to be) sent


async def _confirmed(step: Step, settle_delay: float) -> bool:
    verify = step.verify or step.check
    for attempt in range(step.settle_attempts):
        if await verify():
            return True
        if attempt + 1 < step.settle_attempts:
            await asyncio.sleep(settle_delay * (attempt + 1))
    return False


async def run(steps: list[Step], ledger: ActionLedger, *, settle_delay: float = 1.0) -> PlaybookResult:
    """Run the steps in order. TransientErrors propagate (the message is retried and resumes here)."""
    names = [s.name for s in steps]
    if len(set(names)) != len(names):
        raise ValueError(f"step names must be unique within a playbook: {names}")
    rows = {str(row.get("Step")): row for row in await ledger.rows()}
    # A step keeps the position it was first planned at, so a resumed run reports in the same order.
    seqs = [_seq(rows.get(step.name), index) for index, step in enumerate(steps)]
    positioned: list[tuple[int, StepRecord]] = _earlier_finished(rows, set(names))
    for index, step in enumerate(steps):
        record = await _run_step(_Recorder(step, ledger, seqs[index]), settle_delay)
        positioned.append((seqs[index], record))
        if record.status is StepStatus.FAILED:
            positioned.extend(
                (seqs[later], StepRecord(name=s.name, description=s.description, status=StepStatus.NOT_RUN))
                for later, s in enumerate(steps[index + 1 :], start=index + 1)
            )
            break
    # Stable: a step an earlier attempt finished goes before a newly planned one at the same position.
    return PlaybookResult(steps=[record for _, record in sorted(positioned, key=lambda item: item[0])])


def _seq(row: dict[str, object] | None, default: int) -> int:
    return int(str(row["Seq"])) if row is not None and row.get("Seq") is not None else default


def _earlier_finished(rows: dict[str, dict[str, object]], planned: set[str]) -> list[tuple[int, StepRecord]]:
    """Steps an earlier attempt of this ticket finished that this plan no longer contains (a plan
    reads the tenant's state, so e.g. a group already left is not planned again)."""
    return [
        (
            _seq(row, 0),
            StepRecord(
                name=name,
                description=str(row.get("Description") or name),
                status=StepStatus(str(row["Status"])),
                detail=str(row.get("Detail") or ""),
                request_id=str(row.get("RequestId") or "") or None,
            ),
        )
        for name, row in rows.items()
        if name not in planned and row.get("Status") in _FINISHED
    ]


@dataclass
class _Recorder:
    """One step and its ledger row."""

    step: Step
    ledger: ActionLedger
    seq: int

    async def put(self, status: str, detail: str = "", request_id: str | None = None, *, sent: bool = False) -> None:
        await self.ledger.put(
            self.step.name, status, detail, request_id, description=self.step.description, seq=self.seq, sent=sent
        )

    def record(self, status: StepStatus, detail: str = "", request_id: str | None = None) -> StepRecord:
        return StepRecord(
            name=self.step.name,
            description=self.step.description,
            status=status,
            detail=detail,
            request_id=request_id,
        )

    async def finish(self, status: StepStatus, detail: str = "", request_id: str | None = None) -> StepRecord:
        await self.put(status.value, detail, request_id)
        return self.record(status, detail, request_id)


async def _run_step(r: _Recorder, settle_delay: float) -> StepRecord:
    step = r.step
    previous = await r.ledger.get(step.name)
    previous_status = str(previous.get("Status")) if previous else None
    previous_request = (str(previous.get("RequestId") or "") or None) if previous else None
    sent_before = bool(previous.get("Sent")) if previous else False
    if previous is not None and previous_status in _FINISHED:
        return r.record(StepStatus(str(previous_status)), str(previous.get("Detail") or ""), previous_request)
    if step.note is not None:
        return await r.finish(StepStatus.NOTED, step.note)
    try:
        if await step.check():
            # Either it was so before we came, or an earlier attempt's change landed (before a crash,
            # or after a read-back gave up too early).
            if sent_before:
                return await r.finish(StepStatus.DONE, request_id=previous_request)
            if step.conflict_if_present:
                return await r.finish(StepStatus.FAILED, step.conflict_if_present)
            return await r.finish(StepStatus.ALREADY)
        await r.put(STARTED, sent=True)
        receipt = await step.apply()
        request_id = receipt.request_id if receipt else None
        if request_id:
            await r.put(STARTED, request_id=request_id)
        if not await _confirmed(step, settle_delay):
            return await r.finish(
                StepStatus.FAILED, "the change was sent but reading it back does not show it", request_id
            )
        return await r.finish(StepStatus.DONE, request_id=request_id)
    except PermanentError as exc:
        log.warning("step %s failed: %s", step.name, exc)
        return await r.finish(StepStatus.FAILED, str(exc))

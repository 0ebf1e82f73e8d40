"""The evidence block: one structured internal note saying what TierOne saw, decided and did."""

from __future__ import annotations

from datetime import datetime

from pydantic import BaseModel, Field


def _duration(seconds: float) -> str:
    if seconds < 90:
        return f"{seconds:.0f} s"
    if seconds < 90 * 60:
        return f"{seconds / 60:.0f} min"
    return f"{seconds / 3600:.1f} h"


class Evidence(BaseModel):
    ticket_ref: str
    summary: str
    intent: str
    confidence: float
    triage_reasons: list[str] = Field(default_factory=list)
    triage_candidates: list[tuple[str, float]] = Field(default_factory=list)  # top intents, for low confidence
    tenant: str | None = None
    requester: str | None = None
    target: str | None = None
    verification: str | None = None
    decision: str | None = None
    rule: str | None = None
    mode: str | None = None  # the client's mode for this intent and the rule that set it
    confirmation: str | None = None  # out-of-band confirmation of a credential action
    approval: str | None = None
    plan: list[str] = Field(default_factory=list)  # what TierOne would do / will do, step by step
    changes: list[str] = Field(default_factory=list)
    read_back: str | None = None
    graph_request_ids: list[str] = Field(default_factory=list)
    started_at: datetime | None = None
    waited_seconds: float = 0.0  # parked, waiting for an approver or a confirmation
    finished_at: datetime | None = None

    def _why(self) -> list[str]:
        why = list(self.triage_reasons)
        listed = any("candidates:" in reason for reason in why)
        if (self.rule or "").startswith("P03") and self.triage_candidates and not listed:
            why.append("top candidates: " + ", ".join(f"{name} {value:.2f}" for name, value in self.triage_candidates))
        return why

    def render(self, headline: str) -> str:
        lines = [headline, ""]
        rows = [
            ("Request", self.summary),
            ("Intent", f"{self.intent} (confidence {self.confidence:.2f})"),
            ("Why", "; ".join(self._why()) or "-"),
            ("Customer tenant", self.tenant or "-"),
            ("Requester", self.requester or "-"),
            ("Target", self.target or "-"),
            ("Verification", self.verification or "-"),
            ("Decision", f"{self.decision or '-'} (rule {self.rule or '-'})"),
            ("Client policy", self.mode or "-"),
            ("Confirmation", self.confirmation or "-"),
            ("Approval", self.approval or "-"),
            ("Changes", "; ".join(self.changes) or "none"),
            ("Read back", self.read_back or "-"),
            ("Graph request ids", ", ".join(self.graph_request_ids) or "-"),
        ]
        if self.started_at and self.finished_at:
            seconds = max(0.0, (self.finished_at - self.started_at).total_seconds() - self.waited_seconds)
            waited = f" (plus {_duration(self.waited_seconds)} waiting for people)" if self.waited_seconds else ""
            rows.append(("Time spent", f"{seconds:.1f} s{waited}"))
        lines += [f"{label}: {value}" for label, value in rows]
        if self.plan:
            lines += ["Plan:", *(f"  - {step}" for step in self.plan)]
        return "\n".join(lines)

"""`tierone learn`: a model for this MSP, from its own closed tickets.

1. Read closed tickets from each configured PSA (psa_integrations ClosedTicketSource).
2. Map each to an intent by its category, else its resolution note (mapping.py); drop the rest.
3. Keep the newest fifth of the mapped history aside: the MSP's own held-out tickets.
4. Train on the project corpus's training split plus the rest of the history.
5. Score the current model (the stored one, else the shipped one) and the new one on the project's
   held-out split, which neither ever trained on, and on the MSP's held-out history.
6. Store the new model only if its accuracy on the project's held-out split did not drop; the
   worker picks it up within minutes (store.REFRESH_SECONDS).
"""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from psa_integrations.base import ClosedTicketSource
from psa_integrations.models import ClosedTicket, PsaKind
from tierone.settings import Settings
from tierone.storage import Storage
from tierone.triage.classifier import classify_many
from tierone.triage.evaluation import evaluate
from tierone.triage.mapping import CategoryMap
from tierone.triage.model import TriageModel
from tierone.triage.store import ModelStore
from tierone.triage.training import Example, load_corpus, train

log = logging.getLogger("tierone.triage.learn")

HISTORY_WEIGHT = 2.0  # an MSP's own ticket counts twice a corpus ticket: it is what its users write
HISTORY_HELD_OUT = 0.2


@dataclass
class Score:
    accuracy: float
    tickets: int


@dataclass
class LearnReport:
    read: dict[str, int] = field(default_factory=dict)
    mapped: dict[str, int] = field(default_factory=dict)
    unmapped: dict[str, int] = field(default_factory=dict)
    history_trained: int = 0
    history_held_out: int = 0
    current_version: str = "default"
    new_version: str = ""
    heldout_before: Score | None = None
    heldout_after: Score | None = None
    history_before: Score | None = None
    history_after: Score | None = None
    stored: bool = False
    why: str = ""

    def as_dict(self) -> dict[str, Any]:
        def score(s: Score | None) -> dict[str, Any] | None:
            return None if s is None else {"accuracy": s.accuracy, "tickets": s.tickets}

        data = dict(self.__dict__)
        for name in ("heldout_before", "heldout_after", "history_before", "history_after"):
            data[name] = score(getattr(self, name))
        return data

    def lines(self) -> list[str]:
        out = [f"read: {', '.join(f'{k} {v}' for k, v in self.read.items()) or 'nothing'}"]
        out.append(f"mapped to intents: {', '.join(f'{k} {v}' for k, v in sorted(self.mapped.items())) or 'none'}")
        if self.unmapped:
            top = sorted(self.unmapped.items(), key=lambda kv: -kv[1])[:5]
            out.append("left out (no mapping): " + "; ".join(f"{k} ({v})" for k, v in top))
        out.append(f"history: {self.history_trained} trained on, {self.history_held_out} held out (newest)")
        for label, before, after in (
            ("the project's held-out split", self.heldout_before, self.heldout_after),
            ("this MSP's held-out history", self.history_before, self.history_after),
        ):
            if before and after:
                out.append(
                    f"accuracy on {label} ({after.tickets} tickets): {before.accuracy:.4f} ({self.current_version})"
                    f" → {after.accuracy:.4f} ({self.new_version}), {after.accuracy - before.accuracy:+.4f}"
                )
        out.append(("stored: " if self.stored else "not stored: ") + self.why)
        return out


def to_example(ticket: ClosedTicket, intent: str) -> Example:
    return Example(
        subject=ticket.summary,
        body=ticket.description,
        intent=intent,
        group=f"{ticket.psa.value}:{ticket.id}",
        source=ticket.psa.value,
        weight=HISTORY_WEIGHT,
    )


async def read_history(clients: dict[PsaKind, Any], since: datetime, limit: int) -> dict[PsaKind, list[ClosedTicket]]:
    found: dict[PsaKind, list[ClosedTicket]] = {}
    for kind, client in clients.items():
        if not isinstance(client, ClosedTicketSource):
            log.warning("%s cannot list closed tickets; skipped", kind.value)
            continue
        found[kind] = await client.list_closed_tickets(since, limit)
    return found


def _score(model: TriageModel, examples: list[Example]) -> Score | None:
    if not examples:
        return None
    results = classify_many([(e.subject, e.body, e.requester_email) for e in examples], model=model)
    return Score(evaluate(results, [e.intent for e in examples]).accuracy, len(examples))


async def learn(
    settings: Settings,
    storage: Storage,
    history: dict[PsaKind, list[ClosedTicket]],
    *,
    dry_run: bool = False,
    corpus_train: list[Example] | None = None,
    corpus_heldout: list[Example] | None = None,
    folds: int = 5,
) -> LearnReport:
    from tierone.triage.classifier import default_model

    report = LearnReport()
    mapping = CategoryMap.from_setting(settings.triage_category_map)
    examples: list[tuple[datetime, Example]] = []
    for kind, tickets in history.items():
        report.read[kind.value] = len(tickets)
        for ticket in tickets:
            mapped = mapping.map(ticket)
            if mapped.intent is None:
                report.unmapped[mapped.why] = report.unmapped.get(mapped.why, 0) + 1
                continue
            report.mapped[mapped.intent] = report.mapped.get(mapped.intent, 0) + 1
            examples.append((ticket.closed_at or datetime.min.replace(tzinfo=UTC), to_example(ticket, mapped.intent)))
    examples.sort(key=lambda pair: pair[0], reverse=True)
    cut = int(len(examples) * HISTORY_HELD_OUT)
    history_heldout = [e for _, e in examples[:cut]]
    history_train = [e for _, e in examples[cut:]]
    report.history_trained, report.history_held_out = len(history_train), len(history_heldout)

    corpus_train = corpus_train if corpus_train is not None else load_corpus("train") + load_corpus("handwritten")
    corpus_heldout = corpus_heldout if corpus_heldout is not None else load_corpus("heldout")
    store = ModelStore.of(storage)
    pointer = await store.pointer()
    if pointer is not None:
        current = await asyncio.to_thread(TriageModel.from_bytes, await store.read(pointer))
        report.current_version = pointer.version
    else:
        current = await asyncio.to_thread(default_model)
        report.current_version = current.card.version
    report.new_version = "msp-" + datetime.now(UTC).strftime("%Y%m%d%H%M%S")
    if not history_train:
        report.why = "no closed ticket could be mapped to an intent: nothing to learn from"
        return report
    model = await asyncio.to_thread(
        train,
        corpus_train + history_train,
        version=report.new_version,
        folds=folds,
        notes=[f"project corpus + {len(history_train)} tickets of this MSP's history"],
    )
    report.heldout_before = await asyncio.to_thread(_score, current, corpus_heldout)
    report.heldout_after = await asyncio.to_thread(_score, model, corpus_heldout)
    report.history_before = await asyncio.to_thread(_score, current, history_heldout)
    report.history_after = await asyncio.to_thread(_score, model, history_heldout)
    assert report.heldout_before is not None
    assert report.heldout_after is not None
    if report.heldout_after.accuracy < report.heldout_before.accuracy:
        report.why = "accuracy on the project's held-out split would drop; the current model stays"
    elif dry_run:
        report.why = "dry run"
    else:
        model.card.metrics["learn"] = report.as_dict()
        await store.save(model.to_bytes(), report.new_version, report.as_dict())
        report.stored = True
        report.why = f"model {report.new_version} is now active; workers load it within minutes"
    return report


def since_days(days: int) -> datetime:
    return datetime.now(UTC) - timedelta(days=days)

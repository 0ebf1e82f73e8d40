"""`classify`: one ticket's text in, a TriageResult out. The model is loaded once per process.

The steps, each narrowing what the next may do:
1. clean the text (text.py) and screen it (guard.py): instructions to automation, privileged
   requests and hidden HTML are taken out and flagged;
2. the model gives calibrated probabilities over the nine intents;
3. a credential or licence request naming a system the model does not know becomes `other`, and so
   does a group or mailbox request that asks for the Team, group, list or mailbox to be created;
   the final intent is decided here, after the model, so these rules always have the last word;
4. a ticket with a second, different request, or with a flag, keeps its intent but its confidence
   is held below the intent's threshold, so the policy escalates it with the reasons;
5. entities are extracted from the screened text only (entities.py).
"""

from __future__ import annotations

import threading
from dataclasses import dataclass
from importlib import resources
from typing import TYPE_CHECKING, Any

from tierone.triage.entities import extract
from tierone.triage.guard import (
    AUTOMATABLE_CREDENTIAL_INTENTS,
    CONTAINER_INTENTS,
    Screened,
    creates_container,
    foreign_access,
    people,
    screen,
    unknown_systems,
)
from tierone.triage.schema import AUTOMATABLE_INTENTS, TriageResult
from tierone.triage.text import CleanText, clean, for_model, sentences

if TYPE_CHECKING:
    from tierone.triage.model import TriageModel

DEFAULT_ARTIFACT = "default.triage.zip"
# Intents one request can span: a locked-out user asking for a reset is one request, not two.
_SIGN_IN = frozenset({"password_reset", "account_unlock", "mfa_reset"})
# Onboarding and offboarding contain licence, group and mailbox steps by definition.
_COMPOSITE = frozenset({"onboarding", "offboarding"})
_SECOND_REQUEST_MIN = 0.8
_PENDING_FLAGS = frozenset(
    {"instruction-to-automation", "privileged-request", "hidden-text", "invisible-characters", "several-requests"}
)

_default: TriageModel | None = None
_default_lock = threading.Lock()


def default_model() -> TriageModel:
    """The model shipped in the package, loaded on first use (scikit-learn is imported here, not before)."""
    global _default
    with _default_lock:
        if _default is None:
            from tierone.triage.model import TriageModel

            data = resources.files("tierone.triage").joinpath("model", DEFAULT_ARTIFACT).read_bytes()
            _default = TriageModel.from_bytes(data)
        return _default


@dataclass
class Prepared:
    cleaned: CleanText
    screened: Screened
    model_text: str
    subject: str = ""


def prepare(subject: str, body: str) -> Prepared:
    """The same text preparation for training and for inference."""
    cleaned = clean(subject, body)
    subject_screen = screen(cleaned.subject)
    screened = screen(cleaned.request, cleaned.hidden)
    for flag, reason in zip(subject_screen.flags, subject_screen.reasons, strict=False):
        if flag not in screened.flags:
            screened.flags.append(flag)
            screened.reasons.append(reason)
    screened.privileged += subject_screen.privileged
    subject_text = subject_screen.text if not subject_screen.flags else ""
    return Prepared(cleaned, screened, for_model(f"{subject_text}\n{screened.text}"), subject_text)


def classify(
    subject: str, body: str, requester_email: str | None = None, *, model: TriageModel | None = None
) -> TriageResult:
    return classify_many([(subject, body, requester_email)], model=model)[0]


def classify_many(
    tickets: list[tuple[str, str, str | None]], *, model: TriageModel | None = None
) -> list[TriageResult]:
    """Classify a batch (one model call for all of them: the fast path for evaluation and learning)."""
    model = model or default_model()
    prepared = [prepare(subject, body) for subject, body, _ in tickets]
    if not prepared:
        return []
    probabilities, words = model.predict([p.model_text for p in prepared])
    rows: list[list[float]] = probabilities.tolist()
    second = _second_requests(model, prepared, rows)
    return [
        _result(model, p, row, (words, i), requester, second.get(i))
        for i, (p, row, (_, _, requester)) in enumerate(zip(prepared, rows, tickets, strict=True))
    ]


def _top(model: TriageModel, row: list[float]) -> tuple[str, float]:
    best = max(range(len(row)), key=row.__getitem__)
    return model.classes[best], row[best]


def _second_requests(model: TriageModel, prepared: list[Prepared], rows: list[list[float]]) -> dict[int, str]:
    """Tickets that would be acted on but whose sentences, read alone, ask for another, unrelated action."""
    owners: list[int] = []
    texts: list[str] = []
    for i, (p, row) in enumerate(zip(prepared, rows, strict=True)):
        top, probability = _top(model, row)
        if top not in AUTOMATABLE_INTENTS or top in _COMPOSITE or probability < model.threshold(top):
            continue
        for sentence in sentences(p.screened.text):
            if len(sentence.split()) >= 3:
                owners.append(i)
                texts.append(for_model(sentence))
    found: dict[int, str] = {}
    if not texts:
        return found
    for owner, row in zip(owners, model.predict_proba(texts).tolist(), strict=True):
        intent, probability = _top(model, row)
        top, _ = _top(model, rows[owner])
        related = top in _SIGN_IN and intent in _SIGN_IN
        if intent in AUTOMATABLE_INTENTS and intent != top and not related and probability >= _SECOND_REQUEST_MIN:
            found.setdefault(owner, intent)
    return found


def _result(
    model: TriageModel,
    p: Prepared,
    row: list[float],
    words: tuple[Any, int],
    requester_email: str | None,
    second: str | None,
) -> TriageResult:
    order = sorted(zip(model.classes, row, strict=True), key=lambda c: -c[1])
    intent, confidence = order[0]
    reasons: list[str] = []
    flags = list(p.screened.flags)
    explanation = model.explain_row(*words, intent)
    if explanation:
        reasons.append(f"{intent}: " + ", ".join(explanation))

    systems: list[str] = []
    if intent in AUTOMATABLE_CREDENTIAL_INTENTS:
        request = f"{p.subject}\n{p.screened.text}"
        mentioned = people(f"{p.cleaned.subject}\n{p.cleaned.visible}", requester_email)
        systems = unknown_systems(request, mentioned)
    elif intent == "mailbox_permission":
        request = f"{p.subject}\n{p.screened.text}"
        systems = foreign_access(request, people(f"{p.cleaned.subject}\n{p.cleaned.visible}", requester_email))
    if systems:
        reasons.append(
            f"names {', '.join(repr(s) for s in systems)} where a system goes, and it is not one TierOne knows as "
            f"Microsoft 365: treated as a request for another system ({intent} {confidence:.2f} set aside)"
        )
        flags.append("unknown-system")
        intent = "other"
    created = creates_container(f"{p.subject}\n{p.screened.text}") if intent in CONTAINER_INTENTS else None
    if created:
        reasons.append(
            f'asks for something to be created ("{created}"): creating a Team, group, list, site or mailbox is '
            f"not a change to one that exists ({intent} {confidence:.2f} set aside)"
        )
        flags.append("creates-container")
        intent = "other"
    if second:
        flags.append("several-requests")
        reasons.append(f"also asks for {second}: only one request can be handled at a time")
    reasons += p.screened.reasons

    threshold = model.threshold(intent)
    if intent != "other" and _PENDING_FLAGS.intersection(flags):
        # Held below the threshold, whatever the model says: the policy escalates with these reasons.
        confidence = min(confidence, max(0.0, threshold - 0.01))
    if intent != "other" and confidence < threshold:
        reasons.append(
            f"confidence {confidence:.2f} is below {intent}'s threshold {threshold:.2f}; candidates: "
            + ", ".join(f"{name} {value:.2f}" for name, value in order[:3])
        )

    entities = extract(
        intent, p.screened.text, p.cleaned.visible, p.cleaned.hidden, requester_email, p.screened.privileged
    )
    if entities.names_someone_else:
        reasons.append("text names someone other than the requester: " + "; ".join(entities.someone_else_because))
    return TriageResult(
        intent=intent,
        confidence=round(min(1.0, max(0.0, confidence)), 4),
        target_emails=entities.target_emails,
        target_names=entities.target_names,
        names_someone_else=entities.names_someone_else,
        reasons=reasons,
        candidates=[(name, round(value, 4)) for name, value in order[:3]],
        threshold=threshold,
        object=entities.object,
        dates=entities.dates,
        target=entities.target,
        flags=flags,
    )

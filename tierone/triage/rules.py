"""A first, rule-based classifier: transparent and conservative. It is replaced by a learned
model later; its contract (intent from a closed list, entities, confidence, reasons) stays.

It reads ticket text only to *narrow* what may happen: a ticket that names someone other than
the requester can only ever lead to an escalation or an approval, never to a wider action."""

from __future__ import annotations

import html
import re

from pydantic import BaseModel, Field

INTENTS = (
    "password_reset",
    "account_unlock",
    "mfa_reset",
    "mailbox_permission",
    "group_membership",
    "license_change",
    "onboarding",
    "offboarding",
    "other",
)

_EMAIL = re.compile(r"[A-Za-z0-9._%+'-]+@[A-Za-z0-9.-]+\.[A-Za-z]{2,}")
_TAGS = re.compile(r"<[^>]+>")

# (intent, pattern, weight): the strongest total wins; ties resolve in INTENTS order.
_SIGNALS: list[tuple[str, re.Pattern[str], float]] = [
    (intent, re.compile(pattern, re.IGNORECASE), weight)
    for intent, pattern, weight in [
        ("password_reset", r"\bpass ?words?\b|\bpwd\b", 1.0),
        ("password_reset", r"\b(reset|forgot|forgotten|expired|change)\b", 0.6),
        ("password_reset", r"\b(can'?t|cannot|unable to) (log ?in|sign ?in|login)\b", 0.4),
        ("account_unlock", r"\blocked out\b|\bunlock\b|\baccount (is )?(locked|disabled|blocked)\b", 1.4),
        (
            "mfa_reset",
            r"\bmfa\b|\b2fa\b|multi.?factor|authenticator|\bnew phone\b|\bverification code\b",
            1.5,
        ),
        ("mailbox_permission", r"shared mailbox|full access|send as|send on behalf|mailbox permission", 1.6),
        ("group_membership", r"\b(add|remove)\b.{0,40}\b(group|distribution list|team)\b|\bmember of\b", 1.3),
        ("license_change", r"\blicen[cs]e\b|\bE3\b|\bE5\b|business premium", 1.3),
        ("onboarding", r"new (starter|hire|joiner|employee|user account)|\bonboard", 1.6),
        ("offboarding", r"\bleaver\b|\boffboard|\bleaving\b|last day|terminat", 1.6),
        (
            "other",
            r"printer|print(ing)?\b|scanner|toner|wi-?fi|internet|network|slow|laptop|monitor|keyboard",
            1.2,
        ),
    ]
]

# Phrases saying the request is for somebody else.
_THIRD_PARTY = re.compile(
    r"\b(on behalf of|for my (colleague|manager|boss|employee|team member)|my colleague|"
    r"(his|her|their) (password|account|login)|for (mr|mrs|ms|dr)\.? [A-Z])",
    re.IGNORECASE,
)
_FOR_NAME = re.compile(r"\b(?:for|of)\s+([A-Z][a-z]+(?:\s+[A-Z][a-z'-]+)+)")

_MIN_CONFIDENCE_SCORE = 1.0


class TriageResult(BaseModel):
    intent: str
    confidence: float = Field(ge=0.0, le=1.0)
    target_emails: list[str] = Field(default_factory=list)
    target_names: list[str] = Field(default_factory=list)
    names_someone_else: bool = False
    reasons: list[str] = Field(default_factory=list)


def clean(text: str) -> str:
    """Strip HTML and collapse white space (mail-generated tickets carry both)."""
    return re.sub(r"\s+", " ", html.unescape(_TAGS.sub(" ", text))).strip()


def classify(subject: str, body: str, requester_email: str | None = None) -> TriageResult:
    text = f"{clean(subject)} . {clean(body)}"
    scores: dict[str, float] = {}
    reasons: list[str] = []
    for intent, pattern, weight in _SIGNALS:
        match = pattern.search(text)
        if match:
            scores[intent] = scores.get(intent, 0.0) + weight
            reasons.append(f"{intent}: '{match.group(0)}'")
    best = max(INTENTS, key=lambda name: (scores.get(name, 0.0), -INTENTS.index(name)))
    top = scores.get(best, 0.0)
    if top < _MIN_CONFIDENCE_SCORE:
        best, top = "other", 0.0
    runner_up = max((v for k, v in scores.items() if k != best), default=0.0)
    confidence = 0.0 if top == 0 else round(min(0.99, top / (top + runner_up + 0.5)), 2)

    requester = (requester_email or "").lower()
    emails = sorted({e.lower() for e in _EMAIL.findall(text)} - {requester})
    names = sorted({m.strip() for m in _FOR_NAME.findall(text)})
    someone_else = bool(emails) or bool(_THIRD_PARTY.search(text)) or bool(names)
    if someone_else:
        reasons.append("text names someone other than the requester")
    return TriageResult(
        intent=best,
        confidence=confidence,
        target_emails=emails,
        target_names=names,
        names_someone_else=someone_else,
        reasons=reasons,
    )

"""What exactly a ticket asks for — the object (group, mailbox, licence), add or remove, rights,
the new starter's name — read from triage's entities with a conservative fallback on the text.

Whatever is read here only narrows the request: it names *which* group or mailbox; the policy
and the playbook's own checks decide whether that object may be touched at all."""

from __future__ import annotations

import html
import re
from typing import Any

from tierone.playbooks.context import PlaybookRequest

_TAGS = re.compile(r"<[^>]+>")


def clean_text(text: str) -> str:
    return re.sub(r"\s+", " ", html.unescape(_TAGS.sub(" ", text))).strip()


_QUOTED = re.compile(r"[\"“'‘]([^\"”'’]{2,80})[\"”'’]")
_GROUP = re.compile(
    r"\b(?:to|from|of|in)\s+(?:the\s+)?([A-Za-z0-9][\w&.\- ]{1,60}?)\s+(?:group|distribution list|dl)\b",
    re.IGNORECASE,
)
_TEAM = re.compile(r"\b(?:to|from|of|in)\s+(?:the\s+)?([A-Za-z0-9][\w&.\- ]{1,60}?)\s+team\b", re.IGNORECASE)
_MAILBOX = re.compile(
    r"\b(?:to|for|on)\s+(?:the\s+)?([\w.+-]+@[\w.-]+|[A-Za-z0-9][\w&.\- ]{1,60}?)\s+(?:shared\s+)?mailbox\b",
    re.IGNORECASE,
)
_LICENCE = re.compile(
    r"\b((?:microsoft|office)\s*365\s+[a-z0-9 ]{1,25}?|business\s+(?:premium|standard|basic)|[eEfF][1-5]|"
    r"visio(?:\s+plan\s*2)?|project(?:\s+online)?(?:\s+premium)?|exchange online(?:\s+plan\s*[12])?)"
    r"(?=\s+licen[cs]e|\s*$|[\s.,;!?])",
    re.IGNORECASE,
)
_REMOVE = re.compile(r"\b(remove|take\s+\w+\s+off|revoke|no longer needs?|drop)\b", re.IGNORECASE)
_SWAP = re.compile(r"\b(?:swap|switch|change|upgrade|downgrade|move)\b.{0,40}\b(?:from|to)\b", re.IGNORECASE)
_FROM_TO = re.compile(r"\bfrom\s+(.{1,40}?)\s+to\s+(.{1,40}?)(?=\s+licen[cs]e|[.,;!?]|$)", re.IGNORECASE)
_NEW_STARTER = re.compile(
    r"\b(?i:new\s+(?:starter|hire|joiner|employee|user)|onboard(?:ing)?)\b[:\s-]*(?:is\s+|named\s+|called\s+)?"
    r"([A-Z][a-z'-]+(?:\s+[A-Z][a-z'-]+){1,2})",
)
_ROLE = re.compile(r"\b(?:as|role|position|job title)[:\s]+(?:an?\s+|the\s+)?([A-Za-z][\w ]{2,40}?)(?:[.,;\n]|$)")


def _first(pattern: re.Pattern[str], text: str) -> str | None:
    match = pattern.search(text)
    return match.group(1).strip() if match else None


def build_request(intent: str, subject: str, body: str, triage: Any) -> PlaybookRequest:
    text = f"{clean_text(subject)} . {clean_text(body)}"
    named = getattr(triage, "object", None)
    obj: str | None = named if isinstance(named, str) and named else None
    rights: list[str] = []
    replaces: str | None = None
    if intent == "group_membership":
        obj = obj or _first(_GROUP, text) or _first(_TEAM, text) or _first(_QUOTED, text)
    elif intent == "mailbox_permission":
        obj = obj or _first(_MAILBOX, text) or _first(_QUOTED, text)
        lowered = text.lower()
        if "send as" in lowered:
            rights.append("SendAs")
        if "on behalf" in lowered:
            rights.append("SendOnBehalf")
        if "full access" in lowered or not rights:
            rights.insert(0, "FullAccess")
    elif intent == "license_change":
        swap = _FROM_TO.search(text) if _SWAP.search(text) else None
        if swap:
            replaces, obj = swap.group(1).strip(), obj or swap.group(2).strip()
        obj = obj or _first(_LICENCE, text)
    new_user = None
    role = None
    if intent == "onboarding":
        names = list(getattr(triage, "target_names", []) or [])
        new_user = _first(_NEW_STARTER, text) or (names[0] if names else None)
        role = _first(_ROLE, text)
    dates = list(getattr(triage, "dates", []) or [])
    return PlaybookRequest(
        intent=intent,
        object=obj,
        remove=bool(_REMOVE.search(text)) and not bool(_SWAP.search(text)),
        rights=rights,
        new_user_name=new_user,
        new_user_role=role,
        dates=dates,
        replaces=replaces,
    )

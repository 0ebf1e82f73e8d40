"""Triage: name the intent of a ticket from a closed list, with candidate entities and reasons.
Triage only proposes; the policy decides what may happen."""

from tierone.triage.rules import INTENTS, TriageResult, classify

__all__ = ["INTENTS", "TriageResult", "classify"]

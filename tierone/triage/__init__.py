"""Triage: name the intent of a ticket from a closed list, with entities, calibrated confidence and
reasons. Triage only proposes; the policy decides.

Importing this package loads no model and no numeric library: the model (scikit-learn) is loaded on
the first `classify` call, so only the queue worker ever pays for it."""

from tierone.triage.classifier import classify, classify_many, default_model
from tierone.triage.schema import AUTOMATABLE_INTENTS, INTENTS, TriageResult

__all__ = ["AUTOMATABLE_INTENTS", "INTENTS", "TriageResult", "classify", "classify_many", "default_model"]

"""Training: the corpus (and an MSP's mapped history) in, a calibrated model with per-intent thresholds out.

Calibration and thresholds come from out-of-fold predictions grouped by template family (or, for
PSA history, by ticket), so they are measured on phrasings the fold model did not see, as the
held-out split is. The held-out split itself is never read here.

- Temperature: one scalar T minimising the log-loss of the out-of-fold logits / T, folded into the
  weights (`TriageModel.set_temperature`).
- Threshold per automatable intent: the lowest confidence at which the out-of-fold predictions of
  that intent reach the target precision (99.5 %), never below 0.5.
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass, field
from datetime import UTC, datetime
from importlib import resources
from typing import Any

import numpy as np

from tierone.triage.classifier import prepare
from tierone.triage.model import ModelCard, TriageModel
from tierone.triage.schema import AUTOMATABLE_INTENTS, INTENTS

log = logging.getLogger("tierone.triage.training")

TARGET_PRECISION = 0.995
MIN_THRESHOLD = 0.5
MAX_THRESHOLD = 0.97
FOLDS = 5
REGULARISATION = 10.0


@dataclass
class Example:
    subject: str
    body: str
    intent: str
    group: str  # template family, or the PSA ticket for history: folds never split a group
    requester_email: str | None = None
    source: str = "corpus"
    weight: float = 1.0
    labels: dict[str, Any] = field(default_factory=dict)  # target / object / dates, when known


def load_corpus(split: str) -> list[Example]:
    """`train`, `heldout` or `handwritten` (training only) from the package's corpus files."""
    path = resources.files("tierone.triage").joinpath("corpus", f"{split}.jsonl")
    examples: list[Example] = []
    for line in path.read_text(encoding="utf-8").splitlines():
        row = json.loads(line)
        examples.append(
            Example(
                subject=row["subject"],
                body=row["body"],
                intent=row["intent"],
                group=row.get("family", row["id"]),
                requester_email=row.get("requester_email"),
                source="handwritten" if split == "handwritten" else "corpus",
                labels={k: row.get(k) for k in ("id", "target", "object", "dates", "family", "noise")},
            )
        )
    return examples


def model_texts(examples: list[Example]) -> list[str]:
    return [prepare(e.subject, e.body).model_text for e in examples]


def train(
    examples: list[Example],
    *,
    version: str,
    regularisation: float = REGULARISATION,
    folds: int = FOLDS,
    notes: list[str] | None = None,
) -> TriageModel:
    texts = model_texts(examples)
    labels = [e.intent for e in examples]
    weights = [e.weight for e in examples]
    unknown = sorted({label for label in labels if label not in INTENTS})
    if unknown:
        raise ValueError(f"labels outside the closed list: {unknown}")
    card = ModelCard(
        version=version,
        created_at=datetime.now(UTC).isoformat(timespec="seconds"),
        classes=sorted(set(labels)),
        thresholds={},
        regularisation=regularisation,
        trained_on=_count(e.source for e in examples),
        notes=list(notes or []),
    )
    oof_logits, classes = _out_of_fold_logits(texts, labels, weights, [e.group for e in examples], card, folds)
    temperature = _temperature(oof_logits, labels, classes)
    oof = _softmax(oof_logits / temperature)
    card.thresholds = thresholds(oof, labels, classes)
    card.metrics["out_of_fold_accuracy"] = round(float(np.mean(np.asarray(classes)[oof.argmax(1)] == labels)), 4)
    model = TriageModel.fit(texts, labels, card, weights=weights)
    model.set_temperature(temperature)
    log.info("trained %s on %d examples (T=%.2f)", version, len(examples), temperature)
    return model


def _count(items: Any) -> dict[str, int]:
    counts: dict[str, int] = {}
    for item in items:
        counts[item] = counts.get(item, 0) + 1
    return counts


def _out_of_fold_logits(
    texts: list[str], labels: list[str], weights: list[float], groups: list[str], card: ModelCard, folds: int
) -> tuple[np.ndarray, list[str]]:
    from sklearn.model_selection import GroupKFold

    classes = sorted(set(labels))
    logits = np.zeros((len(texts), len(classes)))
    splitter = GroupKFold(n_splits=min(folds, len(set(groups))))
    for fit_index, test_index in splitter.split(texts, labels, groups):
        fold_labels = [labels[i] for i in fit_index]
        fold = TriageModel.fit(
            [texts[i] for i in fit_index], fold_labels, card, weights=[weights[i] for i in fit_index]
        )
        fold_logits = fold.logits([texts[i] for i in test_index])
        # A fold may miss a class entirely: its column stays very unlikely.
        full = np.full((len(test_index), len(classes)), -20.0)
        for column, name in enumerate(fold.classes):
            full[:, classes.index(name)] = fold_logits[:, column]
        logits[test_index] = full
    return logits, classes


def _softmax(logits: np.ndarray) -> np.ndarray:
    from scipy.special import softmax

    return np.asarray(softmax(logits, axis=1))


def _temperature(logits: np.ndarray, labels: list[str], classes: list[str]) -> float:
    from scipy.optimize import minimize_scalar
    from sklearn.metrics import log_loss

    def loss(t: float) -> float:
        return float(log_loss(labels, _softmax(logits / t), labels=classes))

    return float(minimize_scalar(loss, bounds=(0.05, 10.0), method="bounded").x)


def thresholds(probabilities: np.ndarray, labels: list[str], classes: list[str]) -> dict[str, float]:
    predicted = np.asarray(classes)[probabilities.argmax(1)]
    confidence = probabilities.max(1)
    truth = np.asarray(labels)
    chosen: dict[str, float] = {"other": MIN_THRESHOLD}
    for intent in AUTOMATABLE_INTENTS:
        chosen[intent] = MAX_THRESHOLD
        for candidate in np.arange(MIN_THRESHOLD, MAX_THRESHOLD + 1e-9, 0.01):
            acted = (predicted == intent) & (confidence >= candidate)
            if acted.sum() == 0 or (truth[acted] == intent).mean() >= TARGET_PRECISION:
                chosen[intent] = round(float(candidate), 2)
                break
    return chosen

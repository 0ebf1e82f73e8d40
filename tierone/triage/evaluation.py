"""Scoring triage on labelled tickets: accuracy, per-intent precision and recall, the confusion matrix,
and what the policy would do with it (precision and coverage of the predictions above threshold).
The metrics are scikit-learn's."""

from __future__ import annotations

import itertools
from dataclasses import dataclass, field
from typing import Any

from tierone.triage.schema import INTENTS, TriageResult


@dataclass
class Evaluation:
    count: int
    accuracy: float
    precision: dict[str, float]
    recall: dict[str, float]
    support: dict[str, int]
    confusion: list[list[int]]
    labels: list[str]
    # Of the tickets at or above their intent's threshold (what the policy may act on):
    gated_precision: dict[str, float] = field(default_factory=dict)
    gated_coverage: dict[str, float] = field(default_factory=dict)
    calibration_error: float = 0.0
    entities: dict[str, Any] = field(default_factory=dict)

    def as_dict(self) -> dict[str, Any]:
        return dict(self.__dict__)


def evaluate(
    results: list[TriageResult], truth: list[str], entity_labels: list[dict[str, Any]] | None = None
) -> Evaluation:
    import numpy as np
    from sklearn.metrics import accuracy_score, confusion_matrix, precision_recall_fscore_support

    labels = list(INTENTS)
    predicted = [r.intent for r in results]
    precision, recall, _, support = precision_recall_fscore_support(truth, predicted, labels=labels, zero_division=0)
    report = Evaluation(
        count=len(results),
        accuracy=round(float(accuracy_score(truth, predicted)), 4),
        precision={k: round(float(v), 4) for k, v in zip(labels, precision, strict=True)},
        recall={k: round(float(v), 4) for k, v in zip(labels, recall, strict=True)},
        support={k: int(v) for k, v in zip(labels, support, strict=True)},
        confusion=confusion_matrix(truth, predicted, labels=labels).tolist(),
        labels=labels,
    )
    for intent in labels[:-1]:
        acted = [(r, t) for r, t in zip(results, truth, strict=True) if r.intent == intent and not r.below_threshold]
        total = sum(1 for t in truth if t == intent)
        if acted:
            report.gated_precision[intent] = round(sum(t == intent for _, t in acted) / len(acted), 4)
        report.gated_coverage[intent] = round(sum(t == intent for _, t in acted) / total, 4) if total else 0.0
    report.calibration_error = _expected_calibration_error(
        np.asarray([r.candidates[0][1] if r.candidates else r.confidence for r in results]),
        np.asarray(
            [(r.candidates[0][0] if r.candidates else r.intent) == t for r, t in zip(results, truth, strict=True)]
        ),
    )
    if entity_labels:
        report.entities = _entity_scores(results, truth, entity_labels)
    return report


def _expected_calibration_error(confidence: Any, correct: Any, bins: int = 10) -> float:
    """Mean |accuracy − confidence| over equal-width confidence bins, weighted by bin size (the model's
    own top probability, before the guards adjust it)."""
    import numpy as np

    edges = np.linspace(0.0, 1.0, bins + 1)
    error = 0.0
    for low, high in itertools.pairwise(edges):
        inside = (confidence > low) & (confidence <= high)
        if inside.any():
            error += inside.mean() * abs(correct[inside].mean() - confidence[inside].mean())
    return round(float(error), 4)


def _same(found: str | None, expected: str | None) -> bool:
    if not expected:
        return not found
    if not found:
        return False
    a, b = found.lower().strip(), expected.lower().strip()
    return a == b or a in b or b in a


def _entity_scores(results: list[TriageResult], truth: list[str], labels: list[dict[str, Any]]) -> dict[str, Any]:
    """Entity accuracy on the tickets whose intent was right (a wrong intent has no right object)."""
    target = obj = dates = total = with_obj = with_dates = 0
    for result, intent, label in zip(results, truth, labels, strict=True):
        if result.intent != intent:
            continue
        total += 1
        expected_target = label.get("target")
        if expected_target == "requester":
            target += result.target == "requester"
        else:
            candidates = [result.target, *result.target_names, *result.target_emails]
            target += any(_same(c, expected_target) for c in candidates if c)
        if label.get("object"):
            with_obj += 1
            obj += _same(result.object, label["object"])
        if label.get("dates"):
            with_dates += 1
            dates += any(_same(d, label["dates"][0]) for d in result.dates)
    return {
        "tickets": total,
        "target": round(target / total, 4) if total else None,
        "object": round(obj / with_obj, 4) if with_obj else None,
        "dates": round(dates / with_dates, 4) if with_dates else None,
    }


def render(report: Evaluation) -> str:
    """The text `tierone triage --eval` prints."""
    lines = [f"tickets: {report.count}", f"accuracy: {report.accuracy:.4f}", ""]
    lines.append(f"{'intent':<20} {'precision':>9} {'recall':>7} {'support':>7} {'gated P':>8} {'coverage':>8}")
    for intent in report.labels:
        gated = report.gated_precision.get(intent)
        coverage = report.gated_coverage.get(intent)
        lines.append(
            f"{intent:<20} {report.precision[intent]:>9.4f} {report.recall[intent]:>7.4f} {report.support[intent]:>7d} "
            f"{'' if gated is None else f'{gated:.4f}':>8} {'' if coverage is None else f'{coverage:.4f}':>8}"
        )
    lines += ["", "confusion matrix (rows: true intent, columns: predicted, in the order above)"]
    short = [label[:6] for label in report.labels]
    lines.append(" " * 20 + " ".join(f"{s:>6}" for s in short))
    for label, row in zip(report.labels, report.confusion, strict=True):
        lines.append(f"{label:<20}" + " ".join(f"{v:>6d}" for v in row))
    lines += ["", f"expected calibration error of the model's top probability: {report.calibration_error:.4f}"]
    if report.entities:
        e = report.entities
        lines.append(
            f"entities on {e['tickets']} correctly classified tickets: target {e['target']}, object {e['object']}, "
            f"dates {e['dates']}"
        )
    lines.append("gated P / coverage: precision and recall of the predictions at or above the intent's threshold")
    return "\n".join(lines)

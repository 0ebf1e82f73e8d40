"""The `tierone triage` and `tierone learn` commands (wired into tierone/cli.py).

tierone triage FILE.jsonl            one JSON line per ticket: id, intent, confidence, target, object, reasons
tierone triage --eval FILE.jsonl     accuracy, per-intent precision and recall, confusion matrix
tierone learn [--psa P] [--days N]   a per-MSP model from closed tickets, stored if it is no worse
"""

from __future__ import annotations

import asyncio
import json
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import IO, Any, TextIO

from tierone.triage.schema import INTENTS

BATCH = 512


def _lines(source: IO[str]) -> Iterator[tuple[int, dict[str, Any]]]:
    for number, line in enumerate(source, start=1):
        if line.strip():
            try:
                row = json.loads(line)
            except ValueError as exc:
                raise SystemExit(f"line {number}: not JSON ({exc})") from None
            if not isinstance(row, dict) or not isinstance(row.get("subject", ""), str):
                raise SystemExit(f"line {number}: expected an object with id, subject, body")
            yield number, row


def _open(path: str) -> IO[str]:
    return sys.stdin if path == "-" else Path(path).open(encoding="utf-8")


def triage_file(path: str, *, evaluate_labels: bool, model_path: str | None, out: TextIO | None = None) -> int:
    from tierone.triage.classifier import default_model
    from tierone.triage.evaluation import evaluate, render
    from tierone.triage.model import TriageModel

    out = out or sys.stdout
    model = TriageModel.from_bytes(Path(model_path).read_bytes()) if model_path else default_model()
    results = []
    truth: list[str] = []
    entity_labels: list[dict[str, Any]] = []
    source = _open(path)
    try:
        batch: list[tuple[int, dict[str, Any]]] = []
        for item in _lines(source):
            batch.append(item)
            if len(batch) >= BATCH:
                results += _run(batch, model, evaluate_labels, truth, entity_labels, out)
                batch = []
        if batch:
            results += _run(batch, model, evaluate_labels, truth, entity_labels, out)
    finally:
        if source is not sys.stdin:
            source.close()
    if evaluate_labels:
        if not results:
            raise SystemExit("no tickets to evaluate")
        with_entities = entity_labels if any(label.get("target") for label in entity_labels) else None
        print(render(evaluate(results, truth, with_entities)), file=out)
    return 0


def _run(
    batch: list[tuple[int, dict[str, Any]]],
    model: Any,
    evaluate_labels: bool,
    truth: list[str],
    entity_labels: list[dict[str, Any]],
    out: TextIO,
) -> list[Any]:
    from tierone.triage.classifier import classify_many

    results = classify_many(
        [(str(r.get("subject") or ""), str(r.get("body") or ""), r.get("requester_email")) for _, r in batch],
        model=model,
    )
    for (number, row), result in zip(batch, results, strict=True):
        if evaluate_labels:
            label = row.get("intent")
            if label not in INTENTS:
                raise SystemExit(f"line {number}: --eval needs an intent from {', '.join(INTENTS)}")
            truth.append(str(label))
            entity_labels.append({k: row.get(k) for k in ("target", "object", "dates")})
        else:
            line = {
                "id": row.get("id", number),
                "intent": result.intent,
                "confidence": result.confidence,
                "target": result.target,
                "object": result.object,
                "reasons": result.reasons,
            }
            out.write(json.dumps(line, ensure_ascii=False) + "\n")
    return results


def learn_command(psa: str | None, days: int, limit: int, dry_run: bool) -> int:
    from psa_integrations.models import PsaKind
    from psa_integrations.registry import configured, psa_client
    from tierone.settings import Settings
    from tierone.storage import Storage
    from tierone.triage.learn import learn, read_history, since_days

    settings = Settings.from_env()
    kinds = [PsaKind(psa)] if psa else configured(settings)
    if not kinds:
        print("error: no PSA is configured (see the README's settings)", file=sys.stderr)
        return 2
    storage = Storage(settings)
    storage.account.ensure()

    async def run() -> int:
        clients = {kind: psa_client(kind, settings) for kind in kinds}
        try:
            history = await read_history(clients, since_days(days), limit)
        finally:
            for client in clients.values():
                await client.aclose()
        report = await learn(settings, storage, history, dry_run=dry_run)
        for line in report.lines():
            print(line)
        return 0

    return asyncio.run(run())

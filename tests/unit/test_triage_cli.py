"""`tierone triage FILE.jsonl` and `tierone triage --eval FILE.jsonl`."""

from __future__ import annotations

import json

import pytest

from tierone.cli import main
from tierone.triage import INTENTS

TICKETS = [
    {
        "id": "t1",
        "subject": "Password reset",
        "body": "I forgot my password, please reset it",
        "intent": "password_reset",
    },
    {"id": "t2", "subject": "Printer", "body": "The printer on floor 2 is jammed", "intent": "other"},
    {"id": "t3", "subject": "Access", "body": "Please add me to the Finance group", "intent": "group_membership"},
]


def write(tmp_path, rows):
    path = tmp_path / "tickets.jsonl"
    path.write_text("\n".join(json.dumps(r) for r in rows) + "\n", encoding="utf-8")
    return path


def test_one_json_line_per_ticket_with_the_documented_fields(tmp_path, capsys):
    path = write(tmp_path, [{k: v for k, v in r.items() if k != "intent"} for r in TICKETS])
    assert main(["triage", str(path)]) == 0
    lines = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert [line["id"] for line in lines] == ["t1", "t2", "t3"]
    for line in lines:
        assert set(line) == {"id", "intent", "confidence", "target", "object", "reasons"}
        assert line["intent"] in INTENTS
    assert lines[2]["object"] == "Finance"


def test_eval_prints_accuracy_per_intent_precision_and_recall_and_the_confusion_matrix(tmp_path, capsys):
    assert main(["triage", "--eval", str(write(tmp_path, TICKETS))]) == 0
    out = capsys.readouterr().out
    assert "accuracy: 1.0000" in out
    assert "precision" in out
    assert "recall" in out
    assert "confusion matrix" in out
    for intent in INTENTS:
        assert intent in out


def test_eval_refuses_a_line_without_a_known_intent(tmp_path):
    path = write(tmp_path, [{"id": "x", "subject": "s", "body": "b", "intent": "coffee"}])
    with pytest.raises(SystemExit, match="intent"):
        main(["triage", "--eval", str(path)])

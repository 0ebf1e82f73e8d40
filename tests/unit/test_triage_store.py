"""Per-MSP models in Table storage (Azurite), and the model the worker loads."""

from __future__ import annotations

import pytest

from tierone.evidence import Evidence
from tierone.storage import MODELS, Table
from tierone.triage.classifier import default_model
from tierone.triage.model import TriageModel
from tierone.triage.store import CHUNK_BYTES, ModelStore, forget_loaded_model, load_model


@pytest.fixture
def store(storage, unique):
    table = Table(storage.account, MODELS)
    return ModelStore(table)


@pytest.fixture(autouse=True)
def fresh_cache():
    forget_loaded_model()
    yield
    forget_loaded_model()


async def test_an_artifact_larger_than_a_property_is_stored_in_chunks_and_read_back_whole(store):
    data = default_model().to_bytes()
    assert len(data) > CHUNK_BYTES
    pointer = await store.save(data, "msp-test-1", {"heldout_after": {"accuracy": 0.97}})
    assert (await store.pointer()).version == "msp-test-1"
    assert await store.read(pointer) == data
    assert pointer.report["heldout_after"]["accuracy"] == 0.97


async def test_a_damaged_artifact_is_refused(store, storage):
    pointer = await store.save(b"x" * (CHUNK_BYTES + 10), "msp-test-2", {})
    await Table(storage.account, MODELS).upsert({"PartitionKey": "triage", "RowKey": "msp-test-2-0000", "P00": b"y"})
    with pytest.raises(ValueError, match="checksum"):
        await store.read(pointer)


async def test_the_worker_uses_the_stored_model_once_there_is_one(store, storage):
    model = default_model()
    stored = TriageModel.from_bytes(model.to_bytes())
    stored.card.version = "msp-test-3"
    await store.save(stored.to_bytes(), "msp-test-3", {})
    loaded = await load_model(storage)
    assert loaded.card.version == "msp-test-3"
    assert await load_model(storage) is loaded, "cached for the process"


async def test_a_storage_fault_falls_back_to_the_shipped_model(monkeypatch, storage):
    async def broken(self):
        raise ConnectionError("storage down")

    monkeypatch.setattr(ModelStore, "pointer", broken)
    assert (await load_model(storage)).card.version == default_model().card.version


def test_the_escalation_note_lists_the_top_candidates_when_confidence_was_too_low():
    evidence = Evidence(
        ticket_ref="cw:1",
        summary="mailbox",
        intent="mailbox_permission",
        confidence=0.61,
        triage_reasons=["mailbox_permission: 'mailbox' (+0.80)"],
        triage_candidates=[("mailbox_permission", 0.61), ("other", 0.38), ("offboarding", 0.01)],
        rule="P03-low-confidence",
        decision="escalate",
    )
    why = next(line for line in evidence.render("x").splitlines() if line.startswith("Why:"))
    assert "top candidates: mailbox_permission 0.61, other 0.38, offboarding 0.01" in why

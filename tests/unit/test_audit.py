import asyncio
import json

from tierone.audit import AuditEvent, AuditLog


def event(n: int) -> AuditEvent:
    return AuditEvent(
        event_type="decided", ticket=f"connectwise:{n}", actor="tierone", outcome="act", rule="P10", evidence={"n": n}
    )


async def test_records_chain_and_verify_clean(storage, unique):
    log = AuditLog(storage.audit)
    for n in range(3):
        assert await log.append(unique, f"k{n}", event(n))
    records = await log.records(unique)
    assert [r["Seq"] for r in records] == [1, 2, 3]
    assert records[1]["PrevHash"] == records[0]["EntryHash"]
    assert await log.verify(unique) == []


async def test_the_same_event_key_is_recorded_once(storage, unique):
    log = AuditLog(storage.audit)
    assert await log.append(unique, "same", event(1))
    assert not await log.append(unique, "same", event(1))
    assert len(await log.records(unique)) == 1


async def test_concurrent_writers_do_not_fork_the_chain(storage, unique):
    log = AuditLog(storage.audit)
    await asyncio.gather(*(log.append(unique, f"c{n}", event(n)) for n in range(6)))
    assert [r["Seq"] for r in await log.records(unique)] == [1, 2, 3, 4, 5, 6]
    assert await log.verify(unique) == []


async def test_an_edited_record_is_detected(storage, unique):
    log = AuditLog(storage.audit)
    for n in range(3):
        await log.append(unique, f"k{n}", event(n))
    await storage.audit.upsert({"PartitionKey": unique, "RowKey": "0000000002", "outcome": "escalate"})
    assert any("record 2 was altered" in p for p in await log.verify(unique))


async def test_a_deleted_record_is_detected(storage, unique):
    log = AuditLog(storage.audit)
    for n in range(3):
        await log.append(unique, f"k{n}", event(n))
    await storage.audit.delete(unique, "0000000002")
    problems = await log.verify(unique)
    assert any("missing" in p for p in problems)


async def test_evidence_is_stored_as_json(storage, unique):
    log = AuditLog(storage.audit)
    await log.append(unique, "e", event(7))
    (record,) = await log.records(unique)
    assert json.loads(record["Evidence"]) == {"n": 7}

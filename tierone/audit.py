"""Append-only, hash-chained audit records in Table Storage, one chain per customer tenant.

Each record stores the hash of the previous one; a head row holds the chain's last hash and
sequence number. A record, its idempotency marker and the head move together in one
entity-group transaction guarded by the head's ETag, so concurrent writers cannot fork the
chain and a retried step cannot write its record twice. Records never carry secrets."""

from __future__ import annotations

import hashlib
import json
import logging
from datetime import UTC, datetime
from typing import Any

from pydantic import BaseModel, Field

from tierone.storage import ConcurrencyConflict, Table

log = logging.getLogger("tierone.audit")

HEAD = "~head"
GENESIS = "0" * 64
_MAX_ATTEMPTS = 8
# What an export carries: the record's own fields and its chain links, so a reviewer can re-verify
# the chain from the file. Table metadata (ETag, Timestamp), markers and the head stay out.
EXPORT_FIELDS = (
    "Seq",
    "At",
    "EventKey",
    "event_type",
    "ticket",
    "actor",
    "requester",
    "target",
    "action",
    "outcome",
    "rule",
    "Evidence",
    "PrevHash",
    "EntryHash",
)


class AuditEvent(BaseModel):
    event_type: str = Field(description="received | decided | executed | escalated | closed | failed ...")
    ticket: str = Field(description="psa:ticket id")
    actor: str = Field(description="who did it: 'tierone' or the approver")
    requester: str | None = None
    target: str | None = None
    action: str | None = None
    outcome: str
    rule: str | None = None
    evidence: dict[str, Any] = Field(default_factory=dict)


def _canonical(fields: dict[str, Any]) -> bytes:
    return json.dumps(fields, sort_keys=True, separators=(",", ":"), default=str).encode("utf-8")


def entry_hash(fields: dict[str, Any], prev_hash: str) -> str:
    return hashlib.sha256(_canonical(fields) + prev_hash.encode("ascii")).hexdigest()


def _key_marker(event_key: str) -> str:
    return "key|" + hashlib.sha256(event_key.encode("utf-8")).hexdigest()


class AuditLog:
    def __init__(self, table: Table) -> None:
        self._table = table

    async def append(self, tenant: str, event_key: str, event: AuditEvent) -> bool:
        """Append once per event_key; return False if that event was already recorded."""
        from azure.core import MatchConditions
        from azure.data.tables import UpdateMode

        marker = _key_marker(event_key)
        for _ in range(_MAX_ATTEMPTS):
            if await self._table.get(tenant, marker) is not None:
                return False
            head = await self._table.get(tenant, HEAD)
            seq = int(head["Seq"]) + 1 if head else 1
            prev = str(head["LastHash"]) if head else GENESIS
            fields = {
                "Seq": seq,
                "At": datetime.now(UTC).isoformat(),
                "EventKey": event_key,
                **{k: v for k, v in event.model_dump().items() if k != "evidence"},
                "Evidence": event.evidence,
            }
            digest = entry_hash(fields, prev)
            row = {
                "PartitionKey": tenant,
                "RowKey": f"{seq:010d}",
                **{k: v for k, v in fields.items() if k not in ("Evidence",) and v is not None},
                "Evidence": json.dumps(event.evidence, sort_keys=True, default=str),
                "PrevHash": prev,
                "EntryHash": digest,
            }
            new_head = {"PartitionKey": tenant, "RowKey": HEAD, "Seq": seq, "LastHash": digest}
            operations: list[tuple[Any, ...]] = [
                ("create", row),
                ("create", {"PartitionKey": tenant, "RowKey": marker, "Seq": seq}),
            ]
            if head is None:
                operations.append(("create", new_head))
            else:
                condition = {
                    "mode": UpdateMode.REPLACE,
                    "etag": head.metadata["etag"],
                    "match_condition": MatchConditions.IfNotModified,
                }
                operations.append(("update", new_head, condition))
            try:
                await self._table.transact(operations)
                return True
            except ConcurrencyConflict:
                continue
        raise ConcurrencyConflict(f"audit chain of {tenant} is too contended")

    async def records(self, tenant: str) -> list[dict[str, Any]]:
        rows = await self._table.query(
            "PartitionKey eq @pk and RowKey ge @lo and RowKey lt @hi", pk=tenant, lo="0", hi=":"
        )
        return sorted((dict(r) for r in rows), key=lambda r: str(r["RowKey"]))

    async def verify(self, tenant: str) -> list[str]:
        """Every problem found in the tenant's chain (empty when intact)."""
        problems: list[str] = []
        prev = GENESIS
        expected_seq = 1
        for row in await self.records(tenant):
            seq = int(row["Seq"])
            if seq != expected_seq:
                problems.append(f"record {expected_seq} is missing (found {seq})")
            fields: dict[str, Any] = {
                k: row[k]
                for k in (
                    "Seq",
                    "At",
                    "EventKey",
                    "event_type",
                    "ticket",
                    "actor",
                    "requester",
                    "target",
                    "action",
                    "outcome",
                    "rule",
                )
                if k in row
            }
            for optional in ("requester", "target", "action", "rule"):
                fields.setdefault(optional, None)
            fields["Evidence"] = json.loads(str(row.get("Evidence") or "{}"))
            if row.get("PrevHash") != prev:
                problems.append(f"record {seq} does not follow record {seq - 1}")
            if entry_hash(fields, str(row.get("PrevHash"))) != row.get("EntryHash"):
                problems.append(f"record {seq} was altered")
            prev = str(row.get("EntryHash"))
            expected_seq = seq + 1
        head = await self._table.get(tenant, HEAD)
        if head is not None and (int(head["Seq"]) != expected_seq - 1 or head["LastHash"] != prev):
            problems.append(f"the chain ends at record {expected_seq - 1}, the head says {head['Seq']}")
        return problems

    async def partitions(self) -> list[str]:
        """Every tenant with a chain, found from the head rows (one per chain)."""
        heads = await self._table.query("RowKey eq @head", head=HEAD)
        return sorted(str(h["PartitionKey"]) for h in heads)

    async def export(self, tenant: str, since: datetime | None = None) -> list[dict[str, Any]]:
        """The tenant's records at or after `since`, reduced to EXPORT_FIELDS (for reviews with the client)."""
        cutoff = since.replace(tzinfo=UTC) if since is not None and since.tzinfo is None else since
        rows = []
        for row in await self.records(tenant):
            if cutoff is not None and datetime.fromisoformat(str(row["At"])) < cutoff:
                continue
            rows.append({"tenant": tenant, **{k: row.get(k) for k in EXPORT_FIELDS}})
        return rows

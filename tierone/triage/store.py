"""Per-MSP triage models in Table storage, and the model the worker classifies with.

Why Table storage and not Blob: the app already holds Table and Queue clients with their
identity-based auth, and an artifact is well under 1 MB, so it fits in one or two entities as
binary properties of at most 60 KB (Azure's limit is 64 KiB a property, 1 MiB an entity). A Blob
container would mean a new SDK, a new role assignment and a new Bicep resource for one file.

Layout (table `models`, partition `triage`):
- `<version>-0000`, `<version>-0001`, …: the artifact's bytes, in properties `P00`…`P14`;
- `active`: the pointer (version, SHA-256, size, row count, accuracy figures), written last, so a
  reader sees either the old model or the whole new one, never half of one.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import logging
import threading
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from tierone.storage import MODELS, Storage, Table

if TYPE_CHECKING:
    from tierone.triage.model import TriageModel

log = logging.getLogger("tierone.triage.store")

PARTITION = "triage"
POINTER = "active"
CHUNK_BYTES = 60_000
CHUNKS_PER_ROW = 10  # 10 × 60 KB: well under the 1 MiB entity limit, however binary properties are counted
REFRESH_SECONDS = 600.0  # how often a worker checks for a newly learned model


@dataclass(frozen=True)
class Pointer:
    version: str
    sha256: str
    size: int
    rows: int
    created_at: str
    report: dict[str, Any]


class ModelStore:
    def __init__(self, table: Table) -> None:
        self._table = table

    @classmethod
    def of(cls, storage: Storage) -> ModelStore:
        return cls(Table(storage.account, MODELS))

    async def save(self, data: bytes, version: str, report: dict[str, Any]) -> Pointer:
        pieces = [data[i : i + CHUNK_BYTES] for i in range(0, len(data), CHUNK_BYTES)] or [b""]
        rows = [pieces[i : i + CHUNKS_PER_ROW] for i in range(0, len(pieces), CHUNKS_PER_ROW)]
        for index, row in enumerate(rows):
            entity: dict[str, Any] = {"PartitionKey": PARTITION, "RowKey": f"{version}-{index:04d}"}
            entity.update({f"P{i:02d}": piece for i, piece in enumerate(row)})
            await self._table.upsert(entity)
        pointer = Pointer(
            version=version,
            sha256=hashlib.sha256(data).hexdigest(),
            size=len(data),
            rows=len(rows),
            created_at=datetime.now(UTC).isoformat(timespec="seconds"),
            report=report,
        )
        previous = await self.pointer()
        await self._table.upsert(
            {
                "PartitionKey": PARTITION,
                "RowKey": POINTER,
                "Version": pointer.version,
                "Sha256": pointer.sha256,
                "Size": pointer.size,
                "Rows": pointer.rows,
                "CreatedAt": pointer.created_at,
                "Report": json.dumps(report)[:30_000],
                "Previous": previous.version if previous else "",
            }
        )
        return pointer

    async def pointer(self) -> Pointer | None:
        entity = await self._table.get(PARTITION, POINTER)
        if entity is None or not entity.get("Version"):
            return None
        try:
            report = json.loads(entity.get("Report") or "{}")
        except ValueError:
            report = {}
        return Pointer(
            version=str(entity["Version"]),
            sha256=str(entity["Sha256"]),
            size=int(entity["Size"]),
            rows=int(entity["Rows"]),
            created_at=str(entity.get("CreatedAt") or ""),
            report=report,
        )

    async def read(self, pointer: Pointer) -> bytes:
        parts: list[bytes] = []
        for index in range(pointer.rows):
            entity = await self._table.get(PARTITION, f"{pointer.version}-{index:04d}")
            if entity is None:
                raise ValueError(f"triage model {pointer.version}: row {index} is missing")
            names = sorted(k for k in entity if k.startswith("P") and k[1:].isdigit())
            parts += [bytes(entity[name]) for name in names]
        data = b"".join(parts)
        if len(data) != pointer.size or hashlib.sha256(data).hexdigest() != pointer.sha256:
            raise ValueError(f"triage model {pointer.version} does not match its checksum")
        return data


# --- the worker's model: loaded once, re-checked every few minutes ------------------------------


@dataclass
class _Cached:
    model: TriageModel
    version: str  # "default" for the shipped model
    checked: float


_cached: _Cached | None = None
_lock = threading.Lock()


async def load_model(storage: Storage, *, refresh_seconds: float = REFRESH_SECONDS) -> TriageModel:
    """The MSP's learned model if one is stored, else the shipped one; cached per process.

    A storage problem never stops triage: the model already loaded (or the shipped one) is used."""
    from tierone.triage.classifier import default_model

    global _cached
    with _lock:
        cached = _cached
    if cached is not None and time.monotonic() - cached.checked < refresh_seconds:
        return cached.model
    try:
        store = ModelStore.of(storage)
        pointer = await store.pointer()
        if pointer is None:
            model, version = (
                (cached.model, cached.version) if cached and cached.version == "default" else (None, "default")
            )
            if model is None:
                model = await asyncio.to_thread(default_model)
        elif cached is not None and cached.version == pointer.version:
            model, version = cached.model, cached.version
        else:
            from tierone.triage.model import TriageModel

            data = await store.read(pointer)
            model, version = await asyncio.to_thread(TriageModel.from_bytes, data), pointer.version
            log.info("triage model %s loaded from storage (%d bytes)", version, pointer.size)
    except Exception as exc:
        log.warning(
            "triage model from storage unavailable (%s); using the %s model", exc, "loaded" if cached else "shipped"
        )
        if cached is not None:
            model, version = cached.model, cached.version
        else:
            model, version = await asyncio.to_thread(default_model), "default"
    with _lock:
        _cached = _Cached(model, version, time.monotonic())
    return model


def forget_loaded_model() -> None:
    """Drop the cached model (tests; a process that just stored a new one)."""
    global _cached
    with _lock:
        _cached = None

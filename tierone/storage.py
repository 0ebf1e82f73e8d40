"""Table Storage and Queue Storage behind a small async facade.

The Azure SDK clients are synchronous; each call runs in a worker thread so that the async
handlers never block their event loop. Clients are created on first use and reused for the
life of the process (the SDKs pool connections). Locally the account is Azurite, reached by
connection string; in Azure it is reached with the app's managed identity (no keys)."""

from __future__ import annotations

import asyncio
import contextlib
import threading
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from tierone.errors import ConfigError
from tierone.settings import Settings

if TYPE_CHECKING:
    from azure.data.tables import TableClient, TableEntity
    from azure.storage.queue import QueueClient

TICKETS_QUEUE = "tickets"

# Table names (3–63 alphanumerics). Bicep creates them in Azure; `ensure` makes them locally.
DELIVERIES = "deliveries"
TICKETS = "tickets"
TENANTS = "tenants"
SECRETS = "secrets"
AUDIT = "audit"
LEDGER = "ledger"
MODELS = "models"  # per-MSP triage models (tierone/triage/store.py)
APPROVALS = "approvals"  # approval requests (tierone/approvals.py)
POLICIES = "policies"  # versioned per-client policies (tierone/client_policy.py)
ALL_TABLES = (DELIVERIES, TICKETS, TENANTS, SECRETS, AUDIT, LEDGER, MODELS, APPROVALS, POLICIES)


class ConcurrencyConflict(Exception):
    """Someone else changed the entity since we read it (HTTP 412), or created it first (409)."""


class StorageAccount:
    """Creates and caches the SDK clients for one storage account."""

    def __init__(self, settings: Settings) -> None:
        self._settings = settings
        self._lock = threading.Lock()
        self._tables: dict[str, TableClient] = {}
        self._queues: dict[str, QueueClient] = {}
        self._credential: Any = None

    def _managed_identity(self) -> Any:
        """The app's user-assigned identity in Azure; on an admin's workstation (no client id set),
        whoever is signed in to the Azure CLI — so `tierone` commands work against the real account."""
        if self._credential is None:
            if self._settings.storage_client_id:
                from azure.identity import ManagedIdentityCredential

                self._credential = ManagedIdentityCredential(client_id=self._settings.storage_client_id)
            else:
                from azure.identity import AzureCliCredential

                self._credential = AzureCliCredential()
        return self._credential

    def _endpoint(self, service: str) -> str:
        s = self._settings
        explicit = s.storage_table_uri if service == "table" else s.storage_queue_uri
        if explicit:
            return explicit
        if s.storage_account_name:
            return f"https://{s.storage_account_name}.{service}.core.windows.net"
        raise ConfigError("missing app settings: AzureWebJobsStorage or AzureWebJobsStorage__accountName")

    def table_client(self, name: str) -> TableClient:
        with self._lock:
            client = self._tables.get(name)
            if client is None:
                from azure.data.tables import TableClient

                conn = self._settings.storage_connection_string
                if conn is not None:
                    client = TableClient.from_connection_string(conn.get_secret_value(), table_name=name)
                else:
                    client = TableClient(self._endpoint("table"), table_name=name, credential=self._managed_identity())
                self._tables[name] = client
            return client

    def queue_client(self, name: str) -> QueueClient:
        with self._lock:
            client = self._queues.get(name)
            if client is None:
                from azure.storage.queue import (
                    BinaryBase64DecodePolicy,
                    QueueClient,
                    TextBase64EncodePolicy,
                )

                # The Functions host expects base64 message bodies (host.json messageEncoding).
                policies: dict[str, Any] = {
                    "message_encode_policy": TextBase64EncodePolicy(),
                    "message_decode_policy": BinaryBase64DecodePolicy(),
                }
                conn = self._settings.storage_connection_string
                if conn is not None:
                    client = QueueClient.from_connection_string(conn.get_secret_value(), queue_name=name, **policies)
                else:
                    client = QueueClient(
                        self._endpoint("queue"),
                        queue_name=name,
                        credential=self._managed_identity(),
                        **policies,
                    )
                self._queues[name] = client
            return client

    def ensure(self) -> None:
        """Create every table and queue the app uses, if missing (local runs; Bicep does it in Azure)."""
        from azure.core.exceptions import ResourceExistsError

        for name in ALL_TABLES:
            with contextlib.suppress(ResourceExistsError):
                self.table_client(name).create_table()
        for queue in (TICKETS_QUEUE, f"{TICKETS_QUEUE}-poison"):
            with contextlib.suppress(ResourceExistsError):
                self.queue_client(queue).create_queue()


class Table:
    """Async access to one table. Entities are plain mappings; `etag` travels in entity.metadata."""

    def __init__(self, account: StorageAccount, name: str) -> None:
        self._account = account
        self.name = name

    @property
    def _client(self) -> TableClient:
        return self._account.table_client(self.name)

    async def insert(self, entity: Mapping[str, Any]) -> None:
        """Create the entity; raise ConcurrencyConflict if it already exists (the idempotency primitive)."""
        from azure.core.exceptions import ResourceExistsError

        try:
            await asyncio.to_thread(self._client.create_entity, dict(entity))
        except ResourceExistsError as exc:
            raise ConcurrencyConflict(f"{self.name}: entity exists") from exc

    async def get(self, partition_key: str, row_key: str) -> TableEntity | None:
        from azure.core.exceptions import ResourceNotFoundError

        try:
            return await asyncio.to_thread(self._client.get_entity, partition_key, row_key)
        except ResourceNotFoundError:
            return None

    async def upsert(self, entity: Mapping[str, Any]) -> None:
        from azure.data.tables import UpdateMode

        await asyncio.to_thread(self._client.upsert_entity, dict(entity), mode=UpdateMode.MERGE)

    async def update(self, entity: Mapping[str, Any], *, etag: str) -> None:
        """Merge changes only if nobody changed the entity since it was read (ETag)."""
        from azure.core import MatchConditions
        from azure.core.exceptions import ResourceModifiedError, ResourceNotFoundError
        from azure.data.tables import UpdateMode

        try:
            await asyncio.to_thread(
                self._client.update_entity,
                dict(entity),
                mode=UpdateMode.MERGE,
                etag=etag,
                match_condition=MatchConditions.IfNotModified,
            )
        except (ResourceModifiedError, ResourceNotFoundError) as exc:
            raise ConcurrencyConflict(f"{self.name}: entity changed or gone") from exc

    async def delete(self, partition_key: str, row_key: str, *, etag: str | None = None) -> None:
        """Delete; with an etag, only if unchanged since read (so a one-time read happens once)."""
        from azure.core import MatchConditions
        from azure.core.exceptions import ResourceModifiedError, ResourceNotFoundError

        kwargs: dict[str, Any] = {}
        if etag is not None:
            kwargs = {"etag": etag, "match_condition": MatchConditions.IfNotModified}
        try:
            client: Any = self._client
            await asyncio.to_thread(client.delete_entity, partition_key, row_key, **kwargs)
        except (ResourceModifiedError, ResourceNotFoundError) as exc:
            if etag is None:
                return
            raise ConcurrencyConflict(f"{self.name}: entity changed or gone") from exc

    async def transact(self, operations: list[tuple[Any, ...]]) -> None:
        """Apply operations on one partition atomically; a lost race surfaces as ConcurrencyConflict."""
        from azure.data.tables import TableTransactionError

        try:
            await asyncio.to_thread(self._client.submit_transaction, operations)
        except TableTransactionError as exc:
            if exc.status_code in (409, 412):
                raise ConcurrencyConflict(f"{self.name}: transaction lost a race") from exc
            raise

    async def all(self) -> list[TableEntity]:
        return await asyncio.to_thread(lambda: list(self._client.list_entities()))

    async def query(self, query_filter: str, **parameters: Any) -> list[TableEntity]:
        def run() -> list[TableEntity]:
            return list(self._client.query_entities(query_filter, parameters=parameters))

        return await asyncio.to_thread(run)


class Queue:
    def __init__(self, account: StorageAccount, name: str) -> None:
        self._account = account
        self.name = name

    async def send(self, body: str, *, delay_seconds: int = 0) -> str:
        """Enqueue; with a delay the message stays invisible that long (a retry with backoff)."""
        client = self._account.queue_client(self.name)
        message = await asyncio.to_thread(client.send_message, body, visibility_timeout=delay_seconds or None)
        return str(message.id)


class Storage:
    """The app's tables and queues, over one account."""

    def __init__(self, settings: Settings) -> None:
        self.account = StorageAccount(settings)
        self.deliveries = Table(self.account, DELIVERIES)
        self.tickets = Table(self.account, TICKETS)
        self.tenants = Table(self.account, TENANTS)
        self.secrets = Table(self.account, SECRETS)
        self.audit = Table(self.account, AUDIT)
        self.ledger = Table(self.account, LEDGER)
        self.approvals = Table(self.account, APPROVALS)
        self.policies = Table(self.account, POLICIES)
        self.ticket_queue = Queue(self.account, TICKETS_QUEUE)


_storage: Storage | None = None
_storage_lock = threading.Lock()


def get_storage() -> Storage:
    """The process-wide Storage, built from the settings on first use."""
    global _storage
    with _storage_lock:
        if _storage is None:
            from tierone.settings import get_settings

            _storage = Storage(get_settings())
        return _storage


def reset_storage() -> None:
    """Forget cached clients (used when settings change within one process, e.g. between test runs)."""
    global _storage
    with _storage_lock:
        _storage = None

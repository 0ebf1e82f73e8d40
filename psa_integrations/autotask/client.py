"""Autotask PSA REST client: zone discovery, header auth, the calls the pipeline needs (psa.md §2.5–2.7).

Autotask specifics this module absorbs, so the rest of TierOne never sees them:
- The API host depends on the tenant's zone. It is discovered from the user name (no credentials
  needed) and cached for hours; `AUTOTASK_API_URL` overrides discovery. `V1.0` is pinned.
- Credentials travel as three headers on every call (never to the zone lookup).
- Updates are PATCHes to the entity root with the id in the body; creates answer `{"itemId"}`;
  a GET of a missing id answers 200 with `{"item": null}`.
- Three concurrent requests per endpoint and integration code: a per-client semaphore per
  endpoint keeps this process under it, and a rejection (`Itgenatr005`, whatever its status) is
  turned into a 429 so the shared retry rules wait and retry it, even for a write: the request was
  refused before it ran.
- Errors are `{"errors": ["text", ...]}`, often with status 500 even for validation failures.
"""

from __future__ import annotations

import asyncio
import json
import logging
import math
import re
import threading
import time
from contextlib import AbstractAsyncContextManager
from datetime import UTC, datetime
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import httpx

from psa_integrations.http import backoff_delay, send
from psa_integrations.models import ClosedTicket, Company, Contact, Note, NoteVisibility, PsaKind, Ticket, TimeEntry
from tierone.errors import ConfigError, PermanentError, TransientError
from tierone.settings import Settings

log = logging.getLogger("tierone.psa.autotask")

VENDOR = "Autotask"
API_VERSION = "V1.0"
ZONE_CACHE_SECONDS = 6 * 3600.0
THREADS_PER_ENDPOINT = 3
MAX_RECORDS = 500
QUERY_ATTEMPTS = 3
# TicketNotes.publish: 1 = All Autotask Users, 2 = Internal (psa.md §2.6). We treat every value
# other than 1 as internal, so an unexpected tenant value never reads as customer-visible.
PUBLISH_ALL_USERS = 1
PUBLISH_INTERNAL = 2
NOTE_TITLES = {False: "TierOne: update", True: "TierOne: internal note"}
THREAD_LIMIT_MARKERS = ("itgenatr005", "thread threshold", "thread limit")
_WIRE_HEADERS = frozenset({"content-encoding", "content-length", "transfer-encoding"})

_zone_cache: dict[tuple[str, str], tuple[str, float]] = {}
_zone_lock = threading.Lock()


def clear_zone_cache() -> None:
    with _zone_lock:
        _zone_cache.clear()


# ---------------------------------------------------------------------------------------------
# Small conversions
# ---------------------------------------------------------------------------------------------


def api_base(url: str) -> str:
    """The V1.0 base from a zone URL: `https://ws14.autotask.net//ATServicesRest/` → `.../ATServicesRest/V1.0/`.

    Old zone answers carried a double slash; the version segment is pinned (V2.0 zone lookups 404)."""
    parts = urlsplit(url.strip())
    path = re.sub(r"/{2,}", "/", parts.path or "/")
    if not path.endswith("/"):
        path += "/"
    if not path.lower().endswith(f"/{API_VERSION.lower()}/"):
        path += f"{API_VERSION}/"
    return urlunsplit((parts.scheme, parts.netloc, path, "", ""))


def at_time(moment: datetime) -> str:
    """Autotask stores and compares UTC."""
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def parse_time(text: Any) -> datetime | None:
    """Autotask datetimes: `Z` or no zone (UTC either way), and up to 7 fractional digits (.NET)."""
    if not isinstance(text, str) or not text:
        return None
    match = re.match(r"^(\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2})(?:\.(\d+))?(Z|[+-]\d{2}:?\d{2})?$", text.strip())
    if not match:
        return None
    base, fraction, zone = match.groups()
    moment = datetime.fromisoformat(base + (f".{fraction[:6].ljust(6, '0')}" if fraction else ""))
    if zone and zone != "Z":
        return datetime.fromisoformat(moment.isoformat() + zone).astimezone(UTC)
    return moment.replace(tzinfo=UTC)


def billable_hours(start: datetime, end: datetime) -> float:
    """Rounded *up* to hundredths: Autotask refuses 0 hours, and a short fix still took time."""
    seconds = max(0.0, (end - start).total_seconds())
    return min(24.0, max(0.01, math.ceil(round(seconds / 36, 6)) / 100))


def work_window(start: datetime, end: datetime) -> tuple[datetime, datetime]:
    """UTC start and end, kept within the start's UTC day.

    An entry that spans midnight needs a tenant setting ("span over midnight") we cannot rely on;
    the few minutes lost are better than a refused entry."""
    start, end = start.astimezone(UTC), end.astimezone(UTC)
    end = max(end, start)
    if end.date() != start.date():
        end = start.replace(hour=23, minute=59, second=59, microsecond=0)
    return start, end


def _error_strings(body: bytes) -> list[str]:
    try:
        data = json.loads(body)
    except ValueError:
        return []
    errors = data.get("errors") if isinstance(data, dict) else None
    if not isinstance(errors, list):
        return []
    return [str(e.get("message") if isinstance(e, dict) else e) for e in errors if e]


class _AutotaskTransport(httpx.AsyncBaseTransport):
    """Fits two Autotask habits to the shared retry rules of psa_integrations.http.

    - A thread-limit rejection becomes a 429 (with a short Retry-After), whatever status it came with.
    - `{"errors": [strings]}` gains a `message`, which is what the shared error text reads."""

    def __init__(self, inner: httpx.AsyncBaseTransport) -> None:
        self._inner = inner

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        response = await self._inner.handle_async_request(request)
        if response.status_code < 400:
            return response
        body = await response.aread()
        messages = _error_strings(body)
        if not messages:
            # The body is already decoded: drop the headers that described its encoding on the wire.
            kept = {k: v for k, v in response.headers.items() if k.lower() not in _WIRE_HEADERS}
            return httpx.Response(response.status_code, headers=kept, content=body)
        text = "; ".join(messages)
        headers = {"Content-Type": "application/json"}
        if "retry-after" in response.headers:
            headers["Retry-After"] = response.headers["retry-after"]
        status = response.status_code
        if any(marker in text.lower() for marker in THREAD_LIMIT_MARKERS):
            log.info("autotask thread limit hit on %s (answered %s); waiting", request.url.path, status)
            status = 429
            headers.setdefault("Retry-After", "1")
        elif status >= 500:
            # Autotask answers many validation failures with a 500: keep its words in the log.
            log.warning("autotask %s %s answered %s: %s", request.method, request.url.path, status, text[:300])
        content = json.dumps({"errors": messages, "message": text}).encode()
        return httpx.Response(status, headers=headers, content=content)

    async def aclose(self) -> None:
        await self._inner.aclose()


# ---------------------------------------------------------------------------------------------
# The client
# ---------------------------------------------------------------------------------------------


class AutotaskClient:
    kind = PsaKind.AUTOTASK

    def __init__(self, settings: Settings, *, transport: httpx.AsyncBaseTransport | None = None) -> None:
        settings.require("autotask_username", "autotask_secret", "autotask_integration_code")
        assert settings.autotask_username is not None
        assert settings.autotask_secret is not None
        assert settings.autotask_integration_code is not None
        self._settings = settings
        self._username = settings.autotask_username
        # Sent per request, not as client defaults, so the zone lookup never carries the secret.
        self._auth = {
            "ApiIntegrationCode": settings.autotask_integration_code.get_secret_value(),
            "UserName": settings.autotask_username,
            "Secret": settings.autotask_secret.get_secret_value(),
        }
        self._http = httpx.AsyncClient(
            headers={"Accept": "application/json"},
            timeout=httpx.Timeout(30.0, connect=5.0),
            transport=_AutotaskTransport(transport or httpx.AsyncHTTPTransport()),
            follow_redirects=False,
        )
        self._base = api_base(settings.autotask_api_url) if settings.autotask_api_url else None
        self._gates: dict[str, asyncio.Semaphore] = {}
        self._picklists: dict[str, dict[str, str]] | None = None
        self._read: dict[str, dict[str, Any]] = {}
        self._roles: dict[int, int] = {}

    async def aclose(self) -> None:
        await self._http.aclose()

    # -- plumbing ------------------------------------------------------------------------------

    async def base_url(self) -> str:
        """The tenant's API base (…/ATServicesRest/V1.0/), discovered once per process per user."""
        if self._base is not None:
            return self._base
        lookup = self._settings.autotask_zone_lookup_url
        key = (lookup, self._username.lower())
        with _zone_lock:
            cached = _zone_cache.get(key)
        if cached is not None and cached[1] > time.monotonic():
            self._base = cached[0]
            return cached[0]
        try:
            response = await send(self._http, "GET", lookup, vendor=VENDOR, params={"user": self._username})
        except PermanentError as exc:
            raise PermanentError(f"Autotask zone lookup for {self._username} failed: {exc}") from exc
        zone_url = response.json().get("url") if response.content else None
        if not isinstance(zone_url, str) or not zone_url.startswith(("https://", "http://")):
            raise PermanentError(f"Autotask zone lookup for {self._username} returned no API url")
        base = api_base(zone_url)
        with _zone_lock:
            _zone_cache[key] = (base, time.monotonic() + ZONE_CACHE_SECONDS)
        self._base = base
        log.info("autotask zone for %s: %s", self._username, base)
        return base

    def _gate(self, url: str) -> AbstractAsyncContextManager[Any]:
        """One semaphore per object endpoint: Autotask counts threads per endpoint (Tickets, TicketNotes…)."""
        path = urlsplit(url).path
        tail = re.split(r"/v1\.0/", path, maxsplit=1, flags=re.IGNORECASE)[-1]
        endpoint = tail.strip("/").split("/")[0].lower()
        gate = self._gates.get(endpoint)
        if gate is None:
            gate = self._gates[endpoint] = asyncio.Semaphore(THREADS_PER_ENDPOINT)
        return gate

    async def api(self, method: str, path: str, **kwargs: Any) -> Any:
        """One REST call; `path` is relative to the V1.0 base, or an absolute `nextPageUrl`."""
        url = path if "://" in path else await self.base_url() + path.lstrip("/")
        async with self._gate(url):
            response = await send(self._http, method, url, vendor=VENDOR, headers=self._auth, **kwargs)
        return response.json() if response.content else None

    async def item(self, entity: str, record_id: int | str) -> dict[str, Any] | None:
        """`GET {entity}/{id}`; None when Autotask answers `{"item": null}` (its way of saying not found)."""
        body = await self.api("GET", f"{entity}/{int(record_id)}")
        found = (body or {}).get("item")
        return found if isinstance(found, dict) else None

    async def required_item(self, entity: str, record_id: int | str) -> dict[str, Any]:
        found = await self.item(entity, record_id)
        if found is None:
            raise PermanentError(f"Autotask {entity} {record_id} not found")
        return found

    async def create(self, entity: str, body: dict[str, Any]) -> int:
        answer = await self.api("POST", entity, json=body)
        return int(answer["itemId"])

    async def query(
        self, entity: str, filters: list[dict[str, Any]], include_fields: list[str] | None = None
    ) -> list[dict[str, Any]]:
        """Every row matching `filters`, following `nextPageUrl` (POSTed with the same body, as Autotask requires)."""
        body: dict[str, Any] = {"filter": filters, "MaxRecords": MAX_RECORDS}
        if include_fields:
            body["IncludeFields"] = include_fields
        rows: list[dict[str, Any]] = []
        url: str | None = f"{entity}/query"
        seen: set[str] = set()
        while url and url not in seen:
            seen.add(url)
            page = await self._query_page(url, body)
            rows.extend(page.get("items") or [])
            url = (page.get("pageDetails") or {}).get("nextPageUrl")
            if url and urlsplit(url).netloc != urlsplit(await self.base_url()).netloc:
                # Our credentials go with every call: never to a host the answer merely names.
                raise PermanentError(f"Autotask paged {entity} query to another host: {urlsplit(url).netloc}")
        return rows

    async def _query_page(self, url: str, body: dict[str, Any]) -> dict[str, Any]:
        # A query is a read sent as POST, so the shared rules will not repeat it on a 5xx; it is
        # safe to repeat, and Autotask's 5xx are often passing.
        for attempt in range(QUERY_ATTEMPTS):
            try:
                return dict(await self.api("POST", url, json=body) or {})
            except TransientError:
                if attempt == QUERY_ATTEMPTS - 1:
                    raise
                await asyncio.sleep(backoff_delay(attempt))
        raise AssertionError("unreachable")

    async def picklist(self, field: str) -> dict[str, str]:
        """Ticket picklist labels by value (status, queueID…), read once per client; {} if unreadable."""
        if self._picklists is None:
            try:
                info = await self.api("GET", "Tickets/entityInformation/fields")
            except PermanentError as exc:
                log.warning("autotask ticket field information unavailable: %s", exc)
                info = {}
            self._picklists = {
                str(f.get("name", "")).lower(): {
                    str(v.get("value")): str(v.get("label")) for v in f.get("picklistValues") or []
                }
                for f in (info or {}).get("fields") or []
                if f.get("isPickList")
            }
        return self._picklists.get(field.lower(), {})

    # -- PsaClient -----------------------------------------------------------------------------

    async def get_ticket(self, ticket_id: str) -> Ticket:
        raw = await self.required_item("Tickets", ticket_id)
        self._read[str(ticket_id)] = raw
        company = await self.required_item("Companies", raw["companyID"])
        contact = await self.item("Contacts", raw["contactID"]) if raw.get("contactID") else None
        statuses = await self.picklist("status")
        queues = await self.picklist("queueID")
        status = raw.get("status")
        queue = raw.get("queueID")
        return Ticket(
            psa=PsaKind.AUTOTASK,
            id=str(raw["id"]),
            summary=raw.get("title") or "",
            description=raw.get("description") or "",
            company=Company(
                id=str(company["id"]), name=company.get("companyName") or "", identifier=company.get("companyNumber")
            ),
            contact=_contact(contact),
            board_id=None if queue is None else str(queue),
            board_name=None if queue is None else queues.get(str(queue)),
            status_name=None if status is None else statuses.get(str(status), str(status)),
            closed=status == self._settings.autotask_complete_status,
            created_at=parse_time(raw.get("createDate")),
        )

    async def list_notes(self, ticket_id: str) -> list[Note]:
        rows = await self.query("TicketNotes", [{"op": "eq", "field": "ticketID", "value": int(ticket_id)}])
        return [
            Note(id=str(row["id"]), text=row.get("description") or "", internal=row.get("publish") != PUBLISH_ALL_USERS)
            for row in sorted(rows, key=lambda r: int(r["id"]))
        ]

    async def add_note(self, ticket_id: str, text: str, visibility: NoteVisibility) -> Note:
        # publish=1 ("All Autotask Users") is the setting under which a note shows in the client
        # portal; whether the contact is also e-mailed is the MSP's notification rules' business
        # (the REST entity has no per-note notify flag). publish=2 keeps it to internal users.
        internal = visibility is NoteVisibility.INTERNAL
        body = {
            "ticketID": int(ticket_id),
            "title": NOTE_TITLES[internal],  # tenants may require titles on ticket notes
            "description": text,
            "noteType": self._settings.autotask_note_type,
            "publish": PUBLISH_INTERNAL if internal else PUBLISH_ALL_USERS,
        }
        note_id = await self.create("TicketNotes", body)
        return Note(id=str(note_id), text=text, internal=internal)

    async def list_time_entries(self, ticket_id: str) -> list[TimeEntry]:
        rows = await self.query("TimeEntries", [{"op": "eq", "field": "ticketID", "value": int(ticket_id)}])
        return [TimeEntry(id=str(row["id"]), notes=row.get("summaryNotes") or "") for row in rows]

    async def add_time_entry(self, ticket_id: str, start: datetime, end: datetime, notes: str) -> TimeEntry:
        self._settings.require("autotask_api_resource_id")
        resource_id = self._settings.autotask_api_resource_id
        assert resource_id is not None
        start, end = work_window(start, end)
        body = {
            "ticketID": int(ticket_id),
            "resourceID": resource_id,
            "roleID": self._settings.autotask_time_role_id or await self._default_role(resource_id),
            "dateWorked": start.strftime("%Y-%m-%dT00:00:00Z"),
            "startDateTime": at_time(start),
            "endDateTime": at_time(end),
            "hoursWorked": billable_hours(start, end),
            "summaryNotes": notes,
        }
        entry_id = await self.create("TimeEntries", body)
        return TimeEntry(id=str(entry_id), notes=notes)

    async def _default_role(self, resource_id: int) -> int:
        # Read once per client (the worker shares it for a while): the API user's role rarely changes.
        if resource_id not in self._roles:
            resource = await self.required_item("Resources", resource_id)
            role = resource.get("defaultServiceDeskRoleID")
            if not role:
                raise ConfigError("missing app settings: AUTOTASK_TIME_ROLE_ID (the API resource has no default role)")
            self._roles[resource_id] = int(role)
        return self._roles[resource_id]

    async def close_ticket(self, ticket_id: str) -> str:
        complete = self._settings.autotask_complete_status
        label = (await self.picklist("status")).get(str(complete), "Complete")
        await self._set_ticket_field(ticket_id, "status", complete)
        return label

    async def escalate_ticket(self, ticket_id: str) -> str | None:
        queue_id = self._settings.autotask_escalation_queue_id
        if queue_id is None:
            return None
        label = (await self.picklist("queueID")).get(str(queue_id), f"queue {queue_id}")
        await self._set_ticket_field(ticket_id, "queueID", queue_id)
        return label

    async def _set_ticket_field(self, ticket_id: str, name: str, value: int) -> None:
        """PATCH one field unless the ticket already has that value (a no-op save would fire webhooks).

        Every run starts by reading its ticket (get_ticket), which refreshes the copy used here."""
        ticket = self._read.get(str(ticket_id)) or await self.required_item("Tickets", ticket_id)
        if ticket.get(name) != value:
            await self.api("PATCH", "Tickets", json={"id": int(ticket_id), name: value})
        self._read[str(ticket_id)] = {**ticket, name: value}

    async def list_ticket_ids_created_since(self, since: datetime) -> list[str]:
        rows = await self.query(
            "Tickets",
            [{"op": "gte", "field": "createDate", "value": at_time(since)}],
            include_fields=["id", "createDate"],
        )
        oldest = datetime.min.replace(tzinfo=UTC)
        rows.sort(key=lambda row: (parse_time(row.get("createDate")) or oldest, int(row["id"])))
        return [str(row["id"]) for row in rows]

    async def list_closed_tickets(self, since: datetime, limit: int) -> list[ClosedTicket]:
        """Completed tickets with issue type, sub-issue type and category labels and the Resolution field
        (for `tierone learn`). One query: everything needed is on the ticket itself."""
        complete = self._settings.autotask_complete_status
        rows = await self.query(
            "Tickets",
            [
                {"op": "eq", "field": "status", "value": complete},
                {"op": "gte", "field": "completedDate", "value": at_time(since)},
            ],
            include_fields=[
                "id",
                "title",
                "description",
                "issueType",
                "subIssueType",
                "ticketCategory",
                "resolution",
                "completedDate",
            ],
        )
        oldest = datetime.min.replace(tzinfo=UTC)
        rows.sort(key=lambda row: (parse_time(row.get("completedDate")) or oldest, int(row["id"])), reverse=True)
        labels = {name: await self.picklist(name) for name in ("issueType", "subIssueType", "ticketCategory")}
        return [
            ClosedTicket(
                psa=PsaKind.AUTOTASK,
                id=str(row["id"]),
                summary=row.get("title") or "",
                description=row.get("description") or "",
                # Broad to narrow: the category is the ticket's form, the issue types what it was about.
                categories=[
                    labels[name][str(row[name])]
                    for name in ("ticketCategory", "issueType", "subIssueType")
                    if row.get(name) is not None and str(row[name]) in labels[name]
                ],
                resolution=row.get("resolution") or "",
                closed_at=parse_time(row.get("completedDate")),
            )
            for row in rows[:limit]
        ]

    async def tenant_hint(self, company_id: str) -> str | None:
        """Autotask has no tenant field; a company UDF named in settings may hold the Entra tenant id."""
        company = await self.required_item("Companies", company_id)
        wanted = self._settings.autotask_tenant_udf.strip().lower()
        for udf in company.get("userDefinedFields") or []:
            if str(udf.get("name", "")).strip().lower() == wanted and udf.get("value"):
                return str(udf["value"]).strip()
        return None


def _contact(record: dict[str, Any] | None) -> Contact | None:
    if record is None:
        return None
    name = " ".join(part for part in (record.get("firstName"), record.get("lastName")) if part)
    email = record.get("emailAddress") or record.get("emailAddress2") or record.get("emailAddress3")
    return Contact(id=str(record["id"]), name=name, email=email or None)

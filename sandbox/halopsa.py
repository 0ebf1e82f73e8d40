"""A local HaloPSA instance that the real client cannot tell from Halo's.

It follows the team's research notes (psa.md §3) and Halo's own OpenAPI document
(shared/specs/halopsa-openapi.json): every entity it returns carries only properties of the
matching schema (`Faults`, `Actions`, `Users`, `Area`, `Site`, `TStatus`, `TOutcome`,
`SectionDetail`, `Uname`, `Webhook`, `AzureADConnection`), and tests check that.

What it does the way Halo does:
- `GET /api/authinfo` (unauthenticated) names the auth server; `POST /auth/token?tenant=..`
  takes form-encoded client credentials with `scope=all` and answers a Bearer token.
- Routes are case-insensitive (`/api/Tickets` and `/api/tickets` are the same, as in ASP.NET).
- Writes are `POST /api/{Entity}` with a JSON array; an object with an `id` updates, one without
  creates; a one-element array answers the saved record as an object.
- Lists: `pageinate=true&page_size=..&page_no=..` → `{"page_no", "page_size", "record_count",
  "tickets"|"users"|"clients"}`; `Actions` answers `{"record_count", "actions"}`; small lookups
  (`Status`, `Team`, `Outcome`, `Agent`, `Webhook`, `AzureADConnection`) answer bare arrays.
- An action needs an outcome: "An Outcome must be entered for this Action". Ids must be JSON
  integers (95.0 is refused, as Halo refused PowerShell's doubles).
- The hosted rate limit: 300 requests per rolling 5 minutes → 429 "Rate Limit Reached - 300
  Requests per rolling 5 minute window" (configurable).
- Outbound webhooks with Basic authentication and Halo's envelope.

Where Halo's behaviour is UNVERIFIED, this sandbox makes an assumption and says so:
- Webhook retries: a non-2xx answer or a failed connection is retried `len(webhook_retry_delays)`
  times (default 3, after 10 s, 30 s, 60 s); timeout 10 s.
- Envelope `agent_id` is the agent who did the thing (the actor), not the ticket's assignee.
- `payload_type` 0 = small object, 1 = full object, 2 = event information only (the UI's order);
  the envelope always carries `message` and `agent_id`.
- `datesearch` takes column names: `dateoccured` (date opened, the spelling in Halo's own docs)
  and `datecleared` (date closed). Query dates are UTC.
- `timetaken` is hours as a decimal. Statuses 9 Closed and 10 Cancelled close a ticket.
- Halo never hands back a webhook's `basic_password`.

Usage (tests, demo):

    with HaloSandbox(webhook_retry_delays=(0.05, 0.1, 0.2)) as halo:
        client = halo.add_client("Contoso Dental", azure_tenant_id="...")
        site = halo.add_site(client["id"], "Main")
        user = halo.add_user(client["id"], site["id"], "Anna Berg", "anna.berg@contoso.example")
        ticket = halo.create_ticket("Password reset", "I forgot my password", client["id"], user["id"])
"""

from __future__ import annotations

import asyncio
import base64
import copy
import hmac
import itertools
import json
import re
import secrets
import threading
import time
import uuid
from collections import deque
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from html import escape, unescape
from typing import Any
from urllib.parse import parse_qsl

from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import JSONResponse, PlainTextResponse, Response
from starlette.routing import Route
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from sandbox._delivery import Dispatcher, is_success
from sandbox._faults import FailureQueue
from sandbox._server import BackgroundServer, ServedSandbox, vendor_error_handler

JSON = dict[str, Any]

DEFAULT_CLIENT_ID = "3f6b2a9e-5c14-4d7e-8b0a-91c2e4f7a6d3"
DEFAULT_CLIENT_SECRET = "sbx-halo-secret-7f3c9d2e-41a8-4b6e-a5d0-2e8c1f9b7a64"
DEFAULT_TENANT = "tierone"
MAX_PAGE_SIZE = 100
OUTCOME_REQUIRED = "An Outcome must be entered for this Action"

PAYLOAD_SMALL, PAYLOAD_FULL, PAYLOAD_EVENT_ONLY = 0, 1, 2
AUTH_NONE, AUTH_BASIC = 0, 1
EVENT_NEW_TICKET = "new ticket logged"
EVENT_STATUS_CHANGED = "ticket status changed"
EVENT_REASSIGNED = "ticket reassigned"
EVENT_ACTION_ADDED = "new action added"
KNOWN_EVENTS = {
    EVENT_NEW_TICKET: "New Ticket Logged",
    EVENT_STATUS_CHANGED: "Ticket Status Changed",
    EVENT_REASSIGNED: "Ticket Reassigned",
    EVENT_ACTION_ADDED: "New Action Added",
}

DEFAULT_STATUSES: tuple[tuple[int, str, bool], ...] = (
    (1, "New", False),
    (2, "In Progress", False),
    (3, "Action Required", False),
    (4, "With User", False),
    (5, "Updated", False),
    (8, "Resolved", False),
    (9, "Closed", True),
    (10, "Cancelled", True),
)
# (id, name, hidden from the end user by default)
DEFAULT_OUTCOMES: tuple[tuple[int, str, bool], ...] = (
    (1, "Email User", False),
    (4, "Public Note", False),
    (7, "Internal Note", True),
    (12, "Private Note", True),
)
DEFAULT_TEAMS = ("1st Line Support", "2nd Line Support", "3rd Line Support")
# Ticket types as a fresh Halo instance has them (ids illustrative); categories are free text paths.
DEFAULT_TICKET_TYPES = {1: "Incident", 3: "Service Request", 4: "Problem", 5: "Change Request"}

# What a ticket list shows of each ticket (the full record comes from /api/Tickets/{id}).
TICKET_LIST_FIELDS = (
    "id",
    "summary",
    "details",
    "status_id",
    "tickettype_id",
    "client_id",
    "client_name",
    "site_id",
    "site_name",
    "user_id",
    "user_name",
    "agent_id",
    "team",
    "priority_id",
    "hasbeenclosed",
    "dateoccurred",
    "lastactiondate",
    "tickettype_name",
    "category_1",
    "dateclosed",
)
# What the "small object" webhook payload carries (psa.md §5.3 a).
TICKET_SMALL_FIELDS = (
    "id",
    "summary",
    "status_id",
    "tickettype_id",
    "client_id",
    "team",
    "agent_id",
    "customfields",
    "hasbeenclosed",
)
# Webhook properties this sandbox keeps; like ASP.NET, Halo drops JSON properties it does not know.
WEBHOOK_FIELDS = (
    "id",
    "name",
    "url",
    "type",
    "method",
    "content_type",
    "authentication_type",
    "basic_username",
    "basic_password",
    "payload_type",
    "custom_payload",
    "events",
    "disabled",
    "note",
    "last_status",
    "log_retention_policy_days",
)
WEBHOOK_SUMMARY_FIELDS = ("id", "name", "url", "type", "authentication_type", "payload_type", "disabled", "last_status")


# ---------------------------------------------------------------------------------------------
# Errors and small helpers
# ---------------------------------------------------------------------------------------------


class HaloError(Exception):
    """An answer in Halo's shape: a JSON string or field-keyed object, plain text, or no body."""

    def __init__(
        self, status: int, body: Any = None, *, text: bool = False, headers: Mapping[str, str] | None = None
    ) -> None:
        super().__init__(f"{status}: {body}")
        self.status = status
        self.body = body
        self.text = text
        self.headers = dict(headers or {})

    def response(self) -> Response:
        if self.body is None:
            return Response(status_code=self.status, headers=self.headers)
        if self.text:
            return PlainTextResponse(str(self.body), status_code=self.status, headers=self.headers)
        return JSONResponse(self.body, status_code=self.status, headers=self.headers)


def invalid(field_name: str, message: str, index: int | None = None) -> HaloError:
    """ASP.NET model-binding style: {"[0].client_id": ["..."]}."""
    key = f"[{index}].{field_name}" if index is not None else field_name
    return HaloError(400, {key: [message]})


def not_found(what: str) -> HaloError:
    return HaloError(404, f"{what} not found")


def _now() -> datetime:
    return datetime.now(UTC)


def halo_time(moment: datetime) -> str:
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.") + f"{moment.microsecond // 1000:03d}Z"


def webhook_timestamp(moment: datetime) -> str:
    """Halo's envelope timestamp: seven fractional digits and Z (psa.md §5.3)."""
    ticks = moment.microsecond * 10 + secrets.randbelow(10)
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.") + f"{ticks:07d}Z"


def parse_query_time(text: str, name: str) -> datetime:
    try:
        moment = datetime.fromisoformat(text.strip().replace("Z", "+00:00"))
    except ValueError:
        raise invalid(name, f"The value '{text}' is not valid.") from None
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


def parse_halo_time(text: str) -> datetime:
    return datetime.fromisoformat(text.replace("Z", "+00:00"))


_TAG_RE = re.compile(r"<[^>]+>")
_BREAK_RE = re.compile(r"<\s*(br|/p|/div|/li)\s*/?>", re.IGNORECASE)


def strip_html(markup: str) -> str:
    """Halo's plain-text `note` next to `note_html`."""
    return unescape(_TAG_RE.sub("", _BREAK_RE.sub("\n", markup))).strip()


def to_html(text: str) -> str:
    return "<p>" + escape(text, quote=False).replace("\n", "<br>") + "</p>"


def _walk_strings(value: Any) -> Iterator[str]:
    if isinstance(value, str):
        yield value
    elif isinstance(value, Mapping):
        for item in value.values():
            yield from _walk_strings(item)
    elif isinstance(value, list):
        for item in value:
            yield from _walk_strings(item)


class _Query:
    """Query parameters the ASP.NET way: names case-insensitive, typed values checked."""

    def __init__(self, request: Request) -> None:
        self._values = {key.lower(): value for key, value in request.query_params.items()}

    def text(self, name: str) -> str | None:
        value = self._values.get(name.lower())
        return value if value not in (None, "") else None

    def flag(self, name: str, default: bool = False) -> bool:
        value = self.text(name)
        if value is None:
            return default
        if value.lower() not in ("true", "false"):
            raise invalid(name, f"The value '{value}' is not valid.")
        return value.lower() == "true"

    def number(self, name: str) -> int | None:
        value = self.text(name)
        if value is None:
            return None
        try:
            return int(value)
        except ValueError:
            raise invalid(name, f"The value '{value}' is not valid.") from None


def _strict_int(record: Mapping[str, Any], key: str, index: int) -> int | None:
    """Halo refuses ids that are not JSON integers (PowerShell's 95.0 was rejected)."""
    value = record.get(key)
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int):
        raise invalid(key, f"The JSON value could not be converted to System.Int32. Path: $[{index}].{key}", index)
    return value


def _array_body(data: Any) -> list[JSON]:
    if not isinstance(data, list) or not all(isinstance(item, dict) for item in data):
        raise HaloError(400, "The request body must be a JSON array of objects")
    return data


# ---------------------------------------------------------------------------------------------
# Fault knobs and logs
# ---------------------------------------------------------------------------------------------


@dataclass
class Faults(FailureQueue):
    """Misbehaviour to switch on from a test. Safe to change from any thread."""

    latency_ms: int = 0
    drop_webhooks: bool = False
    # Workflow rules that keep a ticket open: a closing update answers 200 with the ticket unchanged.
    refuse_closing: bool = False
    _pending: list[int] = field(default_factory=list, repr=False)
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def fail_next(self, n: int, status: int = 500) -> None:
        """The next `n` /api requests answer `status` before anything else happens."""
        self._queue_failures(n, status)

    def reset(self) -> None:
        self._clear_failures()
        self.latency_ms = 0
        self.drop_webhooks = False
        self.refuse_closing = False


@dataclass(frozen=True)
class RequestRecord:
    method: str
    path: str  # as sent, e.g. "/api/Tickets/12" or "/auth/token"
    query: str
    status: int
    body: bytes = field(default=b"", repr=False)

    def json(self) -> Any:
        return json.loads(self.body) if self.body else None


@dataclass
class Delivery:
    """One webhook delivery and what became of it."""

    delivery_id: str
    webhook_id: str
    url: str
    event: str
    object_id: int
    agent_id: int | None
    body: bytes = field(repr=False)
    authorization: str | None = field(default=None, repr=False)
    attempts: int = 0
    status_code: int | None = None
    error: str | None = None
    dropped: bool = False
    done: bool = False

    @property
    def delivered(self) -> bool:
        return self.status_code is not None and 200 <= self.status_code < 300

    def envelope(self) -> JSON:
        return dict(json.loads(self.body))

    def headers(self) -> dict[str, str]:
        headers = {"Content-Type": "application/json"}
        if self.authorization:
            headers["Authorization"] = self.authorization
        return headers


class _Dispatcher(Dispatcher[Delivery]):
    """Posts webhook deliveries from daemon threads with the ASSUMED retry policy."""

    thread_name = "halo-webhook"

    def __init__(self, retry_delays: Sequence[float], timeout_s: float) -> None:
        super().__init__(timeout_s)
        self.retry_delays = tuple(retry_delays)

    def _deliver(self, delivery: Delivery) -> None:
        # A client of its own per delivery, closed when the delivery is over.
        with self._new_client() as http:
            self._attempt_until(
                delivery,
                lambda: self._post(http, delivery.url, delivery.body, delivery.headers()),
                self.retry_delays,
                lambda status: not is_success(status),
            )


class _RollingWindow:
    """Halo's hosted limit: so many requests per rolling window, per instance."""

    def __init__(self, limit: int, window_s: float) -> None:
        self.limit = limit
        self.window_s = window_s
        self._seen: deque[float] = deque()
        self._lock = threading.Lock()

    def admit(self) -> bool:
        with self._lock:
            now = time.monotonic()
            while self._seen and now - self._seen[0] >= self.window_s:
                self._seen.popleft()
            if len(self._seen) >= self.limit:
                return False
            self._seen.append(now)
            return True

    def message(self) -> str:
        return f"Rate Limit Reached - {self.limit} Requests per rolling {self.window_s / 60:g} minute window"

    def reset(self) -> None:
        with self._lock:
            self._seen.clear()


# ---------------------------------------------------------------------------------------------
# State: what a Halo instance holds, and the rules it enforces on writes
# ---------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class TicketEvent:
    """Something webhooks may be subscribed to, captured under the lock when it happened."""

    event: str
    ticket_id: int
    agent_id: int | None
    ticket: JSON


class _Store:
    """In-memory Halo data. Methods take the (re-entrant) lock; callers copy records out."""

    def __init__(self) -> None:
        self.lock = threading.RLock()
        self._ids: dict[str, Iterator[int]] = {}
        self.clients: dict[int, JSON] = {}
        self.sites: dict[int, JSON] = {}
        self.users: dict[int, JSON] = {}
        self.agents: dict[int, JSON] = {}
        self.teams: dict[int, JSON] = {}
        self.statuses: dict[int, JSON] = {}
        self.closed_statuses: set[int] = set()
        self.outcomes: dict[int, JSON] = {}
        self.tickets: dict[int, JSON] = {}
        self.actions: dict[int, JSON] = {}
        self.webhooks: dict[str, JSON] = {}
        self.connections: dict[int, JSON] = {}
        self.tenant_mappings: list[JSON] = []
        for status_id, name, closed in DEFAULT_STATUSES:
            self.add_status(status_id, name, closed=closed)
        for outcome_id, name, hidden in DEFAULT_OUTCOMES:
            self.add_outcome(outcome_id, name, hide_from_user=hidden)
        for name in DEFAULT_TEAMS:
            self.add_team(name)
        self.connections[1] = {"id": 1, "name": "Microsoft 365 (GDAP)", "type": 2, "authorized": True}

    def _next_id(self, kind: str, start: int = 1) -> int:
        with self.lock:
            return next(self._ids.setdefault(kind, itertools.count(start)))

    # -- seeding -------------------------------------------------------------------------------

    def add_status(self, status_id: int, name: str, *, closed: bool = False) -> JSON:
        with self.lock:
            record = {"id": status_id, "name": name, "shortname": name[:10], "sequence": status_id, "colour": "#666"}
            self.statuses[status_id] = record
            if closed:
                self.closed_statuses.add(status_id)
            else:
                self.closed_statuses.discard(status_id)
            return record

    def add_outcome(self, outcome_id: int, name: str, *, hide_from_user: bool = False) -> JSON:
        with self.lock:
            record = {
                "id": outcome_id,
                "outcome": name,
                "buttonname": name,
                "sequence": outcome_id,
                "hidden": False,
                "hidefromuser": hide_from_user,
            }
            self.outcomes[outcome_id] = record
            return record

    def add_team(self, name: str) -> JSON:
        with self.lock:
            team_id = self._next_id("team")
            record = {
                "id": team_id,
                "name": name,
                "department_id": 1,
                "department_name": "Service Desk",
                "inactive": False,
            }
            self.teams[team_id] = record
            return record

    def add_agent(self, name: str, email: str | None = None, *, api: bool = False) -> JSON:
        with self.lock:
            agent_id = self._next_id("agent")
            initials = "".join(part[0] for part in name.split()[:2]).upper()
            record = {
                "id": agent_id,
                "name": name,
                "email": email,
                "initials": initials,
                "isdisabled": False,
                "isapiagent": api,
                "team": DEFAULT_TEAMS[0],
            }
            self.agents[agent_id] = record
            return record

    def add_client(self, name: str) -> JSON:
        with self.lock:
            client_id = self._next_id("client", 12)
            record = {"id": client_id, "name": name, "inactive": False, "toplevel_id": 1, "toplevel_name": "Customers"}
            self.clients[client_id] = record
            return record

    def add_tenant_mapping(self, client_id: int, tenant_id: str, tenant_name: str | None = None) -> JSON:
        with self.lock:
            client = self.client(client_id)
            mapping = {
                "id": self._next_id("mapping"),
                "details_id": 1,
                "client_id": client_id,
                "client_name": client["name"],
                "azure_tenant_id": tenant_id,
                "azure_tenant_name": tenant_name or client["name"],
            }
            self.tenant_mappings.append(mapping)
            return mapping

    def add_site(self, client_id: int, name: str) -> JSON:
        with self.lock:
            client = self.client(client_id)
            site_id = self._next_id("site", 30)
            record = {
                "id": site_id,
                "name": name,
                "client_id": client_id,
                "client_name": client["name"],
                "clientsite_name": f"{client['name']} / {name}",
                "inactive": False,
            }
            self.sites[site_id] = record
            return record

    def add_user(self, client_id: int, site_id: int, name: str, email: str, azureoid: str | None) -> JSON:
        with self.lock:
            client = self.client(client_id)
            site = self.sites.get(site_id)
            if site is None or site["client_id"] != client_id:
                raise ValueError(f"site {site_id} is not a site of client {client_id}")
            first, _, last = name.partition(" ")
            record = {
                "id": self._next_id("user", 100),
                "name": name,
                "firstname": first,
                "surname": last,
                "emailaddress": email,
                "site_id": site_id,
                "site_name": site["name"],
                "client_id": client_id,
                "client_name": client["name"],
                "inactive": False,
                "azureoid": azureoid,
            }
            self.users[record["id"]] = record
            return record

    # -- lookups -------------------------------------------------------------------------------

    def client(self, client_id: int) -> JSON:
        with self.lock:
            record = self.clients.get(client_id)
            if record is None:
                raise not_found(f"Client {client_id}")
            return record

    def ticket(self, ticket_id: int) -> JSON:
        with self.lock:
            record = self.tickets.get(ticket_id)
            if record is None:
                raise not_found(f"Ticket {ticket_id}")
            return record

    def team_named(self, name: str) -> JSON | None:
        with self.lock:
            return next((t for t in self.teams.values() if t["name"].lower() == name.strip().lower()), None)

    def outcome_for(self, record: Mapping[str, Any], index: int) -> JSON:
        outcome_id = _strict_int(record, "outcome_id", index)
        with self.lock:
            if outcome_id is not None and outcome_id in self.outcomes:
                return self.outcomes[outcome_id]
            name = str(record.get("outcome") or "").lower()
            match = next((o for o in self.outcomes.values() if name and o["outcome"].lower() == name), None)
        if match is None:
            raise HaloError(400, OUTCOME_REQUIRED)
        return match

    # -- tickets -------------------------------------------------------------------------------

    def create_ticket(self, record: Mapping[str, Any], index: int, actor: int | None) -> tuple[JSON, TicketEvent]:
        summary = str(record.get("summary") or "").strip()
        if not summary:
            raise invalid("summary", "Please enter a Summary", index)
        with self.lock:
            client_id, site, user = self._ticket_people(record, index)
            client = self.client(client_id)
            now = halo_time(_now())
            details = record.get("details")
            details_html = record.get("details_html") or (to_html(str(details)) if details else "")
            ticket = {
                "id": self._next_id("ticket", 4301),
                "summary": summary,
                "details": str(details) if details else strip_html(details_html),
                "details_html": details_html,
                "status_id": 1,
                "tickettype_id": _strict_int(record, "tickettype_id", index) or 1,
                "category_1": str(record.get("category_1") or ""),
                "client_id": client_id,
                "client_name": client["name"],
                "site_id": site["id"] if site else None,
                "site_name": site["name"] if site else None,
                "user_id": user["id"] if user else None,
                "user_name": user["name"] if user else None,
                "user_email": user["emailaddress"] if user else None,
                "agent_id": _strict_int(record, "agent_id", index) or 0,
                "team": DEFAULT_TEAMS[0],
                "priority_id": _strict_int(record, "priority_id", index) or 3,
                "hasbeenclosed": False,
                "dateoccurred": record.get("dateoccurred") or now,
                "lastactiondate": now,
                "last_update": now,
                "customfields": [],
            }
            if record.get("team"):
                ticket["team"] = self._team_name(record["team"], index)
            self.tickets[ticket["id"]] = ticket
            return ticket, self._event(EVENT_NEW_TICKET, ticket, actor)

    def _ticket_people(self, record: Mapping[str, Any], index: int) -> tuple[int, JSON | None, JSON | None]:
        user_id = _strict_int(record, "user_id", index)
        lookup = record.get("userlookup")
        if user_id is None and isinstance(lookup, dict):
            user_id = _strict_int(lookup, "id", index)
        user = self.users.get(user_id) if user_id and user_id > 0 else None
        if user_id and user_id > 0 and user is None:
            raise invalid("user_id", f"User {user_id} does not exist", index)
        site_id = _strict_int(record, "site_id", index)
        if user is not None and site_id is None:
            # CIPP: Halo requires the site whenever a specific user is set.
            raise invalid("site_id", "Please select a Site for this User", index)
        site = self.sites.get(site_id) if site_id else None
        if site_id and site is None:
            raise invalid("site_id", f"Site {site_id} does not exist", index)
        client_id = _strict_int(record, "client_id", index) or (site or {}).get("client_id")
        if client_id is None:
            raise invalid("client_id", "Please select a Client", index)
        return client_id, site, user

    def _team_name(self, value: Any, index: int) -> str:
        team = self.team_named(str(value))
        if team is None:
            raise invalid("team", f"Team '{value}' does not exist", index)
        return str(team["name"])

    def update_ticket(self, record: Mapping[str, Any], index: int, actor: int | None) -> tuple[JSON, list[TicketEvent]]:
        ticket_id = _strict_int(record, "id", index)
        assert ticket_id is not None
        with self.lock:
            ticket = self.ticket(ticket_id)
            # Everything is checked before anything changes, so a refused update changes nothing.
            status_id = _strict_int(record, "status_id", index)
            if status_id is not None and status_id not in self.statuses:
                raise invalid("status_id", f"Status {status_id} does not exist", index)
            team = self._team_name(record["team"], index) if record.get("team") is not None else ticket["team"]
            agent_id = _strict_int(record, "agent_id", index)
            agent_id = ticket["agent_id"] if agent_id is None else agent_id
            for key in ("summary", "details", "details_html", "category_1", "closure_note"):
                if isinstance(record.get(key), str):
                    ticket[key] = record[key]
            events: list[TicketEvent] = []
            if status_id is not None and status_id != ticket["status_id"]:
                events.extend(self.set_status(ticket, status_id, actor, index))
            if (team, agent_id) != (ticket["team"], ticket["agent_id"]):
                ticket["team"], ticket["agent_id"] = team, agent_id
                events.append(self._event(EVENT_REASSIGNED, ticket, actor))
            ticket["last_update"] = halo_time(_now())
            return ticket, events

    def set_status(self, ticket: JSON, status_id: int, actor: int | None, index: int = 0) -> list[TicketEvent]:
        with self.lock:
            if status_id not in self.statuses:
                raise invalid("status_id", f"Status {status_id} does not exist", index)
            closing = status_id in self.closed_statuses
            ticket["status_id"] = status_id
            ticket["hasbeenclosed"] = closing
            if closing:
                ticket["dateclosed"] = halo_time(_now())
            else:
                ticket.pop("dateclosed", None)
            return [self._event(EVENT_STATUS_CHANGED, ticket, actor)]

    def _event(self, event: str, ticket: JSON, actor: int | None) -> TicketEvent:
        return TicketEvent(event, ticket["id"], actor, copy.deepcopy(ticket))

    def render_ticket(self, ticket: JSON, *, details: bool) -> JSON:
        with self.lock:
            rendered = copy.deepcopy(ticket)
            rendered["status_name"] = self.statuses[ticket["status_id"]]["name"]
            rendered["tickettype_name"] = DEFAULT_TICKET_TYPES.get(ticket["tickettype_id"], "Incident")
            if ticket.get("closure_note"):
                rendered["closure_note_html"] = to_html(str(ticket["closure_note"]))
            if ticket.get("agent_id") in self.agents:
                rendered["agent_name"] = self.agents[ticket["agent_id"]]["name"]
            if not details:
                rendered.pop("customfields", None)
                rendered.pop("details_html", None)
            return _without_nulls(rendered)

    # -- actions -------------------------------------------------------------------------------

    def add_action(self, record: Mapping[str, Any], index: int, actor: int | None) -> tuple[JSON, list[TicketEvent]]:
        ticket_id = _strict_int(record, "ticket_id", index)
        if ticket_id is None:
            raise invalid("ticket_id", "Please specify a Ticket", index)
        with self.lock:
            ticket = self.tickets.get(ticket_id)
            if ticket is None:
                raise invalid("ticket_id", f"Ticket {ticket_id} does not exist", index)
            outcome = self.outcome_for(record, index)
            timetaken = record.get("timetaken") or 0
            if isinstance(timetaken, bool) or not isinstance(timetaken, int | float) or timetaken < 0:
                raise invalid("timetaken", "Time taken must be a positive number of hours", index)
            note_html = str(record.get("note_html") or "") or (
                to_html(str(record["note"])) if record.get("note") else ""
            )
            hidden = record.get("hiddenfromuser")
            now = halo_time(_now())
            action = {
                "id": self._next_id("action", 9001),
                "ticket_id": ticket_id,
                "outcome_id": outcome["id"],
                "outcome": outcome["outcome"],
                "note": strip_html(note_html),
                "note_html": note_html,
                "hiddenfromuser": bool(outcome["hidefromuser"] if hidden is None else hidden),
                "sendemail": bool(record.get("sendemail")),
                "timetaken": float(timetaken),
                "actisbillable": bool(record.get("actisbillable", True)),
                "datetime": now,
                "actiondatecreated": now,
                "who_agentid": actor,
                "who_type": 1,
            }
            events = [self._event(EVENT_ACTION_ADDED, ticket, actor)]
            new_status = _strict_int(record, "new_status", index)
            if new_status is not None and new_status != ticket["status_id"]:
                events.extend(self.set_status(ticket, new_status, actor, index))
                action["new_status"] = new_status
                action["new_status_name"] = self.statuses[new_status]["name"]
            ticket["lastactiondate"] = now
            self.actions[action["id"]] = action
            return action, events

    def ticket_actions(self, ticket_id: int | None) -> list[JSON]:
        with self.lock:
            found = [a for a in self.actions.values() if ticket_id is None or a["ticket_id"] == ticket_id]
            return sorted(found, key=lambda a: a["id"])

    # -- webhooks ------------------------------------------------------------------------------

    def save_webhook(self, record: Mapping[str, Any], index: int) -> JSON:
        with self.lock:
            existing = self.webhooks.get(str(record.get("id") or "").lower())
            if record.get("id") and existing is None:
                raise invalid("id", f"Webhook {record['id']} does not exist", index)
            given = {key: record[key] for key in WEBHOOK_FIELDS if record.get(key) is not None}
            merged = {**(existing or {}), **given}
            self._check_webhook(merged, index)
            webhook_id = existing["id"] if existing else str(uuid.uuid4())
            merged["id"] = webhook_id
            merged["events"] = [self._subscription(e, webhook_id, index) for e in merged.get("events") or []]
            merged.setdefault("type", 0)
            merged.setdefault("content_type", "application/json")
            merged.setdefault("payload_type", PAYLOAD_SMALL)
            merged.setdefault("authentication_type", AUTH_NONE)
            merged.setdefault("disabled", False)
            self.webhooks[webhook_id] = merged
            return merged

    @staticmethod
    def _check_webhook(record: Mapping[str, Any], index: int) -> None:
        url = str(record.get("url") or "")
        if not re.match(r"^https?://", url):
            raise invalid("url", "Please enter a valid Payload URL", index)
        if not record.get("events"):
            raise invalid("events", "Please select at least one Event", index)
        if record.get("authentication_type") == AUTH_BASIC and not (
            record.get("basic_username") and record.get("basic_password")
        ):
            raise invalid("basic_password", "Basic Authentication needs a username and a password", index)

    def _subscription(self, event: Any, webhook_id: str, index: int) -> JSON:
        if not isinstance(event, dict):
            raise invalid("events", "Each event must be an object", index)
        name = str(event.get("name") or "").strip().lower()
        if name not in KNOWN_EVENTS:
            raise invalid("events", f"Unknown event '{event.get('name')}'", index)
        event_id = event.get("id") if isinstance(event.get("id"), int) and event.get("id") else None
        return {
            "id": event_id or self._next_id("notification", 40),
            "name": KNOWN_EVENTS[name],
            "webhook_id": webhook_id,
        }

    def subscribed(self, event: str) -> list[tuple[JSON, JSON]]:
        with self.lock:
            return [
                (copy.deepcopy(webhook), dict(subscription))
                for webhook in self.webhooks.values()
                if not webhook.get("disabled")
                for subscription in webhook.get("events") or []
                if subscription["name"].lower() == event
            ]

    def all_text(self) -> str:
        with self.lock:
            return "\n".join(_walk_strings([*self.tickets.values(), *self.actions.values()]))


def _without_nulls(record: JSON) -> JSON:
    return {key: value for key, value in record.items() if value is not None}


def _pick(record: Mapping[str, Any], keys: Iterable[str]) -> JSON:
    return {key: record[key] for key in keys if record.get(key) is not None}


# ---------------------------------------------------------------------------------------------
# The gate in front of every request: log, latency, injected failures, rate limit, auth
# ---------------------------------------------------------------------------------------------


class _Gate:
    """Pure ASGI middleware, so it sees every request, matched route or not."""

    def __init__(self, app: ASGIApp, sandbox: HaloSandbox) -> None:
        self.app = app
        self.sandbox = sandbox

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        original_path = scope["path"]
        body = await _read_body(receive)
        logged = False

        def log(status: int) -> None:
            nonlocal logged
            query = scope.get("query_string", b"").decode("latin-1")
            self.sandbox._log_request(RequestRecord(scope["method"], original_path, query, status, body))
            logged = True

        async def capture(message: Message) -> None:
            # Log before the client sees the answer, so a test never races its own request.
            if message["type"] == "http.response.start":
                log(message["status"])
            await send(message)

        # Halo's (ASP.NET) routes ignore case.
        scope = {**scope, "path": original_path.lower(), "raw_path": original_path.lower().encode()}
        try:
            await self._handle(scope, _replay(body), capture)
        finally:
            if not logged:
                log(500)

    async def _handle(self, scope: Scope, receive: Receive, send: Send) -> None:
        path = scope["path"]
        faults = self.sandbox.faults
        if faults.latency_ms > 0:
            await asyncio.sleep(faults.latency_ms / 1000)
        if path.startswith("/api/"):
            refusal = self._refusal(path, Request(scope))
            if refusal is not None:
                await refusal.response()(scope, receive, send)
                return
        await self.app(scope, receive, send)

    def _refusal(self, path: str, request: Request) -> HaloError | None:
        failure = self.sandbox.faults.take_failure()
        if failure is not None:
            return _failure(failure, self.sandbox._window.message())
        if not self.sandbox._window.admit():
            return HaloError(429, self.sandbox._window.message(), text=True)
        if path != "/api/authinfo" and not self.sandbox._token_valid(request.headers.get("authorization", "")):
            return HaloError(401, headers={"WWW-Authenticate": 'Bearer error="invalid_token"'})
        return None


def _failure(status: int, rate_message: str) -> HaloError:
    if status == 429:
        return HaloError(429, rate_message, text=True)
    if status == 401:
        return HaloError(401, headers={"WWW-Authenticate": "Bearer"})
    return HaloError(status, "An error has occurred. Please contact your administrator.")


async def _read_body(receive: Receive) -> bytes:
    chunks: list[bytes] = []
    while True:
        message = await receive()
        if message["type"] != "http.request":
            break
        chunks.append(message.get("body", b""))
        if not message.get("more_body"):
            break
    return b"".join(chunks)


def _replay(body: bytes) -> Receive:
    sent = False

    async def receive() -> Message:
        nonlocal sent
        if not sent:
            sent = True
            return {"type": "http.request", "body": body, "more_body": False}
        await asyncio.Event().wait()  # a disconnect never comes from a finished request
        return {"type": "http.disconnect"}

    return receive


# ---------------------------------------------------------------------------------------------
# The sandbox
# ---------------------------------------------------------------------------------------------


class HaloSandbox(ServedSandbox):
    """A HaloPSA instance on 127.0.0.1: auth server, REST API, outbound webhooks."""

    _not_started = "the HaloPSA sandbox is not started"

    def __init__(
        self,
        *,
        client_id: str = DEFAULT_CLIENT_ID,
        client_secret: str = DEFAULT_CLIENT_SECRET,
        tenant: str | None = DEFAULT_TENANT,
        authinfo: bool = True,
        token_lifetime_s: float = 3600.0,
        rate_limit: int = 300,
        rate_window_s: float = 300.0,
        webhook_retry_delays: Sequence[float] = (10.0, 30.0, 60.0),
        webhook_timeout_s: float = 10.0,
        api_agent_name: str = "TierOne API",
        port: int | None = None,
    ) -> None:
        self.client_id = client_id
        self.client_secret = client_secret
        self.tenant = tenant
        self.authinfo_enabled = authinfo
        self.token_lifetime_s = token_lifetime_s
        self.api_agent_name = api_agent_name
        self.faults = Faults()
        self._window = _RollingWindow(rate_limit, rate_window_s)
        self._dispatcher = _Dispatcher(webhook_retry_delays, webhook_timeout_s)
        self._tokens: dict[str, tuple[float, int]] = {}
        self._tokens_lock = threading.Lock()
        self._log_lock = threading.Lock()
        self._request_log: list[RequestRecord] = []
        self._store, self.human_agent_id, self.api_agent_id = self._fresh_store()
        self._port = port
        self._server: BackgroundServer | None = None
        self.app = self._build_app()

    # -- lifecycle -----------------------------------------------------------------------------

    def start(self) -> HaloSandbox:
        self._dispatcher.open()
        self._serve(self.app, "halopsa-sandbox", self._port)
        return self

    def stop(self) -> None:
        self._dispatcher.close()
        self._stop_server()

    def reset(self, timeout: float = 10.0) -> None:
        """Forget all data, tokens, webhooks, logs, faults and the rate window; keep the server."""
        self._dispatcher.wait_idle(timeout)
        self._dispatcher.clear()
        self._store, self.human_agent_id, self.api_agent_id = self._fresh_store()
        self.faults.reset()
        self._window.reset()
        self.revoke_tokens()
        self.clear_request_log()

    def _fresh_store(self) -> tuple[_Store, int, int]:
        store = _Store()
        human = store.add_agent("Alex Morgan", "alex.morgan@tierone-msp.example")
        api = store.add_agent(self.api_agent_name, api=True)
        return store, int(human["id"]), int(api["id"])

    @property
    def url(self) -> str:
        """HALOPSA_URL: the instance's address (production: https://<msp>.halopsa.com)."""
        return super().url

    @property
    def rate_limit(self) -> int:
        return self._window.limit

    @rate_limit.setter
    def rate_limit(self, value: int) -> None:
        self._window.limit = value

    @property
    def rate_window_s(self) -> float:
        return self._window.window_s

    @rate_window_s.setter
    def rate_window_s(self, value: float) -> None:
        self._window.window_s = value

    def app_settings(self, **extra: str) -> dict[str, str]:
        """The HALOPSA_* app settings a TierOne deployment needs to use this sandbox."""
        values = {
            "HALOPSA_URL": self.url,
            "HALOPSA_CLIENT_ID": self.client_id,
            "HALOPSA_CLIENT_SECRET": self.client_secret,
            "HALOPSA_API_AGENT_ID": str(self.api_agent_id),
        }
        if self.tenant:
            values["HALOPSA_TENANT"] = self.tenant
        return {**values, **extra}

    # -- Python API: seed data -----------------------------------------------------------------

    def add_client(self, name: str, azure_tenant_id: str | None = None) -> JSON:
        """A client (customer); with `azure_tenant_id` it is mapped in the Azure AD connection."""
        client = self._store.add_client(name)
        if azure_tenant_id:
            self._store.add_tenant_mapping(client["id"], azure_tenant_id)
        return self._copy(client)

    def add_tenant_mapping(self, client_id: int, azure_tenant_id: str, tenant_name: str | None = None) -> JSON:
        return self._copy(self._store.add_tenant_mapping(client_id, azure_tenant_id, tenant_name))

    def add_site(self, client_id: int, name: str) -> JSON:
        return self._copy(self._store.add_site(client_id, name))

    def add_user(self, client_id: int, site_id: int, name: str, email: str, azureoid: str | None = None) -> JSON:
        return self._copy(self._store.add_user(client_id, site_id, name, email, azureoid))

    def update_user(self, user_id: int, **fields: Any) -> JSON:
        """Change a user's `Users` properties (e.g. emailaddress), as an agent would in the UI."""
        with self._store.lock:
            user = self._store.users.get(user_id)
            if user is None:
                raise KeyError(f"user {user_id} does not exist")
            user.update(fields)
            return self._copy(user)

    def add_agent(self, name: str, email: str | None = None, *, api: bool = False) -> JSON:
        """Another agent. With `api=True` the API application logs in as this agent from now on."""
        agent = self._store.add_agent(name, email, api=api)
        if api:
            self.api_agent_id = int(agent["id"])
        return self._copy(agent)

    def add_team(self, name: str) -> JSON:
        return self._copy(self._store.add_team(name))

    def add_status(self, status_id: int, name: str, *, closed: bool = False) -> JSON:
        return self._copy(self._store.add_status(status_id, name, closed=closed))

    def add_outcome(self, outcome_id: int, name: str, *, hide_from_user: bool = False) -> JSON:
        return self._copy(self._store.add_outcome(outcome_id, name, hide_from_user=hide_from_user))

    def register_webhook(
        self,
        url: str,
        *,
        username: str | None = None,
        password: str | None = None,
        payload_type: int = PAYLOAD_EVENT_ONLY,
        events: Sequence[str] = ("New Ticket Logged",),
        name: str = "TierOne",
    ) -> JSON:
        """A webhook as an admin sets it up in Configuration > Integrations > Webhooks."""
        record: JSON = {
            "name": name,
            "url": url,
            "authentication_type": AUTH_BASIC if username else AUTH_NONE,
            "basic_username": username,
            "basic_password": password,
            "payload_type": payload_type,
            "events": [{"name": event} for event in events],
        }
        return self._render_webhook(self._store.save_webhook(record, 0), details=True)

    # -- Python API: what people do in the Halo UI (fires webhooks) ----------------------------

    def create_ticket(
        self,
        summary: str,
        details: str,
        client_id: int,
        user_id: int | None,
        agent_id: int | None = None,
        *,
        site_id: int | None = None,
        team: str | None = None,
        opened_at: datetime | None = None,
        tickettype_id: int | None = None,
        category: str | None = None,
    ) -> JSON:
        """A ticket logged by agent `agent_id` (default: a human technician); fires webhooks.
        `category` is Halo's category path, e.g. "Account>Password Reset"."""
        user = self._store.users.get(user_id) if user_id else None
        record: JSON = {
            "summary": summary,
            "details": details,
            "client_id": client_id,
            "user_id": user_id,
            "site_id": site_id or (user or {}).get("site_id"),
            "team": team,
            "dateoccurred": halo_time(opened_at) if opened_at else None,
            "tickettype_id": tickettype_id,
            "category_1": category,
        }
        ticket, event = self._store.create_ticket(record, 0, agent_id or self.human_agent_id)
        self._fire([event])
        return self.ticket(int(ticket["id"]))

    def set_ticket_status(
        self, ticket_id: int, status_id: int, agent_id: int | None = None, *, closure_note: str | None = None
    ) -> JSON:
        """Change the status as an agent does; closing with a `closure_note` fills Halo's closure note."""
        with self._store.lock:
            ticket = self._store.ticket(ticket_id)
            if closure_note is not None:
                ticket["closure_note"] = closure_note
            events = self._store.set_status(ticket, status_id, agent_id or self.human_agent_id)
        self._fire(events)
        return self.ticket(ticket_id)

    def revoke_tokens(self) -> None:
        """Invalidate every issued token (as when the API application's secret is rotated)."""
        with self._tokens_lock:
            self._tokens.clear()

    # -- Python API: reading back --------------------------------------------------------------

    def ticket(self, ticket_id: int) -> JSON:
        return self._store.render_ticket(self._store.ticket(ticket_id), details=True)

    def tickets(self) -> list[JSON]:
        with self._store.lock:
            return [self._store.render_ticket(t, details=True) for _, t in sorted(self._store.tickets.items())]

    def actions(self, ticket_id: int) -> list[JSON]:
        return [self._copy(action) for action in self._store.ticket_actions(ticket_id)]

    def webhooks(self) -> list[JSON]:
        """Stored webhooks, password included (the API never shows it)."""
        with self._store.lock:
            return [self._copy(webhook) for webhook in self._store.webhooks.values()]

    def everything_text(self) -> str:
        """All text stored in tickets and actions, to prove a secret never got here."""
        return self._store.all_text()

    @property
    def request_log(self) -> list[RequestRecord]:
        with self._log_lock:
            return list(self._request_log)

    def api_requests(self) -> list[RequestRecord]:
        return [record for record in self.request_log if record.path.lower().startswith("/api/")]

    def clear_request_log(self) -> None:
        with self._log_lock:
            self._request_log.clear()

    @property
    def deliveries(self) -> list[Delivery]:
        return self._dispatcher.snapshot()

    def clear_deliveries(self) -> None:
        self._dispatcher.clear()

    def wait_for_deliveries(self, timeout: float = 10.0) -> None:
        """Block until no webhook delivery (pending retries included) is in flight."""
        self._dispatcher.wait_idle(timeout)

    def _copy(self, record: JSON) -> JSON:
        with self._store.lock:
            return _without_nulls(copy.deepcopy(record))

    def _log_request(self, record: RequestRecord) -> None:
        with self._log_lock:
            self._request_log.append(record)

    # -- tokens --------------------------------------------------------------------------------

    def _issue_token(self) -> str:
        token = secrets.token_urlsafe(32)
        with self._tokens_lock:
            self._tokens[token] = (time.monotonic() + self.token_lifetime_s, self.api_agent_id)
        return token

    def _token_valid(self, authorization: str) -> bool:
        scheme, _, token = authorization.strip().partition(" ")
        if scheme.lower() != "bearer" or not token:
            return False
        with self._tokens_lock:
            entry = self._tokens.get(token.strip())
        return entry is not None and time.monotonic() < entry[0]

    def _agent_of(self, request: Request) -> int:
        token = request.headers.get("authorization", "").partition(" ")[2].strip()
        with self._tokens_lock:
            entry = self._tokens.get(token)
        return entry[1] if entry else self.api_agent_id

    # -- webhooks out --------------------------------------------------------------------------

    def _fire(self, events: Iterable[TicketEvent]) -> None:
        for event in events:
            for webhook, subscription in self._store.subscribed(event.event):
                self._send(webhook, subscription, event)

    def _send(self, webhook: JSON, subscription: JSON, event: TicketEvent) -> None:
        envelope: JSON = {
            "id": str(uuid.uuid4()),
            "webhook_id": webhook["id"],
            "notification_id": subscription["id"],
            "escmsg_id": str(uuid.uuid4()),
            "event": event.event,
            "message": _message(event),
            "object_id": event.ticket_id,
            "agent_id": event.agent_id,
            "timestamp": webhook_timestamp(_now()),
        }
        payload_type = webhook.get("payload_type")
        if payload_type == PAYLOAD_SMALL:
            envelope["ticket"] = _pick(event.ticket, TICKET_SMALL_FIELDS)
        elif payload_type == PAYLOAD_FULL:
            envelope["ticket"] = self._store.render_ticket(event.ticket, details=True)
        delivery = Delivery(
            delivery_id=envelope["id"],
            webhook_id=webhook["id"],
            url=webhook["url"],
            event=event.event,
            object_id=event.ticket_id,
            agent_id=event.agent_id,
            body=json.dumps(envelope, separators=(",", ":"), ensure_ascii=False).encode("utf-8"),
            authorization=_basic(webhook),
        )
        if self.faults.drop_webhooks:
            self._dispatcher.record_dropped(delivery, "dropped by fault injection")
        elif self._server is None:
            self._dispatcher.record_dropped(delivery, "sandbox not started")
        else:
            self._dispatcher.submit(delivery)

    # -- HTTP ----------------------------------------------------------------------------------

    def _build_app(self) -> Starlette:
        routes = [
            Route("/auth/token", self._token, methods=["POST"]),
            Route("/api/authinfo", self._authinfo, methods=["GET"]),
            Route("/api/tickets", self._tickets, methods=["GET", "POST"]),
            Route("/api/tickets/{id:int}", self._ticket_item, methods=["GET"]),
            Route("/api/actions", self._actions, methods=["GET", "POST"]),
            Route("/api/actions/{id:int}", self._action_item, methods=["GET"]),
            Route("/api/users", self._users, methods=["GET"]),
            Route("/api/users/{id:int}", self._one(lambda: self._store.users, "User"), methods=["GET"]),
            Route("/api/client", self._clients, methods=["GET"]),
            Route("/api/client/{id:int}", self._one(lambda: self._store.clients, "Client"), methods=["GET"]),
            Route("/api/site", self._all(lambda: self._store.sites), methods=["GET"]),
            Route("/api/site/{id:int}", self._one(lambda: self._store.sites, "Site"), methods=["GET"]),
            Route("/api/status", self._all(lambda: self._store.statuses), methods=["GET"]),
            Route("/api/status/{id:int}", self._one(lambda: self._store.statuses, "Status"), methods=["GET"]),
            Route("/api/team", self._all(lambda: self._store.teams), methods=["GET"]),
            Route("/api/outcome", self._all(lambda: self._store.outcomes), methods=["GET"]),
            Route("/api/agent", self._all(lambda: self._store.agents), methods=["GET"]),
            Route("/api/agent/me", self._agent_me, methods=["GET"]),
            Route("/api/agent/{id:int}", self._one(lambda: self._store.agents, "Agent"), methods=["GET"]),
            Route("/api/webhook", self._webhooks, methods=["GET", "POST"]),
            Route("/api/webhook/{id}", self._webhook_item, methods=["GET", "DELETE"]),
            Route("/api/azureadconnection", self._connections, methods=["GET"]),
            Route("/api/azureadconnection/{id:int}", self._connection_item, methods=["GET"]),
        ]
        return Starlette(
            routes=routes,
            middleware=[Middleware(_Gate, sandbox=self)],
            exception_handlers={
                HaloError: vendor_error_handler(HaloError),
                HTTPException: self._on_http_error,
                Exception: self._on_crash,
            },
        )

    @staticmethod
    async def _on_http_error(request: Request, exc: Exception) -> Response:
        assert isinstance(exc, HTTPException)
        if exc.status_code == 404:
            return HaloError(404, "The requested resource does not exist").response()
        return HaloError(exc.status_code, str(exc.detail)).response()

    @staticmethod
    async def _on_crash(request: Request, exc: Exception) -> Response:
        return HaloError(500, f"An error has occurred: {exc}").response()

    @staticmethod
    async def _json(request: Request) -> Any:
        try:
            return json.loads(await request.body())
        except (json.JSONDecodeError, UnicodeDecodeError):
            raise HaloError(400, "The request body is not valid JSON") from None

    @staticmethod
    async def _form(request: Request) -> dict[str, str]:
        if request.headers.get("content-type", "").split(";")[0].strip() != "application/x-www-form-urlencoded":
            raise HaloError(400, {"error": "invalid_request", "error_description": "form-encoded body expected"})
        pairs = parse_qsl((await request.body()).decode("utf-8", "replace"), keep_blank_values=True)
        return dict(pairs)

    @staticmethod
    def _answer(saved: list[JSON]) -> Response:
        return JSONResponse(saved[0] if len(saved) == 1 else saved)

    # auth

    async def _authinfo(self, request: Request) -> Response:
        if not self.authinfo_enabled:
            raise HaloError(404, "The requested resource does not exist")
        info: JSON = {"auth_url": f"{str(request.base_url).rstrip('/')}/auth"}
        if self.tenant:
            info["tenant_id"] = self.tenant
        return JSONResponse(info)

    async def _token(self, request: Request) -> Response:
        form = await self._form(request)
        tenant = request.query_params.get("tenant")
        if self.tenant and (tenant or "").lower() != self.tenant.lower():
            raise HaloError(400, {"error": "invalid_request", "error_description": "Unknown or missing tenant"})
        if form.get("grant_type") != "client_credentials":
            raise HaloError(400, {"error": "unsupported_grant_type"})
        valid = hmac.compare_digest(str(form.get("client_id") or ""), self.client_id) and hmac.compare_digest(
            str(form.get("client_secret") or ""), self.client_secret
        )
        if not valid:
            raise HaloError(401, {"error": "invalid_client"})
        scopes = str(form.get("scope") or "").split()
        if "all" not in scopes:
            raise HaloError(400, {"error": "invalid_scope"})
        body = {
            "scope": "all",
            "token_type": "Bearer",
            "access_token": self._issue_token(),
            "expires_in": int(self.token_lifetime_s),
        }
        return JSONResponse(body, headers={"Cache-Control": "no-store"})

    # generic reads

    def _all(self, table: Callable[[], Mapping[Any, JSON]]) -> Callable[[Request], Any]:
        async def handler(request: Request) -> Response:
            with self._store.lock:
                return JSONResponse([self._copy(record) for _, record in sorted(table().items())])

        return handler

    def _one(self, table: Callable[[], Mapping[int, JSON]], label: str) -> Callable[[Request], Any]:
        async def handler(request: Request) -> Response:
            record_id = int(request.path_params["id"])
            with self._store.lock:
                record = table().get(record_id)
                if record is None:
                    raise not_found(f"{label} {record_id}")
                return JSONResponse(self._copy(record))

        return handler

    @staticmethod
    def _page(query: _Query, records: list[JSON], key: str) -> JSON:
        if not query.flag("pageinate"):
            count = query.number("count")
            return {"record_count": len(records), key: records[:count] if count else records}
        size = min(max(query.number("page_size") or 50, 1), MAX_PAGE_SIZE)
        page = max(query.number("page_no") or 1, 1)
        return {
            "page_no": page,
            "page_size": size,
            "record_count": len(records),
            key: records[(page - 1) * size : page * size],
        }

    async def _agent_me(self, request: Request) -> Response:
        agent_id = self._agent_of(request)
        with self._store.lock:
            return JSONResponse(self._copy(self._store.agents[agent_id]))

    # tickets

    async def _tickets(self, request: Request) -> Response:
        if request.method == "POST":
            return await self._save_tickets(request)
        query = _Query(request)
        with self._store.lock:
            found = [t for t in self._store.tickets.values() if self._ticket_matches(query, t)]
            found = self._ordered(query, found)
            listed = [_pick(self._store.render_ticket(t, details=False), TICKET_LIST_FIELDS) for t in found]
        return JSONResponse(self._page(query, listed, "tickets"))

    def _ticket_matches(self, query: _Query, ticket: JSON) -> bool:
        for name in ("client_id", "user_id", "status_id", "agent_id", "site_id"):
            wanted = query.number(name)
            if wanted is not None and ticket.get(name) != wanted:
                return False
        if query.flag("open_only") and ticket["hasbeenclosed"]:
            return False
        if query.flag("closed_only") and not ticket["hasbeenclosed"]:
            return False
        search = query.text("search")
        if search and search.lower() not in ticket["summary"].lower():
            return False
        return self._in_date_range(query, ticket)

    @staticmethod
    def _in_date_range(query: _Query, ticket: JSON) -> bool:
        column = query.text("datesearch")
        start, end = query.text("startdate"), query.text("enddate")
        if column is None:
            return True
        fields = {"dateoccured": "dateoccurred", "datecleared": "dateclosed"}
        if column.lower() not in fields:
            raise invalid("datesearch", f"Invalid datesearch field '{column}'")
        value = ticket.get(fields[column.lower()])
        if value is None:
            return False
        moment = parse_halo_time(value)
        if start and moment < parse_query_time(start, "startdate"):
            return False
        return not (end and moment > parse_query_time(end, "enddate"))

    @staticmethod
    def _ordered(query: _Query, tickets: list[JSON]) -> list[JSON]:
        key = query.text("order")
        if key is None:
            # Halo lists the newest ticket first unless told otherwise.
            return sorted(tickets, key=lambda t: t["id"], reverse=True)
        descending = query.flag("orderdesc")
        return sorted(tickets, key=lambda t: (t.get(key) is None, str(t.get(key)).zfill(20)), reverse=descending)

    async def _save_tickets(self, request: Request) -> Response:
        records = _array_body(await self._json(request))
        actor = self._agent_of(request)
        saved: list[JSON] = []
        events: list[TicketEvent] = []
        for index, record in enumerate(records):
            if _strict_int(record, "id", index):
                ticket, changed = self._update_ticket(record, index, actor)
                events.extend(changed)
            else:
                ticket, created = self._store.create_ticket(record, index, actor)
                events.append(created)
            saved.append(self._store.render_ticket(ticket, details=True))
        self._fire(events)
        return self._answer(saved)

    def _update_ticket(self, record: JSON, index: int, actor: int) -> tuple[JSON, list[TicketEvent]]:
        status_id = _strict_int(record, "status_id", index)
        if self.faults.refuse_closing and status_id in self._store.closed_statuses:
            record = {key: value for key, value in record.items() if key != "status_id"}
        return self._store.update_ticket(record, index, actor)

    async def _ticket_item(self, request: Request) -> Response:
        query = _Query(request)
        ticket = self._store.ticket(int(request.path_params["id"]))
        return JSONResponse(self._store.render_ticket(ticket, details=query.flag("includedetails")))

    # actions

    async def _actions(self, request: Request) -> Response:
        if request.method == "POST":
            records = _array_body(await self._json(request))
            actor = self._agent_of(request)
            saved: list[JSON] = []
            events: list[TicketEvent] = []
            for index, record in enumerate(records):
                action, fired = self._store.add_action(record, index, actor)
                saved.append(self._copy(action))
                events.extend(fired)
            self._fire(events)
            return self._answer(saved)
        query = _Query(request)
        rows = [self._render_action(a, query) for a in self._store.ticket_actions(query.number("ticket_id"))]
        if query.flag("excludeprivate"):
            rows = [row for row in rows if not row.get("hiddenfromuser")]
        count = query.number("count")
        return JSONResponse({"record_count": len(rows), "actions": rows[:count] if count else rows})

    def _render_action(self, action: JSON, query: _Query) -> JSON:
        rendered = self._copy(action)
        if not query.flag("includehtmlnote"):
            rendered.pop("note_html", None)
        return rendered

    async def _action_item(self, request: Request) -> Response:
        action_id = int(request.path_params["id"])
        with self._store.lock:
            action = self._store.actions.get(action_id)
            if action is None:
                raise not_found(f"Action {action_id}")
            return JSONResponse(self._copy(action))

    # people

    async def _users(self, request: Request) -> Response:
        query = _Query(request)
        client_id, site_id, search = query.number("client_id"), query.number("site_id"), query.text("search")
        with self._store.lock:
            users = [
                self._copy(u)
                for _, u in sorted(self._store.users.items())
                if (client_id is None or u["client_id"] == client_id)
                and (site_id is None or u["site_id"] == site_id)
                and (not search or search.lower() in f"{u['name']} {u['emailaddress']}".lower())
            ]
        return JSONResponse(self._page(query, users, "users"))

    async def _clients(self, request: Request) -> Response:
        query = _Query(request)
        search = query.text("search")
        with self._store.lock:
            clients = [
                self._copy(c)
                for _, c in sorted(self._store.clients.items())
                if not search or search.lower() in c["name"].lower()
            ]
        return JSONResponse(self._page(query, clients, "clients"))

    # webhooks

    def _render_webhook(self, webhook: JSON, *, details: bool) -> JSON:
        shown = {key: value for key, value in webhook.items() if key != "basic_password"}
        if not details:
            shown = _pick(shown, WEBHOOK_SUMMARY_FIELDS)
        return _without_nulls(copy.deepcopy(shown))

    async def _webhooks(self, request: Request) -> Response:
        if request.method == "POST":
            records = _array_body(await self._json(request))
            saved = [
                self._render_webhook(self._store.save_webhook(record, index), details=True)
                for index, record in enumerate(records)
            ]
            return self._answer(saved)
        with self._store.lock:
            hooks = [self._render_webhook(w, details=False) for w in self._store.webhooks.values()]
        return JSONResponse(hooks)

    async def _webhook_item(self, request: Request) -> Response:
        webhook_id = self._guid(request.path_params["id"])
        with self._store.lock:
            webhook = self._store.webhooks.get(webhook_id)
            if webhook is None:
                raise not_found(f"Webhook {webhook_id}")
            if request.method == "DELETE":
                del self._store.webhooks[webhook_id]
                return Response(status_code=200)
            return JSONResponse(self._render_webhook(webhook, details=_Query(request).flag("includedetails")))

    @staticmethod
    def _guid(value: str) -> str:
        try:
            return str(uuid.UUID(value))
        except ValueError:
            raise invalid("id", f"The value '{value}' is not valid.") from None

    # Azure AD connections

    async def _connections(self, request: Request) -> Response:
        wanted = _Query(request).number("type")
        with self._store.lock:
            found = [
                self._copy(c)
                for _, c in sorted(self._store.connections.items())
                if wanted is None or c.get("type") == wanted
            ]
        return JSONResponse(found)

    async def _connection_item(self, request: Request) -> Response:
        query = _Query(request)
        connection_id = int(request.path_params["id"])
        with self._store.lock:
            connection = self._store.connections.get(connection_id)
            if connection is None:
                raise not_found(f"Azure AD connection {connection_id}")
            rendered = self._copy(connection)
            if query.flag("includetenants"):
                mappings = [m for m in self._store.tenant_mappings if m["details_id"] == connection_id]
                rendered["mappings_client"] = [self._copy(m) for m in mappings]
        return JSONResponse(rendered)


def _message(event: TicketEvent) -> str:
    number = f"{event.ticket_id:07d}"
    if event.event == EVENT_NEW_TICKET:
        return f"A new Ticket has been logged: {number}."
    if event.event == EVENT_STATUS_CHANGED:
        return f"The status has been changed for Ticket ID: {number}."
    if event.event == EVENT_REASSIGNED:
        return f"Ticket ID: {number} has been reassigned."
    return f"A new Action has been added to Ticket ID: {number}."


def _basic(webhook: JSON) -> str | None:
    if webhook.get("authentication_type") != AUTH_BASIC:
        return None
    pair = f"{webhook.get('basic_username') or ''}:{webhook.get('basic_password') or ''}"
    return "Basic " + base64.b64encode(pair.encode("utf-8")).decode("ascii")


__all__ = [
    "DEFAULT_CLIENT_ID",
    "DEFAULT_CLIENT_SECRET",
    "DEFAULT_TENANT",
    "OUTCOME_REQUIRED",
    "PAYLOAD_EVENT_ONLY",
    "PAYLOAD_FULL",
    "PAYLOAD_SMALL",
    "Delivery",
    "Faults",
    "HaloError",
    "HaloSandbox",
    "RequestRecord",
]

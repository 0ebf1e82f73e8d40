"""A local Autotask PSA that the real client cannot tell from the vendor's.

It follows the contract in the team's PSA research notes (psa.md §2, Autotask) and what public
clients of the REST API rely on:

- Zone discovery without credentials: `GET /atservicesrest/V1.0/zoneInformation?user=` →
  `{"zoneName", "url": ".../ATServicesRest/", "webUrl", "ci"}`; an unknown user gets
  `{"errors": ["Zone information could not be determined"]}`. `V2.0/zoneInformation` is a 404.
- The REST API under `/ATServicesRest/V1.0/` (paths matched case-insensitively, as IIS does),
  authenticated by the `ApiIntegrationCode`, `UserName` and `Secret` headers.
- `GET {Entity}/{id}` → `{"item": {...}}`, and `{"item": null}` with a 200 for a missing id.
  Creates (`POST {Entity}`) and updates (`PATCH {Entity}` with the id in the body) answer
  `{"itemId": n}`. Field names are read case-insensitively and written back in camelCase, nulls
  included.
- Queries: `POST {Entity}/query` or `GET {Entity}/query?search=` with `filter` (eq, noteq, gt, gte,
  lt, lte, beginsWith, endsWith, contains, exist, notExist, in, notIn; `and`/`or` groups with
  `items`; `udf: true` for user-defined fields), `IncludeFields`, `MaxRecords` 1–500, paging in
  `pageDetails` whose `nextPageUrl` (`{Entity}/query/next?paging=…`) must be POSTed with the same
  body. `ne` is not an operator. `{Entity}/query/count` answers `{"queryCount": n}`.
- Errors are `{"errors": ["text", ...]}`. Like Autotask, validation and business-rule failures
  answer **500**; bad credentials 401; unknown routes 404.
- Limits: more than `thread_limit` (3) concurrent requests on one endpoint for one integration
  code are refused with status `thread_limit_status` (**500** by default: psa.md says the
  `Itgenatr005` rejection may come without a 429, so the sandbox picks the harder case) and an
  `Itgenatr005` message. `request_threshold` requests per rolling hour (10,000) are allowed; past
  it every call is refused with 429 until the hour rolls. `ThresholdInformation` reports usage.
- Webhooks (`TicketWebhooks` + `Fields` + `ExcludedResources` children): a ticket created,
  updated or deleted through the API or by a person (the seeding methods) is POSTed to every
  active, ready webhook subscribed to that action, unless the saving resource is excluded.
  Updates fire only when a subscribed field changed. The body is compact JSON in .NET's escaped
  form (`& < > ' " ` +` and all non-ASCII as `\\uXXXX`), signed `X-Hook-Signature: sha1=<base64
  HMAC-SHA1(SecretKey, exact bytes sent)>`. Deliveries time out after 10 s, are retried every
  `retry_delay` s (30) up to `max_attempts` (5), then dropped to the webhook error log; later
  events for the same webhook queue behind a failing one. After `auto_disable_after` (25)
  consecutive dropped events the webhook is deactivated. A webhook that is deactivated or deleted
  gets a signed `{"Action": "Deactivated", ...}` at its DeactivationUrl (that body is not
  documented: the sandbox's shape is an assumption).

Other choices where Autotask's behaviour is not verified (psa.md §6): a webhook's `secretKey` is
read back by GET/query; PATCHing or deleting an unknown id is a 404; time entries need
`resourceID`, `roleID`, `dateWorked`, `hoursWorked` (0 < h ≤ 24) and `summaryNotes`, may not
span UTC midnight and may not be entered for another resource (`proxy_time_entry` to allow);
notes need a title (`require_note_titles`); picklist values are those of a fresh tenant.

Usage (tests, demo):

    sandbox = AutotaskSandbox(retry_delay=0.05).start()
    company = sandbox.add_company("Fabrikam, Inc.", udfs={"Microsoft Tenant ID": tenant_id})
    contact = sandbox.add_contact(company["id"], "Jane", "Doe", "jane.doe@fabrikam.com")
    sandbox.register_webhook("http://127.0.0.1:7071/api/webhooks/autotask?code=...", secret)
    ticket = sandbox.create_ticket("Password reset", "I forgot it", company["id"], contact["id"])
    sandbox.wait_for_deliveries()
    sandbox.stop()
"""

from __future__ import annotations

import asyncio
import base64
import collections
import copy
import dataclasses
import hashlib
import hmac
import itertools
import json
import logging
import math
import re
import threading
import time
import uuid
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, NamedTuple
from urllib.parse import quote, urlsplit

import httpx
from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from sandbox._delivery import Dispatcher, is_success
from sandbox._faults import FailureQueue
from sandbox._server import BackgroundServer, ServedSandbox, vendor_error_handler

JSON = dict[str, Any]
log = logging.getLogger("sandbox.autotask")

API_PREFIX = "/atservicesrest/"
VERSION = "v1.0"
MAX_RECORDS = 500
MAX_OR_CONDITIONS = 500
WEBHOOK_TIMEOUT_S = 10.0
THRESHOLD_WINDOW_S = 3600.0
COMPLETE = 5
ZONE_NOT_FOUND = "Zone information could not be determined"
THREAD_LIMIT_MESSAGE = (
    "Itgenatr005: The thread threshold of {limit} concurrent requests for the {endpoint} endpoint "
    "has been exceeded for this integration. Retry the request later."
)
THRESHOLD_MESSAGE = (
    "The API request threshold of {limit} requests per hour has been exceeded for this database. "
    "API access is blocked until usage falls below the threshold."
)

# Picklists (values illustrative, as on a fresh tenant; 5 = Complete is the system value).
TICKET_STATUSES = {
    1: "New",
    5: "Complete",
    7: "Waiting Customer",
    8: "In Progress",
    9: "Waiting Materials",
    10: "Dispatched",
    11: "Escalate",
    12: "Waiting Vendor",
    13: "Waiting Approval",
    16: "On Hold",
}
TICKET_PRIORITIES = {1: "High", 2: "Medium", 3: "Low", 4: "Critical"}
DEFAULT_QUEUES = {
    29682833: "Client Portal",
    29683481: "Level I Support",
    29683482: "Level II Support",
    29683483: "Escalations",
}
DEFAULT_QUEUE_ID = 29683481
# Issue types and sub-issue types are tenant-defined; these are the kind an MSP sets up. A sub-issue
# type belongs to one issue type (its picklist's parent value), as in Autotask.
ISSUE_TYPES = {
    8: "Account / Access",
    9: "Email",
    10: "Hardware",
    11: "Network",
    12: "Software",
    13: "User Lifecycle",
    14: "Line of Business Application",
}
SUB_ISSUE_TYPES = {  # value: (label, parent issue type)
    201: ("Password Reset", 8),
    202: ("Account Unlock", 8),
    203: ("MFA / Authenticator", 8),
    204: ("Group Membership", 8),
    205: ("Licence Change", 8),
    211: ("Shared Mailbox Permission", 9),
    212: ("Mail Delivery", 9),
    221: ("Printer", 10),
    222: ("Laptop / Desktop", 10),
    231: ("Wi-Fi / Internet", 11),
    241: ("Install / Update", 12),
    251: ("New Starter", 13),
    252: ("Leaver", 13),
    261: ("Login / Password", 14),
}
TICKET_CATEGORIES = {2: "Standard", 3: "AEM Alert", 4: "Service Request", 5: "Incident"}
NOTE_TYPES = {1: "Task Notes", 2: "Task Detail", 3: "Task Summary", 13: "Internal Notes"}
NOTE_PUBLISH = {1: "All Autotask Users", 2: "Internal Only"}
ROLES = {29683464: "Technician I", 29683465: "Technician II", 29683466: "Service Desk Manager"}


class WebhookField(NamedTuple):
    field_id: int
    ticket_field: str  # the REST field of Tickets
    label: str  # the picklist label, also the key in a payload's Fields


# The `fieldID` picklist of TicketWebhookFields: its ids are not Tickets' field names (psa.md §2.1).
WEBHOOK_FIELDS = (
    WebhookField(101, "ticketNumber", "TicketNumber"),
    WebhookField(102, "title", "Title"),
    WebhookField(103, "description", "Description"),
    WebhookField(104, "status", "Status"),
    WebhookField(105, "priority", "Priority"),
    WebhookField(106, "queueID", "QueueID"),
    WebhookField(107, "companyID", "CompanyID"),
    WebhookField(108, "contactID", "ContactID"),
    WebhookField(109, "assignedResourceID", "AssignedResourceID"),
    WebhookField(110, "dueDateTime", "DueDateTime"),
    WebhookField(111, "lastActivityDate", "LastActivityDate"),
)
WEBHOOK_FIELDS_BY_ID = {f.field_id: f for f in WEBHOOK_FIELDS}


# ---------------------------------------------------------------------------------------------
# Entities: fields (camelCase, in Autotask's order), types and limits
# ---------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Entity:
    name: str
    fields: tuple[str, ...]
    ints: frozenset[str] = frozenset()
    bools: frozenset[str] = frozenset()
    floats: frozenset[str] = frozenset()
    times: frozenset[str] = frozenset()
    lengths: Mapping[str, int] = field(default_factory=dict)
    required: tuple[str, ...] = ()
    read_only: frozenset[str] = frozenset({"id"})
    picklists: Mapping[str, Callable[[], Mapping[int, str]]] = field(default_factory=dict)
    references: Mapping[str, str] = field(default_factory=dict)
    writable: bool = False
    deletable: bool = False
    udfs: bool = False
    parent: tuple[str, str] | None = None  # (parent entity, parent-id field) for child access

    def canonical(self, name: str) -> str | None:
        lowered = name.lower()
        return next((f for f in self.fields if f.lower() == lowered), None)

    def data_type(self, name: str) -> str:
        if name in self.ints:
            return "integer"
        if name in self.bools:
            return "boolean"
        if name in self.floats:
            return "double"
        if name in self.times:
            return "datetime"
        if name == "userDefinedFields":
            return "userDefinedFields"
        return "string"


def _names(text: str) -> tuple[str, ...]:
    return tuple(text.split())


def _set(text: str) -> frozenset[str]:
    return frozenset(text.split())


TICKETS = Entity(
    "Tickets",
    _names(
        "id ticketNumber title description status priority queueID companyID companyLocationID contactID "
        "assignedResourceID assignedResourceRoleID ticketType ticketCategory issueType subIssueType source "
        "dueDateTime createDate createdByContactID creatorResourceID creatorType lastActivityDate "
        "lastActivityResourceID completedDate completedByResourceID resolution userDefinedFields"
    ),
    ints=_set(
        "id status priority queueID companyID companyLocationID contactID assignedResourceID assignedResourceRoleID "
        "ticketType ticketCategory issueType subIssueType source createdByContactID creatorResourceID creatorType "
        "lastActivityResourceID completedByResourceID"
    ),
    times=_set("dueDateTime createDate lastActivityDate completedDate"),
    lengths={"title": 255, "description": 8000, "resolution": 32000},
    required=_names("companyID title status priority"),
    read_only=_set(
        "id ticketNumber createDate createdByContactID creatorResourceID creatorType lastActivityDate "
        "lastActivityResourceID completedDate completedByResourceID"
    ),
    references={"companyID": "Companies", "contactID": "Contacts", "assignedResourceID": "Resources"},
    picklists={
        "issueType": lambda: ISSUE_TYPES,
        "subIssueType": lambda: {value: label for value, (label, _) in SUB_ISSUE_TYPES.items()},
        "ticketCategory": lambda: TICKET_CATEGORIES,
    },
    writable=True,
    udfs=True,
)
COMPANIES = Entity(
    "Companies",
    _names(
        "id companyName companyNumber companyType isActive phone webAddress ownerResourceID createDate "
        "lastActivityDate userDefinedFields"
    ),
    ints=_set("id companyType ownerResourceID"),
    bools=_set("isActive"),
    times=_set("createDate lastActivityDate"),
    udfs=True,
)
CONTACTS = Entity(
    "Contacts",
    _names(
        "id companyID firstName lastName emailAddress emailAddress2 emailAddress3 phone title isActive createDate "
        "lastActivityDate"
    ),
    ints=_set("id companyID isActive"),  # Contacts.isActive is an integer (1/0) in Autotask
    times=_set("createDate lastActivityDate"),
    references={"companyID": "Companies"},
    parent=("Companies", "companyID"),
)
RESOURCES = Entity(
    "Resources",
    _names("id firstName lastName email userName title isActive licenseType defaultServiceDeskRoleID"),
    ints=_set("id licenseType defaultServiceDeskRoleID"),
    bools=_set("isActive"),
)
TICKET_NOTES = Entity(
    "TicketNotes",
    _names(
        "id ticketID title description noteType publish createDateTime createdByContactID creatorResourceID "
        "impersonatorCreatorResourceID lastActivityDate"
    ),
    ints=_set("id ticketID noteType publish createdByContactID creatorResourceID impersonatorCreatorResourceID"),
    times=_set("createDateTime lastActivityDate"),
    lengths={"title": 250, "description": 32000},
    required=_names("ticketID description noteType publish"),
    read_only=_set(
        "id createDateTime createdByContactID creatorResourceID impersonatorCreatorResourceID lastActivityDate"
    ),
    picklists={"noteType": lambda: NOTE_TYPES, "publish": lambda: NOTE_PUBLISH},
    references={"ticketID": "Tickets"},
    writable=True,
    parent=("Tickets", "ticketID"),
)
TIME_ENTRIES = Entity(
    "TimeEntries",
    _names(
        "id ticketID taskID resourceID roleID dateWorked startDateTime endDateTime hoursWorked hoursToBill "
        "summaryNotes internalNotes billingCodeID isNonBillable createDateTime creatorUserID "
        "impersonatorCreatorResourceID"
    ),
    ints=_set("id ticketID taskID resourceID roleID billingCodeID creatorUserID impersonatorCreatorResourceID"),
    bools=_set("isNonBillable"),
    floats=_set("hoursWorked hoursToBill"),
    times=_set("dateWorked startDateTime endDateTime createDateTime"),
    lengths={"summaryNotes": 8000, "internalNotes": 8000},
    required=_names("resourceID roleID dateWorked hoursWorked summaryNotes"),
    read_only=_set("id hoursToBill createDateTime creatorUserID impersonatorCreatorResourceID"),
    references={"ticketID": "Tickets", "resourceID": "Resources"},
    writable=True,
    parent=("Tickets", "ticketID"),
)
TICKET_WEBHOOKS = Entity(
    "TicketWebhooks",
    _names(
        "id name webhookUrl deactivationUrl isActive isReady isSubscribedToCreateEvents isSubscribedToUpdateEvents "
        "isSubscribedToDeleteEvents secretKey notificationEmailAddress sendThresholdExceededNotification "
        "ownerResourceID webhookGUID"
    ),
    ints=_set("id ownerResourceID"),
    bools=_set(
        "isActive isReady isSubscribedToCreateEvents isSubscribedToUpdateEvents isSubscribedToDeleteEvents "
        "sendThresholdExceededNotification"
    ),
    lengths={"name": 50, "webhookUrl": 500, "deactivationUrl": 500, "secretKey": 64, "notificationEmailAddress": 150},
    required=_names("name webhookUrl deactivationUrl"),
    read_only=_set("id isReady ownerResourceID webhookGUID"),
    writable=True,
    deletable=True,
)
TICKET_WEBHOOK_FIELDS = Entity(
    "TicketWebhookFields",
    _names("id webhookID fieldID isSubscribedField isDisplayAlwaysField"),
    ints=_set("id webhookID fieldID"),
    bools=_set("isSubscribedField isDisplayAlwaysField"),
    required=_names("webhookID fieldID"),
    picklists={"fieldID": lambda: {f.field_id: f.label for f in WEBHOOK_FIELDS}},
    references={"webhookID": "TicketWebhooks"},
    writable=True,
    deletable=True,
    parent=("TicketWebhooks", "webhookID"),
)
TICKET_WEBHOOK_EXCLUDED = Entity(
    "TicketWebhookExcludedResources",
    _names("id webhookID resourceID"),
    ints=_set("id webhookID resourceID"),
    required=_names("webhookID resourceID"),
    references={"webhookID": "TicketWebhooks", "resourceID": "Resources"},
    writable=True,
    deletable=True,
    parent=("TicketWebhooks", "webhookID"),
)
ENTITIES = {
    e.name.lower(): e
    for e in (
        TICKETS,
        COMPANIES,
        CONTACTS,
        RESOURCES,
        TICKET_NOTES,
        TIME_ENTRIES,
        TICKET_WEBHOOKS,
        TICKET_WEBHOOK_FIELDS,
        TICKET_WEBHOOK_EXCLUDED,
    )
}
# Child collections: /{Parent}/{parentId}/{Child}
CHILDREN = {
    ("tickets", "notes"): TICKET_NOTES,
    ("tickets", "timeentries"): TIME_ENTRIES,
    ("companies", "contacts"): CONTACTS,
    ("ticketwebhooks", "fields"): TICKET_WEBHOOK_FIELDS,
    ("ticketwebhooks", "excludedresources"): TICKET_WEBHOOK_EXCLUDED,
}
WEBHOOK_ENTITIES = frozenset({"Tickets", "Companies", "Contacts", "TicketNotes"})


# ---------------------------------------------------------------------------------------------
# Errors, times, JSON as .NET writes it, signatures
# ---------------------------------------------------------------------------------------------


class ATError(Exception):
    """An answer in Autotask's error shape; raised anywhere, rendered by the app."""

    def __init__(self, status: int, *messages: str, headers: Mapping[str, str] | None = None) -> None:
        super().__init__("; ".join(messages))
        self.status = status
        self.messages = list(messages)
        self.headers = dict(headers or {})

    def response(self) -> Response:
        return JSONResponse({"errors": self.messages}, status_code=self.status, headers=self.headers)


def invalid(*messages: str) -> ATError:
    """Autotask answers validation and business-rule failures with a 500."""
    return ATError(500, *messages)


def _utcnow() -> datetime:
    return datetime.now(UTC)


def format_time(moment: datetime) -> str:
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z"


def format_event_time(moment: datetime) -> str:
    """.NET's round-trip format: seven fractional digits."""
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%f") + "0Z"


def parse_time(value: Any) -> datetime | None:
    if isinstance(value, datetime):
        return value.astimezone(UTC)
    if not isinstance(value, str) or not value.strip():
        return None
    text = value.strip()
    match = re.match(r"^(\d{4}-\d{2}-\d{2})(?:[T ](\d{2}:\d{2}(?::\d{2})?)(?:\.(\d+))?)?(Z|[+-]\d{2}:?\d{2})?$", text)
    if not match:
        return None
    day, clock, fraction, zone = match.groups()
    stamp = f"{day}T{clock or '00:00:00'}"
    if fraction:
        stamp += "." + fraction[:6].ljust(6, "0")
    if zone and zone != "Z":
        stamp += zone if ":" in zone else f"{zone[:3]}:{zone[3:]}"
    moment = datetime.fromisoformat(stamp)
    return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)


def dotnet_dumps(value: Any) -> bytes:
    """Compact JSON the way Autotask's .NET serializer writes a webhook body.

    HTML-sensitive characters (& < > ' " ` +) and everything outside printable ASCII are written
    as \\uXXXX (UTF-16 code units, upper-case hex); the backslash as \\\\."""

    def string(text: str) -> str:
        out = []
        for char in text:
            code = ord(char)
            if char == "\\":
                out.append("\\\\")
            elif char in "&<>'\"`+" or code < 0x20 or code > 0x7E:
                if char in "\n\r\t\b\f":
                    out.append(json.dumps(char)[1:-1])
                    continue
                for unit in _utf16_units(char):
                    out.append(f"\\u{unit:04X}")
            else:
                out.append(char)
        return '"' + "".join(out) + '"'

    def encode(item: Any) -> str:
        if isinstance(item, dict):
            return "{" + ",".join(f"{string(str(k))}:{encode(v)}" for k, v in item.items()) + "}"
        if isinstance(item, (list, tuple)):
            return "[" + ",".join(encode(v) for v in item) + "]"
        if isinstance(item, str):
            return string(item)
        return json.dumps(item)

    return encode(value).encode("ascii")


def _utf16_units(char: str) -> list[int]:
    raw = char.encode("utf-16-be")
    return [int.from_bytes(raw[i : i + 2], "big") for i in range(0, len(raw), 2)]


def sign(secret: str, body: bytes) -> str:
    digest = hmac.new(secret.encode("utf-8"), body, hashlib.sha1).digest()
    return "sha1=" + base64.b64encode(digest).decode("ascii")


# ---------------------------------------------------------------------------------------------
# Query filters
# ---------------------------------------------------------------------------------------------

Predicate = Callable[[JSON], bool]
COMPARISONS = frozenset({"eq", "noteq", "gt", "gte", "lt", "lte", "beginswith", "endswith", "contains"})
PRESENCE = frozenset({"exist", "notexist"})
MEMBERSHIP = frozenset({"in", "notin"})


def compile_filter(entity: Entity, items: Any) -> Predicate:
    """The top-level `filter` list: every item must hold."""
    if not isinstance(items, list) or not items:
        raise invalid("The filter is required and must contain at least one condition.")
    if _count_or(items) > MAX_OR_CONDITIONS:
        raise invalid("Invalid query syntax. Queries are limited to 500 or fewer 'OR' conditions.")
    predicates = [_compile_item(entity, item) for item in items]
    return lambda record: all(p(record) for p in predicates)


def _count_or(items: Iterable[Any]) -> int:
    total = 0
    for item in items:
        if isinstance(item, dict):
            children = item.get("items") or []
            if str(item.get("op", "")).lower() == "or":
                total += len(children)
            total += _count_or(children)
    return total


def _compile_item(entity: Entity, item: Any) -> Predicate:
    if not isinstance(item, dict):
        raise invalid("Each filter condition must be an object.")
    lowered = {str(k).lower(): v for k, v in item.items()}
    op = str(lowered.get("op", "")).lower()
    if op in ("and", "or"):
        children = [_compile_item(entity, child) for child in lowered.get("items") or []]
        if not children:
            raise invalid(f"The '{op}' condition requires items.")
        return (lambda r: all(c(r) for c in children)) if op == "and" else (lambda r: any(c(r) for c in children))
    if op not in COMPARISONS | PRESENCE | MEMBERSHIP:
        raise invalid(f"Invalid operator '{lowered.get('op')}'. Use eq, noteq, gt, gte, lt, lte, beginsWith, ...")
    name = lowered.get("field")
    if not isinstance(name, str) or not name:
        raise invalid("A filter condition requires a field.")
    getter = _udf_getter(name) if lowered.get("udf") else _field_getter(entity, name)
    value = lowered.get("value")
    if op in PRESENCE:
        return lambda r: (getter(r) not in (None, "")) == (op == "exist")
    if op in MEMBERSHIP:
        if not isinstance(value, list):
            raise invalid(f"The '{op}' operator requires a list of values.")
        return lambda r: any(_compare(getter(r), "eq", v) for v in value) == (op == "in")
    return lambda r: _compare(getter(r), op, value)


def _field_getter(entity: Entity, name: str) -> Callable[[JSON], Any]:
    canonical = entity.canonical(name)
    if canonical is None or canonical == "userDefinedFields":
        raise invalid(f"Unable to find {name} in the {entity.name} entity.")
    return lambda record: record.get(canonical)


def _udf_getter(name: str) -> Callable[[JSON], Any]:
    lowered = name.lower()

    def getter(record: JSON) -> Any:
        udfs = record.get("userDefinedFields") or []
        return next((u.get("value") for u in udfs if str(u.get("name", "")).lower() == lowered), None)

    return getter


def _coerce(left: Any, right: Any) -> tuple[Any, Any] | None:
    if isinstance(left, bool) or isinstance(right, bool):
        truthy = {"true": True, "false": False, "1": True, "0": False}
        lb = left if isinstance(left, bool) else truthy.get(str(left).lower())
        rb = right if isinstance(right, bool) else truthy.get(str(right).lower())
        return (lb, rb) if lb is not None and rb is not None else None
    if isinstance(left, (int, float)) or isinstance(right, (int, float)):
        try:
            return float(left), float(right)
        except (TypeError, ValueError):
            return None
    left_time, right_time = parse_time(left), parse_time(right)
    if left_time is not None and right_time is not None:
        return left_time, right_time
    return str(left).casefold(), str(right).casefold()


def _compare(candidate: Any, op: str, value: Any) -> bool:
    # As in SQL, a null field satisfies no comparison (`status noteq 5` skips tickets without one).
    if candidate is None or value is None:
        return False
    if op in ("beginswith", "endswith", "contains"):
        text, part = str(candidate).casefold(), str(value).casefold()
        return (
            text.startswith(part) if op == "beginswith" else text.endswith(part) if op == "endswith" else part in text
        )
    pair = _coerce(candidate, value)
    if pair is None:
        return False
    left, right = pair
    try:
        return {
            "eq": left == right,
            "noteq": left != right,
            "gt": left > right,
            "gte": left >= right,
            "lt": left < right,
            "lte": left <= right,
        }[op]
    except TypeError:
        return False


# ---------------------------------------------------------------------------------------------
# Fault knobs, logs, deliveries
# ---------------------------------------------------------------------------------------------


@dataclass
class Faults(FailureQueue):
    """Misbehaviour to switch on from a test. Safe to change from any thread."""

    latency_ms: int = 0
    drop_webhooks: bool = False
    retry_after_s: int = 1
    _pending: list[int] = field(default_factory=list, repr=False)
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def fail_next(self, n: int, status: int = 429) -> None:
        """The next `n` API requests answer `status` (429 with Retry-After, or a 5xx) before anything else."""
        self._queue_failures(n, status)

    def reset(self) -> None:
        self._clear_failures()
        self.latency_ms = 0
        self.drop_webhooks = False
        self.retry_after_s = 1


@dataclass(frozen=True)
class RequestRecord:
    method: str
    path: str  # relative to /ATServicesRest/V1.0, e.g. "/Tickets/351181"; "/zoneInformation" for lookups
    query: str
    status: int
    endpoint: str  # the object endpoint thread limits count against, lower case


class Credentials(NamedTuple):
    username: str
    secret: str
    integration_code: str


@dataclass
class Delivery:
    """One webhook event and what became of it."""

    number: int
    webhook_id: int
    url: str
    action: str
    entity_id: int
    person_id: int | None
    body: bytes = field(repr=False)
    signature: str = field(repr=False)
    attempts: int = 0
    status_code: int | None = None
    error: str | None = None
    dropped: bool = False
    done: bool = False

    @property
    def delivered(self) -> bool:
        return self.status_code is not None and 200 <= self.status_code < 300

    def payload(self) -> JSON:
        return dict(json.loads(self.body))


class _Dispatcher(Dispatcher[Delivery]):
    """Posts webhook events from daemon threads: per webhook in order, retried on Autotask's schedule."""

    def __init__(self, retry_delay: float, max_attempts: int, on_done: Callable[[Delivery], None]) -> None:
        super().__init__(WEBHOOK_TIMEOUT_S)
        self.retry_delay = retry_delay
        self.max_attempts = max_attempts
        self._on_done = on_done
        self._queues: dict[int, collections.deque[Delivery]] = {}
        self._workers: set[int] = set()
        self._numbers = itertools.count(1)

    def next_number(self) -> int:
        with self._cond:
            return next(self._numbers)

    def submit(self, delivery: Delivery) -> None:
        with self._cond:
            self._begin(delivery)
            self._queues.setdefault(delivery.webhook_id, collections.deque()).append(delivery)
            if delivery.webhook_id in self._workers:
                return
            self._workers.add(delivery.webhook_id)
        threading.Thread(target=self._work, args=(delivery.webhook_id,), name="at-webhook", daemon=True).start()

    def _work(self, webhook_id: int) -> None:
        # Autotask queues later events for a callout behind a failing one, in order (psa.md §2.4).
        while True:
            with self._cond:
                queue = self._queues[webhook_id]
                if not queue:
                    self._workers.discard(webhook_id)
                    return
                delivery = queue[0]
            try:
                self._deliver(delivery)
                with self._cond:
                    delivery.done = True
                # Before the delivery stops counting as in flight, so that a waiter also sees
                # what it caused (a deactivation notice).
                self._on_done(delivery)
            except Exception:
                log.exception("webhook delivery %s failed inside the sandbox", delivery.number)
            finally:
                with self._cond:
                    queue.popleft()
                    delivery.done = True
                    self._in_flight -= 1
                    self._cond.notify_all()

    def _delays(self, delivery: Delivery) -> Iterator[float]:
        # Read on every retry, so that a test may change the schedule while events are queued.
        while delivery.attempts < self.max_attempts:
            yield self.retry_delay

    def _deliver(self, delivery: Delivery) -> None:
        headers = {
            "Content-Type": "application/json; charset=utf-8",
            "X-Hook-Signature": delivery.signature,
            "User-Agent": "Autotask-Webhooks/1.0",
        }
        gave_up = self.max_attempts < 1 or self._attempt_until(
            delivery,
            lambda: self._post(self._http(), delivery.url, delivery.body, headers),
            self._delays(delivery),
            lambda status: not is_success(status),
        )
        if gave_up:
            with self._cond:
                delivery.dropped = True

    def _response_error(self, response: httpx.Response) -> str | None:
        return None if response.status_code < 300 else response.text[:300]


# ---------------------------------------------------------------------------------------------
# State: what an Autotask database holds, and the rules it enforces on writes
# ---------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class TicketSave:
    """A ticket save, captured under the lock so webhooks describe the record as saved."""

    action: str  # Create | Update | Delete
    ticket: JSON
    changed: frozenset[str]
    person_id: int | None


class _Store:
    """In-memory tables. Methods take the (re-entrant) lock and return live records; the sandbox
    copies them before they leave."""

    def __init__(
        self, clock: Callable[[], datetime], require_note_titles: bool, allow_time_over_midnight: bool
    ) -> None:
        self.lock = threading.RLock()
        self.clock = clock
        self.require_note_titles = require_note_titles
        self.allow_time_over_midnight = allow_time_over_midnight
        self.tables: dict[str, dict[int, JSON]] = {name: {} for name in (e.name for e in ENTITIES.values())}
        self.queues: dict[int, str] = dict(DEFAULT_QUEUES)
        self.roles: dict[int, str] = dict(ROLES)
        self.sequences: dict[int, itertools.count[int]] = {}
        self.ticket_numbers: dict[str, int] = {}
        # Realistic, distinct id ranges make mixed-up ids fail loudly in client tests.
        self._ids = {
            "Tickets": itertools.count(351181),
            "Companies": itertools.count(29683616),
            "Contacts": itertools.count(30684211),
            "Resources": itertools.count(29682885),
            "TicketNotes": itertools.count(29711001),
            "TimeEntries": itertools.count(41203),
            "TicketWebhooks": itertools.count(101),
            "TicketWebhookFields": itertools.count(1001),
            "TicketWebhookExcludedResources": itertools.count(2001),
            "queue": itertools.count(29683490),
        }

    def now(self) -> str:
        return format_time(self.clock())

    def table(self, entity: Entity) -> dict[int, JSON]:
        return self.tables[entity.name]

    def picklist(self, entity: Entity, name: str) -> Mapping[int, str] | None:
        if entity is TICKETS:
            special = {"status": TICKET_STATUSES, "priority": TICKET_PRIORITIES, "queueID": self.queues}
            if name in special:
                return special[name]
        if entity is TIME_ENTRIES and name == "roleID":
            return self.roles
        factory = entity.picklists.get(name)
        return factory() if factory else None

    def _insert(self, entity: Entity, values: JSON, record_id: int | None = None) -> JSON:
        record: JSON = dict.fromkeys(entity.fields)
        if entity.udfs:
            record["userDefinedFields"] = []
        record.update(values)
        record["id"] = record_id if record_id is not None else next(self._ids[entity.name])
        self.table(entity)[record["id"]] = record
        return record

    # -- seeding ---------------------------------------------------------------------------------

    def add_company(
        self, name: str, number: str | None, udfs: Mapping[str, Any] | None, company_id: int | None
    ) -> JSON:
        with self.lock:
            now = self.now()
            values = {
                "companyName": name,
                "companyNumber": number,
                "companyType": 1,
                "isActive": True,
                "createDate": now,
                "lastActivityDate": now,
                "userDefinedFields": [
                    {"name": k, "value": None if v is None else str(v)} for k, v in (udfs or {}).items()
                ],
            }
            return self._insert(COMPANIES, values, company_id)

    def add_contact(self, company_id: int, first: str, last: str, email: str | None) -> JSON:
        with self.lock:
            self.get(COMPANIES, company_id)
            now = self.now()
            values = {
                "companyID": company_id,
                "firstName": first,
                "lastName": last,
                "emailAddress": email,
                "isActive": 1,
                "createDate": now,
                "lastActivityDate": now,
            }
            return self._insert(CONTACTS, values)

    def add_resource(
        self, first: str, last: str, email: str, user_name: str | None, role_id: int, license: int
    ) -> JSON:
        with self.lock:
            values = {
                "firstName": first,
                "lastName": last,
                "email": email,
                "userName": user_name or email,
                "isActive": True,
                "licenseType": license,
                "defaultServiceDeskRoleID": role_id,
            }
            return self._insert(RESOURCES, values)

    def add_queue(self, name: str) -> int:
        with self.lock:
            queue_id = next(self._ids["queue"])
            self.queues[queue_id] = name
            return queue_id

    # -- reads -----------------------------------------------------------------------------------

    def get(self, entity: Entity, record_id: int) -> JSON:
        with self.lock:
            record = self.table(entity).get(record_id)
            if record is None:
                raise ATError(404, f"Unable to find {entity.name} with id {record_id}.")
            return record

    def find(self, entity: Entity, record_id: int) -> JSON | None:
        with self.lock:
            return self.table(entity).get(record_id)

    def rows(self, entity: Entity) -> list[JSON]:
        with self.lock:
            return [self.table(entity)[key] for key in sorted(self.table(entity))]

    # -- validation ------------------------------------------------------------------------------

    def convert(self, entity: Entity, data: Any, *, creating: bool) -> JSON:
        """Body → canonical fields with their types; unknown names are ignored, as the API does."""
        if not isinstance(data, dict):
            raise invalid(f"The request body must be a {entity.name} object.")
        values: JSON = {}
        for key, raw in data.items():
            name = entity.canonical(str(key))
            if name is None or (name in entity.read_only and name != "id"):
                continue
            values[name] = self._typed(entity, name, raw)
        if creating:
            values.pop("id", None)
        return values

    def _typed(self, entity: Entity, name: str, raw: Any) -> Any:
        if raw is None or name == "userDefinedFields":
            return raw
        try:
            if name in entity.ints:
                if isinstance(raw, bool) or (isinstance(raw, float) and not raw.is_integer()):
                    raise ValueError
                return int(raw)
            if name in entity.floats:
                return float(raw)
            if name in entity.bools:
                if isinstance(raw, bool):
                    return raw
                return {"true": True, "false": False, "1": True, "0": False}[str(raw).lower()]
            if name in entity.times:
                moment = parse_time(raw)
                if moment is None:
                    raise ValueError
                return format_time(moment)
        except (ValueError, TypeError, KeyError):
            raise invalid(f"Error converting value {json.dumps(raw)} for field {name}.") from None
        return str(raw)

    def check(self, entity: Entity, record: JSON, given: Iterable[str]) -> None:
        """Required fields, lengths, picklists and references of a record about to be saved."""
        problems = [f"{name} is required." for name in entity.required if record.get(name) in (None, "")]
        for name in given:
            value = record.get(name)
            if value is None:
                continue
            limit = entity.lengths.get(name)
            if limit is not None and isinstance(value, str) and len(value) > limit:
                problems.append(f"{name} exceeds the maximum length of {limit} characters.")
            picklist = self.picklist(entity, name)
            if picklist is not None and value not in picklist:
                problems.append(f"Value does not reference an existing entity for {name} . ")
            target = entity.references.get(name)
            if target is not None and self.find(ENTITIES[target.lower()], int(value)) is None:
                problems.append(f"Value does not reference an existing entity for {name} . ")
        if problems:
            raise invalid(*problems)

    # -- tickets ---------------------------------------------------------------------------------

    def create_ticket(self, data: Any, person_id: int, *, by_contact: bool = False) -> TicketSave:
        with self.lock:
            values = self.convert(TICKETS, data, creating=True)
            now = self.clock()
            record: JSON = dict.fromkeys(TICKETS.fields)
            record.update(values)
            self.check(TICKETS, record, values)
            self._check_ticket_rules(record)
            record.update(
                ticketNumber=self._ticket_number(now),
                createDate=format_time(now),
                lastActivityDate=format_time(now),
                creatorType=2 if by_contact else 1,
                creatorResourceID=None if by_contact else person_id,
                createdByContactID=person_id if by_contact else None,
                lastActivityResourceID=None if by_contact else person_id,
                userDefinedFields=values.get("userDefinedFields") or [],
            )
            if record["status"] == COMPLETE:
                record.update(completedDate=format_time(now), completedByResourceID=person_id)
            ticket = self._insert(TICKETS, record)
            return TicketSave("Create", copy.deepcopy(ticket), frozenset(TICKETS.fields), person_id)

    def _ticket_number(self, now: datetime) -> str:
        day = now.strftime("%Y%m%d")
        self.ticket_numbers[day] = self.ticket_numbers.get(day, 0) + 1
        return f"T{day}.{self.ticket_numbers[day]:04d}"

    def _check_ticket_rules(self, record: JSON) -> None:
        contact_id = record.get("contactID")
        if contact_id is not None:
            contact = self.find(CONTACTS, contact_id)
            if contact is not None and contact["companyID"] != record["companyID"]:
                raise invalid("The contact must belong to the ticket's company.")
        if record.get("assignedResourceID") is not None and record.get("assignedResourceRoleID") is None:
            raise invalid(
                "When assigning a Resource, you must assign both a assignedResourceID and assignedResourceRoleID."
            )

    def update_ticket(self, data: Any, person_id: int) -> TicketSave:
        with self.lock:
            values = self.convert(TICKETS, data, creating=False)
            ticket_id = values.pop("id", None)
            if ticket_id is None:
                raise invalid("The id of the Tickets entity to update is required in the request body.")
            ticket = self.get(TICKETS, ticket_id)
            merged = {**ticket, **values}
            self.check(TICKETS, merged, values)
            self._check_ticket_rules(merged)
            changed = {name for name, value in values.items() if ticket.get(name) != value}
            now = format_time(self.clock())
            if "status" in changed:
                done = merged["status"] == COMPLETE
                merged["completedDate"] = now if done else None
                merged["completedByResourceID"] = person_id if done else None
                changed |= {"completedDate", "completedByResourceID"}
            if changed:
                merged.update(lastActivityDate=now, lastActivityResourceID=person_id)
                changed |= {"lastActivityDate", "lastActivityResourceID"}
            ticket.update(merged)
            return TicketSave("Update", copy.deepcopy(ticket), frozenset(changed), person_id)

    def touch_ticket(self, ticket_id: int, person_id: int | None) -> TicketSave:
        """A note or time entry is activity on its ticket."""
        with self.lock:
            ticket = self.get(TICKETS, ticket_id)
            ticket.update(lastActivityDate=self.now(), lastActivityResourceID=person_id)
            changed = frozenset({"lastActivityDate", "lastActivityResourceID"})
            return TicketSave("Update", copy.deepcopy(ticket), changed, person_id)

    def delete_ticket(self, ticket_id: int, person_id: int) -> TicketSave:
        with self.lock:
            ticket = self.get(TICKETS, ticket_id)
            del self.table(TICKETS)[ticket_id]
            return TicketSave("Delete", copy.deepcopy(ticket), frozenset(), person_id)

    # -- notes and time --------------------------------------------------------------------------

    def create_note(self, data: Any, person_id: int, impersonator: int | None) -> JSON:
        with self.lock:
            values = self.convert(TICKET_NOTES, data, creating=True)
            record = {**dict.fromkeys(TICKET_NOTES.fields), **values}
            self.check(TICKET_NOTES, record, values)
            if self.require_note_titles and not record.get("title"):
                raise invalid("title is required: the ticket category requires titles on ticket notes.")
            now = self.now()
            record.update(
                createDateTime=now,
                lastActivityDate=now,
                creatorResourceID=person_id,
                impersonatorCreatorResourceID=impersonator,
            )
            return self._insert(TICKET_NOTES, record)

    def create_time_entry(self, data: Any, person_id: int, impersonator: int | None, proxy_allowed: bool) -> JSON:
        with self.lock:
            values = self.convert(TIME_ENTRIES, data, creating=True)
            record = {**dict.fromkeys(TIME_ENTRIES.fields), **values}
            self.check(TIME_ENTRIES, record, values)
            self._check_time_rules(record, person_id, proxy_allowed)
            record.update(
                hoursToBill=record["hoursWorked"],
                isNonBillable=bool(record.get("isNonBillable")),
                createDateTime=self.now(),
                creatorUserID=person_id,
                impersonatorCreatorResourceID=impersonator,
            )
            return self._insert(TIME_ENTRIES, record)

    def _check_time_rules(self, record: JSON, person_id: int, proxy_allowed: bool) -> None:
        if record.get("ticketID") is None and record.get("taskID") is None:
            raise invalid("A time entry must reference a ticket or a task.")
        hours = record["hoursWorked"]
        if not 0 < hours <= 24:
            raise invalid("hoursWorked must be greater than 0 and no more than 24.")
        if not self.get(RESOURCES, record["resourceID"])["isActive"]:
            raise invalid("The resource is inactive.")
        if record["resourceID"] != person_id and not proxy_allowed:
            raise invalid("You do not have permission to enter time for another resource (Proxy Time Entry).")
        start, end = parse_time(record.get("startDateTime")), parse_time(record.get("endDateTime"))
        if (start is None) != (end is None):
            raise invalid("startDateTime and endDateTime must be given together.")
        if start is not None and end is not None:
            if end < start:
                raise invalid("endDateTime must not be earlier than startDateTime.")
            if end.date() != start.date() and not self.allow_time_over_midnight:
                raise invalid("Time entries may not span midnight unless 'span over midnight' is enabled.")
            worked = parse_time(record["dateWorked"])
            if worked is None or worked.date() != start.date():
                raise invalid("dateWorked must be the date of startDateTime.")

    # -- webhooks --------------------------------------------------------------------------------

    def save_webhook(self, data: Any, person_id: int, *, creating: bool) -> tuple[JSON, JSON | None]:
        """Returns the saved webhook and, when this save deactivated it, its previous state."""
        with self.lock:
            values = self.convert(TICKET_WEBHOOKS, data, creating=creating)
            if creating:
                current: JSON = {
                    **dict.fromkeys(TICKET_WEBHOOKS.fields),
                    "isActive": False,
                    "isSubscribedToCreateEvents": False,
                    "isSubscribedToUpdateEvents": False,
                    "isSubscribedToDeleteEvents": False,
                    "sendThresholdExceededNotification": False,
                }
            else:
                webhook_id = values.pop("id", None)
                if webhook_id is None:
                    raise invalid("The id of the TicketWebhooks entity to update is required in the request body.")
                current = self.get(TICKET_WEBHOOKS, webhook_id)
            merged = {**current, **values}
            self.check(TICKET_WEBHOOKS, merged, values)
            self._check_webhook_rules(merged)
            if creating:
                merged.update(webhookGUID=str(uuid.uuid4()), ownerResourceID=person_id, isReady=False)
                return self._insert(TICKET_WEBHOOKS, merged), None
            previous = copy.deepcopy(current)
            current.update(merged)
            deactivated = previous["isActive"] and not current["isActive"]
            return current, previous if deactivated else None

    def _check_webhook_rules(self, record: JSON) -> None:
        for name in ("webhookUrl", "deactivationUrl"):
            parts = urlsplit(str(record[name]))
            if parts.scheme not in ("http", "https") or not parts.netloc:
                raise invalid(f"{name} must be an absolute http(s) URL.")
        url = str(record["webhookUrl"]).lower()
        for other in self.table(TICKET_WEBHOOKS).values():
            if other["id"] != record.get("id") and str(other["webhookUrl"]).lower() == url:
                raise invalid("A webhook for this entity with the same URL already exists.")

    def delete_webhook(self, webhook_id: int) -> JSON:
        with self.lock:
            webhook = self.get(TICKET_WEBHOOKS, webhook_id)
            for entity in (TICKET_WEBHOOK_FIELDS, TICKET_WEBHOOK_EXCLUDED):
                table = self.table(entity)
                for child_id in [k for k, v in table.items() if v["webhookID"] == webhook_id]:
                    del table[child_id]
            del self.table(TICKET_WEBHOOKS)[webhook_id]
            return copy.deepcopy(webhook)

    def add_webhook_child(self, entity: Entity, data: Any) -> JSON:
        with self.lock:
            values = self.convert(entity, data, creating=True)
            record = {**dict.fromkeys(entity.fields), **values}
            for name in entity.bools:
                record[name] = bool(record.get(name))
            self.check(entity, record, values)
            key = "fieldID" if entity is TICKET_WEBHOOK_FIELDS else "resourceID"
            for other in self.table(entity).values():
                if other["webhookID"] == record["webhookID"] and other[key] == record[key]:
                    raise invalid(f"This {key} is already on the webhook.")
            child = self._insert(entity, record)
            self._refresh_ready(record["webhookID"])
            return child

    def delete_webhook_child(self, entity: Entity, child_id: int) -> None:
        with self.lock:
            child = self.get(entity, child_id)
            del self.table(entity)[child_id]
            self._refresh_ready(child["webhookID"])

    def _refresh_ready(self, webhook_id: int) -> None:
        # "At least one callout field must be present" before a webhook is ready (psa.md §2.1).
        webhook = self.get(TICKET_WEBHOOKS, webhook_id)
        webhook["isReady"] = any(
            f["webhookID"] == webhook_id and f["isSubscribedField"] for f in self.table(TICKET_WEBHOOK_FIELDS).values()
        )

    def webhook_children(self, entity: Entity, webhook_id: int) -> list[JSON]:
        with self.lock:
            return [r for r in self.rows(entity) if r["webhookID"] == webhook_id]

    def next_sequence(self, webhook_id: int) -> int:
        with self.lock:
            return next(self.sequences.setdefault(webhook_id, itertools.count(1)))

    def all_text(self) -> str:
        with self.lock:
            parts: list[str] = []
            for entity, names in (
                (TICKETS, ("title", "description", "resolution")),
                (TICKET_NOTES, ("title", "description")),
                (TIME_ENTRIES, ("summaryNotes", "internalNotes")),
            ):
                for record in self.table(entity).values():
                    parts.extend(str(record[n]) for n in names if record.get(n))
            return "\n".join(parts)


# ---------------------------------------------------------------------------------------------
# The gate: logging, limits, injected failures, auth — in front of every /ATServicesRest call
# ---------------------------------------------------------------------------------------------


class _Gate:
    """Pure ASGI middleware so it sees every API request, matched route or not."""

    def __init__(self, app: ASGIApp, sandbox: AutotaskSandbox) -> None:
        self.app = app
        self.sandbox = sandbox

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or not scope["path"].lower().startswith(API_PREFIX):
            await self.app(scope, receive, send)
            return
        segments = [s for s in scope["path"][len(API_PREFIX) :].split("/") if s]
        relative = "/" + "/".join(segments[1:]) if segments and segments[0].lower() == VERSION else scope["path"]
        endpoint = segments[1].lower() if len(segments) > 1 and segments[0].lower() == VERSION else ""
        logged = False

        def record(status: int) -> None:
            nonlocal logged
            query = scope.get("query_string", b"").decode("latin-1")
            self.sandbox._log_request(RequestRecord(scope["method"], relative, query, status, endpoint))
            logged = True

        async def capture(message: Message) -> None:
            # Log before the client can see the answer, so a test never races its own request.
            if message["type"] == "http.response.start":
                record(message["status"])
            await send(message)

        try:
            await self._handle(scope, receive, capture, endpoint)
        finally:
            if not logged:
                record(500)

    async def _handle(self, scope: Scope, receive: Receive, send: Send, endpoint: str) -> None:
        sandbox = self.sandbox
        # Zone lookups need no credentials and are not subject to thread limits (psa.md §2.5).
        if endpoint in ("", "zoneinformation"):
            await self.app(scope, receive, send)
            return
        request = Request(scope)
        problem = self._refusal(request)
        if problem is not None:
            await problem.response()(scope, receive, send)
            return
        code = request.headers.get("apiintegrationcode", "")
        slot = sandbox._take_thread(code, endpoint)
        if slot is None:
            message = THREAD_LIMIT_MESSAGE.format(limit=sandbox.thread_limit, endpoint=endpoint)
            await ATError(sandbox.thread_limit_status, message).response()(scope, receive, send)
            return
        try:
            if sandbox.faults.latency_ms > 0:
                await asyncio.sleep(sandbox.faults.latency_ms / 1000)
            await self.app(scope, receive, send)
        finally:
            sandbox._release_thread(slot)

    def _refusal(self, request: Request) -> ATError | None:
        sandbox = self.sandbox
        failure = sandbox.faults.take_failure()
        if failure is not None:
            return self._injected(failure)
        problem = sandbox._auth_problem(request.headers)
        if problem is not None:
            return ATError(401, problem)
        wait = sandbox._count_request()
        if wait is not None:
            message = THRESHOLD_MESSAGE.format(limit=sandbox.request_threshold)
            return ATError(429, message, headers={"Retry-After": str(wait)})
        return None

    def _injected(self, status: int) -> ATError:
        if status == 429:
            headers = {"Retry-After": str(self.sandbox.faults.retry_after_s)}
            return ATError(429, "Too many requests. Please slow down and retry later.", headers=headers)
        if status == 503:
            return ATError(503, "The service is temporarily unavailable. Please try again later.")
        return ATError(status, "An unexpected error has occurred. Please try again later.")


# ---------------------------------------------------------------------------------------------
# The sandbox
# ---------------------------------------------------------------------------------------------


class AutotaskSandbox(ServedSandbox):
    """An Autotask PSA database on 127.0.0.1: zone lookup, REST API, signed webhooks."""

    _not_started = "the Autotask sandbox is not started"

    def __init__(
        self,
        *,
        username: str = "tierone-api@tierone-msp.example",
        secret: str = "sbxSecret4TierOne!",
        integration_code: str = "SBXTIERONEINTEGRATIONCODE1",
        zone_name: str = "America West 2",
        retry_delay: float = 30.0,
        max_attempts: int = 5,
        auto_disable_after: int = 25,
        thread_limit: int = 3,
        thread_limit_status: int = 500,
        request_threshold: int = 10_000,
        require_note_titles: bool = True,
        allow_time_over_midnight: bool = False,
        proxy_time_entry: bool = False,
        zone_double_slash: bool = False,
        clock: Callable[[], datetime] = _utcnow,
    ) -> None:
        self.credentials = Credentials(username, secret, integration_code)
        self.zone_name = zone_name
        self.auto_disable_after = auto_disable_after
        self.thread_limit = thread_limit
        self.thread_limit_status = thread_limit_status
        self.request_threshold = request_threshold
        self.proxy_time_entry = proxy_time_entry
        self.zone_double_slash = zone_double_slash
        self.faults = Faults()
        self._require_note_titles = require_note_titles
        self._allow_time_over_midnight = allow_time_over_midnight
        self._clock = clock
        self._dispatcher = _Dispatcher(retry_delay, max_attempts, self._delivery_done)
        self._log_lock = threading.Lock()
        self._request_log: list[RequestRecord] = []
        self._threads: dict[tuple[str, str], int] = {}
        self._usage: collections.deque[float] = collections.deque()
        self._failures: dict[int, int] = {}
        self.webhook_error_log: list[Delivery] = []
        self._store = self._fresh_store()
        self._server: BackgroundServer | None = None
        self.app = self._build_app()

    @property
    def retry_delay(self) -> float:
        """Seconds between delivery attempts (Autotask: 30)."""
        return self._dispatcher.retry_delay

    @retry_delay.setter
    def retry_delay(self, value: float) -> None:
        self._dispatcher.retry_delay = value

    @property
    def max_attempts(self) -> int:
        """Delivery attempts before an event is dropped to the error log (Autotask: 5)."""
        return self._dispatcher.max_attempts

    @max_attempts.setter
    def max_attempts(self, value: int) -> None:
        self._dispatcher.max_attempts = value

    # -- lifecycle -------------------------------------------------------------------------------

    def start(self) -> AutotaskSandbox:
        self._dispatcher.open()
        self._serve(self.app, "autotask-sandbox")
        return self

    def stop(self) -> None:
        self._dispatcher.close()
        self._stop_server()

    def reset(self, timeout: float = 10.0) -> None:
        """Forget all data, webhooks, logs, usage and faults; keep the server, credentials and URLs."""
        self._dispatcher.wait_idle(timeout)
        self._dispatcher.clear()
        self._store = self._fresh_store()
        self.faults.reset()
        self.clear_request_log()
        with self._log_lock:
            self._usage.clear()
            self._failures.clear()
            self.webhook_error_log.clear()

    def _fresh_store(self) -> _Store:
        store = _Store(self._clock, self._require_note_titles, self._allow_time_over_midnight)
        store.add_company("TierOne MSP", "TIERONE", None, company_id=0)  # id 0 is the MSP itself
        api = store.add_resource("TierOne", "API", self.credentials.username, None, 29683464, license=7)
        tech = store.add_resource("Jane", "Tech", "jane.tech@tierone-msp.example", None, 29683465, license=1)
        self.api_resource_id: int = api["id"]
        self.technician_resource_id: int = tech["id"]
        return store

    @property
    def zone_lookup_url(self) -> str:
        """For AUTOTASK_ZONE_LOOKUP_URL (production: https://webservices2.autotask.net/atservicesrest/V1.0/zoneInformation)."""
        return f"{self.url}/atservicesrest/V1.0/zoneInformation"

    @property
    def zone_url(self) -> str:
        """What zone lookup answers as `url`."""
        return f"{self.url}{'//' if self.zone_double_slash else '/'}ATServicesRest/"

    @property
    def api_url(self) -> str:
        """For AUTOTASK_API_URL, to skip discovery (production: https://webservices14.autotask.net/ATServicesRest/V1.0)."""
        return f"{self.url}/ATServicesRest/V1.0"

    @property
    def web_url(self) -> str:
        return f"{self.url}/"

    def auth_headers(self) -> dict[str, str]:
        """The headers a correctly configured client sends."""
        return {
            "ApiIntegrationCode": self.credentials.integration_code,
            "UserName": self.credentials.username,
            "Secret": self.credentials.secret,
        }

    def app_settings(self, *, discover_zone: bool = True, webhook_secret: str | None = None) -> dict[str, str]:
        """The AUTOTASK_* app settings of a deployment pointed at this sandbox."""
        settings = {
            "AUTOTASK_ZONE_LOOKUP_URL": self.zone_lookup_url,
            "AUTOTASK_USERNAME": self.credentials.username,
            "AUTOTASK_SECRET": self.credentials.secret,
            "AUTOTASK_INTEGRATION_CODE": self.credentials.integration_code,
            "AUTOTASK_API_RESOURCE_ID": str(self.api_resource_id),
            "AUTOTASK_ESCALATION_QUEUE_ID": str(next(k for k, v in DEFAULT_QUEUES.items() if v == "Escalations")),
        }
        if not discover_zone:
            settings["AUTOTASK_API_URL"] = self.api_url
        if webhook_secret is not None:
            settings["AUTOTASK_WEBHOOK_SECRET"] = webhook_secret
        return settings

    # -- Python API: seed data -------------------------------------------------------------------

    def add_company(self, name: str, udfs: Mapping[str, Any] | None = None, *, number: str | None = None) -> JSON:
        """`udfs`: company user-defined fields by name, e.g. {"Microsoft Tenant ID": "<guid>"}."""
        return self._copy(self._store.add_company(name, number, udfs, None))

    def add_contact(self, company_id: int, first_name: str, last_name: str, email: str | None) -> JSON:
        return self._copy(self._store.add_contact(company_id, first_name, last_name, email))

    def add_resource(
        self, first_name: str, last_name: str, email: str, *, user_name: str | None = None, role_id: int = 29683465
    ) -> JSON:
        return self._copy(self._store.add_resource(first_name, last_name, email, user_name, role_id, license=1))

    def add_queue(self, name: str) -> int:
        return self._store.add_queue(name)

    def set_resource_active(self, resource_id: int, active: bool) -> None:
        with self._store.lock:
            self._store.get(RESOURCES, resource_id)["isActive"] = active

    # -- Python API: what people do in the Autotask UI (fires webhooks) --------------------------

    def create_ticket(
        self,
        title: str,
        description: str,
        company_id: int,
        contact_id: int | None = None,
        created_by_resource_id: int | None = None,
        queue_id: int | None = DEFAULT_QUEUE_ID,
        *,
        created_by_contact_id: int | None = None,
        status: int = 1,
        priority: int = 2,
        **fields: Any,
    ) -> JSON:
        """A ticket as a technician (or, with `created_by_contact_id`, a contact in the portal) creates it."""
        body = {
            "title": title,
            "description": description,
            "companyID": company_id,
            "contactID": contact_id,
            "queueID": queue_id,
            "status": status,
            "priority": priority,
            **fields,
        }
        if created_by_contact_id is not None:
            save = self._store.create_ticket(body, created_by_contact_id, by_contact=True)
        else:
            save = self._store.create_ticket(body, created_by_resource_id or self.technician_resource_id)
        self._fire(save)
        return self._copy(save.ticket)

    def update_ticket(self, ticket_id: int, changed_by_resource_id: int | None = None, **fields: Any) -> JSON:
        save = self._store.update_ticket(
            {"id": ticket_id, **fields}, changed_by_resource_id or self.technician_resource_id
        )
        self._fire(save)
        return self._copy(save.ticket)

    def delete_ticket(self, ticket_id: int, deleted_by_resource_id: int | None = None) -> None:
        self._fire(self._store.delete_ticket(ticket_id, deleted_by_resource_id or self.technician_resource_id))

    def add_note(
        self,
        ticket_id: int,
        text: str,
        *,
        title: str = "Note",
        publish: int = 1,
        created_by_resource_id: int | None = None,
    ) -> JSON:
        person = created_by_resource_id or self.technician_resource_id
        body = {"ticketID": ticket_id, "title": title, "description": text, "noteType": 1, "publish": publish}
        note = self._store.create_note(body, person, None)
        self._fire(self._store.touch_ticket(ticket_id, person))
        return self._copy(note)

    def register_webhook(
        self,
        url: str,
        secret: str,
        *,
        name: str = "TierOne",
        deactivation_url: str | None = None,
        create: bool = True,
        update: bool = False,
        delete: bool = False,
        subscribed_fields: Sequence[str] = ("Status",),
        display_fields: Sequence[str] = (),
        excluded_resource_ids: Sequence[int] | None = None,
        active: bool = True,
    ) -> JSON:
        """A ready webhook as `tierone psa register` (or a person in the UI) would set it up.

        Fields are named by their payload labels (TicketNumber, Title, Status, QueueID…); our API
        resource is excluded unless `excluded_resource_ids` says otherwise."""
        body = {
            "Name": name,
            "WebhookUrl": url,
            "DeactivationUrl": deactivation_url or url,
            "IsActive": active,
            "IsSubscribedToCreateEvents": create,
            "IsSubscribedToUpdateEvents": update,
            "IsSubscribedToDeleteEvents": delete,
            "SecretKey": secret,
            "SendThresholdExceededNotification": True,
        }
        webhook, _ = self._store.save_webhook(body, self.api_resource_id, creating=True)
        by_label = {f.label.lower(): f.field_id for f in WEBHOOK_FIELDS}
        for label in dict.fromkeys([*subscribed_fields, *display_fields]):
            child = {
                "webhookID": webhook["id"],
                "fieldID": by_label[label.lower()],
                "isSubscribedField": label in subscribed_fields,
                "isDisplayAlwaysField": label in display_fields,
            }
            self._store.add_webhook_child(TICKET_WEBHOOK_FIELDS, child)
        excluded = [self.api_resource_id] if excluded_resource_ids is None else excluded_resource_ids
        for resource_id in excluded:
            self._store.add_webhook_child(
                TICKET_WEBHOOK_EXCLUDED, {"webhookID": webhook["id"], "resourceID": resource_id}
            )
        return self._copy(self._store.get(TICKET_WEBHOOKS, webhook["id"]))

    def deactivate_webhook(self, webhook_id: int) -> None:
        """As when its owner is deactivated, or a person unticks Active: the DeactivationUrl is told."""
        _, previous = self._store.save_webhook(
            {"id": webhook_id, "isActive": False}, self.api_resource_id, creating=False
        )
        if previous is not None:
            self._send_deactivation(previous)

    # -- Python API: reading back ----------------------------------------------------------------

    def ticket(self, ticket_id: int) -> JSON:
        return self._copy(self._store.get(TICKETS, ticket_id))

    def tickets(self) -> list[JSON]:
        return [self._copy(t) for t in self._store.rows(TICKETS)]

    def notes(self, ticket_id: int) -> list[JSON]:
        return [self._copy(n) for n in self._store.rows(TICKET_NOTES) if n["ticketID"] == ticket_id]

    def time_entries(self, ticket_id: int) -> list[JSON]:
        return [self._copy(e) for e in self._store.rows(TIME_ENTRIES) if e["ticketID"] == ticket_id]

    def webhooks(self) -> list[JSON]:
        return [self._copy(w) for w in self._store.rows(TICKET_WEBHOOKS)]

    def webhook_fields(self, webhook_id: int) -> list[JSON]:
        return [self._copy(f) for f in self._store.webhook_children(TICKET_WEBHOOK_FIELDS, webhook_id)]

    def excluded_resources(self, webhook_id: int) -> list[int]:
        return [r["resourceID"] for r in self._store.webhook_children(TICKET_WEBHOOK_EXCLUDED, webhook_id)]

    @property
    def webhook_secret(self) -> str | None:
        """The SecretKey of the newest active webhook: what deliveries are signed with."""
        active = [w for w in self._store.rows(TICKET_WEBHOOKS) if w["isActive"]]
        return str(active[-1]["secretKey"]) if active and active[-1]["secretKey"] else None

    def queues(self) -> dict[int, str]:
        with self._store.lock:
            return dict(self._store.queues)

    def everything_text(self) -> str:
        """All text stored in tickets, notes and time entries, to prove a secret never got here."""
        return self._store.all_text()

    @property
    def request_log(self) -> list[RequestRecord]:
        with self._log_lock:
            return list(self._request_log)

    def clear_request_log(self) -> None:
        with self._log_lock:
            self._request_log.clear()

    @property
    def deliveries(self) -> list[Delivery]:
        return self._dispatcher.snapshot()

    def clear_deliveries(self) -> None:
        self._dispatcher.clear()

    def wait_for_deliveries(self, timeout: float = 10.0) -> None:
        """Block until no webhook delivery (including pending retries) is in flight."""
        self._dispatcher.wait_idle(timeout)

    def threshold_usage(self) -> int:
        """Requests counted in the current rolling hour."""
        with self._log_lock:
            self._expire_usage(time.monotonic())
            return len(self._usage)

    def _copy(self, record: JSON) -> JSON:
        with self._store.lock:
            return copy.deepcopy(record)

    def _log_request(self, record: RequestRecord) -> None:
        with self._log_lock:
            self._request_log.append(record)

    # -- gate helpers (called from the ASGI middleware) ------------------------------------------

    def _auth_problem(self, headers: Mapping[str, str]) -> str | None:
        code, user, secret = (headers.get(h, "") for h in ("apiintegrationcode", "username", "secret"))
        if not (code and user and secret):
            return "The ApiIntegrationCode, UserName and Secret headers are required."
        expected = self.credentials
        valid = (
            hmac.compare_digest(code.encode(), expected.integration_code.encode())
            and user.lower() == expected.username.lower()
            and hmac.compare_digest(secret.encode(), expected.secret.encode())
        )
        if not valid:
            return "User authentication failed. Check the UserName, Secret and ApiIntegrationCode."
        if not self._store.get(RESOURCES, self.api_resource_id)["isActive"]:
            return "The API user's resource is inactive."
        return None

    def _count_request(self) -> int | None:
        """Record one request against the hourly threshold; seconds to wait if over it."""
        now = time.monotonic()
        with self._log_lock:
            self._expire_usage(now)
            if len(self._usage) >= self.request_threshold:
                return max(1, math.ceil(self._usage[0] + THRESHOLD_WINDOW_S - now))
            self._usage.append(now)
            return None

    def _expire_usage(self, now: float) -> None:
        while self._usage and self._usage[0] <= now - THRESHOLD_WINDOW_S:
            self._usage.popleft()

    def _take_thread(self, code: str, endpoint: str) -> tuple[str, str] | None:
        key = (code, endpoint)
        with self._log_lock:
            if self._threads.get(key, 0) >= self.thread_limit:
                return None
            self._threads[key] = self._threads.get(key, 0) + 1
            return key

    def _release_thread(self, key: tuple[str, str]) -> None:
        with self._log_lock:
            self._threads[key] -= 1

    # -- webhooks out ----------------------------------------------------------------------------

    def _fire(self, save: TicketSave) -> None:
        for delivery in self._deliveries_for(save):
            self._dispatch(delivery)

    def _deliveries_for(self, save: TicketSave) -> list[Delivery]:
        store = self._store
        with store.lock:
            deliveries = []
            for webhook in store.rows(TICKET_WEBHOOKS):
                fields = self._payload_fields(webhook, save)
                if fields is None:
                    continue
                payload = {
                    "Action": save.action,
                    "Guid": webhook["webhookGUID"],
                    "EntityType": "Ticket",
                    "Id": save.ticket["id"],
                    "Fields": fields,
                    "EventTime": format_event_time(self._clock()),
                    "SequenceNumber": store.next_sequence(webhook["id"]),
                    "PersonID": save.person_id,
                }
                deliveries.append(self._delivery(webhook, webhook["webhookUrl"], payload))
            return deliveries

    def _payload_fields(self, webhook: JSON, save: TicketSave) -> JSON | None:
        """The Fields of this webhook's payload for `save`, or None when the webhook does not fire."""
        store = self._store
        subscribed = {"Create": "isSubscribedToCreateEvents", "Update": "isSubscribedToUpdateEvents"}
        flag = subscribed.get(save.action, "isSubscribedToDeleteEvents")
        if not (webhook["isActive"] and webhook["isReady"] and webhook[flag]):
            return None
        if save.person_id in [r["resourceID"] for r in store.webhook_children(TICKET_WEBHOOK_EXCLUDED, webhook["id"])]:
            return None
        chosen = [
            (WEBHOOK_FIELDS_BY_ID[c["fieldID"]], c)
            for c in store.webhook_children(TICKET_WEBHOOK_FIELDS, webhook["id"])
        ]
        if save.action == "Delete":
            return {}
        if save.action == "Update":
            triggered = [f for f, c in chosen if c["isSubscribedField"] and f.ticket_field in save.changed]
            if not triggered:
                return None
            chosen = [(f, c) for f, c in chosen if c["isDisplayAlwaysField"] or f in triggered]
        values = {f.label: save.ticket.get(f.ticket_field) for f, _ in chosen}
        # Values arrive as strings in every captured payload.
        return {label: None if value is None else str(value) for label, value in values.items()}

    def _delivery(self, webhook: JSON, url: str, payload: JSON) -> Delivery:
        body = dotnet_dumps(payload)
        return Delivery(
            number=self._dispatcher.next_number(),
            webhook_id=webhook["id"],
            url=url,
            action=payload["Action"],
            entity_id=payload["Id"],
            person_id=payload.get("PersonID"),
            body=body,
            signature=sign(str(webhook["secretKey"] or ""), body),
        )

    def _dispatch(self, delivery: Delivery) -> None:
        if self.faults.drop_webhooks:
            self._dispatcher.record_dropped(delivery, "dropped by fault injection")
        elif self._server is None:
            self._dispatcher.record_dropped(delivery, "sandbox not started")
        else:
            self._dispatcher.submit(delivery)

    def _send_deactivation(self, webhook: JSON) -> None:
        # The deactivation body is undocumented; this shape (Action "Deactivated", the webhook's
        # GUID and id) is the sandbox's assumption, signed like any other event.
        payload = {
            "Action": "Deactivated",
            "Guid": webhook["webhookGUID"],
            "EntityType": "Ticket",
            "Id": webhook["id"],
            "Fields": {},
            "EventTime": format_event_time(self._clock()),
            "SequenceNumber": self._store.next_sequence(webhook["id"]),
            "PersonID": webhook["ownerResourceID"],
        }
        self._dispatch(self._delivery(webhook, webhook["deactivationUrl"], payload))

    def _delivery_done(self, delivery: Delivery) -> None:
        """Count consecutive dropped events per webhook; disable the webhook past the limit."""
        if delivery.action == "Deactivated":
            return
        with self._log_lock:
            if not delivery.dropped:
                self._failures[delivery.webhook_id] = 0
                return
            self.webhook_error_log.append(dataclasses.replace(delivery))
            failures = self._failures[delivery.webhook_id] = self._failures.get(delivery.webhook_id, 0) + 1
        if failures >= self.auto_disable_after:
            webhook = self._store.find(TICKET_WEBHOOKS, delivery.webhook_id)
            if webhook is not None and webhook["isActive"]:
                self.deactivate_webhook(delivery.webhook_id)

    # -- HTTP ------------------------------------------------------------------------------------

    def _build_app(self) -> Starlette:
        methods = ["GET", "POST", "PATCH", "PUT", "DELETE"]
        return Starlette(
            routes=[Route("/{path:path}", self._dispatch_http, methods=methods)],
            middleware=[Middleware(_Gate, sandbox=self)],
            exception_handlers={ATError: vendor_error_handler(ATError), Exception: self._on_crash},
        )

    @staticmethod
    async def _on_crash(request: Request, exc: Exception) -> Response:
        # A sandbox bug still answers in the vendor's shape; Starlette logs the traceback.
        return ATError(500, f"An unexpected error has occurred: {exc}").response()

    async def _dispatch_http(self, request: Request) -> Response:
        path = request.url.path
        if not path.lower().startswith(API_PREFIX):
            raise self._no_route(request)
        segments = [s for s in path[len(API_PREFIX) :].split("/") if s]
        if [s.lower() for s in segments] == ["versioninformation"]:
            return JSONResponse({"apiVersions": ["V1.0", "V2.0"]})
        if not segments or segments[0].lower() != VERSION:
            raise self._no_route(request)  # V2.0/zoneInformation is a 404 (psa.md §2.5)
        return await self._route(request, [s.lower() for s in segments[1:]], segments[1:])

    @staticmethod
    def _no_route(request: Request) -> ATError:
        return ATError(404, f"No HTTP resource was found that matches the request URI '{request.url}'.")

    async def _route(self, request: Request, lowered: list[str], original: list[str]) -> Response:
        method = request.method
        if lowered == ["zoneinformation"] and method == "GET":
            return self._zone(request)
        if lowered == ["thresholdinformation"] and method == "GET":
            return self._threshold()
        if not lowered or lowered[0] not in ENTITIES:
            raise self._no_route(request)
        entity = ENTITIES[lowered[0]]
        rest = lowered[1:]
        if rest[:1] == ["entityinformation"]:
            return self._entity_information(entity, rest[1:])
        if rest[:1] == ["query"]:
            return await self._query(request, entity, rest[1:])
        if not rest:
            return await self._root(request, entity)
        if not original[1].isdigit():
            raise self._no_route(request)
        record_id = int(original[1])
        if len(rest) == 1:
            return await self._item(request, entity, record_id)
        child = CHILDREN.get((lowered[0], rest[1]))
        if child is None or len(rest) > 3:
            raise self._no_route(request)
        child_id = int(original[3]) if len(rest) == 3 and original[3].isdigit() else None
        return await self._child(request, entity, record_id, child, child_id)

    def _not_allowed(self, request: Request) -> ATError:
        return ATError(405, f"The requested resource does not support http method '{request.method}'.")

    @staticmethod
    async def _body(request: Request) -> Any:
        raw = await request.body()
        try:
            return json.loads(raw)
        except (json.JSONDecodeError, UnicodeDecodeError):
            raise ATError(400, "The request body is not valid JSON.") from None

    def _actor(self, request: Request) -> tuple[int, int | None]:
        """Who saves: the API user's resource, or the resource it impersonates (and who impersonated)."""
        header = request.headers.get("impersonationresourceid")
        if not header:
            return self.api_resource_id, None
        if not header.strip().isdigit() or self._store.find(RESOURCES, int(header)) is None:
            raise invalid("ImpersonationResourceId does not reference an active resource.")
        return int(header), self.api_resource_id

    # unauthenticated

    def _zone(self, request: Request) -> Response:
        user = request.query_params.get("user", "").strip().lower()
        known = {r["userName"].lower() for r in self._store.rows(RESOURCES) if r.get("userName")}
        if not user or user not in known:
            raise ATError(404, ZONE_NOT_FOUND)
        return JSONResponse({"zoneName": self.zone_name, "url": self.zone_url, "webUrl": self.web_url, "ci": 26})

    def _threshold(self) -> Response:
        return JSONResponse(
            {
                "externalRequestThreshold": self.request_threshold,
                "requestThresholdTimeframe": int(THRESHOLD_WINDOW_S // 60),
                "currentTimeframeRequestCount": self.threshold_usage(),
            }
        )

    # entity information

    def _entity_information(self, entity: Entity, rest: list[str]) -> Response:
        if not rest:
            return JSONResponse({"info": self._entity_info(entity)})
        if rest == ["fields"]:
            return JSONResponse({"fields": [self._field_info(entity, name) for name in entity.fields]})
        if rest == ["userdefinedfields"]:
            return JSONResponse({"fields": self._udf_info(entity)})
        raise ATError(404, "No HTTP resource was found that matches the request URI.")

    @staticmethod
    def _entity_info(entity: Entity) -> JSON:
        access = "All" if entity.writable else "None"
        return {
            "name": entity.name[:-1] if entity.name.endswith("s") else entity.name,
            "canCreate": entity.writable,
            "canDelete": entity.deletable,
            "canQuery": True,
            "canUpdate": entity.writable,
            "userAccessForCreate": access,
            "userAccessForDelete": "All" if entity.deletable else "None",
            "userAccessForQuery": "All",
            "userAccessForUpdate": access,
            "hasUserDefinedFields": entity.udfs,
            "supportsWebhookCallouts": entity.name in WEBHOOK_ENTITIES,
        }

    def _field_info(self, entity: Entity, name: str) -> JSON:
        picklist = self._store.picklist(entity, name)
        reference = entity.references.get(name, "")
        return {
            "name": name,
            "dataType": entity.data_type(name),
            "length": entity.lengths.get(name, 0),
            "isRequired": name in entity.required,
            "isReadOnly": name in entity.read_only,
            "isQueryable": name != "userDefinedFields",
            "isReference": bool(reference),
            "referenceEntityType": reference[:-1] if reference.endswith("s") else reference,
            "isPickList": picklist is not None,
            "picklistValues": None if picklist is None else self._picklist_values(picklist, name),
            "picklistParentValueField": "issueType" if entity is TICKETS and name == "subIssueType" else "",
            "isSupportedWebhookField": entity is TICKETS and name in {f.ticket_field for f in WEBHOOK_FIELDS},
        }

    @staticmethod
    def _picklist_values(picklist: Mapping[int, str], name: str = "") -> list[JSON]:
        parents = {value: parent for value, (_, parent) in SUB_ISSUE_TYPES.items()} if name == "subIssueType" else {}
        return [
            {
                "value": str(value),
                "label": label,
                "isDefaultValue": False,
                "sortOrder": order,
                "parentValue": str(parents[value]) if value in parents else "",
                "isActive": True,
                "isSystem": True,
            }
            for order, (value, label) in enumerate(picklist.items())
        ]

    def _udf_info(self, entity: Entity) -> list[JSON]:
        if not entity.udfs:
            return []
        names = {u["name"] for r in self._store.rows(entity) for u in r.get("userDefinedFields") or []}
        return [
            {"name": n, "label": n, "dataType": "string", "isRequired": False, "isActive": True} for n in sorted(names)
        ]

    # queries

    async def _query(self, request: Request, entity: Entity, rest: list[str]) -> Response:
        search = await self._search(request)
        predicate = compile_filter(entity, (search or {}).get("filter"))
        if rest == ["count"]:
            return JSONResponse({"queryCount": sum(1 for r in self._store.rows(entity) if predicate(r))})
        if rest not in ([], ["next"]):
            raise self._no_route(request)
        size = self._max_records(search)
        paging: JSON = {"pageSize": size, "previousIds": [], "nextIds": [-1]}
        if rest == ["next"]:
            paging = self._paging(request, size)
        after = int((paging.get("nextIds") or [-1])[0])
        with self._store.lock:
            matches = [r for r in self._store.rows(entity) if r["id"] > after and predicate(r)]
            page = [self._project(entity, r, search) for r in matches[:size]]
        base = f"{self.api_url}/{entity.name}/query/next"
        keep_search = request.method == "GET"
        next_url = None
        if len(matches) > size:
            later = {
                "pageSize": size,
                "previousIds": [*paging.get("previousIds", []), after],
                "nextIds": [page[-1]["id"]],
            }
            next_url = self._page_url(base, later, search if keep_search else None)
        prev_url = None
        if paging.get("previousIds"):
            earlier = {
                "pageSize": size,
                "previousIds": paging["previousIds"][:-1],
                "nextIds": paging["previousIds"][-1:],
            }
            prev_url = self._page_url(base, earlier, search if keep_search else None)
        details = {"count": len(page), "requestCount": size, "prevPageUrl": prev_url, "nextPageUrl": next_url}
        return JSONResponse({"items": page, "pageDetails": details})

    async def _search(self, request: Request) -> JSON | None:
        if request.method == "POST":
            body = await self._body(request)
            if not isinstance(body, dict):
                raise invalid("The query must be an object with a filter.")
            return {str(k).lower(): v for k, v in body.items()}
        if request.method != "GET":
            raise self._not_allowed(request)
        raw = request.query_params.get("search")
        if raw is None:
            # Paged query URLs are POST-only: the filter travels in the body (a GET is refused).
            raise self._not_allowed(request)
        try:
            parsed = json.loads(raw)
        except json.JSONDecodeError:
            raise invalid("The search parameter is not valid JSON.") from None
        if not isinstance(parsed, dict):
            raise invalid("The query must be an object with a filter.")
        return {str(k).lower(): v for k, v in parsed.items()}

    @staticmethod
    def _max_records(search: JSON | None) -> int:
        raw = (search or {}).get("maxrecords")
        if raw is None:
            return MAX_RECORDS
        if isinstance(raw, bool) or not isinstance(raw, int) or not 1 <= raw <= MAX_RECORDS:
            raise invalid("MaxRecords must be between 1 and 500.")
        return raw

    @staticmethod
    def _paging(request: Request, size: int) -> JSON:
        try:
            paging = json.loads(request.query_params.get("paging", ""))
            if not isinstance(paging, dict) or not isinstance(paging.get("nextIds"), list):
                raise ValueError
        except ValueError:
            raise invalid("The paging parameter is not valid.") from None
        paging["pageSize"] = size
        return dict(paging)

    @staticmethod
    def _page_url(base: str, paging: JSON, search: JSON | None) -> str:
        url = f"{base}?paging={quote(json.dumps(paging, separators=(',', ':')), safe='')}"
        if search is not None:
            url += f"&search={quote(json.dumps(search, separators=(',', ':')), safe='')}"
        return url

    @staticmethod
    def _project(entity: Entity, record: JSON, search: JSON | None) -> JSON:
        wanted = (search or {}).get("includefields")
        if not wanted:
            return copy.deepcopy(record)
        if not isinstance(wanted, list):
            raise invalid("IncludeFields must be a list of field names.")
        names = ["id"]
        for name in wanted:
            canonical = entity.canonical(str(name))
            if canonical is None:
                raise invalid(f"Unable to find {name} in the {entity.name} entity.")
            names.append(canonical)
        return {name: copy.deepcopy(record.get(name)) for name in dict.fromkeys(names)}

    # items and writes

    async def _item(self, request: Request, entity: Entity, record_id: int) -> Response:
        if request.method == "GET":
            record = self._store.find(entity, record_id)
            return JSONResponse({"item": None if record is None else self._copy(record)})
        if request.method == "DELETE" and entity.deletable:
            self._delete(entity, record_id)
            return JSONResponse({"itemId": record_id})
        raise self._not_allowed(request)

    def _delete(self, entity: Entity, record_id: int) -> None:
        if entity is TICKET_WEBHOOKS:
            webhook = self._store.delete_webhook(record_id)
            if webhook["isActive"]:
                self._send_deactivation(webhook)
        else:
            self._store.delete_webhook_child(entity, record_id)

    async def _root(self, request: Request, entity: Entity) -> Response:
        if not entity.writable or request.method not in ("POST", "PATCH", "PUT"):
            raise self._not_allowed(request)
        body = await self._body(request)
        creating = request.method == "POST"
        person, impersonator = self._actor(request)
        return JSONResponse({"itemId": self._write(entity, body, creating, person, impersonator)})

    async def _child(
        self, request: Request, parent: Entity, parent_id: int, child: Entity, child_id: int | None
    ) -> Response:
        assert child.parent is not None
        if self._store.find(parent, parent_id) is None:
            raise invalid(f"Unable to find {parent.name} with id {parent_id}.")
        key = child.parent[1]
        if child_id is not None:
            record = self._store.find(child, child_id)
            if record is not None and record.get(key) != parent_id:
                record = None
            if request.method == "DELETE" and child.deletable:
                if record is None:
                    raise ATError(404, f"Unable to find {child.name} with id {child_id}.")
                self._delete(child, child_id)
                return JSONResponse({"itemId": child_id})
            if request.method != "GET":
                raise self._not_allowed(request)
            return JSONResponse({"item": None if record is None else self._copy(record)})
        if request.method == "GET":
            rows = [self._copy(r) for r in self._store.rows(child) if r.get(key) == parent_id]
            details = {"count": len(rows), "requestCount": MAX_RECORDS, "prevPageUrl": None, "nextPageUrl": None}
            return JSONResponse({"items": rows[:MAX_RECORDS], "pageDetails": details})
        if request.method != "POST" or not child.writable:
            raise self._not_allowed(request)
        body = await self._body(request)
        if not isinstance(body, dict):
            raise invalid(f"The request body must be a {child.name} object.")
        body = {k: v for k, v in body.items() if str(k).lower() != key.lower()} | {key: parent_id}
        person, impersonator = self._actor(request)
        return JSONResponse({"itemId": self._write(child, body, True, person, impersonator)})

    def _write(self, entity: Entity, body: Any, creating: bool, person: int, impersonator: int | None) -> int:
        if entity is TICKETS:
            save = self._store.create_ticket(body, person) if creating else self._store.update_ticket(body, person)
            self._fire(save)
            return int(save.ticket["id"])
        if not creating and entity is not TICKET_WEBHOOKS:
            raise invalid(f"{entity.name} cannot be updated through the API.")
        if entity is TICKET_NOTES:
            note = self._store.create_note(body, person, impersonator)
            self._fire(self._store.touch_ticket(note["ticketID"], person))
            return int(note["id"])
        if entity is TIME_ENTRIES:
            entry = self._store.create_time_entry(body, person, impersonator, self.proxy_time_entry)
            if entry.get("ticketID") is not None:
                self._fire(self._store.touch_ticket(entry["ticketID"], person))
            return int(entry["id"])
        if entity is TICKET_WEBHOOKS:
            webhook, previous = self._store.save_webhook(body, person, creating=creating)
            if previous is not None:
                self._send_deactivation(previous)
            return int(webhook["id"])
        return int(self._store.add_webhook_child(entity, body)["id"])


__all__ = [
    "DEFAULT_QUEUE_ID",
    "WEBHOOK_FIELDS",
    "AutotaskSandbox",
    "Credentials",
    "Delivery",
    "Faults",
    "RequestRecord",
    "dotnet_dumps",
    "sign",
]

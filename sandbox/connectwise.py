"""A local ConnectWise PSA that the real client cannot tell from the vendor's.

It follows the contract in the team's PSA research notes (psa.md §1, ConnectWise), checked
against field lists of the vendor's OpenAPI-generated models: the `/login/companyinfo` codebase lookup, Basic
`company+public:private` auth plus the `clientId` header, `conditions` / paging / RFC 5988
`Link` headers, JSON-Patch updates (including the documented `status/id` false 200), the
CW error body `{"code", "message", "errors"}`, 429 throttling with `Retry-After`, and
callbacks that are signed, retried and suppressed the way CW does it.

Two deliberate vendor traits to keep in mind when writing clients against it:
- Entities are rendered without null-valued properties (CW omits them), so read optional
  fields with `.get()`.
- A callback's `Entity` is the ticket JSON *as a string* (decode it a second time) and the
  record id is appended to the registered URL.

Usage (tests, demo):

    sandbox = ConnectWiseSandbox(retry_delays=(0.05, 0.1)).start()
    company = sandbox.add_company("Fabrikam, Inc.", "FabrikamInc")
    ...
    sandbox.stop()
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import copy
import hashlib
import hmac
import itertools
import json
import re
import secrets
import threading
import uuid
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any, Literal, TypeVar
from urllib.parse import urlsplit

from pydantic import BaseModel, ConfigDict, ValidationError
from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Mount, Route
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from sandbox._delivery import Dispatcher
from sandbox._faults import FailureQueue
from sandbox._server import BackgroundServer, ServedSandbox, vendor_error_handler

JSON = dict[str, Any]

DEFAULT_PAGE_SIZE = 25
MAX_PAGE_SIZE = 1000
CALLBACK_TIMEOUT_S = 5.0
# CW retries a callback only on these answers; anything else (500 included) is lost.
RETRYABLE_CALLBACK_STATUSES = frozenset({404, 409, 419, 429})
SUMMARY_MAX = 100
CALLBACK_DESCRIPTION_MAX = 100
# CW rejects both milliseconds and zone-less times with 400 UnsupportedFormat (psa.md §1.8).
CW_TIME_RE = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}Z$")
ACCEPT_VERSION_RE = re.compile(r"version\s*=\s*([\w.]+)", re.IGNORECASE)
TOO_MANY_REQUESTS = {
    "error": "ConnectWiseAPI",
    "message": "Too many requests. Please try again in 30 seconds.",
}
BILLABLE_OPTIONS = ("Billable", "DoNotBill", "NoCharge", "NoDefault")
CALLBACK_LEVELS: dict[str, tuple[str, ...]] = {
    "ticket": ("owner", "board", "project", "phase", "status", "ticket", "integratortag"),
    "company": ("owner", "company", "type", "status", "territory", "integratortag"),
    "contact": ("owner", "company", "contact", "type", "integratortag"),
    "time": ("owner", "member", "ticket", "project", "integratortag"),
    "schedule": ("owner", "member", "integratortag"),
    "project": ("owner", "board", "project", "integratortag"),
    "activity": ("owner", "member", "integratortag"),
    "opportunity": ("owner", "opportunity", "integratortag"),
    "configuration": ("owner", "company", "type", "integratortag"),
}
DEFAULT_PRIORITIES: tuple[JSON, ...] = (
    {"id": 6, "name": "Priority 1 - Critical", "sort": 1, "defaultFlag": False},
    {"id": 7, "name": "Priority 2 - High", "sort": 3, "defaultFlag": False},
    {"id": 8, "name": "Priority 3 - Normal", "sort": 6, "defaultFlag": True},
    {"id": 9, "name": "Priority 4 - Low", "sort": 8, "defaultFlag": False},
)
DEFAULT_WORK_TYPES: tuple[JSON, ...] = (
    {"id": 1, "name": "Regular", "billTime": "Billable", "inactiveFlag": False},
    {"id": 2, "name": "Remote Support", "billTime": "Billable", "inactiveFlag": False},
    {"id": 3, "name": "After Hours", "billTime": "Billable", "inactiveFlag": False},
    {"id": 4, "name": "Admin", "billTime": "DoNotBill", "inactiveFlag": False},
)
# escalationStatus is CW's SLA stage enum (NotResponded, Responded, ResolutionPlan, Resolved,
# NoEscalation), not a flag: find the "Escalated" status by name.
DEFAULT_STATUSES: tuple[JSON, ...] = (
    {"name": "New", "defaultFlag": True, "escalationStatus": "NotResponded"},
    {"name": "In Progress", "escalationStatus": "Responded"},
    {"name": "Waiting Customer", "escalationStatus": "Responded"},
    {"name": "Escalated", "escalationStatus": "Responded"},
    {"name": "Completed", "closedStatus": True, "escalationStatus": "Resolved"},
    {"name": "Closed", "closedStatus": True, "timeEntryNotAllowed": True, "escalationStatus": "Resolved"},
)


# ---------------------------------------------------------------------------------------------
# Errors in the vendor's shape
# ---------------------------------------------------------------------------------------------


class CWError(Exception):
    """An answer in ConnectWise's error shape; raised anywhere, rendered by the app."""

    def __init__(
        self,
        status: int,
        code: str,
        message: str,
        errors: list[JSON] | None = None,
        headers: Mapping[str, str] | None = None,
    ) -> None:
        super().__init__(f"{status} {code}: {message}")
        self.status = status
        self.code = code
        self.message = message
        self.errors = errors
        self.headers = dict(headers or {})

    def body(self) -> JSON:
        return {"code": self.code, "message": self.message, "errors": self.errors}

    def response(self) -> JSONResponse:
        return JSONResponse(self.body(), status_code=self.status, headers=self.headers)


def field_error(code: str, message: str, resource: str, field_name: str) -> JSON:
    return {"code": code, "message": message, "resource": resource, "field": field_name}


def invalid_object(resource: str, errors: list[JSON]) -> CWError:
    return CWError(400, "InvalidObject", f"{resource} object is invalid", errors)


def missing_field(resource: str, field_name: str) -> CWError:
    message = f"The {field_name} field is required."
    return invalid_object(resource, [field_error("MissingRequiredField", message, resource, field_name)])


def not_found(message: str) -> CWError:
    return CWError(404, "NotFound", message)


# ---------------------------------------------------------------------------------------------
# Time helpers
# ---------------------------------------------------------------------------------------------


def _utcnow() -> datetime:
    return datetime.now(UTC)


def format_cw_time(moment: datetime) -> str:
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def parse_cw_time(text: str) -> datetime:
    """Parse what CW *emits*; acceptance of client input is stricter (see CW_TIME_RE)."""
    moment = datetime.fromisoformat(text.replace("Z", "+00:00"))
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


# ---------------------------------------------------------------------------------------------
# The `conditions` language: field op value, joined by and/or, parentheses, not
# ---------------------------------------------------------------------------------------------


class ConditionError(ValueError):
    pass


_TOKEN_RE = re.compile(
    r"""
      (?P<ws>\s+)
    | (?P<string>"(?:[^"\\]|\\.)*"|'(?:[^'\\]|\\.)*')
    | (?P<datetime>\[[^\]]*\])
    | (?P<op><=|>=|!=|<>|=|<|>)
    | (?P<lparen>\()
    | (?P<rparen>\))
    | (?P<comma>,)
    | (?P<number>-?\d+(?:\.\d+)?)
    | (?P<word>[A-Za-z_][\w/]*)
    """,
    re.VERBOSE,
)
_KEYWORDS = frozenset({"and", "or", "not", "contains", "like", "in", "true", "false", "null"})


@dataclass(frozen=True)
class _Token:
    kind: str
    text: str
    pos: int


@dataclass(frozen=True)
class Comparison:
    path: tuple[str, ...]
    op: str
    value: Any
    negate: bool = False


@dataclass(frozen=True)
class BoolOp:
    op: Literal["and", "or"]
    left: Condition
    right: Condition


@dataclass(frozen=True)
class Not:
    operand: Condition


Condition = Comparison | BoolOp | Not


def _tokenize(text: str) -> list[_Token]:
    tokens: list[_Token] = []
    pos = 0
    while pos < len(text):
        match = _TOKEN_RE.match(text, pos)
        if match is None or match.lastgroup is None:
            raise ConditionError(f"unexpected character {text[pos]!r} at position {pos}")
        if match.lastgroup != "ws":
            tokens.append(_Token(match.lastgroup, match.group(), pos))
        pos = match.end()
    return tokens


def _parse_datetime_literal(token: _Token) -> datetime:
    inner = token.text[1:-1].strip()
    try:
        return parse_cw_time(inner)
    except ValueError:
        raise ConditionError(f"invalid date {token.text} at position {token.pos}") from None


def _unquote(token: _Token) -> str:
    return re.sub(r"\\(.)", r"\1", token.text[1:-1])


class _ConditionParser:
    """Recursive descent: or_expr := and_expr (OR and_expr)*; and_expr := unary (AND unary)*."""

    def __init__(self, text: str) -> None:
        self.text = text
        self.tokens = _tokenize(text)
        self.index = 0

    def parse(self) -> Condition:
        if not self.tokens:
            raise ConditionError("empty condition")
        node = self._or()
        if self.index < len(self.tokens):
            token = self.tokens[self.index]
            raise ConditionError(f"unexpected {token.text!r} at position {token.pos}")
        return node

    def _peek(self) -> _Token | None:
        return self.tokens[self.index] if self.index < len(self.tokens) else None

    def _next(self, expected: str) -> _Token:
        token = self._peek()
        if token is None:
            raise ConditionError(f"expected {expected} at end of condition")
        self.index += 1
        return token

    def _accept_word(self, word: str) -> bool:
        token = self._peek()
        if token is not None and token.kind == "word" and token.text.lower() == word:
            self.index += 1
            return True
        return False

    def _accept(self, kind: str) -> _Token | None:
        token = self._peek()
        if token is not None and token.kind == kind:
            self.index += 1
            return token
        return None

    def _or(self) -> Condition:
        node = self._and()
        while self._accept_word("or"):
            node = BoolOp("or", node, self._and())
        return node

    def _and(self) -> Condition:
        node = self._unary()
        while self._accept_word("and"):
            node = BoolOp("and", node, self._unary())
        return node

    def _unary(self) -> Condition:
        if self._accept_word("not"):
            return Not(self._unary())
        if self._accept("lparen"):
            node = self._or()
            if not self._accept("rparen"):
                raise ConditionError("missing ')'")
            return node
        return self._comparison()

    def _comparison(self) -> Comparison:
        token = self._next("a field name")
        if token.kind != "word" or token.text.lower() in _KEYWORDS:
            raise ConditionError(f"expected a field name at position {token.pos}, got {token.text!r}")
        path = tuple(part for part in token.text.split("/") if part)
        negate = self._accept_word("not")
        op = self._operator(token, negate)
        value = self._value_list() if op == "in" else self._value()
        return Comparison(path, op, value, negate)

    def _operator(self, field_token: _Token, negate: bool) -> str:
        symbol = self._accept("op")
        if symbol is not None and not negate:
            return "!=" if symbol.text == "<>" else symbol.text
        for word in ("contains", "like", "in"):
            if self._accept_word(word):
                return word
        raise ConditionError(f"expected an operator after {field_token.text!r}")

    def _value_list(self) -> list[Any]:
        if not self._accept("lparen"):
            raise ConditionError("'in' needs a parenthesised list")
        values = [self._value()]
        while self._accept("comma"):
            values.append(self._value())
        if not self._accept("rparen"):
            raise ConditionError("missing ')' after 'in' list")
        return values

    def _value(self) -> Any:
        token = self._next("a value")
        if token.kind == "string":
            return _unquote(token)
        if token.kind == "datetime":
            return _parse_datetime_literal(token)
        if token.kind == "number":
            return float(token.text) if "." in token.text else int(token.text)
        if token.kind == "word" and token.text.lower() in ("true", "false"):
            return token.text.lower() == "true"
        if token.kind == "word" and token.text.lower() == "null":
            return None
        raise ConditionError(f"expected a value at position {token.pos}, got {token.text!r}")


def parse_conditions(text: str) -> Condition:
    return _ConditionParser(text).parse()


def _get_key(record: Mapping[str, Any], key: str) -> Any:
    # CW field names in conditions are case-insensitive (Board/Name works as well).
    if key in record:
        return record[key]
    lowered = key.lower()
    found = next((value for name, value in record.items() if name.lower() == lowered), None)
    info = record.get("_info")
    if found is None and isinstance(info, Mapping):
        # CW accepts audit fields such as dateEntered and lastUpdated as top-level condition names.
        found = next((value for name, value in info.items() if name.lower() == lowered), None)
    return found


def resolve_path(record: Mapping[str, Any], path: Sequence[str]) -> list[Any]:
    """All values at `path`; arrays fan out, which is how childConditions reach into them."""
    current: list[Any] = [record]
    for key in path:
        following: list[Any] = []
        for item in current:
            value = _get_key(item, key) if isinstance(item, Mapping) else None
            if isinstance(value, list):
                following.extend(value)
            else:
                following.append(value)
        current = following
    return current or [None]


def _like_regex(pattern: str) -> re.Pattern[str]:
    escaped = "".join(".*" if ch in "%*" else "." if ch == "_" else re.escape(ch) for ch in pattern)
    return re.compile(escaped, re.IGNORECASE | re.DOTALL)


def _coerce(candidate: Any, value: Any) -> tuple[Any, Any] | None:
    """Bring a stored value and a literal to comparable types, or None when they cannot be."""
    if isinstance(value, datetime):
        if isinstance(candidate, str):
            try:
                return parse_cw_time(candidate), value
            except ValueError:
                return None
        return None
    if isinstance(value, bool):
        return (candidate, value) if isinstance(candidate, bool) else None
    if isinstance(value, int | float):
        if isinstance(candidate, bool):
            return None
        if isinstance(candidate, int | float):
            return candidate, value
        try:
            return float(str(candidate)), value
        except ValueError:
            return None
    text = str(candidate).lower() if isinstance(candidate, bool) else str(candidate)
    # SQL Server's default collation: string comparisons ignore case.
    return text.casefold(), str(value).casefold()


def _compare_one(candidate: Any, op: str, value: Any) -> bool:
    if op == "in":
        return any(_compare_one(candidate, "=", item) for item in value)
    if op in ("contains", "like"):
        if candidate is None or value is None:
            return False
        text = str(candidate)
        if op == "contains":
            return str(value).casefold() in text.casefold()
        return _like_regex(str(value)).fullmatch(text) is not None
    if value is None or candidate is None:
        same = value is None and candidate is None
        return same if op == "=" else (not same) if op == "!=" else False
    pair = _coerce(candidate, value)
    if pair is None:
        return op == "!="
    left, right = pair
    operations: dict[str, Callable[[Any, Any], bool]] = {
        "=": lambda a, b: a == b,
        "!=": lambda a, b: a != b,
        "<": lambda a, b: a < b,
        "<=": lambda a, b: a <= b,
        ">": lambda a, b: a > b,
        ">=": lambda a, b: a >= b,
    }
    return operations[op](left, right)


def evaluate(condition: Condition, record: Mapping[str, Any]) -> bool:
    if isinstance(condition, BoolOp):
        left = evaluate(condition.left, record)
        if condition.op == "and":
            return left and evaluate(condition.right, record)
        return left or evaluate(condition.right, record)
    if isinstance(condition, Not):
        return not evaluate(condition.operand, record)
    hit = any(_compare_one(item, condition.op, condition.value) for item in resolve_path(record, condition.path))
    return not hit if condition.negate else hit


# ---------------------------------------------------------------------------------------------
# Rendering helpers
# ---------------------------------------------------------------------------------------------


def compact(value: Any) -> Any:
    """CW leaves null-valued properties out of its JSON; mirror that on every entity."""
    if isinstance(value, dict):
        return {key: compact(item) for key, item in value.items() if item is not None}
    if isinstance(value, list):
        return [compact(item) for item in value]
    return value


def select_fields(record: JSON, paths: Iterable[str]) -> JSON:
    """The `fields=` partial response: keep only the listed (possibly nested) paths."""
    result: JSON = {}
    for path in paths:
        parts = [part for part in path.strip().split("/") if part]
        source: Any = record
        target = result
        for depth, part in enumerate(parts):
            if not isinstance(source, Mapping) or part not in source:
                break
            if depth == len(parts) - 1:
                target[part] = copy.deepcopy(source[part])
            else:
                source = source[part]
                target = target.setdefault(part, {})
    return result


def _walk_strings(value: Any) -> Iterator[str]:
    if isinstance(value, str):
        yield value
    elif isinstance(value, Mapping):
        for item in value.values():
            yield from _walk_strings(item)
    elif isinstance(value, list):
        for item in value:
            yield from _walk_strings(item)


def sign_body(signing_key: str, body: bytes) -> str:
    """CW's callback signature: base64(HMAC-SHA256(key=SHA256(signing_key), msg=raw body))."""
    key = hashlib.sha256(signing_key.encode("utf-8")).digest()
    return base64.b64encode(hmac.new(key, body, hashlib.sha256).digest()).decode("ascii")


# ---------------------------------------------------------------------------------------------
# Request bodies
# ---------------------------------------------------------------------------------------------


class _Body(BaseModel):
    # CW ignores properties it does not know; so do we, and we keep the parsed ones typed.
    model_config = ConfigDict(extra="ignore")


class Ref(_Body):
    id: int | None = None
    name: str | None = None
    identifier: str | None = None


class TicketBody(_Body):
    summary: str | None = None
    recordType: str | None = None
    board: Ref | None = None
    status: Ref | None = None
    company: Ref | None = None
    contact: Ref | None = None
    priority: Ref | None = None
    type: JSON | None = None
    subType: JSON | None = None
    item: JSON | None = None
    initialDescription: str | None = None
    initialInternalAnalysis: str | None = None
    initialResolution: str | None = None
    customFields: list[JSON] | None = None


class NoteBody(_Body):
    text: str | None = None
    detailDescriptionFlag: bool = False
    internalAnalysisFlag: bool = False
    resolutionFlag: bool = False
    issueFlag: bool = False
    customerUpdatedFlag: bool = False
    processNotifications: bool = True
    internalFlag: bool | None = None
    externalFlag: bool | None = None
    member: Ref | None = None


class TimeEntryBody(_Body):
    chargeToType: str | None = None
    chargeToId: int | None = None
    member: Ref | None = None
    timeStart: str | None = None
    timeEnd: str | None = None
    actualHours: float | None = None
    hoursDeduct: float | None = None
    notes: str | None = None
    internalNotes: str | None = None
    billableOption: str | None = None
    workType: Ref | None = None
    workRole: Ref | None = None
    addToDetailDescriptionFlag: bool = False
    addToInternalAnalysisFlag: bool = False
    addToResolutionFlag: bool = False
    emailResourceFlag: bool = False
    emailContactFlag: bool = False
    emailCcFlag: bool = False


class CallbackBody(_Body):
    url: str | None = None
    objectId: int | None = None
    type: str | None = None
    level: str | None = None
    description: str | None = None
    payloadVersion: str | None = None
    inactiveFlag: bool = False
    isSoapCallbackFlag: bool = False
    isSelfSuppressedFlag: bool = False


M = TypeVar("M", bound=BaseModel)


def parse_body(model: type[M], data: Any, resource: str) -> M:
    if not isinstance(data, dict):
        raise CWError(400, "InvalidObject", f"{resource} object is invalid: a JSON object is expected")
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        errors = [
            field_error("InvalidField", error["msg"], resource, "/".join(str(part) for part in error["loc"]))
            for error in exc.errors()
        ]
        raise invalid_object(resource, errors) from None


# ---------------------------------------------------------------------------------------------
# Fault knobs and logs
# ---------------------------------------------------------------------------------------------


@dataclass
class Faults(FailureQueue):
    """Misbehaviour to switch on from a test. Safe to change from any thread."""

    latency_ms: int = 0
    drop_callbacks: bool = False
    retry_after_s: int = 1
    _pending: list[int] = field(default_factory=list, repr=False)
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def fail_next(self, n: int, status: int = 429) -> None:
        """The next `n` API requests answer `status` before any other processing."""
        self._queue_failures(n, status)

    def reset(self) -> None:
        self._clear_failures()
        self.latency_ms = 0
        self.drop_callbacks = False
        self.retry_after_s = 1


@dataclass(frozen=True)
class RequestRecord:
    method: str
    path: str  # relative to the API base, e.g. "/service/tickets/512345"
    query: str
    status: int
    version: str | None


@dataclass
class Delivery:
    """One callback message and what became of it."""

    message_id: str
    url: str
    ticket_id: int
    action: str
    callback_id: int
    member_id: str
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

    def envelope(self) -> JSON:
        return dict(json.loads(self.body))


class _Dispatcher(Dispatcher[Delivery]):
    """Posts callback messages from daemon threads, with CW's retry schedule."""

    noun = "callback"
    thread_name = "cw-callback"

    def __init__(self, retry_delays: Sequence[float]) -> None:
        super().__init__(CALLBACK_TIMEOUT_S)
        self.retry_delays = tuple(retry_delays)

    def _deliver(self, delivery: Delivery) -> None:
        headers = {"Content-Type": "application/json", "x-content-signature": delivery.signature}
        # Timeouts and refused connections are not in CW's retry list: the event is lost.
        self._attempt_until(
            delivery,
            lambda: self._post(self._http(), delivery.url, delivery.body, headers),
            self.retry_delays,
            lambda status: status in RETRYABLE_CALLBACK_STATUSES,
        )


# ---------------------------------------------------------------------------------------------
# State: what a CW tenant holds, and the rules it enforces on writes
# ---------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class TicketEvent:
    """A saved ticket, captured under the lock so the callback shows the record at save time."""

    action: str
    ticket_id: int
    member_identifier: str
    entity: str | None
    board_id: int | None
    status_id: int | None


def _ref(record: Mapping[str, Any], *keys: str) -> JSON:
    return {key: record[key] for key in ("id", *keys) if key in record}


class _Store:
    """In-memory CW data and the rules CW enforces on writes.

    Methods take the (re-entrant) lock and return live records; the sandbox copies them before
    they leave, so readers never see a record change under them.
    """

    def __init__(self, clock: Callable[[], datetime]) -> None:
        self.lock = threading.RLock()
        self.clock = clock
        self.companies: dict[int, JSON] = {}
        self.contacts: dict[int, JSON] = {}
        self.members: dict[int, JSON] = {}
        self.boards: dict[int, JSON] = {}
        self.statuses: dict[int, JSON] = {}
        self.tickets: dict[int, JSON] = {}
        self.notes: dict[int, JSON] = {}
        self.time_entries: dict[int, JSON] = {}
        self.callbacks: dict[int, JSON] = {}
        self.priorities: list[JSON] = [dict(item) for item in DEFAULT_PRIORITIES]
        self.work_types: list[JSON] = [dict(item) for item in DEFAULT_WORK_TYPES]
        # Realistic, distinct id ranges make mixed-up ids fail loudly in client tests.
        self._ids = {
            "company": itertools.count(250),
            "contact": itertools.count(9876),
            "member": itertools.count(140),
            "board": itertools.count(12),
            "status": itertools.count(101),
            "ticket": itertools.count(512345),
            "note": itertools.count(880001),
            "time": itertools.count(77001),
            "callback": itertools.count(26552),
            "communication": itertools.count(45001),
            "customField": itertools.count(31),
        }

    def _next_id(self, kind: str) -> int:
        return next(self._ids[kind])

    def _now(self) -> str:
        return format_cw_time(self.clock())

    def _info(self, who: str) -> JSON:
        now = self._now()
        return {"lastUpdated": now, "updatedBy": who, "dateEntered": now, "enteredBy": who}

    @staticmethod
    def _touch(record: JSON, who: str, now: str) -> None:
        record["_info"]["lastUpdated"] = now
        record["_info"]["updatedBy"] = who

    # -- members, companies, contacts ---------------------------------------------------------

    def add_member(self, identifier: str, first_name: str = "", last_name: str = "") -> JSON:
        with self.lock:
            existing = self.member_by_identifier(identifier)
            if existing is not None:
                return existing
            member_id = self._next_id("member")
            self.members[member_id] = {
                "id": member_id,
                "identifier": identifier,
                "firstName": first_name or identifier,
                "lastName": last_name,
                "name": f"{first_name or identifier} {last_name}".strip(),
                "inactiveFlag": False,
                "_info": self._info("Admin"),
            }
            return self.members[member_id]

    def member_by_identifier(self, identifier: str) -> JSON | None:
        with self.lock:
            lowered = identifier.lower()
            return next((m for m in self.members.values() if m["identifier"].lower() == lowered), None)

    def _member_ref(self, member: JSON) -> JSON:
        return {"id": member["id"], "identifier": member["identifier"], "name": member["name"]}

    def add_company(self, name: str, identifier: str, custom_fields: Any = None) -> JSON:
        with self.lock:
            company_id = self._next_id("company")
            self.companies[company_id] = {
                "id": company_id,
                "identifier": identifier,
                "name": name,
                "status": {"id": 1, "name": "Active"},
                "types": [{"id": 1, "name": "Client"}],
                "phoneNumber": None,
                "website": None,
                "deletedFlag": False,
                "customFields": self._custom_fields(custom_fields),
                "_info": self._info("Admin"),
            }
            return self.companies[company_id]

    def _custom_fields(self, given: Any) -> list[JSON]:
        if not given:
            return []
        items = given.items() if isinstance(given, Mapping) else [(f["caption"], f.get("value")) for f in given]
        return [
            {
                "id": self._next_id("customField"),
                "caption": caption,
                "type": "Text",
                "entryMethod": "EntryField",
                "numberOfDecimals": 0,
                "value": value,
            }
            for caption, value in items
        ]

    def add_contact(
        self, company_id: int, first_name: str, last_name: str, email: str, phone: str | None = None
    ) -> JSON:
        with self.lock:
            company = self.companies.get(company_id)
            if company is None:
                raise KeyError(f"company {company_id} does not exist")
            items = [self._communication("Email", email)]
            if phone:
                items.append(self._communication("Direct", phone))
            contact_id = self._next_id("contact")
            self.contacts[contact_id] = {
                "id": contact_id,
                "firstName": first_name,
                "lastName": last_name,
                "company": _ref(company, "identifier", "name"),
                "inactiveFlag": False,
                "communicationItems": items,
                "customFields": [],
                "_info": self._info("Admin"),
            }
            return self.contacts[contact_id]

    def _communication(self, kind: str, value: str) -> JSON:
        is_email = kind == "Email"
        return {
            "id": self._next_id("communication"),
            "type": {"id": 1 if is_email else 2, "name": kind},
            "value": value,
            "defaultFlag": True,
            "communicationType": "Email" if is_email else "Phone",
        }

    @staticmethod
    def _default_communication(contact: JSON, kind: str) -> str | None:
        items = [item for item in contact["communicationItems"] if item["communicationType"] == kind]
        preferred = next((item for item in items if item["defaultFlag"]), items[0] if items else None)
        return preferred["value"] if preferred else None

    # -- boards and statuses ------------------------------------------------------------------

    def add_board(self, name: str, statuses: Sequence[str | Mapping[str, Any]] | None = None) -> JSON:
        with self.lock:
            board_id = self._next_id("board")
            board = {
                "id": board_id,
                "name": name,
                "location": {"id": 2, "name": "Head Office"},
                "department": {"id": 10, "identifier": "Services", "name": "Services"},
                "inactiveFlag": False,
                "signOffOnCloseFlag": False,
                "projectFlag": False,
                "_info": self._info("Admin"),
            }
            self.boards[board_id] = board
            specs: list[JSON] = [{"name": s} if isinstance(s, str) else dict(s) for s in (statuses or DEFAULT_STATUSES)]
            if not any(spec.get("defaultFlag") for spec in specs):
                specs[0]["defaultFlag"] = True
            for order, spec in enumerate(specs):
                self._add_status(board, spec, order)
            return board

    def _add_status(self, board: JSON, spec: Mapping[str, Any], order: int) -> None:
        status_id = self._next_id("status")
        self.statuses[status_id] = {
            "id": status_id,
            "name": spec["name"],
            "board": _ref(board, "name"),
            "sortOrder": spec.get("sortOrder", order),
            "displayOnBoard": True,
            "inactive": bool(spec.get("inactive", False)),
            "closedStatus": bool(spec.get("closedStatus", False)),
            "timeEntryNotAllowed": bool(spec.get("timeEntryNotAllowed", False)),
            "defaultFlag": bool(spec.get("defaultFlag", False)),
            "escalationStatus": spec.get("escalationStatus", "NoEscalation"),
            "customerPortalFlag": True,
            "_info": self._info("Admin"),
        }

    def board_statuses(self, board_id: int) -> list[JSON]:
        with self.lock:
            found = [s for s in self.statuses.values() if s["board"]["id"] == board_id]
            return sorted(found, key=lambda s: (s["sortOrder"], s["id"]))

    def default_status(self, board_id: int) -> JSON:
        statuses = self.board_statuses(board_id)
        return next((s for s in statuses if s["defaultFlag"]), statuses[0])

    def resolve_status(self, board: JSON, ref: Mapping[str, Any]) -> JSON:
        """A status by id or name, which must belong to the ticket's board (psa.md §1.6)."""
        statuses = self.board_statuses(board["id"])
        if ref.get("id") is not None:
            found = next((s for s in statuses if s["id"] == ref["id"]), None)
            label = str(ref["id"])
        elif ref.get("name"):
            wanted = str(ref["name"]).lower()
            found = next((s for s in statuses if s["name"].lower() == wanted), None)
            label = str(ref["name"])
        else:
            raise missing_field("ticket", "status/id")
        if found is None:
            message = f"Service Status {label} not found for Service Board {board['id']}"
            raise invalid_object("ticket", [field_error("NotFound", message, "ticket", "status/id")])
        return found

    def resolve_board(self, ref: Mapping[str, Any] | None) -> JSON:
        if ref is None or (ref.get("id") is None and not ref.get("name")):
            if not self.boards:
                raise missing_field("ticket", "board")
            return self.boards[min(self.boards)]
        if ref.get("id") is not None:
            board = self.boards.get(int(ref["id"]))
        else:
            wanted = str(ref["name"]).lower()
            board = next((b for b in self.boards.values() if b["name"].lower() == wanted), None)
        if board is None:
            label = ref.get("id") or ref.get("name")
            message = f"Service Board {label} not found"
            raise invalid_object("ticket", [field_error("NotFound", message, "ticket", "board")])
        return board

    # -- tickets -------------------------------------------------------------------------------

    def _resolve_company(self, ref: Mapping[str, Any] | None) -> JSON:
        if ref is None or (ref.get("id") is None and not ref.get("identifier")):
            raise missing_field("ticket", "company")
        if ref.get("id") is not None:
            company = self.companies.get(int(ref["id"]))
        else:
            wanted = str(ref["identifier"]).lower()
            company = next((c for c in self.companies.values() if c["identifier"].lower() == wanted), None)
        if company is None:
            label = ref.get("id") or ref.get("identifier")
            message = f"Company {label} not found"
            raise invalid_object("ticket", [field_error("NotFound", message, "ticket", "company")])
        return company

    def _resolve_contact(self, ref: Mapping[str, Any] | None) -> JSON | None:
        if ref is None or ref.get("id") is None:
            return None
        contact = self.contacts.get(int(ref["id"]))
        if contact is None:
            message = f"Contact {ref['id']} not found"
            raise invalid_object("ticket", [field_error("NotFound", message, "ticket", "contact")])
        return contact

    def _resolve_priority(self, ref: Mapping[str, Any] | None) -> JSON:
        if ref is None or (ref.get("id") is None and not ref.get("name")):
            return next(p for p in self.priorities if p["defaultFlag"])
        wanted_name = str(ref.get("name") or "").lower()
        found = next((p for p in self.priorities if p["id"] == ref.get("id") or p["name"].lower() == wanted_name), None)
        if found is None:
            message = f"Priority {ref.get('id') or ref.get('name')} not found"
            raise invalid_object("ticket", [field_error("NotFound", message, "ticket", "priority")])
        return found

    @staticmethod
    def _check_summary(summary: Any) -> str:
        if not isinstance(summary, str) or not summary.strip():
            raise missing_field("ticket", "summary")
        if len(summary) > SUMMARY_MAX:
            message = f"summary cannot be longer than {SUMMARY_MAX} characters"
            raise invalid_object("ticket", [field_error("MaxLengthField", message, "ticket", "summary")])
        return summary

    def _apply_contact(self, ticket: JSON, contact: JSON | None) -> None:
        if contact is None:
            ticket.update(contact=None, contactName=None, contactEmailAddress=None, contactPhoneNumber=None)
            return
        name = f"{contact['firstName']} {contact['lastName']}".strip()
        ticket["contact"] = {"id": contact["id"], "name": name}
        ticket["contactName"] = name
        ticket["contactEmailAddress"] = self._default_communication(contact, "Email")
        ticket["contactPhoneNumber"] = self._default_communication(contact, "Phone")

    def create_ticket(self, body: TicketBody, entered_by: str) -> tuple[JSON, TicketEvent]:
        with self.lock:
            summary = self._check_summary(body.summary)
            company = self._resolve_company(body.company.model_dump() if body.company else None)
            board = self.resolve_board(body.board.model_dump() if body.board else None)
            status = (
                self.resolve_status(board, body.status.model_dump())
                if body.status
                else self.default_status(board["id"])
            )
            contact = self._resolve_contact(body.contact.model_dump() if body.contact else None)
            priority = self._resolve_priority(body.priority.model_dump() if body.priority else None)
            ticket_id = self._next_id("ticket")
            ticket = self._new_ticket(ticket_id, summary, board, status, company, priority, entered_by)
            ticket.update(type=body.type, subType=body.subType, item=body.item)
            ticket["customFields"] = list(body.customFields or [])
            self._apply_contact(ticket, contact)
            self.tickets[ticket_id] = ticket
            self._add_initial_notes(ticket_id, body, entered_by)
            return self.render_ticket(ticket_id), self._event("added", ticket_id, entered_by)

    def _new_ticket(
        self,
        ticket_id: int,
        summary: str,
        board: JSON,
        status: JSON,
        company: JSON,
        priority: JSON,
        entered_by: str,
    ) -> JSON:
        return {
            "id": ticket_id,
            "summary": summary,
            "recordType": "ServiceTicket",
            "board": _ref(board, "name"),
            "status": _ref(status, "name"),
            "company": _ref(company, "identifier", "name"),
            "site": None,
            "siteName": None,
            "contact": None,
            "contactName": None,
            "contactPhoneNumber": None,
            "contactEmailAddress": None,
            "type": None,
            "subType": None,
            "item": None,
            "team": None,
            "owner": None,
            "priority": {"id": priority["id"], "name": priority["name"], "sort": priority["sort"]},
            "serviceLocation": {"id": 1, "name": "Remote"},
            "severity": "Medium",
            "impact": "Medium",
            "allowAllClientsPortalView": False,
            "customerUpdatedFlag": False,
            "automaticEmailContactFlag": False,
            "automaticEmailResourceFlag": False,
            "automaticEmailCcFlag": False,
            "closedDate": None,
            "closedBy": None,
            "closedFlag": False,
            "actualHours": None,
            "approved": True,
            "location": {"id": 2, "name": "Head Office"},
            "department": {"id": 10, "identifier": "Services", "name": "Services"},
            "mobileGuid": str(uuid.uuid4()),
            "currency": {"id": 7, "symbol": "$", "currencyCode": "USD", "name": "US Dollars"},
            "customFields": [],
            "_info": self._info(entered_by),
        }

    def _add_initial_notes(self, ticket_id: int, body: TicketBody, entered_by: str) -> None:
        initial = (
            (body.initialDescription, "detailDescriptionFlag"),
            (body.initialInternalAnalysis, "internalAnalysisFlag"),
            (body.initialResolution, "resolutionFlag"),
        )
        for text, flag in initial:
            if text:
                note = NoteBody.model_validate({"text": text, flag: True})
                self._store_note(ticket_id, note, entered_by)

    def ticket(self, ticket_id: int) -> JSON:
        with self.lock:
            ticket = self.tickets.get(ticket_id)
            if ticket is None:
                raise not_found(f"Ticket ID {ticket_id} not found")
            return ticket

    def render_ticket(self, ticket_id: int) -> JSON:
        with self.lock:
            rendered: JSON = compact(copy.deepcopy(self.ticket(ticket_id)))
            return rendered

    def _event(self, action: str, ticket_id: int, member: str) -> TicketEvent:
        ticket = self.tickets.get(ticket_id)
        if ticket is None:
            return TicketEvent(action, ticket_id, member, None, None, None)
        entity = json.dumps(compact(ticket), separators=(",", ":"), ensure_ascii=False)
        return TicketEvent(action, ticket_id, member, entity, ticket["board"]["id"], ticket["status"]["id"])

    def delete_ticket(self, ticket_id: int, deleted_by: str) -> TicketEvent:
        with self.lock:
            self.ticket(ticket_id)
            del self.tickets[ticket_id]
            for note_id in [n for n, note in self.notes.items() if note["ticketId"] == ticket_id]:
                del self.notes[note_id]
            return TicketEvent("deleted", ticket_id, deleted_by, None, None, None)

    # -- ticket patch --------------------------------------------------------------------------

    _READ_ONLY = frozenset(
        {"id", "_info", "closedDate", "closedBy", "closedFlag", "mobileGuid", "actualHours", "recordType"}
    )

    def patch_ticket(self, ticket_id: int, operations: Any, patched_by: str) -> tuple[JSON, TicketEvent]:
        with self.lock:
            ticket = self.ticket(ticket_id)
            if not isinstance(operations, list) or not operations:
                raise CWError(400, "InvalidObject", "A JSON-Patch array of operations is expected")
            working = copy.deepcopy(ticket)
            for operation in operations:
                self._apply_operation(working, operation)
            self._keep_status_on_board(working)
            self._apply_closing(working, previous_status_id=ticket["status"]["id"], who=patched_by)
            self._touch(working, patched_by, self._now())
            self.tickets[ticket_id] = working
            return self.render_ticket(ticket_id), self._event("updated", ticket_id, patched_by)

    def _apply_operation(self, ticket: JSON, operation: Any) -> None:
        if not isinstance(operation, dict) or not isinstance(operation.get("path"), str):
            raise CWError(400, "InvalidObject", "Each patch operation needs an op and a path")
        op = str(operation.get("op", "")).lower()
        if op not in ("replace", "add", "remove"):
            raise CWError(400, "InvalidObject", f"Unsupported patch operation {operation.get('op')!r}")
        path = operation["path"].strip("/")
        if "/" in path:
            # CW's documented pitfall: a nested path such as status/id answers 200 and changes nothing.
            return
        key = next((name for name in ticket if name.lower() == path.lower()), path)
        if key in self._READ_ONLY or key not in ticket:
            message = f"{path} is not a valid field for update"
            raise invalid_object("ticket", [field_error("InvalidField", message, "ticket", path)])
        value = None if op == "remove" else operation.get("value")
        self._set_field(ticket, key, value)

    def _set_field(self, ticket: JSON, key: str, value: Any) -> None:
        setters: dict[str, Callable[[JSON, Any], None]] = {
            "summary": lambda t, v: t.__setitem__("summary", self._check_summary(v)),
            "status": self._set_status,
            "board": self._set_board,
            "company": lambda t, v: t.__setitem__("company", _ref(self._resolve_company(v), "identifier", "name")),
            "contact": lambda t, v: self._apply_contact(t, self._resolve_contact(v)),
            "priority": self._set_priority,
            "owner": self._set_owner,
            "customFields": self._set_custom_fields,
        }
        setter = setters.get(key)
        if setter is not None:
            setter(ticket, value)
        else:
            ticket[key] = value

    def _set_status(self, ticket: JSON, value: Any) -> None:
        if not isinstance(value, dict):
            raise missing_field("ticket", "status/id")
        board = self.boards[ticket["board"]["id"]]
        ticket["status"] = _ref(self.resolve_status(board, value), "name")

    def _set_board(self, ticket: JSON, value: Any) -> None:
        if not isinstance(value, dict):
            raise missing_field("ticket", "board")
        ticket["board"] = _ref(self.resolve_board(value), "name")

    def _set_priority(self, ticket: JSON, value: Any) -> None:
        priority = self._resolve_priority(value if isinstance(value, dict) else None)
        ticket["priority"] = {"id": priority["id"], "name": priority["name"], "sort": priority["sort"]}

    def _set_owner(self, ticket: JSON, value: Any) -> None:
        if value is None:
            ticket["owner"] = None
            return
        member = self.find_member(value if isinstance(value, dict) else {}, "ticket", "owner")
        ticket["owner"] = self._member_ref(member)

    @staticmethod
    def _set_custom_fields(ticket: JSON, value: Any) -> None:
        if not isinstance(value, list):
            message = "customFields must be replaced as a whole array"
            raise invalid_object("ticket", [field_error("InvalidField", message, "ticket", "customFields")])
        ticket["customFields"] = value

    def _keep_status_on_board(self, ticket: JSON) -> None:
        # A board move without a status of the new board lands on that board's default status.
        status = self.statuses.get(ticket["status"]["id"])
        if status is None or status["board"]["id"] != ticket["board"]["id"]:
            ticket["status"] = _ref(self.default_status(ticket["board"]["id"]), "name")

    def _apply_closing(self, ticket: JSON, previous_status_id: int, who: str) -> None:
        if ticket["status"]["id"] == previous_status_id:
            return
        if self.statuses[ticket["status"]["id"]]["closedStatus"]:
            ticket.update(closedFlag=True, closedDate=self._now(), closedBy=who)
        else:
            ticket.update(closedFlag=False, closedDate=None, closedBy=None)

    def set_status(self, ticket_id: int, status_name: str, changed_by: str) -> tuple[JSON, TicketEvent]:
        return self.patch_ticket(
            ticket_id, [{"op": "replace", "path": "status", "value": {"name": status_name}}], changed_by
        )

    # -- notes ---------------------------------------------------------------------------------

    def add_note(self, ticket_id: int, body: NoteBody, created_by: str) -> tuple[JSON, TicketEvent]:
        with self.lock:
            ticket = self.ticket(ticket_id)
            if not body.text or not body.text.strip():
                raise missing_field("serviceNote", "text")
            if not (body.detailDescriptionFlag or body.internalAnalysisFlag or body.resolutionFlag):
                message = "At least one of detailDescriptionFlag, internalAnalysisFlag or resolutionFlag must be true"
                raise invalid_object(
                    "serviceNote",
                    [field_error("InvalidField", message, "serviceNote", "detailDescriptionFlag")],
                )
            note = self._store_note(ticket_id, body, created_by)
            self._touch(ticket, created_by, note["dateCreated"])
            return compact(copy.deepcopy(note)), self._event("updated", ticket_id, created_by)

    def _store_note(self, ticket_id: int, body: NoteBody, created_by: str) -> JSON:
        member = self.find_member(body.member.model_dump(), "serviceNote", "member") if body.member else None
        member = member or self.member_by_identifier(created_by) or self.add_member(created_by)
        note_id = self._next_id("note")
        now = self._now()
        external = body.detailDescriptionFlag or body.resolutionFlag
        self.notes[note_id] = {
            "id": note_id,
            "ticketId": ticket_id,
            "text": body.text,
            "detailDescriptionFlag": body.detailDescriptionFlag,
            "internalAnalysisFlag": body.internalAnalysisFlag,
            "resolutionFlag": body.resolutionFlag,
            "issueFlag": body.issueFlag,
            "member": self._member_ref(member),
            "customerUpdatedFlag": body.customerUpdatedFlag,
            "processNotifications": body.processNotifications,
            "dateCreated": now,
            "createdBy": created_by,
            "internalFlag": body.internalAnalysisFlag if body.internalFlag is None else body.internalFlag,
            "externalFlag": external if body.externalFlag is None else body.externalFlag,
            "_info": {"lastUpdated": now, "updatedBy": created_by},
        }
        return self.notes[note_id]

    def ticket_notes(self, ticket_id: int) -> list[JSON]:
        with self.lock:
            self.ticket(ticket_id)
            found = [note for note in self.notes.values() if note["ticketId"] == ticket_id]
            return sorted(found, key=lambda note: note["id"])

    # -- members lookup ------------------------------------------------------------------------

    def find_member(self, ref: Mapping[str, Any], resource: str, field_name: str) -> JSON:
        with self.lock:
            member: JSON | None = None
            if ref.get("id") is not None:
                member = self.members.get(int(ref["id"]))
            elif ref.get("identifier"):
                member = self.member_by_identifier(str(ref["identifier"]))
            if member is None:
                label = ref.get("id") or ref.get("identifier")
                message = f"Member {label} not found"
                raise invalid_object(resource, [field_error("NotFound", message, resource, field_name)])
            return member

    # -- time entries --------------------------------------------------------------------------

    def add_time_entry(self, body: TimeEntryBody, entered_by: str) -> tuple[JSON, TicketEvent]:
        with self.lock:
            ticket = self._time_entry_ticket(body)
            start, end, hours = self._time_span(body)
            status = self.statuses[ticket["status"]["id"]]
            if status["timeEntryNotAllowed"]:
                raise CWError(
                    400,
                    "TimeEntryApi",
                    "Please update the status of this ticket before entering time. "
                    f"The status '{status['name']}' does not allow time entries.",
                )
            member = self.find_member(
                body.member.model_dump() if body.member else {"identifier": entered_by}, "timeEntry", "member"
            )
            billable = self._billable_option(body.billableOption)
            entry = self._new_time_entry(body, ticket, member, start, end, hours, billable, entered_by)
            self.time_entries[entry["id"]] = entry
            ticket["actualHours"] = round((ticket["actualHours"] or 0.0) + hours, 2)
            self._touch(ticket, entered_by, entry["dateEntered"])
            return compact(copy.deepcopy(entry)), self._event("updated", ticket["id"], entered_by)

    def _time_entry_ticket(self, body: TimeEntryBody) -> JSON:
        if body.chargeToId is None:
            raise missing_field("timeEntry", "chargeToId")
        if body.chargeToType is None:
            raise missing_field("timeEntry", "chargeToType")
        ticket = self.tickets.get(body.chargeToId)
        if body.chargeToType != "ServiceTicket" or ticket is None:
            message = f"{body.chargeToType} {body.chargeToId} not found"
            raise invalid_object("timeEntry", [field_error("NotFound", message, "timeEntry", "chargeToId")])
        return ticket

    @staticmethod
    def _cw_time(value: str, field_name: str) -> datetime:
        if not CW_TIME_RE.match(value):
            message = f"{field_name}: the value '{value}' is not in the supported format yyyy-MM-ddTHH:mm:ssZ"
            raise CWError(
                400,
                "UnsupportedFormat",
                message,
                [field_error("UnsupportedFormat", message, "timeEntry", field_name)],
            )
        return parse_cw_time(value)

    def _time_span(self, body: TimeEntryBody) -> tuple[datetime, datetime, float]:
        if body.timeStart is None:
            raise missing_field("timeEntry", "timeStart")
        start = self._cw_time(body.timeStart, "timeStart")
        if body.timeEnd is not None:
            end = self._cw_time(body.timeEnd, "timeEnd")
        elif body.actualHours is not None:
            end = start + timedelta(hours=body.actualHours)
        else:
            raise missing_field("timeEntry", "timeEnd")
        if end <= start:
            message = "timeEnd must be later than timeStart"
            raise invalid_object("timeEntry", [field_error("InvalidField", message, "timeEntry", "timeEnd")])
        span = (end - start).total_seconds() / 3600
        hours = body.actualHours if body.actualHours is not None else round(span, 2)
        return start, end, hours

    @staticmethod
    def _billable_option(given: str | None) -> str:
        if given is None:
            return "Billable"
        if given not in BILLABLE_OPTIONS:
            message = f"billableOption must be one of {', '.join(BILLABLE_OPTIONS)}"
            raise invalid_object("timeEntry", [field_error("InvalidField", message, "timeEntry", "billableOption")])
        return given

    def _work_type(self, ref: Ref | None) -> JSON:
        if ref is None:
            return {"id": self.work_types[0]["id"], "name": self.work_types[0]["name"]}
        found = next((w for w in self.work_types if w["id"] == ref.id or (ref.name and w["name"] == ref.name)), None)
        if found is None:
            # Names must match exactly, as on a real tenant.
            message = f"Work Type {ref.id or ref.name} not found"
            raise invalid_object("timeEntry", [field_error("NotFound", message, "timeEntry", "workType")])
        return {"id": found["id"], "name": found["name"]}

    def _new_time_entry(
        self,
        body: TimeEntryBody,
        ticket: JSON,
        member: JSON,
        start: datetime,
        end: datetime,
        hours: float,
        billable: str,
        entered_by: str,
    ) -> JSON:
        now = self._now()
        entry_id = self._next_id("time")
        return {
            "id": entry_id,
            "company": dict(ticket["company"]),
            "companyType": "Client",
            "chargeToId": ticket["id"],
            "chargeToType": "ServiceTicket",
            "member": self._member_ref(member),
            "locationId": 2,
            "businessUnitId": 10,
            "workType": self._work_type(body.workType),
            "workRole": body.workRole.model_dump(exclude_none=True) if body.workRole else None,
            "timeStart": format_cw_time(start),
            "timeEnd": format_cw_time(end),
            "hoursDeduct": body.hoursDeduct or 0.0,
            "actualHours": hours,
            "billableOption": billable,
            "notes": body.notes,
            "internalNotes": body.internalNotes,
            "addToDetailDescriptionFlag": body.addToDetailDescriptionFlag,
            "addToInternalAnalysisFlag": body.addToInternalAnalysisFlag,
            "addToResolutionFlag": body.addToResolutionFlag,
            "emailResourceFlag": body.emailResourceFlag,
            "emailContactFlag": body.emailContactFlag,
            "emailCcFlag": body.emailCcFlag,
            "hoursBilled": hours if billable == "Billable" else 0.0,
            "enteredBy": entered_by,
            "dateEntered": now,
            "status": "Open",
            "ticket": {"id": ticket["id"], "summary": ticket["summary"]},
            "ticketBoard": ticket["board"]["name"],
            "ticketStatus": ticket["status"]["name"],
            "_info": {"lastUpdated": now, "updatedBy": entered_by},
        }

    # -- callbacks -----------------------------------------------------------------------------

    def save_callback(self, body: CallbackBody, created_by: str, callback_id: int | None = None) -> JSON:
        with self.lock:
            errors = self._callback_errors(body)
            if errors:
                raise invalid_object("callbackEntry", errors)
            object_id = 1 if str(body.level).lower() == "owner" else int(body.objectId or 0)
            self._reject_duplicate(body, object_id, callback_id)
            member = self.member_by_identifier(created_by) or self.add_member(created_by)
            existing = self.callbacks.get(callback_id) if callback_id is not None else None
            callback_id = callback_id if callback_id is not None else self._next_id("callback")
            record = {
                "id": callback_id,
                "description": body.description,
                "url": body.url,
                "objectId": object_id,
                "type": body.type,
                "level": body.level,
                "memberId": existing["memberId"] if existing else member["id"],
                "payloadVersion": body.payloadVersion,
                "inactiveFlag": body.inactiveFlag,
                "isSoapCallbackFlag": body.isSoapCallbackFlag,
                "isSelfSuppressedFlag": body.isSelfSuppressedFlag,
                "connectWiseID": existing["connectWiseID"] if existing else str(uuid.uuid4()),
                "_info": {"lastUpdated": self._now(), "updatedBy": created_by},
            }
            self.callbacks[callback_id] = record
            return record

    @staticmethod
    def _callback_errors(body: CallbackBody) -> list[JSON]:
        errors: list[JSON] = []
        parts = urlsplit(body.url or "")
        if parts.scheme not in ("http", "https") or not parts.netloc:
            errors.append(field_error("InvalidField", "Invalid URL", "callbackEntry", "url"))
        kind = (body.type or "").lower()
        if kind not in CALLBACK_LEVELS:
            errors.append(field_error("InvalidField", "Unrecognized type", "callbackEntry", "type"))
        elif (body.level or "").lower() not in CALLBACK_LEVELS[kind]:
            message = "Unrecognized level for type, see documentation for supported levels for each type"
            errors.append(field_error("InvalidField", message, "callbackEntry", "level"))
        if body.objectId is None:
            errors.append(
                field_error("MissingRequiredField", "The objectId field is required.", "callbackEntry", "objectId")
            )
        if body.description and len(body.description) > CALLBACK_DESCRIPTION_MAX:
            message = f"description cannot be longer than {CALLBACK_DESCRIPTION_MAX} characters"
            errors.append(field_error("MaxLengthField", message, "callbackEntry", "description"))
        return errors

    def _reject_duplicate(self, body: CallbackBody, object_id: int, own_id: int | None) -> None:
        for other in self.callbacks.values():
            same = (
                other["id"] != own_id
                and other["url"] == body.url
                and str(other["type"]).lower() == str(body.type).lower()
                and str(other["level"]).lower() == str(body.level).lower()
                and other["objectId"] == object_id
            )
            if same:
                message = "A matching callback entry already exists"
                raise invalid_object(
                    "callbackEntry", [field_error("ObjectExists", message, "callbackEntry", "objectId")]
                )

    def callback(self, callback_id: int) -> JSON:
        with self.lock:
            record = self.callbacks.get(callback_id)
            if record is None:
                raise not_found(f"Callback Entry ID {callback_id} not found")
            return record

    def matching_callbacks(self, event: TicketEvent) -> list[JSON]:
        """Active ticket callbacks whose level covers the saved ticket and who saved it."""
        with self.lock:
            saver = self.member_by_identifier(event.member_identifier)
            matches = []
            for record in self.callbacks.values():
                if record["inactiveFlag"] or str(record["type"]).lower() != "ticket":
                    continue
                if record["isSelfSuppressedFlag"] and saver is not None and saver["id"] == record["memberId"]:
                    continue
                if self._level_covers(record, event):
                    matches.append(copy.deepcopy(record))
            return matches

    @staticmethod
    def _level_covers(record: JSON, event: TicketEvent) -> bool:
        level = str(record["level"]).lower()
        targets = {"owner": None, "board": event.board_id, "ticket": event.ticket_id, "status": event.status_id}
        if level not in targets:
            return False
        return level == "owner" or record["objectId"] == targets[level]

    # -- everything ----------------------------------------------------------------------------

    def all_text(self) -> str:
        with self.lock:
            records = [*self.tickets.values(), *self.notes.values(), *self.time_entries.values()]
            return "\n".join(_walk_strings(records))


# ---------------------------------------------------------------------------------------------
# The API gate: logging, latency, injected failures, auth — in front of every /apis/3.0 call
# ---------------------------------------------------------------------------------------------


class _ApiGate:
    """Pure ASGI middleware so it sees every API request, matched route or not."""

    def __init__(self, app: ASGIApp, sandbox: ConnectWiseSandbox) -> None:
        self.app = app
        self.sandbox = sandbox

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        prefix = self.sandbox.api_path
        if scope["type"] != "http" or not scope["path"].startswith(prefix):
            await self.app(scope, receive, send)
            return
        request = Request(scope)
        logged = False

        def log(status: int) -> None:
            nonlocal logged
            query = scope.get("query_string", b"").decode("latin-1")
            path = scope["path"][len(prefix) :] or "/"
            version = self._accept_version(request)
            self.sandbox._log_request(RequestRecord(scope["method"], path, query, status, version))
            logged = True

        async def capture(message: Message) -> None:
            # Log before the client can see the answer, so a test never races its own request.
            if message["type"] == "http.response.start":
                log(message["status"])
            await send(message)

        try:
            await self._handle(scope, receive, capture, request)
        finally:
            if not logged:
                log(500)

    async def _handle(self, scope: Scope, receive: Receive, send: Send, request: Request) -> None:
        faults = self.sandbox.faults
        # Latency and throttling come before authentication, as at CW's gateway.
        if faults.latency_ms > 0:
            await asyncio.sleep(faults.latency_ms / 1000)
        failure = faults.take_failure()
        if failure is not None:
            await self._failure_response(failure, faults.retry_after_s)(scope, receive, send)
            return
        problem = self.sandbox._auth_problem(request.headers)
        if problem is not None:
            await CWError(401, "Unauthorized", problem).response()(scope, receive, send)
            return
        await self.app(scope, receive, send)

    @staticmethod
    def _accept_version(request: Request) -> str | None:
        match = ACCEPT_VERSION_RE.search(request.headers.get("accept", ""))
        return match.group(1) if match else None

    @staticmethod
    def _failure_response(status: int, retry_after_s: int) -> Response:
        if status == 429:
            return JSONResponse(TOO_MANY_REQUESTS, status_code=429, headers={"Retry-After": str(retry_after_s)})
        codes = {
            500: ("UnexpectedServerError", "An unexpected server error has occurred"),
            503: ("ServiceUnavailable", "The service is temporarily unavailable. Please try again later."),
        }
        code, message = codes.get(status, ("Error", f"Injected failure {status}"))
        return CWError(status, code, message).response()


# ---------------------------------------------------------------------------------------------
# The sandbox
# ---------------------------------------------------------------------------------------------


class ConnectWiseSandbox(ServedSandbox):
    """A ConnectWise PSA tenant on 127.0.0.1: REST API, callback key endpoint, callbacks."""

    _not_started = "the ConnectWise sandbox is not started"

    def __init__(
        self,
        *,
        company_id: str = "tierone-msp",
        company_name: str = "TierOne MSP",
        public_key: str = "sbxPublicKey4tier1",
        private_key: str = "sbxPrivateKey4tier1",
        client_id: str = "5c3e2a7d-8f41-4b6e-9d2a-1f0b7c6e3a94",
        codebase: str = "v2025_1/",
        signing_key: str | None = None,
        api_member_identifier: str = "tierone-api",
        retry_delays: Sequence[float] = (2.0, 4.0),
        clock: Callable[[], datetime] = _utcnow,
    ) -> None:
        self.company_id = company_id
        self.company_name = company_name
        self.public_key = public_key
        self.private_key = private_key
        self.client_id = client_id
        self.codebase = codebase if codebase.endswith("/") else f"{codebase}/"
        self.signing_key = signing_key or secrets.token_urlsafe(32)
        self.key_id = str(uuid.uuid4())
        self._signing_keys = {self.key_id: self.signing_key}
        self.api_member_identifier = api_member_identifier
        self.retry_delays = tuple(retry_delays)
        self.product_instance_id = secrets.token_hex(12)
        self.partner_id = secrets.token_hex(12)
        self.faults = Faults()
        self._clock = clock
        self._store = self._fresh_store()
        self._dispatcher = _Dispatcher(self.retry_delays)
        self._log_lock = threading.Lock()
        self._request_log: list[RequestRecord] = []
        self._server: BackgroundServer | None = None
        self.app = self._build_app()

    # -- lifecycle -----------------------------------------------------------------------------

    def start(self) -> ConnectWiseSandbox:
        self._dispatcher.open()
        self._serve(self.app, "connectwise-sandbox")
        return self

    def stop(self) -> None:
        self._dispatcher.close()
        self._stop_server()

    def reset(self, timeout: float = 10.0) -> None:
        """Forget all data, callbacks, logs and faults; keep the server, keys and URLs.

        Lets a test module share one running server while every test starts from a clean tenant.
        """
        self._dispatcher.wait_idle(timeout)
        self._dispatcher.clear()
        self._store = self._fresh_store()
        self.faults.reset()
        self.clear_request_log()

    def _fresh_store(self) -> _Store:
        store = _Store(self._clock)
        store.add_member(self.api_member_identifier, "TierOne", "API")
        store.add_member("jsmith", "John", "Smith")
        return store

    @property
    def api_path(self) -> str:
        return f"/{self.codebase}apis/3.0"

    @property
    def api_url(self) -> str:
        """What the client uses as base URL (production: https://api-na.myconnectwise.net/v2025_1/apis/3.0)."""
        return f"{self.url}{self.api_path}"

    @property
    def key_origin(self) -> str:
        """The origin of `Metadata.key_url` in callbacks (production: https://na.myconnectwise.net)."""
        return self.url

    @property
    def key_url(self) -> str:
        return (
            f"{self.key_origin}/{self.codebase}system/callbackkey/index.rails"
            f"?companyName={self.company_id}&id={self.key_id}"
        )

    def auth_headers(self, version: str = "2025.1") -> dict[str, str]:
        """The headers a correctly configured client sends."""
        token = base64.b64encode(f"{self.company_id}+{self.public_key}:{self.private_key}".encode()).decode()
        return {
            "Authorization": f"Basic {token}",
            "clientId": self.client_id,
            "Accept": f"application/vnd.connectwise.com+json; version={version}",
        }

    def rotate_signing_key(self) -> str:
        """New key under a new key id; old ids keep resolving so in-flight messages still verify."""
        self.signing_key = secrets.token_urlsafe(32)
        self.key_id = str(uuid.uuid4())
        self._signing_keys[self.key_id] = self.signing_key
        return self.signing_key

    # -- Python API: seed data -----------------------------------------------------------------

    def add_company(
        self, name: str, identifier: str, custom_fields: Mapping[str, Any] | Sequence[JSON] | None = None
    ) -> JSON:
        """`custom_fields`: {"caption": value} or a list of {"caption", "value"}."""
        return self._copy(self._store.add_company(name, identifier, custom_fields))

    def add_contact(
        self, company_id: int, first_name: str, last_name: str, email: str, phone: str | None = None
    ) -> JSON:
        return self._copy(self._store.add_contact(company_id, first_name, last_name, email, phone))

    def add_member(self, identifier: str, first_name: str = "", last_name: str = "") -> JSON:
        return self._copy(self._store.add_member(identifier, first_name, last_name))

    def add_board(self, name: str, statuses: Sequence[str | Mapping[str, Any]] | None = None) -> JSON:
        """`statuses`: names or dicts (name, defaultFlag, closedStatus, timeEntryNotAllowed, ...)."""
        return self._copy(self._store.add_board(name, statuses))

    def statuses(self, board_id: int) -> list[JSON]:
        return [self._copy(status) for status in self._store.board_statuses(board_id)]

    def status_id(self, board_id: int, name: str) -> int:
        return int(self._store.resolve_status(self._store.boards[board_id], {"name": name})["id"])

    # -- Python API: what people do in the CW UI (fires callbacks) -----------------------------

    def create_ticket(
        self,
        summary: str,
        description: str,
        company_id: int,
        contact_id: int | None,
        board_id: int,
        entered_by: str = "jsmith",
        **fields: Any,
    ) -> JSON:
        """A ticket as a person creates it in the UI; `fields` are extra TicketBody fields."""
        self._store.add_member(entered_by)
        body = TicketBody.model_validate(
            {
                "summary": summary,
                "initialDescription": description,
                "company": {"id": company_id},
                "contact": {"id": contact_id} if contact_id is not None else None,
                "board": {"id": board_id},
                **fields,
            }
        )
        ticket, event = self._store.create_ticket(body, entered_by)
        self._fire(event)
        return ticket

    def set_ticket_status(self, ticket_id: int, status_name: str, changed_by: str = "jsmith") -> JSON:
        self._store.add_member(changed_by)
        ticket, event = self._store.set_status(ticket_id, status_name, changed_by)
        self._fire(event)
        return ticket

    def add_note(
        self,
        ticket_id: int,
        text: str,
        created_by: str = "jsmith",
        *,
        detail: bool = True,
        internal: bool = False,
        resolution: bool = False,
    ) -> JSON:
        self._store.add_member(created_by)
        body = NoteBody(
            text=text, detailDescriptionFlag=detail, internalAnalysisFlag=internal, resolutionFlag=resolution
        )
        note, event = self._store.add_note(ticket_id, body, created_by)
        self._fire(event)
        return note

    def delete_ticket(self, ticket_id: int, deleted_by: str = "jsmith") -> None:
        self._store.add_member(deleted_by)
        self._fire(self._store.delete_ticket(ticket_id, deleted_by))

    def register_callback(
        self,
        url: str,
        level: str = "owner",
        object_id: int = 1,
        *,
        callback_type: str = "ticket",
        description: str = "",
        self_suppressed: bool = False,
        inactive: bool = False,
        payload_version: str = "3.0.0",
        created_by: str | None = None,
    ) -> JSON:
        body = CallbackBody(
            url=url,
            objectId=object_id,
            type=callback_type,
            level=level,
            description=description or None,
            payloadVersion=payload_version,
            inactiveFlag=inactive,
            isSelfSuppressedFlag=self_suppressed,
        )
        return self._copy(self._store.save_callback(body, created_by or self.api_member_identifier))

    # -- Python API: reading back --------------------------------------------------------------

    def ticket(self, ticket_id: int) -> JSON:
        return self._store.render_ticket(ticket_id)

    def tickets(self) -> list[JSON]:
        with self._store.lock:
            return [self._store.render_ticket(ticket_id) for ticket_id in sorted(self._store.tickets)]

    def notes(self, ticket_id: int) -> list[JSON]:
        return [self._copy(note) for note in self._store.ticket_notes(ticket_id)]

    def time_entries(self, ticket_id: int) -> list[JSON]:
        with self._store.lock:
            found = [e for e in self._store.time_entries.values() if e["chargeToId"] == ticket_id]
            return [self._copy(entry) for entry in sorted(found, key=lambda e: e["id"])]

    def callbacks(self) -> list[JSON]:
        with self._store.lock:
            return [self._copy(record) for record in self._store.callbacks.values()]

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
    def api_versions_seen(self) -> list[str]:
        return sorted({record.version for record in self.request_log if record.version})

    @property
    def deliveries(self) -> list[Delivery]:
        return self._dispatcher.snapshot()

    def clear_deliveries(self) -> None:
        self._dispatcher.clear()

    def wait_for_deliveries(self, timeout: float = 10.0) -> None:
        """Block until no callback delivery (including pending retries) is in flight."""
        self._dispatcher.wait_idle(timeout)

    def _copy(self, record: JSON) -> JSON:
        with self._store.lock:
            copied: JSON = compact(copy.deepcopy(record))
            return copied

    def _log_request(self, record: RequestRecord) -> None:
        with self._log_lock:
            self._request_log.append(record)

    def _auth_problem(self, headers: Mapping[str, str]) -> str | None:
        client_id = headers.get("clientid")
        if not client_id:
            return "A clientId header is required. Register one at https://developer.connectwise.com/ClientID"
        if client_id.strip().lower() != self.client_id.lower():
            return "The clientId provided is not valid"
        scheme, _, token = headers.get("authorization", "").partition(" ")
        if scheme.lower() != "basic" or not token:
            return "Authorization header with Basic API member credentials is required"
        try:
            decoded = base64.b64decode(token, validate=True).decode("utf-8")
        except (binascii.Error, UnicodeDecodeError):
            return "Authorization header could not be decoded"
        user, _, password = decoded.partition(":")
        company, _, public = user.partition("+")
        valid = (
            company.lower() == self.company_id.lower()
            and hmac.compare_digest(public, self.public_key)
            and hmac.compare_digest(password, self.private_key)
        )
        return None if valid else "Invalid credentials: check the company id and the API member keys"

    # -- callbacks out -------------------------------------------------------------------------

    def _fire(self, event: TicketEvent) -> None:
        for record in self._store.matching_callbacks(event):
            self._send(record, event)

    def _send(self, record: JSON, event: TicketEvent) -> None:
        target = f"{record['url']}{event.ticket_id}"  # CW appends the record id to the URL
        started = self._server is not None
        envelope = {
            "MessageId": str(uuid.uuid4()),
            "FromUrl": self.url.removeprefix("http://") if started else "sandbox.invalid",
            "CompanyId": self.company_id,
            "MemberId": event.member_identifier,
            "Action": event.action,
            "Type": "ticket",
            "ID": event.ticket_id,
            "ProductInstanceId": self.product_instance_id,
            "PartnerId": self.partner_id,
            "Entity": event.entity,
            "Metadata": {"key_url": self.key_url if started else ""},
            "CallbackObjectRecId": record["id"],
        }
        body = json.dumps(envelope, separators=(",", ":"), ensure_ascii=False).encode("utf-8")
        delivery = Delivery(
            message_id=envelope["MessageId"],
            url=target,
            ticket_id=event.ticket_id,
            action=event.action,
            callback_id=record["id"],
            member_id=event.member_identifier,
            body=body,
            signature=sign_body(self.signing_key, body),
        )
        if self.faults.drop_callbacks:
            self._dispatcher.record_dropped(delivery, "dropped by fault injection")
        elif not started:
            self._dispatcher.record_dropped(delivery, "sandbox not started")
        else:
            self._dispatcher.submit(delivery)

    # -- HTTP ----------------------------------------------------------------------------------

    def _build_app(self) -> Starlette:
        api_routes = [
            Route("/system/info", self._system_info),
            Route("/system/members", self._list(lambda: self._store.members.values())),
            Route("/system/members/{id:int}", self._get_member),
            Route("/company/companies", self._list(lambda: self._store.companies.values())),
            Route("/company/companies/count", self._count(lambda: self._store.companies.values())),
            Route("/company/companies/{id:int}", self._get_company),
            Route("/company/contacts", self._list(lambda: self._store.contacts.values())),
            Route("/company/contacts/count", self._count(lambda: self._store.contacts.values())),
            Route("/company/contacts/{id:int}", self._get_contact),
            Route("/service/boards", self._list(lambda: self._store.boards.values())),
            Route("/service/boards/{id:int}", self._get_board),
            Route("/service/boards/{id:int}/statuses", self._list_statuses),
            Route("/service/boards/{id:int}/statuses/{statusId:int}", self._get_status),
            Route("/service/priorities", self._list(lambda: self._store.priorities)),
            Route("/service/tickets", self._list(lambda: self._store.tickets.values()), methods=["GET"]),
            Route("/service/tickets", self._post_ticket, methods=["POST"]),
            Route("/service/tickets/count", self._count(lambda: self._store.tickets.values())),
            Route("/service/tickets/search", self._search_tickets, methods=["POST"]),
            Route("/service/tickets/{id:int}", self._ticket_item, methods=["GET", "PATCH", "DELETE"]),
            Route("/service/tickets/{id:int}/notes", self._ticket_notes, methods=["GET", "POST"]),
            Route("/service/tickets/{id:int}/notes/count", self._count_notes),
            Route("/service/tickets/{id:int}/notes/{noteId:int}", self._get_note),
            Route("/time/entries", self._list(lambda: self._store.time_entries.values()), methods=["GET"]),
            Route("/time/entries", self._post_time_entry, methods=["POST"]),
            Route("/time/entries/count", self._count(lambda: self._store.time_entries.values())),
            Route("/time/entries/{id:int}", self._get_time_entry),
            Route("/time/workTypes", self._list(lambda: self._store.work_types)),
            Route("/system/callbacks", self._list(lambda: self._store.callbacks.values()), methods=["GET"]),
            Route("/system/callbacks", self._post_callback, methods=["POST"]),
            Route("/system/callbacks/count", self._count(lambda: self._store.callbacks.values())),
            Route("/system/callbacks/{id:int}", self._callback_item, methods=["GET", "PUT", "PATCH", "DELETE"]),
        ]
        key_path = "system/callbackkey/index.rails"
        routes = [
            Route("/login/companyinfo/{companyId}", self._company_info),
            # CW's own key_url carries a double slash (codebase ends in "/" and "/system" follows).
            Route(f"/{self.codebase}{key_path}", self._callback_key),
            Route(f"/{self.codebase}/{key_path}", self._callback_key),
            Mount(self.api_path, routes=api_routes),
        ]
        return Starlette(
            routes=routes,
            middleware=[Middleware(_ApiGate, sandbox=self)],
            exception_handlers={
                CWError: vendor_error_handler(CWError),
                HTTPException: self._on_http_error,
                Exception: self._on_crash,
            },
        )

    @staticmethod
    async def _on_http_error(request: Request, exc: Exception) -> Response:
        assert isinstance(exc, HTTPException)
        if exc.status_code == 404:
            return CWError(404, "NotFound", f"The requested resource {request.url.path} was not found").response()
        if exc.status_code == 405:
            return CWError(405, "MethodNotAllowed", f"{request.method} is not supported here").response()
        return CWError(exc.status_code, "InvalidObject", str(exc.detail)).response()

    @staticmethod
    async def _on_crash(request: Request, exc: Exception) -> Response:
        # A sandbox bug still answers in the vendor's shape; Starlette logs the traceback.
        return CWError(500, "UnexpectedServerError", f"An unexpected server error has occurred: {exc}").response()

    @staticmethod
    async def _json(request: Request) -> Any:
        raw = await request.body()
        try:
            return json.loads(raw)
        except (json.JSONDecodeError, UnicodeDecodeError) as exc:
            raise CWError(400, "InvalidObject", f"The request body is not valid JSON: {exc}") from None

    @staticmethod
    def _path_id(request: Request, name: str = "id") -> int:
        return int(request.path_params[name])

    # unauthenticated endpoints

    async def _company_info(self, request: Request) -> Response:
        if request.path_params["companyId"].lower() != self.company_id.lower():
            raise not_found(f"Company {request.path_params['companyId']} not found")
        return JSONResponse(
            {
                "CompanyName": self.company_name,
                "Codebase": self.codebase,
                "VersionCode": "v2025.1",
                "VersionNumber": "v4.6",
                "CompanyID": self.company_id,
                "IsCloud": True,
                "SiteUrl": request.url.netloc,
            }
        )

    async def _callback_key(self, request: Request) -> Response:
        key = self._signing_keys.get(request.query_params.get("id", ""))
        company = request.query_params.get("companyName", "")
        if key is None or company.lower() != self.company_id.lower():
            raise not_found("Callback key not found")
        return JSONResponse({"signing_key": key})

    # generic list / count

    def _list(self, source: Callable[[], Iterable[JSON]]) -> Callable[[Request], Any]:
        async def handler(request: Request) -> Response:
            return self._list_response(request, source())

        return handler

    def _count(self, source: Callable[[], Iterable[JSON]]) -> Callable[[Request], Any]:
        async def handler(request: Request) -> Response:
            with self._store.lock:
                records = self._filter(request.query_params, list(source()))
            return JSONResponse({"count": len(records)})

        return handler

    def _filter(self, params: Mapping[str, str], records: list[JSON]) -> list[JSON]:
        conditions = [self._parse(params[name]) for name in ("conditions", "childConditions") if params.get(name)]
        custom = self._parse(params["customFieldConditions"]) if params.get("customFieldConditions") else None
        return [
            record
            for record in records
            if all(evaluate(condition, record) for condition in conditions)
            and (custom is None or any(evaluate(custom, cf) for cf in record.get("customFields") or []))
        ]

    @staticmethod
    def _parse(text: str) -> Condition:
        try:
            return parse_conditions(text)
        except ConditionError as exc:
            raise CWError(400, "InvalidObject", f"conditions could not be parsed: {exc}") from None

    @staticmethod
    def _order(records: list[JSON], order_by: str | None) -> list[JSON]:
        ordered = sorted(records, key=lambda record: record.get("id", 0))
        if not order_by:
            return ordered
        clauses = [clause.split() for clause in order_by.split(",") if clause.strip()]
        for clause in reversed(clauses):
            if len(clause) > 2 or (len(clause) == 2 and clause[1].lower() not in ("asc", "desc")):
                raise CWError(400, "InvalidObject", f"orderBy could not be parsed: {' '.join(clause)}")
            path = tuple(clause[0].split("/"))
            descending = len(clause) == 2 and clause[1].lower() == "desc"
            ordered.sort(key=_path_sort_key(path), reverse=descending)
        return ordered

    def _list_response(self, request: Request, source: Iterable[JSON]) -> Response:
        params = request.query_params
        with self._store.lock:
            records = self._order(self._filter(params, list(source)), params.get("orderBy"))
            if request.headers.get("pagination-type", "").lower() == "forward-only":
                page, links = self._forward_page(request, records)
            else:
                page, links = self._numbered_page(request, records)
            if params.get("fields"):
                page = [select_fields(record, params["fields"].split(",")) for record in page]
            body = compact(copy.deepcopy(page))
        headers = {"Link": ", ".join(f'<{url}>; rel="{rel}"' for rel, url in links)} if links else {}
        return JSONResponse(body, headers=headers)

    @staticmethod
    def _page_size(params: Mapping[str, str]) -> int:
        size = _int_param(params, "pageSize", DEFAULT_PAGE_SIZE)
        if size < 1:
            raise CWError(400, "InvalidObject", "pageSize must be greater than 0")
        return min(size, MAX_PAGE_SIZE)

    def _numbered_page(self, request: Request, records: list[JSON]) -> tuple[list[JSON], list[tuple[str, str]]]:
        size = self._page_size(request.query_params)
        page = _int_param(request.query_params, "page", 1)
        if page < 1:
            raise CWError(400, "InvalidObject", "page must be greater than 0")
        last = max(1, -(-len(records) // size))

        def link(number: int) -> str:
            return str(request.url.include_query_params(page=number, pageSize=size))

        links: list[tuple[str, str]] = []
        if page > 1:
            links += [("first", link(1)), ("prev", link(min(page - 1, last)))]
        if page < last:
            links += [("next", link(page + 1)), ("last", link(last))]
        return records[(page - 1) * size : page * size], links

    def _forward_page(self, request: Request, records: list[JSON]) -> tuple[list[JSON], list[tuple[str, str]]]:
        if request.query_params.get("orderBy"):
            raise CWError(400, "InvalidObject", "orderBy is not allowed with forward-only pagination")
        size = self._page_size(request.query_params)
        after = _int_param(request.query_params, "pageId", 0)
        remaining = [record for record in records if record["id"] > after]
        page = remaining[:size]
        if len(remaining) <= size:
            return page, []
        next_url = str(request.url.include_query_params(pageId=page[-1]["id"], pageSize=size))
        return page, [("next", next_url)]

    # read endpoints

    async def _system_info(self, request: Request) -> Response:
        return JSONResponse(
            {
                "version": "v2025.1.107632",
                "isCloud": True,
                "serverTimeZone": "Eastern Standard Time",
                "cloudRegion": "NA",
            }
        )

    def _one(self, table: Mapping[int, JSON], record_id: int, label: str) -> Response:
        with self._store.lock:
            record = table.get(record_id)
            if record is None:
                raise not_found(f"{label} ID {record_id} not found")
            return JSONResponse(compact(copy.deepcopy(record)))

    async def _get_member(self, request: Request) -> Response:
        return self._one(self._store.members, self._path_id(request), "Member")

    async def _get_company(self, request: Request) -> Response:
        return self._one(self._store.companies, self._path_id(request), "Company")

    async def _get_contact(self, request: Request) -> Response:
        return self._one(self._store.contacts, self._path_id(request), "Contact")

    async def _get_board(self, request: Request) -> Response:
        return self._one(self._store.boards, self._path_id(request), "Board")

    async def _list_statuses(self, request: Request) -> Response:
        board_id = self._path_id(request)
        if board_id not in self._store.boards:
            raise not_found(f"Board ID {board_id} not found")
        return self._list_response(request, self._store.board_statuses(board_id))

    async def _get_status(self, request: Request) -> Response:
        with self._store.lock:
            status = self._store.statuses.get(self._path_id(request, "statusId"))
            if status is None or status["board"]["id"] != self._path_id(request):
                raise not_found(f"Service Status ID {request.path_params['statusId']} not found")
            return JSONResponse(self._copy(status))

    async def _get_time_entry(self, request: Request) -> Response:
        return self._one(self._store.time_entries, self._path_id(request), "Time Entry")

    # tickets

    async def _post_ticket(self, request: Request) -> Response:
        body = parse_body(TicketBody, await self._json(request), "ticket")
        ticket, event = self._store.create_ticket(body, self.api_member_identifier)
        self._fire(event)
        return JSONResponse(ticket, status_code=201)

    async def _search_tickets(self, request: Request) -> Response:
        data = await self._json(request)
        conditions = data.get("conditions") if isinstance(data, dict) else None
        condition = self._parse(str(conditions)) if conditions else None
        with self._store.lock:
            records = list(self._store.tickets.values())
            if condition is not None:
                records = [record for record in records if evaluate(condition, record)]
        return self._list_response(request, records)

    async def _ticket_item(self, request: Request) -> Response:
        ticket_id = self._path_id(request)
        if request.method == "GET":
            return JSONResponse(self._store.render_ticket(ticket_id))
        if request.method == "DELETE":
            self._fire(self._store.delete_ticket(ticket_id, self.api_member_identifier))
            return Response(status_code=204)
        self._store.ticket(ticket_id)  # 404 before a body error, as CW does
        ticket, event = self._store.patch_ticket(ticket_id, await self._json(request), self.api_member_identifier)
        self._fire(event)
        return JSONResponse(ticket)

    async def _ticket_notes(self, request: Request) -> Response:
        ticket_id = self._path_id(request)
        if request.method == "GET":
            return self._list_response(request, self._store.ticket_notes(ticket_id))
        self._store.ticket(ticket_id)
        body = parse_body(NoteBody, await self._json(request), "serviceNote")
        note, event = self._store.add_note(ticket_id, body, self.api_member_identifier)
        self._fire(event)
        return JSONResponse(note, status_code=201)

    async def _count_notes(self, request: Request) -> Response:
        notes = self._store.ticket_notes(self._path_id(request))
        return JSONResponse({"count": len(self._filter(request.query_params, notes))})

    async def _get_note(self, request: Request) -> Response:
        ticket_id = self._path_id(request)
        note_id = self._path_id(request, "noteId")
        note = next((n for n in self._store.ticket_notes(ticket_id) if n["id"] == note_id), None)
        if note is None:
            raise not_found(f"Service Note ID {note_id} not found")
        return JSONResponse(self._copy(note))

    # time

    async def _post_time_entry(self, request: Request) -> Response:
        body = parse_body(TimeEntryBody, await self._json(request), "timeEntry")
        entry, event = self._store.add_time_entry(body, self.api_member_identifier)
        self._fire(event)
        return JSONResponse(entry, status_code=201)

    # callbacks

    async def _post_callback(self, request: Request) -> Response:
        body = parse_body(CallbackBody, await self._json(request), "callbackEntry")
        record = self._store.save_callback(body, self.api_member_identifier)
        return JSONResponse(self._copy(record), status_code=201)

    async def _callback_item(self, request: Request) -> Response:
        callback_id = self._path_id(request)
        existing = self._copy(self._store.callback(callback_id))
        if request.method == "GET":
            return JSONResponse(existing)
        if request.method == "DELETE":
            with self._store.lock:
                self._store.callbacks.pop(callback_id, None)
            return Response(status_code=204)
        data = await self._json(request)
        if request.method == "PATCH":
            data = _apply_json_patch(existing, data, "callbackEntry")
        body = parse_body(CallbackBody, data, "callbackEntry")
        record = self._store.save_callback(body, self.api_member_identifier, callback_id)
        return JSONResponse(self._copy(record))


def _int_param(params: Mapping[str, str], name: str, default: int) -> int:
    raw = params.get(name)
    if raw is None or raw == "":
        return default
    try:
        return int(raw)
    except ValueError:
        raise CWError(400, "InvalidObject", f"{name} must be an integer") from None


def _path_sort_key(path: tuple[str, ...]) -> Callable[[JSON], tuple[bool, str, Any]]:
    def key(record: JSON) -> tuple[bool, str, Any]:
        return _sort_key(resolve_path(record, path)[0])

    return key


def _sort_key(value: Any) -> tuple[bool, str, Any]:
    # None sorts last; mixed types never compare with each other.
    if isinstance(value, str):
        return (False, "str", value.casefold())
    return (value is None, type(value).__name__, value if value is not None else 0)


def _apply_json_patch(record: JSON, operations: Any, resource: str) -> JSON:
    """Top-level JSON-Patch on a flat record (callbacks), in CW's replace-the-field style."""
    if not isinstance(operations, list):
        raise CWError(400, "InvalidObject", "A JSON-Patch array of operations is expected")
    patched = dict(record)
    for operation in operations:
        if not isinstance(operation, dict) or not isinstance(operation.get("path"), str):
            raise CWError(400, "InvalidObject", "Each patch operation needs an op and a path")
        key = operation["path"].strip("/")
        op = str(operation.get("op", "")).lower()
        if op in ("replace", "add"):
            patched[key] = operation.get("value")
        elif op == "remove":
            patched.pop(key, None)
        else:
            message = f"Unsupported patch operation {operation.get('op')!r}"
            raise invalid_object(resource, [field_error("InvalidField", message, resource, key)])
    return patched

"""A stand-in for Microsoft Graph v1.0 over customers' Entra ID tenants, faithful enough that
unchanged msgraph-sdk code cannot tell it from the real service.

Served under `{url}/v1.0` by `GraphSandbox` (point a client there with
`client.request_adapter.base_url = sandbox.graph_url`). What it covers is what TierOne's L1
actions touch (graph.md §1, §2.1–2.2, §10, Appendix B):

* `GET /users/{id|upn}` with `$select`; `GET /users` with `$filter` (eq, in, startswith,
  `proxyAddresses/any(...)`, `otherMails/any(...)`, `and`/`or`/`not`, parentheses), `$select`,
  `$top` and `@odata.nextLink` paging through `$skiptoken`;
* `PATCH /users/{id}` (passwordProfile and ordinary properties) with Entra's rules: password
  complexity and a small banned list, on-premises-mastered (synced) objects, and the role
  hierarchy of "who can reset whom" between the calling app's directory role and the target's;
* `POST /users/{id}/revokeSignInSessions`, `GET /users/{id}/manager`, `.../memberOf`,
  `.../transitiveMemberOf[/microsoft.graph.directoryRole]`, `GET /directoryRoles[/{id}[/members]]`;
* bearer-token authentication: tokens come from `sandbox.entra_login.EntraSandbox` (the call acts
  in the token's `tid`; application permissions come from its `roles` claim), and errors,
  throttling (`faults`) and headers in Graph's shapes.

Key sharing: a GraphSandbox is built with an EntraSandbox (`GraphSandbox(entra)`) or creates and
owns one (`GraphSandbox()`), and verifies tokens with that object's signing key in process.
`add_tenant` registers the tenant on both sides. Consent of an app in a tenant is Entra's business
(`entra.consent(...)`, or `GraphSandbox.consent`).

Faithfulness notes: default user properties are Graph's v1.0 default set (so `accountEnabled`,
`onPremisesSyncEnabled`, ... need `$select`); cloud-only users report `onPremisesSyncEnabled: null`
like Graph; string equality in filters is case-insensitive like the directory's. `password_of`,
`password_profile`, `is_locked_out` and `request_log` are sandbox-only introspection.
"""

from __future__ import annotations

import asyncio
import base64
import copy
import datetime as dt
import json
import re
import threading
import unicodedata
import uuid
from collections.abc import Awaitable, Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlencode

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from sandbox._server import BackgroundServer
from sandbox.entra_login import GRAPH_APP_ID, GRAPH_RESOURCE, EntraSandbox, TokenRejected

PUBLIC_GRAPH = "https://graph.microsoft.com/v1.0"
ODATA_JSON = "application/json;odata.metadata=minimal;odata.streaming=true;IEEE754Compatible=false;charset=utf-8"
DEFAULT_PAGE_SIZE = 100
MAX_PAGE_SIZE = 999

# Built-in role template ids (graph.md §9.1, Microsoft's built-in roles list).
ROLE_TEMPLATES: Mapping[str, str] = {
    "Global Administrator": "62e90394-69f5-4237-9190-012177145e10",
    "Privileged Authentication Administrator": "7be44c8a-adaf-4e2a-84d6-ab2649e08a13",
    "Privileged Role Administrator": "e8611ab8-c189-46e8-94e1-60213ab1f814",
    "User Administrator": "fe930be7-5e62-47db-91af-98c3a49a38b1",
    "Helpdesk Administrator": "729827e3-9c14-49f7-bb1b-9608f156bbb8",
    "Authentication Administrator": "c4e39bd9-1100-46d3-8c65-fb160da0071f",
    "Password Administrator": "966707d0-3269-4727-9be2-8c3a10f19b9d",
    "Exchange Administrator": "29232cdf-9323-42fd-ade2-1d097af3e4de",
    "Security Administrator": "194ae4cb-b126-40b2-bd5b-6091b380977d",
    "Intune Administrator": "3a2c62db-5318-420d-8d74-23affee5d9d5",
    "Groups Administrator": "fdd7a751-b60b-444a-984c-02652fe8fa1c",
    "Directory Readers": "88d8e3e3-8f55-4a1e-953a-9b9898b8876b",
    "Guest Inviter": "95e79109-95c0-4d8e-aee3-d01accf2d47b",
    "Message Center Reader": "790c1fb9-7f7d-4f88-86a1-ef1f95c05c1b",
    "Reports Reader": "4a5d8f65-41da-4de4-8968-e035b65339cf",
    "User Experience Success Manager": "27460883-1df1-4691-b032-3b79643e5e63",
    "Usage Summary Reports Reader": "75934031-6c7e-415a-99d7-48dbd49e875e",
}

# "Who can reset passwords" (graph.md §1.3, Entra privileged-roles page): for each role the
# calling app may hold, the target roles it may still act on. A target with no role is always
# fair game for these; a target holding any role outside the set is refused with 403. The same
# table governs the other sensitive actions (revoke sessions, accountEnabled, otherMails, phones).
_HELPDESK_SCOPE = frozenset(
    {
        "Directory Readers",
        "Guest Inviter",
        "Helpdesk Administrator",
        "Message Center Reader",
        "Password Administrator",
        "Reports Reader",
        "User Experience Success Manager",
        "Usage Summary Reports Reader",
    }
)
RESETTABLE_BY: Mapping[str, frozenset[str] | None] = {
    "Global Administrator": None,  # None: every target
    "Privileged Authentication Administrator": None,
    "User Administrator": _HELPDESK_SCOPE | {"Groups Administrator", "User Administrator"},
    "Authentication Administrator": _HELPDESK_SCOPE | {"Authentication Administrator"},
    "Helpdesk Administrator": _HELPDESK_SCOPE,
    "Password Administrator": frozenset({"Directory Readers", "Guest Inviter", "Password Administrator"}),
}

# Application permissions accepted per kind of call (graph.md Appendix A).
_READ_USERS = frozenset(
    {
        "User.ReadBasic.All",
        "User.Read.All",
        "User.ReadWrite.All",
        "Directory.Read.All",
        "Directory.ReadWrite.All",
    }
)
_READ_ROLES = frozenset(
    {
        "RoleManagement.Read.Directory",
        "RoleManagement.Read.All",
        "RoleManagement.ReadWrite.Directory",
        "Directory.Read.All",
        "Directory.ReadWrite.All",
    }
)
_WRITE_USERS = frozenset({"User.ReadWrite.All", "Directory.ReadWrite.All"})
_WRITE_PASSWORD = _WRITE_USERS | {"User-PasswordProfile.ReadWrite.All"}
_WRITE_ENABLED = _WRITE_USERS | {"User.EnableDisableAccount.All"}
_REVOKE_SESSIONS = _WRITE_USERS | {"User.RevokeSessions.All"}

# Properties a GET returns without $select (Graph v1.0's default user projection).
DEFAULT_USER_PROPERTIES = (
    "businessPhones",
    "displayName",
    "givenName",
    "jobTitle",
    "mail",
    "mobilePhone",
    "officeLocation",
    "preferredLanguage",
    "surname",
    "userPrincipalName",
    "id",
)
_SELECTABLE_USER_PROPERTIES = frozenset(
    {
        *DEFAULT_USER_PROPERTIES,
        "accountEnabled",
        "onPremisesSyncEnabled",
        "proxyAddresses",
        "otherMails",
        "lastPasswordChangeDateTime",
        "usageLocation",
        "department",
        "createdDateTime",
        "userType",
        "mailNickname",
        "signInSessionsValidFromDateTime",
        "passwordPolicies",
        "passwordProfile",
        "employeeId",
        "companyName",
    }
)
_READ_ONLY_USER_PROPERTIES = frozenset(
    {"id", "createdDateTime", "lastPasswordChangeDateTime", "onPremisesSyncEnabled", "proxyAddresses",
     "signInSessionsValidFromDateTime"}
)  # fmt: skip
_SENSITIVE_USER_PROPERTIES = frozenset({"accountEnabled", "otherMails", "mobilePhone", "businessPhones"})
# Properties Entra Connect owns for synced users; editing them in the cloud is refused.
_SYNC_MASTERED_PROPERTIES = frozenset(
    {"passwordProfile", "displayName", "givenName", "surname", "jobTitle", "department", "mail",
     "mailNickname", "mobilePhone", "businessPhones", "officeLocation", "userPrincipalName", "companyName",
     "employeeId"}
)  # fmt: skip

# Entra's banned-password check, much simplified: a normalised password must not contain these.
BANNED_PASSWORD_TERMS = (
    "password",
    "welcome",
    "letmein",
    "qwerty",
    "123456",
    "iloveyou",
    "changeme",
    "admin",
    "monkey",
    "dragon",
)
_LEET = str.maketrans({"0": "o", "1": "l", "3": "e", "4": "a", "5": "s", "7": "t", "@": "a", "$": "s"})
_PASSWORD_SYMBOLS = set("@#$%^&*-_!+=[]{}|\\:',.?/`~\"();<> ")

MSG_PASSWORD_COMPLEXITY = (
    "The specified password does not comply with password complexity requirements. Please provide a different password."
)
MSG_SYNCED_OBJECT = (
    "Unable to update the specified properties for on-premises mastered Directory Sync objects "
    "or objects currently undergoing migration."
)
MSG_INSUFFICIENT_PRIVILEGES = "Insufficient privileges to complete the operation."


# --------------------------------------------------------------------------------------------
# Errors and state
# --------------------------------------------------------------------------------------------


class GraphError(Exception):
    """An error response in Graph's shape: {"error": {"code", "message", "innerError"}}."""

    def __init__(self, status: int, code: str, message: str, headers: Mapping[str, str] | None = None) -> None:
        super().__init__(f"{status} {code}: {message}")
        self.status = status
        self.code = code
        self.message = message
        self.headers = dict(headers or {})

    def response(self, request_id: str, client_request_id: str) -> Response:
        body = {
            "error": {
                "code": self.code,
                "message": self.message,
                "innerError": {
                    "date": dt.datetime.now(dt.UTC).strftime("%Y-%m-%dT%H:%M:%S"),
                    "request-id": request_id,
                    "client-request-id": client_request_id,
                },
            }
        }
        return JSONResponse(body, status_code=self.status, headers=self.headers)


def _not_found(reference: str) -> GraphError:
    return GraphError(
        404,
        "Request_ResourceNotFound",
        f"Resource '{reference}' does not exist or one of its queried reference-property objects are not present.",
    )


def _denied() -> GraphError:
    return GraphError(403, "Authorization_RequestDenied", MSG_INSUFFICIENT_PRIVILEGES)


@dataclass
class DirectoryRole:
    id: str
    display_name: str
    role_template_id: str
    description: str
    members: list[str] = field(default_factory=list)

    def to_graph(self) -> dict[str, Any]:
        return {
            "@odata.type": "#microsoft.graph.directoryRole",
            "id": self.id,
            "deletedDateTime": None,
            "description": self.description,
            "displayName": self.display_name,
            "roleTemplateId": self.role_template_id,
        }


@dataclass
class Tenant:
    id: str
    default_domain: str
    users: dict[str, dict[str, Any]] = field(default_factory=dict)  # id -> Graph properties
    roles: dict[str, DirectoryRole] = field(default_factory=dict)  # display name -> role
    managers: dict[str, str] = field(default_factory=dict)  # user id -> manager id
    passwords: dict[str, dict[str, Any]] = field(default_factory=dict)  # user id -> passwordProfile
    locked_out: set[str] = field(default_factory=set)
    app_role: str | None = "User Administrator"

    def find_user(self, reference: str) -> dict[str, Any] | None:
        wanted = reference.lower()
        if wanted in self.users:
            return self.users[wanted]
        return next((u for u in self.users.values() if u["userPrincipalName"].lower() == wanted), None)

    def roles_of(self, user_id: str) -> list[DirectoryRole]:
        return [role for role in self.roles.values() if user_id in role.members]


@dataclass(frozen=True)
class RequestRecord:
    """One Graph call as the sandbox saw it (passwords redacted)."""

    tenant_id: str | None
    method: str
    path: str
    query: str
    status: int
    request_id: str
    client_request_id: str
    body: Any = None


# --------------------------------------------------------------------------------------------
# Fault injection
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class PlannedFault:
    status: int
    retry_after: int | None
    method: str | None
    after_applying: bool

    def error(self, tenant_id: str, app_id: str) -> GraphError:
        headers: dict[str, str] = {}
        if self.retry_after is not None:
            headers["Retry-After"] = str(self.retry_after)
        if self.status == 429:
            write = self.method not in (None, "GET")
            headers["x-ms-throttle-scope"] = (
                f"Tenant_Application/{'ReadWrite' if write else 'Read'}/{app_id}/{tenant_id}"
            )
            headers["x-ms-throttle-information"] = "WriteLimitExceeded" if write else "ResourceUnitLimitExceeded"
            return GraphError(429, "TooManyRequests", "Too many requests", headers)
        if self.status == 503:
            return GraphError(503, "serviceNotAvailable", "Service Unavailable", headers)
        if self.status == 504:
            return GraphError(504, "UnknownError", "The operation timed out.", headers)
        return GraphError(self.status, "generalException", "An unexpected error occurred.", headers)


class GraphFaults:
    """Knobs for latency and transient failures, safe to turn from any thread."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._planned: list[PlannedFault] = []
        self._latency_ms = 0

    @property
    def latency_ms(self) -> int:
        with self._lock:
            return self._latency_ms

    @latency_ms.setter
    def latency_ms(self, value: int) -> None:
        with self._lock:
            self._latency_ms = max(0, int(value))

    def fail_next(
        self,
        n: int = 1,
        status: int = 429,
        retry_after: int | None = 1,
        *,
        method: str | None = None,
        after_applying: bool = False,
    ) -> None:
        """Answer the next `n` authenticated calls (only `method` ones, if given) with `status`.

        `after_applying=True` performs the call's effect first and then fails, like a write that
        landed but whose response was lost (a 504 on a PATCH): what makes blind retries risky."""
        fault = PlannedFault(status, retry_after, method.upper() if method else None, after_applying)
        with self._lock:
            self._planned.extend([fault] * n)

    def clear(self) -> None:
        with self._lock:
            self._planned.clear()
            self._latency_ms = 0

    @property
    def pending(self) -> int:
        with self._lock:
            return len(self._planned)

    def take(self, method: str) -> PlannedFault | None:
        with self._lock:
            for index, fault in enumerate(self._planned):
                if fault.method in (None, method):
                    return self._planned.pop(index)
        return None


# --------------------------------------------------------------------------------------------
# $filter
# --------------------------------------------------------------------------------------------

Predicate = Callable[[Mapping[str, Any]], bool]

_TOKEN_RE = re.compile(r"\s*(?:(?P<str>'(?:[^']|'')*')|(?P<punct>[(),:/])|(?P<word>[A-Za-z0-9_.@+-]+))")
_EQ_PROPERTIES = frozenset(
    {"id", "userPrincipalName", "mail", "displayName", "givenName", "surname", "jobTitle", "department",
     "accountEnabled", "userType", "mailNickname", "employeeId", "usageLocation", "companyName"}
)  # fmt: skip
_STARTSWITH_PROPERTIES = frozenset(
    {"displayName", "givenName", "surname", "mail", "userPrincipalName", "jobTitle", "department", "mailNickname"}
)
_COLLECTION_PROPERTIES = frozenset({"proxyAddresses", "otherMails", "businessPhones"})


def _unsupported(prop: str) -> GraphError:
    return GraphError(
        400,
        "Request_UnsupportedQuery",
        f"Unsupported or invalid query filter clause specified for property '{prop}' of resource 'User'.",
    )


class _FilterParser:
    """Recursive descent over the OData subset Graph's /users supports without advanced queries."""

    def __init__(self, text: str) -> None:
        self.text = text
        self.tokens = self._tokenize(text)
        self.pos = 0

    def _tokenize(self, text: str) -> list[tuple[str, str, int]]:
        tokens, index = [], 0
        while index < len(text):
            if text[index:].strip() == "":
                break
            match = _TOKEN_RE.match(text, index)
            if match is None:
                raise self._syntax(index)
            kind = match.lastgroup or ""
            tokens.append((kind, match.group(kind), match.start(kind)))
            index = match.end()
        return tokens

    def _syntax(self, position: int | None = None) -> GraphError:
        if position is None:
            position = self.tokens[self.pos][2] if self.pos < len(self.tokens) else len(self.text)
        return GraphError(
            400, "BadRequest", f"Invalid filter clause: Syntax error at position {position} in '{self.text}'."
        )

    def _peek(self) -> tuple[str, str, int] | None:
        return self.tokens[self.pos] if self.pos < len(self.tokens) else None

    def _next(self) -> tuple[str, str, int]:
        token = self._peek()
        if token is None:
            raise self._syntax()
        self.pos += 1
        return token

    def _expect(self, value: str) -> None:
        if self._next()[1].lower() != value:
            self.pos -= 1
            raise self._syntax()

    def _accept_word(self, word: str) -> bool:
        token = self._peek()
        if token and token[0] == "word" and token[1].lower() == word:
            self.pos += 1
            return True
        return False

    def parse(self) -> Predicate:
        predicate = self._or()
        if self._peek() is not None:
            raise self._syntax()
        return predicate

    def _or(self) -> Predicate:
        parts = [self._and()]
        while self._accept_word("or"):
            parts.append(self._and())
        return parts[0] if len(parts) == 1 else (lambda user: any(p(user) for p in parts))

    def _and(self) -> Predicate:
        parts = [self._unary()]
        while self._accept_word("and"):
            parts.append(self._unary())
        return parts[0] if len(parts) == 1 else (lambda user: all(p(user) for p in parts))

    def _unary(self) -> Predicate:
        if self._accept_word("not"):
            # Graph wants ConsistencyLevel: eventual for `not`; the sandbox does not model that.
            raise GraphError(
                400, "Request_UnsupportedQuery", "Unsupported query: 'not' needs advanced query capabilities."
            )
        token = self._peek()
        if token and token[1] == "(":
            self.pos += 1
            inner = self._or()
            self._expect(")")
            return inner
        return self._clause()

    def _clause(self) -> Predicate:
        kind, word, _ = self._next()
        if kind != "word":
            self.pos -= 1
            raise self._syntax()
        if word.lower() == "startswith":
            return self._startswith()
        if word.lower() in ("endswith", "contains"):
            # endswith needs ConsistencyLevel: eventual + $count; contains is not supported on users.
            raise GraphError(400, "Request_UnsupportedQuery", f"Unsupported Query: '{word}' on resource 'User'.")
        token = self._peek()
        if token and token[1] == "/":
            self.pos += 1
            return self._any(word)
        return self._comparison(word)

    def _startswith(self) -> Predicate:
        self._expect("(")
        prop = self._property()
        self._expect(",")
        prefix = str(self._literal()).lower()
        self._expect(")")
        if prop not in _STARTSWITH_PROPERTIES:
            raise _unsupported(prop)
        return lambda user: str(user.get(prop) or "").lower().startswith(prefix)

    def _any(self, prop: str) -> Predicate:
        self._expect("any")
        self._expect("(")
        variable = self._property()
        self._expect(":")
        if self._property() != variable:
            raise self._syntax()
        operator = self._next()[1].lower()
        if operator != "eq":
            raise _unsupported(prop)
        wanted = str(self._literal()).lower()
        self._expect(")")
        if prop not in _COLLECTION_PROPERTIES:
            raise _unsupported(prop)
        return lambda user: any(str(value).lower() == wanted for value in user.get(prop) or [])

    def _comparison(self, prop: str) -> Predicate:
        operator = self._next()[1].lower()
        if prop not in _EQ_PROPERTIES:
            raise _unsupported(prop)
        if operator == "in":
            values = self._literal_list()
            return lambda user: _normalise(user.get(prop)) in values
        if operator != "eq":
            # ne/gt/lt/endswith need ConsistencyLevel: eventual + $count on /users.
            raise _unsupported(prop)
        wanted = _normalise(self._literal())
        return lambda user: _normalise(user.get(prop)) == wanted

    def _property(self) -> str:
        kind, word, _ = self._next()
        if kind != "word":
            self.pos -= 1
            raise self._syntax()
        return word

    def _literal(self) -> Any:
        kind, word, _ = self._next()
        if kind == "str":
            return word[1:-1].replace("''", "'")
        lowered = word.lower()
        if kind == "word" and lowered in ("true", "false", "null"):
            return {"true": True, "false": False, "null": None}[lowered]
        self.pos -= 1
        raise self._syntax()

    def _literal_list(self) -> set[Any]:
        self._expect("(")
        values = {_normalise(self._literal())}
        while (token := self._peek()) is not None and token[1] == ",":
            self.pos += 1
            values.add(_normalise(self._literal()))
        self._expect(")")
        return values


def _normalise(value: Any) -> Any:
    return value.lower() if isinstance(value, str) else value


def parse_user_filter(text: str) -> Predicate:
    return _FilterParser(text).parse()


# --------------------------------------------------------------------------------------------
# Password rules
# --------------------------------------------------------------------------------------------


def password_problem(password: str, user: Mapping[str, Any]) -> str | None:
    """Why Entra would refuse this password for this user, or None (sandbox's reading of the
    cloud password policy: 8–256 allowed characters, 3 of 4 classes, no banned terms)."""
    if not 8 <= len(password) <= 256:
        return "length"
    if any(not (c.isascii() and (c.isalnum() or c in _PASSWORD_SYMBOLS)) for c in password):
        return "character"
    classes = [
        any(c.islower() for c in password),
        any(c.isupper() for c in password),
        any(c.isdigit() for c in password),
        any(c in _PASSWORD_SYMBOLS for c in password),
    ]
    if sum(classes) < 3:
        return "classes"
    normalised = unicodedata.normalize("NFKC", password).lower().translate(_LEET)
    personal = [str(user.get("mailNickname") or ""), str(user.get("givenName") or ""), str(user.get("surname") or "")]
    banned = [*BANNED_PASSWORD_TERMS, *(term.lower() for term in personal if len(term) >= 4)]
    if any(term in normalised for term in banned):
        return "banned"
    return None


# --------------------------------------------------------------------------------------------
# The sandbox
# --------------------------------------------------------------------------------------------


@dataclass
class _Call:
    """What a handler gets: the request, the tenant the token names, the token's claims and the
    parsed JSON body (None for bodiless requests)."""

    request: Request
    tenant: Tenant
    claims: dict[str, Any]
    body: Any = None

    @property
    def permissions(self) -> set[str]:
        return set(self.claims.get("roles") or [])

    def require(self, accepted: frozenset[str]) -> None:
        if not self.permissions & accepted:
            raise _denied()


Handler = Callable[[_Call], Awaitable[Response]]


def _timestamp(moment: dt.datetime) -> str:
    return moment.strftime("%Y-%m-%dT%H:%M:%SZ")


def _now() -> str:
    return _timestamp(dt.datetime.now(dt.UTC))


class GraphSandbox:
    """Microsoft Graph v1.0 for many tenants at once, on a loopback port.

    Seed from any thread with `add_tenant`, `add_user`, `assign_role`, `set_manager`,
    `set_app_role`; inspect with `user`, `password_of`, `password_profile`, `request_log`.
    """

    def __init__(self, entra: EntraSandbox | None = None) -> None:
        self._owns_entra = entra is None
        self.entra = entra or EntraSandbox()
        self.faults = GraphFaults()
        self._lock = threading.RLock()
        self._tenants: dict[str, Tenant] = {}
        self._log: list[RequestRecord] = []
        self._server: BackgroundServer | None = None
        self.app = self._build_app()

    # -- lifecycle ---------------------------------------------------------------------------

    def start(self) -> GraphSandbox:
        if self._owns_entra:
            self.entra.start()
        if self._server is None:
            self._server = BackgroundServer(self.app, name="graph-sandbox").start()
        return self

    def stop(self) -> None:
        if self._server is not None:
            self._server.stop()
            self._server = None
        if self._owns_entra:
            self.entra.stop()

    def __enter__(self) -> GraphSandbox:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    @property
    def url(self) -> str:
        if self._server is None:
            raise RuntimeError("GraphSandbox is not started")
        return self._server.url

    @property
    def graph_url(self) -> str:
        """The base URL for msgraph-sdk: `client.request_adapter.base_url = sandbox.graph_url`."""
        return f"{self.url}/v1.0"

    # -- seeding -----------------------------------------------------------------------------

    def add_tenant(self, tenant_id: str | None = None, default_domain: str = "contoso.example") -> str:
        tenant_id = self.entra.add_tenant(tenant_id, domains=[default_domain])
        with self._lock:
            self._tenants.setdefault(tenant_id, Tenant(tenant_id, default_domain.lower()))
        return tenant_id

    def consent(self, tenant_id: str, client_id: str, permissions: Iterable[str] | None = None) -> None:
        """Shortcut for `entra.consent`: the app may now get tokens for this tenant."""
        self.entra.consent(tenant_id, client_id, permissions)

    def add_user(
        self,
        tenant_id: str,
        display_name: str,
        user_principal_name: str,
        mail: str | None = None,
        manager_id: str | None = None,
        account_enabled: bool = True,
        on_premises_sync_enabled: bool = False,
        given_name: str | None = None,
        surname: str | None = None,
        proxy_addresses: list[str] | None = None,
        other_mails: list[str] | None = None,
        *,
        usage_location: str | None = None,
        job_title: str | None = None,
        department: str | None = None,
        mobile_phone: str | None = None,
        user_type: str = "Member",
        password: str | None = None,
    ) -> dict[str, Any]:
        """Create a user; returns its Graph representation (all properties, camelCase)."""
        # Seeded users stand for accounts that already existed, so their dates lie in the past.
        created = _timestamp(dt.datetime.now(dt.UTC) - dt.timedelta(days=90))
        user: dict[str, Any] = {
            "id": str(uuid.uuid4()),
            "displayName": display_name,
            "givenName": given_name,
            "surname": surname,
            "userPrincipalName": user_principal_name,
            "mail": mail,
            "mailNickname": user_principal_name.split("@")[0],
            "accountEnabled": account_enabled,
            # Graph reports null, not false, for accounts that were never synced.
            "onPremisesSyncEnabled": True if on_premises_sync_enabled else None,
            "proxyAddresses": list(
                proxy_addresses if proxy_addresses is not None else ([f"SMTP:{mail}"] if mail else [])
            ),
            "otherMails": list(other_mails or []),
            "businessPhones": [],
            "mobilePhone": mobile_phone,
            "officeLocation": None,
            "preferredLanguage": None,
            "jobTitle": job_title,
            "department": department,
            "usageLocation": usage_location,
            "userType": user_type,
            "createdDateTime": created,
            "lastPasswordChangeDateTime": created,
            "signInSessionsValidFromDateTime": created,
            "passwordPolicies": None,
            "passwordProfile": None,
            "employeeId": None,
            "companyName": None,
        }
        with self._lock:
            tenant = self._tenant(tenant_id)
            if tenant.find_user(user_principal_name) is not None:
                raise ValueError(f"duplicate userPrincipalName {user_principal_name}")
            tenant.users[user["id"]] = user
            tenant.passwords[user["id"]] = {"password": password, "forceChangePasswordNextSignIn": False}
            if manager_id is not None:
                self._set_manager(tenant, user["id"], manager_id)
            return copy.deepcopy(user)

    def set_manager(self, tenant_id: str, user_id: str, manager_id: str | None) -> None:
        with self._lock:
            tenant = self._tenant(tenant_id)
            if manager_id is None:
                tenant.managers.pop(user_id, None)
            else:
                self._set_manager(tenant, user_id, manager_id)

    @staticmethod
    def _set_manager(tenant: Tenant, user_id: str, manager_id: str) -> None:
        if manager_id not in tenant.users:
            raise KeyError(f"unknown manager {manager_id}")
        tenant.managers[user_id] = manager_id

    def assign_role(self, tenant_id: str, user_id: str, role_display_name: str) -> dict[str, Any]:
        """Make the user a member of the directory role (activating the role in the tenant)."""
        with self._lock:
            tenant = self._tenant(tenant_id)
            if user_id not in tenant.users:
                raise KeyError(f"unknown user {user_id}")
            role = tenant.roles.get(role_display_name)
            if role is None:
                role = DirectoryRole(
                    id=str(uuid.uuid4()),
                    display_name=role_display_name,
                    role_template_id=ROLE_TEMPLATES.get(role_display_name, str(uuid.uuid4())),
                    description=f"{role_display_name} (sandbox)",
                )
                tenant.roles[role_display_name] = role
            if user_id not in role.members:
                role.members.append(user_id)
            return role.to_graph()

    def set_app_role(self, tenant_id: str, role_display_name: str | None) -> None:
        """The directory role TierOne's service principal holds in this tenant (default
        "User Administrator"; None for no role, which makes every password reset a 403)."""
        with self._lock:
            self._tenant(tenant_id).app_role = role_display_name

    def smart_lockout(self, tenant_id: str, user_id: str) -> None:
        """Sandbox-only: mark the account as locked by smart lockout (an admin reset clears it)."""
        with self._lock:
            tenant = self._tenant(tenant_id)
            tenant.locked_out.add(self._user_id(tenant, user_id))

    # -- introspection -----------------------------------------------------------------------

    def user(self, tenant_id: str, user_id: str) -> dict[str, Any]:
        """All stored properties of a user (by id or UPN), whatever Graph would project."""
        with self._lock:
            tenant = self._tenant(tenant_id)
            return copy.deepcopy(tenant.users[self._user_id(tenant, user_id)])

    def users(self, tenant_id: str) -> list[dict[str, Any]]:
        with self._lock:
            return copy.deepcopy(list(self._tenant(tenant_id).users.values()))

    def password_of(self, tenant_id: str, user_id: str) -> str | None:
        """The last password set for the user (sandbox-only: Graph never reveals it)."""
        return self.password_profile(tenant_id, user_id).get("password")

    def password_profile(self, tenant_id: str, user_id: str) -> dict[str, Any]:
        """The last passwordProfile written (password and forceChange... flags); sandbox-only."""
        with self._lock:
            tenant = self._tenant(tenant_id)
            return dict(tenant.passwords[self._user_id(tenant, user_id)])

    def is_locked_out(self, tenant_id: str, user_id: str) -> bool:
        with self._lock:
            tenant = self._tenant(tenant_id)
            return self._user_id(tenant, user_id) in tenant.locked_out

    @property
    def request_log(self) -> list[RequestRecord]:
        with self._lock:
            return list(self._log)

    def clear_request_log(self) -> None:
        with self._lock:
            self._log.clear()

    @staticmethod
    def _user_id(tenant: Tenant, reference: str) -> str:
        """Seeding and introspection accept a user's id or UPN, like Graph's /users/{ref}."""
        user = tenant.find_user(reference)
        if user is None:
            raise KeyError(f"unknown user {reference}")
        return str(user["id"])

    def _tenant(self, tenant_id: str) -> Tenant:
        tenant = self._tenants.get(tenant_id.lower())
        if tenant is None:
            raise KeyError(f"unknown tenant {tenant_id}")
        return tenant

    # -- HTTP plumbing -----------------------------------------------------------------------

    def _build_app(self) -> Starlette:
        routes = [
            ("/v1.0/users", {"GET": self._list_users}),
            ("/v1.0/users/{ref}", {"GET": self._get_user, "PATCH": self._patch_user}),
            ("/v1.0/users/{ref}/manager", {"GET": self._get_manager}),
            ("/v1.0/users/{ref}/memberOf", {"GET": self._member_of}),
            ("/v1.0/users/{ref}/transitiveMemberOf", {"GET": self._member_of}),
            # Graph accepts the type cast with or without the "microsoft." namespace; kiota sends it without.
            *(
                (f"/v1.0/users/{{ref}}/{relation}/{cast}", {"GET": self._roles_of_user})
                for relation in ("memberOf", "transitiveMemberOf")
                for cast in ("microsoft.graph.directoryRole", "graph.directoryRole")
            ),
            ("/v1.0/users/{ref}/revokeSignInSessions", {"POST": self._revoke_sessions}),
            ("/v1.0/directoryRoles", {"GET": self._list_roles}),
            ("/v1.0/directoryRoles/{role}", {"GET": self._get_role}),
            ("/v1.0/directoryRoles/{role}/members", {"GET": self._role_members}),
            ("/v1.0/{rest:path}", {}),
        ]
        all_methods = ["GET", "POST", "PATCH", "PUT", "DELETE"]
        return Starlette(
            routes=[Route(path, self._endpoint(handlers), methods=all_methods) for path, handlers in routes]
        )

    def _endpoint(self, handlers: Mapping[str, Handler]) -> Callable[[Request], Awaitable[Response]]:
        async def endpoint(request: Request) -> Response:
            request_id = str(uuid.uuid4())
            client_request_id = request.headers.get("client-request-id") or request_id
            tenant_id, body = None, None
            try:
                latency = self.faults.latency_ms
                if latency:
                    await asyncio.sleep(latency / 1000)
                claims = self._authenticate(request)
                tenant_id = claims["tid"]
                body = await self._json_body(request)
                response = await self._dispatch(request, handlers, claims, body)
            except GraphError as error:
                response = error.response(request_id, client_request_id)
            response.headers["request-id"] = request_id
            response.headers["client-request-id"] = client_request_id
            self._record(request, tenant_id, response.status_code, request_id, client_request_id, body)
            return response

        return endpoint

    async def _dispatch(
        self, request: Request, handlers: Mapping[str, Handler], claims: dict[str, Any], body: Any
    ) -> Response:
        handler = handlers.get(request.method)
        if not handlers:
            segment = request.path_params.get("rest", "").rstrip("/").split("/")[-1]
            raise GraphError(400, "BadRequest", f"Resource not found for the segment '{segment}'.")
        if handler is None:
            raise GraphError(405, "Request_BadRequest", "Specified HTTP method is not allowed for the request target.")
        with self._lock:
            tenant = self._tenants.get(claims["tid"])
        if tenant is None:
            raise GraphError(
                401,
                "Authorization_IdentityNotFound",
                "The identity of the calling application could not be established.",
            )
        call = _Call(request, tenant, claims, body)
        fault = self.faults.take(request.method)
        if fault is not None and not fault.after_applying:
            raise fault.error(call.tenant.id, str(call.claims.get("appid")))
        response = await handler(call)
        if fault is not None:
            raise fault.error(call.tenant.id, str(call.claims.get("appid")))
        return response

    def _authenticate(self, request: Request) -> dict[str, Any]:
        header = request.headers.get("authorization", "")
        scheme, _, token = header.partition(" ")
        try:
            if scheme.lower() != "bearer":
                raise TokenRejected("Access token is empty.")
            claims = self.entra.verify_access_token(token.strip(), [GRAPH_RESOURCE, GRAPH_RESOURCE + "/", GRAPH_APP_ID])
            if not claims.get("tid"):
                raise TokenRejected("Access token validation failure.")
        except TokenRejected as exc:
            raise GraphError(
                401,
                "InvalidAuthenticationToken",
                str(exc),
                {
                    "WWW-Authenticate": 'Bearer realm="", authorization_uri="https://login.microsoftonline.com/'
                    f'common/oauth2/authorize", client_id="{GRAPH_APP_ID}"'
                },
            ) from exc
        return claims

    @staticmethod
    async def _json_body(request: Request) -> Any:
        if request.method not in ("POST", "PATCH", "PUT"):
            return None
        raw = await request.body()
        if not raw:
            return None
        try:
            return json.loads(raw)
        except ValueError as exc:
            raise GraphError(
                400,
                "BadRequest",
                "Unable to read JSON request payload. Please ensure Content-Type header is set and payload "
                "is of valid JSON format.",
            ) from exc

    def _record(
        self, request: Request, tenant_id: str | None, status: int, request_id: str, client_request_id: str, body: Any
    ) -> None:
        record = RequestRecord(
            tenant_id=tenant_id,
            method=request.method,
            path=request.url.path,
            query=request.url.query,
            status=status,
            request_id=request_id,
            client_request_id=client_request_id,
            body=_redact(body),
        )
        with self._lock:
            self._log.append(record)

    # -- responses ---------------------------------------------------------------------------

    @staticmethod
    def _base(call: _Call) -> str:
        return str(call.request.base_url).rstrip("/") + "/v1.0"

    @staticmethod
    def _json(body: Mapping[str, Any], status: int = 200) -> Response:
        return JSONResponse(dict(body), status_code=status, media_type=ODATA_JSON, headers={"OData-Version": "4.0"})

    @staticmethod
    def _selection(call: _Call) -> list[str] | None:
        raw = _query(call.request, "select")
        if raw is None:
            return None
        selected = [p.strip() for p in raw.split(",") if p.strip()]
        for prop in selected:
            if prop not in _SELECTABLE_USER_PROPERTIES:
                raise GraphError(
                    400, "BadRequest", f"Could not find a property named '{prop}' on type 'microsoft.graph.user'."
                )
        return selected

    @staticmethod
    def _project(user: Mapping[str, Any], selected: list[str] | None) -> dict[str, Any]:
        return {prop: copy.deepcopy(user.get(prop)) for prop in (selected or DEFAULT_USER_PROPERTIES)}

    def _context(self, entity_set: str, selected: list[str] | None, suffix: str = "") -> str:
        projection = f"({','.join(selected)})" if selected else ""
        return f"{PUBLIC_GRAPH}/$metadata#{entity_set}{projection}{suffix}"

    def _find(self, call: _Call) -> dict[str, Any]:
        reference = call.request.path_params["ref"]
        with self._lock:
            user = call.tenant.find_user(reference)
        if user is None:
            raise _not_found(reference)
        return user

    # -- users -------------------------------------------------------------------------------

    async def _get_user(self, call: _Call) -> Response:
        call.require(_READ_USERS)
        selected = self._selection(call)
        with self._lock:
            body = self._project(self._find(call), selected)
        return self._json({"@odata.context": self._context("users", selected, "/$entity"), **body})

    async def _list_users(self, call: _Call) -> Response:
        call.require(_READ_USERS)
        selected = self._selection(call)
        page_size = self._page_size(call)
        offset = _decode_skiptoken(_query(call.request, "skiptoken"))
        raw_filter = _query(call.request, "filter")
        predicate = parse_user_filter(raw_filter) if raw_filter else None
        with self._lock:
            matches = [u for u in call.tenant.users.values() if predicate is None or predicate(u)]
            page = [self._project(u, selected) for u in matches[offset : offset + page_size]]
        body: dict[str, Any] = {"@odata.context": self._context("users", selected), "value": page}
        if offset + page_size < len(matches):
            body["@odata.nextLink"] = self._next_link(call, offset + page_size)
        return self._json(body)

    @staticmethod
    def _page_size(call: _Call) -> int:
        raw = _query(call.request, "top")
        if raw is None:
            return DEFAULT_PAGE_SIZE
        if not raw.isdigit() or not 1 <= int(raw) <= MAX_PAGE_SIZE:
            raise GraphError(
                400,
                "Request_BadRequest",
                f"Invalid page size specified: '{raw}'. Must be between 1 and {MAX_PAGE_SIZE} inclusive.",
            )
        return int(raw)

    def _next_link(self, call: _Call, offset: int) -> str:
        params = [(k, v) for k, v in call.request.query_params.multi_items() if k.lstrip("$") != "skiptoken"]
        params.append(("$skiptoken", _encode_skiptoken(offset)))
        return f"{self._base(call)}/users?{urlencode(params)}"

    async def _patch_user(self, call: _Call) -> Response:
        body = call.body
        if not isinstance(body, dict):
            raise GraphError(400, "BadRequest", "Empty Payload. JSON content expected.")
        changes = {k: v for k, v in body.items() if not k.startswith("@odata.")}
        with self._lock:
            user = self._find(call)
            self._check_patch(call, user, changes)
            self._apply_patch(call.tenant, user, changes)
        return Response(status_code=204)

    def _check_patch(self, call: _Call, user: Mapping[str, Any], changes: Mapping[str, Any]) -> None:
        unknown = [k for k in changes if k not in _SELECTABLE_USER_PROPERTIES]
        if unknown:
            raise GraphError(400, "Request_BadRequest", f"Invalid property '{unknown[0]}'.")
        read_only = [k for k in changes if k in _READ_ONLY_USER_PROPERTIES]
        if read_only:
            raise GraphError(400, "Request_BadRequest", f"Property '{read_only[0]}' is read-only and cannot be set.")
        for prop in changes:
            call.require(_permissions_for_property(prop))
        if "passwordProfile" in changes and call.tenant.app_role not in RESETTABLE_BY:
            raise _denied()
        if _SENSITIVE_USER_PROPERTIES.intersection(changes) or "passwordProfile" in changes:
            self._check_role_hierarchy(call.tenant, user["id"])
        if user.get("onPremisesSyncEnabled") and _SYNC_MASTERED_PROPERTIES.intersection(changes):
            raise GraphError(400, "Request_BadRequest", MSG_SYNCED_OBJECT)
        if "passwordProfile" in changes:
            _check_password_profile(changes["passwordProfile"], user)

    @staticmethod
    def _check_role_hierarchy(tenant: Tenant, target_id: str) -> None:
        """403 when the target holds a role the app's own role may not act on."""
        target_roles = {role.display_name for role in tenant.roles_of(target_id)}
        if not target_roles:
            return
        allowed = RESETTABLE_BY.get(tenant.app_role or "", frozenset())
        if allowed is not None and not target_roles <= allowed:
            raise _denied()

    @staticmethod
    def _apply_patch(tenant: Tenant, user: dict[str, Any], changes: Mapping[str, Any]) -> None:
        for prop, value in changes.items():
            if prop == "passwordProfile":
                profile = {k: v for k, v in value.items() if not k.startswith("@odata.")}
                tenant.passwords[user["id"]] = {**tenant.passwords.get(user["id"], {}), **profile}
                if profile.get("password") is not None:
                    user["lastPasswordChangeDateTime"] = _now()
                    tenant.locked_out.discard(user["id"])  # an admin reset unlocks smart lockout
            else:
                user[prop] = copy.deepcopy(value)

    async def _revoke_sessions(self, call: _Call) -> Response:
        call.require(_REVOKE_SESSIONS)
        with self._lock:
            user = self._find(call)
            self._check_role_hierarchy(call.tenant, user["id"])
            user["signInSessionsValidFromDateTime"] = _now()
        return self._json({"@odata.context": f"{PUBLIC_GRAPH}/$metadata#Edm.Boolean", "value": True})

    async def _get_manager(self, call: _Call) -> Response:
        call.require(_READ_USERS)
        selected = self._selection(call)
        with self._lock:
            user = self._find(call)
            manager_id = call.tenant.managers.get(user["id"])
            manager = call.tenant.users.get(manager_id) if manager_id else None
            if manager is None:
                raise _not_found("manager")
            body = self._project(manager, selected)
        return self._json(
            {
                "@odata.context": f"{PUBLIC_GRAPH}/$metadata#directoryObjects/$entity",
                "@odata.type": "#microsoft.graph.user",
                **body,
            }
        )

    async def _member_of(self, call: _Call) -> Response:
        # Only directory roles exist in the sandbox's directory, so memberOf lists exactly those.
        call.require(_READ_USERS)
        with self._lock:
            roles = [role.to_graph() for role in call.tenant.roles_of(self._find(call)["id"])]
        return self._json({"@odata.context": f"{PUBLIC_GRAPH}/$metadata#directoryObjects", "value": roles})

    async def _roles_of_user(self, call: _Call) -> Response:
        call.require(_READ_USERS)
        with self._lock:
            roles = [role.to_graph() for role in call.tenant.roles_of(self._find(call)["id"])]
        return self._json({"@odata.context": f"{PUBLIC_GRAPH}/$metadata#directoryRoles", "value": roles})

    # -- directory roles ---------------------------------------------------------------------

    async def _list_roles(self, call: _Call) -> Response:
        call.require(_READ_ROLES)
        with self._lock:
            roles = [role.to_graph() for role in call.tenant.roles.values()]
        return self._json({"@odata.context": f"{PUBLIC_GRAPH}/$metadata#directoryRoles", "value": roles})

    def _find_role(self, call: _Call) -> DirectoryRole:
        reference = call.request.path_params["role"]
        match = re.fullmatch(r"roleTemplateId=['\"]?([0-9a-fA-F-]+)['\"]?", reference)
        with self._lock:
            for role in call.tenant.roles.values():
                if role.id == reference.lower() or (match and role.role_template_id == match.group(1).lower()):
                    return role
        raise _not_found(reference)

    async def _get_role(self, call: _Call) -> Response:
        call.require(_READ_ROLES)
        role = self._find_role(call)
        return self._json({"@odata.context": f"{PUBLIC_GRAPH}/$metadata#directoryRoles/$entity", **role.to_graph()})

    async def _role_members(self, call: _Call) -> Response:
        call.require(_READ_ROLES)
        role = self._find_role(call)
        with self._lock:
            members = [
                {"@odata.type": "#microsoft.graph.user", **self._project(call.tenant.users[m], None)}
                for m in role.members
                if m in call.tenant.users
            ]
        return self._json({"@odata.context": f"{PUBLIC_GRAPH}/$metadata#directoryObjects", "value": members})


# --------------------------------------------------------------------------------------------
# Helpers
# --------------------------------------------------------------------------------------------


def _query(request: Request, name: str) -> str | None:
    """An OData system query option; Graph v1.0 accepts it with or without the `$`."""
    params = request.query_params
    return params.get(f"${name}", params.get(name))


def _encode_skiptoken(offset: int) -> str:
    return base64.urlsafe_b64encode(f"RFNwdAIA:{offset}".encode()).decode("ascii").rstrip("=")


def _decode_skiptoken(token: str | None) -> int:
    if token is None:
        return 0
    try:
        decoded = base64.urlsafe_b64decode(token + "=" * (-len(token) % 4)).decode("ascii")
        prefix, _, offset = decoded.partition(":")
        if prefix != "RFNwdAIA" or not offset.isdigit():
            raise ValueError(decoded)
        return int(offset)
    except ValueError as exc:
        raise GraphError(400, "Request_BadRequest", "Invalid value for $skiptoken.") from exc


def _permissions_for_property(prop: str) -> frozenset[str]:
    if prop == "passwordProfile":
        return _WRITE_PASSWORD
    if prop == "accountEnabled":
        return _WRITE_ENABLED
    return _WRITE_USERS


def _check_password_profile(profile: Any, user: Mapping[str, Any]) -> None:
    if not isinstance(profile, dict):
        raise GraphError(
            400, "Request_BadRequest", "Invalid value specified for property 'passwordProfile' of resource 'User'."
        )
    password = profile.get("password")
    if password is not None and (not isinstance(password, str) or password_problem(password, user)):
        raise GraphError(400, "Request_BadRequest", MSG_PASSWORD_COMPLEXITY)


def _redact(body: Any) -> Any:
    """Request bodies for the log, with any password replaced (logs must not hold secrets)."""
    if isinstance(body, dict):
        return {k: ("***" if k.lower() in ("password", "newpassword") else _redact(v)) for k, v in body.items()}
    if isinstance(body, list):
        return [_redact(v) for v in body]
    return body

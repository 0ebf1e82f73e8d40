"""HaloPSA REST client: OAuth2 client credentials (`scope=all`, `?tenant=` for hosted instances),
JSON-array POSTs that create or update, `pageinate` paging, and Halo's low hosted rate limit.

Halo facts this module relies on (psa.md §3) and the assumptions it makes where nothing is verified:
- `GET /api/authinfo` names the token endpoint (`{auth_url}/token`); older or on-premises instances
  without it use `{HALOPSA_URL}/auth/token`.
- A POST of a one-element array answers the saved record as an object; a list is accepted too.
- Actions need an outcome; `hiddenfromuser` decides who sees a note.
- Time lives on actions as `timetaken`, ASSUMED to be hours as a decimal (a captured UI action
  shows 0.0085 for a half-minute timer). Each time entry is at least one minute so that it is
  always found again by `list_time_entries` (actions with `timetaken` > 0).
- Hosted Halo allows about 300 requests per rolling five minutes. Each process keeps a budget
  below that, and a 429 means "come back in at least 30 s": a short sleep only spends another
  request inside the same rolling window.
"""

from __future__ import annotations

import asyncio
import hashlib
import html
import logging
import re
import threading
import time
from collections import deque
from collections.abc import AsyncGenerator, Awaitable, Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from html.parser import HTMLParser
from typing import Any
from urllib.parse import quote, urlsplit

import httpx

from psa_integrations.http import MAX_RETRY_AFTER_SECONDS, retry_after_seconds, send
from psa_integrations.models import ClosedTicket, Company, Contact, Note, NoteVisibility, PsaKind, Ticket, TimeEntry
from tierone.errors import PermanentError, TransientError
from tierone.settings import Settings

log = logging.getLogger("tierone.psa.halopsa")

VENDOR = "HaloPSA"
PAGE_SIZE = 100  # Halo's documented maximum page size
MAX_PAGES = 50
DEFAULT_RATE_LIMIT = 300
DEFAULT_RATE_WINDOW_S = 300.0
DEFAULT_THROTTLE_BACKOFF_S = 60.0
TOKEN_MARGIN_S = 60.0
MIN_TIME_HOURS = 1 / 60
# The Azure AD connection type CIPP's auto-mapping reads (the multi-tenant Microsoft 365 link).
AZURE_AD_CONNECTION_TYPE = 2
# Halo's `datesearch` takes the column name; its own documentation spells "date opened" this way.
DATE_OPENED = "dateoccured"
DATE_CLOSED = "datecleared"

JSON = dict[str, Any]


# ---------------------------------------------------------------------------------------------
# HTML <-> text: Halo stores ticket details and notes as HTML
# ---------------------------------------------------------------------------------------------

# Markup Halo's editor produces; a bare "<world>" in plain text is not a reason to parse.
_HTML_RE = re.compile(
    r"</?(p|br|div|span|b|i|u|s|strong|em|ul|ol|li|table|tbody|tr|td|th|a|img|font|pre|blockquote|h[1-6])\b[^>]*>",
    re.IGNORECASE,
)
_BLOCK_TAGS = frozenset({"p", "div", "br", "li", "tr", "h1", "h2", "h3", "h4", "h5", "h6", "blockquote", "pre"})


class _TextExtractor(HTMLParser):
    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.parts: list[str] = []
        self._skipping = 0

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag in ("script", "style"):
            self._skipping += 1
        elif tag == "br" or (tag in _BLOCK_TAGS and self.parts):
            self.parts.append("\n")

    def handle_endtag(self, tag: str) -> None:
        if tag in ("script", "style"):
            self._skipping = max(0, self._skipping - 1)
        elif tag in _BLOCK_TAGS and tag != "br":
            self.parts.append("\n")

    def handle_data(self, data: str) -> None:
        if not self._skipping:
            self.parts.append(data)


def html_to_text(markup: str) -> str:
    """Readable text from Halo's HTML (`details_html`, `note_html`)."""
    parser = _TextExtractor()
    parser.feed(markup)
    parser.close()
    lines = [line.rstrip() for line in "".join(parser.parts).replace("\xa0", " ").splitlines()]
    return re.sub(r"\n{3,}", "\n\n", "\n".join(lines)).strip()


def readable(text: str) -> str:
    """A field meant as plain text (`details`, `note`) that some Halo versions fill with HTML."""
    return html_to_text(text) if _HTML_RE.search(text) else text.strip()


def text_to_html(text: str) -> str:
    return html.escape(text, quote=False).replace("\r\n", "\n").replace("\n", "<br>")


def halo_time(moment: datetime) -> str:
    """Halo reads query dates as UTC unless told an offset (`utcoffset`)."""
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S")


def parse_halo_time(value: Any) -> datetime | None:
    if not isinstance(value, str) or not value:
        return None
    try:
        moment = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return None
    # Halo emits UTC, sometimes without a zone designator.
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


# ---------------------------------------------------------------------------------------------
# Per-process state shared by every client of one Halo instance and app
# ---------------------------------------------------------------------------------------------


class RateBudget:
    """A rolling-window request budget. Thread-safe: Functions may run clients on several loops."""

    def __init__(self, limit: int, window_s: float, clock: Callable[[], float] = time.monotonic) -> None:
        self.limit = limit
        self.window_s = window_s
        self._clock = clock
        self._sent: deque[float] = deque()
        self._lock = threading.Lock()

    def reserve(self) -> float:
        """Take a slot and return 0, or take nothing and return the seconds until a slot frees."""
        with self._lock:
            now = self._clock()
            while self._sent and now - self._sent[0] >= self.window_s:
                self._sent.popleft()
            if len(self._sent) < self.limit:
                self._sent.append(now)
                return 0.0
            return self._sent[0] + self.window_s - now

    async def acquire(self, max_wait_s: float) -> None:
        while (wait := self.reserve()) > 0:
            if wait > max_wait_s:
                raise TransientError(f"{VENDOR} request budget spent for {wait:.0f}s", retry_after=wait)
            await asyncio.sleep(wait)


@dataclass
class _Shared:
    budget: RateBudget
    token: str | None = None
    token_expires_at: float = 0.0
    token_url: str | None = None
    lock: threading.Lock = field(default_factory=threading.Lock)

    def valid_token(self, stale: str | None) -> str | None:
        with self.lock:
            if self.token and self.token != stale and time.monotonic() < self.token_expires_at:
                return self.token
            return None

    def keep_token(self, token: str, expires_in: float) -> None:
        # Refresh a little before Halo expires it, so a request never carries a dying token.
        margin = min(TOKEN_MARGIN_S, expires_in / 2)
        with self.lock:
            self.token = token
            self.token_expires_at = time.monotonic() + expires_in - margin


_shared: dict[tuple[Any, ...], _Shared] = {}
_shared_lock = threading.Lock()


def _shared_state(key: tuple[Any, ...], limit: int, window_s: float) -> _Shared:
    with _shared_lock:
        state = _shared.get(key)
        if state is None:
            state = _shared[key] = _Shared(RateBudget(limit, window_s))
        return state


def clear_shared_state() -> None:
    """Forget cached tokens, token URLs and request budgets (tests; after changing credentials)."""
    with _shared_lock:
        _shared.clear()


# ---------------------------------------------------------------------------------------------
# Transport and auth
# ---------------------------------------------------------------------------------------------


class _HaloTransport(httpx.AsyncBaseTransport):
    """Spends the rate budget on API requests and stretches every 429 to Halo's real back-off."""

    def __init__(
        self, inner: httpx.AsyncBaseTransport, budget: RateBudget, api_prefix: str, throttle_backoff_s: float
    ) -> None:
        self._inner = inner
        self._budget = budget
        self._api_prefix = api_prefix
        self._backoff = throttle_backoff_s

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        if request.url.path.lower().startswith(self._api_prefix):
            await self._budget.acquire(MAX_RETRY_AFTER_SECONDS)
        response = await self._inner.handle_async_request(request)
        if response.status_code == 429:
            # psa_integrations.http turns a wait above its in-call cap into a TransientError, so the
            # queue message comes back after the window has rolled on instead of hammering Halo.
            wait = max(retry_after_seconds(response) or 0.0, self._backoff)
            response.headers["Retry-After"] = f"{wait:g}"
        return response

    async def aclose(self) -> None:
        await self._inner.aclose()


class _BearerAuth(httpx.Auth):
    """Adds the cached token; on a 401 fetches a fresh one and tries once more."""

    def __init__(self, token: Callable[[str | None], Awaitable[str]]) -> None:
        self._token = token

    async def async_auth_flow(self, request: httpx.Request) -> AsyncGenerator[httpx.Request, httpx.Response]:
        token = await self._token(None)
        request.headers["Authorization"] = f"Bearer {token}"
        response = yield request
        if response.status_code == 401:
            # Expired early or revoked: a 401 means Halo applied nothing, so even a write may repeat.
            request.headers["Authorization"] = f"Bearer {await self._token(token)}"
            yield request


# ---------------------------------------------------------------------------------------------
# The client
# ---------------------------------------------------------------------------------------------


def _ticket_number(ticket_id: str) -> int:
    try:
        return int(ticket_id)
    except (TypeError, ValueError):
        raise PermanentError(f"{ticket_id!r} is not a HaloPSA ticket id") from None


def _records(body: Any, key: str) -> list[JSON]:
    """Halo lists come as {"record_count", "<key>": [...]} or, for small lookups, as a bare array."""
    rows = body.get(key) if isinstance(body, dict) else body
    return [row for row in rows or [] if isinstance(row, dict)]


def _plain(record: JSON, name: str) -> str:
    """`name` as text, else `name_html` stripped of its markup."""
    text = record.get(name)
    if isinstance(text, str) and text.strip():
        return readable(text)
    markup = record.get(f"{name}_html")
    return html_to_text(markup) if isinstance(markup, str) else ""


def _optional_int(value: Any) -> int | None:
    try:
        return int(value) if value is not None else None
    except (TypeError, ValueError):
        return None


def _unambiguous(mappings: list[JSON]) -> list[tuple[str, str, str]]:
    names: dict[str, str] = {}
    tenants: dict[str, set[str]] = {}
    for mapping in mappings:
        client_id = str(mapping.get("client_id"))
        names.setdefault(client_id, str(mapping.get("client_name") or ""))
        tenants.setdefault(client_id, set()).add(str(mapping.get("azure_tenant_id")).strip().lower())
    ambiguous = sorted(cid for cid, found in tenants.items() if len(found) > 1)
    if ambiguous:
        log.warning("HaloPSA clients %s map to several tenants; map them with `tierone tenants map`", ambiguous)
    return [(cid, names[cid], next(iter(found))) for cid, found in tenants.items() if len(found) == 1]


class HaloClient:
    kind = PsaKind.HALOPSA

    def __init__(
        self,
        settings: Settings,
        *,
        transport: httpx.AsyncBaseTransport | None = None,
        rate_limit: int = DEFAULT_RATE_LIMIT,
        rate_window_s: float = DEFAULT_RATE_WINDOW_S,
        throttle_backoff_s: float = DEFAULT_THROTTLE_BACKOFF_S,
    ) -> None:
        settings.require("halopsa_url", "halopsa_client_id", "halopsa_client_secret")
        assert settings.halopsa_url is not None
        assert settings.halopsa_client_secret is not None
        self._settings = settings
        self._base = settings.halopsa_url.rstrip("/").removesuffix("/api")
        self._secret = settings.halopsa_client_secret.get_secret_value()
        fingerprint = hashlib.sha256(self._secret.encode()).hexdigest()
        key = (self._base.lower(), settings.halopsa_tenant, settings.halopsa_client_id, fingerprint, rate_limit)
        self._shared = _shared_state(key, rate_limit, rate_window_s)
        api_prefix = (urlsplit(self._base).path.rstrip("/") + "/api/").lower()
        self._http = httpx.AsyncClient(
            base_url=self._base + "/",
            headers={"Accept": "application/json"},
            timeout=httpx.Timeout(20.0, connect=5.0),
            transport=_HaloTransport(
                transport or httpx.AsyncHTTPTransport(), self._shared.budget, api_prefix, throttle_backoff_s
            ),
        )
        self._auth = _BearerAuth(self._token)
        self._status_names: dict[int, str] | None = None
        # The ticket as last read or saved: every run starts by reading its ticket (get_ticket), so
        # within a run it is current enough to know the status and team, and every call saved counts
        # against Halo's low limit.
        self._read: dict[int, JSON] = {}
        self._tenant_rows: list[tuple[str, str, str]] | None = None

    async def aclose(self) -> None:
        await self._http.aclose()

    # -- auth ----------------------------------------------------------------------------------

    async def _token_url(self) -> str:
        if self._shared.token_url:
            return self._shared.token_url
        info: JSON = {}
        try:
            body = (await send(self._http, "GET", "api/authinfo", vendor=VENDOR)).json()
            info = body if isinstance(body, dict) else {}
        except (PermanentError, ValueError):
            log.info("HaloPSA has no usable /api/authinfo; using %s/auth/token", self._base)
        auth_url = info.get("auth_url")
        endpoint = f"{self._base}/auth/token"
        if isinstance(auth_url, str) and self._trusted_auth_url(auth_url):
            endpoint = auth_url.rstrip("/") + "/token"
        tenant = self._settings.halopsa_tenant or info.get("tenant_id")
        url = f"{endpoint}?tenant={quote(str(tenant), safe='')}" if tenant else endpoint
        self._shared.token_url = url
        return url

    def _trusted_auth_url(self, auth_url: str) -> bool:
        """The client secret goes there: only over HTTPS, or to the configured instance itself."""
        parts, base = urlsplit(auth_url), urlsplit(self._base)
        same_origin = (parts.scheme, parts.netloc.lower()) == (base.scheme, base.netloc.lower())
        return parts.scheme == "https" or same_origin

    async def _token(self, stale: str | None) -> str:
        cached = self._shared.valid_token(stale)
        if cached:
            return cached
        form = {
            "grant_type": "client_credentials",
            "client_id": self._settings.halopsa_client_id or "",
            "client_secret": self._secret,
            "scope": "all",
        }
        response = await send(self._http, "POST", await self._token_url(), vendor=VENDOR, data=form)
        try:
            body = response.json()
            token = str(body["access_token"])
            expires_in = float(body.get("expires_in") or 3600)
        except (ValueError, KeyError, TypeError):
            raise PermanentError("HaloPSA token response has no access_token") from None
        self._shared.keep_token(token, expires_in)
        return token

    # -- plumbing ------------------------------------------------------------------------------

    async def call(self, method: str, path: str, *, params: JSON | None = None, json: Any = None) -> Any:
        """One API call under /api, with the shared retry rules; the decoded JSON body (or None)."""
        kwargs: JSON = {"params": params, "auth": self._auth}
        if json is not None:
            kwargs["json"] = json
        response = await send(self._http, method, f"api/{path.lstrip('/')}", vendor=VENDOR, **kwargs)
        if not response.content:
            return None
        try:
            return response.json()
        except ValueError:
            raise PermanentError(f"{VENDOR} {method} /api/{path} answered something other than JSON") from None

    async def save(self, entity: str, record: JSON) -> JSON:
        """Create (no id) or update (with id): Halo takes a JSON array and answers the saved record."""
        body = await self.call("POST", entity, json=[record])
        if isinstance(body, list):
            body = body[0] if body else None
        if not isinstance(body, dict):
            raise PermanentError(f"{VENDOR} POST /api/{entity} answered no record")
        return body

    async def _paged(self, entity: str, key: str, params: JSON) -> list[JSON]:
        """Follow page numbers until `record_count` rows or a short page have arrived."""
        rows: list[JSON] = []
        for page in range(1, MAX_PAGES + 1):
            query = {**params, "pageinate": "true", "page_size": PAGE_SIZE, "page_no": page}
            body = await self.call("GET", entity, params=query)
            batch = _records(body, key)
            rows.extend(batch)
            total = _optional_int(body.get("record_count")) if isinstance(body, dict) else None
            if not batch or len(batch) < PAGE_SIZE or (total is not None and len(rows) >= total):
                return rows
        # A server that ignored page_no would otherwise keep this loop (and the rate budget) busy.
        log.warning("HaloPSA %s: stopped after %d pages", entity, MAX_PAGES)
        return rows

    async def statuses(self) -> dict[int, str]:
        if self._status_names is None:
            rows = _records(await self.call("GET", "Status"), "statuses")
            self._status_names = {int(row["id"]): str(row.get("name") or "") for row in rows if "id" in row}
        return self._status_names

    # -- tickets -------------------------------------------------------------------------------

    async def get_ticket(self, ticket_id: str) -> Ticket:
        number = _ticket_number(ticket_id)
        raw = await self.call("GET", f"Tickets/{number}", params={"includedetails": "true"})
        if not isinstance(raw, dict):
            raise PermanentError(f"{VENDOR} ticket {number} answered no record")
        self._read[number] = raw
        status_name = raw.get("status_name")
        if not status_name and raw.get("status_id") is not None:
            status_name = (await self.statuses()).get(int(raw["status_id"]))
        return Ticket(
            psa=PsaKind.HALOPSA,
            id=str(raw.get("id", number)),
            summary=raw.get("summary") or "",
            description=_plain(raw, "details"),
            company=Company(id=str(raw.get("client_id")), name=raw.get("client_name") or ""),
            contact=await self._contact(raw),
            board_name=raw.get("team") or None,
            status_name=status_name,
            closed=bool(raw.get("hasbeenclosed")),
            created_at=parse_halo_time(raw.get("dateoccurred")),
        )

    async def _contact(self, raw: JSON) -> Contact | None:
        """The Users record, not the ticket's copy, names the requester's address."""
        user_id = _optional_int(raw.get("user_id"))
        if not user_id or user_id < 0:
            return None
        user = await self.call("GET", f"Users/{user_id}")
        user = user if isinstance(user, dict) else {}
        email = user.get("emailaddress") or raw.get("user_email") or None
        return Contact(id=str(user_id), name=user.get("name") or raw.get("user_name") or "", email=email)

    async def list_ticket_ids_created_since(self, since: datetime) -> list[str]:
        rows = await self._paged(
            "Tickets",
            "tickets",
            {"datesearch": DATE_OPENED, "startdate": halo_time(since), "order": "id", "orderdesc": "false"},
        )
        ids = sorted({int(row["id"]) for row in rows if _optional_int(row.get("id")) is not None})
        return [str(ticket_id) for ticket_id in ids]

    async def list_closed_tickets(self, since: datetime, limit: int) -> list[ClosedTicket]:
        """Closed tickets with their ticket type, category path and closure note (for `tierone learn`).

        The list carries type and category; the closure note needs the ticket itself, one call each.
        Halo allows about 300 calls per five minutes: when the budget runs out, the remaining tickets
        are returned without their closure notes rather than failing the whole run."""
        rows: list[JSON] = []
        for page in range(1, MAX_PAGES + 1):
            query = {
                "closed_only": "true",
                "datesearch": DATE_CLOSED,
                "startdate": halo_time(since),
                "order": "dateclosed",
                "orderdesc": "true",
                "pageinate": "true",
                "page_size": PAGE_SIZE,
                "page_no": page,
            }
            batch = _records(await self.call("GET", "Tickets", params=query), "tickets")
            rows.extend(batch)
            if len(batch) < PAGE_SIZE or len(rows) >= limit:
                break
        found: list[ClosedTicket] = []
        budget_left = True
        for row in rows[:limit]:
            note = ""
            if budget_left:
                try:
                    detail = await self.call("GET", f"Tickets/{int(row['id'])}")
                    note = _plain(detail, "closure_note") if isinstance(detail, dict) else ""
                except TransientError as exc:
                    log.warning("HaloPSA closure notes skipped from ticket %s on: %s", row.get("id"), exc)
                    budget_left = False
            category = str(row.get("category_1") or "")
            found.append(
                ClosedTicket(
                    psa=PsaKind.HALOPSA,
                    id=str(row["id"]),
                    summary=row.get("summary") or "",
                    description=_plain(row, "details"),
                    categories=[
                        part.strip()
                        for part in [str(row.get("tickettype_name") or ""), *category.split(">")]
                        if part.strip()
                    ],
                    resolution=note,
                    closed_at=parse_halo_time(row.get("dateclosed")),
                )
            )
        return found

    # -- actions: notes and time ---------------------------------------------------------------

    async def _actions(self, ticket_id: str) -> list[JSON]:
        body = await self.call("GET", "Actions", params={"ticket_id": _ticket_number(ticket_id)})
        return _records(body, "actions")

    @staticmethod
    def _action_text(row: JSON) -> str:
        return _plain(row, "note")

    async def list_notes(self, ticket_id: str) -> list[Note]:
        return [
            Note(id=str(row["id"]), text=self._action_text(row), internal=bool(row.get("hiddenfromuser")))
            for row in await self._actions(ticket_id)
            if "id" in row
        ]

    async def add_note(self, ticket_id: str, text: str, visibility: NoteVisibility) -> Note:
        internal = visibility is NoteVisibility.INTERNAL
        action = await self.save("Actions", self._action(ticket_id, text, internal=internal))
        return Note(id=str(action.get("id")), text=self._action_text(action) or text, internal=internal)

    def _action(self, ticket_id: str, text: str, *, internal: bool) -> JSON:
        return {
            "ticket_id": _ticket_number(ticket_id),
            "outcome_id": self._settings.halopsa_note_outcome_id,  # Halo refuses an action without one
            "note_html": text_to_html(text),
            "hiddenfromuser": internal,
            "sendemail": not internal,  # a customer-visible note also reaches the user by e-mail
        }

    async def list_time_entries(self, ticket_id: str) -> list[TimeEntry]:
        return [
            TimeEntry(id=str(row["id"]), notes=self._action_text(row))
            for row in await self._actions(ticket_id)
            if "id" in row and (row.get("timetaken") or 0) > 0
        ]

    async def add_time_entry(self, ticket_id: str, start: datetime, end: datetime, notes: str) -> TimeEntry:
        hours = max((end - start).total_seconds() / 3600, MIN_TIME_HOURS)
        record = {**self._action(ticket_id, notes, internal=True), "timetaken": round(hours, 6)}
        record["actisbillable"] = True
        action = await self.save("Actions", record)
        return TimeEntry(id=str(action.get("id")), notes=self._action_text(action) or notes)

    # -- status and team -----------------------------------------------------------------------

    async def close_ticket(self, ticket_id: str) -> str:
        number = _ticket_number(ticket_id)
        closed_id = self._settings.halopsa_closed_status_id
        name = (await self.statuses()).get(closed_id)
        if name is None:
            raise PermanentError(f"HaloPSA has no status {closed_id} (HALOPSA_CLOSED_STATUS_ID)")
        if (await self._ticket(number)).get("status_id") == closed_id:
            return name
        saved = self._read[number] = await self.save("Tickets", {"id": number, "status_id": closed_id})
        if _optional_int(saved.get("status_id")) not in (None, closed_id):
            # Workflow rules can keep a ticket open; Halo then answers the ticket as it stayed.
            raise PermanentError(f"HaloPSA kept ticket {number} in status {saved.get('status_id')} instead of {name}")
        return name

    async def escalate_ticket(self, ticket_id: str) -> str | None:
        wanted = self._settings.halopsa_escalation_team
        if not wanted:
            return None
        teams = _records(await self.call("GET", "Team"), "teams")
        team = next((t for t in teams if str(t.get("name", "")).lower() == wanted.lower()), None)
        if team is None:
            log.warning("escalation team %r does not exist in HaloPSA; ticket left with its team", wanted)
            return None
        name = str(team["name"])
        number = _ticket_number(ticket_id)
        if str((await self._ticket(number)).get("team") or "").lower() == name.lower():
            return name
        self._read[number] = await self.save("Tickets", {"id": number, "team": name})
        return name

    async def _ticket(self, number: int) -> JSON:
        if number not in self._read:
            raw = await self.call("GET", f"Tickets/{number}")
            self._read[number] = raw if isinstance(raw, dict) else {}
        return self._read[number]

    # -- tenant mapping ------------------------------------------------------------------------

    async def list_tenant_mappings(self) -> list[tuple[str, str, str]]:
        """(client id, client name, Entra tenant id) from Halo's Azure AD connection mappings.

        A client mapped to more than one tenant is left out: TierOne must not guess between them."""
        if self._tenant_rows is None:
            self._tenant_rows = _unambiguous(await self._client_mappings())
        return list(self._tenant_rows)

    async def _client_mappings(self) -> list[JSON]:
        connections = _records(
            await self.call("GET", "AzureADConnection", params={"type": AZURE_AD_CONNECTION_TYPE}), "connections"
        )
        found: list[JSON] = []
        for connection in connections:
            connection_id = _optional_int(connection.get("id"))
            if connection_id is None:
                continue
            detail = await self.call(
                "GET",
                f"AzureADConnection/{connection_id}",
                params={"includedetails": "true", "includetenants": "true"},
            )
            mappings = detail.get("mappings_client") if isinstance(detail, dict) else None
            found.extend(
                m
                for m in mappings or []
                if isinstance(m, dict) and m.get("client_id") is not None and m.get("azure_tenant_id")
            )
        return found

    async def tenant_hint(self, company_id: str) -> str | None:
        return next((tenant for cid, _, tenant in await self.list_tenant_mappings() if cid == str(company_id)), None)

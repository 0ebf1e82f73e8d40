"""ConnectWise PSA REST client (API member keys; `clientId` header; pinned API version)."""

from __future__ import annotations

import asyncio
import base64
import logging
from datetime import UTC, datetime
from typing import Any

import httpx

from psa_integrations.http import send
from psa_integrations.models import ClosedTicket, Company, Contact, Note, NoteVisibility, PsaKind, Ticket, TimeEntry
from tierone.errors import PermanentError
from tierone.settings import Settings

log = logging.getLogger("tierone.psa.connectwise")

VENDOR = "ConnectWise"


def cw_time(moment: datetime) -> str:
    """ConnectWise rejects milliseconds and zone-less times: exactly YYYY-MM-DDTHH:MM:SSZ."""
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _name_of(record: dict[str, Any] | None) -> str | None:
    return None if not record else record.get("name")


class ConnectWiseClient:
    kind = PsaKind.CONNECTWISE

    def __init__(self, settings: Settings, *, transport: httpx.AsyncBaseTransport | None = None) -> None:
        settings.require(
            "connectwise_api_url",
            "connectwise_company_id",
            "connectwise_public_key",
            "connectwise_private_key",
            "connectwise_client_id",
        )
        assert settings.connectwise_private_key is not None
        assert settings.connectwise_client_id is not None
        login = f"{settings.connectwise_company_id}+{settings.connectwise_public_key}"
        secret = settings.connectwise_private_key.get_secret_value()
        token = base64.b64encode(f"{login}:{secret}".encode()).decode("ascii")
        self._settings = settings
        self._read: dict[str, dict[str, Any]] = {}
        self._statuses: dict[int, list[dict[str, Any]]] = {}
        self._http = httpx.AsyncClient(
            base_url=str(settings.connectwise_api_url).rstrip("/") + "/",
            headers={
                "Authorization": f"Basic {token}",
                "clientId": settings.connectwise_client_id.get_secret_value(),
                "Accept": f"application/vnd.connectwise.com+json; version={settings.connectwise_api_version}",
                "Content-Type": "application/json",
            },
            timeout=httpx.Timeout(15.0, connect=5.0),
            transport=transport,
        )

    async def aclose(self) -> None:
        await self._http.aclose()

    async def _json(self, method: str, path: str, **kwargs: Any) -> Any:
        response = await send(self._http, method, path.lstrip("/"), vendor=VENDOR, **kwargs)
        return response.json() if response.content else None

    async def api(self, method: str, path: str, **kwargs: Any) -> Any:
        """A raw API call (JSON in and out) with the client's auth and retry rules, for admin tasks."""
        return await self._json(method, path, **kwargs)

    async def _all(self, path: str, params: dict[str, Any] | None = None) -> list[dict[str, Any]]:
        """Follow page numbers until a short page (ConnectWise pages are 1-based, ≤1,000 rows)."""
        page_size = 1000
        rows: list[dict[str, Any]] = []
        page = 1
        while True:
            query = {**(params or {}), "page": page, "pageSize": page_size}
            batch = await self._json("GET", path, params=query)
            rows.extend(batch or [])
            if not batch or len(batch) < page_size:
                return rows
            page += 1

    async def get_ticket(self, ticket_id: str) -> Ticket:
        raw = await self._json("GET", f"service/tickets/{int(ticket_id)}")
        self._read[str(ticket_id)] = raw
        notes = await self._all(f"service/tickets/{int(ticket_id)}/notes")
        # The initial description is the first note flagged detailDescription (there is no flat field).
        description = next((n.get("text") or "" for n in notes if n.get("detailDescriptionFlag")), "")
        company = raw.get("company") or {}
        contact = raw.get("contact") or None
        email = raw.get("contactEmailAddress")
        if contact and contact.get("id") is not None:
            email = await self._contact_email(int(contact["id"])) or email
        info = raw.get("_info") or {}
        entered = info.get("dateEntered")
        return Ticket(
            psa=PsaKind.CONNECTWISE,
            id=str(raw["id"]),
            summary=raw.get("summary") or "",
            description=description,
            company=Company(
                id=str(company.get("id")),
                name=company.get("name") or "",
                identifier=company.get("identifier"),
            ),
            contact=(
                Contact(
                    id=str(contact["id"]),
                    name=contact.get("name") or raw.get("contactName") or "",
                    email=email,
                )
                if contact
                else None
            ),
            board_id=str((raw.get("board") or {}).get("id")) if raw.get("board") else None,
            board_name=_name_of(raw.get("board")),
            status_name=_name_of(raw.get("status")),
            closed=bool(raw.get("closedFlag")),
            created_at=datetime.fromisoformat(entered.replace("Z", "+00:00")) if entered else None,
        )

    async def _contact_email(self, contact_id: int) -> str | None:
        """The contact record of the PSA, not the ticket's free-text e-mail, names the requester."""
        contact = await self._json("GET", f"company/contacts/{contact_id}")
        emails = [
            item
            for item in contact.get("communicationItems") or []
            if item.get("communicationType") == "Email" and item.get("value")
        ]
        if not emails:
            return None
        primary = next((item for item in emails if item.get("defaultFlag")), emails[0])
        return str(primary["value"])

    async def list_notes(self, ticket_id: str) -> list[Note]:
        rows = await self._all(f"service/tickets/{int(ticket_id)}/notes")
        return [
            Note(id=str(row["id"]), text=row.get("text") or "", internal=bool(row.get("internalAnalysisFlag")))
            for row in rows
        ]

    async def add_note(self, ticket_id: str, text: str, visibility: NoteVisibility) -> Note:
        internal = visibility is NoteVisibility.INTERNAL
        body = {
            "text": text,
            "detailDescriptionFlag": not internal,  # Discussion: visible to the contact
            "internalAnalysisFlag": internal,
            "resolutionFlag": False,
            "processNotifications": not internal,
        }
        row = await self._json("POST", f"service/tickets/{int(ticket_id)}/notes", json=body)
        return Note(id=str(row["id"]), text=row.get("text") or text, internal=internal)

    async def list_time_entries(self, ticket_id: str) -> list[TimeEntry]:
        conditions = f'chargeToType="ServiceTicket" and chargeToId={int(ticket_id)}'
        rows = await self._all("time/entries", {"conditions": conditions})
        return [TimeEntry(id=str(row["id"]), notes=row.get("notes") or "") for row in rows]

    async def add_time_entry(self, ticket_id: str, start: datetime, end: datetime, notes: str) -> TimeEntry:
        body: dict[str, Any] = {
            "chargeToType": "ServiceTicket",
            "chargeToId": int(ticket_id),
            "member": {"identifier": self._settings.connectwise_api_member},
            "timeStart": cw_time(start),
            "timeEnd": cw_time(end),
            "notes": notes,
            "billableOption": "Billable",
            "addToDetailDescriptionFlag": False,
            "addToInternalAnalysisFlag": False,
            "addToResolutionFlag": False,
            "emailContactFlag": False,
        }
        if self._settings.connectwise_work_type:
            body["workType"] = {"name": self._settings.connectwise_work_type}
        row = await self._json("POST", "time/entries", json=body)
        return TimeEntry(id=str(row["id"]), notes=row.get("notes") or notes)

    async def list_ticket_ids_created_since(self, since: datetime) -> list[str]:
        rows = await self._all(
            "service/tickets",
            {"conditions": f"dateEntered >= [{cw_time(since)}]", "fields": "id", "orderBy": "id asc"},
        )
        return [str(row["id"]) for row in rows]

    async def list_closed_tickets(self, since: datetime, limit: int) -> list[ClosedTicket]:
        """Closed tickets with their type / subtype / item and their Resolution notes (for `tierone learn`).

        The list is one paged query; description and resolution live in notes, one call per ticket,
        a few at a time."""
        page_size = min(1000, max(1, limit))
        rows: list[dict[str, Any]] = []
        page = 1
        while len(rows) < limit:
            batch = await self._json(
                "GET",
                "service/tickets",
                params={
                    "conditions": f"closedFlag = true and closedDate >= [{cw_time(since)}]",
                    "orderBy": "closedDate desc",
                    "fields": "id,summary,type,subType,item,closedDate",
                    "page": page,
                    "pageSize": page_size,
                },
            )
            rows.extend(batch or [])
            if not batch or len(batch) < page_size:
                break
            page += 1
        gate = asyncio.Semaphore(4)

        async def one(row: dict[str, Any]) -> ClosedTicket:
            async with gate:
                notes = await self._all(f"service/tickets/{int(row['id'])}/notes")
            closed = row.get("closedDate")
            return ClosedTicket(
                psa=PsaKind.CONNECTWISE,
                id=str(row["id"]),
                summary=row.get("summary") or "",
                description=next((n.get("text") or "" for n in notes if n.get("detailDescriptionFlag")), ""),
                categories=[name for key in ("type", "subType", "item") if (name := _name_of(row.get(key)))],
                resolution="\n".join(n.get("text") or "" for n in notes if n.get("resolutionFlag")),
                closed_at=datetime.fromisoformat(closed.replace("Z", "+00:00")) if closed else None,
            )

        return list(await asyncio.gather(*(one(row) for row in rows[:limit])))

    async def tenant_hint(self, company_id: str) -> str | None:
        """ConnectWise has no tenant field; a company custom field named in settings may hold it."""
        company = await self._json("GET", f"company/companies/{int(company_id)}")
        wanted = self._settings.connectwise_tenant_field.lower()
        for field in company.get("customFields") or []:
            if str(field.get("caption", "")).lower() == wanted and field.get("value"):
                return str(field["value"]).strip()
        return None

    async def _board_statuses(self, ticket_id: str) -> tuple[dict[str, Any], list[dict[str, Any]]]:
        # Every run starts by reading its ticket (get_ticket), which refreshes this: within the run it
        # is current enough to know the board and whether the ticket already has the status we want.
        ticket = self._read.get(str(ticket_id)) or await self._json("GET", f"service/tickets/{int(ticket_id)}")
        board = ticket.get("board") or {}
        if board.get("id") is None:
            raise PermanentError(f"ConnectWise ticket {ticket_id} has no board")
        board_id = int(board["id"])
        if board_id not in self._statuses:
            # Read once per client (the worker shares it for a while): a board's statuses rarely change.
            self._statuses[board_id] = await self._all(f"service/boards/{board_id}/statuses")
        return ticket, [s for s in self._statuses[board_id] if not s.get("inactive")]

    async def _set_status(self, ticket_id: str, status: dict[str, Any]) -> str:
        # Replace the whole status object: a "status/id" path can answer a false 200.
        patch = [{"op": "replace", "path": "status", "value": {"id": status["id"]}}]
        await self._json("PATCH", f"service/tickets/{int(ticket_id)}", json=patch)
        return str(status.get("name"))

    async def close_ticket(self, ticket_id: str) -> str:
        ticket, statuses = await self._board_statuses(ticket_id)
        current = ticket.get("status") or {}
        closed = [s for s in statuses if s.get("closedStatus")]
        preferred = self._settings.connectwise_closed_status
        choice = next((s for s in closed if preferred and s.get("name", "").lower() == preferred.lower()), None)
        choice = choice or (closed[0] if closed else None)
        if choice is None:
            raise PermanentError(f"board {(ticket.get('board') or {}).get('name')} has no closed status")
        if current.get("id") == choice["id"]:
            return str(choice.get("name"))
        return await self._set_status(ticket_id, choice)

    async def escalate_ticket(self, ticket_id: str) -> str | None:
        wanted = self._settings.connectwise_escalation_status
        if not wanted:
            return None
        ticket, statuses = await self._board_statuses(ticket_id)
        choice = next((s for s in statuses if s.get("name", "").lower() == wanted.lower()), None)
        if choice is None:
            log.warning("escalation status %r is not on the ticket's board; status left unchanged", wanted)
            return None
        if (ticket.get("status") or {}).get("id") == choice["id"]:
            return str(choice.get("name"))
        return await self._set_status(ticket_id, choice)

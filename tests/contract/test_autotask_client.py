"""The real Autotask client, verifier and registrar against the Autotask sandbox, over HTTP."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from psa_integrations.autotask import client as client_module
from psa_integrations.autotask.client import AutotaskClient, clear_zone_cache
from psa_integrations.autotask.registration import AutotaskRegistrar
from psa_integrations.autotask.webhook import AutotaskWebhooks
from psa_integrations.models import NoteVisibility, WebhookEvent
from sandbox._server import BackgroundServer
from sandbox.autotask import AutotaskSandbox
from tierone.errors import PermanentError, TransientError
from tierone.settings import Settings

WEBHOOK_SECRET = "client-contract-webhook-secret"
TENANT_ID = "3f2504e0-4f89-11d3-9a0c-0305e82c3301"
START = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)


class Clock:
    """The sandbox's clock, moved by the tests (ticket creation times matter to reconciliation)."""

    def __init__(self) -> None:
        self.now = START

    def __call__(self) -> datetime:
        return self.now


@dataclass
class Receiver:
    """Our webhook endpoint in miniature: every POST goes through the real verifier."""

    verifier: AutotaskWebhooks | None = None
    server: BackgroundServer | None = None
    events: list[WebhookEvent] = field(default_factory=list)
    refusals: list[str] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)

    @property
    def url(self) -> str:
        assert self.server is not None
        return f"{self.server.url}/api/webhooks/autotask?code=function-key"

    async def handle(self, request: Request) -> Response:
        assert self.verifier is not None
        try:
            event = await self.verifier.verify(await request.body(), dict(request.headers))
        except Exception as exc:
            with self.lock:
                self.refusals.append(f"{type(exc).__name__}: {exc}")
            return JSONResponse({"error": str(exc)}, status_code=401)
        with self.lock:
            self.events.append(event)
        return JSONResponse({"status": "queued"}, status_code=202)


@pytest.fixture(scope="module")
def clock() -> Clock:
    return Clock()


@pytest.fixture(scope="module")
def at(clock: Clock) -> Iterator[AutotaskSandbox]:
    with AutotaskSandbox(retry_delay=0.05, clock=clock) as sandbox:
        yield sandbox


@pytest.fixture(autouse=True)
def fresh(at: AutotaskSandbox, clock: Clock) -> None:
    at.reset()
    at.faults.retry_after_s = 0
    clock.now = START
    clear_zone_cache()


@pytest.fixture
def world(at: AutotaskSandbox) -> dict[str, Any]:
    company = at.add_company("Contoso Dental", udfs={"microsoft tenant id": TENANT_ID}, number="CONTOSO")
    contact = at.add_contact(company["id"], "Anna", "Berg", "anna.berg@contoso.example")
    ticket = at.create_ticket("Password reset", "I forgot my password", company["id"], contact["id"])
    return {"company": company, "contact": contact, "ticket": ticket, "ticket_id": str(ticket["id"])}


def settings_for(at: AutotaskSandbox, **overrides: str | None) -> Settings:
    """The sandbox's app settings, changed by `overrides` (None leaves a setting out)."""
    values = at.app_settings(webhook_secret=WEBHOOK_SECRET) | overrides
    return Settings.model_validate({k: v for k, v in values.items() if v is not None})


def client_for(at: AutotaskSandbox, **overrides: str | None) -> AutotaskClient:
    return AutotaskClient(settings_for(at, **overrides))


def paths(at: AutotaskSandbox, method: str | None = None) -> list[str]:
    return [r.path for r in at.request_log if method is None or r.method == method]


# ---------------------------------------------------------------------------------------------
# Discovery and reading
# ---------------------------------------------------------------------------------------------


async def test_the_zone_is_discovered_once_per_process_and_its_double_slash_normalised(
    at: AutotaskSandbox, world: dict[str, Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(at, "zone_double_slash", True)
    for _ in range(2):
        client = client_for(at)
        await client.get_ticket(world["ticket_id"])
        assert await client.base_url() == f"{at.url}/ATServicesRest/V1.0/"
        await client.aclose()
    assert paths(at).count("/zoneInformation") == 1


async def test_a_configured_api_url_skips_discovery(at: AutotaskSandbox, world: dict[str, Any]) -> None:
    client = client_for(at, AUTOTASK_API_URL=at.api_url)
    await client.get_ticket(world["ticket_id"])
    await client.aclose()
    assert "/zoneInformation" not in paths(at)


async def test_a_user_unknown_to_zone_lookup_is_a_permanent_error(at: AutotaskSandbox) -> None:
    client = client_for(at, AUTOTASK_USERNAME="someone-else@example.com")
    with pytest.raises(PermanentError, match="zone lookup"):
        await client.get_ticket("1")
    await client.aclose()


async def test_reads_a_ticket_with_its_company_contact_email_queue_and_status(
    at: AutotaskSandbox, world: dict[str, Any]
) -> None:
    client = client_for(at)
    ticket = await client.get_ticket(world["ticket_id"])
    await client.aclose()
    assert ticket.summary == "Password reset"
    assert ticket.description == "I forgot my password"
    assert (ticket.company.id, ticket.company.name, ticket.company.identifier) == (
        str(world["company"]["id"]),
        "Contoso Dental",
        "CONTOSO",
    )
    assert ticket.contact is not None
    assert (ticket.contact.name, ticket.contact.email) == ("Anna Berg", "anna.berg@contoso.example")
    assert (ticket.board_name, ticket.status_name, ticket.closed) == ("Level I Support", "New", False)
    assert ticket.created_at == START


async def test_a_missing_ticket_is_a_permanent_error(at: AutotaskSandbox) -> None:
    client = client_for(at)
    with pytest.raises(PermanentError, match="not found"):
        await client.get_ticket("999999")
    await client.aclose()


async def test_the_tenant_hint_comes_from_the_company_udf(at: AutotaskSandbox, world: dict[str, Any]) -> None:
    client = client_for(at)
    assert await client.tenant_hint(str(world["company"]["id"])) == TENANT_ID
    other = at.add_company("No UDF Ltd")
    assert await client.tenant_hint(str(other["id"])) is None
    await client.aclose()


# ---------------------------------------------------------------------------------------------
# Writing back
# ---------------------------------------------------------------------------------------------


async def test_notes_of_both_visibilities_are_published_accordingly(at: AutotaskSandbox, world: dict[str, Any]) -> None:
    client = client_for(at)
    await client.add_note(world["ticket_id"], "visible to the user", NoteVisibility.CUSTOMER)
    await client.add_note(world["ticket_id"], "for technicians", NoteVisibility.INTERNAL)
    notes = await client.list_notes(world["ticket_id"])
    await client.aclose()
    assert [(n.text, n.internal) for n in notes] == [("visible to the user", False), ("for technicians", True)]
    stored = at.notes(world["ticket"]["id"])
    assert [(n["publish"], n["noteType"], bool(n["title"])) for n in stored] == [(1, 1, True), (2, 1, True)]
    assert {n["creatorResourceID"] for n in stored} == {at.api_resource_id}


async def test_a_time_entry_is_billed_to_our_resource_and_role_rounded_up(
    at: AutotaskSandbox, world: dict[str, Any]
) -> None:
    client = client_for(at)
    start = datetime(2026, 3, 2, 10, 0, 0, 500000, tzinfo=UTC)
    await client.add_time_entry(world["ticket_id"], start, start + timedelta(minutes=2), "work done")
    entries = await client.list_time_entries(world["ticket_id"])
    await client.aclose()
    assert [e.notes for e in entries] == ["work done"]
    [entry] = at.time_entries(world["ticket"]["id"])
    assert entry["resourceID"] == at.api_resource_id
    assert entry["roleID"] == 29683464  # the API resource's default service desk role
    assert entry["hoursWorked"] == 0.04  # 2 minutes = 0.033 h, rounded up
    assert (entry["startDateTime"], entry["endDateTime"]) == ("2026-03-02T10:00:00.000Z", "2026-03-02T10:02:00.000Z")


async def test_a_configured_role_is_used_and_work_past_midnight_is_kept_within_the_day(
    at: AutotaskSandbox, world: dict[str, Any]
) -> None:
    client = client_for(at, AUTOTASK_TIME_ROLE_ID="29683466")
    start = datetime(2026, 3, 2, 23, 58, tzinfo=UTC)
    await client.add_time_entry(world["ticket_id"], start, start + timedelta(minutes=5), "late fix")
    await client.aclose()
    [entry] = at.time_entries(world["ticket"]["id"])
    assert entry["roleID"] == 29683466
    assert entry["endDateTime"] == "2026-03-02T23:59:59.000Z"


async def test_closing_sets_status_complete_once_without_reading_the_ticket_again(
    at: AutotaskSandbox, world: dict[str, Any]
) -> None:
    client = client_for(at)
    await client.get_ticket(world["ticket_id"])
    at.clear_request_log()
    assert await client.close_ticket(world["ticket_id"]) == "Complete"
    assert await client.close_ticket(world["ticket_id"]) == "Complete"
    await client.aclose()
    assert [(r.method, r.path) for r in at.request_log] == [("PATCH", "/Tickets")]
    assert at.ticket(world["ticket"]["id"])["status"] == 5
    fresh_client = client_for(at)
    assert (await fresh_client.get_ticket(world["ticket_id"])).closed
    assert await fresh_client.close_ticket(world["ticket_id"]) == "Complete"  # already closed: no PATCH
    await fresh_client.aclose()
    assert paths(at, "PATCH") == ["/Tickets"]


async def test_escalation_moves_the_ticket_to_the_configured_queue_or_leaves_it_alone(
    at: AutotaskSandbox, world: dict[str, Any]
) -> None:
    unconfigured = client_for(at, AUTOTASK_ESCALATION_QUEUE_ID=None)
    assert await unconfigured.escalate_ticket(world["ticket_id"]) is None
    await unconfigured.aclose()
    assert paths(at, "PATCH") == []
    client = client_for(at)
    assert await client.escalate_ticket(world["ticket_id"]) == "Escalations"
    await client.aclose()
    assert at.ticket(world["ticket"]["id"])["queueID"] == 29683483


async def test_tickets_created_since_are_listed_oldest_first_across_pages(
    at: AutotaskSandbox, world: dict[str, Any], clock: Clock, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(client_module, "MAX_RECORDS", 2)
    created = []
    for minutes in (10, 20, 30, 40, 50):
        clock.now = START + timedelta(minutes=minutes)
        created.append(str(at.create_ticket(f"ticket {minutes}", "", world["company"]["id"])["id"]))
    client = client_for(at)
    ids = await client.list_ticket_ids_created_since(START + timedelta(minutes=20))
    await client.aclose()
    assert ids == created[1:]
    assert paths(at, "POST").count("/Tickets/query/next") == 1


# ---------------------------------------------------------------------------------------------
# Failures and limits
# ---------------------------------------------------------------------------------------------


async def test_throttling_is_waited_out_on_reads(at: AutotaskSandbox, world: dict[str, Any]) -> None:
    client = client_for(at, AUTOTASK_API_URL=at.api_url)
    at.faults.fail_next(2, 429)
    ticket = await client.get_ticket(world["ticket_id"])
    await client.aclose()
    assert ticket.summary == "Password reset"
    assert [r.status for r in at.request_log[:3]] == [429, 429, 200]


async def test_a_server_error_on_a_write_is_not_blindly_repeated(at: AutotaskSandbox, world: dict[str, Any]) -> None:
    client = client_for(at, AUTOTASK_API_URL=at.api_url)
    at.faults.fail_next(1, 500)
    with pytest.raises(TransientError):
        await client.add_note(world["ticket_id"], "maybe written", NoteVisibility.INTERNAL)
    await client.aclose()
    assert paths(at, "POST") == ["/TicketNotes"]


async def test_one_client_keeps_to_three_concurrent_requests_per_endpoint(
    at: AutotaskSandbox, world: dict[str, Any]
) -> None:
    client = client_for(at, AUTOTASK_API_URL=at.api_url)
    at.faults.latency_ms = 100
    await asyncio.gather(*(client.tenant_hint(str(world["company"]["id"])) for _ in range(7)))
    await client.aclose()
    assert {r.status for r in at.request_log} == {200}


async def test_thread_limit_rejections_are_waited_out_even_for_writes(
    at: AutotaskSandbox, world: dict[str, Any]
) -> None:
    # Two workers of one deployment share the integration code's three threads.
    workers = [client_for(at, AUTOTASK_API_URL=at.api_url) for _ in range(2)]
    at.faults.latency_ms = 150
    notes = [workers[i % 2].add_note(world["ticket_id"], f"note {i}", NoteVisibility.INTERNAL) for i in range(6)]
    await asyncio.gather(*notes)
    for worker in workers:
        await worker.aclose()
    statuses = [r.status for r in at.request_log if r.path == "/TicketNotes"]
    assert 500 in statuses  # Itgenatr005, refused before it ran
    assert sorted(n["description"] for n in at.notes(world["ticket"]["id"])) == [f"note {i}" for i in range(6)]


async def test_wrong_credentials_are_a_permanent_error(at: AutotaskSandbox, world: dict[str, Any]) -> None:
    client = client_for(at, AUTOTASK_SECRET="wrong")
    with pytest.raises(PermanentError, match="401: User authentication failed"):
        await client.get_ticket(world["ticket_id"])
    await client.aclose()
    assert [r.status for r in at.request_log if r.path.startswith("/Tickets")] == [401]  # no lock-out hammering


# ---------------------------------------------------------------------------------------------
# Registration, and the webhook it registers
# ---------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def running_receiver() -> Iterator[Receiver]:
    receiver = Receiver()
    app = Starlette(routes=[Route("/{path:path}", receiver.handle, methods=["POST"])])
    receiver.server = BackgroundServer(app, name="autotask-receiver").start()
    yield receiver
    receiver.server.stop()


@pytest.fixture
def receiver(running_receiver: Receiver, at: AutotaskSandbox) -> Receiver:
    running_receiver.verifier = AutotaskWebhooks(settings_for(at))
    with running_receiver.lock:
        running_receiver.events.clear()
        running_receiver.refusals.clear()
    return running_receiver


async def test_registering_twice_creates_one_ready_webhook_then_leaves_it_alone(
    at: AutotaskSandbox, receiver: Receiver
) -> None:
    registrar = AutotaskRegistrar(settings_for(at))
    first = await registrar.register(receiver.url)
    second = await registrar.register(receiver.url)
    assert (first.action, second.action) == ("created", "unchanged")
    [webhook] = at.webhooks()
    assert (webhook["isActive"], webhook["isReady"], webhook["isSubscribedToCreateEvents"]) == (True, True, True)
    assert (webhook["webhookUrl"], webhook["deactivationUrl"], webhook["secretKey"]) == (
        receiver.url,
        receiver.url,
        WEBHOOK_SECRET,
    )
    assert at.excluded_resources(webhook["id"]) == [at.api_resource_id]
    assert [f["isSubscribedField"] for f in at.webhook_fields(webhook["id"])] == [True]


async def test_a_changed_secret_or_a_deactivated_webhook_is_repaired(at: AutotaskSandbox, receiver: Receiver) -> None:
    await AutotaskRegistrar(settings_for(at)).register(receiver.url)
    rotated = await AutotaskRegistrar(settings_for(at, AUTOTASK_WEBHOOK_SECRET="rotated-secret")).register(receiver.url)
    assert rotated.action == "updated"
    assert "SecretKey" in rotated.detail
    assert at.webhook_secret == "rotated-secret"
    at.deactivate_webhook(at.webhooks()[0]["id"])
    at.wait_for_deliveries()
    reactivated = await AutotaskRegistrar(settings_for(at)).register(receiver.url)
    assert reactivated.action == "updated"
    assert at.webhooks()[0]["isActive"] is True
    assert len(at.webhooks()) == 1


async def test_the_registered_webhook_delivers_creations_that_the_verifier_accepts(
    at: AutotaskSandbox, receiver: Receiver
) -> None:
    await AutotaskRegistrar(settings_for(at)).register(receiver.url)
    company = at.add_company("Fabrikam & Söhne")
    ticket = at.create_ticket("Passwort zurücksetzen", "Bitte", company["id"])
    at.wait_for_deliveries()
    client = client_for(at)
    await client.close_ticket(str(ticket["id"]))  # TierOne's own save: excluded, and not a creation
    await client.aclose()
    at.wait_for_deliveries()
    assert receiver.refusals == []
    [event] = receiver.events
    assert (event.ticket_id, event.action, event.starts_work) == (str(ticket["id"]), "Create", True)
    assert event.actor == str(at.technician_resource_id)


async def test_a_deactivation_reaches_the_verifier_signed_and_starts_nothing(
    at: AutotaskSandbox, receiver: Receiver
) -> None:
    await AutotaskRegistrar(settings_for(at)).register(receiver.url)
    at.deactivate_webhook(at.webhooks()[0]["id"])
    at.wait_for_deliveries()
    [event] = receiver.events
    assert (event.action, event.starts_work, event.ticket_id) == ("Deactivated", False, None)

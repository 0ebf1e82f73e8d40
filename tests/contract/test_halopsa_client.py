"""The real HaloPSA client, webhook verifier and registrar against the HaloPSA sandbox, over HTTP."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import parse_qs

import pytest
from starlette.responses import JSONResponse, Response

from psa_integrations.errors import ForgedWebhook
from psa_integrations.halopsa.client import HaloClient, clear_shared_state, html_to_text
from psa_integrations.halopsa.registration import HaloRegistrar
from psa_integrations.halopsa.webhook import HaloWebhooks
from psa_integrations.models import NoteVisibility, WebhookEvent
from sandbox.halopsa import HaloSandbox
from tests.contract.test_halopsa_sandbox import Receiver, serving_receiver
from tierone.errors import PermanentError, TransientError
from tierone.settings import Settings

TENANT_ID = "0b1c2d3e-4f50-6172-8394-a5b6c7d8e9f0"
WEBHOOK_PASSWORD = "wh-2b7e9c41d6a8f350"


@pytest.fixture(scope="module")
def running() -> Iterator[HaloSandbox]:
    with HaloSandbox(webhook_retry_delays=(0.05, 0.05, 0.05), webhook_timeout_s=2.0) as sandbox:
        yield sandbox


@pytest.fixture(scope="module")
def listening() -> Iterator[Receiver]:
    with serving_receiver() as found:
        yield found


@pytest.fixture
def halo(running: HaloSandbox) -> HaloSandbox:
    running.reset()
    clear_shared_state()
    return running


@pytest.fixture
def receiver(listening: Receiver) -> Receiver:
    listening.clear()
    return listening


@pytest.fixture
def world(halo: HaloSandbox) -> dict[str, Any]:
    client = halo.add_client("Contoso Dental", azure_tenant_id=TENANT_ID)
    site = halo.add_site(client["id"], "Head Office")
    user = halo.add_user(client["id"], site["id"], "Anna Berg", "anna.berg@contoso.example")
    ticket = halo.create_ticket("Password reset", "I forgot my password", client["id"], user["id"])
    return {"client": client, "site": site, "user": user, "ticket": ticket, "id": str(ticket["id"])}


def settings_for(halo: HaloSandbox, **overrides: str) -> Settings:
    values = halo.app_settings(HALOPSA_WEBHOOK_PASSWORD=WEBHOOK_PASSWORD)
    values.update(overrides)
    return Settings.model_validate({key: value for key, value in values.items() if value})


def client_for(halo: HaloSandbox, *, throttle_backoff_s: float = 60.0, **overrides: str) -> HaloClient:
    return HaloClient(settings_for(halo, **overrides), throttle_backoff_s=throttle_backoff_s)


def requests(halo: HaloSandbox, method: str, path: str) -> list[Any]:
    return [r for r in halo.request_log if r.method == method and r.path.lower() == path.lower()]


# ---------------------------------------------------------------------------------------------
# Auth
# ---------------------------------------------------------------------------------------------


async def test_the_token_comes_from_authinfos_auth_server_with_the_tenant_and_is_reused(halo, world):
    client = client_for(halo, HALOPSA_TENANT="")
    await client.get_ticket(world["id"])
    await client.aclose()
    second = client_for(halo, HALOPSA_TENANT="")
    await second.list_notes(world["id"])
    await second.aclose()
    [token_request] = requests(halo, "POST", "/auth/token")
    form = parse_qs(token_request.body.decode())
    assert token_request.query == "tenant=tierone"  # learnt from /api/authinfo
    assert form == {
        "grant_type": ["client_credentials"],
        "client_id": [halo.client_id],
        "client_secret": [halo.client_secret],
        "scope": ["all"],
    }
    assert len(requests(halo, "GET", "/api/authinfo")) == 1


async def test_a_revoked_token_is_replaced_once_and_the_request_repeated(halo, world):
    client = client_for(halo)
    await client.get_ticket(world["id"])
    halo.revoke_tokens()
    halo.clear_request_log()
    ticket = await client.get_ticket(world["id"])
    await client.aclose()
    assert ticket.summary == "Password reset"
    assert [(r.method, r.path, r.status) for r in halo.request_log[:3]] == [
        ("GET", f"/api/Tickets/{world['id']}", 401),
        ("POST", "/auth/token", 200),
        ("GET", f"/api/Tickets/{world['id']}", 200),
    ]


async def test_a_token_is_refreshed_before_it_expires(halo, world):
    halo.token_lifetime_s = 1.0
    try:
        client = client_for(halo)
        await client.get_ticket(world["id"])
        await asyncio.sleep(0.6)  # past half the lifetime: the client's safety margin
        await client.list_notes(world["id"])
        await client.aclose()
    finally:
        halo.token_lifetime_s = 3600.0
    assert len(requests(halo, "POST", "/auth/token")) == 2
    assert all(r.status != 401 for r in halo.request_log)


async def test_without_authinfo_the_client_falls_back_to_auth_token():
    clear_shared_state()
    with HaloSandbox(authinfo=False, tenant=None) as on_prem:
        client = HaloClient(settings_for(on_prem))
        await client.statuses()
        await client.aclose()
        paths = [(r.path, r.status) for r in on_prem.request_log]
    assert paths == [("/api/authinfo", 404), ("/auth/token", 200), ("/api/Status", 200)]


async def test_wrong_credentials_and_missing_tickets_are_permanent_errors(halo, world):
    bad = client_for(halo, HALOPSA_CLIENT_SECRET="wrong")
    with pytest.raises(PermanentError, match="401"):
        await bad.get_ticket(world["id"])
    await bad.aclose()
    client = client_for(halo)
    with pytest.raises(PermanentError, match="404"):
        await client.get_ticket("999999")
    with pytest.raises(PermanentError, match="not a HaloPSA ticket id"):
        await client.get_ticket("T-12")
    await client.aclose()


# ---------------------------------------------------------------------------------------------
# Reading
# ---------------------------------------------------------------------------------------------


async def test_reads_a_ticket_with_its_client_and_the_users_record_email(halo, world):
    halo.update_user(world["user"]["id"], emailaddress="anna@contoso.example")  # the ticket kept the old one
    client = client_for(halo)
    ticket = await client.get_ticket(world["id"])
    await client.aclose()
    assert ticket.summary == "Password reset"
    assert ticket.description == "I forgot my password"
    assert ticket.company.id == str(world["client"]["id"])
    assert ticket.company.name == "Contoso Dental"
    assert ticket.contact is not None
    assert ticket.contact.email == "anna@contoso.example"
    assert ticket.contact.name == "Anna Berg"
    assert ticket.status_name == "New"
    assert ticket.board_name == "1st Line Support"
    assert not ticket.closed
    assert ticket.created_at is not None
    assert ticket.created_at.tzinfo is not None


async def test_a_ticket_without_a_user_has_no_contact(halo, world):
    bare = halo.create_ticket("Shared mailbox", "please", world["client"]["id"], None)
    client = client_for(halo)
    ticket = await client.get_ticket(str(bare["id"]))
    await client.aclose()
    assert ticket.contact is None
    assert not requests(halo, "GET", "/api/Users/None")


def test_halo_html_becomes_readable_text():
    markup = "<p>Hi,</p><div>I can&#39;t log in &amp; <b>need</b> help.<br>Anna</div><style>p{}</style>"
    assert html_to_text(markup) == "Hi,\n\nI can't log in & need help.\nAnna"


async def test_ids_of_tickets_opened_since_follow_pages_oldest_first(halo, world):
    halo.create_ticket("old", "x", world["client"]["id"], None, opened_at=datetime.now(UTC) - timedelta(days=2))
    fresh = [halo.create_ticket(f"t{n}", "x", world["client"]["id"], None)["id"] for n in range(104)]
    client = client_for(halo)
    ids = await client.list_ticket_ids_created_since(datetime.now(UTC) - timedelta(hours=1))
    await client.aclose()
    assert ids == [str(i) for i in sorted([world["ticket"]["id"], *fresh])]
    pages = [parse_qs(r.query) for r in requests(halo, "GET", "/api/Tickets")]
    assert [p["page_no"] for p in pages] == [["1"], ["2"]]
    assert all(p["pageinate"] == ["true"] and p["page_size"] == ["100"] for p in pages)
    assert all(p["datesearch"] == ["dateoccured"] for p in pages)


# ---------------------------------------------------------------------------------------------
# Writing: notes, time, close, escalate
# ---------------------------------------------------------------------------------------------


async def test_notes_of_both_visibilities_need_no_more_than_the_configured_outcome(halo, world):
    client = client_for(halo)
    visible = await client.add_note(
        world["id"], "Your password was reset.\nCheck <inbox> & sign in", NoteVisibility.CUSTOMER
    )
    internal = await client.add_note(world["id"], "for technicians [TierOne T1 note]", NoteVisibility.INTERNAL)
    notes = await client.list_notes(world["id"])
    await client.aclose()
    assert not visible.internal
    assert internal.internal
    assert {n.text: n.internal for n in notes} == {
        "Your password was reset.\nCheck <inbox> & sign in": False,
        "for technicians [TierOne T1 note]": True,
    }
    posted = [r.json()[0] for r in requests(halo, "POST", "/api/Actions")]
    assert [(p["outcome_id"], p["hiddenfromuser"], p["sendemail"]) for p in posted] == [
        (7, False, True),
        (7, True, False),
    ]
    assert posted[0]["note_html"] == "Your password was reset.<br>Check &lt;inbox&gt; &amp; sign in"


async def test_time_is_an_action_with_timetaken_in_hours(halo, world):
    client = client_for(halo)
    start = datetime.now(UTC)
    await client.add_note(world["id"], "not time", NoteVisibility.INTERNAL)
    await client.add_time_entry(world["id"], start, start + timedelta(minutes=6), "work done [TierOne T1 time]")
    await client.add_time_entry(world["id"], start, start, "instant")
    entries = await client.list_time_entries(world["id"])
    await client.aclose()
    assert [e.notes for e in entries] == ["work done [TierOne T1 time]", "instant"]
    taken = [a["timetaken"] for a in halo.actions(world["ticket"]["id"])]
    assert taken == [0.0, 0.1, pytest.approx(1 / 60, rel=1e-3)]  # at least a minute, so it is found again


async def test_closing_sets_the_configured_status_and_answers_its_name(halo, world):
    client = client_for(halo)
    await client.get_ticket(world["id"])
    assert await client.close_ticket(world["id"]) == "Closed"
    assert await client.close_ticket(world["id"]) == "Closed"
    await client.aclose()
    assert len(requests(halo, "GET", f"/api/Tickets/{world['id']}")) == 1  # the start's read is reused
    ticket = halo.ticket(world["ticket"]["id"])
    assert ticket["status_id"] == 9
    assert ticket["hasbeenclosed"] is True
    assert [r.json() for r in requests(halo, "POST", "/api/Tickets")] == [
        [{"id": world["ticket"]["id"], "status_id": 9}]
    ]


async def test_closing_fails_loudly_when_halo_keeps_the_ticket_open_or_the_status_is_unknown(halo, world):
    halo.faults.refuse_closing = True
    client = client_for(halo)
    with pytest.raises(PermanentError, match="kept ticket"):
        await client.close_ticket(world["id"])
    await client.aclose()
    unknown = client_for(halo, HALOPSA_CLOSED_STATUS_ID="42")
    with pytest.raises(PermanentError, match="HALOPSA_CLOSED_STATUS_ID"):
        await unknown.close_ticket(world["id"])
    await unknown.aclose()


async def test_escalation_moves_the_ticket_to_the_configured_team_or_leaves_it_alone(halo, world):
    plain = client_for(halo)
    assert await plain.escalate_ticket(world["id"]) is None
    await plain.aclose()
    missing = client_for(halo, HALOPSA_ESCALATION_TEAM="Nobody")
    assert await missing.escalate_ticket(world["id"]) is None
    await missing.aclose()
    escalating = client_for(halo, HALOPSA_ESCALATION_TEAM="2nd line support")
    assert await escalating.escalate_ticket(world["id"]) == "2nd Line Support"
    await escalating.aclose()
    assert halo.ticket(world["ticket"]["id"])["team"] == "2nd Line Support"
    assert len(requests(halo, "POST", "/api/Tickets")) == 1


# ---------------------------------------------------------------------------------------------
# Tenant mapping
# ---------------------------------------------------------------------------------------------


async def test_the_tenant_hint_comes_from_the_azure_ad_connection(halo, world):
    unmapped = halo.add_client("Fabrikam")
    twice = halo.add_client("Northwind", azure_tenant_id="11111111-2222-3333-4444-555555555555")
    halo.add_tenant_mapping(twice["id"], "66666666-7777-8888-9999-000000000000")
    client = client_for(halo)
    assert await client.tenant_hint(str(world["client"]["id"])) == TENANT_ID
    assert await client.tenant_hint(str(unmapped["id"])) is None
    assert await client.tenant_hint(str(twice["id"])) is None  # ambiguous: a person must choose
    rows = await client.list_tenant_mappings()
    await client.aclose()
    assert rows == [(str(world["client"]["id"]), "Contoso Dental", TENANT_ID)]
    detail = requests(halo, "GET", "/api/AzureADConnection/1")
    assert len(detail) == 1  # read once per client
    assert parse_qs(detail[0].query) == {"includedetails": ["true"], "includetenants": ["true"]}


# ---------------------------------------------------------------------------------------------
# Throttling and failures
# ---------------------------------------------------------------------------------------------


async def test_a_429_is_retried_after_the_back_off_when_that_is_short(halo, world):
    client = client_for(halo, throttle_backoff_s=0.05)
    await client.statuses()
    halo.faults.fail_next(1, 429)
    ticket = await client.get_ticket(world["id"])
    await client.aclose()
    assert ticket.summary == "Password reset"


async def test_a_429_hands_the_message_back_to_the_queue_for_at_least_30_seconds(halo, world):
    client = client_for(halo)
    await client.statuses()
    halo.clear_request_log()
    halo.faults.fail_next(1, 429)
    with pytest.raises(TransientError) as caught:
        await client.get_ticket(world["id"])
    await client.aclose()
    assert caught.value.retry_after is not None
    assert caught.value.retry_after >= 30
    assert len(halo.request_log) == 1  # no second try inside Halo's rolling window


async def test_the_client_keeps_its_own_budget_below_halos_limit(halo, world):
    settings = settings_for(halo)
    waiting = HaloClient(settings, rate_limit=3, rate_window_s=0.4)
    started = time.monotonic()
    for _ in range(3):  # authinfo + 3 reads = 4 API requests: the 4th waits for the window
        await waiting.call("GET", "Status")
    elapsed = time.monotonic() - started
    await waiting.aclose()
    assert elapsed >= 0.3
    clear_shared_state()
    spent = HaloClient(settings, rate_limit=1, rate_window_s=120.0)
    with pytest.raises(TransientError) as caught:
        await spent.get_ticket(world["id"])
    await spent.aclose()
    assert caught.value.retry_after is not None
    assert caught.value.retry_after > 100
    assert all(r.status != 429 for r in halo.request_log)


async def test_a_server_error_on_a_write_is_not_blindly_repeated(halo, world):
    client = client_for(halo)
    await client.statuses()
    halo.faults.fail_next(1, 500)
    with pytest.raises(TransientError):
        await client.add_note(world["id"], "maybe written", NoteVisibility.INTERNAL)
    await client.aclose()
    assert len(requests(halo, "POST", "/api/Actions")) == 1


async def test_a_server_error_on_a_read_is_retried(halo, world):
    client = client_for(halo)
    await client.statuses()
    halo.faults.fail_next(1, 503)
    ticket = await client.get_ticket(world["id"])
    await client.aclose()
    assert ticket.id == world["id"]


# ---------------------------------------------------------------------------------------------
# Registration and the round trip: Halo's delivery verified by TierOne's verifier
# ---------------------------------------------------------------------------------------------


async def test_registration_is_idempotent_and_pushes_rotated_credentials(halo, receiver):
    first = await HaloRegistrar(settings_for(halo)).register(receiver.url)
    again = await HaloRegistrar(settings_for(halo)).register(receiver.url)
    rotated = await HaloRegistrar(settings_for(halo, HALOPSA_WEBHOOK_PASSWORD="rotated-9e1f")).register(receiver.url)
    moved = await HaloRegistrar(settings_for(halo, HALOPSA_WEBHOOK_PASSWORD="rotated-9e1f")).register(
        receiver.url + "&v=2"
    )
    assert [r.action for r in (first, again, rotated, moved)] == ["created", "unchanged", "updated", "updated"]
    assert any("New Ticket Logged" in step for step in first.steps)
    assert any("batching" in step for step in first.steps)
    [webhook] = halo.webhooks()
    assert webhook["url"] == receiver.url + "&v=2"
    assert webhook["authentication_type"] == 1
    assert webhook["basic_username"] == "tierone"
    assert webhook["basic_password"] == "rotated-9e1f"
    assert webhook["payload_type"] == 2
    assert [e["name"] for e in webhook["events"]] == ["New Ticket Logged"]
    assert "rotated-9e1f" not in webhook["note"]


async def test_registration_needs_the_webhook_password():
    with pytest.raises(Exception, match="HALOPSA_WEBHOOK_PASSWORD"):
        HaloRegistrar(Settings.model_validate({"HALOPSA_URL": "https://x.halopsa.com"}))


async def test_a_registered_webhook_delivers_what_the_verifier_accepts(halo, world, receiver):
    settings = settings_for(halo)
    verifier = HaloWebhooks(settings)
    verified: list[WebhookEvent] = []

    async def verify(body: bytes, headers: dict[str, str]) -> Response:
        try:
            verified.append(await verifier.verify(body, headers))
        except ForgedWebhook:
            return JSONResponse({"error": "authentication failed"}, status_code=401)
        return JSONResponse({"status": "queued"}, status_code=202)

    receiver.handler = verify
    await HaloRegistrar(settings).register(receiver.url)
    by_person = halo.create_ticket("Locked out", "help", world["client"]["id"], world["user"]["id"])
    by_us = halo.create_ticket("Follow-up", "ours", world["client"]["id"], None, agent_id=halo.api_agent_id)
    halo.wait_for_deliveries(5)
    assert all(d.delivered for d in halo.deliveries)
    outcome = {e.ticket_id: e.starts_work for e in verified}
    assert outcome == {str(by_person["id"]): True, str(by_us["id"]): False}
    assert len({e.delivery_id for e in verified}) == 2


async def test_a_delivery_with_stale_credentials_is_refused(halo, world, receiver):
    verifier = HaloWebhooks(settings_for(halo, HALOPSA_WEBHOOK_PASSWORD="the-new-one"))

    async def verify(body: bytes, headers: dict[str, str]) -> Response:
        try:
            await verifier.verify(body, headers)
        except ForgedWebhook:
            return JSONResponse({"error": "authentication failed"}, status_code=401)
        return JSONResponse({}, status_code=202)

    receiver.handler = verify
    await HaloRegistrar(settings_for(halo)).register(receiver.url)
    halo.create_ticket("Locked out", "help", world["client"]["id"], world["user"]["id"])
    halo.wait_for_deliveries(5)
    [delivery] = halo.deliveries
    assert delivery.status_code == 401
    assert delivery.attempts == 4  # ASSUMED policy: three retries of a non-2xx answer

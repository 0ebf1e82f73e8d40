"""The HaloPSA sandbox keeps Halo's contract (psa.md §3), checked over real HTTP with a plain client.

If one of these fails, the sandbox has drifted from Halo and every client test that runs
against it proves less than it claims. Response bodies are checked against Halo's OpenAPI
schemas in test_halopsa_openapi.py.
"""

from __future__ import annotations

import base64
import json
import re
import threading
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from sandbox._server import BackgroundServer
from sandbox.halopsa import OUTCOME_REQUIRED, PAYLOAD_EVENT_ONLY, PAYLOAD_FULL, PAYLOAD_SMALL, HaloSandbox

TENANT_ID = "0b1c2d3e-4f50-6172-8394-a5b6c7d8e9f0"
WEBHOOK_USER, WEBHOOK_PASSWORD = "tierone", "wh-secret-5d1e"

# ---------------------------------------------------------------------------------------------
# A stand-in for TierOne's webhook endpoint (also used by test_halopsa_client.py)
# ---------------------------------------------------------------------------------------------


@dataclass
class Received:
    headers: dict[str, str]
    body: bytes

    def json(self) -> Any:
        return json.loads(self.body)


@dataclass
class Receiver:
    """Records every POST; answers scripted statuses, or what `handler` decides."""

    server: BackgroundServer | None = None
    received: list[Received] = field(default_factory=list)
    script: list[int] = field(default_factory=list)
    handler: Any = None
    lock: threading.Lock = field(default_factory=threading.Lock)

    @property
    def url(self) -> str:
        assert self.server is not None
        return f"{self.server.url}/api/webhooks/halopsa?code=function-key"

    def answer_next(self, *statuses: int) -> None:
        with self.lock:
            self.script.extend(statuses)

    def clear(self) -> None:
        with self.lock:
            self.received.clear()
            self.script.clear()
            self.handler = None

    async def handle(self, request: Request) -> Response:
        body = await request.body()
        with self.lock:
            self.received.append(Received(dict(request.headers), body))
            scripted = self.script.pop(0) if self.script else None
        if scripted is None and self.handler is not None:
            return await self.handler(body, dict(request.headers))
        status = scripted or 200
        return JSONResponse({"ok": status < 300}, status_code=status)


@contextmanager
def serving_receiver() -> Iterator[Receiver]:
    found = Receiver()
    app = Starlette(routes=[Route("/api/webhooks/halopsa", found.handle, methods=["POST"])])
    with BackgroundServer(app, name="halo-receiver") as server:
        found.server = server
        yield found


@pytest.fixture(scope="module")
def receiver() -> Iterator[Receiver]:
    with serving_receiver() as found:
        yield found


@pytest.fixture(scope="module")
def running() -> Iterator[HaloSandbox]:
    with HaloSandbox(webhook_retry_delays=(0.05, 0.05, 0.05), webhook_timeout_s=2.0) as sandbox:
        yield sandbox


@pytest.fixture
def halo(running: HaloSandbox, receiver: Receiver) -> HaloSandbox:
    running.reset()
    receiver.clear()
    return running


@pytest.fixture
def world(halo: HaloSandbox) -> dict[str, Any]:
    client = halo.add_client("Contoso Dental", azure_tenant_id=TENANT_ID)
    site = halo.add_site(client["id"], "Head Office")
    user = halo.add_user(client["id"], site["id"], "Anna Berg", "anna.berg@contoso.example")
    return {"client": client, "site": site, "user": user}


def token(halo: HaloSandbox) -> str:
    response = httpx.post(
        f"{halo.url}/auth/token",
        params={"tenant": halo.tenant},
        data={
            "grant_type": "client_credentials",
            "client_id": halo.client_id,
            "client_secret": halo.client_secret,
            "scope": "all",
        },
    )
    assert response.status_code == 200, response.text
    return str(response.json()["access_token"])


def api(halo: HaloSandbox) -> httpx.Client:
    return httpx.Client(base_url=f"{halo.url}/api", headers={"Authorization": f"Bearer {token(halo)}"})


def new_ticket(halo: HaloSandbox, world: dict[str, Any], summary: str = "Password reset") -> dict[str, Any]:
    return halo.create_ticket(summary, "I forgot my password", world["client"]["id"], world["user"]["id"])


# ---------------------------------------------------------------------------------------------
# Auth
# ---------------------------------------------------------------------------------------------


def test_authinfo_names_the_auth_server_and_tenant_without_a_token(halo):
    response = httpx.get(f"{halo.url}/api/authinfo")
    assert response.status_code == 200
    assert response.json() == {"auth_url": f"{halo.url}/auth", "tenant_id": halo.tenant}


def test_client_credentials_give_a_bearer_token(halo):
    response = httpx.post(
        f"{halo.url}/auth/token?tenant={halo.tenant}",
        data={"grant_type": "client_credentials", "client_id": halo.client_id, "client_secret": halo.client_secret}
        | {"scope": "all"},
    )
    body = response.json()
    assert response.status_code == 200
    assert body["token_type"] == "Bearer"
    assert body["scope"] == "all"
    assert body["expires_in"] == 3600
    assert body["access_token"]


@pytest.mark.parametrize(
    ("query", "form", "status", "error"),
    [
        pytest.param({"tenant": "tierone"}, {"client_secret": "wrong"}, 401, "invalid_client", id="wrong-secret"),
        pytest.param({"tenant": "tierone"}, {"client_id": "someone"}, 401, "invalid_client", id="wrong-id"),
        pytest.param({}, {}, 400, "invalid_request", id="no-tenant"),
        pytest.param({"tenant": "tierone"}, {"scope": "read:tickets"}, 400, "invalid_scope", id="no-all-scope"),
        pytest.param({"tenant": "tierone"}, {"grant_type": "password"}, 400, "unsupported_grant_type", id="grant"),
    ],
)
def test_bad_token_requests_are_refused_oauth_style(halo, query, form, status, error):
    data = {
        "grant_type": "client_credentials",
        "client_id": halo.client_id,
        "client_secret": halo.client_secret,
        "scope": "all",
        **form,
    }
    response = httpx.post(f"{halo.url}/auth/token", params=query, data=data)
    assert response.status_code == status
    assert response.json()["error"] == error


def test_the_api_wants_a_valid_bearer_token(halo, world):
    assert httpx.get(f"{halo.url}/api/Client").status_code == 401
    bad = httpx.get(f"{halo.url}/api/Client", headers={"Authorization": "Bearer forged"})
    assert bad.status_code == 401
    assert "Bearer" in bad.headers["www-authenticate"]
    with api(halo) as http:
        assert http.get("/Client").status_code == 200
        halo.revoke_tokens()
        assert http.get("/Client").status_code == 401


def test_tokens_expire_after_their_lifetime(halo, world):
    halo.token_lifetime_s = 0.0
    try:
        with api(halo) as http:
            assert http.get("/Client").status_code == 401
    finally:
        halo.token_lifetime_s = 3600.0


def test_routes_ignore_case_as_in_aspnet(halo, world):
    with api(halo) as http:
        assert http.get("/client").json() == http.get("/CLIENT").json()
        assert http.get(f"/Users/{world['user']['id']}").json()["emailaddress"] == "anna.berg@contoso.example"


# ---------------------------------------------------------------------------------------------
# Tickets: reads, paging, date filter, writes
# ---------------------------------------------------------------------------------------------


def test_a_ticket_reads_with_its_client_user_and_details(halo, world):
    ticket = new_ticket(halo, world)
    with api(halo) as http:
        plain = http.get(f"/Tickets/{ticket['id']}").json()
        detailed = http.get(f"/Tickets/{ticket['id']}", params={"includedetails": "true"}).json()
    assert plain["summary"] == "Password reset"
    assert plain["details"] == "I forgot my password"
    assert plain["client_name"] == "Contoso Dental"
    assert plain["user_email"] == "anna.berg@contoso.example"
    assert plain["status_id"] == 1
    assert plain["hasbeenclosed"] is False
    assert "details_html" not in plain
    assert detailed["details_html"] == "<p>I forgot my password</p>"
    assert detailed["customfields"] == []


def test_a_missing_ticket_is_404(halo):
    with api(halo) as http:
        assert http.get("/Tickets/999999").status_code == 404


def test_tickets_page_with_pageinate_page_size_page_no_and_record_count(halo, world):
    ids = [new_ticket(halo, world, f"ticket {n}")["id"] for n in range(7)]
    with api(halo) as http:
        pages = [
            http.get(
                "/Tickets",
                params={"pageinate": "true", "page_size": 3, "page_no": n, "order": "id", "orderdesc": "false"},
            ).json()
            for n in (1, 2, 3)
        ]
        capped = http.get("/Tickets", params={"pageinate": "true", "page_size": 500}).json()
        bad = http.get("/Tickets", params={"pageinate": "maybe"})
    assert [p["record_count"] for p in pages] == [7, 7, 7]
    assert [p["page_no"] for p in pages] == [1, 2, 3]
    assert [t["id"] for p in pages for t in p["tickets"]] == ids
    assert [len(p["tickets"]) for p in pages] == [3, 3, 1]
    assert capped["page_size"] == 100
    assert bad.status_code == 400
    assert "pageinate" in bad.json()


def test_the_date_opened_filter_uses_halos_datesearch_column_names(halo, world):
    now = datetime.now(UTC)
    old = halo.create_ticket("old", "x", world["client"]["id"], None, opened_at=now - timedelta(days=3))
    recent = new_ticket(halo, world, "recent")
    since = (now - timedelta(hours=1)).strftime("%Y-%m-%dT%H:%M:%S")
    with api(halo) as http:
        found = http.get("/Tickets", params={"datesearch": "dateoccured", "startdate": since}).json()
        everything = http.get("/Tickets").json()
        wrong = http.get("/Tickets", params={"datesearch": "opened", "startdate": since})
    assert [t["id"] for t in found["tickets"]] == [recent["id"]]
    assert {t["id"] for t in everything["tickets"]} == {old["id"], recent["id"]}
    assert wrong.status_code == 400


def test_posting_an_array_creates_and_updates_and_one_record_answers_an_object(halo, world):
    with api(halo) as http:
        created = http.post(
            "/Tickets",
            json=[{"summary": "Printer", "details": "jammed", "client_id": world["client"]["id"], "tickettype_id": 1}],
        )
        ticket = created.json()
        updated = http.post("/Tickets", json=[{"id": ticket["id"], "status_id": 9}]).json()
        both = http.post("/Tickets", json=[{"id": ticket["id"], "summary": "A"}, {"id": ticket["id"], "summary": "B"}])
    assert created.status_code == 200
    assert isinstance(ticket, dict)
    assert ticket["summary"] == "Printer"
    assert updated["status_id"] == 9
    assert updated["hasbeenclosed"] is True
    assert isinstance(both.json(), list)
    assert halo.ticket(ticket["id"])["summary"] == "B"


@pytest.mark.parametrize(
    ("record", "key"),
    [
        pytest.param({"summary": "x", "client_id": 12.0}, "[0].client_id", id="float-id"),
        pytest.param({"summary": "", "client_id": 12}, "[0].summary", id="no-summary"),
        pytest.param({"summary": "x", "client_id": 12, "user_id": 100}, "[0].site_id", id="user-without-site"),
        pytest.param({"id": 4301, "status_id": 77}, "[0].status_id", id="unknown-status"),
        pytest.param({"id": 4301, "team": "Nobody"}, "[0].team", id="unknown-team"),
    ],
)
def test_ticket_writes_are_validated_like_halo(halo, world, record, key):
    new_ticket(halo, world)
    with api(halo) as http:
        response = http.post("/Tickets", json=[record])
    assert response.status_code == 400
    assert key in response.json()


def test_a_write_must_be_a_json_array(halo, world):
    with api(halo) as http:
        response = http.post("/Tickets", json={"summary": "x", "client_id": world["client"]["id"]})
    assert response.status_code == 400


# ---------------------------------------------------------------------------------------------
# Actions: outcome required, visibility, time, new_status
# ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "outcome",
    [pytest.param({}, id="none"), pytest.param({"outcome_id": 999}, id="unknown"), pytest.param({"outcome_id": 0})],
)
def test_an_action_without_a_valid_outcome_is_refused_with_halos_message(halo, world, outcome):
    ticket = new_ticket(halo, world)
    with api(halo) as http:
        response = http.post("/Actions", json=[{"ticket_id": ticket["id"], "note_html": "hi", **outcome}])
    assert response.status_code == 400
    assert response.json() == OUTCOME_REQUIRED
    assert halo.actions(ticket["id"]) == []


def test_actions_carry_visibility_time_and_html_only_on_request(halo, world):
    ticket = new_ticket(halo, world)
    with api(halo) as http:
        public = http.post(
            "/Actions",
            json=[
                {
                    "ticket_id": ticket["id"],
                    "outcome_id": 7,
                    "note_html": "<p>Done &amp; dusted</p>",
                    "hiddenfromuser": False,
                }
            ],
        ).json()
        private = http.post(
            "/Actions", json=[{"ticket_id": ticket["id"], "outcome_id": 7, "note": "internal", "timetaken": 0.25}]
        ).json()
        listed = http.get("/Actions", params={"ticket_id": ticket["id"]}).json()
        with_html = http.get("/Actions", params={"ticket_id": ticket["id"], "includehtmlnote": "true"}).json()
        public_only = http.get("/Actions", params={"ticket_id": ticket["id"], "excludeprivate": "true"}).json()
    assert public["note"] == "Done & dusted"
    assert public["hiddenfromuser"] is False
    assert private["hiddenfromuser"] is True  # outcome 7 (Internal Note) hides by default
    assert private["timetaken"] == 0.25
    assert private["who_agentid"] == halo.api_agent_id
    assert listed["record_count"] == 2
    assert all("note_html" not in a for a in listed["actions"])
    assert with_html["actions"][0]["note_html"] == "<p>Done &amp; dusted</p>"
    assert [a["id"] for a in public_only["actions"]] == [public["id"]]


def test_an_action_with_new_status_changes_the_ticket(halo, world):
    ticket = new_ticket(halo, world)
    with api(halo) as http:
        action = http.post(
            "/Actions", json=[{"ticket_id": ticket["id"], "outcome_id": 7, "note": "closing", "new_status": 9}]
        ).json()
    assert action["new_status_name"] == "Closed"
    assert halo.ticket(ticket["id"])["hasbeenclosed"] is True


def test_negative_time_is_refused(halo, world):
    ticket = new_ticket(halo, world)
    with api(halo) as http:
        response = http.post("/Actions", json=[{"ticket_id": ticket["id"], "outcome_id": 7, "timetaken": -1}])
    assert response.status_code == 400


# ---------------------------------------------------------------------------------------------
# Lookups: statuses, teams, outcomes, users, clients, Azure AD mappings
# ---------------------------------------------------------------------------------------------


def test_lookups_answer_halos_defaults(halo, world):
    with api(halo) as http:
        statuses = {s["id"]: s["name"] for s in http.get("/Status").json()}
        outcomes = {o["id"]: o for o in http.get("/Outcome").json()}
        teams = [t["name"] for t in http.get("/Team").json()]
        me = http.get("/Agent/me").json()
        users = http.get("/Users", params={"client_id": world["client"]["id"], "search": "anna.berg"}).json()
        clients = http.get("/Client", params={"pageinate": "true", "page_size": 10, "page_no": 1}).json()
    assert statuses[1] == "New"
    assert statuses[9] == "Closed"
    assert outcomes[7]["outcome"] == "Internal Note"
    assert outcomes[7]["hidefromuser"] is True
    assert "2nd Line Support" in teams
    assert me["id"] == halo.api_agent_id
    assert me["isapiagent"] is True
    assert [u["emailaddress"] for u in users["users"]] == ["anna.berg@contoso.example"]
    assert clients["record_count"] == 1
    assert clients["clients"][0]["name"] == "Contoso Dental"


def test_the_azure_ad_connection_maps_clients_to_tenants(halo, world):
    with api(halo) as http:
        connections = http.get("/AzureADConnection", params={"type": 2}).json()
        other_type = http.get("/AzureADConnection", params={"type": 1}).json()
        detail = http.get(
            f"/AzureADConnection/{connections[0]['id']}", params={"includedetails": "true", "includetenants": "true"}
        ).json()
        bare = http.get(f"/AzureADConnection/{connections[0]['id']}").json()
    assert len(connections) == 1
    assert other_type == []
    assert [(m["client_id"], m["azure_tenant_id"]) for m in detail["mappings_client"]] == [
        (world["client"]["id"], TENANT_ID)
    ]
    assert "mappings_client" not in bare


# ---------------------------------------------------------------------------------------------
# Rate limit and injected faults
# ---------------------------------------------------------------------------------------------


def test_the_rolling_rate_limit_answers_429_with_halos_message(halo, world):
    with api(halo) as http:
        halo.rate_limit = 4
        try:
            answers = [http.get("/Status") for _ in range(6)]
        finally:
            halo.rate_limit = 300
    assert [a.status_code for a in answers] == [200, 200, 200, 200, 429, 429]
    assert answers[-1].text == "Rate Limit Reached - 4 Requests per rolling 5 minute window"


def test_the_default_limit_is_300_requests_per_rolling_5_minutes(halo):
    assert (halo.rate_limit, halo.rate_window_s) == (300, 300.0)


def test_the_window_rolls(halo, world):
    halo.rate_limit, halo.rate_window_s = 2, 0.2
    try:
        with api(halo) as http:
            first = [http.get("/Status").status_code for _ in range(3)]
            threading.Event().wait(0.25)
            after = http.get("/Status").status_code
    finally:
        halo.rate_limit, halo.rate_window_s = 300, 300.0
    assert first == [200, 200, 429]
    assert after == 200


def test_fail_next_answers_injected_statuses_before_anything_else(halo, world):
    halo.faults.fail_next(2, 503)
    response = [httpx.get(f"{halo.url}/api/Status").status_code for _ in range(3)]
    assert response == [503, 503, 401]
    assert [r.status for r in halo.request_log] == [503, 503, 401]


# ---------------------------------------------------------------------------------------------
# Webhooks: the API and outbound deliveries
# ---------------------------------------------------------------------------------------------


def test_the_webhook_api_creates_updates_hides_the_password_and_deletes(halo, receiver):
    record = {
        "name": "TierOne",
        "url": receiver.url,
        "authentication_type": 1,
        "basic_username": WEBHOOK_USER,
        "basic_password": WEBHOOK_PASSWORD,
        "payload_type": PAYLOAD_EVENT_ONLY,
        "events": [{"id": 0, "name": "New Ticket Logged"}],
    }
    with api(halo) as http:
        created = http.post("/Webhook", json=[record]).json()
        listed = http.get("/Webhook").json()
        detail = http.get(f"/Webhook/{created['id']}", params={"includedetails": "true"}).json()
        updated = http.post("/Webhook", json=[{"id": created["id"], "disabled": True}]).json()
        no_events = http.post("/Webhook", json=[{**record, "events": []}])
        deleted = http.delete(f"/Webhook/{created['id']}")
        gone = http.get(f"/Webhook/{created['id']}")
    assert uuid.UUID(created["id"])
    assert "basic_password" not in created
    assert [w["id"] for w in listed] == [created["id"]]
    assert "events" not in listed[0]
    assert detail["events"][0]["name"] == "New Ticket Logged"
    assert isinstance(detail["events"][0]["id"], int)
    assert updated["disabled"] is True
    assert updated["events"] == detail["events"]
    assert no_events.status_code == 400
    assert deleted.status_code == 200
    assert gone.status_code == 404


def test_a_new_ticket_is_posted_with_basic_auth_and_halos_envelope(halo, world, receiver):
    webhook = halo.register_webhook(receiver.url, username=WEBHOOK_USER, password=WEBHOOK_PASSWORD)
    ticket = new_ticket(halo, world)
    halo.wait_for_deliveries(5)
    [delivery] = halo.deliveries
    [received] = receiver.received
    body = received.json()
    expected = base64.b64encode(f"{WEBHOOK_USER}:{WEBHOOK_PASSWORD}".encode()).decode()
    assert delivery.delivered
    assert received.headers["authorization"] == f"Basic {expected}"
    assert received.headers["content-type"] == "application/json"
    assert uuid.UUID(body["id"])
    assert uuid.UUID(body["escmsg_id"])
    assert body["webhook_id"] == webhook["id"]
    assert isinstance(body["notification_id"], int)
    assert body["event"] == "new ticket logged"
    assert body["object_id"] == ticket["id"]
    assert body["agent_id"] == halo.human_agent_id
    assert body["message"] == f"A new Ticket has been logged: {ticket['id']:07d}."
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{7}Z", body["timestamp"])
    assert "ticket" not in body  # event information only


@pytest.mark.parametrize(
    ("payload_type", "keys"),
    [(PAYLOAD_SMALL, {"id", "summary", "status_id", "client_id", "hasbeenclosed"}), (PAYLOAD_FULL, {"user_email"})],
)
def test_small_and_full_payloads_carry_the_ticket(halo, world, receiver, payload_type, keys):
    halo.register_webhook(receiver.url, username=WEBHOOK_USER, password=WEBHOOK_PASSWORD, payload_type=payload_type)
    ticket = new_ticket(halo, world)
    halo.wait_for_deliveries(5)
    nested = receiver.received[0].json()["ticket"]
    assert nested["id"] == ticket["id"]
    assert keys <= set(nested)


def test_every_delivery_has_its_own_id_and_events_go_only_to_subscribers(halo, world, receiver):
    halo.register_webhook(receiver.url, username=WEBHOOK_USER, password=WEBHOOK_PASSWORD)
    halo.register_webhook(receiver.url, name="status", events=("Ticket Status Changed",))
    first, second = new_ticket(halo, world), new_ticket(halo, world)
    halo.set_ticket_status(first["id"], 2)
    halo.wait_for_deliveries(5)
    events = sorted((d.event, d.object_id) for d in halo.deliveries)
    assert events == [
        ("new ticket logged", first["id"]),
        ("new ticket logged", second["id"]),
        ("ticket status changed", first["id"]),
    ]
    assert len({d.delivery_id for d in halo.deliveries}) == 3
    unauthenticated = [r for r in receiver.received if r.json()["event"] == "ticket status changed"]
    assert "authorization" not in unauthenticated[0].headers


def test_api_writes_fire_events_with_the_api_agent_as_actor(halo, world, receiver):
    halo.register_webhook(receiver.url, events=("New Ticket Logged", "Ticket Status Changed"))
    with api(halo) as http:
        created = http.post("/Tickets", json=[{"summary": "via API", "client_id": world["client"]["id"]}]).json()
        http.post("/Tickets", json=[{"id": created["id"], "status_id": 9}])
    halo.wait_for_deliveries(5)
    assert {(d.event, d.agent_id) for d in halo.deliveries} == {
        ("new ticket logged", halo.api_agent_id),
        ("ticket status changed", halo.api_agent_id),
    }


def test_failed_deliveries_are_retried_then_given_up(halo, world, receiver):
    halo.register_webhook(receiver.url, username=WEBHOOK_USER, password=WEBHOOK_PASSWORD)
    receiver.answer_next(500, 503)
    new_ticket(halo, world)
    halo.wait_for_deliveries(5)
    receiver.answer_next(500, 500, 500, 500)
    new_ticket(halo, world, "never lands")
    halo.wait_for_deliveries(5)
    by_attempts = sorted((d.attempts, d.delivered) for d in halo.deliveries)
    assert by_attempts == [(3, True), (4, False)]
    ids = {r.json()["id"] for r in receiver.received}
    assert len(ids) == 2  # a retry re-sends the same delivery id


def test_dropped_and_disabled_webhooks_send_nothing(halo, world, receiver):
    webhook = halo.register_webhook(receiver.url, username=WEBHOOK_USER, password=WEBHOOK_PASSWORD)
    halo.faults.drop_webhooks = True
    new_ticket(halo, world)
    halo.faults.drop_webhooks = False
    with api(halo) as http:
        http.post("/Webhook", json=[{"id": webhook["id"], "disabled": True}])
    new_ticket(halo, world)
    halo.wait_for_deliveries(5)
    assert [d.dropped for d in halo.deliveries] == [True]
    assert receiver.received == []


def test_everything_text_holds_ticket_and_action_text(halo, world):
    ticket = new_ticket(halo, world)
    with api(halo) as http:
        http.post("/Actions", json=[{"ticket_id": ticket["id"], "outcome_id": 7, "note": "a distinctive note"}])
    text = halo.everything_text()
    assert "I forgot my password" in text
    assert "a distinctive note" in text

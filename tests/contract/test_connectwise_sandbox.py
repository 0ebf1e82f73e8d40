"""The ConnectWise sandbox keeps ConnectWise's contract (psa.md §1), checked over real HTTP.

If one of these fails, the sandbox has drifted from the vendor and every client test that
runs against it proves less than it claims.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import httpx
import pytest
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from sandbox._server import BackgroundServer
from sandbox.connectwise import ConnectWiseSandbox

# ---------------------------------------------------------------------------------------------
# Fixtures: a sandbox, a callback receiver, a seeded tenant
# ---------------------------------------------------------------------------------------------


@dataclass
class Received:
    path: str
    query: str
    headers: dict[str, str]
    body: bytes

    def json(self) -> Any:
        return json.loads(self.body)


@dataclass
class Receiver:
    """A stand-in for our webhook endpoint: records every POST, answers scripted statuses."""

    server: BackgroundServer | None = None
    received: list[Received] = field(default_factory=list)
    script: list[int] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)

    @property
    def url(self) -> str:
        assert self.server is not None
        return f"{self.server.url}/api/psa/connectwise/t-1?code=xyz&recordId="

    def answer_next(self, *statuses: int) -> None:
        with self.lock:
            self.script.extend(statuses)

    async def handle(self, request: Request) -> Response:
        body = await request.body()
        with self.lock:
            self.received.append(Received(request.url.path, request.url.query, dict(request.headers), body))
            status = self.script.pop(0) if self.script else 200
        return JSONResponse({"ok": status < 300}, status_code=status)


@dataclass
class Tenant:
    company: dict[str, Any]
    contact: dict[str, Any]
    board: dict[str, Any]
    other_board: dict[str, Any]


@pytest.fixture(scope="module")
def running_sandbox() -> Iterator[ConnectWiseSandbox]:
    # One server per module (stopping uvicorn costs ~0.2 s); every test gets a clean tenant.
    cw = ConnectWiseSandbox(retry_delays=(0.05, 0.1)).start()
    yield cw
    cw.stop()


@pytest.fixture
def sandbox(running_sandbox: ConnectWiseSandbox) -> ConnectWiseSandbox:
    running_sandbox.reset()
    return running_sandbox


@pytest.fixture(scope="module")
def running_receiver() -> Iterator[Receiver]:
    receiver = Receiver()
    app = Starlette(routes=[Route("/{path:path}", receiver.handle, methods=["POST"])])
    receiver.server = BackgroundServer(app, name="callback-receiver").start()
    yield receiver
    receiver.server.stop()


@pytest.fixture
def receiver(running_receiver: Receiver, sandbox: ConnectWiseSandbox) -> Receiver:
    with running_receiver.lock:
        running_receiver.received.clear()
        running_receiver.script.clear()
    return running_receiver


@pytest.fixture
def api(sandbox: ConnectWiseSandbox) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=sandbox.api_url, headers=sandbox.auth_headers(), timeout=5) as client:
        yield client


@pytest.fixture
def tenant(sandbox: ConnectWiseSandbox) -> Tenant:
    company = sandbox.add_company("Fabrikam, Inc.", "FabrikamInc", {"M365 Tenant": "fabrikam.onmicrosoft.com"})
    contact = sandbox.add_contact(company["id"], "Jane", "Doe", "jane.doe@fabrikam.com")
    return Tenant(company, contact, sandbox.add_board("L1 Service Desk"), sandbox.add_board("Projects"))


def new_ticket(sandbox: ConnectWiseSandbox, tenant: Tenant, summary: str = "Password reset for Jane Doe") -> int:
    ticket = sandbox.create_ticket(
        summary, "I forgot my password", tenant.company["id"], tenant.contact["id"], tenant.board["id"]
    )
    return int(ticket["id"])


def verify_like_a_client(delivery: Received) -> dict[str, Any]:
    """What our webhook does: fetch the key from key_url, HMAC the raw bytes, compare."""
    envelope = delivery.json()
    signing_key = httpx.get(envelope["Metadata"]["key_url"]).json()["signing_key"]
    key = hashlib.sha256(signing_key.encode("utf-8")).digest()
    expected = base64.b64encode(hmac.new(key, delivery.body, hashlib.sha256).digest()).decode()
    assert hmac.compare_digest(expected, delivery.headers["x-content-signature"])
    return dict(envelope)


def time_entry(ticket_id: int, **overrides: Any) -> dict[str, Any]:
    body = {
        "chargeToType": "ServiceTicket",
        "chargeToId": ticket_id,
        "timeStart": "2026-01-01T10:00:00Z",
        "timeEnd": "2026-01-01T10:15:00Z",
        "notes": "Password reset; user verified by callback.",
        "billableOption": "Billable",
    }
    return body | overrides


def close_by_name(api: httpx.Client, ticket_id: int, name: str = "Closed") -> httpx.Response:
    return api.patch(
        f"/service/tickets/{ticket_id}", json=[{"op": "replace", "path": "status", "value": {"name": name}}]
    )


# ---------------------------------------------------------------------------------------------
# Discovery and authentication
# ---------------------------------------------------------------------------------------------


def test_companyinfo_tells_the_codebase_without_credentials(sandbox: ConnectWiseSandbox) -> None:
    info = httpx.get(f"{sandbox.url}/login/companyinfo/{sandbox.company_id}").json()

    assert info["Codebase"] == "v2025_1/"
    assert info["CompanyID"] == sandbox.company_id
    assert info["IsCloud"] is True
    assert f"{sandbox.url}/{info['Codebase']}apis/3.0" == sandbox.api_url


def test_a_request_without_client_id_is_refused_with_a_cw_shaped_401(sandbox: ConnectWiseSandbox) -> None:
    headers = sandbox.auth_headers()
    del headers["clientId"]

    response = httpx.get(f"{sandbox.api_url}/service/boards", headers=headers)

    assert response.status_code == 401
    assert response.json()["code"] == "Unauthorized"
    assert set(response.json()) == {"code", "message", "errors"}


@pytest.mark.parametrize(
    "credentials",
    ["tierone-msp+sbxPublicKey4tier1:wrong-private", "other-msp+sbxPublicKey4tier1:sbxPrivateKey4tier1"],
)
def test_wrong_company_or_key_is_refused(sandbox: ConnectWiseSandbox, credentials: str) -> None:
    headers = sandbox.auth_headers() | {"Authorization": "Basic " + base64.b64encode(credentials.encode()).decode()}

    assert httpx.get(f"{sandbox.api_url}/service/boards", headers=headers).status_code == 401


def test_an_unknown_client_id_is_refused(sandbox: ConnectWiseSandbox) -> None:
    headers = sandbox.auth_headers() | {"clientId": "00000000-0000-0000-0000-000000000000"}

    assert httpx.get(f"{sandbox.api_url}/service/boards", headers=headers).status_code == 401


def test_correct_credentials_are_accepted_and_the_pinned_version_is_recorded(
    sandbox: ConnectWiseSandbox, api: httpx.Client
) -> None:
    response = api.get("/system/info", headers={"Accept": "application/vnd.connectwise.com+json; version=2025.16"})

    assert response.status_code == 200
    assert sandbox.api_versions_seen == ["2025.16"]
    assert sandbox.request_log[-1].path == "/system/info"


def test_an_unknown_ticket_is_a_404_naming_the_ticket(api: httpx.Client) -> None:
    response = api.get("/service/tickets/123")

    assert response.status_code == 404
    assert response.json() == {"code": "NotFound", "message": "Ticket ID 123 not found", "errors": None}


def test_an_unknown_route_is_a_cw_shaped_404(api: httpx.Client) -> None:
    response = api.get("/service/nothing-here")

    assert response.status_code == 404
    assert response.json()["code"] == "NotFound"


def test_a_body_that_is_not_json_is_a_400(api: httpx.Client, tenant: Tenant) -> None:
    response = api.post("/service/tickets", content=b"{not json", headers={"Content-Type": "application/json"})

    assert response.status_code == 400
    assert response.json()["code"] == "InvalidObject"


# ---------------------------------------------------------------------------------------------
# Reading and creating tickets
# ---------------------------------------------------------------------------------------------


def test_a_ticket_created_through_the_api_lands_on_the_default_status_with_its_description_as_first_note(
    sandbox: ConnectWiseSandbox, api: httpx.Client, tenant: Tenant
) -> None:
    created = api.post(
        "/service/tickets",
        json={
            "summary": "New starter: Bob",
            "board": {"id": tenant.board["id"]},
            "company": {"id": tenant.company["id"]},
            "contact": {"id": tenant.contact["id"]},
            "initialDescription": "Please create an account for Bob.",
        },
    )
    ticket = api.get(f"/service/tickets/{created.json()['id']}").json()
    notes = api.get(f"/service/tickets/{ticket['id']}/notes").json()

    assert created.status_code == 201
    assert ticket["status"]["name"] == "New"
    assert ticket["recordType"] == "ServiceTicket"
    assert ticket["contactEmailAddress"] == "jane.doe@fabrikam.com"
    assert ticket["_info"]["enteredBy"] == sandbox.api_member_identifier
    assert "initialDescription" not in ticket
    assert notes[0]["text"] == "Please create an account for Bob."
    assert notes[0]["detailDescriptionFlag"] is True


def test_a_summary_longer_than_100_characters_is_refused(api: httpx.Client, tenant: Tenant) -> None:
    response = api.post("/service/tickets", json={"summary": "x" * 101, "company": {"id": tenant.company["id"]}})

    assert response.status_code == 400
    assert response.json()["errors"][0]["code"] == "MaxLengthField"


def test_null_fields_are_left_out_of_entities_as_cw_does(
    sandbox: ConnectWiseSandbox, api: httpx.Client, tenant: Tenant
) -> None:
    ticket = api.get(f"/service/tickets/{new_ticket(sandbox, tenant)}").json()

    assert "closedDate" not in ticket
    assert "type" not in ticket
    assert ticket["closedFlag"] is False


def test_company_and_contact_expose_what_tenant_mapping_and_verification_need(
    api: httpx.Client, tenant: Tenant
) -> None:
    company = api.get(f"/company/companies/{tenant.company['id']}").json()
    contact = api.get(f"/company/contacts/{tenant.contact['id']}").json()

    assert company["customFields"][0]["caption"] == "M365 Tenant"
    assert company["customFields"][0]["value"] == "fabrikam.onmicrosoft.com"
    email = [item for item in contact["communicationItems"] if item["communicationType"] == "Email"]
    assert email[0]["value"] == "jane.doe@fabrikam.com"
    assert email[0]["defaultFlag"] is True


# ---------------------------------------------------------------------------------------------
# Callbacks: delivery, signature, retries, suppression, registration
# ---------------------------------------------------------------------------------------------


def test_a_ticket_created_in_the_ui_fires_a_signed_added_callback_to_url_plus_id(
    sandbox: ConnectWiseSandbox, receiver: Receiver, tenant: Tenant
) -> None:
    registration = sandbox.register_callback(receiver.url, level="board", object_id=tenant.board["id"])
    ticket_id = new_ticket(sandbox, tenant)
    sandbox.wait_for_deliveries(5)

    [delivery] = receiver.received
    envelope = verify_like_a_client(delivery)
    entity = json.loads(envelope["Entity"])
    assert delivery.query.endswith(f"recordId={ticket_id}")
    assert delivery.headers["content-type"] == "application/json"
    assert envelope["Action"] == "added"
    assert envelope["Type"] == "ticket"
    assert envelope["ID"] == ticket_id
    assert envelope["MemberId"] == "jsmith"
    assert envelope["CompanyId"] == sandbox.company_id
    assert envelope["CallbackObjectRecId"] == registration["id"]
    assert envelope["Metadata"]["key_url"].startswith(sandbox.key_origin)
    assert isinstance(envelope["Entity"], str)
    assert entity == sandbox.ticket(ticket_id)


def test_api_writes_fire_updated_callbacks_naming_the_api_member(
    sandbox: ConnectWiseSandbox, receiver: Receiver, api: httpx.Client, tenant: Tenant
) -> None:
    ticket_id = new_ticket(sandbox, tenant)
    sandbox.register_callback(receiver.url)

    api.post(f"/service/tickets/{ticket_id}/notes", json={"text": "Working on it", "internalAnalysisFlag": True})
    sandbox.wait_for_deliveries(5)

    [delivery] = receiver.received
    envelope = verify_like_a_client(delivery)
    assert envelope["Action"] == "updated"
    assert envelope["MemberId"] == sandbox.api_member_identifier


def test_every_message_has_its_own_message_id(sandbox: ConnectWiseSandbox, receiver: Receiver, tenant: Tenant) -> None:
    sandbox.register_callback(receiver.url)
    new_ticket(sandbox, tenant)
    new_ticket(sandbox, tenant)
    sandbox.wait_for_deliveries(5)

    assert len({delivery.json()["MessageId"] for delivery in receiver.received}) == 2


def test_the_signing_key_endpoint_needs_no_credentials_and_accepts_cws_double_slash(
    sandbox: ConnectWiseSandbox,
) -> None:
    double_slash = sandbox.key_url.replace(f"/{sandbox.codebase}", f"/{sandbox.codebase}/")

    assert httpx.get(sandbox.key_url).json() == {"signing_key": sandbox.signing_key}
    assert httpx.get(double_slash).json() == {"signing_key": sandbox.signing_key}
    assert httpx.get(sandbox.key_url.replace(sandbox.key_id, "not-a-key-id")).status_code == 404


def test_a_429_from_the_receiver_is_retried_twice_with_the_same_message(
    sandbox: ConnectWiseSandbox, receiver: Receiver, tenant: Tenant
) -> None:
    sandbox.register_callback(receiver.url)
    receiver.answer_next(429, 429, 200)

    new_ticket(sandbox, tenant)
    sandbox.wait_for_deliveries(5)

    [record] = sandbox.deliveries
    assert record.attempts == 3
    assert record.status_code == 200
    assert len({delivery.json()["MessageId"] for delivery in receiver.received}) == 1


def test_retries_stop_after_two_and_a_500_is_never_retried(
    sandbox: ConnectWiseSandbox, receiver: Receiver, tenant: Tenant
) -> None:
    sandbox.register_callback(receiver.url)
    receiver.answer_next(404, 409, 419, 500)

    new_ticket(sandbox, tenant)
    sandbox.wait_for_deliveries(5)
    new_ticket(sandbox, tenant)
    sandbox.wait_for_deliveries(5)

    first, second = sandbox.deliveries
    assert (first.attempts, first.status_code, first.delivered) == (3, 419, False)
    assert (second.attempts, second.status_code) == (1, 500)


def test_a_self_suppressed_callback_ignores_api_member_saves_but_not_people(
    sandbox: ConnectWiseSandbox, receiver: Receiver, api: httpx.Client, tenant: Tenant
) -> None:
    sandbox.register_callback(receiver.url, self_suppressed=True)
    ticket_id = new_ticket(sandbox, tenant)

    close_by_name(api, ticket_id, "In Progress")
    sandbox.set_ticket_status(ticket_id, "Waiting Customer", changed_by="jsmith")
    sandbox.wait_for_deliveries(5)

    assert [d.json()["MemberId"] for d in receiver.received] == ["jsmith", "jsmith"]


def test_a_board_level_callback_only_hears_about_its_board(
    sandbox: ConnectWiseSandbox, receiver: Receiver, tenant: Tenant
) -> None:
    sandbox.register_callback(receiver.url, level="board", object_id=tenant.other_board["id"])

    new_ticket(sandbox, tenant)
    sandbox.wait_for_deliveries(5)

    assert receiver.received == []


def test_a_deleted_ticket_fires_a_deleted_callback_with_a_null_entity(
    sandbox: ConnectWiseSandbox, receiver: Receiver, api: httpx.Client, tenant: Tenant
) -> None:
    ticket_id = new_ticket(sandbox, tenant)
    sandbox.register_callback(receiver.url)

    assert api.delete(f"/service/tickets/{ticket_id}").status_code == 204
    sandbox.wait_for_deliveries(5)

    envelope = verify_like_a_client(receiver.received[0])
    assert (envelope["Action"], envelope["Entity"], envelope["ID"]) == ("deleted", None, ticket_id)


def test_inactive_callbacks_and_dropped_callbacks_deliver_nothing(
    sandbox: ConnectWiseSandbox, receiver: Receiver, tenant: Tenant
) -> None:
    sandbox.register_callback(receiver.url, inactive=True)
    sandbox.register_callback(receiver.url, level="board", object_id=tenant.board["id"])
    sandbox.faults.drop_callbacks = True

    new_ticket(sandbox, tenant)
    sandbox.wait_for_deliveries(5)

    assert receiver.received == []
    assert [record.dropped for record in sandbox.deliveries] == [True]


def test_registering_the_same_callback_twice_is_refused_as_object_exists(api: httpx.Client, receiver: Receiver) -> None:
    body = {"url": receiver.url, "objectId": 0, "type": "ticket", "level": "owner", "isSelfSuppressedFlag": True}

    first = api.post("/system/callbacks", json=body)
    second = api.post("/system/callbacks", json=body)

    assert first.status_code == 201
    assert first.json()["objectId"] == 1  # owner level: CW stores 1 whatever was sent
    assert second.status_code == 400
    assert second.json()["code"] == "InvalidObject"
    assert second.json()["errors"] == [
        {
            "code": "ObjectExists",
            "message": "A matching callback entry already exists",
            "resource": "callbackEntry",
            "field": "objectId",
        }
    ]


def test_a_callback_with_a_bad_url_or_level_is_refused_field_by_field(api: httpx.Client) -> None:
    response = api.post("/system/callbacks", json={"url": "not a url", "objectId": 1, "type": "ticket", "level": "x"})

    assert response.status_code == 400
    assert {error["field"] for error in response.json()["errors"]} == {"url", "level"}


def test_callbacks_can_be_read_patched_replaced_and_deleted(api: httpx.Client, receiver: Receiver) -> None:
    created = api.post(
        "/system/callbacks", json={"url": receiver.url, "objectId": 12, "type": "ticket", "level": "board"}
    ).json()
    path = f"/system/callbacks/{created['id']}"

    patched = api.patch(path, json=[{"op": "replace", "path": "inactiveFlag", "value": True}])
    replaced = api.put(path, json=patched.json() | {"description": "L1 bot - board 12"})
    listed = api.get("/system/callbacks").json()
    deleted = api.delete(path)

    assert patched.json()["inactiveFlag"] is True
    assert replaced.json()["description"] == "L1 bot - board 12"
    assert replaced.json()["connectWiseID"] == created["connectWiseID"]
    assert [item["id"] for item in listed] == [created["id"]]
    assert deleted.status_code == 204
    assert api.get(path).status_code == 404


# ---------------------------------------------------------------------------------------------
# Status changes and closing
# ---------------------------------------------------------------------------------------------


def test_a_status_of_another_board_is_refused_naming_status_and_board(
    sandbox: ConnectWiseSandbox, api: httpx.Client, tenant: Tenant
) -> None:
    ticket_id = new_ticket(sandbox, tenant)
    foreign = sandbox.status_id(tenant.other_board["id"], "Closed")

    response = api.patch(
        f"/service/tickets/{ticket_id}", json=[{"op": "replace", "path": "status", "value": {"id": foreign}}]
    )

    assert response.status_code == 400
    assert response.json() == {
        "code": "InvalidObject",
        "message": "ticket object is invalid",
        "errors": [
            {
                "code": "NotFound",
                "message": f"Service Status {foreign} not found for Service Board {tenant.board['id']}",
                "resource": "ticket",
                "field": "status/id",
            }
        ],
    }


def test_patching_status_slash_id_answers_200_and_changes_nothing(
    sandbox: ConnectWiseSandbox, api: httpx.Client, tenant: Tenant
) -> None:
    ticket_id = new_ticket(sandbox, tenant)
    closed = sandbox.status_id(tenant.board["id"], "Closed")

    response = api.patch(
        f"/service/tickets/{ticket_id}", json=[{"op": "replace", "path": "status/id", "value": closed}]
    )

    assert response.status_code == 200
    assert sandbox.ticket(ticket_id)["status"]["name"] == "New"


def test_moving_to_a_closed_status_closes_the_ticket(
    sandbox: ConnectWiseSandbox, api: httpx.Client, tenant: Tenant
) -> None:
    ticket_id = new_ticket(sandbox, tenant)

    response = close_by_name(api, ticket_id)

    assert response.status_code == 200
    assert response.json()["status"]["name"] == "Closed"
    assert response.json()["closedFlag"] is True
    assert response.json()["closedDate"].endswith("Z")
    assert response.json()["_info"]["updatedBy"] == sandbox.api_member_identifier


# ---------------------------------------------------------------------------------------------
# Notes and time entries
# ---------------------------------------------------------------------------------------------


def test_a_note_without_a_note_type_flag_is_refused(
    sandbox: ConnectWiseSandbox, api: httpx.Client, tenant: Tenant
) -> None:
    response = api.post(f"/service/tickets/{new_ticket(sandbox, tenant)}/notes", json={"text": "hello"})

    assert response.status_code == 400
    assert response.json()["code"] == "InvalidObject"


def test_a_note_written_with_the_api_keys_is_created_by_the_api_member(
    sandbox: ConnectWiseSandbox, api: httpx.Client, tenant: Tenant
) -> None:
    ticket_id = new_ticket(sandbox, tenant)

    note = api.post(f"/service/tickets/{ticket_id}/notes", json={"text": "Done.", "resolutionFlag": True}).json()

    assert note["createdBy"] == sandbox.api_member_identifier
    assert note["ticketId"] == ticket_id
    assert note["externalFlag"] is True
    assert sandbox.notes(ticket_id)[-1]["text"] == "Done."


@pytest.mark.parametrize(
    ("field_name", "value"),
    [("timeStart", "2026-01-01T10:00:00.000Z"), ("timeStart", "2026-01-01T10:00:00"), ("timeEnd", "2026-01-01 10:15")],
)
def test_time_outside_the_exact_utc_seconds_format_is_unsupported(
    sandbox: ConnectWiseSandbox, api: httpx.Client, tenant: Tenant, field_name: str, value: str
) -> None:
    response = api.post("/time/entries", json=time_entry(new_ticket(sandbox, tenant), **{field_name: value}))

    assert response.status_code == 400
    assert response.json()["code"] == "UnsupportedFormat"
    assert response.json()["errors"][0]["field"] == field_name


def test_a_time_entry_is_refused_once_the_status_forbids_time(
    sandbox: ConnectWiseSandbox, api: httpx.Client, tenant: Tenant
) -> None:
    ticket_id = new_ticket(sandbox, tenant)
    close_by_name(api, ticket_id)

    response = api.post("/time/entries", json=time_entry(ticket_id))

    assert response.status_code == 400
    assert response.json()["code"] == "TimeEntryApi"
    assert response.json()["message"].startswith("Please update the status of this ticket before entering time")


def test_a_time_entry_on_a_missing_ticket_is_refused(api: httpx.Client) -> None:
    response = api.post("/time/entries", json=time_entry(999))

    assert response.status_code == 400
    assert response.json()["errors"][0]["field"] == "chargeToId"


def test_time_entries_derive_hours_and_can_be_found_by_ticket(
    sandbox: ConnectWiseSandbox, api: httpx.Client, tenant: Tenant
) -> None:
    ticket_id = new_ticket(sandbox, tenant)
    other_id = new_ticket(sandbox, tenant)
    api.post("/time/entries", json=time_entry(other_id))

    created = api.post("/time/entries", json=time_entry(ticket_id)).json()
    found = api.get(
        "/time/entries", params={"conditions": f'chargeToId={ticket_id} AND chargeToType="ServiceTicket"'}
    ).json()

    assert created["actualHours"] == 0.25
    assert created["member"]["identifier"] == sandbox.api_member_identifier
    assert [entry["id"] for entry in found] == [created["id"]]
    assert sandbox.time_entries(ticket_id)[0]["notes"] == "Password reset; user verified by callback."


# ---------------------------------------------------------------------------------------------
# Conditions and paging
# ---------------------------------------------------------------------------------------------


def test_paging_follows_the_link_header_until_there_is_no_next(
    sandbox: ConnectWiseSandbox, api: httpx.Client, tenant: Tenant
) -> None:
    ids = [new_ticket(sandbox, tenant, f"Ticket {n}") for n in range(5)]

    first = api.get("/service/tickets", params={"conditions": 'board/name="L1 Service Desk"', "pageSize": 2})
    seen = [ticket["id"] for ticket in first.json()]
    response = first
    while "next" in response.links:
        response = api.get(response.links["next"]["url"])
        seen += [ticket["id"] for ticket in response.json()]

    assert "page=3" in first.links["last"]["url"]
    assert "conditions=" in first.links["next"]["url"]
    assert seen == ids


@pytest.mark.parametrize(
    ("conditions", "expected"),
    [
        ('summary contains "vpn"', ["VPN down"]),
        ('summary != "VPN down"', ["Password reset", "New starter"]),
        ('summary="password reset" or summary="new starter"', ["Password reset", "New starter"]),
        ('company/id=250 and (status/name="New" or closedFlag=true)', ["Password reset", "VPN down", "New starter"]),
        ("_info/dateEntered > [2000-01-01T00:00:00Z]", ["Password reset", "VPN down", "New starter"]),
        ("_info/dateEntered < [2000-01-01T00:00:00Z]", []),
        ('summary like "New%"', ["New starter"]),
        ("id in (512345, 512347)", ["Password reset", "New starter"]),
    ],
)
def test_conditions_filter_like_cw(
    sandbox: ConnectWiseSandbox, api: httpx.Client, tenant: Tenant, conditions: str, expected: list[str]
) -> None:
    for summary in ("Password reset", "VPN down", "New starter"):
        new_ticket(sandbox, tenant, summary)

    response = api.get("/service/tickets", params={"conditions": conditions})

    assert response.status_code == 200
    assert [ticket["summary"] for ticket in response.json()] == expected


def test_child_and_custom_field_conditions_search_inside_arrays(api: httpx.Client, tenant: Tenant) -> None:
    by_email = api.get(
        "/company/contacts", params={"childConditions": 'communicationItems/value="JANE.DOE@fabrikam.com"'}
    )
    by_tenant = api.get(
        "/company/companies",
        params={"customFieldConditions": 'caption="M365 Tenant" and value="fabrikam.onmicrosoft.com"'},
    )

    assert [contact["id"] for contact in by_email.json()] == [tenant.contact["id"]]
    assert [company["id"] for company in by_tenant.json()] == [tenant.company["id"]]


def test_order_by_fields_and_count_shape_the_answer(
    sandbox: ConnectWiseSandbox, api: httpx.Client, tenant: Tenant
) -> None:
    ids = [new_ticket(sandbox, tenant, f"Ticket {n}") for n in range(3)]

    newest_first = api.get("/service/tickets", params={"orderBy": "id desc", "fields": "id,board/name"}).json()
    count = api.get("/service/tickets/count", params={"conditions": "closedFlag=false"}).json()

    assert newest_first == [{"id": i, "board": {"name": "L1 Service Desk"}} for i in reversed(ids)]
    assert count == {"count": 3}


def test_forward_only_paging_walks_by_page_id(sandbox: ConnectWiseSandbox, api: httpx.Client, tenant: Tenant) -> None:
    ids = [new_ticket(sandbox, tenant, f"Ticket {n}") for n in range(3)]

    first = api.get("/service/tickets", params={"pageSize": 2}, headers={"pagination-type": "forward-only"})
    second = api.get(first.links["next"]["url"], headers={"pagination-type": "forward-only"})

    assert f"pageId={ids[1]}" in first.links["next"]["url"]
    assert [t["id"] for t in first.json() + second.json()] == ids
    assert "next" not in second.links


def test_unparseable_conditions_are_a_cw_shaped_400(api: httpx.Client) -> None:
    response = api.get("/service/tickets", params={"conditions": 'summary = "unterminated'})

    assert response.status_code == 400
    assert set(response.json()) == {"code", "message", "errors"}


# ---------------------------------------------------------------------------------------------
# Fault knobs
# ---------------------------------------------------------------------------------------------


def test_fail_next_throttles_with_retry_after_then_recovers(sandbox: ConnectWiseSandbox, api: httpx.Client) -> None:
    sandbox.faults.fail_next(2, 429)

    throttled = [api.get("/service/boards") for _ in range(2)]
    recovered = api.get("/service/boards")

    assert [r.status_code for r in throttled] == [429, 429]
    assert throttled[0].headers["Retry-After"] == "1"
    assert throttled[0].json() == {
        "error": "ConnectWiseAPI",
        "message": "Too many requests. Please try again in 30 seconds.",
    }
    assert recovered.status_code == 200
    assert [record.status for record in sandbox.request_log] == [429, 429, 200]


def test_fail_next_can_inject_server_errors_in_cw_shape(sandbox: ConnectWiseSandbox, api: httpx.Client) -> None:
    sandbox.faults.fail_next(1, 503)

    response = api.get("/service/boards")

    assert response.status_code == 503
    assert set(response.json()) == {"code", "message", "errors"}


def test_latency_delays_api_answers(sandbox: ConnectWiseSandbox, api: httpx.Client) -> None:
    sandbox.faults.latency_ms = 300

    started = time.monotonic()
    api.get("/service/boards")

    assert time.monotonic() - started >= 0.3


# ---------------------------------------------------------------------------------------------
# Introspection for other tests
# ---------------------------------------------------------------------------------------------


def test_everything_text_covers_tickets_notes_and_time_entries(
    sandbox: ConnectWiseSandbox, api: httpx.Client, tenant: Tenant
) -> None:
    ticket_id = new_ticket(sandbox, tenant, "Unlock account")
    api.post(f"/service/tickets/{ticket_id}/notes", json={"text": "note-marker", "internalAnalysisFlag": True})
    api.post("/time/entries", json=time_entry(ticket_id, notes="time-marker"))

    text = sandbox.everything_text()

    assert all(marker in text for marker in ("Unlock account", "I forgot my password", "note-marker", "time-marker"))
    assert "Temp-Passw0rd!" not in text

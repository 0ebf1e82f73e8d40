"""The Autotask sandbox keeps Autotask's contract (psa.md §2), checked over real HTTP.

If one of these fails, the sandbox has drifted from the vendor and every client test that runs
against it proves less than it claims.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import re
import threading
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

import httpx
import pytest
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from psa_integrations.autotask.webhook import dotnet_json
from sandbox._server import BackgroundServer
from sandbox.autotask import AutotaskSandbox, dotnet_dumps

SECRET = "sandbox-contract-secret"

# ---------------------------------------------------------------------------------------------
# Fixtures: a sandbox, a webhook receiver, a seeded tenant
# ---------------------------------------------------------------------------------------------


@dataclass
class Received:
    path: str
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

    def url(self, path: str = "/api/webhooks/autotask?code=xyz") -> str:
        assert self.server is not None
        return f"{self.server.url}{path}"

    def answer_next(self, *statuses: int) -> None:
        with self.lock:
            self.script.extend(statuses)

    async def handle(self, request: Request) -> Response:
        body = await request.body()
        with self.lock:
            self.received.append(Received(request.url.path, dict(request.headers), body))
            status = self.script.pop(0) if self.script else 200
        return JSONResponse({"ok": status < 300}, status_code=status)


@dataclass
class Tenant:
    company: dict[str, Any]
    contact: dict[str, Any]
    other_company: dict[str, Any]


@pytest.fixture(scope="module")
def running_sandbox() -> Iterator[AutotaskSandbox]:
    # One server per module; every test gets a clean database.
    with AutotaskSandbox(retry_delay=0.05) as at:
        yield at


@pytest.fixture
def sandbox(running_sandbox: AutotaskSandbox) -> AutotaskSandbox:
    running_sandbox.reset()
    return running_sandbox


@pytest.fixture(scope="module")
def running_receiver() -> Iterator[Receiver]:
    receiver = Receiver()
    app = Starlette(routes=[Route("/{path:path}", receiver.handle, methods=["POST"])])
    receiver.server = BackgroundServer(app, name="webhook-receiver").start()
    yield receiver
    receiver.server.stop()


@pytest.fixture
def receiver(running_receiver: Receiver, sandbox: AutotaskSandbox) -> Receiver:
    with running_receiver.lock:
        running_receiver.received.clear()
        running_receiver.script.clear()
    return running_receiver


@pytest.fixture
def api(sandbox: AutotaskSandbox) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=sandbox.api_url + "/", headers=sandbox.auth_headers(), timeout=5) as client:
        yield client


@pytest.fixture
def tenant(sandbox: AutotaskSandbox) -> Tenant:
    company = sandbox.add_company(
        "Fabrikam, Inc.", udfs={"Microsoft Tenant ID": "3f2504e0-4f89-11d3-9a0c-0305e82c3301"}
    )
    contact = sandbox.add_contact(company["id"], "Jane", "Doe", "jane.doe@fabrikam.example")
    return Tenant(company, contact, sandbox.add_company("Contoso Ltd"))


def new_ticket(api: httpx.Client, tenant: Tenant, **overrides: Any) -> int:
    body = {"companyID": tenant.company["id"], "title": "Printer offline", "status": 1, "priority": 2} | overrides
    response = api.post("Tickets", json=body)
    assert response.status_code == 200, response.text
    return int(response.json()["itemId"])


def query(api: httpx.Client, entity: str, *filters: dict[str, Any], **extra: Any) -> httpx.Response:
    return api.post(f"{entity}/query", json={"filter": list(filters), **extra})


def verify(delivery: Received, secret: str = SECRET) -> dict[str, Any]:
    """What our webhook does: HMAC-SHA1 over the bytes received, base64, `sha1=` prefix."""
    digest = base64.b64encode(hmac.new(secret.encode(), delivery.body, hashlib.sha1).digest()).decode()
    assert hmac.compare_digest(f"sha1={digest}", delivery.headers["x-hook-signature"])
    return dict(delivery.json())


# ---------------------------------------------------------------------------------------------
# Zone discovery and authentication
# ---------------------------------------------------------------------------------------------


def test_zone_lookup_needs_no_credentials_and_names_the_api_host(sandbox: AutotaskSandbox) -> None:
    response = httpx.get(sandbox.zone_lookup_url, params={"user": sandbox.credentials.username})
    assert response.status_code == 200
    zone = response.json()
    assert zone["url"] == f"{sandbox.url}/ATServicesRest/"
    assert set(zone) >= {"zoneName", "url", "webUrl", "ci"}


def test_an_unknown_user_has_no_zone(sandbox: AutotaskSandbox) -> None:
    response = httpx.get(sandbox.zone_lookup_url, params={"user": "nobody@example.com"})
    assert response.status_code == 404
    assert response.json() == {"errors": ["Zone information could not be determined"]}


def test_only_v1_0_has_a_zone_lookup_although_v2_0_is_listed(sandbox: AutotaskSandbox) -> None:
    versions = httpx.get(f"{sandbox.url}/atservicesrest/versioninformation").json()
    assert versions["apiVersions"] == ["V1.0", "V2.0"]
    v2 = httpx.get(f"{sandbox.url}/atservicesrest/V2.0/zoneInformation", params={"user": sandbox.credentials.username})
    assert v2.status_code == 404


def test_the_old_double_slash_zone_url_can_be_reproduced(sandbox: AutotaskSandbox, monkeypatch) -> None:
    monkeypatch.setattr(sandbox, "zone_double_slash", True)
    zone = httpx.get(sandbox.zone_lookup_url, params={"user": sandbox.credentials.username}).json()
    assert zone["url"] == f"{sandbox.url}//ATServicesRest/"


@pytest.mark.parametrize("missing", ["ApiIntegrationCode", "UserName", "Secret"])
def test_every_call_needs_all_three_credential_headers(sandbox: AutotaskSandbox, missing: str) -> None:
    headers = {k: v for k, v in sandbox.auth_headers().items() if k != missing}
    response = httpx.get(f"{sandbox.api_url}/Tickets/1", headers=headers)
    assert response.status_code == 401
    assert isinstance(response.json()["errors"], list)


def test_a_wrong_secret_is_refused(sandbox: AutotaskSandbox) -> None:
    headers = sandbox.auth_headers() | {"Secret": "wrong"}
    assert httpx.get(f"{sandbox.api_url}/Tickets/1", headers=headers).status_code == 401


def test_paths_are_case_insensitive_as_on_iis(sandbox: AutotaskSandbox, tenant: Tenant) -> None:
    url = f"{sandbox.url}/atservicesrest/v1.0/companies/{tenant.company['id']}"
    response = httpx.get(url, headers=sandbox.auth_headers())
    assert response.json()["item"]["companyName"] == "Fabrikam, Inc."


# ---------------------------------------------------------------------------------------------
# Entities: reads, creates, updates, errors
# ---------------------------------------------------------------------------------------------


def test_a_missing_id_is_a_200_with_a_null_item(api: httpx.Client) -> None:
    response = api.get("Tickets/999")
    assert response.status_code == 200
    assert response.json() == {"item": None}


def test_a_ticket_created_through_the_api_answers_its_item_id_and_reads_back_in_camel_case(
    sandbox: AutotaskSandbox, api: httpx.Client, tenant: Tenant
) -> None:
    response = api.post(
        "Tickets",
        json={
            "CompanyID": tenant.company["id"],
            "Title": "VPN down",
            "Status": 1,
            "Priority": 2,
            "contactid": 30684211,
        },
    )
    assert set(response.json()) == {"itemId"}
    item = api.get(f"Tickets/{response.json()['itemId']}").json()["item"]
    assert item["title"] == "VPN down"
    assert item["contactID"] == tenant.contact["id"]
    assert re.fullmatch(r"T\d{8}\.\d{4}", item["ticketNumber"])
    assert item["creatorResourceID"] == sandbox.api_resource_id
    assert item["assignedResourceID"] is None  # present: nulls are not omitted


def test_updates_are_patches_to_the_entity_root_with_the_id_in_the_body(api: httpx.Client, tenant: Tenant) -> None:
    ticket_id = new_ticket(api, tenant)
    response = api.patch("Tickets", json={"id": ticket_id, "status": 5})
    assert response.json() == {"itemId": ticket_id}
    item = api.get(f"Tickets/{ticket_id}").json()["item"]
    assert item["status"] == 5
    assert item["completedDate"] is not None
    assert api.patch("Tickets", json={"status": 5}).status_code == 500  # no id


def test_validation_failures_answer_500_with_an_errors_list(api: httpx.Client, tenant: Tenant) -> None:
    missing_title = api.post("Tickets", json={"companyID": tenant.company["id"], "status": 1, "priority": 2})
    assert missing_title.status_code == 500
    assert missing_title.json() == {"errors": ["title is required."]}
    wrong_contact = api.post(
        "Tickets",
        json={
            "companyID": tenant.other_company["id"],
            "contactID": tenant.contact["id"],
            "title": "x",
            "status": 1,
            "priority": 2,
        },
    )
    assert wrong_contact.status_code == 500
    assert "company" in wrong_contact.json()["errors"][0]
    bad_status = api.post(
        "Tickets", json={"companyID": tenant.company["id"], "title": "x", "status": 99, "priority": 2}
    )
    assert bad_status.json()["errors"] == ["Value does not reference an existing entity for status . "]


def test_an_unknown_route_is_a_404(api: httpx.Client) -> None:
    assert api.get("Gizmos/1").status_code == 404


def test_entity_information_lists_the_status_and_queue_picklists(api: httpx.Client) -> None:
    fields = {f["name"]: f for f in api.get("Tickets/entityInformation/fields").json()["fields"]}
    statuses = {v["value"]: v["label"] for v in fields["status"]["picklistValues"]}
    assert statuses["5"] == "Complete"
    assert fields["queueID"]["isPickList"] is True
    assert fields["title"]["isRequired"] is True


def test_webhook_field_ids_come_from_their_own_picklist(api: httpx.Client) -> None:
    fields = api.get("TicketWebhookFields/entityInformation/fields").json()["fields"]
    field_id = next(f for f in fields if f["name"] == "fieldID")
    assert "Status" in {v["label"] for v in field_id["picklistValues"]}


def test_threshold_information_reports_the_hourly_budget(api: httpx.Client) -> None:
    api.get("Tickets/1")
    usage = api.get("ThresholdInformation").json()
    assert usage["externalRequestThreshold"] == 10_000
    assert usage["requestThresholdTimeframe"] == 60
    assert usage["currentTimeframeRequestCount"] == 2


def test_company_user_defined_fields_are_read_back(api: httpx.Client, tenant: Tenant) -> None:
    company = api.get(f"Companies/{tenant.company['id']}").json()["item"]
    assert company["userDefinedFields"] == [
        {"name": "Microsoft Tenant ID", "value": "3f2504e0-4f89-11d3-9a0c-0305e82c3301"}
    ]


# ---------------------------------------------------------------------------------------------
# Queries
# ---------------------------------------------------------------------------------------------


@pytest.fixture
def five_tickets(api: httpx.Client, tenant: Tenant) -> list[int]:
    titles = ["Password reset", "Printer offline", "password expired", "New laptop", "VPN"]
    ids = [new_ticket(api, tenant, title=title) for title in titles]
    api.patch("Tickets", json={"id": ids[1], "status": 5})
    return ids


Condition = Callable[[list[int]], dict[str, Any]]
FILTERS: dict[str, tuple[Condition, list[int]]] = {
    "eq": (lambda ids: {"op": "eq", "field": "status", "value": 5}, [1]),
    "noteq": (lambda ids: {"op": "noteq", "field": "status", "value": 5}, [0, 2, 3, 4]),
    "contains": (lambda ids: {"op": "contains", "field": "title", "value": "PASSWORD"}, [0, 2]),
    "beginsWith": (lambda ids: {"op": "beginsWith", "field": "Title", "value": "pass"}, [0, 2]),
    "endsWith": (lambda ids: {"op": "endsWith", "field": "title", "value": "offline"}, [1]),
    "gt": (lambda ids: {"op": "gt", "field": "id", "value": ids[2]}, [3, 4]),
    "lte": (lambda ids: {"op": "lte", "field": "id", "value": str(ids[1])}, [0, 1]),
    "in": (lambda ids: {"op": "in", "field": "id", "value": [ids[0], ids[4]]}, [0, 4]),
    "notIn": (lambda ids: {"op": "notIn", "field": "id", "value": [ids[0], ids[4]]}, [1, 2, 3]),
    "exist": (lambda ids: {"op": "exist", "field": "completedDate"}, [1]),
    "notExist": (lambda ids: {"op": "notExist", "field": "completedDate"}, [0, 2, 3, 4]),
    "or-of-and": (
        lambda ids: {
            "op": "or",
            "items": [
                {"op": "eq", "field": "title", "value": "VPN"},
                {
                    "op": "and",
                    "items": [
                        {"op": "contains", "field": "title", "value": "pass"},
                        {"op": "gte", "field": "id", "value": ids[2]},
                    ],
                },
            ],
        },
        [2, 4],
    ),
}


@pytest.mark.parametrize("name", FILTERS)
def test_filters_behave_like_autotask(api: httpx.Client, five_tickets: list[int], name: str) -> None:
    condition, expected = FILTERS[name]
    response = query(api, "Tickets", condition(five_tickets))
    assert response.status_code == 200, response.text
    assert [item["id"] for item in response.json()["items"]] == [five_tickets[i] for i in expected]


def test_ne_is_not_an_operator_and_unknown_fields_are_refused(api: httpx.Client, five_tickets: list[int]) -> None:
    wrong_op = query(api, "Tickets", {"op": "ne", "field": "status", "value": 5})
    assert wrong_op.status_code == 500
    assert "ne" in wrong_op.json()["errors"][0]
    unknown = query(api, "Tickets", {"op": "eq", "field": "statusName", "value": "New"})
    assert unknown.status_code == 500


def test_udf_filters_search_user_defined_fields(api: httpx.Client, tenant: Tenant) -> None:
    condition = {
        "op": "eq",
        "field": "Microsoft Tenant ID",
        "value": "3f2504e0-4f89-11d3-9a0c-0305e82c3301",
        "udf": True,
    }
    items = query(api, "Companies", condition).json()["items"]
    assert [c["id"] for c in items] == [tenant.company["id"]]


def test_include_fields_trims_the_items_to_those_fields_and_id(api: httpx.Client, five_tickets: list[int]) -> None:
    items = query(api, "Tickets", {"op": "gte", "field": "id", "value": 0}, IncludeFields=["createDate"]).json()[
        "items"
    ]
    assert set(items[0]) == {"id", "createDate"}


def test_paging_follows_next_page_url_posted_with_the_same_body(api: httpx.Client, five_tickets: list[int]) -> None:
    body = {"filter": [{"op": "gte", "field": "id", "value": 0}], "MaxRecords": 2}
    seen: list[int] = []
    page = api.post("Tickets/query", json=body).json()
    assert page["pageDetails"]["prevPageUrl"] is None
    while True:
        seen += [item["id"] for item in page["items"]]
        next_url = page["pageDetails"]["nextPageUrl"]
        if next_url is None:
            break
        assert "/Tickets/query/next?paging=" in next_url
        assert api.get(next_url).status_code == 405  # paged URLs of a POSTed query take the body again
        page = api.post(next_url, json=body).json()
        assert page["pageDetails"]["prevPageUrl"] is not None
    assert seen == five_tickets


def test_a_get_query_carries_its_search_into_the_next_page_url(api: httpx.Client, five_tickets: list[int]) -> None:
    search = json.dumps({"filter": [{"op": "noteq", "field": "status", "value": 5}], "MaxRecords": 3})
    first = api.get("Tickets/query", params={"search": search}).json()
    second = api.get(first["pageDetails"]["nextPageUrl"]).json()
    ids = [i["id"] for i in first["items"] + second["items"]]
    assert ids == [five_tickets[i] for i in (0, 2, 3, 4)]


@pytest.mark.parametrize("max_records", [0, 501])
def test_max_records_is_between_1_and_500(api: httpx.Client, max_records: int) -> None:
    response = query(api, "Tickets", {"op": "gte", "field": "id", "value": 0}, MaxRecords=max_records)
    assert response.status_code == 500
    assert "MaxRecords" in response.json()["errors"][0]


def test_a_query_needs_a_filter_and_counts_answer_query_count(api: httpx.Client, five_tickets: list[int]) -> None:
    assert api.post("Tickets/query", json={}).status_code == 500
    count = api.post("Tickets/query/count", json={"filter": [{"op": "noteq", "field": "status", "value": 5}]})
    assert count.json() == {"queryCount": 4}


# ---------------------------------------------------------------------------------------------
# Notes and time entries
# ---------------------------------------------------------------------------------------------


def test_notes_are_created_at_the_root_or_under_their_ticket(
    sandbox: AutotaskSandbox, api: httpx.Client, tenant: Tenant
) -> None:
    ticket_id = new_ticket(api, tenant)
    note = {"ticketID": ticket_id, "title": "Update", "description": "Reset done", "noteType": 1, "publish": 1}
    assert api.post("TicketNotes", json=note).status_code == 200
    child = api.post(
        f"Tickets/{ticket_id}/Notes", json={k: v for k, v in note.items() if k != "ticketID"} | {"publish": 2}
    )
    assert child.status_code == 200
    listed = api.get(f"Tickets/{ticket_id}/Notes").json()["items"]
    assert [(n["publish"], n["creatorResourceID"]) for n in listed] == [
        (1, sandbox.api_resource_id),
        (2, sandbox.api_resource_id),
    ]


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"title": None}, "title is required"),
        ({"publish": 4}, "publish"),
        ({"noteType": None}, "noteType is required"),
        ({"ticketID": 1}, "ticketID"),
    ],
)
def test_a_note_is_refused_without_what_autotask_requires(
    api: httpx.Client, tenant: Tenant, change: dict[str, Any], message: str
) -> None:
    note = {"ticketID": new_ticket(api, tenant), "title": "T", "description": "D", "noteType": 1, "publish": 1} | change
    response = api.post("TicketNotes", json=note)
    assert response.status_code == 500
    assert message in response.json()["errors"][0]


def time_entry(sandbox: AutotaskSandbox, ticket_id: int, **overrides: Any) -> dict[str, Any]:
    return {
        "ticketID": ticket_id,
        "resourceID": sandbox.api_resource_id,
        "roleID": 29683464,
        "dateWorked": "2026-03-02T00:00:00Z",
        "startDateTime": "2026-03-02T10:00:00Z",
        "endDateTime": "2026-03-02T10:15:00Z",
        "hoursWorked": 0.25,
        "summaryNotes": "Password reset; identity verified.",
    } | overrides


def test_a_time_entry_is_stored_and_found_by_ticket(
    sandbox: AutotaskSandbox, api: httpx.Client, tenant: Tenant
) -> None:
    ticket_id = new_ticket(api, tenant)
    assert api.post("TimeEntries", json=time_entry(sandbox, ticket_id)).status_code == 200
    items = query(api, "TimeEntries", {"op": "eq", "field": "ticketID", "value": ticket_id}).json()["items"]
    assert [(e["hoursWorked"], e["hoursToBill"], e["summaryNotes"]) for e in items] == [
        (0.25, 0.25, "Password reset; identity verified.")
    ]


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        ({"hoursWorked": 0}, "hoursWorked"),
        ({"hoursWorked": 24.5}, "hoursWorked"),
        ({"resourceID": 1}, "resourceID"),
        ({"roleID": 7}, "roleID"),
        ({"summaryNotes": None}, "summaryNotes is required"),
        ({"endDateTime": "2026-03-03T00:10:00Z"}, "midnight"),
        ({"endDateTime": "2026-03-02T09:00:00Z"}, "earlier"),
    ],
)
def test_time_entries_are_validated_like_autotask(
    sandbox: AutotaskSandbox, api: httpx.Client, tenant: Tenant, overrides: dict[str, Any], message: str
) -> None:
    response = api.post("TimeEntries", json=time_entry(sandbox, new_ticket(api, tenant), **overrides))
    assert response.status_code == 500
    assert message in " ".join(response.json()["errors"])


def test_time_for_another_resource_needs_proxy_rights(
    sandbox: AutotaskSandbox, api: httpx.Client, tenant: Tenant
) -> None:
    body = time_entry(sandbox, new_ticket(api, tenant), resourceID=sandbox.technician_resource_id)
    assert "Proxy" in api.post("TimeEntries", json=body).json()["errors"][0]


# ---------------------------------------------------------------------------------------------
# Limits and injected faults
# ---------------------------------------------------------------------------------------------


def test_a_fourth_concurrent_request_on_one_endpoint_is_refused_with_itgenatr005(
    sandbox: AutotaskSandbox, tenant: Tenant
) -> None:
    sandbox.faults.latency_ms = 300
    headers = sandbox.auth_headers()
    company_url = f"{sandbox.api_url}/Companies/{tenant.company['id']}"
    with ThreadPoolExecutor(max_workers=6) as pool:
        same_endpoint = [pool.submit(httpx.get, company_url, headers=headers, timeout=5) for _ in range(5)]
        other_endpoint = pool.submit(httpx.get, f"{sandbox.api_url}/Tickets/1", headers=headers, timeout=5)
        answers = [future.result() for future in same_endpoint]
    refused = [a for a in answers if a.status_code != 200]
    assert len(answers) - len(refused) >= 3
    assert refused, "five overlapping requests on one endpoint were all let through"
    assert all(a.status_code == 500 and "Itgenatr005" in a.json()["errors"][0] for a in refused)
    assert other_endpoint.result().status_code == 200  # another endpoint has its own three threads


def test_past_the_hourly_threshold_every_call_is_refused_until_the_hour_rolls(
    sandbox: AutotaskSandbox, api: httpx.Client, monkeypatch
) -> None:
    monkeypatch.setattr(sandbox, "request_threshold", 3)
    statuses = [api.get("Tickets/1").status_code for _ in range(4)]
    assert statuses == [200, 200, 200, 429]
    refused = api.get("Tickets/1")
    assert int(refused.headers["Retry-After"]) > 3000
    assert "threshold" in refused.json()["errors"][0]


def test_fail_next_throttles_with_retry_after_then_recovers(sandbox: AutotaskSandbox, api: httpx.Client) -> None:
    sandbox.faults.fail_next(1, 429)
    throttled = api.get("Tickets/1")
    assert throttled.status_code == 429
    assert throttled.headers["Retry-After"] == "1"
    assert api.get("Tickets/1").status_code == 200
    sandbox.faults.fail_next(1, 503)
    unavailable = api.get("Tickets/1")
    assert unavailable.status_code == 503
    assert isinstance(unavailable.json()["errors"], list)


# ---------------------------------------------------------------------------------------------
# Webhooks
# ---------------------------------------------------------------------------------------------


def test_a_ticket_created_by_a_person_is_posted_signed_in_the_dotnet_form(
    sandbox: AutotaskSandbox, receiver: Receiver, tenant: Tenant
) -> None:
    webhook = sandbox.register_webhook(receiver.url(), SECRET, display_fields=("TicketNumber", "Title"))
    title = "Passwort zurücksetzen: Jürgen & Söhne <dringend>"
    ticket = sandbox.create_ticket(title, "Bitte", tenant.company["id"], tenant.contact["id"])
    sandbox.wait_for_deliveries()
    [delivery] = receiver.received
    assert delivery.path == "/api/webhooks/autotask"
    assert delivery.headers["content-type"].startswith("application/json")
    payload = verify(delivery)
    assert delivery.body.isascii()  # everything outside ASCII is \uXXXX
    assert b"J\\u00FCrgen \\u0026 S\\u00F6hne \\u003Cdringend\\u003E" in delivery.body
    assert delivery.body == dotnet_json(payload).encode()  # same form the verifier's fallback rebuilds
    assert payload["Action"] == "Create"
    assert payload["Guid"] == webhook["webhookGUID"]
    assert payload["EntityType"] == "Ticket"
    assert payload["Id"] == ticket["id"]
    assert payload["PersonID"] == sandbox.technician_resource_id
    assert payload["SequenceNumber"] == 1
    assert payload["Fields"] == {"Status": "1", "TicketNumber": ticket["ticketNumber"], "Title": title}


def test_sequence_numbers_increase_per_webhook(sandbox: AutotaskSandbox, receiver: Receiver, tenant: Tenant) -> None:
    sandbox.register_webhook(receiver.url(), SECRET)
    for title in ("one", "two", "three"):
        sandbox.create_ticket(title, "", tenant.company["id"])
    sandbox.wait_for_deliveries()
    assert [verify(d)["SequenceNumber"] for d in receiver.received] == [1, 2, 3]


def test_saves_by_an_excluded_resource_fire_nothing(
    sandbox: AutotaskSandbox, receiver: Receiver, api: httpx.Client, tenant: Tenant
) -> None:
    sandbox.register_webhook(receiver.url(), SECRET)  # excludes the API resource
    new_ticket(api, tenant)
    sandbox.create_ticket("by a person", "", tenant.company["id"])
    sandbox.wait_for_deliveries()
    assert [verify(d)["PersonID"] for d in receiver.received] == [sandbox.technician_resource_id]


def test_updates_fire_only_when_a_subscribed_field_changes(
    sandbox: AutotaskSandbox, receiver: Receiver, api: httpx.Client, tenant: Tenant
) -> None:
    sandbox.register_webhook(receiver.url(), SECRET, create=False, update=True, excluded_resource_ids=())
    ticket_id = new_ticket(api, tenant)
    api.patch("Tickets", json={"id": ticket_id, "title": "renamed"})
    api.patch("Tickets", json={"id": ticket_id, "status": 5})
    sandbox.wait_for_deliveries()
    [delivery] = receiver.received
    payload = verify(delivery)
    assert (payload["Action"], payload["Fields"], payload["PersonID"]) == (
        "Update",
        {"Status": "5"},
        sandbox.api_resource_id,
    )


def test_deleted_tickets_fire_delete_with_empty_fields(
    sandbox: AutotaskSandbox, receiver: Receiver, tenant: Tenant
) -> None:
    sandbox.register_webhook(receiver.url(), SECRET, create=False, delete=True)
    ticket = sandbox.create_ticket("to delete", "", tenant.company["id"])
    sandbox.delete_ticket(ticket["id"])
    sandbox.wait_for_deliveries()
    assert [(p["Action"], p["Fields"]) for p in map(verify, receiver.received)] == [("Delete", {})]


def test_a_webhook_without_a_subscribed_field_is_not_ready_and_fires_nothing(
    sandbox: AutotaskSandbox, receiver: Receiver, api: httpx.Client, tenant: Tenant
) -> None:
    body = {
        "Name": "TierOne",
        "WebhookUrl": receiver.url(),
        "DeactivationUrl": receiver.url(),
        "IsActive": True,
        "IsSubscribedToCreateEvents": True,
        "SecretKey": SECRET,
    }
    webhook_id = api.post("TicketWebhooks", json=body).json()["itemId"]
    assert api.get(f"TicketWebhooks/{webhook_id}").json()["item"]["isReady"] is False
    sandbox.create_ticket("unheard", "", tenant.company["id"])
    api.post(f"TicketWebhooks/{webhook_id}/Fields", json={"FieldID": 104, "IsSubscribedField": True})
    assert api.get(f"TicketWebhooks/{webhook_id}").json()["item"]["isReady"] is True
    sandbox.create_ticket("heard", "", tenant.company["id"])
    sandbox.wait_for_deliveries()
    assert len(receiver.received) == 1


def test_two_webhooks_with_the_same_url_are_refused(api: httpx.Client, receiver: Receiver) -> None:
    body = {"Name": "A", "WebhookUrl": receiver.url(), "DeactivationUrl": receiver.url(), "SecretKey": SECRET}
    assert api.post("TicketWebhooks", json=body).status_code == 200
    duplicate = api.post("TicketWebhooks", json=body | {"Name": "B"})
    assert duplicate.status_code == 500
    assert "already exists" in duplicate.json()["errors"][0]


def test_a_failed_delivery_is_retried_with_the_same_bytes(
    sandbox: AutotaskSandbox, receiver: Receiver, tenant: Tenant
) -> None:
    sandbox.register_webhook(receiver.url(), SECRET)
    receiver.answer_next(500, 503)
    sandbox.create_ticket("retried", "", tenant.company["id"])
    sandbox.wait_for_deliveries()
    assert len({d.body for d in receiver.received}) == 1
    assert len(receiver.received) == 3
    [delivery] = sandbox.deliveries
    assert (delivery.attempts, delivery.delivered, delivery.dropped) == (3, True, False)


def test_after_five_failed_attempts_the_event_is_dropped_and_later_events_waited_behind_it(
    sandbox: AutotaskSandbox, receiver: Receiver, tenant: Tenant
) -> None:
    sandbox.register_webhook(receiver.url(), SECRET)
    receiver.answer_next(500, 500, 500, 500, 500)
    sandbox.create_ticket("lost", "", tenant.company["id"])
    sandbox.create_ticket("queued behind", "", tenant.company["id"])
    sandbox.wait_for_deliveries()
    titles = [verify(d)["Id"] for d in receiver.received]
    first, second = (d for d in sandbox.deliveries)
    assert (first.attempts, first.dropped, second.delivered) == (5, True, True)
    assert titles == [first.entity_id] * 5 + [second.entity_id]
    assert [d.entity_id for d in sandbox.webhook_error_log] == [first.entity_id]


def test_a_webhook_that_keeps_failing_is_deactivated_and_its_deactivation_url_told(
    sandbox: AutotaskSandbox, receiver: Receiver, tenant: Tenant, monkeypatch
) -> None:
    monkeypatch.setattr(sandbox, "auto_disable_after", 2)
    monkeypatch.setattr(sandbox, "max_attempts", 1)
    webhook = sandbox.register_webhook(receiver.url(), SECRET, deactivation_url=receiver.url("/deactivated"))
    receiver.answer_next(500, 500)
    sandbox.create_ticket("one", "", tenant.company["id"])
    sandbox.create_ticket("two", "", tenant.company["id"])
    sandbox.wait_for_deliveries()
    assert sandbox.webhooks()[0]["isActive"] is False
    notice = receiver.received[-1]
    assert notice.path == "/deactivated"
    assert verify(notice)["Action"] == "Deactivated"
    assert verify(notice)["Guid"] == webhook["webhookGUID"]
    sandbox.create_ticket("three", "", tenant.company["id"])
    sandbox.wait_for_deliveries()
    assert len(receiver.received) == 3


def test_deactivating_a_webhook_through_the_api_notifies_its_deactivation_url(
    sandbox: AutotaskSandbox, receiver: Receiver, api: httpx.Client
) -> None:
    webhook = sandbox.register_webhook(receiver.url(), SECRET)
    api.patch("TicketWebhooks", json={"id": webhook["id"], "IsActive": False})
    sandbox.wait_for_deliveries()
    assert [verify(d)["Action"] for d in receiver.received] == ["Deactivated"]


def test_dropped_webhooks_deliver_nothing(sandbox: AutotaskSandbox, receiver: Receiver, tenant: Tenant) -> None:
    sandbox.register_webhook(receiver.url(), SECRET)
    sandbox.faults.drop_webhooks = True
    sandbox.create_ticket("silent", "", tenant.company["id"])
    sandbox.wait_for_deliveries()
    assert receiver.received == []
    assert sandbox.deliveries[0].dropped


def test_the_dotnet_writer_escapes_utf16_surrogates_and_html_characters() -> None:
    assert dotnet_dumps({"a": "😀+'"}) == b'{"a":"\\uD83D\\uDE00\\u002B\\u0027"}'


def test_everything_text_covers_tickets_notes_and_time_entries(
    sandbox: AutotaskSandbox, api: httpx.Client, tenant: Tenant
) -> None:
    ticket_id = new_ticket(api, tenant, description="ticket text")
    sandbox.add_note(ticket_id, "note text")
    api.post("TimeEntries", json=time_entry(sandbox, ticket_id, summaryNotes="time text"))
    text = sandbox.everything_text()
    assert all(part in text for part in ("ticket text", "note text", "time text"))

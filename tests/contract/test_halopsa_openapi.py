"""HaloPSA traffic checked against Halo's own OpenAPI document (shared/specs/halopsa-openapi.json).

The real client runs against the sandbox through a transport that checks every request under
/api and every answer to it:

- requests: the path and method are an operation of the document (matched without case, as
  Halo's ASP.NET routing does); every query parameter is one the operation documents and its
  value parses as the documented type (the document writes C# names such as `int` and `bool`);
  path parameters have their documented type; a JSON body validates against the operation's
  requestBody schema (OAS 3.0 rules: `nullable`, formats, `additionalProperties: false`).
- answers: a 2xx status is one the operation documents. The document declares no response
  bodies (every answer is just "Success"), so each entity in a body is validated against the
  schema the document gives that resource's entity, the item schema of `POST /{Resource}`
  (`Faults` for Tickets, `Actions`, `Users`, `Area` for Client, `TStatus`, ...), in the read
  direction; list wrappers may add only Halo's paging keys. Error statuses (400, 401, 404, 429)
  are not in the document at all, so they are outside this check.

Why openapi-schema-validator rather than openapi-core: the document is not valid OpenAPI 3.0 as a
whole (parameter types `int`, `bool`, `List<int>`, `DateTime`) and declares no response schemas,
so openapi-core would refuse it or check nothing in answers. Its component schemas are sound JSON
Schema, which openapi-schema-validator checks with OAS 3.0 semantics.
"""

from __future__ import annotations

import json
import re
import uuid
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
from openapi_schema_validator import OAS30ReadValidator, OAS30WriteValidator, oas30_format_checker
from referencing import Registry, Resource
from referencing.jsonschema import DRAFT4

from psa_integrations.halopsa.client import HaloClient, clear_shared_state
from psa_integrations.halopsa.registration import HaloRegistrar
from psa_integrations.models import NoteVisibility
from sandbox.halopsa import PAYLOAD_FULL, PAYLOAD_SMALL, HaloSandbox
from tests.contract.test_halopsa_sandbox import Receiver, serving_receiver
from tierone.settings import Settings

SPEC_PATH = Path(__file__).resolve().parents[2].parent / "shared" / "specs" / "halopsa-openapi.json"
pytestmark = pytest.mark.skipif(not SPEC_PATH.exists(), reason=f"Halo's OpenAPI document is not at {SPEC_PATH}")

BASE_URI = "urn:halopsa-openapi"
PAGING_KEYS = frozenset({"record_count", "page_no", "page_size"})
TENANT_ID = "0b1c2d3e-4f50-6172-8394-a5b6c7d8e9f0"


def _pointer(*parts: str) -> str:
    return "/".join(part.replace("~", "~0").replace("/", "~1") for part in parts)


def _value_fits(schema: dict[str, Any], value: str) -> bool:
    """Does a query/path value parse as the parameter's documented (often C#-named) type?"""
    kind, fmt = str(schema.get("type", "string")), schema.get("format")
    try:
        if kind in ("int", "integer"):
            int(value)
        elif kind in ("bool", "boolean"):
            return value.lower() in ("true", "false")
        elif kind in ("double", "number"):
            float(value)
        elif kind == "List<int>":
            [int(item) for item in value.split(",")]
        elif kind == "DateTime" or fmt == "date-time":
            datetime.fromisoformat(value.replace("Z", "+00:00"))
        elif fmt == "uuid":
            uuid.UUID(value)
    except ValueError:
        return False
    return True


@dataclass
class Operation:
    template: str
    method: str
    spec: dict[str, Any]
    pattern: re.Pattern[str]
    literals: int

    def parameters(self, where: str) -> dict[str, dict[str, Any]]:
        found = {}
        for parameter in self.spec.get("parameters") or []:
            if parameter.get("in") == where:
                found[parameter["name"].lower()] = parameter.get("schema") or {}
        return found


@dataclass
class HaloContract:
    """Halo's OpenAPI document as a checker of single requests and answers."""

    document: dict[str, Any]
    validated: Counter[str] = field(default_factory=Counter)

    def __post_init__(self) -> None:
        resource = Resource.from_contents(self.document, default_specification=DRAFT4)
        self.registry: Registry[Any] = Registry().with_resource(BASE_URI, resource)
        self._validators: dict[tuple[str, bool], Any] = {}
        self._operations = sorted(self._all_operations(), key=lambda op: -op.literals)
        self._paths = {template.lower(): template for template in self.document["paths"]}

    def _all_operations(self) -> Iterator[Operation]:
        for template, item in self.document["paths"].items():
            segments = [s for s in template.split("/") if s]
            regex = "".join("/[^/]+" if s.startswith("{") else "/" + re.escape(s) for s in segments)
            literals = sum(not s.startswith("{") for s in segments)
            for method, spec in item.items():
                if method in ("get", "post", "put", "patch", "delete"):
                    yield Operation(template, method.upper(), spec, re.compile(f"^{regex}$", re.I), literals)

    def operation(self, method: str, path: str) -> Operation | None:
        return next((op for op in self._operations if op.method == method and op.pattern.match(path)), None)

    def _validator(self, pointer: str, *, write: bool) -> Any:
        key = (pointer, write)
        if key not in self._validators:
            cls = OAS30WriteValidator if write else OAS30ReadValidator
            schema = {"$ref": f"{BASE_URI}#/{pointer}"}
            self._validators[key] = cls(schema, registry=self.registry, format_checker=oas30_format_checker)
        return self._validators[key]

    def _errors(self, pointer: str, instance: Any, *, write: bool, where: str) -> list[str]:
        errors = self._validator(pointer, write=write).iter_errors(instance)
        return [f"{where}: {e.json_path}: {e.message[:200]}" for e in errors]

    # -- requests ------------------------------------------------------------------------------

    def check_request(self, method: str, path: str, query: list[tuple[str, str]], body: bytes) -> list[str]:
        op = self.operation(method, path)
        if op is None:
            return [f"{method} /api{path} is not an operation of Halo's API"]
        where = f"{method} /api{path}"
        problems = self._check_query(op, query, where) + self._check_path_values(op, path, where)
        content = op.spec.get("requestBody", {}).get("content", {})
        if body and "application/json" in content:
            pointer = _pointer("paths", op.template, op.method.lower(), "requestBody", "content", "application/json")
            problems += self._errors(f"{pointer}/schema", json.loads(body), write=True, where=f"{where} body")
        elif body:
            problems.append(f"{where} sends a body the operation does not take")
        return problems

    def _check_query(self, op: Operation, query: list[tuple[str, str]], where: str) -> list[str]:
        documented = op.parameters("query")
        problems = []
        for name, value in query:
            schema = documented.get(name.lower())
            if schema is None:
                problems.append(f"{where}: query parameter {name!r} is not documented")
            elif not _value_fits(schema, value):
                problems.append(f"{where}: {name}={value!r} is not a {schema.get('type')}")
        return problems

    def _check_path_values(self, op: Operation, path: str, where: str) -> list[str]:
        documented = op.parameters("path")
        problems = []
        for name, value in zip(op.template.split("/"), path.split("/"), strict=False):
            if name.startswith("{"):
                schema = documented.get(name.strip("{}").lower(), {})
                if not _value_fits(schema, value):
                    problems.append(f"{where}: path value {value!r} is not a {schema.get('type')}")
        return problems

    # -- answers -------------------------------------------------------------------------------

    def entity_schema(self, template: str) -> str | None:
        """The item schema of POST /{Resource}: what Halo stores, and so what it answers."""
        collection = self._paths.get("/" + template.strip("/").split("/")[0].lower())
        if collection is None:
            return None
        post = self.document["paths"][collection].get("post") or {}
        schema = post.get("requestBody", {}).get("content", {}).get("application/json", {}).get("schema", {})
        ref = (schema.get("items") or {}).get("$ref", "")
        return ref.removeprefix("#/") or None

    def check_response(self, method: str, path: str, status: int, body: bytes) -> list[str]:
        op = self.operation(method, path)
        if op is None or not 200 <= status < 300:
            return []
        where = f"{method} /api{path} → {status}"
        if str(status) not in (op.spec.get("responses") or {}):
            return [f"{where}: status not documented"]
        entity = self.entity_schema(op.template)
        if entity is None or not body:
            return []
        data = json.loads(body)
        items, problems = self._entities(op, data, where)
        for item in items:
            self.validated[entity.rsplit("/", 1)[-1]] += 1
            problems += self._errors(entity, item, write=False, where=where)
        return problems

    def _entities(self, op: Operation, data: Any, where: str) -> tuple[list[Any], list[str]]:
        if isinstance(data, list):
            return data, []
        collection = "/" not in op.template.strip("/")
        if not isinstance(data, dict) or op.method != "GET" or not collection:
            return [data], []
        lists = [key for key, value in data.items() if isinstance(value, list)]
        extra = set(data) - PAGING_KEYS - set(lists)
        problems = [f"{where}: list wrapper has non-paging keys {sorted(extra)}"] if extra or len(lists) != 1 else []
        return [item for key in lists for item in data[key]], problems

    def check_entity(self, schema_name: str, instance: Any, where: str) -> list[str]:
        self.validated[schema_name] += 1
        return self._errors(f"components/schemas/{schema_name}", instance, write=False, where=where)


class ContractTransport(httpx.AsyncBaseTransport):
    """Passes traffic to the network and notes every way it departs from Halo's document."""

    def __init__(self, contract: HaloContract) -> None:
        self.contract = contract
        self.inner = httpx.AsyncHTTPTransport()
        self.problems: list[str] = []
        self.operations: set[tuple[str, str]] = set()

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        path = request.url.path
        api_path = path[4:] if path.lower().startswith("/api/") else None
        if api_path is not None:
            op = self.contract.operation(request.method, api_path)
            if op is not None:
                self.operations.add((request.method, op.template))
            query = list(httpx.QueryParams(request.url.query).multi_items())
            self.problems += self.contract.check_request(request.method, api_path, query, request.content)
        response = await self.inner.handle_async_request(request)
        raw = await response.aread()
        await response.aclose()
        if api_path is not None:
            self.problems += self.contract.check_response(request.method, api_path, response.status_code, raw)
        headers = [(k, v) for k, v in response.headers.multi_items() if k.lower() != "content-encoding"]
        return httpx.Response(response.status_code, headers=headers, content=raw, request=request)

    async def aclose(self) -> None:
        await self.inner.aclose()


# ---------------------------------------------------------------------------------------------
# Fixtures
# ---------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def contract() -> HaloContract:
    return HaloContract(json.loads(SPEC_PATH.read_text(encoding="utf-8")))


@pytest.fixture(scope="module")
def running() -> Iterator[HaloSandbox]:
    with HaloSandbox(webhook_retry_delays=(0.05,), webhook_timeout_s=2.0) as sandbox:
        yield sandbox


@pytest.fixture(scope="module")
def listening() -> Iterator[Receiver]:
    with serving_receiver() as found:
        yield found


@pytest.fixture
def halo(running: HaloSandbox, listening: Receiver) -> HaloSandbox:
    running.reset()
    listening.clear()
    clear_shared_state()
    return running


@pytest.fixture
def world(halo: HaloSandbox) -> dict[str, Any]:
    client = halo.add_client("Contoso Dental", azure_tenant_id=TENANT_ID)
    site = halo.add_site(client["id"], "Head Office")
    user = halo.add_user(client["id"], site["id"], "Anna Berg", "anna.berg@contoso.example", azureoid=str(uuid.uuid4()))
    ticket = halo.create_ticket("Password reset", "I forgot my password", client["id"], user["id"])
    return {"client": client, "site": site, "user": user, "ticket": ticket, "id": str(ticket["id"])}


def settings_for(halo: HaloSandbox, **overrides: str) -> Settings:
    values = halo.app_settings(HALOPSA_WEBHOOK_PASSWORD="wh-5c2e8a", HALOPSA_ESCALATION_TEAM="2nd Line Support")
    return Settings.model_validate({**values, **overrides})


# ---------------------------------------------------------------------------------------------
# The client's traffic, end to end
# ---------------------------------------------------------------------------------------------


async def test_the_clients_requests_and_the_sandboxs_answers_follow_halos_document(contract, halo, world, listening):
    transport = ContractTransport(contract)
    settings = settings_for(halo)
    client = HaloClient(settings, transport=transport)
    ticket_id = world["id"]
    start = datetime.now(UTC)

    await client.get_ticket(ticket_id)
    await client.list_ticket_ids_created_since(start - timedelta(hours=1))
    await client.tenant_hint(str(world["client"]["id"]))
    await client.add_note(ticket_id, "Your password was reset.", NoteVisibility.CUSTOMER)
    await client.add_note(ticket_id, "Reset in Entra [TierOne T1 note]", NoteVisibility.INTERNAL)
    await client.list_notes(ticket_id)
    await client.add_time_entry(ticket_id, start, start + timedelta(minutes=4), "reset [TierOne T1 time]")
    await client.list_time_entries(ticket_id)
    await client.escalate_ticket(ticket_id)
    await client.close_ticket(ticket_id)
    registrar = HaloRegistrar(settings, client=client)
    await registrar.register(listening.url)
    await registrar.register(listening.url)
    await HaloRegistrar(settings_for(halo, HALOPSA_WEBHOOK_PASSWORD="rotated"), client=client).register(listening.url)
    await client.aclose()

    assert transport.problems == []
    assert {
        ("GET", "/AuthInfo"),
        ("GET", "/Tickets/{id}"),
        ("GET", "/Tickets"),
        ("POST", "/Tickets"),
        ("GET", "/Users/{id}"),
        ("GET", "/Actions"),
        ("POST", "/Actions"),
        ("GET", "/Status"),
        ("GET", "/Team"),
        ("GET", "/azureadconnection"),
        ("GET", "/azureadconnection/{id}"),
        ("GET", "/Webhook"),
        ("GET", "/Webhook/{id}"),
        ("POST", "/Webhook"),
    } <= transport.operations
    for schema in ("Faults", "Actions", "Users", "TStatus", "SectionDetail", "AzureADConnection", "Webhook"):
        assert contract.validated[schema] > 0, f"no {schema} answer was checked"


# ---------------------------------------------------------------------------------------------
# The sandbox's answers on every endpoint it serves
# ---------------------------------------------------------------------------------------------


async def _token(http: httpx.AsyncClient, halo: HaloSandbox) -> str:
    response = await http.post(
        f"{halo.url}/auth/token",
        params={"tenant": halo.tenant},
        data={
            "grant_type": "client_credentials",
            "client_id": halo.client_id,
            "client_secret": halo.client_secret,
            "scope": "all",
        },
    )
    return str(response.json()["access_token"])


async def test_every_sandbox_endpoint_answers_within_halos_schemas(contract, halo, world, listening):
    transport = ContractTransport(contract)
    webhook = halo.register_webhook(listening.url, username="tierone", password="pw", payload_type=PAYLOAD_FULL)
    halo.register_webhook(listening.url, name="small", payload_type=PAYLOAD_SMALL)
    async with httpx.AsyncClient(base_url=f"{halo.url}/api", transport=transport) as http:
        http.headers["Authorization"] = f"Bearer {await _token(http, halo)}"
        ticket = world["ticket"]["id"]
        created = (
            await http.post(
                "/Tickets",
                json=[
                    {
                        "summary": "New starter",
                        "details_html": "<p>Please set up <b>Ben</b></p>",
                        "client_id": world["client"]["id"],
                        "site_id": world["site"]["id"],
                        "user_id": world["user"]["id"],
                        "tickettype_id": 1,
                        "_novalidate": True,
                        "donotapplytemplateintheapi": True,
                    }
                ],
            )
        ).json()
        action = (
            await http.post(
                "/Actions",
                json=[{"ticket_id": ticket, "outcome_id": 7, "note": "x", "new_status": 2, "timetaken": 0.1}],
            )
        ).json()
        paged: dict[str, Any] = {"pageinate": "true", "page_size": 10, "page_no": 1}
        reads: list[tuple[str, dict[str, Any]]] = [
            ("/Tickets", paged),
            (f"/Tickets/{created['id']}", {"includedetails": "true"}),
            ("/Actions", {"ticket_id": ticket, "includehtmlnote": "true"}),
            (f"/Actions/{action['id']}", {}),
            ("/Users", {**paged, "client_id": world["client"]["id"]}),
            (f"/Users/{world['user']['id']}", {}),
            ("/Client", paged),
            (f"/Client/{world['client']['id']}", {}),
            ("/Site", {}),
            (f"/Site/{world['site']['id']}", {}),
            ("/Status", {}),
            ("/Status/9", {}),
            ("/Team", {}),
            ("/Outcome", {}),
            ("/Agent", {}),
            ("/Agent/me", {}),
            (f"/Agent/{halo.api_agent_id}", {}),
            ("/Webhook", {}),
            (f"/Webhook/{webhook['id']}", {"includedetails": "true"}),
            ("/AzureADConnection", {"type": 2}),
            ("/AzureADConnection/1", {"includedetails": "true", "includetenants": "true"}),
        ]
        for path, params in reads:
            assert (await http.get(path, params=params)).status_code == 200, path
    halo.wait_for_deliveries(5)
    nested = [r.json()["ticket"] for r in listening.received]
    for payload in nested:
        transport.problems += contract.check_entity("Faults", payload, "webhook payload ticket")

    assert transport.problems == []
    assert len(nested) == 2
    for schema in ("Faults", "Actions", "Users", "Area", "Site", "TStatus", "TOutcome", "Uname", "Webhook"):
        assert contract.validated[schema] > 0, f"no {schema} answer was checked"


# ---------------------------------------------------------------------------------------------
# The check itself: it must catch what Halo's document does not allow
# ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("method", "path", "query", "body", "expected"),
    [
        ("GET", "/Tickets", [("pagesize", "3")], None, "'pagesize' is not documented"),
        ("GET", "/Tickets", [("pageinate", "yes")], None, "is not a bool"),
        ("GET", "/Tickets/abc", [], None, "is not a integer"),
        ("PATCH", "/Tickets/1", [], None, "not an operation"),
        ("GET", "/NoSuchThing", [], None, "not an operation"),
        ("POST", "/Actions", [], [{"ticket_id": 1, "outcome_id": 7, "note_hmtl": "x"}], "note_hmtl"),
        ("POST", "/Actions", [], {"ticket_id": 1, "outcome_id": 7}, "is not of type 'array'"),
        ("POST", "/Tickets", [], [{"id": 1, "status_id": "9"}], "is not of type 'integer'"),
        ("POST", "/Webhook", [], [{"id": "not-a-guid", "name": "x"}], "is not a 'uuid'"),
    ],
)
def test_the_check_refuses_requests_halo_does_not_document(contract, method, path, query, body, expected):
    raw = json.dumps(body).encode() if body is not None else b""
    problems = contract.check_request(method, path, query, raw)
    assert any(expected in problem for problem in problems), problems


@pytest.mark.parametrize(
    ("path", "body", "expected"),
    [
        ("/Tickets/1", {"id": 1, "summry": "typo"}, "'summry' was unexpected"),
        ("/Tickets/1", {"id": 1, "status_id": "1"}, "is not of type 'integer'"),
        ("/Tickets/1", {"id": 1, "dateoccurred": "yesterday"}, "is not a 'date-time'"),
        ("/Tickets", {"record_count": 1, "tickets": [{"id": 1}], "extra": 2}, "non-paging keys"),
        ("/Status", [{"id": 1, "name": "New", "closed": True}], "'closed' was unexpected"),
        ("/Users/5", {"id": 5, "site_id": "30"}, "is not of type 'number'"),
    ],
)
def test_the_check_refuses_answers_outside_the_entity_schema(contract, path, body, expected):
    problems = contract.check_response("GET", path, 200, json.dumps(body).encode())
    assert any(expected in problem for problem in problems), problems


def test_routes_match_without_case_and_literals_before_parameters(contract):
    me = contract.operation("GET", "/agent/ME")
    by_id = contract.operation("GET", "/AGENT/5")
    assert me is not None
    assert me.template == "/Agent/me"
    assert by_id is not None
    assert by_id.template == "/Agent/{id}"
    assert contract.entity_schema("/Tickets/{id}") == "components/schemas/Faults"
    assert contract.entity_schema("/azureadconnection/{id}") == "components/schemas/AzureADConnection"

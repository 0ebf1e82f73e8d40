"""Contract of the local Functions host (sandbox/functions_host.py) and the Azurite runner: the stand-in
for `func start` must route, authorise, retry and poison the way the Azure Functions host does."""

from __future__ import annotations

import asyncio
import base64
import datetime as dt
import json
import logging
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import azure.functions as func
import httpx
import pytest
from azure.data.tables import TableClient
from azure.storage.queue import QueueClient, TextBase64EncodePolicy

from sandbox import azurite as azurite_module
from sandbox.azurite import Azurite, AzuriteError
from sandbox.functions_host import (
    HostConfigError,
    HostSettings,
    LocalFunctionsHost,
    RouteTemplate,
    _Schedule,
    parse_timespan,
)
from tests.contract import host_fixture_app as fx

FUNCTION_KEY = "fn-key-for-secure"
HOST_KEY = "host-key"
MAX_DEQUEUE = 3


def b64(text: str) -> str:
    return base64.b64encode(text.encode("utf-8")).decode("ascii")


# `azurite` is the session fixture in tests/conftest.py.


@pytest.fixture(scope="session")
def host_json(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("host") / "host.json"
    queues = {"maxDequeueCount": MAX_DEQUEUE, "visibilityTimeout": "00:00:00", "maxPollingInterval": "00:00:05"}
    path.write_text(json.dumps({"version": "2.0", "extensions": {"queues": queues}}))
    return path


@pytest.fixture(scope="session")
def environ(azurite: Azurite) -> dict[str, str]:
    # Once a year: the schedule must parse, but only run_timer() should fire it during the tests.
    return {"AzureWebJobsStorage": azurite.connection_string, fx.TIMER_SCHEDULE_SETTING: "0 0 0 1 1 *"}


@pytest.fixture(scope="session")
def observed() -> fx.Observed:
    return fx.Observed()


@pytest.fixture(scope="session")
def host(host_json: Path, environ: dict[str, str], observed: fx.Observed) -> Iterator[LocalFunctionsHost]:
    keys = {"secure": FUNCTION_KEY, "default": HOST_KEY}
    app = fx.build_app(observed)
    with LocalFunctionsHost(app, host_json_path=host_json, function_keys=keys, environ=environ) as running:
        yield running


@pytest.fixture
def client(host: LocalFunctionsHost) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=host.api_url, timeout=10) as http:
        yield http


def invocations_of(host: LocalFunctionsHost, name: str) -> list:
    return [i for i in host.invocations if i.function_name == name]


# -- HTTP ------------------------------------------------------------------------------------------------


def test_route_parameters_reach_the_handler_and_its_response_comes_back(client: httpx.Client) -> None:
    response = client.get("/greet/Ada", params={"q": "1"})

    assert response.status_code == 200
    assert response.json() == {"hello": "Ada", "q": "1"}
    assert response.headers["x-greeted"] == "Ada"
    assert response.headers["content-type"] == "application/json"


def test_a_str_return_is_a_200_text_response(client: httpx.Client) -> None:
    response = client.get("/secure", params={"code": FUNCTION_KEY})

    assert (response.status_code, response.text) == (200, "secret")
    assert response.headers["content-type"] == "text/plain; charset=utf-8"


def test_catch_all_parameter_takes_the_rest_of_the_path(client: httpx.Client) -> None:
    assert client.get("/files/a/b/c.txt").text == "a/b/c.txt"
    assert client.get("/files").text == "<none>"


def test_wrong_method_on_a_known_path_is_405(client: httpx.Client) -> None:
    assert client.post("/greet/Ada").status_code == 405


@pytest.mark.parametrize("path", ["/api/nope", "/api/greet/a/b", "/greet/Ada", "/"])
def test_unknown_path_is_404(host: LocalFunctionsHost, path: str) -> None:
    assert httpx.get(host.url + path).status_code == 404


@pytest.mark.parametrize(
    ("params", "headers"),
    [({}, {}), ({"code": "wrong"}, {}), ({}, {"x-functions-key": "wrong"})],
    ids=["no key", "wrong code", "wrong header"],
)
def test_function_level_route_rejects_a_missing_or_wrong_key(client: httpx.Client, params, headers) -> None:
    response = client.get("/secure", params=params, headers=headers)

    assert (response.status_code, response.content) == (401, b"")


@pytest.mark.parametrize(
    ("params", "headers"),
    [({"code": FUNCTION_KEY}, {}), ({}, {"x-functions-key": FUNCTION_KEY}), ({"code": HOST_KEY}, {})],
    ids=["function key as code", "function key as header", "host key"],
)
def test_function_level_route_accepts_a_valid_key(client: httpx.Client, params, headers) -> None:
    assert client.get("/secure", params=params, headers=headers).status_code == 200


def test_an_exception_in_the_function_is_a_500_and_is_logged(
    host: LocalFunctionsHost, client: httpx.Client, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="sandbox.functions_host")

    response = client.get("/boom")

    assert (response.status_code, response.content) == (500, b"")
    assert invocations_of(host, "boom")[-1].outcome == "error"
    failure = [r for r in caplog.records if "Functions.boom" in r.getMessage()]
    assert failure
    assert failure[-1].exc_info is not None


def test_a_sync_function_does_not_block_the_event_loop(client: httpx.Client) -> None:
    # /callback is sync and calls /greet on the same host; run on the loop, it would deadlock.
    response = client.get("/callback")

    assert (response.status_code, response.json()["hello"]) == (200, "loop")


# -- queues ----------------------------------------------------------------------------------------------


def test_queue_output_reaches_the_queue_trigger_with_the_same_body(
    host: LocalFunctionsHost, client: httpx.Client, environ: dict[str, str]
) -> None:
    text = f"hello queue ✓ {time.monotonic_ns()}"

    assert client.post("/enqueue", content=text.encode("utf-8")).status_code == 202
    host.wait_for_idle(timeout=10)

    table = TableClient.from_connection_string(environ["AzureWebJobsStorage"], fx.SEEN_TABLE)
    seen = [e for e in table.query_entities("PartitionKey eq 'work'") if e["Body"] == text]
    assert len(seen) == 1
    assert seen[0]["DequeueCount"] == 1
    assert invocations_of(host, "record_work")[-1].outcome == "ok"


def test_queue_output_messages_are_base64_and_a_list_is_several_messages(
    host: LocalFunctionsHost, client: httpx.Client, environ: dict[str, str]
) -> None:
    outbox = QueueClient.from_connection_string(environ["AzureWebJobsStorage"], fx.OUTBOX_QUEUE)
    text = f"raw-{time.monotonic_ns()}"

    client.post("/enqueue", content=text.encode("utf-8"))
    host.wait_for_idle(timeout=10)

    contents = [m.content for m in outbox.receive_messages(max_messages=32)]
    assert b64(text) in contents
    assert b64(f"{text}-2") in contents


def test_a_failing_message_ends_in_the_poison_queue_after_max_dequeue_count(
    host: LocalFunctionsHost, environ: dict[str, str]
) -> None:
    connection = environ["AzureWebJobsStorage"]
    producer = QueueClient.from_connection_string(
        connection, fx.FAILING_QUEUE, message_encode_policy=TextBase64EncodePolicy()
    )
    body = f"poison me {time.monotonic_ns()}"
    before = len(invocations_of(host, "always_fails"))

    producer.send_message(body)
    host.wait_for_idle(timeout=10)

    attempts = invocations_of(host, "always_fails")[before:]
    assert [a.dequeue_count for a in attempts] == list(range(1, MAX_DEQUEUE + 1))
    assert {a.outcome for a in attempts} == {"error"}
    poison = QueueClient.from_connection_string(connection, f"{fx.FAILING_QUEUE}-poison")
    assert [m.content for m in poison.receive_messages(max_messages=32)] == [b64(body)]


def test_a_message_that_is_not_base64_fails_every_attempt_and_is_poisoned(
    host: LocalFunctionsHost, environ: dict[str, str]
) -> None:
    # The azure.md §1.4 gotcha: a producer that forgets TextBase64EncodePolicy.
    connection = environ["AzureWebJobsStorage"]
    before = len(invocations_of(host, "record_work"))

    QueueClient.from_connection_string(connection, fx.WORK_QUEUE).send_message('{"plain": "json"}')
    host.wait_for_idle(timeout=10)

    attempts = invocations_of(host, "record_work")[before:]
    assert [(a.outcome, a.dequeue_count) for a in attempts] == [("error", n) for n in range(1, MAX_DEQUEUE + 1)]
    assert "base64" in str(attempts[-1].error)
    poison = QueueClient.from_connection_string(connection, f"{fx.WORK_QUEUE}-poison")
    assert [m.content for m in poison.receive_messages(max_messages=32)] == ['{"plain": "json"}']


def test_a_message_enqueued_by_a_function_is_picked_up_at_once(host: LocalFunctionsHost, client: httpx.Client) -> None:
    # Idle long enough for the pollers to back off (0.1, 0.2, 0.4, 0.8, 1.6 s, then 3.2 s): without the
    # host waking them after each invocation, the next poll would come seconds after the POST.
    time.sleep(3.2)
    sent = dt.datetime.now(dt.UTC)

    client.post("/enqueue", content=b"latency")
    host.wait_for_idle(timeout=10)

    picked_up = invocations_of(host, "record_work")[-1].started_at
    assert (picked_up - sent).total_seconds() < 0.5


def test_wait_for_idle_times_out_while_a_trigger_queue_holds_messages(
    host: LocalFunctionsHost, environ: dict[str, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(host, "_waiting_messages", lambda: {fx.WORK_QUEUE: 1})

    with pytest.raises(TimeoutError, match=fx.WORK_QUEUE):
        host.wait_for_idle(timeout=0.1)


def test_stop_lets_an_in_flight_message_finish_and_the_host_can_start_again(
    host_json: Path, environ: dict[str, str]
) -> None:
    started, finished = threading.Event(), []
    app = func.FunctionApp()

    @app.queue_trigger(arg_name="msg", queue_name="hostfx-slow", connection="AzureWebJobsStorage")
    async def slow(msg: func.QueueMessage) -> None:
        started.set()
        await asyncio.sleep(0.5)
        finished.append(msg.get_body())

    queue = QueueClient.from_connection_string(
        environ["AzureWebJobsStorage"], "hostfx-slow", message_encode_policy=TextBase64EncodePolicy()
    )
    host = LocalFunctionsHost(app, host_json_path=host_json, environ=environ).start()
    queue.send_message("slow")
    assert started.wait(5)

    host.stop()

    assert finished == [b"slow"]
    assert queue.get_queue_properties().approximate_message_count == 0
    with host:
        assert [i.function_name for i in host.invocations] == ["slow"]


# -- timers ----------------------------------------------------------------------------------------------


def test_run_timer_fires_a_timer_function(host: LocalFunctionsHost, observed: fx.Observed) -> None:
    before = len(observed.timer_past_due)

    invocation = host.run_timer("tick")

    assert (invocation.function_name, invocation.trigger, invocation.outcome) == ("tick", "timer", "ok")
    assert observed.timer_past_due[before:] == [False]


def test_run_timer_names_the_timers_when_the_function_is_unknown(host: LocalFunctionsHost) -> None:
    with pytest.raises(KeyError, match="tick"):
        host.run_timer("greet")


@pytest.mark.parametrize(
    ("schedule", "after", "expected"),
    [
        ("0 */5 * * * *", "2026-01-01T00:03:10", "2026-01-01T00:05:00"),
        ("*/10 * * * * *", "2026-01-01T00:00:03", "2026-01-01T00:00:10"),
        ("0 30 9 * * Mon-Fri", "2026-01-03T00:00:00", "2026-01-05T09:30:00"),  # Sat -> Mon
        ("00:00:30", "2026-01-01T00:00:00", "2026-01-01T00:00:30"),
    ],
)
def test_ncrontab_schedules_put_seconds_first(schedule: str, after: str, expected: str) -> None:
    moment = dt.datetime.fromisoformat(after).replace(tzinfo=dt.UTC)

    assert _Schedule(schedule).next_after(moment) == dt.datetime.fromisoformat(expected).replace(tzinfo=dt.UTC)


# -- routes, settings, indexing ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("template", "path", "expected"),
    [
        ("webhooks/{psa}", "webhooks/halo", {"psa": "halo"}),
        ("Webhooks/{psa}", "webhooks/halo", {"psa": "halo"}),
        ("webhooks/{psa}", "webhooks", None),
        ("items/{id:int}", "items/42", {"id": "42"}),
        ("items/{id:int}", "items/abc", None),
        (
            "items/{id:guid}",
            "items/6f1c2a4e-8d1b-4c3a-9e2f-0a1b2c3d4e5f",
            {"id": "6f1c2a4e-8d1b-4c3a-9e2f-0a1b2c3d4e5f"},
        ),
        ("users/{name?}", "users", {}),
        ("users/{name?}", "users/ada", {"name": "ada"}),
        ("pages/{n=1}", "pages", {"n": "1"}),
        ("{*route}", "any/thing/at/all", {"route": "any/thing/at/all"}),
        ("files/{name}.{ext}", "files/report.pdf", {"name": "report", "ext": "pdf"}),
    ],
)
def test_route_templates_match_like_the_host(template: str, path: str, expected: dict | None) -> None:
    assert RouteTemplate(template).match(path) == expected


def test_host_json_defaults_and_app_setting_overrides(tmp_path: Path) -> None:
    path = tmp_path / "host.json"
    path.write_text(json.dumps({"version": "2.0", "extensions": {"queues": {"maxPollingInterval": "00:00:00.05"}}}))

    defaults = HostSettings.load(path, {})
    overridden = HostSettings.load(path, {"AzureFunctionsJobHost__extensions__queues__maxDequeueCount": "2"})

    assert (defaults.route_prefix, defaults.max_dequeue_count, defaults.batch_size) == ("api", 5, 16)
    assert defaults.max_polling_interval_s == 0.1  # clamped to the host's 100 ms floor
    assert overridden.max_dequeue_count == 2
    assert parse_timespan("1.02:03:04.5") == 93784.5


def test_an_app_can_be_indexed_by_more_than_one_host(host_json: Path, environ: dict[str, str]) -> None:
    app = fx.build_app(fx.Observed())

    first = LocalFunctionsHost(app, host_json_path=host_json, environ=environ)
    second = LocalFunctionsHost(app, host_json_path=host_json, environ=environ)

    assert first.function_names == second.function_names
    assert "record_work" in first.function_names


def test_a_missing_connection_setting_fails_at_start_up(host_json: Path) -> None:
    with pytest.raises(HostConfigError, match="AzureWebJobsStorage"):
        LocalFunctionsHost(fx.build_app(fx.Observed()), host_json_path=host_json, environ={})


def test_an_unsupported_binding_fails_at_start_up(host_json: Path, environ: dict[str, str]) -> None:
    app = func.FunctionApp()

    @app.route(route="x")
    @app.blob_input(arg_name="blob", path="c/b", connection="AzureWebJobsStorage")
    def uses_blob(req: func.HttpRequest, blob: func.InputStream) -> str:
        return "x"

    with pytest.raises(HostConfigError, match="blob"):
        LocalFunctionsHost(app, host_json_path=host_json, environ=environ)


# -- Azurite ---------------------------------------------------------------------------------------------


def test_azurite_connection_string_names_its_own_ports(azurite: Azurite) -> None:
    assert f"QueueEndpoint=http://127.0.0.1:{azurite.queue_port}/devstoreaccount1" in azurite.connection_string
    assert f"TableEndpoint=http://127.0.0.1:{azurite.table_port}/devstoreaccount1" in azurite.connection_string
    assert azurite.running


def test_azurite_without_binaries_says_to_run_make_install(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(azurite_module, "BIN_DIR", tmp_path)

    with pytest.raises(AzuriteError, match="make install"):
        Azurite().start()

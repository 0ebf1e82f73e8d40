"""A small FunctionApp for the local Functions host's contract tests: one of each trigger and binding
the host runs. `build_app()` makes a fresh app each time, because an app is meant to be indexed once."""

from __future__ import annotations

import json
from dataclasses import dataclass, field

import azure.functions as func
import httpx

CONNECTION = "AzureWebJobsStorage"
WORK_QUEUE = "hostfx-work"
OUTBOX_QUEUE = "hostfx-outbox"  # no trigger reads it, so tests can look at the raw messages
FAILING_QUEUE = "hostfx-failing"
SEEN_TABLE = "HostFxSeen"
TIMER_SCHEDULE_SETTING = "HOSTFX_TIMER_SCHEDULE"


@dataclass
class Observed:
    """What the functions saw that leaves no trace in storage."""

    timer_past_due: list[bool] = field(default_factory=list)


def build_app(observed: Observed) -> func.FunctionApp:
    bp = func.Blueprint()

    @bp.route(route="greet/{name}", methods=["GET"], auth_level=func.AuthLevel.ANONYMOUS)
    async def greet(req: func.HttpRequest) -> func.HttpResponse:
        name = req.route_params["name"]
        body = json.dumps({"hello": name, "q": req.params.get("q")})
        return func.HttpResponse(body, mimetype="application/json", headers={"x-greeted": name})

    @bp.route(route="files/{*path}", methods=["GET"], auth_level=func.AuthLevel.ANONYMOUS)
    def files(req: func.HttpRequest) -> func.HttpResponse:
        return func.HttpResponse(req.route_params.get("path", "<none>"))

    # No auth_level: the app-level FUNCTION applies, as in Azure.
    @bp.route(route="secure", methods=["GET"])
    def secure(req: func.HttpRequest) -> str:
        return "secret"

    @bp.route(route="boom", auth_level=func.AuthLevel.ANONYMOUS)
    def boom(req: func.HttpRequest) -> func.HttpResponse:
        raise RuntimeError("boom")

    @bp.route(route="enqueue", methods=["POST"], auth_level=func.AuthLevel.ANONYMOUS)
    @bp.queue_output(arg_name="work", queue_name=WORK_QUEUE, connection=CONNECTION)
    @bp.queue_output(arg_name="outbox", queue_name=OUTBOX_QUEUE, connection=CONNECTION)
    def enqueue(req: func.HttpRequest, work: func.Out[str], outbox: func.Out[list[str]]) -> func.HttpResponse:
        text = req.get_body().decode("utf-8")
        work.set(text)
        outbox.set([text, f"{text}-2"])
        return func.HttpResponse(status_code=202)

    @bp.queue_trigger(arg_name="msg", queue_name=WORK_QUEUE, connection=CONNECTION)
    @bp.table_output(arg_name="seen", table_name=SEEN_TABLE, connection=CONNECTION, partition_key="work")
    async def record_work(msg: func.QueueMessage, seen: func.Out[str]) -> None:
        entity = {"RowKey": msg.id, "Body": msg.get_body().decode("utf-8"), "DequeueCount": msg.dequeue_count}
        seen.set(json.dumps(entity))

    @bp.queue_trigger(arg_name="msg", queue_name=FAILING_QUEUE, connection=CONNECTION)
    def always_fails(msg: func.QueueMessage) -> None:
        raise RuntimeError(f"cannot handle {msg.get_body()!r}")

    @bp.timer_trigger(arg_name="timer", schedule=f"%{TIMER_SCHEDULE_SETTING}%", run_on_startup=False)
    def tick(timer: func.TimerRequest) -> None:
        observed.timer_past_due.append(timer.past_due)

    @bp.route(route="callback", methods=["GET"], auth_level=func.AuthLevel.ANONYMOUS)
    def call_back(req: func.HttpRequest) -> func.HttpResponse:
        # A blocking call into the same host: it only completes if sync functions stay off the event loop.
        base = req.url.split("/api/")[0]
        inner = httpx.get(f"{base}/api/greet/loop", timeout=5)
        return func.HttpResponse(inner.text, status_code=inner.status_code, mimetype="application/json")

    app = func.FunctionApp(http_auth_level=func.AuthLevel.FUNCTION)
    app.register_functions(bp)
    return app

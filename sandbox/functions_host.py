"""A local stand-in for `func start`: runs a v2 `azure.functions.FunctionApp` against Azurite.

Azure Functions Core Tools cannot be installed here (their installer downloads a binary), and no
PyPI package runs a v2 app's HTTP *and* queue triggers locally (Azure research notes, azure.md §1.7 and §5.5).
`LocalFunctionsHost` indexes the app once with `app.get_functions()` and plays the part of the .NET
host and the Python worker:

What it reproduces
- HTTP triggers: the `route=` template under `/{routePrefix}/` (host.json `extensions.http.routePrefix`,
  default "api"), including `{name}`, `{name:int|long|guid|alpha|bool}`, `{name?}`, `{name=default}` and
  `{*rest}`; the trigger's methods (405 when only the method is wrong, 404 otherwise); auth levels
  (FUNCTION/ADMIN need `?code=` or `x-functions-key`, else 401 with an empty body); 500 with an empty
  body when the function raises or returns something that is not a response.
- The worker's calling convention: arguments bound by binding name (plus `context`); coroutine
  functions awaited on the host's event loop, plain functions run in a thread pool
  (PYTHON_THREADPOOL_THREAD_COUNT, as the worker sizes it), never on the loop.
- Output bindings: `queue` (str, bytes, QueueMessage or a list of them; base64 like the host) and
  `table` (a JSON entity or list of entities, upserted). The binding's `connection` names an app
  setting; `%SETTING%` expressions in queue, table and schedule names are resolved.
- Queue triggers: polling with back-off up to `maxPollingInterval`, up to `batchSize` concurrent
  messages per queue, `messageEncoding` base64 (default) or none, retries after `visibilityTimeout`,
  and `<queue>-poison` after `maxDequeueCount` attempts, holding the original message text.
  host.json values can be overridden with `AzureFunctionsJobHost__extensions__queues__...` settings.
- Timer triggers: 6-field NCRONTAB (seconds first) or TimeSpan schedules, in UTC; `run_on_startup`.

What it does not reproduce
- The extension bundle and any binding other than the above (input bindings, blobs, Service Bus, ...
  are rejected at start-up rather than silently ignored); binding expressions such as `{queueTrigger}`;
  `regex()`/`min()`/`length()` route constraints (they are accepted but not enforced).
- Scaling, instance concurrency limits, visibility renewal of messages processed for over 5 minutes,
  the timer's storage-backed schedule monitor and singleton lock across instances.
- Key storage and management: keys are whatever the caller passes in `function_keys`.
- Latency: the real host only wakes queue listeners early for messages written by its own output
  bindings; this host also re-polls trigger queues after every invocation, so a pipeline that
  enqueues from its own code is picked up at once instead of after up to `maxPollingInterval`.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import contextlib
import contextvars
import datetime as dt
import functools
import hmac
import inspect
import json
import logging
import os
import re
import threading
import time
import uuid
from collections import deque
from collections.abc import AsyncIterator, Callable, Coroutine, Iterator, Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

import azure.functions as func
from azure.core.exceptions import ResourceExistsError, ServiceRequestError
from azure.data.tables import TableClient, UpdateMode
from azure.functions._abc import RetryContext, TraceContext  # the ABCs func.Context's properties return
from azure.functions.decorators.core import Binding
from azure.functions.decorators.function_app import Function, FunctionRegister
from azure.functions.decorators.http import HttpOutput, HttpTrigger
from azure.functions.decorators.queue import QueueOutput, QueueTrigger
from azure.functions.decorators.table import TableOutput
from azure.functions.decorators.timer import TimerTrigger
from azure.functions.queue import QueueMessage
from azure.functions.timer import TimerRequest
from azure.storage.queue import LinearRetry, QueueClient, TextBase64EncodePolicy
from azure.storage.queue import QueueMessage as StorageMessage
from croniter import croniter
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from sandbox._server import BackgroundServer, free_port

logger = logging.getLogger("sandbox.functions_host")

T = TypeVar("T")

DEFAULT_CONNECTION = "AzureWebJobsStorage"
# How long a received message stays invisible to other pollers while the function runs.
PROCESSING_VISIBILITY_S = 300
# The shortest queue polling interval; the host documents 100 ms as the floor of maxPollingInterval.
MIN_POLL_S = 0.1
# A timer that fires this much later than scheduled reports `past_due`.
PAST_DUE_AFTER_S = 1.0
MAX_INVOCATION_LOG = 10_000
ALL_METHODS = ["GET", "POST", "PUT", "PATCH", "DELETE", "HEAD", "OPTIONS", "TRACE"]
SUPPORTED = "HTTP, queue and timer triggers; http, queue and table output bindings"


class HostConfigError(ValueError):
    """The app or host.json uses something this host cannot run, or a setting is missing."""


# -- host.json ------------------------------------------------------------------------------------------

_TIMESPAN = re.compile(r"^(?:(\d+)\.)?(\d{1,2}):(\d{1,2}):(\d{1,2}(?:\.\d+)?)$")


def parse_timespan(value: object) -> float:
    """A .NET TimeSpan string (`[d.]hh:mm:ss[.fff]`), as host.json uses, in seconds."""
    match = _TIMESPAN.match(str(value).strip())
    if match is None:
        raise HostConfigError(f"expected a TimeSpan such as '00:00:02', got {value!r}")
    days, hours, minutes, seconds = match.groups()
    return int(days or 0) * 86400 + int(hours) * 3600 + int(minutes) * 60 + float(seconds)


def _flatten(node: object, prefix: str = "") -> dict[str, object]:
    """host.json as {"extensions:queues:batchsize": 16}; .NET configuration keys are case-insensitive."""
    if not isinstance(node, dict):
        return {prefix: node}
    flat: dict[str, object] = {}
    for key, value in node.items():
        flat.update(_flatten(value, f"{prefix}:{key.lower()}" if prefix else key.lower()))
    return flat


@dataclass(frozen=True)
class HostSettings:
    """The host.json settings this host honours (azure.md §1.4), with the host's defaults."""

    route_prefix: str = "api"
    max_dequeue_count: int = 5
    visibility_timeout_s: float = 0.0
    max_polling_interval_s: float = 60.0
    batch_size: int = 16
    message_encoding: str = "base64"

    @classmethod
    def load(cls, host_json_path: str | os.PathLike[str], environ: Mapping[str, str]) -> HostSettings:
        values = _flatten(json.loads(Path(host_json_path).read_text(encoding="utf-8")))
        # App settings named AzureFunctionsJobHost__a__b override host.json's a.b, as in Azure.
        for name, value in environ.items():
            if name.lower().startswith("azurefunctionsjobhost__"):
                values[name.lower().removeprefix("azurefunctionsjobhost__").replace("__", ":")] = value

        def get(path: str, default: object) -> object:
            value = values.get(path)
            return default if value is None else value

        encoding = str(get("extensions:queues:messageencoding", "base64")).lower()
        if encoding not in ("base64", "none"):
            raise HostConfigError(f"extensions.queues.messageEncoding must be base64 or none, not {encoding!r}")
        return cls(
            route_prefix=str(get("extensions:http:routeprefix", "api")).strip("/"),
            max_dequeue_count=max(1, int(str(get("extensions:queues:maxdequeuecount", 5)))),
            visibility_timeout_s=parse_timespan(get("extensions:queues:visibilitytimeout", "00:00:00")),
            max_polling_interval_s=max(
                MIN_POLL_S, parse_timespan(get("extensions:queues:maxpollinginterval", "00:01:00"))
            ),
            batch_size=min(32, max(1, int(str(get("extensions:queues:batchsize", 16))))),
            message_encoding=encoding,
        )


# -- HTTP route templates ---------------------------------------------------------------------------------

# Segment kinds, most specific first: the order in which ASP.NET Core prefers routes.
_LITERAL, _CONSTRAINED, _PARAMETER, _OPTIONAL, _CATCH_ALL = range(5)

_CONSTRAINTS = {
    "int": r"-?\d+",
    "long": r"-?\d+",
    "guid": r"\{?[0-9a-f]{8}-?[0-9a-f]{4}-?[0-9a-f]{4}-?[0-9a-f]{4}-?[0-9a-f]{12}\}?",
    "alpha": r"[a-z]+",
    "bool": r"true|false",
}


class RouteTemplate:
    """An ASP.NET Core route template, as the Functions host reads an HTTP trigger's `route=`.

    `match("items/42")` on `items/{id:int}` gives `{"id": "42"}`; literals match case-insensitively.
    """

    def __init__(self, template: str) -> None:
        self.template = template
        self._groups: dict[str, str] = {}  # regex group -> parameter name
        self._defaults: dict[str, str] = {}
        parts: list[str] = []
        kinds: list[int] = []
        segments = template.strip("/").split("/") if template.strip("/") else []
        for index, segment in enumerate(segments):
            pattern, kind = self._segment(segment)
            separator = "/" if index else ""
            # An optional or catch-all last segment may be absent together with its slash.
            parts.append(f"(?:{separator}{pattern})?" if kind >= _OPTIONAL else separator + pattern)
            kinds.append(kind)
        self.regex = re.compile("^" + "".join(parts) + "$", re.IGNORECASE)
        self.precedence = tuple(kinds)

    def match(self, path: str) -> dict[str, str] | None:
        """Route values for `path` (relative to the route prefix, no leading slash), or None."""
        found = self.regex.match(path.strip("/"))
        if found is None:
            return None
        values = dict(self._defaults)
        values.update({self._groups[g]: v for g, v in found.groupdict().items() if v is not None})
        return values

    def _segment(self, segment: str) -> tuple[str, int]:
        tokens = [t for t in re.split(r"(\{[^{}]*\})", segment) if t]
        if not any(t.startswith("{") for t in tokens):
            return re.escape(segment), _LITERAL
        if len(tokens) == 1:
            return self._parameter(tokens[0][1:-1], whole_segment=True)
        # A complex segment such as "{name}.{ext}": parameters match lazily between the literals.
        pattern = "".join(
            self._parameter(t[1:-1], whole_segment=False)[0] if t.startswith("{") else re.escape(t) for t in tokens
        )
        return pattern, _CONSTRAINED

    def _parameter(self, spec: str, *, whole_segment: bool) -> tuple[str, int]:
        catch_all = spec.startswith("*")
        spec = spec.lstrip("*")
        default: str | None = None
        if "=" in spec:
            spec, default = spec.split("=", 1)
        optional = spec.endswith("?") or default is not None
        name, *constraints = spec.rstrip("?").split(":")
        group = f"p{len(self._groups)}"
        self._groups[group] = name
        if default is not None:
            self._defaults[name] = default
        if catch_all:
            return f"(?P<{group}>.*)", _CATCH_ALL
        known = [_CONSTRAINTS[c.lower()] for c in constraints if c.lower() in _CONSTRAINTS]
        if known:
            pattern, kind = f"(?:{known[0]})", _CONSTRAINED
        else:
            pattern, kind = ("[^/]+" if whole_segment else "[^/]+?"), _PARAMETER
        return f"(?P<{group}>{pattern})", _OPTIONAL if optional else kind


# -- indexed functions --------------------------------------------------------------------------------------


@dataclass(frozen=True)
class _Output:
    """An output binding, resolved against the app settings at start-up."""

    name: str  # the parameter name, or "$return"
    type: str  # "http", "queue" or "table"
    target: str = ""  # queue or table name
    connection_string: str = ""
    partition_key: str | None = None
    row_key: str | None = None


@dataclass
class _HostedFunction:
    name: str
    callable: Callable[..., Any]
    is_async: bool
    trigger_type: str  # httpTrigger, queueTrigger or timerTrigger
    trigger_arg: str
    outputs: list[_Output]
    takes_context: bool
    auth_level: str = "anonymous"
    methods: frozenset[str] | None = None  # None: every method
    route: RouteTemplate | None = None


@dataclass
class _QueueListener:
    function: _HostedFunction
    queue_name: str
    connection_string: str
    wake: asyncio.Event = field(default_factory=asyncio.Event)


@dataclass
class _TimerJob:
    function: _HostedFunction
    schedule: _Schedule
    run_on_startup: bool
    lock: asyncio.Lock = field(default_factory=asyncio.Lock)
    last_due: dt.datetime | None = None


class _Schedule:
    """An NCRONTAB expression (6 fields, seconds first) or a TimeSpan interval, evaluated in UTC."""

    def __init__(self, expression: str) -> None:
        self.expression = expression
        self._interval: float | None = None
        self._cron = ""
        if _TIMESPAN.match(expression.strip()):
            self._interval = parse_timespan(expression)
            return
        fields = expression.split()
        if len(fields) == 6:
            # NCRONTAB puts seconds first; croniter takes them as an extra last field.
            fields = [*fields[1:], fields[0]]
        if len(fields) not in (5, 6) or not croniter.is_valid(" ".join(fields)):
            raise HostConfigError(f"invalid timer schedule {expression!r}; expected e.g. '0 */5 * * * *'")
        self._cron = " ".join(fields)

    def next_after(self, moment: dt.datetime) -> dt.datetime:
        if self._interval is not None:
            return moment + dt.timedelta(seconds=self._interval)
        return croniter(self._cron, moment).get_next(dt.datetime)


@dataclass(frozen=True)
class Invocation:
    """One entry of `LocalFunctionsHost.invocations`."""

    function_name: str
    trigger: str  # "http", "queue" or "timer"
    outcome: str  # "ok" or "error"
    duration_ms: float
    started_at: dt.datetime
    invocation_id: str
    dequeue_count: int | None = None
    error: str | None = None

    @property
    def ok(self) -> bool:
        return self.outcome == "ok"


class _Out(func.Out[Any]):
    """What the worker passes for an output binding parameter."""

    def __init__(self) -> None:
        self._value: Any = None

    def set(self, val: Any) -> None:
        self._value = val

    def get(self) -> Any:
        return self._value


class _TraceContext(TraceContext):
    @property
    def trace_state(self) -> str:
        return ""

    @property
    def trace_parent(self) -> str:
        return ""

    @property
    def attributes(self) -> dict[str, str]:
        return {}


class _Context(func.Context):
    """The `context` argument; there is no distributed tracing and no retry policy locally."""

    def __init__(self, invocation_id: str, function_name: str) -> None:
        self._invocation_id = invocation_id
        self._function_name = function_name
        self._local = threading.local()

    @property
    def invocation_id(self) -> str:
        return self._invocation_id

    @property
    def thread_local_storage(self) -> Any:
        return self._local

    @property
    def function_name(self) -> str:
        return self._function_name

    @property
    def function_directory(self) -> str:
        return os.getcwd()

    @property
    def trace_context(self) -> TraceContext:
        return _TraceContext()

    @property
    def retry_context(self) -> RetryContext:
        raise NotImplementedError("retry policies are not reproduced by the local Functions host")


# -- the host ---------------------------------------------------------------------------------------------


class LocalFunctionsHost:
    """Serves a FunctionApp's HTTP triggers and runs its queue and timer triggers against Azurite.

    `start()` returns once the HTTP server listens and the queue pollers and timers run on its event
    loop; `stop()` stops polling, lets in-flight invocations finish, then stops the server. Both, and
    `wait_for_idle()` and `run_timer()`, are plain blocking methods for the calling thread.
    """

    def __init__(
        self,
        app: FunctionRegister,
        *,
        host_json_path: str | os.PathLike[str],
        port: int | None = None,
        function_keys: Mapping[str, str] | None = None,
        environ: Mapping[str, str] | None = None,
    ) -> None:
        self._environ: Mapping[str, str] = os.environ if environ is None else environ
        self.settings = HostSettings.load(host_json_path, self._environ)
        self.port = port or free_port()
        # function name -> key; "default" is the host key and "_master" the admin key.
        self._keys = dict(function_keys or {})
        self._listeners: list[_QueueListener] = []
        self._timers: dict[str, _TimerJob] = {}
        self._functions = {f.name: f for f in self._index(app)}
        self._routes = sorted(
            (f for f in self._functions.values() if f.route is not None),
            key=lambda f: f.route.precedence if f.route else (),
        )
        self._server: BackgroundServer | None = None
        self._workers: ThreadPoolExecutor | None = None
        self._io_pool: ThreadPoolExecutor | None = None
        self._tasks: list[asyncio.Task[None]] = []
        self._stop_event: asyncio.Event | None = None
        self._stopping = False
        self._lock = threading.Lock()
        self._in_flight = 0
        self._started = 0  # invocations ever begun; lets wait_for_idle spot one that came and went
        self._invocations: deque[Invocation] = deque(maxlen=MAX_INVOCATION_LOG)
        self._queue_clients: dict[tuple[str, str, bool], QueueClient] = {}
        self._table_clients: dict[tuple[str, str], TableClient] = {}
        self._created: set[tuple[str, str, str]] = set()

    # -- public API ---------------------------------------------------------------------------------------

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def api_url(self) -> str:
        return f"{self.url}/{self.settings.route_prefix}" if self.settings.route_prefix else self.url

    @property
    def function_names(self) -> list[str]:
        return sorted(self._functions)

    @property
    def invocations(self) -> list[Invocation]:
        """Completed invocations, oldest first (the last 10,000)."""
        with self._lock:
            return list(self._invocations)

    def start(self) -> LocalFunctionsHost:
        if self._server is not None:
            raise RuntimeError("the host is already started")
        self._stopping = False
        threads = self._environ.get("PYTHON_THREADPOOL_THREAD_COUNT")
        self._workers = ThreadPoolExecutor(
            max_workers=int(threads) if threads else None, thread_name_prefix="functions-worker"
        )
        # Storage calls get their own threads, so user functions that fill the worker pool (for example
        # by waiting on this very host over HTTP) cannot stall polling and output bindings.
        self._io_pool = ThreadPoolExecutor(max_workers=8, thread_name_prefix="functions-host-io")
        try:
            for listener in self._listeners:
                self._ensure_queue(listener.connection_string, listener.queue_name)
        except ServiceRequestError as error:
            self._shutdown_pools()
            raise RuntimeError(f"cannot reach queue storage ({error}); is Azurite running?") from error
        app = Starlette(routes=[Route("/{path:path}", self._handle_http, methods=ALL_METHODS)], lifespan=self._lifespan)
        self._server = BackgroundServer(app, port=self.port, name="functions-host")
        try:
            self._server.start()
        except BaseException:
            self._server = None
            self._shutdown_pools()
            raise
        logger.info("Functions host listening on %s (functions: %s)", self.url, ", ".join(self.function_names))
        return self

    def stop(self, timeout: float = 30.0) -> None:
        """Stop polling and timers, let in-flight invocations finish, then stop the HTTP server."""
        server, self._server = self._server, None
        if server is None:
            return
        if server.loop is not None and server.loop.is_running():
            server.loop.call_soon_threadsafe(self._begin_shutdown)
        server.stop(timeout)
        self._shutdown_pools()

    def wait_for_idle(self, timeout: float = 30.0) -> None:
        """Block until every trigger queue is empty and no invocation is in flight.

        Raises TimeoutError naming what is still busy. Messages waiting out a retry's visibility timeout
        count as work, so a failing message keeps the host busy until it reaches the poison queue.
        """
        deadline = time.monotonic() + timeout
        while True:
            with self._lock:
                before = (self._in_flight, self._started)
            waiting = self._waiting_messages() if before[0] == 0 else {}
            with self._lock:
                after = (self._in_flight, self._started)
            # An unchanged `started` counter means no invocation came and went while queues were read.
            if before[0] == 0 and before == after and not waiting:
                return
            if time.monotonic() > deadline:
                raise TimeoutError(
                    f"functions host not idle after {timeout}s: {after[0]} invocation(s) in flight, "
                    f"messages waiting: {waiting or 'none'}"
                )
            time.sleep(0.02)

    def run_timer(self, function_name: str, *, past_due: bool = False, timeout: float = 30.0) -> Invocation:
        """Fire a timer-triggered function now (as the admin API does) and return its invocation."""
        job = self._timers.get(function_name)
        if job is None:
            raise KeyError(f"no timer-triggered function {function_name!r}; timers: {sorted(self._timers)}")
        future = asyncio.run_coroutine_threadsafe(self._fire_timer(job, past_due=past_due), self._loop())
        return future.result(timeout)

    def __enter__(self) -> LocalFunctionsHost:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # -- indexing ---------------------------------------------------------------------------------------------

    def _index(self, app: FunctionRegister) -> list[_HostedFunction]:
        # get_functions() remembers names between calls and raises on the second call (azure.md §1.2);
        # resetting that memo lets several hosts (say, one per test module) index the same app.
        if getattr(app, "functions_bindings", None):
            app.functions_bindings = None
        return [self._hosted(function) for function in app.get_functions()]

    def _hosted(self, function: Function) -> _HostedFunction:
        name = str(function.get_function_name())
        trigger = function.get_trigger()
        if not isinstance(trigger, HttpTrigger | QueueTrigger | TimerTrigger):
            kind = trigger.type if trigger else "no trigger"
            raise HostConfigError(f"function {name}: {kind} is not supported (the local host runs {SUPPORTED})")
        user_function = function.get_user_function()
        outputs = [self._output(name, b) for b in function.get_bindings() if b is not trigger]
        parameters = inspect.signature(user_function).parameters
        _check_signature(name, parameters, [trigger.name, *(o.name for o in outputs)])
        hosted = _HostedFunction(
            name=name,
            callable=user_function,
            is_async=inspect.iscoroutinefunction(user_function),
            trigger_type=str(trigger.type),
            trigger_arg=trigger.name,
            outputs=outputs,
            takes_context="context" in parameters and "context" not in {o.name for o in outputs},
        )
        if isinstance(trigger, HttpTrigger):
            hosted.route = RouteTemplate(str(trigger.route))
            hosted.auth_level = _enum_value(trigger.auth_level or "function").lower()
            methods = trigger.methods
            hosted.methods = frozenset(_enum_value(m).upper() for m in methods) if methods else None
        elif isinstance(trigger, QueueTrigger):
            queue_name = self._resolve(trigger.queue_name)
            self._listeners.append(_QueueListener(hosted, queue_name, self._connection(trigger.connection)))
        elif isinstance(trigger, TimerTrigger):
            schedule = _Schedule(self._resolve(trigger.schedule))
            self._timers[name] = _TimerJob(hosted, schedule, bool(trigger.run_on_startup))
        return hosted

    def _output(self, function_name: str, binding: Binding) -> _Output:
        if not isinstance(binding, HttpOutput | QueueOutput | TableOutput):
            raise HostConfigError(
                f"function {function_name}: binding {binding.name!r} ({binding.type}) is not supported; "
                f"the local host runs {SUPPORTED}"
            )
        if isinstance(binding, HttpOutput):
            return _Output(name=binding.name, type="http")
        if isinstance(binding, QueueOutput):
            return _Output(
                name=binding.name,
                type="queue",
                target=self._resolve(binding.queue_name),
                connection_string=self._connection(binding.connection),
            )
        return _Output(
            name=binding.name,
            type="table",
            target=self._resolve(binding.table_name),
            connection_string=self._connection(binding.connection),
            partition_key=binding.partition_key,
            row_key=binding.row_key,
        )

    def _connection(self, setting: str | None) -> str:
        """The connection string held by app setting `setting` (the host also tries AzureWebJobs<name>)."""
        setting = setting or DEFAULT_CONNECTION
        for name in (setting, f"AzureWebJobs{setting}"):
            if self._environ.get(name):
                return self._environ[name]
        raise HostConfigError(
            f"app setting {setting!r} (a storage connection string) is not set; for Azurite use "
            f"sandbox.azurite.Azurite().connection_string"
        )

    def _resolve(self, value: str) -> str:
        """Replace %SETTING% with the app setting's value, as the host does in binding properties."""

        def setting(match: re.Match[str]) -> str:
            if match.group(1) not in self._environ:
                raise HostConfigError(f"app setting {match.group(1)!r} referenced as %{match.group(1)}% is not set")
            return self._environ[match.group(1)]

        return re.sub(r"%([^%]+)%", setting, str(value))

    # -- lifecycle on the server's event loop -----------------------------------------------------------------

    @contextlib.asynccontextmanager
    async def _lifespan(self, _app: Starlette) -> AsyncIterator[None]:
        # Loop-bound primitives are made here, on the server's loop, so that a restarted host gets fresh ones.
        self._stop_event = asyncio.Event()
        for listener in self._listeners:
            listener.wake = asyncio.Event()
        for job in self._timers.values():
            job.lock = asyncio.Lock()
        self._tasks = [_spawn(self._listen(listener), f"queue {listener.queue_name}") for listener in self._listeners]
        self._tasks += [_spawn(self._run_schedule(job), f"timer {name}") for name, job in self._timers.items()]
        try:
            yield
        finally:
            self._begin_shutdown()
            await asyncio.gather(*self._tasks, return_exceptions=True)
            self._tasks = []

    def _begin_shutdown(self) -> None:
        self._stopping = True
        if self._stop_event is not None:
            self._stop_event.set()
        self._wake_listeners()

    def _wake_listeners(self) -> None:
        for listener in self._listeners:
            listener.wake.set()

    def _loop(self) -> asyncio.AbstractEventLoop:
        if self._server is None or self._server.loop is None:
            raise RuntimeError("the host is not started; call start() first")
        return self._server.loop

    def _shutdown_pools(self) -> None:
        for pool in (self._workers, self._io_pool):
            if pool is not None:
                pool.shutdown(wait=False, cancel_futures=True)
        self._workers = self._io_pool = None

    async def _io(self, call: Callable[..., T], *args: Any) -> T:
        """Run a blocking storage SDK call off the event loop."""
        return await asyncio.get_running_loop().run_in_executor(self._io_pool, functools.partial(call, *args))

    @contextlib.contextmanager
    def _in_flight_scope(self) -> Iterator[None]:
        with self._lock:
            self._in_flight += 1
            self._started += 1
        try:
            yield
        finally:
            with self._lock:
                self._in_flight -= 1
            # Whatever just ran may have enqueued work for a trigger queue: look now rather than after
            # the current back-off interval.
            self._wake_listeners()

    # -- invoking functions -----------------------------------------------------------------------------------

    async def _invoke(
        self, function: _HostedFunction, make_input: Callable[[], Any], *, dequeue_count: int | None = None
    ) -> tuple[Invocation, Any]:
        """Call the function and write its output bindings; log and record the invocation."""
        invocation_id = str(uuid.uuid4())
        started_at = dt.datetime.now(dt.UTC)
        start = time.perf_counter()
        result: Any = None
        error: Exception | None = None
        try:
            result = await self._execute(function, make_input(), invocation_id)
        except Exception as exc:
            error = exc
        invocation = Invocation(
            function_name=function.name,
            trigger=function.trigger_type.removesuffix("Trigger"),
            outcome="ok" if error is None else "error",
            duration_ms=(time.perf_counter() - start) * 1000,
            started_at=started_at,
            invocation_id=invocation_id,
            dequeue_count=dequeue_count,
            error=None if error is None else f"{type(error).__name__}: {error}",
        )
        self._record(invocation, error)
        return invocation, result

    def _record(self, invocation: Invocation, error: Exception | None) -> None:
        with self._lock:
            self._invocations.append(invocation)
        retry = "" if invocation.dequeue_count is None else f", DequeueCount={invocation.dequeue_count}"
        # One line per invocation, worded like the host's; a failure carries its traceback.
        logger.log(
            logging.INFO if error is None else logging.ERROR,
            "Executed 'Functions.%s' (%s, Trigger=%s, Id=%s, Duration=%dms%s)",
            invocation.function_name,
            "Succeeded" if error is None else "Failed",
            invocation.trigger,
            invocation.invocation_id,
            invocation.duration_ms,
            retry,
            exc_info=error,
        )

    async def _execute(self, function: _HostedFunction, trigger_input: Any, invocation_id: str) -> Any:
        outs = {o.name: _Out() for o in function.outputs if o.name != "$return"}
        kwargs: dict[str, Any] = {function.trigger_arg: trigger_input, **outs}
        if function.takes_context:
            kwargs["context"] = _Context(invocation_id, function.name)
        returned = await self._call(function, kwargs)
        for output in function.outputs:
            value = returned if output.name == "$return" else outs[output.name].get()
            if output.type == "http":
                returned = _http_response(function.name, value)
            elif value is not None:
                await self._io(self._send_to_queue if output.type == "queue" else self._write_to_table, output, value)
        return returned

    async def _call(self, function: _HostedFunction, kwargs: dict[str, Any]) -> Any:
        if function.is_async:
            return await function.callable(**kwargs)
        # The worker runs sync functions in its thread pool; running them on the loop would let one
        # blocking call (say, an HTTP request back to this host) freeze every trigger.
        call = functools.partial(contextvars.copy_context().run, function.callable, **kwargs)
        return await asyncio.get_running_loop().run_in_executor(self._workers, call)

    # -- HTTP -------------------------------------------------------------------------------------------------

    async def _handle_http(self, request: Request) -> Response:
        found = self._find_route(request.url.path, request.method)
        if isinstance(found, int):
            return Response(status_code=found)
        function, route_values = found
        if not self._authorized(function, request):
            logger.info("401 for %s %s: missing or wrong function key", request.method, request.url.path)
            return Response(status_code=401)
        http_request = func.HttpRequest(
            method=request.method,
            url=str(request.url),
            headers={k: ", ".join(request.headers.getlist(k)) for k in request.headers},
            params=dict(request.query_params),
            route_params=route_values,
            body=await request.body(),
        )
        with self._in_flight_scope():
            invocation, response = await self._invoke(function, lambda: http_request)
        if not invocation.ok:
            return Response(status_code=500)
        return _to_starlette(response)

    def _find_route(self, path: str, method: str) -> tuple[_HostedFunction, dict[str, str]] | int:
        prefix = f"/{self.settings.route_prefix}" if self.settings.route_prefix else ""
        if prefix and path != prefix and not path.startswith(prefix + "/"):
            return 404
        relative = path[len(prefix) :]
        path_matched = False
        for function in self._routes:
            assert function.route is not None
            values = function.route.match(relative)
            if values is None:
                continue
            if function.methods is None or method.upper() in function.methods:
                return function, values
            path_matched = True
        return 405 if path_matched else 404

    def _authorized(self, function: _HostedFunction, request: Request) -> bool:
        if function.auth_level == "anonymous":
            return True
        # The master key opens everything; function and host keys open function-level routes only.
        names = ["_master"] if function.auth_level == "admin" else [function.name, "default", "_master"]
        keys = [self._keys[n] for n in names if self._keys.get(n)]
        presented = [p for p in (request.query_params.get("code"), request.headers.get("x-functions-key")) if p]
        return any(hmac.compare_digest(p.encode(), k.encode()) for p in presented for k in keys)

    # -- queue triggers ---------------------------------------------------------------------------------------

    async def _listen(self, listener: _QueueListener) -> None:
        """Poll one trigger queue: at once while messages flow, backing off to maxPollingInterval when idle."""
        active: set[asyncio.Task[None]] = set()
        interval = MIN_POLL_S
        failing = False
        while not self._stopping:
            free = self.settings.batch_size - len(active)
            if free <= 0:
                await asyncio.wait(set(active), return_when=asyncio.FIRST_COMPLETED)
                continue
            listener.wake.clear()
            try:
                messages = await self._io(self._receive, listener, free)
                failing = False
            except Exception:
                if not failing:  # one log line per outage, not one per poll
                    logger.exception("polling queue %s failed; retrying", listener.queue_name)
                failing, messages = True, []
            for message in messages:
                task = asyncio.create_task(self._process(listener, message))
                active.add(task)
                task.add_done_callback(active.discard)
            if messages:
                interval = MIN_POLL_S
                continue
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(listener.wake.wait(), interval)
            interval = MIN_POLL_S if listener.wake.is_set() else min(interval * 2, self.settings.max_polling_interval_s)
        if active:
            await asyncio.gather(*active, return_exceptions=True)

    async def _process(self, listener: _QueueListener, message: StorageMessage) -> None:
        with self._in_flight_scope():
            invocation, _ = await self._invoke(
                listener.function,
                lambda: self._queue_message(message),
                dequeue_count=message.dequeue_count,
            )
            try:
                if invocation.ok:
                    await self._io(self._queue_client(listener, encoded=False).delete_message, message)
                elif (message.dequeue_count or 0) >= self.settings.max_dequeue_count:
                    await self._io(self._move_to_poison, listener, message)
                else:
                    await self._io(self._release, listener, message)
            except Exception:
                logger.exception("settling message %s from %s failed", message.id, listener.queue_name)

    def _queue_message(self, message: StorageMessage) -> QueueMessage:
        content = str(message.content or "")
        if self.settings.message_encoding == "base64":
            try:
                body = base64.b64decode(content, validate=True)
            except binascii.Error as error:
                # The host fails such a message on every attempt too, so it ends up in the poison queue.
                raise ValueError(f"queue message {message.id} is not valid base64 ({error})") from error
        else:
            body = content.encode("utf-8")
        return QueueMessage(
            id=message.id,
            body=body,
            dequeue_count=message.dequeue_count,
            insertion_time=message.inserted_on,
            expiration_time=message.expires_on,
            time_next_visible=message.next_visible_on,
            pop_receipt=message.pop_receipt,
        )

    def _receive(self, listener: _QueueListener, count: int) -> list[StorageMessage]:
        client = self._queue_client(listener, encoded=False)
        pages = client.receive_messages(
            messages_per_page=count, max_messages=count, visibility_timeout=PROCESSING_VISIBILITY_S
        ).by_page()
        return list(next(pages, []))  # one request; iterating further would ask the queue again

    def _release(self, listener: _QueueListener, message: StorageMessage) -> None:
        """Make a failed message visible again after host.json's visibilityTimeout."""
        client = self._queue_client(listener, encoded=False)
        client.update_message(message, visibility_timeout=round(self.settings.visibility_timeout_s))

    def _move_to_poison(self, listener: _QueueListener, message: StorageMessage) -> None:
        poison = f"{listener.queue_name}-poison"
        self._ensure_queue(listener.connection_string, poison)
        # The original text goes across as is (still base64 if it was), as the host does.
        self._raw_client(listener.connection_string, poison).send_message(message.content)
        self._queue_client(listener, encoded=False).delete_message(message)
        logger.warning(
            "Message %s from %s moved to %s after %s attempts",
            message.id,
            listener.queue_name,
            poison,
            message.dequeue_count,
        )

    # -- timers -----------------------------------------------------------------------------------------------

    async def _run_schedule(self, job: _TimerJob) -> None:
        if job.run_on_startup:
            await self._fire_timer(job, past_due=False)
        while not self._stopping:
            due = job.schedule.next_after(dt.datetime.now(dt.UTC))
            if await self._stopped_within((due - dt.datetime.now(dt.UTC)).total_seconds()):
                return
            late = (dt.datetime.now(dt.UTC) - due).total_seconds()
            await self._fire_timer(job, past_due=late > PAST_DUE_AFTER_S, due=due)

    async def _stopped_within(self, seconds: float) -> bool:
        assert self._stop_event is not None
        try:
            await asyncio.wait_for(self._stop_event.wait(), max(0.0, seconds))
        except TimeoutError:
            return False
        return True

    async def _fire_timer(self, job: _TimerJob, *, past_due: bool, due: dt.datetime | None = None) -> Invocation:
        # Like the host's singleton lock: one run of a timer function at a time.
        async with job.lock:
            now = dt.datetime.now(dt.UTC)
            status = {
                "Last": (job.last_due or now).isoformat(),
                "Next": job.schedule.next_after(due or now).isoformat(),
                "LastUpdated": now.isoformat(),
            }
            job.last_due = due or now
            request = TimerRequest(past_due=past_due, schedule_status=status, schedule={"AdjustForDST": True})
            with self._in_flight_scope():
                invocation, _ = await self._invoke(job.function, lambda: request)
            return invocation

    # -- storage ----------------------------------------------------------------------------------------------

    def _send_to_queue(self, output: _Output, value: Any) -> None:
        self._ensure_queue(output.connection_string, output.target)
        encoded = self.settings.message_encoding == "base64"
        client = self._client(output.connection_string, output.target, encoded=encoded)
        for text in _queue_texts(value):
            client.send_message(text)

    def _write_to_table(self, output: _Output, value: Any) -> None:
        key = (output.connection_string, output.target)
        with self._lock:
            client = self._table_clients.get(key)
            if client is None:
                client = TableClient.from_connection_string(
                    output.connection_string,
                    table_name=output.target,
                    retry_total=2,
                    retry_backoff_factor=0.5,
                    http_logging_level=logging.DEBUG,
                )
                self._table_clients[key] = client
        if ("table", *key) not in self._created:
            with contextlib.suppress(ResourceExistsError):
                client.create_table()  # the binding creates its table, like the host
            self._created.add(("table", *key))
        for entity in _table_entities(value, output):
            client.upsert_entity(entity, mode=UpdateMode.REPLACE)

    # Storage clients differ from the SDK defaults in two ways. They give up within seconds, as an emulator
    # that does not answer at once is down (the defaults retry for about a minute, stalling the pollers).
    # And they log requests at DEBUG: at the default INFO, polling would drown the invocation lines.

    def _ensure_queue(self, connection_string: str, queue_name: str) -> None:
        if ("queue", connection_string, queue_name) in self._created:
            return
        with contextlib.suppress(ResourceExistsError):
            self._raw_client(connection_string, queue_name).create_queue()
        self._created.add(("queue", connection_string, queue_name))

    def _queue_client(self, listener: _QueueListener, *, encoded: bool) -> QueueClient:
        return self._client(listener.connection_string, listener.queue_name, encoded=encoded)

    def _raw_client(self, connection_string: str, queue_name: str) -> QueueClient:
        return self._client(connection_string, queue_name, encoded=False)

    def _client(self, connection_string: str, queue_name: str, *, encoded: bool) -> QueueClient:
        key = (connection_string, queue_name, encoded)
        with self._lock:
            client = self._queue_clients.get(key)
            if client is None:
                policy = TextBase64EncodePolicy() if encoded else None
                client = QueueClient.from_connection_string(
                    connection_string,
                    queue_name,
                    message_encode_policy=policy,
                    retry_policy=LinearRetry(backoff=1, retry_total=2, random_jitter_range=0),
                    http_logging_level=logging.DEBUG,
                )
                self._queue_clients[key] = client
            return client

    def _waiting_messages(self) -> dict[str, int]:
        """Trigger queues that hold messages, visible or not (Azure's count includes invisible ones)."""
        counts = {
            listener.queue_name: self._queue_client(listener, encoded=False)
            .get_queue_properties()
            .approximate_message_count
            or 0
            for listener in self._listeners
        }
        return {name: count for name, count in counts.items() if count}


# -- helpers ------------------------------------------------------------------------------------------------


def _spawn(coroutine: Coroutine[Any, Any, None], what: str) -> asyncio.Task[None]:
    """A background task whose crash is logged, not left for garbage collection to mention."""
    task = asyncio.create_task(coroutine, name=what)

    def report(done: asyncio.Task[None]) -> None:
        if not done.cancelled() and done.exception() is not None:
            logger.error("the %s loop stopped", what, exc_info=done.exception())

    task.add_done_callback(report)
    return task


def _enum_value(value: object) -> str:
    return str(getattr(value, "value", value))


def _check_signature(function_name: str, parameters: Mapping[str, inspect.Parameter], bound: list[str]) -> None:
    """Fail at start-up, as the worker's indexing does, when bindings and parameters disagree."""
    names = [n for n in bound if n != "$return"]
    missing = [n for n in names if n not in parameters]
    unbound = [
        p.name
        for p in parameters.values()
        if p.name not in names
        and p.name != "context"
        and p.default is inspect.Parameter.empty
        and p.kind not in (inspect.Parameter.VAR_POSITIONAL, inspect.Parameter.VAR_KEYWORD)
    ]
    if missing or unbound:
        raise HostConfigError(
            f"function {function_name}: bindings without a parameter {missing}, parameters without a binding {unbound}"
        )


def _http_response(function_name: str, value: Any) -> func.HttpResponse:
    """The worker accepts an HttpResponse or a str for an HTTP output; anything else fails the call."""
    if isinstance(value, func.HttpResponse):
        return value
    if isinstance(value, str):
        return func.HttpResponse(value)
    raise TypeError(
        f"function {function_name} returned {type(value).__name__} for its HTTP output; "
        "return a func.HttpResponse or a str"
    )


def _to_starlette(response: func.HttpResponse) -> Response:
    converted = Response(content=response.get_body() or b"", status_code=response.status_code)
    headers = [(k.lower(), v) for k, v in response.headers.items() if k.lower() != "content-length"]
    if not any(k == "content-type" for k, _ in headers):
        mimetype = response.mimetype
        headers.append(
            ("content-type", f"{mimetype}; charset={response.charset}" if mimetype.startswith("text/") else mimetype)
        )
    # Starlette computed content-length from the body; the rest (with repeated names, such as
    # Set-Cookie) comes from the function's response.
    converted.raw_headers = [h for h in converted.raw_headers if h[0] == b"content-length"] + [
        (k.encode("latin-1"), v.encode("latin-1")) for k, v in headers
    ]
    return converted


def _queue_texts(value: Any) -> list[str]:
    """Messages for a queue output: str, bytes or QueueMessage, or a list of them (several messages)."""
    items = value if isinstance(value, list | tuple) else [value]
    texts: list[str] = []
    for item in items:
        if isinstance(item, str):
            texts.append(item)
        elif isinstance(item, bytes):
            texts.append(item.decode("utf-8"))
        elif isinstance(item, func.QueueMessage):
            texts.append(item.get_body().decode("utf-8"))
        else:
            raise TypeError(
                f"a queue output takes str, bytes, func.QueueMessage or a list of them, not {type(item).__name__}"
            )
    return texts


def _table_entities(value: Any, output: _Output) -> list[dict[str, Any]]:
    """Entities for a table output: a JSON string (or dict) of one entity or a list of entities."""
    data = json.loads(value) if isinstance(value, str | bytes) else value
    entities = data if isinstance(data, list) else [data]
    for entity in entities:
        if not isinstance(entity, dict):
            raise TypeError(f"a table output takes JSON objects, not {type(entity).__name__}")
        # Fixed keys on the binding fill in for missing ones; binding expressions ({...}) are not evaluated.
        for key, fixed in (("PartitionKey", output.partition_key), ("RowKey", output.row_key)):
            if key not in entity and fixed and "{" not in fixed:
                entity[key] = fixed
            if key not in entity:
                raise ValueError(f"table output {output.target!r}: entity has no {key}")
    return entities

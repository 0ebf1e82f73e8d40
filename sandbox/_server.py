"""Run an ASGI app (a sandbox server or the local Functions host) on a free loopback port,
in a thread of its own, so that each stand-in behaves like a separate process on the network."""

from __future__ import annotations

import asyncio
import socket
import threading
import time
from collections.abc import Awaitable, Callable
from typing import Any, Protocol, Self, TypeVar

import uvicorn
from starlette.requests import Request
from starlette.responses import Response


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class BackgroundServer:
    """An ASGI app served by uvicorn on 127.0.0.1 from a daemon thread.

    `start()` returns once the port accepts connections; `stop()` shuts the server down
    gracefully. The server's own event loop is `self.loop` (use it to schedule work there).
    """

    def __init__(self, app: Any, port: int | None = None, name: str = "server") -> None:
        self.app = app
        self.port = port or free_port()
        self.name = name
        self.loop: asyncio.AbstractEventLoop | None = None
        self._server: uvicorn.Server | None = None
        self._thread: threading.Thread | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def _config(self, **extra: Any) -> uvicorn.Config:
        """How uvicorn serves the app; a subclass passes `extra` (e.g. ssl arguments)."""
        return uvicorn.Config(
            self.app,
            host="127.0.0.1",
            port=self.port,
            log_level="warning",
            access_log=False,
            lifespan="on",
            # A client whose event loop has gone (a finished test's) never closes its keep-alive
            # connection; without a bound, shutdown waits for it until stop() gives up.
            timeout_graceful_shutdown=1,
            **extra,
        )

    def start(self, timeout: float = 15.0) -> Self:
        self._server = uvicorn.Server(self._config())
        self._thread = threading.Thread(target=self._run, name=f"{self.name}:{self.port}", daemon=True)
        self._thread.start()
        deadline = time.monotonic() + timeout
        while not self._server.started:
            if not self._thread.is_alive():
                raise RuntimeError(f"{self.name} failed to start on port {self.port}")
            if time.monotonic() > deadline:
                raise TimeoutError(f"{self.name} did not start on port {self.port} within {timeout}s")
            time.sleep(0.01)
        return self

    def _run(self) -> None:
        assert self._server is not None
        self.loop = asyncio.new_event_loop()
        asyncio.set_event_loop(self.loop)
        self.loop.run_until_complete(self._server.serve())

    def stop(self, timeout: float = 10.0) -> None:
        if self._server is None or self._thread is None:
            return
        self._server.should_exit = True
        self._thread.join(timeout)
        self._server = None
        self._thread = None

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


class StartStop:
    """`with sandbox:` calls `start()` and, on the way out, `stop()`."""

    def start(self) -> Self:
        raise NotImplementedError

    def stop(self) -> None:
        raise NotImplementedError

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


class ServedSandbox(StartStop):
    """A sandbox served by one BackgroundServer in `self._server` (None while stopped).

    `url` is the server's address, and raises `RuntimeError(_not_started)` while stopped.
    """

    _server: BackgroundServer | None
    _not_started = "the sandbox is not started"

    @property
    def url(self) -> str:
        if self._server is None:
            raise RuntimeError(self._not_started)
        return self._server.url

    def _serve(self, app: Any, name: str, port: int | None = None) -> None:
        self._server = BackgroundServer(app, port=port, name=name).start()

    def _stop_server(self) -> None:
        if self._server is not None:
            self._server.stop()
            self._server = None


class VendorError(Protocol):
    """An exception that knows the response the vendor's API sends for it."""

    def response(self) -> Response: ...


E = TypeVar("E", bound=VendorError)


def vendor_error_handler(error_type: type[E]) -> Callable[[Request, Exception], Awaitable[Response]]:
    """A Starlette exception handler that answers `error_type` with its own `response()`."""

    async def handler(request: Request, exc: Exception) -> Response:
        assert isinstance(exc, error_type)
        return exc.response()

    return handler

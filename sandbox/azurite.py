"""Azurite (the Azure Storage emulator) for local runs and tests: Table and Queue only, in memory.

The repo pins `azurite@3.35.0` in package.json (the last release that runs on Node 20; see
the team's Azure research notes, azure.md §5.1), so `make install` puts `azurite-table` and `azurite-queue` in
`node_modules/.bin`. Each service runs as its own process on a free loopback port, so a developer's own
Azurite on 10000-10002 is never touched, and the connection string is built for those ports.

    with Azurite() as azurite:
        tables = TableServiceClient.from_connection_string(azurite.connection_string)
"""

from __future__ import annotations

import atexit
import contextlib
import os
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import IO, NoReturn

from sandbox._server import StartStop, free_port

REPO_ROOT = Path(__file__).resolve().parent.parent
BIN_DIR = REPO_ROOT / "node_modules" / ".bin"

# The emulator's well-known development account (azure.md §5.3); not a secret.
ACCOUNT_NAME = "devstoreaccount1"
ACCOUNT_KEY = "Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/KBHBeksoGMGw=="

COMMON_FLAGS = ("--inMemoryPersistence", "--silent", "--disableTelemetry", "--skipApiVersionCheck", "--loose")
HOST = "127.0.0.1"
# free_port() releases the port before Azurite binds it, so another process can take it in between;
# a start that fails with EADDRINUSE is retried on fresh ports.
PORT_ATTEMPTS = 3


class AzuriteError(RuntimeError):
    """Azurite could not be started; `stderr` holds what the failing process printed, if anything."""

    def __init__(self, message: str, stderr: str = "") -> None:
        super().__init__(message)
        self.stderr = stderr


@dataclass
class _Service:
    """One Azurite service process (`azurite-table` or `azurite-queue`)."""

    name: str  # "table" or "queue"
    port: int
    process: subprocess.Popen[bytes]
    stderr: IO[bytes]

    def stderr_text(self) -> str:
        self.stderr.flush()
        self.stderr.seek(0)
        return self.stderr.read().decode("utf-8", errors="replace").strip()


class Azurite(StartStop):
    """Runs `azurite-table` and `azurite-queue` in memory on free loopback ports.

    `start()` returns once both ports accept connections; `stop()` terminates both process groups.
    Use it as a context manager, or call `start()`/`stop()` yourself.
    """

    def __init__(self, *, startup_timeout: float = 30.0, stop_grace: float = 5.0) -> None:
        self.startup_timeout = startup_timeout
        self.stop_grace = stop_grace
        self._services: dict[str, _Service] = {}
        self._workdir: str | None = None

    # -- public API -------------------------------------------------------------------------------------

    @property
    def table_port(self) -> int:
        return self._service("table").port

    @property
    def queue_port(self) -> int:
        return self._service("queue").port

    @property
    def table_endpoint(self) -> str:
        return f"http://{HOST}:{self.table_port}/{ACCOUNT_NAME}"

    @property
    def queue_endpoint(self) -> str:
        return f"http://{HOST}:{self.queue_port}/{ACCOUNT_NAME}"

    @property
    def connection_string(self) -> str:
        """A connection string for both services; works with TableServiceClient and QueueServiceClient."""
        return (
            "DefaultEndpointsProtocol=http;"
            f"AccountName={ACCOUNT_NAME};AccountKey={ACCOUNT_KEY};"
            f"QueueEndpoint={self.queue_endpoint};TableEndpoint={self.table_endpoint};"
        )

    @property
    def running(self) -> bool:
        return bool(self._services) and all(s.process.poll() is None for s in self._services.values())

    def start(self) -> Azurite:
        if self._services:
            raise AzuriteError("Azurite is already started")
        _check_binaries()
        # In-memory mode persists nothing, but Azurite still treats its cwd as its workspace (and it
        # refuses --location together with --inMemoryPersistence); a throwaway cwd keeps the repo clean.
        self._workdir = tempfile.mkdtemp(prefix="azurite-")
        atexit.register(self.stop)
        try:
            # Both are spawned before waiting on either: each takes 0.6-0.7 s to listen.
            spawned = [self._spawn(name, free_port()) for name in ("table", "queue")]
            for service in spawned:
                self._services[service.name] = service
            for service in spawned:
                self._services[service.name] = self._until_listening(service)
        except BaseException:
            self.stop()
            raise
        return self

    def stop(self) -> None:
        services, self._services = list(self._services.values()), {}
        for service in services:
            _terminate(service.process, self.stop_grace)
            service.stderr.close()
        if self._workdir is not None:
            shutil.rmtree(self._workdir, ignore_errors=True)
            self._workdir = None
        atexit.unregister(self.stop)

    # -- internals --------------------------------------------------------------------------------------

    def _service(self, name: str) -> _Service:
        try:
            return self._services[name]
        except KeyError:
            raise AzuriteError("Azurite is not started; call start() first") from None

    def _until_listening(self, service: _Service) -> _Service:
        """Wait for `service`; respawn it on a fresh port if it lost its port to another process."""
        for attempt in range(1, PORT_ATTEMPTS + 1):
            try:
                _wait_until_listening(service, self.startup_timeout)
                return service
            except AzuriteError as error:
                _terminate(service.process, self.stop_grace)
                service.stderr.close()
                if "EADDRINUSE" not in error.stderr or attempt == PORT_ATTEMPTS:
                    raise
                service = self._spawn(service.name, free_port())
                self._services[service.name] = service
        raise AssertionError("unreachable")

    def _spawn(self, name: str, port: int) -> _Service:
        assert self._workdir is not None
        command = [
            str(BIN_DIR / f"azurite-{name}"),
            *COMMON_FLAGS,
            f"--{name}Host",
            HOST,
            f"--{name}Port",
            str(port),
        ]
        # stderr goes to a file rather than a pipe: nobody reads a pipe while Azurite runs, and a full
        # pipe would eventually block the emulator.
        stderr = tempfile.TemporaryFile(prefix=f"azurite-{name}-stderr-")  # noqa: SIM115 - lives as long as the process
        try:
            process = subprocess.Popen(  # noqa: S603 - fixed argv, no shell
                command,
                stdin=subprocess.DEVNULL,
                stdout=subprocess.DEVNULL,
                stderr=stderr,
                cwd=self._workdir,
                # A session of its own means its own process group: stop() signals the whole group, so a
                # node child process cannot outlive the test run.
                start_new_session=True,
            )
        except FileNotFoundError as error:
            stderr.close()
            raise AzuriteError(f"cannot run azurite-{name} ({error}); is Node.js installed?") from error
        return _Service(name=name, port=port, process=process, stderr=stderr)


def _check_binaries() -> None:
    missing = [f"azurite-{name}" for name in ("table", "queue") if not (BIN_DIR / f"azurite-{name}").exists()]
    if missing:
        raise AzuriteError(f"{', '.join(missing)} not found in {BIN_DIR}; run `make install` first")


def _wait_until_listening(service: _Service, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while True:
        if service.process.poll() is not None:
            _fail(service, f"exited with code {service.process.returncode} before listening")
        if _accepts_connections(service.port):
            return
        if time.monotonic() > deadline:
            _fail(service, f"did not listen within {timeout:.0f}s")
        time.sleep(0.05)


def _fail(service: _Service, what: str) -> NoReturn:
    stderr = service.stderr_text()
    raise AzuriteError(
        f"azurite-{service.name} {what} on port {service.port}:\n{stderr or '(no stderr output)'}", stderr
    )


def _accepts_connections(port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.settimeout(0.5)
        return sock.connect_ex((HOST, port)) == 0


def _terminate(process: subprocess.Popen[bytes], grace: float) -> None:
    if process.poll() is not None:
        return
    _signal_group(process, signal.SIGTERM)
    try:
        process.wait(grace)
    except subprocess.TimeoutExpired:
        _signal_group(process, signal.SIGKILL)
        process.wait(grace)


def _signal_group(process: subprocess.Popen[bytes], sig: signal.Signals) -> None:
    # The group id equals the pid because the process was started in a new session.
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(process.pid, sig)

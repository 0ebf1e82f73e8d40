"""One local deployment for the end-to-end tests: the function app under the local Functions
host, with Azurite and the Entra/Graph and ConnectWise sandboxes."""

from __future__ import annotations

import os
from collections.abc import Iterator

import pytest

from sandbox import scenario as world
from sandbox.stack import LocalStack


@pytest.fixture(scope="session")
def stack() -> Iterator[LocalStack]:
    saved = dict(os.environ)
    # Failed messages come back after 1 s instead of 10 s, so retry paths are quick to observe.
    os.environ["AzureFunctionsJobHost__extensions__queues__visibilityTimeout"] = "00:00:01"  # noqa: SIM112
    # Deferred retries come back after 1 s, 2 s; after two, the host's retries and the poison queue take over.
    os.environ["TIERONE_RETRY_BASE_SECONDS"] = "1"
    os.environ["TIERONE_RETRY_MAX_DEFERRALS"] = "2"
    try:
        with LocalStack() as running:
            yield running
    finally:
        os.environ.clear()
        os.environ.update(saved)


@pytest.fixture(scope="session")
def scenario(stack: LocalStack) -> world.Scenario:
    return world.load(stack)

"""The worker's PSA clients are shared across tickets and renewed now and then, never closed under a run."""

from __future__ import annotations

import asyncio
from typing import Any, cast

import pytest

from psa_integrations.models import PsaKind
from psa_integrations.registry import PsaClients
from tierone.settings import Settings

SETTINGS = Settings.model_validate(
    {
        "CONNECTWISE_API_URL": "https://api-na.myconnectwise.net/v4_6_release/apis/3.0",
        "CONNECTWISE_COMPANY_ID": "msp",
        "CONNECTWISE_PUBLIC_KEY": "public",
        "CONNECTWISE_PRIVATE_KEY": "private",
        "CONNECTWISE_CLIENT_ID": "5c3e2a7d-8f41-4b6e-9d2a-1f0b7c6e3a94",
        "HALOPSA_URL": "https://msp.halopsa.example",
        "HALOPSA_CLIENT_ID": "client",
        "HALOPSA_CLIENT_SECRET": "secret",
    }
)


async def test_tickets_on_one_worker_share_one_client_per_psa():
    clients = PsaClients(SETTINGS)
    first = clients.get(PsaKind.CONNECTWISE)
    assert clients.get(PsaKind.CONNECTWISE) is first
    assert clients.get(PsaKind.HALOPSA) is not first


def closed(client: object) -> bool:
    """Whether the client's HTTP connections are closed (every PSA client holds one httpx client)."""
    return bool(cast(Any, client)._http.is_closed)


async def test_an_old_client_is_replaced_and_closed_only_after_the_runs_using_it_had_time_to_finish():
    clients = PsaClients(SETTINGS, max_age_s=0.0, grace_s=0.2)
    old = clients.get(PsaKind.CONNECTWISE)
    new = clients.get(PsaKind.CONNECTWISE)
    assert new is not old
    assert not closed(old)  # a run may still be using it
    await asyncio.sleep(0.4)
    assert closed(old)
    assert not closed(new)


def test_each_event_loop_gets_its_own_client():
    clients = PsaClients(SETTINGS)

    async def get() -> object:
        return clients.get(PsaKind.CONNECTWISE)

    assert asyncio.run(get()) is not asyncio.run(get())


def test_outside_an_event_loop_there_is_no_client():
    with pytest.raises(RuntimeError):
        PsaClients(SETTINGS).get(PsaKind.CONNECTWISE)

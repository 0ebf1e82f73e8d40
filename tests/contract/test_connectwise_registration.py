"""`tierone psa register connectwise` against the ConnectWise sandbox: idempotent registration."""

from __future__ import annotations

from collections.abc import Iterator

import httpx
import pytest

from psa_integrations.connectwise.registration import ConnectWiseRegistrar, callback_url
from sandbox.connectwise import ConnectWiseSandbox
from tierone.settings import Settings


@pytest.fixture(scope="module")
def cw() -> Iterator[ConnectWiseSandbox]:
    with ConnectWiseSandbox() as sandbox:
        yield sandbox


@pytest.fixture
def settings(cw: ConnectWiseSandbox) -> Settings:
    cw.reset()
    return Settings.model_validate(
        {
            "CONNECTWISE_API_URL": cw.api_url,
            "CONNECTWISE_COMPANY_ID": "tierone-msp",
            "CONNECTWISE_PUBLIC_KEY": "sbxPublicKey4tier1",
            "CONNECTWISE_PRIVATE_KEY": "sbxPrivateKey4tier1",
            "CONNECTWISE_CLIENT_ID": "5c3e2a7d-8f41-4b6e-9d2a-1f0b7c6e3a94",
        }
    )


def test_the_record_id_parameter_is_appended_once():
    assert callback_url("https://app/api/webhooks/connectwise?code=k") == (
        "https://app/api/webhooks/connectwise?code=k&recordId="
    )
    assert callback_url("https://app/x") == "https://app/x?recordId="
    assert callback_url("https://app/x?recordId=") == "https://app/x?recordId="


async def test_registering_twice_creates_once_then_reports_unchanged(cw, settings):
    url = "https://tierone.example.net/api/webhooks/connectwise?code=abc"
    first = await ConnectWiseRegistrar(settings).register(url)
    second = await ConnectWiseRegistrar(settings).register(url)
    assert (first.action, second.action) == ("created", "unchanged")
    (callback,) = cw.callbacks()
    assert callback["url"] == url + "&recordId="
    assert callback["type"] == "ticket"
    assert callback["isSelfSuppressedFlag"] is True
    assert callback["inactiveFlag"] is False


async def test_a_changed_url_or_a_disabled_callback_is_repaired_in_place(cw, settings):
    await ConnectWiseRegistrar(settings).register("https://old.example.net/api/webhooks/connectwise?code=a")
    (callback,) = cw.callbacks()
    disable = [{"op": "replace", "path": "inactiveFlag", "value": True}]
    async with httpx.AsyncClient(headers=cw.auth_headers()) as http:
        await http.patch(f"{cw.api_url}/system/callbacks/{callback['id']}", json=disable)
    assert cw.callbacks()[0]["inactiveFlag"] is True
    result = await ConnectWiseRegistrar(settings).register("https://new.example.net/api/webhooks/connectwise?code=b")
    assert result.action == "updated"
    (callback,) = cw.callbacks()
    assert callback["url"].startswith("https://new.example.net/")
    assert callback["inactiveFlag"] is False

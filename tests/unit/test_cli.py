"""The operator CLI against Azurite: tenant mapping commands."""

from __future__ import annotations

import pytest

from tierone.cli import main


@pytest.fixture
def env(settings, monkeypatch, storage):
    monkeypatch.setenv("AzureWebJobsStorage", settings.storage_connection_string.get_secret_value())
    return settings


def test_map_then_show_lists_the_mapping(env, unique, capsys):
    tenant = "7c1c3c9e-3a57-4e0e-9c55-2b8f3f7c9d10"
    assert (
        main(["tenants", "map", "--psa", "autotask", "--company", unique, "--tenant", tenant, "--name", "Contoso"]) == 0
    )
    assert main(["tenants", "show", "--psa", "autotask"]) == 0
    out = capsys.readouterr().out
    assert f"autotask\t{unique}\t{tenant}\tContoso" in out


def test_a_tenant_that_is_not_a_guid_is_refused(env, capsys):
    assert main(["tenants", "map", "--psa", "connectwise", "--company", "1", "--tenant", "contoso.com"]) == 2
    assert "not a tenant id" in capsys.readouterr().err


def test_import_explains_when_the_psa_keeps_no_mapping(env, capsys, monkeypatch):
    for name, value in {
        "CONNECTWISE_API_URL": "http://127.0.0.1:9/v2025_1/apis/3.0",
        "CONNECTWISE_COMPANY_ID": "x",
        "CONNECTWISE_PUBLIC_KEY": "x",
        "CONNECTWISE_PRIVATE_KEY": "x",
        "CONNECTWISE_CLIENT_ID": "x",
    }.items():
        monkeypatch.setenv(name, value)
    assert main(["tenants", "import", "--psa", "connectwise"]) == 1
    assert "tierone tenants map" in capsys.readouterr().out


def test_missing_psa_settings_are_reported_by_name_without_values(env, capsys, monkeypatch):
    monkeypatch.delenv("CONNECTWISE_API_URL", raising=False)
    code = main(["psa", "register", "connectwise", "--url", "https://x/api/webhooks/connectwise?code=k"])
    assert code == 2
    assert "CONNECTWISE_API_URL" in capsys.readouterr().err

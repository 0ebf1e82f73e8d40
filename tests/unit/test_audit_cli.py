"""`tierone audit verify|export` and `tierone policy show|set` against Azurite.

The CLI runs its own event loop, so these tests are synchronous and set up with asyncio.run."""

from __future__ import annotations

import asyncio
import csv
import io
import json

import pytest

from tierone.audit import AuditEvent, AuditLog
from tierone.cli import main

TENANT = "7c1c3c9e-3a57-4e0e-9c55-2b8f3f7c9d10"


@pytest.fixture
def env(settings, monkeypatch, storage):
    monkeypatch.setenv("AzureWebJobsStorage", settings.storage_connection_string.get_secret_value())
    return settings


def chain(storage, tenant: str, n: int = 3) -> None:
    asyncio.run(_chain(storage, tenant, n))


async def _chain(storage, tenant: str, n: int) -> None:
    log = AuditLog(storage.audit)
    for i in range(n):
        event = AuditEvent(
            event_type="executed",
            ticket=f"halopsa:{i}",
            actor="tierone",
            requester="alice@contoso.com",
            target="bob@contoso.com",
            action="password_reset",
            outcome="done",
            rule="P10-self-service-reset",
            evidence={"graph_request_ids": [f"req-{i}"]},
        )
        await log.append(tenant, f"k{i}", event)


# --- verify ---------------------------------------------------------------------------------------


def test_verify_exits_0_when_the_chain_is_intact(env, storage, unique, capsys):
    chain(storage, unique)
    assert main(["audit", "verify", "--tenant", unique]) == 0
    assert f"{unique}: intact (3 records)" in capsys.readouterr().out


def test_verify_exits_1_and_names_an_edited_row(env, storage, unique, capsys):
    chain(storage, unique)
    asyncio.run(storage.audit.upsert({"PartitionKey": unique, "RowKey": "0000000002", "outcome": "escalated"}))
    assert main(["audit", "verify", "--tenant", unique]) == 1
    out = capsys.readouterr().out
    assert f"{unique}: BROKEN" in out
    assert "record 2 was altered" in out


def test_verify_exits_1_when_a_row_is_deleted(env, storage, unique, capsys):
    chain(storage, unique)
    asyncio.run(storage.audit.delete(unique, "0000000002"))
    assert main(["audit", "verify", "--tenant", unique]) == 1
    assert "record 2 is missing" in capsys.readouterr().out


def test_verify_without_a_tenant_checks_every_chain(env, storage, unique, capsys):
    chain(storage, f"{unique}-a")
    chain(storage, f"{unique}-b")
    asyncio.run(storage.audit.delete(f"{unique}-b", "0000000003"))  # the last row: only the head knows it existed
    assert main(["audit", "verify"]) == 1
    out = capsys.readouterr().out
    assert f"{unique}-a: intact" in out
    assert f"{unique}-b: BROKEN" in out


# --- export ---------------------------------------------------------------------------------------


def test_export_filters_by_date(env, storage, unique, capsys):
    chain(storage, unique)
    assert main(["audit", "export", "--tenant", unique, "--since", "2000-01-01"]) == 0
    rows = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert [r["Seq"] for r in rows] == [1, 2, 3]
    assert rows[1]["PrevHash"] == rows[0]["EntryHash"]  # the reviewer can re-verify the chain from the file
    assert main(["audit", "export", "--tenant", unique, "--since", "2999-01-01"]) == 0
    assert capsys.readouterr().out == ""


def test_export_carries_only_the_record_fields(env, storage, unique, capsys):
    chain(storage, unique, n=1)
    assert main(["audit", "export", "--tenant", unique, "--since", "2000-01-01", "--format", "csv"]) == 0
    out = capsys.readouterr().out
    (row,) = list(csv.DictReader(io.StringIO(out)))
    assert row["rule"] == "P10-self-service-reset"
    assert json.loads(row["Evidence"]) == {"graph_request_ids": ["req-0"]}
    # No table metadata, idempotency markers or chain head, and nothing secret-looking.
    assert "key|" not in out
    assert "~head" not in out
    assert "etag" not in out.lower()
    assert "Timestamp" not in out
    for secret_word in ('password"', "secret", "token", "AccountKey"):
        assert secret_word.lower() not in out.lower()


def test_export_refuses_a_malformed_date(env, capsys):
    assert main(["audit", "export", "--tenant", TENANT, "--since", "yesterday"]) == 2
    assert "YYYY-MM-DD" in capsys.readouterr().err


# --- policy ---------------------------------------------------------------------------------------


def test_policy_set_stores_a_new_version_and_show_prints_it(env, unique, capsys):
    assert main(["policy", "set", "--tenant", unique, "--intent", "mfa_reset", "--mode", "propose", "--by", "t"]) == 0
    args = ["--hours", "mon-fri", "08:00-18:00", "--tz", "Europe/London", "--vip", "CEO@contoso.com"]
    assert main(["policy", "set", "--tenant", unique, *args, "--authorise", "onboarding", "hr@contoso.com"]) == 0
    approver = ["--approver", "lead@contoso.com", "U0123", "T0MSP"]
    assert main(["policy", "set", "--tenant", unique, *approver, "--by", "t"]) == 0
    capsys.readouterr()
    assert main(["policy", "show", "--tenant", unique]) == 0
    shown = json.loads(capsys.readouterr().out)
    assert (shown["scope"], shown["version"]) == (unique, 3)
    policy = shown["policy"]
    assert policy["modes"]["mfa_reset"] == "propose"
    assert policy["time_zone"] == "Europe/London"
    assert policy["vip_upns"] == ["ceo@contoso.com"]
    assert policy["authorised_contacts"] == {"onboarding": ["hr@contoso.com"]}
    assert policy["approvers"] == [{"id": "lead@contoso.com", "slack_id": "U0123", "slack_team_id": "T0MSP"}]


def test_policy_changes_are_audited_in_the_tenants_chain(env, storage, unique):
    assert main(["policy", "set", "--tenant", unique, "--after-hours", "off", "--by", "lead@msp"]) == 0
    (record,) = asyncio.run(AuditLog(storage.audit).records(unique))
    assert (record["event_type"], record["actor"], record["outcome"]) == ("policy_changed", "lead@msp", "version 1")
    assert asyncio.run(AuditLog(storage.audit).verify(unique)) == []


def test_policy_set_refuses_bad_values_without_storing(env, unique, capsys):
    assert main(["policy", "set", "--tenant", unique, "--tz", "Mars/Base"]) == 2
    assert "IANA" in capsys.readouterr().err
    assert main(["policy", "set", "--tenant", unique, "--intent", "mfa_reset"]) == 2
    assert main(["policy", "set", "--tenant", unique]) == 2
    assert main(["policy", "history", "--tenant", unique]) == 0
    assert capsys.readouterr().out == ""


def test_out_of_band_confirmation_is_on_by_default_and_switching_it_off_is_a_recorded_choice(env, unique, capsys):
    assert main(["policy", "show", "--tenant", unique]) == 0
    assert json.loads(capsys.readouterr().out)["policy"]["confirm_credentials"] is True

    assert main(["policy", "set", "--tenant", unique, "--confirm-credentials", "off", "--by", "lead@msp"]) == 0
    capsys.readouterr()
    assert main(["policy", "show", "--tenant", unique]) == 0
    assert json.loads(capsys.readouterr().out)["policy"]["confirm_credentials"] is False
    assert main(["policy", "history", "--tenant", unique]) == 0
    assert "confirm_credentials=off" in capsys.readouterr().out

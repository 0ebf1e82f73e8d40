"""Per-client policy: conservative defaults, business hours, the target guard, and versioned storage."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime

import pytest
from pydantic import ValidationError

from identity_integrations.models import DirectoryUser
from tierone.client_policy import (
    DEFAULT_MODES,
    DEFAULT_SCOPE,
    BusinessHours,
    ClientPolicy,
    Mode,
    PolicyStore,
)
from tierone.storage import POLICIES, Table

# A Wednesday: 10:00 UTC is business hours in London (11:00 BST), 21:00 UTC is not.
WEDNESDAY_MORNING = datetime(2025, 6, 11, 10, 0, tzinfo=UTC)
WEDNESDAY_NIGHT = datetime(2025, 6, 11, 21, 0, tzinfo=UTC)
SATURDAY_MORNING = datetime(2025, 6, 14, 10, 0, tzinfo=UTC)


def user(upn: str, oid: str = "11111111-1111-1111-1111-111111111111") -> DirectoryUser:
    return DirectoryUser(id=oid, display_name=upn, user_principal_name=upn)


def with_mode(intent: str, mode: Mode):
    def change(policy: ClientPolicy) -> ClientPolicy:
        policy.modes[intent] = mode
        return policy

    return change


# --- defaults ---------------------------------------------------------------------------------


def test_defaults_are_conservative():
    policy = ClientPolicy()
    assert policy.modes["password_reset"] == Mode.AUTO
    assert policy.modes["account_unlock"] == Mode.AUTO
    for intent in ("mfa_reset", "group_membership", "mailbox_permission", "license_change"):
        assert policy.modes[intent] == Mode.APPROVAL
    assert policy.modes["onboarding"] == policy.modes["offboarding"] == Mode.APPROVAL
    assert policy.after_hours == Mode.APPROVAL
    assert policy.vip_upns == policy.break_glass_upns == policy.approvers == []


def test_an_intent_the_client_never_set_keeps_its_default():
    policy = ClientPolicy(modes={"password_reset": Mode.OFF})
    assert policy.modes == {**DEFAULT_MODES, "password_reset": Mode.OFF}


def test_unknown_intents_and_time_zones_are_refused():
    with pytest.raises(ValidationError):
        ClientPolicy(modes={"format_c_drive": Mode.AUTO})
    with pytest.raises(ValidationError):
        ClientPolicy(time_zone="Mars/Olympus_Mons")


# --- business hours -------------------------------------------------------------------------------


def test_in_business_hours_the_client_mode_applies():
    policy = ClientPolicy(time_zone="Europe/London")
    assert policy.effective_mode("password_reset", WEDNESDAY_MORNING) == (Mode.AUTO, "C02-client-auto")


def test_after_hours_downgrades_auto_to_approval():
    policy = ClientPolicy(time_zone="Europe/London")
    assert policy.effective_mode("password_reset", WEDNESDAY_NIGHT) == (Mode.APPROVAL, "C03-after-hours-approval")
    assert policy.effective_mode("password_reset", SATURDAY_MORNING)[0] == Mode.APPROVAL


def test_after_hours_never_loosens_a_stricter_mode():
    policy = ClientPolicy(after_hours=Mode.AUTO, modes={"mfa_reset": Mode.OFF})
    assert policy.effective_mode("mfa_reset", WEDNESDAY_NIGHT) == (Mode.OFF, "C02-client-off")
    off_at_night = ClientPolicy(after_hours=Mode.OFF)
    assert off_at_night.effective_mode("mfa_reset", WEDNESDAY_NIGHT) == (Mode.OFF, "C03-after-hours-off")


def test_business_hours_are_read_in_the_clients_time_zone():
    # 10:00 UTC on a Wednesday is 03:00 in Los Angeles: after hours there.
    policy = ClientPolicy(time_zone="America/Los_Angeles")
    assert policy.effective_mode("password_reset", WEDNESDAY_MORNING)[0] == Mode.APPROVAL


def test_an_intent_without_a_mode_is_off():
    assert ClientPolicy().effective_mode("other", WEDNESDAY_MORNING) == (Mode.OFF, "C01-intent-not-configured")


def test_business_hours_parse_day_ranges_and_times():
    hours = BusinessHours.parse("mon-fri", "08:30-17:00")
    assert hours.days == [0, 1, 2, 3, 4]
    assert (hours.start.hour, hours.start.minute, hours.end.hour) == (8, 30, 17)
    assert BusinessHours.parse("sat,sun", "10:00-14:00").days == [5, 6]
    with pytest.raises(ValueError, match="day"):
        BusinessHours.parse("someday", "08:00-18:00")
    with pytest.raises(ValueError, match="before"):
        BusinessHours.parse("mon", "18:00-08:00")


# --- the target guard and who may ask ---------------------------------------------------------


def test_vip_and_break_glass_are_always_protected_whatever_the_mode():
    policy = ClientPolicy(
        modes=dict.fromkeys(DEFAULT_MODES, Mode.AUTO),
        after_hours=Mode.AUTO,
        vip_upns=["CEO@contoso.com"],
        break_glass_upns=["22222222-2222-2222-2222-222222222222"],
    )
    assert "VIP" in (policy.is_protected("ceo@Contoso.com") or "")
    assert "break-glass" in (policy.is_protected(user("bg@contoso.com", "22222222-2222-2222-2222-222222222222")) or "")
    assert policy.is_protected(user("alice@contoso.com")) is None


def test_the_target_themself_and_their_manager_may_ask():
    policy = ClientPolicy()
    alice, bob = user("alice@contoso.com", "a"), user("bob@contoso.com", "b")
    assert policy.check_requester("password_reset", requester=alice, target=alice, requester_is_manager=False).allowed
    check = policy.check_requester("group_membership", requester=bob, target=alice, requester_is_manager=True)
    assert check.allowed
    assert check.rule == "V04-manager-of-record"


def test_a_contact_authorised_for_one_intent_may_ask_only_for_that_intent():
    policy = ClientPolicy(authorised_contacts={"onboarding": ["HR@contoso.com"]})
    hr, alice = user("hr@contoso.com", "h"), user("alice@contoso.com", "a")
    assert policy.check_requester("onboarding", requester=hr, target=alice, requester_is_manager=False).rule == (
        "V05-authorised-contact"
    )
    refused = policy.check_requester("mfa_reset", requester=hr, target=alice, requester_is_manager=False)
    assert not refused.allowed
    assert refused.rule == "V06-requester-not-allowed"


def test_a_leaver_never_offboards_themself():
    alice = user("alice@contoso.com", "a")
    policy = ClientPolicy(authorised_contacts={"offboarding": ["alice@contoso.com"]})
    check = policy.check_requester("offboarding", requester=alice, target=alice, requester_is_manager=False)
    assert (check.allowed, check.rule) == (False, "V02-self-not-allowed")


# --- storage --------------------------------------------------------------------------------------


@pytest.fixture
def store(storage):
    return PolicyStore(Table(storage.account, POLICIES))


async def test_a_tenant_without_a_policy_gets_the_builtin_defaults(store, unique):
    resolved = await store.resolve(unique)
    assert resolved.scope in ("builtin", DEFAULT_SCOPE)  # another test may have stored an MSP default
    if resolved.scope == "builtin":
        assert (resolved.policy, resolved.version) == (ClientPolicy(), 0)


async def test_versions_increase_and_history_is_kept(store, unique):
    assert await store.set(unique, with_mode("mfa_reset", Mode.OFF), by="tech@msp", note="mfa off") == 1
    assert await store.set(unique, with_mode("mfa_reset", Mode.PROPOSE), by="lead@msp", note="mfa shadow") == 2
    policy, version = await store.get(unique)
    assert (policy.modes["mfa_reset"], version) == (Mode.PROPOSE, 2)
    history = await store.history(unique)
    assert [(v.version, v.set_by, v.change) for v in history] == [
        (1, "tech@msp", "mfa off"),
        (2, "lead@msp", "mfa shadow"),
    ]
    assert history[0].policy.modes["mfa_reset"] == Mode.OFF


async def test_concurrent_sets_lose_neither_a_version_nor_an_edit(store, unique):
    intents = ["mfa_reset", "group_membership", "license_change", "onboarding", "offboarding"]
    versions = await asyncio.gather(*(store.set(unique, with_mode(i, Mode.OFF), by="x", note=i) for i in intents))
    assert sorted(versions) == [1, 2, 3, 4, 5]
    policy, version = await store.get(unique)
    assert version == 5
    assert all(policy.modes[i] == Mode.OFF for i in intents)
    assert [v.version for v in await store.history(unique)] == [1, 2, 3, 4, 5]


async def test_a_tenant_falls_back_to_the_msp_default_and_starts_from_it(storage, unique):
    # A private partition stands in for "*" so parallel tests cannot disturb the MSP default.
    table = Table(storage.account, POLICIES)
    store = PolicyStore(table)
    await store.set(DEFAULT_SCOPE, lambda p: p, by="x", note="touch")  # make sure a default row exists
    default, default_version = await store.get(DEFAULT_SCOPE)
    policy, version = await store.get(unique)
    assert (policy, version) == (default, default_version)
    await store.set(unique, with_mode("password_reset", Mode.PROPOSE), by="x", note="shadow")
    policy, version = await store.get(unique)
    assert version == 1
    assert policy.modes["password_reset"] == Mode.PROPOSE
    assert policy.after_hours == default.after_hours


async def test_an_invalid_change_is_not_stored(store, unique):
    def bad(policy: ClientPolicy) -> ClientPolicy:
        policy.time_zone = "Not/AZone"
        return policy

    with pytest.raises(ValidationError):
        await store.set(unique, bad, by="x", note="bad")
    assert await store.history(unique) == []

"""The seven playbooks against the Graph and Exchange sandboxes over HTTP (production adapters,
federated managed-identity tokens), with the action ledger in Azurite.

Each test gets a fresh customer tenant. `Desk` holds what one ticket needs: the tenant's seeded
people, a PlaybookContext factory, a credential sink that records what it is handed (so a test can
prove the secret went there and nowhere else), and counters of the writes each sandbox received."""

from __future__ import annotations

import logging
import uuid
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass, field
from typing import Any

import pytest

from identity_integrations.exchange import ExchangeAdmin, ExchangeError
from identity_integrations.graph import GraphDirectory
from sandbox.exchange_online import ExchangeSandbox
from sandbox.graph_tenant import GraphSandbox
from sandbox.identity_stack import CustomerDesk, IdentityStack, identity_stack
from tierone.errors import PermanentError, TransientError
from tierone.playbooks import (
    account_unlock,
    group_membership,
    license_change,
    mailbox_permission,
    mfa_reset,
    offboarding,
    onboarding,
)
from tierone.playbooks.base import ActionLedger, PlaybookResult, StepStatus, run
from tierone.playbooks.context import OnboardingTemplate, PlaybookContext, PlaybookRequest
from tierone.playbooks.registry import PLAYBOOKS

E3, E5 = "05e9a617-0261-4cee-bb44-138d3ef5d965", "06ebc4ee-1bb5-47dd-8120-11324bc54e06"
SPB = "cbdc14ab-d96c-4c30-b9f4-6ada7cdc1d46"
WRITE_METHODS = frozenset({"POST", "PATCH", "PUT", "DELETE"})
DONE, ALREADY, FAILED, NOT_RUN, NOTED = (
    StepStatus.DONE,
    StepStatus.ALREADY,
    StepStatus.FAILED,
    StepStatus.NOT_RUN,
    StepStatus.NOTED,
)


# --------------------------------------------------------------------------------------------
# The stack: Entra, Graph and Exchange sandboxes, one app, one managed identity
# --------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def stack(azurite) -> Iterator[IdentityStack]:
    with identity_stack(AzureWebJobsStorage=azurite.connection_string) as running:
        yield running


@dataclass
class Desk(CustomerDesk):
    """One customer tenant and one ticket's worth of playbook plumbing."""

    stack: IdentityStack
    tenant_id: str
    directory: GraphDirectory
    exchange: ExchangeAdmin
    ledger_table: Any
    people: dict[str, dict[str, Any]] = field(default_factory=dict)
    delivered: list[tuple[str, str]] = field(default_factory=list)  # (purpose, secret)
    ticket: str = field(default_factory=lambda: f"cw:{uuid.uuid4().hex[:10]}")

    @property
    def graph(self) -> GraphSandbox:
        return self.stack.graph

    @property
    def exo(self) -> ExchangeSandbox:
        return self.stack.exchange

    async def deliver(self, secret: str, purpose: str) -> str:
        self.delivered.append((purpose, secret))
        return f"https://tierone.example.net/api/secrets/link-{len(self.delivered)}"

    def context(
        self, intent: str, *, requester: str = "mia", target: str | None = "anna", exchange: bool = True, **request: Any
    ) -> PlaybookContext:
        template = request.pop("template", TEMPLATE)
        return PlaybookContext(
            tenant_id=self.tenant_id,
            ticket_ref=self.ticket,
            directory=self.directory,
            exchange=self.exchange if exchange else None,
            requester=self.user(requester),
            target=self.user(target) if target else None,
            request=PlaybookRequest(intent=intent, **request),
            deliver_credential=self.deliver,
            customer_name="Contoso",
            template=template,
        )

    async def run(self, ctx: PlaybookContext) -> PlaybookResult:
        steps = await PLAYBOOKS[ctx.request.intent].plan(ctx)
        return await run(steps, ActionLedger(self.ledger_table, self.ticket), settle_delay=0)

    def graph_writes(self) -> list[str]:
        return [
            f"{r.method} {r.path.removeprefix('/v1.0')}"
            for r in self.graph.request_log
            if r.tenant_id == self.tenant_id and r.method in WRITE_METHODS and r.status < 400
        ]

    def exchange_writes(self) -> list[str]:
        return [
            str(r.cmdlet)
            for r in self.exo.request_log
            if r.tenant_id == self.tenant_id and not str(r.cmdlet).lower().startswith("get-") and r.status < 400
        ]

    def graph_calls(self, path_suffix: str) -> list[Any]:
        return [r for r in self.graph.request_log if r.tenant_id == self.tenant_id and r.path.endswith(path_suffix)]

    def writes(self) -> int:
        return len(self.graph_writes()) + len(self.exchange_writes())

    async def ledger_rows(self) -> list[dict[str, Any]]:
        return await ActionLedger(self.ledger_table, self.ticket).rows()


TEMPLATE = OnboardingTemplate(
    domain="contoso.example",
    upn_pattern="{first}.{last}",
    usage_location="GB",
    license_sku="SPB",
    groups=["All Staff"],
    groups_by_role={"sales": ["Sales Team", "Sales DL"]},
)


@pytest.fixture
async def desk(stack, settings) -> AsyncIterator[Desk]:
    from tierone.storage import Storage

    tenant_id = stack.customer_tenant()
    storage = Storage(settings)
    storage.account.ensure()
    directory = GraphDirectory(tenant_id, stack.settings, stack.credentials)
    exchange = ExchangeAdmin(tenant_id, stack.settings, stack.credentials)
    created = Desk(stack, tenant_id, directory, exchange, storage.ledger)
    created.person("mia", "Mia Manager")
    created.person("anna", "Anna Berg", manager_id=created.people["mia"]["id"])
    stack.graph.faults.clear()
    stack.exchange.faults.clear()
    yield created
    await exchange.aclose()


def statuses(result: PlaybookResult) -> list[tuple[str, StepStatus]]:
    return [(s.name, s.status) for s in result.steps]


def assert_nowhere(secret: str, *places: Any) -> None:
    for place in places:
        assert secret not in str(place)


# --------------------------------------------------------------------------------------------
# Account unlock
# --------------------------------------------------------------------------------------------


async def test_unlock_re_enables_dismisses_risk_and_revokes_sessions_once(desk):
    desk.graph.set_premium(desk.tenant_id, True)
    anna = desk.person("dan", "Dan Blocked", account_enabled=False)["id"]
    desk.graph.set_user_risk(desk.tenant_id, anna, "medium")
    ctx = desk.context("account_unlock", target="dan")
    result = await desk.run(ctx)
    assert statuses(result) == [
        ("enable-sign-in", DONE),
        ("dismiss-risk", DONE),
        ("revoke-sessions", DONE),
        ("smart-lockout", NOTED),
    ]
    assert desk.graph.user(desk.tenant_id, anna)["accountEnabled"] is True
    assert desk.graph.risk_of(desk.tenant_id, anna)["riskLevel"] == "none"
    assert ctx.facts["risk_level"] == "medium"
    assert "sign-in is allowed again" in account_unlock.customer_message(ctx, result, None)
    writes = desk.writes()
    again = await desk.run(desk.context("account_unlock", target="dan"))
    assert again.completed
    assert desk.writes() == writes  # the same ticket twice changes the tenant once


async def test_unlock_of_an_unblocked_account_only_explains_smart_lockout(desk):
    ctx = desk.context("account_unlock")
    result = await desk.run(ctx)
    assert statuses(result) == [("smart-lockout", NOTED)]
    assert desk.writes() == 0
    assert ctx.facts["risk_level"] == "not licensed"  # no Entra ID P2: no risk data, nothing dismissed
    assert "lifts by itself" in account_unlock.customer_message(ctx, result, None)


async def test_unlock_of_a_high_risk_user_is_escalated_untouched(desk):
    desk.graph.set_premium(desk.tenant_id, True)
    desk.graph.set_user_risk(desk.tenant_id, desk.people["anna"]["id"], "high")
    with pytest.raises(PermanentError, match="risk high"):
        await account_unlock.plan(desk.context("account_unlock"))
    assert desk.writes() == 0


# --------------------------------------------------------------------------------------------
# MFA reset
# --------------------------------------------------------------------------------------------


async def test_mfa_reset_deletes_every_method_default_last_and_hands_over_a_one_time_pass(desk, caplog):
    caplog.set_level(logging.DEBUG)
    anna = desk.people["anna"]["id"]
    default = desk.graph.add_auth_method(desk.tenant_id, anna, "microsoftAuthenticator", default=True)
    desk.graph.add_auth_method(desk.tenant_id, anna, "phone", phone_type="mobile", phone_number="+44 20 7946 0000")
    desk.graph.add_auth_method(desk.tenant_id, anna, "softwareOath")
    ctx = desk.context("mfa_reset")
    result = await desk.run(ctx)
    assert statuses(result) == [("remove-mfa-methods", DONE), ("revoke-sessions", DONE), ("issue-tap", DONE)]
    deletes = [w for w in desk.graph_writes() if w.startswith("DELETE")]
    assert len(deletes) == 3
    assert deletes[-1].endswith(default)  # refused while others remained, deleted last
    tap = desk.graph.tap_of(desk.tenant_id, anna)
    assert tap is not None
    assert (tap["isUsableOnce"], tap["lifetimeInMinutes"]) == (True, 60)
    assert desk.delivered == [("Temporary Access Pass", tap["temporaryAccessPass"])]
    secret = tap["temporaryAccessPass"]
    message = mfa_reset.customer_message(ctx, result, "https://tierone.example.net/api/secrets/link-1")
    assert "link-1" in message
    assert_nowhere(secret, result.model_dump_json(), await desk.ledger_rows(), ctx.facts, message, caplog.text)


async def test_mfa_reset_with_the_tap_policy_off_is_escalated_before_anything_is_deleted(desk):
    desk.graph.set_tap_policy(desk.tenant_id, enabled=False)
    desk.graph.add_auth_method(desk.tenant_id, desk.people["anna"]["id"], "microsoftAuthenticator")
    with pytest.raises(PermanentError, match="Temporary Access Pass policy is off"):
        await mfa_reset.plan(desk.context("mfa_reset"))
    assert desk.writes() == 0


async def test_mfa_reset_for_a_user_outside_the_tap_policy_is_escalated(desk):
    pilot = desk.graph.add_group(desk.tenant_id, "TAP pilot")
    desk.graph.set_tap_policy(desk.tenant_id, include_groups=[pilot])
    with pytest.raises(PermanentError, match="outside the tenant's Temporary Access Pass policy"):
        await mfa_reset.plan(desk.context("mfa_reset"))


# --------------------------------------------------------------------------------------------
# Group membership
# --------------------------------------------------------------------------------------------


async def test_a_security_group_is_joined_through_members_ref(desk):
    group = desk.graph.add_group(desk.tenant_id, "Project X")
    ctx = desk.context("group_membership", object="Project X")
    result = await desk.run(ctx)
    assert statuses(result) == [(f"add-group-{group}", DONE)]
    assert desk.graph_writes() == [f"POST /groups/{group}/members/$ref"]
    assert desk.people["anna"]["id"] in desk.graph.members(desk.tenant_id, group)
    assert "was added to 'Project X'" in group_membership.customer_message(ctx, result, None)


async def test_leaving_a_group_removes_the_reference_never_the_user(desk):
    group = desk.graph.add_group(desk.tenant_id, "Project X")
    desk.graph.add_member(desk.tenant_id, group, desk.people["anna"]["id"])
    result = await desk.run(desk.context("group_membership", object="Project X", remove=True))
    assert result.completed
    assert desk.graph_writes() == [f"DELETE /groups/{group}/members/{desk.people['anna']['id']}/$ref"]
    assert desk.graph.user(desk.tenant_id, desk.people["anna"]["id"])["accountEnabled"] is True


async def test_a_distribution_list_is_changed_through_exchange_not_graph(desk):
    dl = desk.graph.add_group(desk.tenant_id, "Sales DL", "distribution", mail="salesdl@contoso.example")
    ctx = desk.context("group_membership", object="Sales DL")
    result = await desk.run(ctx)
    assert result.completed
    assert desk.graph_writes() == []
    assert desk.exchange_writes() == ["Add-DistributionGroupMember"]
    assert desk.people["anna"]["id"] in desk.graph.members(desk.tenant_id, dl)
    assert ctx.facts["via"] == "Exchange Online"


@pytest.mark.parametrize(
    ("kind", "options", "reason"),
    [
        ("dynamic", {}, "dynamic group"),
        ("security", {"on_prem_synced": True}, "on-premises Active Directory"),
        ("security", {"role_assignable": True}, "role-assignable"),
    ],
)
async def test_groups_tierone_must_not_change_are_escalated(desk, kind, options, reason):
    desk.graph.add_group(desk.tenant_id, "Special", kind, **options)
    with pytest.raises(PermanentError, match=reason):
        await group_membership.plan(desk.context("group_membership", object="Special"))
    assert desk.writes() == 0


# --------------------------------------------------------------------------------------------
# Licences
# --------------------------------------------------------------------------------------------


async def test_a_swap_is_one_atomic_assign_license_call(desk):
    desk.graph.add_subscription(desk.tenant_id, "SPE_E3", 5)
    desk.graph.add_subscription(desk.tenant_id, "SPE_E5", 5)
    anna = desk.people["anna"]["id"]
    await desk.directory.set_usage_location(anna, "GB")
    await desk.directory.assign_licenses(anna, [E3], [])
    desk.graph.clear_request_log()
    ctx = desk.context("license_change", object="swap E3 for E5")
    result = await desk.run(ctx)
    assert statuses(result) == [("assign-licences", DONE)]
    calls = desk.graph_calls("/assignLicense")
    assert len(calls) == 1
    assert calls[0].body["addLicenses"][0]["skuId"] == E5
    assert calls[0].body["removeLicenses"] == [E3]
    assert desk.graph.licenses_of(desk.tenant_id, anna) == [E5]
    assert "Microsoft 365 E5 (SPE_E5) instead of Microsoft 365 E3 (SPE_E3)" in license_change.customer_message(
        ctx, result, None
    )


async def test_upgrade_to_swaps_within_the_family(desk):
    desk.graph.add_subscription(desk.tenant_id, "SPE_E3", 5)
    desk.graph.add_subscription(desk.tenant_id, "SPE_E5", 5)
    anna = desk.people["anna"]["id"]
    await desk.directory.set_usage_location(anna, "GB")
    await desk.directory.assign_licenses(anna, [E3], [])
    ctx = desk.context("license_change", object="upgrade to E5")
    await desk.run(ctx)
    assert ctx.facts["licence_remove"] == ["SPE_E3"]
    assert desk.graph.licenses_of(desk.tenant_id, anna) == [E5]


async def test_a_missing_usage_location_is_set_from_the_template_first(desk):
    desk.graph.add_subscription(desk.tenant_id, "SPB", 3)
    desk.graph.add_subscription(desk.tenant_id, "O365_BUSINESS_PREMIUM", 3)  # Business *Standard*
    result = await desk.run(desk.context("license_change", object="Business Premium"))
    assert statuses(result) == [("set-usage-location", DONE), ("assign-licences", DONE)]
    anna = desk.graph.user(desk.tenant_id, desk.people["anna"]["id"])
    assert anna["usageLocation"] == "GB"
    assert desk.graph.licenses_of(desk.tenant_id, anna["id"]) == [SPB]


async def test_no_free_seat_is_escalated_before_anything_changes(desk):
    desk.graph.add_subscription(desk.tenant_id, "SPE_E5", 1)
    mia = desk.person("mia2", "Mia Second", usage_location="GB")["id"]
    await desk.directory.assign_licenses(mia, [E5], [])
    with pytest.raises(PermanentError, match="no free seat of Microsoft 365 E5"):
        await license_change.plan(desk.context("license_change", object="Microsoft 365 E5"))


async def test_an_ambiguous_product_name_is_escalated(desk):
    desk.graph.add_subscription(desk.tenant_id, "SPE_E3", 1)
    desk.graph.add_subscription(desk.tenant_id, "ENTERPRISEPACK", 1)
    with pytest.raises(PermanentError, match="ambiguous"):
        await license_change.plan(desk.context("license_change", object="E3"))


async def test_a_group_inherited_licence_is_not_removed_from_the_user(desk):
    desk.graph.add_subscription(desk.tenant_id, "SPE_E3", 5)
    group = desk.graph.add_group(desk.tenant_id, "Licensed Staff", licenses=["SPE_E3"])
    desk.graph.add_member(desk.tenant_id, group, desk.people["anna"]["id"])
    with pytest.raises(PermanentError, match="membership of the group 'Licensed Staff'"):
        await license_change.plan(desk.context("license_change", object="E3", remove=True))


async def test_a_licence_held_directly_and_through_a_group_loses_only_the_direct_assignment(desk):
    desk.graph.add_subscription(desk.tenant_id, "SPE_E3", 5)
    anna = desk.people["anna"]["id"]
    await desk.directory.set_usage_location(anna, "GB")
    await desk.directory.assign_licenses(anna, [E3], [])
    desk.graph.add_member(desk.tenant_id, desk.graph.add_group(desk.tenant_id, "Licensed Staff", licenses=[E3]), anna)
    ctx = desk.context("license_change", object="E3", remove=True)
    result = await desk.run(ctx)
    assert statuses(result) == [("assign-licences", DONE)]
    assert (await desk.directory.user_licenses(anna)).direct == set()
    assert desk.graph.licenses_of(desk.tenant_id, anna) == [E3]  # still, through the group
    assert "still has Microsoft 365 E3 (SPE_E3) through the group 'Licensed Staff'" in (
        license_change.customer_message(ctx, result, None)
    )


async def test_a_429_storm_on_a_write_is_retried_later_and_checked_first(desk):
    desk.graph.add_subscription(desk.tenant_id, "SPE_E5", 5)
    await desk.directory.set_usage_location(desk.people["anna"]["id"], "GB")
    desk.graph.faults.fail_next(3, 429, retry_after=30, method="POST")
    with pytest.raises(TransientError):  # the SDK does not retry a write; the message is retried later
        await desk.run(desk.context("license_change", object="E5"))
    assert desk.graph.licenses_of(desk.tenant_id, desk.people["anna"]["id"]) == []
    desk.graph.faults.clear()
    result = await desk.run(desk.context("license_change", object="E5"))
    assert result.completed
    posts = [r.status for r in desk.graph_calls("/assignLicense")]
    assert posts == [429, 200]  # one refused, one applied: never two applied


async def test_a_write_whose_answer_was_lost_is_found_on_retry_and_not_sent_again(desk):
    desk.graph.add_subscription(desk.tenant_id, "SPE_E5", 5)
    await desk.directory.set_usage_location(desk.people["anna"]["id"], "GB")
    desk.graph.faults.fail_next(1, 504, retry_after=None, method="POST", after_applying=True)
    with pytest.raises(TransientError):
        await desk.run(desk.context("license_change", object="E5"))
    result = await desk.run(desk.context("license_change", object="E5"))
    assert statuses(result) == [("assign-licences", DONE)]  # ours, found by the check
    assert len(desk.graph_calls("/assignLicense")) == 1


# --------------------------------------------------------------------------------------------
# Shared mailbox permissions
# --------------------------------------------------------------------------------------------


async def test_full_access_and_send_as_on_a_shared_mailbox_are_granted_once(desk):
    desk.exo.add_shared_mailbox(desk.tenant_id, "Sales", "sales@contoso.example")
    ctx = desk.context("mailbox_permission", object="sales@contoso.example", rights=["Full Access", "Send As"])
    result = await desk.run(ctx)
    assert [s.status for s in result.steps] == [DONE, DONE]
    assert desk.exchange_writes() == ["Add-MailboxPermission", "Add-RecipientPermission"]
    granted = desk.exo.permissions(desk.tenant_id, "sales@contoso.example")
    assert granted["FullAccess"] == {"anna@contoso.example": True}
    assert granted["SendAs"] == ["anna@contoso.example"]
    assert "now has Full Access and Send As on sales@contoso.example" in mailbox_permission.customer_message(
        ctx, result, None
    )
    await desk.run(desk.context("mailbox_permission", object="sales@contoso.example", rights=["FullAccess", "SendAs"]))
    assert len(desk.exchange_writes()) == 2


async def test_send_on_behalf_is_granted_and_read_back(desk):
    desk.exo.add_shared_mailbox(desk.tenant_id, "Support", "support@contoso.example")
    result = await desk.run(desk.context("mailbox_permission", object="Support", rights=["SendOnBehalf"]))
    assert result.completed
    assert desk.exo.permissions(desk.tenant_id, "support@contoso.example")["SendOnBehalf"] == ["anna@contoso.example"]


async def test_a_personal_mailbox_is_escalated(desk):
    with pytest.raises(PermanentError, match="personal mailbox"):
        await mailbox_permission.plan(desk.context("mailbox_permission", object="mia@contoso.example"))


# --------------------------------------------------------------------------------------------
# Onboarding
# --------------------------------------------------------------------------------------------


def _seed_onboarding(desk: Desk, seats: int = 2) -> dict[str, str]:
    desk.graph.add_subscription(desk.tenant_id, "SPB", seats)
    return {
        "all": desk.graph.add_group(desk.tenant_id, "All Staff"),
        "team": desk.graph.add_group(desk.tenant_id, "Sales Team", "m365"),
        "dl": desk.graph.add_group(desk.tenant_id, "Sales DL", "distribution", mail="salesdl@contoso.example"),
    }


async def test_onboarding_creates_the_account_from_the_template(desk, caplog):
    caplog.set_level(logging.DEBUG)
    groups = _seed_onboarding(desk)
    ctx = desk.context("onboarding", target=None, new_user_name="Zoë Ångström-Öz", new_user_role="Sales Executive")
    result = await desk.run(ctx)
    assert result.completed, result.lines()
    upn = "zoe.angstrom-oz@contoso.example"
    assert ctx.facts["new_upn"] == upn
    created = desk.graph.user(desk.tenant_id, upn)
    assert (created["usageLocation"], created["jobTitle"]) == ("GB", "Sales Executive")
    assert desk.graph.manager_of(desk.tenant_id, created["id"]) == desk.people["mia"]["id"]
    assert desk.graph.licenses_of(desk.tenant_id, created["id"]) == [SPB]
    for group in groups.values():
        assert created["id"] in desk.graph.members(desk.tenant_id, group)
    assert desk.exchange_writes() == ["Add-DistributionGroupMember"]
    [(purpose, password)] = desk.delivered
    assert purpose == "temporary password"
    assert desk.graph.password_of(desk.tenant_id, created["id"]) == password
    assert desk.graph.password_profile(desk.tenant_id, created["id"])["forceChangePasswordNextSignIn"] is True
    message = onboarding.customer_message(ctx, result, "https://tierone.example.net/api/secrets/link-1")
    assert upn in message
    assert_nowhere(password, result.model_dump_json(), await desk.ledger_rows(), ctx.facts, message, caplog.text)
    writes = desk.writes()
    again = await desk.run(
        desk.context("onboarding", target=None, new_user_name="Zoë Ångström-Öz", new_user_role="Sales Executive")
    )
    assert again.completed
    assert desk.writes() == writes
    assert len(desk.delivered) == 1


async def test_onboarding_onto_a_name_someone_else_has_fails_without_touching_their_account(desk):
    _seed_onboarding(desk)
    desk.graph.add_user(
        desk.tenant_id, "Other Ola", "ola.nordmann@contoso.example", mail="ola.nordmann@contoso.example"
    )
    result = await desk.run(desk.context("onboarding", target=None, new_user_name="Ola Nordmann"))
    assert result.steps[0].status is FAILED
    assert "someone else has that name" in result.steps[0].detail
    assert {s.status for s in result.steps[1:]} == {NOT_RUN}
    assert desk.writes() == 0
    assert desk.delivered == []


async def test_onboarding_without_a_free_seat_does_everything_else_and_says_what_is_left(desk):
    groups = _seed_onboarding(desk, seats=1)
    await desk.directory.assign_licenses(desk.person("ivy", "Ivy Early", usage_location="GB")["id"], [SPB], [])
    ctx = desk.context("onboarding", target=None, new_user_name="Per Olsen")
    result = await desk.run(ctx)
    assert result.status_of("assign-licences") is FAILED
    assert "no free seat" in (result.failure.detail if result.failure else "")
    created = desk.graph.user(desk.tenant_id, "per.olsen@contoso.example")
    assert created["id"] in desk.graph.members(desk.tenant_id, groups["all"])
    message = onboarding.customer_message(ctx, result, "https://tierone.example.net/api/secrets/link-1")
    assert "no Microsoft 365 licence yet" in message


async def test_onboarding_waits_for_exchange_to_know_the_new_mailbox(desk, monkeypatch):
    _seed_onboarding(desk)
    ctx = desk.context("onboarding", target=None, new_user_name="Per Olsen", new_user_role="Sales")
    not_yet = ExchangeError("Get-DistributionGroupMember", 404, "ManagementObjectNotFoundException", "not found")

    async def unknown_recipient(group: str) -> list[Any]:
        raise not_yet

    with monkeypatch.context() as patch:
        patch.setattr(desk.exchange, "dl_members", unknown_recipient)
        with pytest.raises(TransientError, match="not provisioned yet"):  # the ticket is retried later
            await desk.run(ctx)
    result = await desk.run(desk.context("onboarding", target=None, new_user_name="Per Olsen", new_user_role="Sales"))
    assert result.completed
    assert len([w for w in desk.graph_writes() if w == "POST /users"]) == 1
    assert len(desk.delivered) == 1


async def test_onboarding_on_an_unverified_domain_or_without_a_template_is_escalated(desk):
    desk.graph.add_domain(desk.tenant_id, "newbrand.example", verified=False)
    unverified = TEMPLATE.model_copy(update={"domain": "newbrand.example"})
    with pytest.raises(PermanentError, match="not a verified domain"):
        await onboarding.plan(desk.context("onboarding", target=None, new_user_name="Per Olsen", template=unverified))
    with pytest.raises(PermanentError, match="no onboarding template"):
        await onboarding.plan(desk.context("onboarding", target=None, new_user_name="Per Olsen", template=None))


# --------------------------------------------------------------------------------------------
# Offboarding
# --------------------------------------------------------------------------------------------


async def test_offboarding_closes_the_door_first_and_keeps_the_mailbox(desk, caplog):
    caplog.set_level(logging.DEBUG)
    tenant = desk.tenant_id
    anna = desk.person("leo", "Leo Leaver", usage_location="GB", manager_id=desk.people["mia"]["id"])["id"]
    desk.graph.add_subscription(desk.tenant_id, "SPE_E3", 5)
    desk.graph.add_subscription(desk.tenant_id, "VISIOCLIENT", 5)
    await desk.directory.assign_licenses(anna, [E3], [])
    project = desk.graph.add_group(tenant, "Project X")
    dl = desk.graph.add_group(tenant, "All Staff DL", "distribution", mail="allstaff@contoso.example")
    dynamic = desk.graph.add_group(tenant, "Everyone (dynamic)", "dynamic")
    visio = desk.graph.add_group(tenant, "Visio Users", licenses=["VISIOCLIENT"])
    for group in (project, dl, dynamic, visio):
        desk.graph.add_member(tenant, group, anna)
    desk.graph.clear_request_log()
    desk.exo.clear_request_log()
    ctx = desk.context("offboarding", target="leo")
    result = await desk.run(ctx)
    assert result.completed, result.lines()
    names = [s.name for s in result.steps]
    assert names[:3] == ["block-sign-in", "revoke-sessions", "reset-password"]
    assert names.index("convert-to-shared") < names.index("assign-licences")
    user = desk.graph.user(tenant, anna)
    assert user["accountEnabled"] is False
    mailbox = desk.exo.mailbox(tenant, "leo@contoso.example")
    assert (mailbox["RecipientTypeDetails"], mailbox["HiddenFromAddressListsEnabled"]) == ("SharedMailbox", True)
    assert mailbox["AutoReply"]["status"] == "alwaysEnabled"
    assert "mia@contoso.example" in mailbox["AutoReply"]["internalReplyMessage"]
    assert mailbox["Permissions"]["FullAccess"] == {"mia@contoso.example": True}
    assert desk.graph.members(tenant, project) == []
    assert desk.graph.members(tenant, dl) == []
    assert desk.graph.members(tenant, dynamic) == [anna]  # left to its rule, with a note
    assert desk.graph.licenses_of(tenant, anna) == []
    assert result.status_of(f"keep-group-{dynamic}") is NOTED
    inherited = next(s for s in result.steps if s.name.startswith("inherited-licence-"))
    assert "'Visio Users'" in inherited.detail
    assert "goes with that membership" in inherited.detail
    assert desk.delivered == []  # the new password is given to nobody
    password = desk.graph.password_of(tenant, anna)
    assert password
    assert_nowhere(password, result.model_dump_json(), await desk.ledger_rows(), ctx.facts, caplog.text)
    writes = desk.writes()
    await desk.run(desk.context("offboarding", target="leo"))
    assert desk.writes() == writes
    assert "can open it" in offboarding.customer_message(ctx, result, None)


async def test_offboarding_without_exchange_or_of_a_synced_account_is_escalated_untouched(desk):
    with pytest.raises(PermanentError, match="managed in Exchange Online, which is not connected"):
        await offboarding.plan(desk.context("offboarding", exchange=False))
    desk.person("sam", "Sam Synced", on_premises_sync_enabled=True)
    with pytest.raises(PermanentError, match="on-premises Active Directory"):
        await offboarding.plan(desk.context("offboarding", target="sam"))
    assert desk.writes() == 0


async def test_offboarding_stops_when_sign_in_cannot_be_blocked(desk):
    desk.graph.assign_role(desk.tenant_id, desk.people["anna"]["id"], "Global Administrator")
    result = await desk.run(desk.context("offboarding"))
    assert result.steps[0].name == "block-sign-in"
    assert result.steps[0].status is FAILED
    assert {s.status for s in result.steps[1:]} == {NOT_RUN}
    assert desk.writes() == 0
    assert "could not block" in offboarding.customer_message(desk.context("offboarding"), result, None)


# --------------------------------------------------------------------------------------------
# Read-back
# --------------------------------------------------------------------------------------------


async def test_a_change_that_does_not_read_back_is_failed_never_done(desk, monkeypatch):
    desk.person("dan", "Dan Blocked", account_enabled=False)

    async def acknowledged_but_not_applied(user_id: str, enabled: bool):
        from identity_integrations.models import WriteReceipt

        return WriteReceipt(status=204, request_id="req-lost")

    monkeypatch.setattr(desk.directory, "set_account_enabled", acknowledged_but_not_applied)
    result = await desk.run(desk.context("account_unlock", target="dan"))
    assert result.steps[0].status is FAILED
    assert "reading it back does not show it" in result.steps[0].detail
    assert not result.completed
    assert not result.changed_anything

"""The Exchange Online adapter (identity_integrations.exchange) against the Exchange sandbox over
HTTP, with tokens from the Entra sandbox through the federated managed-identity path."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator

import pytest

from identity_integrations.credentials import TenantCredentials
from identity_integrations.exchange import SYSTEM_MAILBOX, ExchangeAdmin, ExchangeAdmins, ExchangeError
from sandbox.entra_login import EntraSandbox
from sandbox.exchange_online import ExchangeSandbox
from sandbox.graph_tenant import GraphSandbox
from tierone.errors import PermanentError, TransientError
from tierone.settings import Settings

SHARED = "sales@contoso.example"


@pytest.fixture(scope="module")
def sandboxes() -> Iterator[tuple[EntraSandbox, GraphSandbox, ExchangeSandbox]]:
    with EntraSandbox() as entra, GraphSandbox(entra) as graph, ExchangeSandbox(graph) as exchange:
        yield entra, graph, exchange


@pytest.fixture(scope="module")
def tenant(sandboxes):
    entra, graph, exchange = sandboxes
    msp = entra.add_tenant(domains=["msp.example"])
    identity = entra.add_managed_identity(msp)
    app = entra.register_app(client_secret="app-secret-value-1", federated_subject=identity.principal_id)
    tenant_id = graph.add_tenant(default_domain="contoso.example")
    graph.consent(tenant_id, app.client_id)
    users = {
        key: graph.add_user(tenant_id, name, f"{key}@contoso.example", mail=f"{key}@contoso.example")
        for key, name in (("anna", "Anna Berg"), ("ben", "Ben Ode"), ("cara", "Cara Lund"))
    }
    exchange.add_shared_mailbox(tenant_id, "Sales", SHARED)
    groups = {
        "all-staff": graph.add_group(tenant_id, "All Staff", "distribution", mail="allstaff@contoso.example"),
        "finance": graph.add_group(tenant_id, "Finance Team", "mail_security", mail="finance@contoso.example"),
        "legacy": graph.add_group(
            tenant_id, "Legacy DL", "distribution", on_prem_synced=True, mail="legacy@contoso.example"
        ),
    }
    for key in ("anna", "ben", "cara"):
        graph.add_member(tenant_id, groups["all-staff"], users[key]["id"])
    unconsented_app = entra.register_app(federated_subject=identity.principal_id)
    graph.consent(tenant_id, unconsented_app.client_id, ["User.Read.All"])  # no Exchange.ManageAsApp
    return {
        "id": tenant_id,
        "app": app,
        "bare_app": unconsented_app,
        "identity": identity,
        "users": users,
        "groups": groups,
    }


def _settings(entra: EntraSandbox, graph: GraphSandbox, exchange: ExchangeSandbox, app_id: str, identity) -> Settings:
    return Settings.model_validate(
        {
            "GRAPH_BASE_URL": graph.graph_url,
            "EXCHANGE_ADMIN_URL": exchange.admin_url,
            "TIERONE_GRAPH_AUTH": "federated",
            "TIERONE_APP_CLIENT_ID": app_id,
            "TIERONE_MANAGED_IDENTITY_CLIENT_ID": identity.client_id,
            "AZURE_AUTHORITY_HOST": entra.authority_host,
        }
    )


def close(credentials: TenantCredentials) -> None:
    """Close the cached credentials' HTTP sessions: an open pooled connection to the Entra sandbox
    would hold its TLS server's shutdown for ten seconds."""
    for credential in [*credentials._by_tenant.values(), credentials._managed_identity]:
        if credential is not None:
            credential.close()


@pytest.fixture(scope="module")
def credentials(sandboxes, tenant) -> Iterator[TenantCredentials]:
    entra, graph, exchange = sandboxes
    created = TenantCredentials(_settings(entra, graph, exchange, tenant["app"].client_id, tenant["identity"]))
    yield created
    close(created)


@pytest.fixture
def admins(sandboxes, tenant, credentials, monkeypatch) -> ExchangeAdmins:
    entra, graph, exchange = sandboxes
    for name, value in entra.env().items():
        monkeypatch.setenv(name, value)
    exchange.faults.clear()
    exchange.clear_request_log()
    settings = _settings(entra, graph, exchange, tenant["app"].client_id, tenant["identity"])
    return ExchangeAdmins(settings, credentials)


@pytest.fixture
async def admin(admins, tenant) -> AsyncIterator[ExchangeAdmin]:
    created = admins.for_tenant(tenant["id"])
    yield created
    await created.aclose()


def writes(exchange: ExchangeSandbox) -> list[str]:
    return [r.cmdlet or "" for r in exchange.request_log if not (r.cmdlet or "").lower().startswith("get-")]


async def test_reads_a_shared_mailbox_and_answers_none_for_an_unknown_one(admin):
    mailbox = await admin.mailbox(SHARED)
    assert mailbox is not None
    assert mailbox.is_shared
    assert mailbox.primary_smtp_address == SHARED
    assert await admin.mailbox("nobody@contoso.example") is None


async def test_full_access_is_granted_once_read_back_and_removed(admin, tenant, sandboxes):
    _, _, exchange = sandboxes
    receipt = await admin.grant_full_access(SHARED, "anna@contoso.example", automap=False)
    assert receipt.request_id
    assert "anna@contoso.example" in await admin.full_access_holders(SHARED)
    assert exchange.permissions(tenant["id"], SHARED)["FullAccess"] == {"anna@contoso.example": False}
    again = await admin.grant_full_access(SHARED, "anna@contoso.example")
    assert again.body is not None
    assert "already present" in again.body["warnings"][0]  # a warning, not an error
    await admin.remove_full_access(SHARED, "anna@contoso.example")
    assert "anna@contoso.example" not in await admin.full_access_holders(SHARED)
    grant = next(r for r in exchange.request_log if r.cmdlet == "Add-MailboxPermission")
    assert grant.anchor_mailbox == f"UPN:{SHARED}"
    assert grant.parameters["AccessRights"] == ["FullAccess"]


async def test_send_as_is_granted_and_removed(admin):
    await admin.grant_send_as(SHARED, "ben@contoso.example")
    assert "ben@contoso.example" in await admin.send_as_holders(SHARED)
    await admin.remove_send_as(SHARED, "ben@contoso.example")
    assert "ben@contoso.example" not in await admin.send_as_holders(SHARED)


async def test_send_on_behalf_changes_one_delegate_and_keeps_the_others(admin):
    await admin.grant_send_on_behalf(SHARED, "anna@contoso.example")
    await admin.grant_send_on_behalf(SHARED, "cara@contoso.example")
    assert sorted(await admin.send_on_behalf(SHARED)) == ["anna@contoso.example", "cara@contoso.example"]
    await admin.remove_send_on_behalf(SHARED, "anna@contoso.example")
    assert await admin.send_on_behalf(SHARED) == ["cara@contoso.example"]
    await admin.remove_send_on_behalf(SHARED, "cara@contoso.example")


async def test_distribution_list_members_change_through_exchange_and_repeats_are_harmless(admin, tenant, sandboxes):
    _, graph, _ = sandboxes
    finance = "finance@contoso.example"
    await admin.add_dl_member(finance, "anna@contoso.example")
    await admin.add_dl_member(finance, "anna@contoso.example")  # already a member: the desired state
    members = await admin.dl_members(finance)
    assert [m.external_id for m in members] == [tenant["users"]["anna"]["id"]]
    assert tenant["users"]["anna"]["id"] in graph.members(tenant["id"], tenant["groups"]["finance"])
    await admin.remove_dl_member(finance, "anna@contoso.example")
    await admin.remove_dl_member(finance, "anna@contoso.example")  # not a member any more: fine
    assert await admin.dl_members(finance) == []


async def test_an_on_premises_list_is_refused_as_a_permanent_error(admin):
    with pytest.raises(ExchangeError, match="on-premises") as refused:
        await admin.add_dl_member("legacy@contoso.example", "ben@contoso.example")
    assert refused.value.status == 400
    assert refused.value.kind == "TaskException"


async def test_long_member_lists_are_read_page_by_page(admin, sandboxes, monkeypatch):
    _, _, exchange = sandboxes
    monkeypatch.setattr("identity_integrations.exchange.PAGE_SIZE", 2)
    members = await admin.dl_members("allstaff@contoso.example")
    assert len(members) == 3
    pages = [r for r in exchange.request_log if r.cmdlet == "Get-DistributionGroupMember"]
    assert len(pages) == 2
    assert pages[0].anchor_mailbox == f"APP:{SYSTEM_MAILBOX}@{admin.tenant_id}"


async def test_mailbox_conversion_hiding_and_auto_reply_read_back(admin, tenant, sandboxes):
    _, graph, _ = sandboxes
    graph.add_user(tenant["id"], "Leaver One", "leaver1@contoso.example", mail="leaver1@contoso.example")
    await admin.convert_to_shared("leaver1@contoso.example")
    await admin.set_hidden_from_address_lists("leaver1@contoso.example", True)
    await admin.set_auto_reply("leaver1@contoso.example", "Leaver One has left; please write to Anna.")
    mailbox = await admin.mailbox("leaver1@contoso.example")
    assert mailbox is not None
    assert (mailbox.is_shared, mailbox.hidden_from_address_lists) == (True, True)
    reply = await admin.auto_reply("leaver1@contoso.example")
    assert reply == {
        "state": "Enabled",
        "internal": "Leaver One has left; please write to Anna.",
        "external": "Leaver One has left; please write to Anna.",
    }


async def test_reads_are_retried_through_throttling(admin, sandboxes):
    _, _, exchange = sandboxes
    exchange.faults.fail_next(2, 429, retry_after=0)
    assert await admin.mailbox(SHARED) is not None
    assert [r.status for r in exchange.request_log] == [429, 429, 200]


async def test_a_throttled_write_is_not_repeated_but_surfaces_as_transient(admin, tenant, sandboxes):
    _, _, exchange = sandboxes
    exchange.faults.fail_next(1, 429, retry_after=7)
    with pytest.raises(TransientError) as throttled:
        await admin.grant_send_as(SHARED, "cara@contoso.example")
    assert throttled.value.retry_after == 7
    assert writes(exchange) == ["Add-RecipientPermission"]
    assert "cara@contoso.example" not in exchange.permissions(tenant["id"], SHARED)["SendAs"]


async def test_a_write_whose_answer_is_lost_is_transient_and_the_change_is_there_to_read(admin, tenant, sandboxes):
    _, _, exchange = sandboxes
    exchange.faults.fail_next(1, 504, retry_after=None, after_applying=True)
    with pytest.raises(TransientError):
        await admin.grant_send_as(SHARED, "cara@contoso.example")
    assert writes(exchange) == ["Add-RecipientPermission"]  # not blindly sent again
    assert "cara@contoso.example" in await admin.send_as_holders(SHARED)  # what the ledger's check will see
    await admin.remove_send_as(SHARED, "cara@contoso.example")


async def test_a_bad_parameter_is_a_permanent_error_with_exchanges_own_words(admin):
    with pytest.raises(ExchangeError, match="parameter name 'Colour'") as refused:
        await admin.invoke("Set-Mailbox", {"Identity": SHARED, "Colour": "blue"}, mailbox=SHARED)
    assert refused.value.kind == "ParameterBindingException"


async def test_an_app_without_exchange_manage_as_app_is_refused_permanently(sandboxes, tenant, monkeypatch):
    entra, graph, exchange = sandboxes
    for name, value in entra.env().items():
        monkeypatch.setenv(name, value)
    settings = _settings(entra, graph, exchange, tenant["bare_app"].client_id, tenant["identity"])
    credentials = TenantCredentials(settings)
    admin = ExchangeAdmin(tenant["id"], settings, credentials)
    try:
        with pytest.raises(PermanentError, match="401"):
            await admin.mailbox(SHARED)
    finally:
        await admin.aclose()
        close(credentials)


async def test_one_admin_per_tenant_within_a_loop(admins, tenant):
    assert admins.for_tenant(tenant["id"]) is admins.for_tenant(tenant["id"])

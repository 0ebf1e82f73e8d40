"""The Graph adapter (msgraph-sdk + azure-identity, production code paths) against the Graph and
Entra ID sandboxes over HTTP(S): the managed identity's token is the federated assertion."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from identity_integrations.graph import GraphDirectories
from sandbox.entra_login import EntraSandbox
from sandbox.graph_tenant import GraphSandbox
from tierone.errors import PermanentError
from tierone.settings import Settings


@pytest.fixture(scope="module")
def sandboxes() -> Iterator[tuple[EntraSandbox, GraphSandbox]]:
    with EntraSandbox() as entra, GraphSandbox(entra) as graph:
        yield entra, graph


@pytest.fixture(scope="module")
def tenant(sandboxes):
    entra, graph = sandboxes
    msp = entra.add_tenant(domains=["msp.example"])
    identity = entra.add_managed_identity(msp)
    app = entra.register_app(client_secret="app-secret-value-1", federated_subject=identity.principal_id)
    tenant_id = graph.add_tenant(default_domain="contoso.example")
    graph.consent(tenant_id, app.client_id)
    anna = graph.add_user(
        tenant_id,
        "Anna Berg",
        "anna@contoso.example",
        mail="anna.berg@contoso.example",
        proxy_addresses=["SMTP:anna.berg@contoso.example", "smtp:ab@contoso.example"],
    )
    grace = graph.add_user(tenant_id, "Grace Hopper", "grace@contoso.example", mail="grace@contoso.example")
    graph.assign_role(tenant_id, grace["id"], "Global Administrator")
    graph.set_manager(tenant_id, anna["id"], grace["id"])
    unconsented = graph.add_tenant(default_domain="other.example")
    return {"id": tenant_id, "anna": anna, "grace": grace, "app": app, "identity": identity, "unconsented": unconsented}


@pytest.fixture
def directories(sandboxes, tenant, monkeypatch) -> GraphDirectories:
    entra, graph = sandboxes
    for name, value in entra.env().items():
        monkeypatch.setenv(name, value)
    settings = Settings.model_validate(
        {
            "GRAPH_BASE_URL": graph.graph_url,
            "TIERONE_GRAPH_AUTH": "federated",
            "TIERONE_APP_CLIENT_ID": tenant["app"].client_id,
            "TIERONE_MANAGED_IDENTITY_CLIENT_ID": tenant["identity"].client_id,
            "AZURE_AUTHORITY_HOST": entra.authority_host,
        }
    )
    graph.faults.clear()
    return GraphDirectories(settings)


async def test_finds_a_user_by_mail_by_proxy_address_and_by_upn(directories, tenant):
    directory = directories.for_tenant(tenant["id"])
    for address in ("anna.berg@contoso.example", "AB@contoso.example", "anna@contoso.example"):
        user = await directory.find_user_by_email(address)
        assert user is not None, address
        assert user.id == tenant["anna"]["id"]
    assert await directory.find_user_by_email("nobody@contoso.example") is None


async def test_a_quote_in_an_address_cannot_break_out_of_the_filter(directories, tenant):
    directory = directories.for_tenant(tenant["id"])
    assert await directory.find_user_by_email("x' or userPrincipalName eq 'anna@contoso.example") is None


async def test_reads_roles_and_manager(directories, tenant):
    directory = directories.for_tenant(tenant["id"])
    roles = await directory.directory_roles(tenant["grace"]["id"])
    assert [r.display_name for r in roles] == ["Global Administrator"]
    assert await directory.directory_roles(tenant["anna"]["id"]) == []
    assert await directory.manager_id(tenant["anna"]["id"]) == tenant["grace"]["id"]
    assert await directory.manager_id(tenant["grace"]["id"]) is None


async def test_sets_a_temporary_password_and_the_change_reads_back(directories, tenant, sandboxes):
    _, graph = sandboxes
    directory = directories.for_tenant(tenant["id"])
    before = (await directory.get_user(tenant["anna"]["id"])).last_password_change
    receipt = await directory.set_temporary_password(tenant["anna"]["id"], "Kp7m-Rt4x-Qw9z-Hb3n")
    after = await directory.get_user(tenant["anna"]["id"])
    assert receipt.status == 204
    assert receipt.request_id
    assert graph.password_of(tenant["id"], tenant["anna"]["id"]) == "Kp7m-Rt4x-Qw9z-Hb3n"
    assert graph.password_profile(tenant["id"], tenant["anna"]["id"])["forceChangePasswordNextSignIn"] is True
    assert after.last_password_change is not None
    assert before is None or after.last_password_change > before


async def test_an_admin_target_is_refused_by_graph_and_surfaces_as_permanent(directories, tenant):
    directory = directories.for_tenant(tenant["id"])
    with pytest.raises(PermanentError, match="Authorization_RequestDenied"):
        await directory.set_temporary_password(tenant["grace"]["id"], "Kp7m-Rt4x-Qw9z-Hb3n")


async def test_a_weak_password_is_a_permanent_error(directories, tenant):
    directory = directories.for_tenant(tenant["id"])
    with pytest.raises(PermanentError, match="complexity"):
        await directory.set_temporary_password(tenant["anna"]["id"], "password")


async def test_throttling_is_retried_by_the_sdk(directories, tenant, sandboxes):
    _, graph = sandboxes
    graph.faults.fail_next(1, 429, retry_after=1, method="GET")
    user = await directories.for_tenant(tenant["id"]).get_user(tenant["anna"]["id"])
    assert user.display_name == "Anna Berg"


async def test_a_tenant_that_never_consented_is_a_permanent_error(directories, tenant):
    with pytest.raises(PermanentError, match="cannot sign in"):
        await directories.for_tenant(tenant["unconsented"]).get_user("anyone")


async def test_the_client_secret_fallback_reaches_the_same_tenant(sandboxes, tenant, monkeypatch):
    entra, graph = sandboxes
    for name, value in entra.env().items():
        monkeypatch.setenv(name, value)
    settings = Settings.model_validate(
        {
            "GRAPH_BASE_URL": graph.graph_url,
            "TIERONE_GRAPH_AUTH": "client_secret",
            "TIERONE_APP_CLIENT_ID": tenant["app"].client_id,
            "TIERONE_APP_CLIENT_SECRET": "app-secret-value-1",
            "AZURE_AUTHORITY_HOST": entra.authority_host,
        }
    )
    user = await GraphDirectories(settings).for_tenant(tenant["id"]).get_user(tenant["anna"]["id"])
    assert user.user_principal_name == "anna@contoso.example"


def test_tenants_check_lists_per_action_what_the_tenant_has_not_granted(sandboxes, tenant, monkeypatch, capsys):
    from tierone.cli import main

    entra, graph = sandboxes
    for name, value in entra.env().items():
        monkeypatch.setenv(name, value)
    monkeypatch.setenv("TIERONE_GRAPH_AUTH", "federated")
    monkeypatch.setenv("TIERONE_APP_CLIENT_ID", tenant["app"].client_id)
    monkeypatch.setenv("TIERONE_MANAGED_IDENTITY_CLIENT_ID", tenant["identity"].client_id)
    graph.consent(
        tenant["id"],
        tenant["app"].client_id,
        ["User.Read.All", "RoleManagement.Read.Directory", "User-PasswordProfile.ReadWrite.All"],
    )
    try:
        code = main(["tenants", "check", tenant["id"]])
    finally:
        graph.consent(tenant["id"], tenant["app"].client_id)  # back to the default grant
    out = capsys.readouterr().out
    assert code == 1
    assert "password_reset       ready" in out
    assert "account_unlock       missing User.EnableDisableAccount.All" in out


def test_tenants_check_explains_a_tenant_that_never_consented(sandboxes, tenant, monkeypatch, capsys):
    from tierone.cli import main

    entra, _ = sandboxes
    for name, value in entra.env().items():
        monkeypatch.setenv(name, value)
    monkeypatch.setenv("TIERONE_APP_CLIENT_ID", tenant["app"].client_id)
    monkeypatch.setenv("TIERONE_MANAGED_IDENTITY_CLIENT_ID", tenant["identity"].client_id)
    assert main(["tenants", "check", tenant["unconsented"]]) == 2
    assert "consented" in capsys.readouterr().err

"""Contract of the Graph + Entra sandbox, stated with the real SDKs production uses.

If msgraph-sdk and azure-identity, unchanged, accept what the sandbox says (and fail the way the
real service makes them fail), code tested against the sandbox behaves the same in a tenant.
One sandbox serves the module; every test seeds a tenant of its own, so tests stay independent.
"""

from __future__ import annotations

import os
import ssl
import subprocess
import sys
import time
from collections.abc import AsyncIterator, Callable, Iterator
from dataclasses import dataclass
from typing import Any

import httpx
import pytest
from azure.core.exceptions import ClientAuthenticationError
from azure.identity import ClientAssertionCredential, ClientSecretCredential, ManagedIdentityCredential
from azure.identity.aio import ClientAssertionCredential as AioClientAssertionCredential
from azure.identity.aio import ClientSecretCredential as AioClientSecretCredential
from kiota_abstractions.base_request_configuration import RequestConfiguration
from kiota_http.middleware.options import RetryHandlerOption
from msgraph import GraphServiceClient
from msgraph.generated.models.o_data_errors.o_data_error import ODataError
from msgraph.generated.models.password_profile import PasswordProfile
from msgraph.generated.models.user import User
from msgraph.generated.users.item.user_item_request_builder import UserItemRequestBuilder
from msgraph.generated.users.users_request_builder import UsersRequestBuilder

from sandbox.entra_login import EntraSandbox, ManagedIdentity, decode_unverified
from sandbox.graph_tenant import ROLE_TEMPLATES, GraphSandbox

GRAPH_SCOPE = "https://graph.microsoft.com/.default"
APP_ID = "5a1b0c9d-7e6f-4a3b-9c8d-1e2f3a4b5c6d"
SECRET = "sandbox-app-secret"
FIC_APP_ID = "9f8e7d6c-5b4a-4392-8170-6f5e4d3c2b1a"
STRONG = "Tr1cky-Harbour-Lantern"


@dataclass
class World:
    graph: GraphSandbox
    entra: EntraSandbox
    msp_tenant: str
    identity: ManagedIdentity

    def aio_credential(self, tenant_id: str, secret: str = SECRET) -> AioClientSecretCredential:
        return AioClientSecretCredential(
            tenant_id,
            APP_ID,
            secret,
            authority=self.entra.authority_host,
            disable_instance_discovery=True,
            connection_verify=self.entra.ca_bundle_path,
        )

    def bearer(self, tenant_id: str, **kwargs: Any) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.entra.issue_access_token(tenant_id, APP_ID, **kwargs)}"}


@dataclass
class Directory:
    """A customer tenant seeded with the people the tests talk about."""

    tenant_id: str
    manager: dict[str, Any]
    alice: dict[str, Any]
    bob: dict[str, Any]
    admin: dict[str, Any]
    helpdesk: dict[str, Any]
    synced: dict[str, Any]


@pytest.fixture(scope="module")
def world() -> Iterator[World]:
    graph = GraphSandbox().start()
    entra = graph.entra
    entra.register_app(APP_ID, client_secret=SECRET)
    msp_tenant = entra.add_tenant(domains=["msp.example"])
    identity = entra.add_managed_identity(msp_tenant)
    entra.register_app(FIC_APP_ID, federated_subject=identity.principal_id, home_tenant_id=msp_tenant)
    yield World(graph, entra, msp_tenant, identity)
    graph.stop()


@pytest.fixture(autouse=True)
def calm_graph(world: World) -> Iterator[None]:
    yield
    world.graph.faults.clear()


@pytest.fixture
def directory(world: World) -> Directory:
    g = world.graph
    tid = g.add_tenant(default_domain="contoso.example")
    g.consent(tid, APP_ID)
    manager = g.add_user(tid, "Maria Manager", "maria@contoso.example", mail="maria@contoso.example")
    alice = g.add_user(
        tid,
        "Alice Able",
        "alice@contoso.example",
        mail="alice@contoso.example",
        manager_id=manager["id"],
        given_name="Alice",
        surname="Able",
        proxy_addresses=["SMTP:alice@contoso.example", "smtp:a.able@contoso-old.example"],
        other_mails=["alice.private@example.org"],
    )
    bob = g.add_user(tid, "Bob Baker", "bob@contoso.example", mail="bob@contoso.example", account_enabled=False)
    admin = g.add_user(tid, "Gina Global", "gina@contoso.example", mail="gina@contoso.example")
    g.assign_role(tid, admin["id"], "Global Administrator")
    helpdesk = g.add_user(tid, "Hank Helpdesk", "hank@contoso.example")
    g.assign_role(tid, helpdesk["id"], "Helpdesk Administrator")
    synced = g.add_user(tid, "Sam Synced", "sam@contoso.example", on_premises_sync_enabled=True)
    return Directory(tid, manager, alice, bob, admin, helpdesk, synced)


@pytest.fixture
async def graph_client(world: World, directory: Directory) -> AsyncIterator[Callable[..., GraphServiceClient]]:
    """Production's way of talking to a customer tenant, pointed at the sandbox. Clients are
    bound to the test's event loop, so each test makes its own."""
    credentials: list[AioClientSecretCredential] = []

    def make(tenant_id: str | None = None) -> GraphServiceClient:
        credential = world.aio_credential(tenant_id or directory.tenant_id)
        credentials.append(credential)
        client = GraphServiceClient(credential, scopes=[GRAPH_SCOPE])
        client.request_adapter.base_url = world.graph.graph_url
        return client

    yield make
    for credential in credentials:
        await credential.close()


def trust(world: World) -> ssl.SSLContext:
    return ssl.create_default_context(cafile=world.entra.ca_bundle_path)


def users_query(**kwargs: Any) -> RequestConfiguration[UsersRequestBuilder.UsersRequestBuilderGetQueryParameters]:
    return RequestConfiguration(query_parameters=UsersRequestBuilder.UsersRequestBuilderGetQueryParameters(**kwargs))


def select(*properties: str) -> RequestConfiguration[UserItemRequestBuilder.UserItemRequestBuilderGetQueryParameters]:
    return RequestConfiguration(
        query_parameters=UserItemRequestBuilder.UserItemRequestBuilderGetQueryParameters(select=list(properties))
    )


def new_password(password: str = STRONG, *, force_change: bool | None = None) -> User:
    return User(password_profile=PasswordProfile(password=password, force_change_password_next_sign_in=force_change))


# =============================================================================================
# Entra ID: production credential code gets tokens
# =============================================================================================


def test_the_authority_publishes_openid_metadata_over_https(world: World, directory: Directory) -> None:
    url = f"{world.entra.authority_host}/{directory.tenant_id}/v2.0/.well-known/openid-configuration"
    metadata = httpx.get(url, verify=trust(world)).json()

    assert metadata["token_endpoint"] == f"{world.entra.authority_host}/{directory.tenant_id}/oauth2/v2.0/token"
    assert metadata["issuer"] == f"https://login.microsoftonline.com/{directory.tenant_id}/v2.0"
    keys = httpx.get(metadata["jwks_uri"], verify=trust(world)).json()["keys"]
    assert keys[0]["kty"] == "RSA"


def test_a_tenant_can_be_named_by_its_domain(world: World, directory: Directory) -> None:
    url = f"{world.entra.authority_host}/contoso.example/v2.0/.well-known/openid-configuration"
    metadata = httpx.get(url, verify=trust(world)).json()
    assert directory.tenant_id in metadata["token_endpoint"]


def test_client_secret_credential_gets_an_app_only_graph_token(world: World, directory: Directory) -> None:
    credential = ClientSecretCredential(
        directory.tenant_id,
        APP_ID,
        SECRET,
        authority=world.entra.authority_host,
        disable_instance_discovery=True,  # MSAL would otherwise ask login.microsoftonline.com
        connection_verify=world.entra.ca_bundle_path,
    )
    token = credential.get_token(GRAPH_SCOPE)

    claims = decode_unverified(token.token)
    assert claims["tid"] == directory.tenant_id
    assert claims["aud"] == "https://graph.microsoft.com"
    assert claims["appid"] == APP_ID
    assert "User-PasswordProfile.ReadWrite.All" in claims["roles"]
    assert token.expires_on > time.time() + 3000


async def test_async_client_secret_credential_gets_a_token_too(world: World, directory: Directory) -> None:
    async with world.aio_credential(directory.tenant_id) as credential:
        token = await credential.get_token(GRAPH_SCOPE)
    assert decode_unverified(token.token)["tid"] == directory.tenant_id


async def test_a_wrong_secret_fails_like_entra(world: World, directory: Directory) -> None:
    async with world.aio_credential(directory.tenant_id, secret="not-the-secret") as credential:
        with pytest.raises(ClientAuthenticationError, match="AADSTS7000215"):
            await credential.get_token(GRAPH_SCOPE)


@pytest.mark.parametrize(
    ("case", "status", "error", "code"),
    [
        ("tenant without consent", 401, "invalid_client", 7000229),
        ("unknown app", 400, "unauthorized_client", 700016),
        ("unknown tenant", 400, "invalid_tenant", 90002),
        ("scope without /.default", 400, "invalid_scope", 1002012),
    ],
)
def test_token_endpoint_errors_have_aad_shape(world: World, case: str, status: int, error: str, code: int) -> None:
    tenant = world.graph.add_tenant(default_domain="fabrikam.example")  # never consented
    form = {"grant_type": "client_credentials", "client_id": APP_ID, "client_secret": SECRET, "scope": GRAPH_SCOPE}
    if case == "unknown app":
        world.entra.consent(tenant, APP_ID)
        form["client_id"] = "00000000-0000-0000-0000-00000000beef"
    elif case == "unknown tenant":
        tenant = "11111111-2222-3333-4444-555555555555"
    elif case == "scope without /.default":
        world.entra.consent(tenant, APP_ID)
        form["scope"] = "User.Read.All"

    response = httpx.post(f"{world.entra.authority_host}/{tenant}/oauth2/v2.0/token", data=form, verify=trust(world))

    body = response.json()
    assert response.status_code == status
    assert body["error"] == error
    assert body["error_codes"] == [code]
    assert body["error_description"].startswith(f"AADSTS{code}: ")
    assert {"trace_id", "correlation_id", "timestamp"} <= body.keys()


def test_managed_identity_endpoint_speaks_the_app_service_protocol(world: World, monkeypatch) -> None:
    monkeypatch.setenv("IDENTITY_ENDPOINT", world.entra.identity_endpoint)
    monkeypatch.setenv("IDENTITY_HEADER", world.entra.identity_header)

    token = ManagedIdentityCredential(client_id=world.identity.client_id).get_token(
        "api://AzureADTokenExchange/.default"
    )

    claims = decode_unverified(token.token)
    assert claims["aud"] == "api://AzureADTokenExchange"
    assert claims["sub"] == world.identity.principal_id
    assert claims["iss"] == f"https://login.microsoftonline.com/{world.msp_tenant}/v2.0"


def test_managed_identity_endpoint_demands_the_identity_header(world: World) -> None:
    params = {"resource": "api://AzureADTokenExchange", "api-version": "2019-08-01"}
    response = httpx.get(world.entra.identity_endpoint, params=params, headers={"X-IDENTITY-HEADER": "guess"})
    assert response.status_code == 401
    assert response.json()["statusCode"] == 401


async def test_secretless_production_pattern_reaches_graph_in_a_customer_tenant(
    world: World, directory: Directory, monkeypatch
) -> None:
    """graph.md §9.2: the Function's user-assigned identity is the federated credential of the
    multi-tenant app; its token is exchanged for a Graph token in the customer's tenant."""
    monkeypatch.setenv("IDENTITY_ENDPOINT", world.entra.identity_endpoint)
    monkeypatch.setenv("IDENTITY_HEADER", world.entra.identity_header)
    world.entra.consent(directory.tenant_id, FIC_APP_ID)
    managed_identity = ManagedIdentityCredential(client_id=world.identity.client_id)

    credential = AioClientAssertionCredential(
        directory.tenant_id,
        FIC_APP_ID,
        lambda: managed_identity.get_token("api://AzureADTokenExchange/.default").token,
        authority=world.entra.authority_host,
        connection_verify=world.entra.ca_bundle_path,
    )
    async with credential:
        client = GraphServiceClient(credential, scopes=[GRAPH_SCOPE])
        client.request_adapter.base_url = world.graph.graph_url
        user = await client.users.by_user_id("alice@contoso.example").get()

    assert user is not None
    assert user.id == directory.alice["id"]
    assert world.graph.request_log[-1].tenant_id == directory.tenant_id


def test_an_assertion_the_app_does_not_federate_with_is_refused(
    world: World, directory: Directory, monkeypatch
) -> None:
    monkeypatch.setenv("IDENTITY_ENDPOINT", world.entra.identity_endpoint)
    monkeypatch.setenv("IDENTITY_HEADER", world.entra.identity_header)
    stranger = world.entra.add_managed_identity(world.msp_tenant)
    world.entra.consent(directory.tenant_id, FIC_APP_ID)
    managed_identity = ManagedIdentityCredential(client_id=stranger.client_id)

    credential = ClientAssertionCredential(
        directory.tenant_id,
        FIC_APP_ID,
        lambda: managed_identity.get_token("api://AzureADTokenExchange/.default").token,
        authority=world.entra.authority_host,
        connection_verify=world.entra.ca_bundle_path,
    )
    with pytest.raises(ClientAuthenticationError, match="AADSTS70021"):
        credential.get_token(GRAPH_SCOPE)


_CHILD = """
import asyncio, base64, json, sys
from azure.identity import ClientSecretCredential, ManagedIdentityCredential
from azure.identity.aio import ClientAssertionCredential

tenant, app, secret, fic_app, identity = sys.argv[1:6]
def tid(token):
    payload = token.split(".")[1]
    return json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))["tid"]

sync = ClientSecretCredential(tenant, app, secret, disable_instance_discovery=True)
print(tid(sync.get_token("https://graph.microsoft.com/.default").token))

async def secretless():
    mi = ManagedIdentityCredential(client_id=identity)
    async with ClientAssertionCredential(
        tenant, fic_app, lambda: mi.get_token("api://AzureADTokenExchange/.default").token
    ) as credential:
        return tid((await credential.get_token("https://graph.microsoft.com/.default")).token)
print(asyncio.run(secretless()))
"""


def test_env_alone_points_unchanged_credential_code_at_the_sandbox(world: World, directory: Directory) -> None:
    """No authority= or connection_verify= kwargs: AZURE_AUTHORITY_HOST, IDENTITY_*, and the CA
    trust variables from env() are enough (they must be set before the process starts)."""
    world.entra.consent(directory.tenant_id, FIC_APP_ID)
    env = {**os.environ, **world.entra.env()}
    args = [directory.tenant_id, APP_ID, SECRET, FIC_APP_ID, world.identity.client_id]

    result = subprocess.run(  # noqa: S603 - our own interpreter and script
        [sys.executable, "-c", _CHILD, *args], env=env, capture_output=True, text=True, timeout=60, check=False
    )

    assert result.returncode == 0, result.stderr
    assert result.stdout.split() == [directory.tenant_id, directory.tenant_id]


# =============================================================================================
# Graph: authentication and the envelope of every response
# =============================================================================================


def test_every_response_carries_request_ids_and_odata_json(world: World, directory: Directory) -> None:
    response = httpx.get(
        f"{world.graph.graph_url}/users/{directory.alice['id']}",
        headers={**world.bearer(directory.tenant_id), "client-request-id": "abc-123"},
    )

    assert response.status_code == 200
    assert response.headers["client-request-id"] == "abc-123"
    assert response.headers["request-id"]
    assert response.headers["content-type"].startswith("application/json")
    assert response.json()["@odata.context"] == "https://graph.microsoft.com/v1.0/$metadata#users/$entity"


@pytest.mark.parametrize(
    ("case", "message"),
    [
        ("missing", "Access token is empty."),
        ("expired", "Lifetime validation failed, the token is expired."),
        ("wrong audience", "Access token validation failure. Invalid audience."),
        ("forged", "Access token validation failure."),
    ],
)
def test_graph_refuses_bad_tokens_with_401(world: World, directory: Directory, case: str, message: str) -> None:
    headers = {
        "missing": {},
        "expired": world.bearer(directory.tenant_id, lifetime_s=-120),
        "wrong audience": world.bearer(directory.tenant_id, resource="https://outlook.office365.com"),
        "forged": {"Authorization": "Bearer eyJhbGciOiJIUzI1NiJ9.eyJ0aWQiOiJ4In0.c2lnbmF0dXJl"},
    }[case]

    response = httpx.get(f"{world.graph.graph_url}/users", headers=headers)

    assert response.status_code == 401
    assert response.json()["error"]["code"] == "InvalidAuthenticationToken"
    assert response.json()["error"]["message"] == message
    assert response.headers["WWW-Authenticate"].startswith("Bearer ")


def test_a_token_for_a_tenant_graph_does_not_host_is_refused(world: World) -> None:
    # The MSP tenant exists in Entra (the managed identity lives there) but has no directory here.
    world.entra.consent(world.msp_tenant, APP_ID)
    response = httpx.get(f"{world.graph.graph_url}/users", headers=world.bearer(world.msp_tenant))
    assert response.status_code == 401


async def test_scopes_left_to_the_sdk_still_reach_graph(world: World, directory: Directory) -> None:
    """Without `scopes=`, kiota derives the scope from the request host (here http://127.0.0.1);
    the sandbox reads loopback scopes as Graph so such production code works unchanged."""
    async with world.aio_credential(directory.tenant_id) as credential:
        client = GraphServiceClient(credential)
        client.request_adapter.base_url = world.graph.graph_url
        user = await client.users.by_user_id(directory.alice["id"]).get()
    assert user is not None
    assert user.id == directory.alice["id"]


async def test_the_token_decides_the_tenant(world: World, directory: Directory, graph_client) -> None:
    other = world.graph.add_tenant(default_domain="fabrikam.example")
    world.graph.consent(other, APP_ID)
    stranger = world.graph.add_user(other, "Fay Fabrikam", "fay@fabrikam.example")

    with pytest.raises(ODataError) as raised:
        await graph_client().users.by_user_id(stranger["id"]).get()
    assert raised.value.response_status_code == 404


# =============================================================================================
# Graph: reading users
# =============================================================================================


async def test_get_user_by_id_or_upn_returns_the_default_projection(directory: Directory, graph_client) -> None:
    client = graph_client()

    by_id = await client.users.by_user_id(directory.alice["id"]).get()
    by_upn = await client.users.by_user_id("ALICE@contoso.example").get()

    assert by_id is not None
    assert by_upn is not None
    assert by_id.id == by_upn.id == directory.alice["id"]
    assert by_id.display_name == "Alice Able"
    assert by_id.mail == "alice@contoso.example"
    assert by_id.account_enabled is None  # not in Graph's default set: production must $select it


async def test_select_returns_exactly_the_requested_properties(directory: Directory, graph_client) -> None:
    user = (
        await graph_client()
        .users.by_user_id(directory.synced["id"])
        .get(select("id", "accountEnabled", "onPremisesSyncEnabled", "lastPasswordChangeDateTime", "otherMails"))
    )

    assert user is not None
    assert user.account_enabled is True
    assert user.on_premises_sync_enabled is True
    assert user.last_password_change_date_time is not None
    assert user.display_name is None


async def test_cloud_only_users_report_no_sync_state(directory: Directory, graph_client) -> None:
    user = await graph_client().users.by_user_id(directory.alice["id"]).get(select("onPremisesSyncEnabled"))
    assert user is not None
    assert user.on_premises_sync_enabled is None


async def test_an_unknown_user_is_a_404_odata_error(directory: Directory, graph_client) -> None:
    with pytest.raises(ODataError) as raised:
        await graph_client().users.by_user_id("nobody@contoso.example").get()

    error = raised.value
    assert error.response_status_code == 404
    assert error.error is not None
    assert error.error.code == "Request_ResourceNotFound"
    assert error.error.message == (
        "Resource 'nobody@contoso.example' does not exist or one of its queried reference-property "
        "objects are not present."
    )
    assert error.error.inner_error is not None
    assert error.error.inner_error.request_id


@pytest.mark.parametrize(
    ("expression", "expected"),
    [
        ("mail eq 'Alice@Contoso.example'", ["alice"]),
        ("userPrincipalName eq 'bob@contoso.example'", ["bob"]),
        ("proxyAddresses/any(p:p eq 'SMTP:a.able@contoso-old.example')", ["alice"]),
        ("otherMails/any(m:m eq 'alice.private@example.org')", ["alice"]),
        ("mail eq 'bob@contoso.example' or proxyAddresses/any(p:p eq 'smtp:alice@contoso.example')", ["alice", "bob"]),
        ("startswith(displayName,'Gi')", ["admin"]),
        ("accountEnabled eq false", ["bob"]),
        ("userPrincipalName in ('bob@contoso.example', 'GINA@contoso.example')", ["bob", "admin"]),
        (
            "(mail eq 'nobody@contoso.example' or mail eq 'maria@contoso.example') and accountEnabled eq true",
            ["manager"],
        ),
    ],
)
async def test_users_can_be_found_by_filter(
    directory: Directory, graph_client, expression: str, expected: list[str]
) -> None:
    page = await graph_client().users.get(users_query(filter=expression, select=["id", "displayName"]))

    assert page is not None
    assert page.value is not None
    found = {user.id for user in page.value}
    assert found == {getattr(directory, name)["id"] for name in expected}


@pytest.mark.parametrize("expression", ["jobTitle ne 'CEO'", "endswith(mail,'@contoso.example')", "city eq 'Oslo'"])
async def test_unsupported_filters_are_refused(directory: Directory, graph_client, expression: str) -> None:
    with pytest.raises(ODataError) as raised:
        await graph_client().users.get(users_query(filter=expression))
    assert raised.value.response_status_code == 400
    assert raised.value.error is not None
    assert raised.value.error.code == "Request_UnsupportedQuery"


async def test_selecting_an_unknown_property_is_a_bad_request(directory: Directory, graph_client) -> None:
    with pytest.raises(ODataError) as raised:
        await graph_client().users.get(users_query(select=["id", "favouriteColour"]))
    assert raised.value.response_status_code == 400


async def test_large_results_are_paged_with_next_links(directory: Directory, graph_client) -> None:
    client = graph_client()
    page = await client.users.get(users_query(top=2, select=["id"]))
    seen: list[str] = []
    while page is not None:
        seen += [user.id for user in page.value or [] if user.id]
        page = await client.users.with_url(page.odata_next_link).get() if page.odata_next_link else None

    assert len(seen) == len(set(seen)) == 6


async def test_manager_is_returned_as_a_directory_object(directory: Directory, graph_client) -> None:
    client = graph_client()
    manager = await client.users.by_user_id(directory.alice["id"]).manager.get()
    assert manager is not None
    assert manager.id == directory.manager["id"]
    assert isinstance(manager, User)

    with pytest.raises(ODataError) as raised:
        await client.users.by_user_id(directory.manager["id"]).manager.get()
    assert raised.value.response_status_code == 404


async def test_directory_roles_of_a_user_can_be_checked_before_acting(directory: Directory, graph_client) -> None:
    client = graph_client()

    admin_roles = await client.users.by_user_id(directory.admin["id"]).transitive_member_of.graph_directory_role.get()
    plain_roles = await client.users.by_user_id(directory.alice["id"]).transitive_member_of.graph_directory_role.get()
    all_roles = await client.directory_roles.get()

    assert admin_roles is not None
    assert plain_roles is not None
    assert all_roles is not None
    assert [(r.display_name, r.role_template_id) for r in admin_roles.value or []] == [
        ("Global Administrator", ROLE_TEMPLATES["Global Administrator"])
    ]
    assert plain_roles.value == []
    assert {r.display_name for r in all_roles.value or []} == {"Global Administrator", "Helpdesk Administrator"}


# =============================================================================================
# Graph: password reset and other writes
# =============================================================================================


async def test_password_reset_is_a_204_and_the_new_password_takes_effect(
    world: World, directory: Directory, graph_client
) -> None:
    world.graph.smart_lockout(directory.tenant_id, directory.alice["id"])
    before = directory.alice["lastPasswordChangeDateTime"]

    result = await graph_client().users.by_user_id(directory.alice["id"]).patch(new_password(force_change=True))

    assert result is None  # 204 No Content
    assert world.graph.password_of(directory.tenant_id, directory.alice["id"]) == STRONG
    assert world.graph.password_profile(directory.tenant_id, directory.alice["id"])["forceChangePasswordNextSignIn"]
    after = world.graph.user(directory.tenant_id, directory.alice["id"])["lastPasswordChangeDateTime"]
    assert after.endswith("Z")
    assert after > before
    assert not world.graph.is_locked_out(directory.tenant_id, directory.alice["id"])
    assert world.graph.request_log[-1].body["passwordProfile"]["password"] == "***"


@pytest.mark.parametrize(
    "weak",
    ["Sh0rt!", "alllowercaseletters", "Password123!", "P@ssw0rd-2024", "Alice-Is-Great-1", "Ünïcode-Pass-123"],
)
async def test_weak_or_banned_passwords_are_refused(directory: Directory, graph_client, weak: str) -> None:
    with pytest.raises(ODataError) as raised:
        await graph_client().users.by_user_id(directory.alice["id"]).patch(new_password(weak))

    assert raised.value.response_status_code == 400
    assert raised.value.error is not None
    assert raised.value.error.code == "Request_BadRequest"
    assert raised.value.error.message == (
        "The specified password does not comply with password complexity requirements. "
        "Please provide a different password."
    )


async def test_synced_users_cannot_have_their_password_reset_from_the_cloud(directory: Directory, graph_client) -> None:
    with pytest.raises(ODataError) as raised:
        await graph_client().users.by_user_id(directory.synced["id"]).patch(new_password())

    assert raised.value.response_status_code == 400
    assert raised.value.error is not None
    assert raised.value.error.message == (
        "Unable to update the specified properties for on-premises mastered Directory Sync objects "
        "or objects currently undergoing migration."
    )


async def test_a_user_administrator_app_cannot_reset_a_global_admin(directory: Directory, graph_client) -> None:
    with pytest.raises(ODataError) as raised:
        await graph_client().users.by_user_id(directory.admin["id"]).patch(new_password())

    assert raised.value.response_status_code == 403
    assert raised.value.error is not None
    assert raised.value.error.code == "Authorization_RequestDenied"
    assert raised.value.error.message == "Insufficient privileges to complete the operation."


async def test_a_user_administrator_app_can_reset_a_helpdesk_admin(
    world: World, directory: Directory, graph_client
) -> None:
    await graph_client().users.by_user_id(directory.helpdesk["id"]).patch(new_password())
    assert world.graph.password_of(directory.tenant_id, directory.helpdesk["id"]) == STRONG


async def test_what_the_app_may_reset_follows_its_own_directory_role(
    world: World, directory: Directory, graph_client
) -> None:
    client = graph_client()
    world.graph.set_app_role(directory.tenant_id, "Privileged Authentication Administrator")
    await client.users.by_user_id(directory.admin["id"]).patch(new_password())

    world.graph.set_app_role(directory.tenant_id, None)
    with pytest.raises(ODataError) as raised:
        await client.users.by_user_id(directory.alice["id"]).patch(new_password())
    assert raised.value.response_status_code == 403


async def test_application_permissions_come_from_consent(world: World, directory: Directory, graph_client) -> None:
    world.graph.consent(directory.tenant_id, APP_ID, permissions=["User.Read.All"])

    with pytest.raises(ODataError) as raised:
        await graph_client().users.by_user_id(directory.alice["id"]).patch(new_password())
    assert raised.value.response_status_code == 403


async def test_a_blocked_account_can_be_re_enabled(world: World, directory: Directory, graph_client) -> None:
    client = graph_client()
    await client.users.by_user_id(directory.bob["id"]).patch(User(account_enabled=True))

    user = await client.users.by_user_id(directory.bob["id"]).get(select("accountEnabled"))
    assert user is not None
    assert user.account_enabled is True


async def test_sign_in_sessions_can_be_revoked(directory: Directory, graph_client) -> None:
    result = await graph_client().users.by_user_id(directory.alice["id"]).revoke_sign_in_sessions.post()
    assert result is not None
    assert result.value is True


# =============================================================================================
# Graph: throttling and transient faults
# =============================================================================================


def test_throttled_responses_look_like_graphs(world: World, directory: Directory) -> None:
    world.graph.faults.fail_next(1, 429, retry_after=7)

    response = httpx.get(f"{world.graph.graph_url}/users", headers=world.bearer(directory.tenant_id))

    assert response.status_code == 429
    assert response.headers["Retry-After"] == "7"
    assert response.headers["x-ms-throttle-scope"].endswith(f"/{APP_ID}/{directory.tenant_id}")
    assert response.json()["error"]["code"] == "TooManyRequests"


async def test_the_sdk_retries_a_429_after_retry_after_and_succeeds(
    world: World, directory: Directory, graph_client
) -> None:
    client = graph_client()
    await client.users.by_user_id(directory.alice["id"]).get()  # warm up the token cache
    world.graph.faults.fail_next(1, 429, retry_after=1)

    started = time.monotonic()
    user = await client.users.by_user_id(directory.alice["id"]).get()

    assert user is not None
    assert user.id == directory.alice["id"]
    assert time.monotonic() - started >= 1.0
    assert [r.status for r in world.graph.request_log[-2:]] == [429, 200]


async def test_faults_can_target_one_method(world: World, directory: Directory, graph_client) -> None:
    client = graph_client()
    world.graph.faults.fail_next(1, 503, method="PATCH")
    no_retry: RequestConfiguration[Any] = RequestConfiguration(options=[RetryHandlerOption(max_retries=0)])

    await client.users.by_user_id(directory.alice["id"]).get()  # GETs are not affected
    with pytest.raises(ODataError) as raised:
        await client.users.by_user_id(directory.alice["id"]).patch(new_password(), no_retry)

    assert raised.value.response_status_code == 503
    assert world.graph.password_of(directory.tenant_id, directory.alice["id"]) is None


async def test_a_write_can_land_even_though_the_caller_sees_a_504(
    world: World, directory: Directory, graph_client
) -> None:
    world.graph.faults.fail_next(1, 504, retry_after=None, method="PATCH", after_applying=True)
    no_retry: RequestConfiguration[Any] = RequestConfiguration(options=[RetryHandlerOption(max_retries=0)])

    with pytest.raises(ODataError) as raised:
        await graph_client().users.by_user_id(directory.alice["id"]).patch(new_password(), no_retry)

    assert raised.value.response_status_code == 504
    assert world.graph.password_of(directory.tenant_id, directory.alice["id"]) == STRONG


def test_latency_can_be_added(world: World, directory: Directory) -> None:
    world.graph.faults.latency_ms = 300
    started = time.monotonic()
    httpx.get(f"{world.graph.graph_url}/users", headers=world.bearer(directory.tenant_id))
    assert time.monotonic() - started >= 0.3


def test_request_log_names_tenant_method_path_and_status(world: World, directory: Directory) -> None:
    httpx.get(f"{world.graph.graph_url}/users/nobody@contoso.example", headers=world.bearer(directory.tenant_id))
    record = world.graph.request_log[-1]
    assert (record.tenant_id, record.method, record.path, record.status) == (
        directory.tenant_id,
        "GET",
        "/v1.0/users/nobody@contoso.example",
        404,
    )


def test_unknown_segments_are_a_400_like_graph(world: World, directory: Directory) -> None:
    response = httpx.get(f"{world.graph.graph_url}/usres", headers=world.bearer(directory.tenant_id))
    assert response.status_code == 400
    assert response.json()["error"]["message"] == "Resource not found for the segment 'usres'."

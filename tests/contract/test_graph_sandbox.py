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
import uuid
from collections.abc import AsyncIterator, Callable, Iterable, Iterator
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
from msgraph.generated.groups.groups_request_builder import GroupsRequestBuilder
from msgraph.generated.groups.item.group_item_request_builder import GroupItemRequestBuilder
from msgraph.generated.groups.item.members.members_request_builder import MembersRequestBuilder
from msgraph.generated.groups.item.members.ref.ref_request_builder import RefRequestBuilder
from msgraph.generated.identity_protection.risky_users.dismiss.dismiss_post_request_body import (
    DismissPostRequestBody,
)
from msgraph.generated.models.assigned_license import AssignedLicense
from msgraph.generated.models.automatic_replies_setting import AutomaticRepliesSetting
from msgraph.generated.models.automatic_replies_status import AutomaticRepliesStatus
from msgraph.generated.models.body_type import BodyType
from msgraph.generated.models.date_time_time_zone import DateTimeTimeZone
from msgraph.generated.models.email_address import EmailAddress
from msgraph.generated.models.external_audience_scope import ExternalAudienceScope
from msgraph.generated.models.fido2_authentication_method import Fido2AuthenticationMethod
from msgraph.generated.models.group import Group
from msgraph.generated.models.item_body import ItemBody
from msgraph.generated.models.mailbox_settings import MailboxSettings
from msgraph.generated.models.message import Message
from msgraph.generated.models.microsoft_authenticator_authentication_method import (
    MicrosoftAuthenticatorAuthenticationMethod,
)
from msgraph.generated.models.o_data_errors.o_data_error import ODataError
from msgraph.generated.models.password_authentication_method import PasswordAuthenticationMethod
from msgraph.generated.models.password_profile import PasswordProfile
from msgraph.generated.models.phone_authentication_method import PhoneAuthenticationMethod
from msgraph.generated.models.recipient import Recipient
from msgraph.generated.models.reference_create import ReferenceCreate
from msgraph.generated.models.reference_update import ReferenceUpdate
from msgraph.generated.models.risk_detail import RiskDetail
from msgraph.generated.models.risk_level import RiskLevel
from msgraph.generated.models.risk_state import RiskState
from msgraph.generated.models.temporary_access_pass_authentication_method import (
    TemporaryAccessPassAuthenticationMethod,
)
from msgraph.generated.models.temporary_access_pass_authentication_method_configuration import (
    TemporaryAccessPassAuthenticationMethodConfiguration,
)
from msgraph.generated.models.user import User
from msgraph.generated.users.item.assign_license.assign_license_post_request_body import (
    AssignLicensePostRequestBody,
)
from msgraph.generated.users.item.send_mail.send_mail_post_request_body import SendMailPostRequestBody
from msgraph.generated.users.item.user_item_request_builder import UserItemRequestBuilder
from msgraph.generated.users.users_request_builder import UsersRequestBuilder

from sandbox.entra_login import DEFAULT_APP_PERMISSIONS, EntraSandbox, ManagedIdentity, decode_unverified
from sandbox.graph_tenant import PASSWORD_METHOD_ID, ROLE_TEMPLATES, SKU_CATALOG, GraphSandbox

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


# =============================================================================================
# Graph: creating users, profile properties, manager, domains
# =============================================================================================

E3 = SKU_CATALOG["SPE_E3"][0]
E5 = SKU_CATALOG["SPE_E5"][0]
BUSINESS_BASIC = SKU_CATALOG["O365_BUSINESS_ESSENTIALS"][0]


def odata_error(raised: pytest.ExceptionInfo[ODataError]) -> tuple[int, str, str]:
    error = raised.value
    assert error.error is not None
    return error.response_status_code or 0, error.error.code or "", error.error.message or ""


def new_user(upn: str, nickname: str | None = None, password: str = STRONG, **extra: Any) -> User:
    return User(
        account_enabled=True,
        display_name="Nora New",
        mail_nickname=nickname or upn.split("@")[0],
        user_principal_name=upn,
        password_profile=PasswordProfile(password=password, force_change_password_next_sign_in=True),
        **extra,
    )


async def test_a_user_is_created_with_the_documented_properties(
    world: World, directory: Directory, graph_client
) -> None:
    created = await graph_client().users.post(new_user("nora@contoso.example", usage_location="NO"))

    assert created is not None
    assert created.id
    assert created.user_principal_name == "nora@contoso.example"
    stored = world.graph.user(directory.tenant_id, "nora@contoso.example")
    assert stored["usageLocation"] == "NO"
    assert stored["mail"] is None  # the mailbox comes with an Exchange licence
    assert world.graph.password_profile(directory.tenant_id, created.id) == {
        "password": STRONG,
        "forceChangePasswordNextSignIn": True,
    }
    assert world.graph.request_log[-1].status == 201
    assert world.graph.request_log[-1].body["passwordProfile"]["password"] == "***"


@pytest.mark.parametrize(
    ("upn", "message"),
    [
        (
            "nora@unverified.example",
            "The domain portion of the userPrincipalName property is invalid. "
            "You must use one of the verified domain names in your organization.",
        ),
        (
            "nora@elsewhere.example",
            "The domain portion of the userPrincipalName property is invalid. "
            "You must use one of the verified domain names in your organization.",
        ),
        ("alice@contoso.example", "Another object with the same value for property userPrincipalName already exists."),
    ],
)
async def test_user_creation_refuses_unverified_domains_and_duplicates(
    world: World, directory: Directory, graph_client, upn: str, message: str
) -> None:
    world.graph.add_domain(directory.tenant_id, "unverified.example", verified=False)

    with pytest.raises(ODataError) as raised:
        await graph_client().users.post(new_user(upn, nickname="nora"))

    assert odata_error(raised) == (400, "Request_BadRequest", message)


async def test_a_verified_custom_domain_can_carry_new_users(world: World, directory: Directory, graph_client) -> None:
    world.graph.add_domain(directory.tenant_id, "contoso-brand.example", verified=True, default=True)
    created = await graph_client().users.post(new_user("nora@contoso-brand.example"))
    assert created is not None

    domains = await graph_client().domains.get()
    assert domains is not None
    by_name = {d.id: d for d in domains.value or []}
    assert by_name["contoso-brand.example"].is_default
    assert by_name["contoso-brand.example"].is_verified
    assert not by_name["contoso.example"].is_default
    assert by_name["contoso.onmicrosoft.com"].is_initial


async def test_user_creation_checks_required_properties_nickname_and_password(
    directory: Directory, graph_client
) -> None:
    client = graph_client()
    missing = User(
        account_enabled=True, display_name="No Password", mail_nickname="np", user_principal_name="np@contoso.example"
    )

    with pytest.raises(ODataError) as no_password:
        await client.users.post(missing)
    with pytest.raises(ODataError) as weak:
        await client.users.post(new_user("weak@contoso.example", password="password1"))
    with pytest.raises(ODataError) as duplicate_nickname:
        await client.users.post(new_user("alice2@contoso.example", nickname="alice"))

    assert odata_error(no_password)[:2] == (400, "Request_BadRequest")
    assert "passwordProfile" in odata_error(no_password)[2]
    assert odata_error(weak)[2] == (
        "The specified password does not comply with password complexity requirements. "
        "Please provide a different password."
    )
    assert odata_error(duplicate_nickname)[2] == (
        "Another object with the same value for property mailNickname already exists."
    )


async def test_user_creation_needs_user_readwrite_all(world: World, directory: Directory, graph_client) -> None:
    world.graph.consent(
        directory.tenant_id, APP_ID, permissions=["User.Read.All", "User-PasswordProfile.ReadWrite.All"]
    )
    with pytest.raises(ODataError) as raised:
        await graph_client().users.post(new_user("nora@contoso.example"))
    assert odata_error(raised)[:2] == (403, "Authorization_RequestDenied")


async def test_profile_properties_can_be_updated_and_usage_location_is_validated(
    world: World, directory: Directory, graph_client
) -> None:
    client = graph_client()
    await client.users.by_user_id(directory.alice["id"]).patch(
        User(usage_location="GB", job_title="Controller", department="Finance")
    )
    user = await client.users.by_user_id(directory.alice["id"]).get(select("usageLocation", "jobTitle", "department"))
    assert user is not None
    assert (user.usage_location, user.job_title, user.department) == ("GB", "Controller", "Finance")

    with pytest.raises(ODataError) as raised:
        await client.users.by_user_id(directory.alice["id"]).patch(User(usage_location="United Kingdom"))
    assert odata_error(raised) == (
        400,
        "Request_BadRequest",
        "Invalid value specified for property 'usageLocation' of resource 'User'.",
    )


async def test_the_manager_is_set_and_removed_by_reference(world: World, directory: Directory, graph_client) -> None:
    client = graph_client()
    reference = f"https://graph.microsoft.com/v1.0/users/{directory.admin['id']}"

    await client.users.by_user_id(directory.bob["id"]).manager.ref.put(ReferenceUpdate(odata_id=reference))
    assert world.graph.manager_of(directory.tenant_id, directory.bob["id"]) == directory.admin["id"]
    assert world.graph.request_log[-1].status == 204

    await client.users.by_user_id(directory.bob["id"]).manager.ref.delete()
    assert world.graph.manager_of(directory.tenant_id, directory.bob["id"]) is None
    with pytest.raises(ODataError) as raised:
        await client.users.by_user_id(directory.bob["id"]).manager.ref.delete()
    assert odata_error(raised)[0] == 404


async def test_a_manager_reference_must_exist_and_synced_users_keep_theirs(directory: Directory, graph_client) -> None:
    client = graph_client()
    ghost = "https://graph.microsoft.com/v1.0/users/00000000-0000-0000-0000-000000000001"
    real = f"https://graph.microsoft.com/v1.0/directoryObjects/{directory.manager['id']}"

    with pytest.raises(ODataError) as missing:
        await client.users.by_user_id(directory.bob["id"]).manager.ref.put(ReferenceUpdate(odata_id=ghost))
    with pytest.raises(ODataError) as synced:
        await client.users.by_user_id(directory.synced["id"]).manager.ref.put(ReferenceUpdate(odata_id=real))

    assert odata_error(missing)[:2] == (404, "Request_ResourceNotFound")
    assert odata_error(synced)[:2] == (400, "Request_BadRequest")


async def test_organization_lists_verified_domains_with_its_own_permission(
    world: World, directory: Directory, graph_client
) -> None:
    world.graph.add_domain(directory.tenant_id, "pending.example", verified=False)
    with pytest.raises(ODataError) as raised:
        await graph_client().organization.get()
    assert odata_error(raised)[0] == 403  # Domain.Read.All is TierOne's choice; /organization needs more

    world.graph.consent(directory.tenant_id, APP_ID, permissions=[*DEFAULT_APP_PERMISSIONS, "Organization.Read.All"])
    orgs = await graph_client().organization.get()
    assert orgs is not None
    org = (orgs.value or [])[0]
    assert org.id == directory.tenant_id
    names = {d.name for d in org.verified_domains or []}
    assert names == {"contoso.example", "contoso.onmicrosoft.com"}


# =============================================================================================
# Graph: Identity Protection and smart lockout
# =============================================================================================


async def test_a_risky_user_can_be_read_and_dismissed(world: World, directory: Directory, graph_client) -> None:
    world.graph.set_premium(directory.tenant_id, p2=True)
    world.graph.set_user_risk(directory.tenant_id, directory.alice["id"], "high")
    client = graph_client()

    risky = await client.identity_protection.risky_users.by_risky_user_id(directory.alice["id"]).get()
    assert risky is not None
    assert (risky.risk_level, risky.risk_state) == (RiskLevel.High, RiskState.AtRisk)

    result = await client.identity_protection.risky_users.dismiss.post(
        DismissPostRequestBody(user_ids=[directory.alice["id"]])
    )
    assert result is None  # 204
    risky = await client.identity_protection.risky_users.by_risky_user_id(directory.alice["id"]).get()
    assert risky is not None
    assert (risky.risk_level, risky.risk_state) == (RiskLevel.None_, RiskState.Dismissed)
    assert risky.risk_detail == RiskDetail.AdminDismissedAllRiskForUser


async def test_identity_protection_needs_entra_id_p2(world: World, directory: Directory, graph_client) -> None:
    world.graph.set_user_risk(directory.tenant_id, directory.alice["id"], "medium")
    client = graph_client()

    with pytest.raises(ODataError) as read:
        await client.identity_protection.risky_users.by_risky_user_id(directory.alice["id"]).get()
    with pytest.raises(ODataError) as dismiss:
        await client.identity_protection.risky_users.dismiss.post(
            DismissPostRequestBody(user_ids=[directory.alice["id"]])
        )

    assert (
        odata_error(read) == odata_error(dismiss) == (403, "Forbidden", "Your tenant is not licensed for this feature.")
    )


async def test_buying_a_p2_sku_licenses_identity_protection(world: World, directory: Directory, graph_client) -> None:
    world.graph.add_subscription(directory.tenant_id, "SPE_E5", seats=5)
    world.graph.set_user_risk(directory.tenant_id, directory.bob["id"], "low")
    risky = await graph_client().identity_protection.risky_users.by_risky_user_id(directory.bob["id"]).get()
    assert risky is not None
    assert risky.risk_level == RiskLevel.Low


async def test_an_admin_password_reset_clears_smart_lockout_and_remediates_risk(
    world: World, directory: Directory, graph_client
) -> None:
    world.graph.set_premium(directory.tenant_id, p2=True)
    world.graph.set_user_risk(directory.tenant_id, directory.alice["id"], "high")
    world.graph.smart_lockout(directory.tenant_id, directory.alice["id"])

    await graph_client().users.by_user_id(directory.alice["id"]).patch(new_password(force_change=True))

    assert not world.graph.is_locked_out(directory.tenant_id, directory.alice["id"])
    risk = world.graph.risk_of(directory.tenant_id, directory.alice["id"])
    assert risk is not None
    assert (risk["riskState"], risk["riskDetail"]) == ("remediated", "adminGeneratedTemporaryPassword")


# =============================================================================================
# Graph: authentication methods and Temporary Access Pass
# =============================================================================================


@pytest.fixture
def enrolled(world: World, directory: Directory) -> dict[str, str]:
    """Alice's MFA methods: Authenticator (default), mobile and alternate mobile, a FIDO2 key."""
    g, tid, alice = world.graph, directory.tenant_id, directory.alice["id"]
    return {
        "authenticator": g.add_auth_method(tid, alice, "microsoftAuthenticator", default=True),
        "mobile": g.add_auth_method(tid, alice, "phone", phone_type="mobile", phone_number="+47 41234567"),
        "alternate": g.add_auth_method(tid, alice, "phone", phone_type="alternateMobile", phone_number="+47 91234567"),
        "fido2": g.add_auth_method(tid, alice, "fido2"),
    }


async def test_methods_are_listed_polymorphically(directory: Directory, enrolled: dict[str, str], graph_client) -> None:
    page = await graph_client().users.by_user_id(directory.alice["id"]).authentication.methods.get()

    assert page is not None
    methods = page.value or []
    assert isinstance(methods[0], PasswordAuthenticationMethod)
    assert methods[0].id == PASSWORD_METHOD_ID
    assert {type(m) for m in methods[1:]} == {
        MicrosoftAuthenticatorAuthenticationMethod,
        PhoneAuthenticationMethod,
        Fido2AuthenticationMethod,
    }
    phones = {
        m.phone_type.value: m.phone_number for m in methods if isinstance(m, PhoneAuthenticationMethod) and m.phone_type
    }
    assert phones == {"mobile": "+47 41234567", "alternateMobile": "+47 91234567"}


async def test_type_specific_deletes_remove_methods(
    world: World, directory: Directory, enrolled: dict[str, str], graph_client
) -> None:
    auth = graph_client().users.by_user_id(directory.alice["id"]).authentication

    await auth.fido2_methods.by_fido2_authentication_method_id(enrolled["fido2"]).delete()
    await auth.phone_methods.by_phone_authentication_method_id(enrolled["alternate"]).delete()
    await auth.phone_methods.by_phone_authentication_method_id(enrolled["mobile"]).delete()

    remaining = {m["id"] for m in world.graph.auth_methods(directory.tenant_id, directory.alice["id"])}
    assert remaining == {PASSWORD_METHOD_ID, enrolled["authenticator"]}
    with pytest.raises(ODataError) as raised:
        await auth.fido2_methods.by_fido2_authentication_method_id(enrolled["fido2"]).delete()
    assert odata_error(raised)[0] == 404


async def test_the_default_method_goes_last(
    world: World, directory: Directory, enrolled: dict[str, str], graph_client
) -> None:
    auth = graph_client().users.by_user_id(directory.alice["id"]).authentication
    authenticator = auth.microsoft_authenticator_methods.by_microsoft_authenticator_authentication_method_id(
        enrolled["authenticator"]
    )

    with pytest.raises(ODataError) as raised:
        await authenticator.delete()
    assert odata_error(raised) == (
        400,
        "badRequest",
        "Cannot delete default method with other methods configured. Please change default method before deletion.",
    )

    await auth.fido2_methods.by_fido2_authentication_method_id(enrolled["fido2"]).delete()
    for key in ("alternate", "mobile"):
        await auth.phone_methods.by_phone_authentication_method_id(enrolled[key]).delete()
    await authenticator.delete()
    assert world.graph.default_method(directory.tenant_id, directory.alice["id"]) is None


async def test_mobile_cannot_go_before_alternate_mobile(
    directory: Directory, enrolled: dict[str, str], graph_client
) -> None:
    phones = graph_client().users.by_user_id(directory.alice["id"]).authentication.phone_methods
    with pytest.raises(ODataError) as raised:
        await phones.by_phone_authentication_method_id(enrolled["mobile"]).delete()
    status, code, message = odata_error(raised)
    assert (status, code) == (400, "badRequest")
    assert "alternateMobile" in message


def test_the_generic_method_delete_is_delegated_only(
    world: World, directory: Directory, enrolled: dict[str, str]
) -> None:
    """graph.md §3.2: app-only code must use the type-specific collections (the SDK has no
    builder for this call, which is why it goes through httpx)."""
    url = f"{world.graph.graph_url}/users/{directory.alice['id']}/authentication/methods/{enrolled['fido2']}"
    response = httpx.delete(url, headers=world.bearer(directory.tenant_id))

    assert response.status_code == 403
    assert response.json()["error"]["code"] == "Authorization_RequestDenied"
    assert len(world.graph.auth_methods(directory.tenant_id, directory.alice["id"])) == 5


async def test_method_deletes_need_the_type_permission(
    world: World, directory: Directory, enrolled: dict[str, str], graph_client
) -> None:
    world.graph.consent(
        directory.tenant_id,
        APP_ID,
        permissions=["UserAuthenticationMethod.Read.All", "UserAuthMethod-Phone.ReadWrite.All"],
    )
    auth = graph_client().users.by_user_id(directory.alice["id"]).authentication

    with pytest.raises(ODataError) as raised:
        await auth.fido2_methods.by_fido2_authentication_method_id(enrolled["fido2"]).delete()
    await auth.phone_methods.by_phone_authentication_method_id(enrolled["alternate"]).delete()

    assert odata_error(raised)[0] == 403


async def test_the_tap_policy_is_readable_and_disabled_in_a_new_tenant(directory: Directory, graph_client) -> None:
    configs = graph_client().policies.authentication_methods_policy.authentication_method_configurations
    policy = await configs.by_authentication_method_configuration_id("temporaryAccessPass").get()

    assert isinstance(policy, TemporaryAccessPassAuthenticationMethodConfiguration)
    assert policy.state is not None
    assert policy.state.value == "disabled"
    assert (policy.minimum_lifetime_in_minutes, policy.maximum_lifetime_in_minutes) == (60, 480)
    assert policy.default_length == 8


async def test_a_tap_is_shown_once_and_replaces_the_previous_one(
    world: World, directory: Directory, graph_client
) -> None:
    world.graph.set_tap_policy(
        directory.tenant_id, enabled=True, default_lifetime=60, min_lifetime=30, max_lifetime=120
    )
    taps = graph_client().users.by_user_id(directory.alice["id"]).authentication.temporary_access_pass_methods

    first = await taps.post(TemporaryAccessPassAuthenticationMethod(lifetime_in_minutes=30, is_usable_once=True))
    second = await taps.post(TemporaryAccessPassAuthenticationMethod())

    assert first is not None
    assert second is not None
    assert first.temporary_access_pass
    assert len(first.temporary_access_pass) == 8
    assert (second.lifetime_in_minutes, second.is_usable_once, second.is_usable) == (60, False, True)
    assert second.method_usability_reason == "EnabledByPolicy"
    listed = await taps.get()
    assert listed is not None
    assert [(t.id, t.temporary_access_pass) for t in listed.value or []] == [(second.id, None)]
    tap = world.graph.tap_of(directory.tenant_id, directory.alice["id"])
    assert tap is not None
    assert tap["temporaryAccessPass"] == second.temporary_access_pass


@pytest.mark.parametrize("case", ["disabled", "out of scope", "excluded", "guest"])
async def test_tap_creation_follows_the_policy(world: World, directory: Directory, graph_client, case: str) -> None:
    g, tid = world.graph, directory.tenant_id
    pilots = g.add_group(tid, "TAP pilots")
    target = directory.alice["id"]
    if case == "out of scope":
        g.set_tap_policy(tid, include_groups=[pilots])
    elif case == "excluded":
        g.add_member(tid, pilots, target)
        g.set_tap_policy(tid, exclude_groups=["TAP pilots"])
    elif case == "guest":
        target = g.add_user(tid, "Gus Guest", "gus_ext#EXT#@contoso.example", user_type="Guest")["id"]
        g.set_tap_policy(tid)

    with pytest.raises(ODataError) as raised:
        await (
            graph_client()
            .users.by_user_id(target)
            .authentication.temporary_access_pass_methods.post(TemporaryAccessPassAuthenticationMethod())
        )

    expected = (
        "Temporary Access Pass cannot be added to an external guest user."
        if case == "guest"
        else "Converged UserCredentialPolicy does not allow creating or updating this authentication method. "
        "AuthMethodType [TemporaryAccessPass]."
    )
    assert odata_error(raised) == (400, "badRequest", expected)


async def test_tap_scope_can_be_a_group(world: World, directory: Directory, graph_client) -> None:
    pilots = world.graph.add_group(directory.tenant_id, "TAP pilots")
    world.graph.add_member(directory.tenant_id, pilots, directory.alice["id"])
    world.graph.set_tap_policy(directory.tenant_id, include_groups=[pilots])
    tap = (
        await graph_client()
        .users.by_user_id(directory.alice["id"])
        .authentication.temporary_access_pass_methods.post(TemporaryAccessPassAuthenticationMethod())
    )
    assert tap is not None
    assert tap.is_usable


@pytest.mark.parametrize("lifetime", [5, 59, 481, 50_000])
async def test_tap_lifetime_must_fit_the_policy(
    world: World, directory: Directory, graph_client, lifetime: int
) -> None:
    world.graph.set_tap_policy(directory.tenant_id)
    with pytest.raises(ODataError) as raised:
        await (
            graph_client()
            .users.by_user_id(directory.alice["id"])
            .authentication.temporary_access_pass_methods.post(
                TemporaryAccessPassAuthenticationMethod(lifetime_in_minutes=lifetime)
            )
        )
    assert odata_error(raised)[:2] == (400, "badRequest")
    assert world.graph.tap_of(directory.tenant_id, directory.alice["id"]) is None


# =============================================================================================
# Graph: groups
# =============================================================================================


@dataclass
class Groups:
    sales: str
    team: str
    all_staff: str
    mail_security: str
    dynamic: str
    synced: str
    admins: str


@pytest.fixture
def groups(world: World, directory: Directory) -> Groups:
    g, tid = world.graph, directory.tenant_id
    sales = g.add_group(tid, "Sales")
    found = Groups(
        sales=sales,
        team=g.add_group(tid, "Sales Team", kind="m365"),
        all_staff=g.add_group(tid, "All Staff", kind="distribution", mail="allstaff@contoso.example"),
        mail_security=g.add_group(tid, "Finance Share", kind="mail_security"),
        dynamic=g.add_group(tid, "Everyone in Sales", kind="dynamic"),
        synced=g.add_group(tid, "HQ Printers", on_prem_synced=True),
        admins=g.add_group(tid, "Tier0 Admins", role_assignable=True),
    )
    g.add_member(tid, sales, directory.alice["id"])
    g.add_member(tid, found.team, sales)  # nested
    return found


def groups_query(**kwargs: Any) -> RequestConfiguration[GroupsRequestBuilder.GroupsRequestBuilderGetQueryParameters]:
    return RequestConfiguration(query_parameters=GroupsRequestBuilder.GroupsRequestBuilderGetQueryParameters(**kwargs))


@pytest.mark.parametrize(
    ("expression", "expected"),
    [
        ("displayName eq 'sales'", {"Sales"}),
        ("startswith(displayName,'Sales')", {"Sales", "Sales Team"}),
        ("mail eq 'allstaff@contoso.example'", {"All Staff"}),
        ("groupTypes/any(c:c eq 'Unified')", {"Sales Team"}),
    ],
)
async def test_groups_can_be_found_by_filter(groups: Groups, graph_client, expression: str, expected: set[str]) -> None:
    page = await graph_client().groups.get(groups_query(filter=expression, select=["id", "displayName"]))
    assert page is not None
    assert {g.display_name for g in page.value or []} == expected
    assert all(g.mail is None for g in page.value or [])  # not selected


async def test_a_group_is_classified_before_acting(
    world: World, directory: Directory, groups: Groups, graph_client
) -> None:
    world.graph.add_subscription(directory.tenant_id, "SPE_E3", seats=10)
    licensed = world.graph.add_group(directory.tenant_id, "E3 users", licenses=["SPE_E3"])
    fields = ["id", "displayName", "groupTypes", "mailEnabled", "securityEnabled", "onPremisesSyncEnabled",
              "membershipRule", "isAssignableToRole", "assignedLicenses", "mail"]  # fmt: skip
    query = RequestConfiguration(
        query_parameters=GroupItemRequestBuilder.GroupItemRequestBuilderGetQueryParameters(select=fields)
    )
    client = graph_client()

    async def classify(group_id: str) -> Group:
        group = await client.groups.by_group_id(group_id).get(query)
        assert group is not None
        return group

    dl, dynamic, synced, admins, e3 = [
        await classify(g) for g in (groups.all_staff, groups.dynamic, groups.synced, groups.admins, licensed)
    ]
    assert (dl.mail_enabled, dl.security_enabled, dl.group_types) == (True, False, [])
    assert dynamic.group_types == ["DynamicMembership"]
    assert dynamic.membership_rule
    assert synced.on_premises_sync_enabled is True
    assert admins.is_assignable_to_role is True
    assert [str(lic.sku_id) for lic in e3.assigned_licenses or []] == [E3]
    default = await client.groups.by_group_id(licensed).get()
    assert default is not None
    assert default.assigned_licenses is None  # not in Graph's default projection


async def test_members_are_added_and_removed_by_reference(
    world: World, directory: Directory, groups: Groups, graph_client
) -> None:
    members = graph_client().groups.by_group_id(groups.sales).members
    reference = f"https://graph.microsoft.com/v1.0/directoryObjects/{directory.bob['id']}"

    await members.ref.post(ReferenceCreate(odata_id=reference))
    assert world.graph.members(directory.tenant_id, groups.sales) == [directory.alice["id"], directory.bob["id"]]
    with pytest.raises(ODataError) as again:
        await members.ref.post(ReferenceCreate(odata_id=reference))
    assert odata_error(again) == (
        400,
        "Request_BadRequest",
        "One or more added object references already exist for the following modified properties: 'members'.",
    )

    await members.by_directory_object_id(directory.bob["id"]).ref.delete()
    assert world.graph.members(directory.tenant_id, groups.sales) == [directory.alice["id"]]
    with pytest.raises(ODataError) as absent:
        await members.by_directory_object_id(directory.bob["id"]).ref.delete()
    assert odata_error(absent)[:2] == (404, "Request_ResourceNotFound")


@pytest.mark.parametrize(
    ("which", "message"),
    [
        ("all_staff", "Cannot Update a mail-enabled security groups and or distribution list."),
        ("mail_security", "Cannot Update a mail-enabled security groups and or distribution list."),
        ("dynamic", "Insufficient privileges to complete the operation."),
        (
            "synced",
            "Unable to update the specified properties for on-premises mastered Directory Sync objects "
            "or objects currently undergoing migration.",
        ),
    ],
)
async def test_groups_graph_cannot_change_are_refused(
    world: World, directory: Directory, groups: Groups, graph_client, which: str, message: str
) -> None:
    group_id = getattr(groups, which)
    members = graph_client().groups.by_group_id(group_id).members
    reference = f"https://graph.microsoft.com/v1.0/directoryObjects/{directory.bob['id']}"

    with pytest.raises(ODataError) as raised:
        await members.ref.post(ReferenceCreate(odata_id=reference))

    assert odata_error(raised) == (400, "Request_BadRequest", message)
    assert world.graph.members(directory.tenant_id, group_id) == []


async def test_role_assignable_groups_need_role_management_permission(
    world: World, directory: Directory, groups: Groups, graph_client
) -> None:
    reference = ReferenceCreate(odata_id=f"https://graph.microsoft.com/v1.0/directoryObjects/{directory.bob['id']}")
    with pytest.raises(ODataError) as raised:
        await graph_client().groups.by_group_id(groups.admins).members.ref.post(reference)
    assert odata_error(raised)[:2] == (403, "Authorization_RequestDenied")

    world.graph.consent(directory.tenant_id, APP_ID, [*DEFAULT_APP_PERMISSIONS, "RoleManagement.ReadWrite.Directory"])
    await graph_client().groups.by_group_id(groups.admins).members.ref.post(reference)
    # Members of role-assignable groups are privileged targets: a User Administrator app may no
    # longer reset them (graph.md §1.3).
    with pytest.raises(ODataError) as reset:
        await graph_client().users.by_user_id(directory.bob["id"]).patch(new_password())
    assert odata_error(reset)[0] == 403


async def test_member_of_lists_direct_and_transitive_groups(directory: Directory, groups: Groups, graph_client) -> None:
    user = graph_client().users.by_user_id(directory.alice["id"])
    direct = await user.member_of.graph_group.get()
    transitive = await user.transitive_member_of.graph_group.get()
    everything = await user.transitive_member_of.get()

    assert direct is not None
    assert transitive is not None
    assert everything is not None
    assert [g.display_name for g in direct.value or []] == ["Sales"]
    assert {g.display_name for g in transitive.value or []} == {"Sales", "Sales Team"}
    assert {type(o) for o in everything.value or []} == {Group}


async def test_group_members_are_paged(world: World, directory: Directory, groups: Groups, graph_client) -> None:
    for user in (directory.bob, directory.manager, directory.helpdesk):
        world.graph.add_member(directory.tenant_id, groups.sales, user["id"])
    members = graph_client().groups.by_group_id(groups.sales).members
    query = RequestConfiguration(query_parameters=MembersRequestBuilder.MembersRequestBuilderGetQueryParameters(top=3))

    page = await members.get(query)
    seen: list[str] = []
    while page is not None:
        seen += [m.id for m in page.value or [] if m.id]
        page = await members.with_url(page.odata_next_link).get() if page.odata_next_link else None

    assert seen == world.graph.members(directory.tenant_id, groups.sales)
    assert len(seen) == 4


def test_deleting_a_member_without_ref_deletes_the_user(world: World, directory: Directory, groups: Groups) -> None:
    """graph.md §4.1: `DELETE /groups/{id}/members/{id}` (no `/$ref`) addresses the member object
    itself. With User.ReadWrite.All in its consent the app deletes the person, not the membership."""
    url = f"{world.graph.graph_url}/groups/{groups.sales}/members/{directory.alice['id']}"

    response = httpx.delete(url, headers=world.bearer(directory.tenant_id))

    assert response.status_code == 204
    assert [u["id"] for u in world.graph.deleted_users(directory.tenant_id)] == [directory.alice["id"]]
    gone = httpx.get(
        f"{world.graph.graph_url}/users/{directory.alice['id']}", headers=world.bearer(directory.tenant_id)
    )
    assert gone.status_code == 404


def test_without_delete_rights_the_wrong_call_is_a_403(world: World, directory: Directory, groups: Groups) -> None:
    world.graph.consent(directory.tenant_id, APP_ID, ["User.Read.All", "GroupMember.ReadWrite.All"])
    url = f"{world.graph.graph_url}/groups/{groups.sales}/members/{directory.alice['id']}"
    response = httpx.delete(url, headers=world.bearer(directory.tenant_id))
    assert response.status_code == 403
    assert world.graph.members(directory.tenant_id, groups.sales) == [directory.alice["id"]]


# =============================================================================================
# Graph: licensing
# =============================================================================================


def assign(add: Iterable[str] = (), remove: Iterable[str] = ()) -> AssignLicensePostRequestBody:
    return AssignLicensePostRequestBody(
        add_licenses=[AssignedLicense(sku_id=uuid.UUID(s), disabled_plans=[]) for s in add],
        remove_licenses=[uuid.UUID(s) for s in remove],
    )


@pytest.fixture
def skus(world: World, directory: Directory) -> None:
    world.graph.add_subscription(directory.tenant_id, "SPE_E3", seats=2)
    world.graph.add_subscription(directory.tenant_id, "SPE_E5", seats=1)
    world.graph.add_subscription(directory.tenant_id, "O365_BUSINESS_ESSENTIALS", seats=1)


async def test_subscribed_skus_report_seats_and_plans(
    world: World, directory: Directory, skus: None, graph_client
) -> None:
    page = await graph_client().subscribed_skus.get()
    assert page is not None
    by_part = {s.sku_part_number: s for s in page.value or []}
    e3 = by_part["SPE_E3"]
    assert str(e3.sku_id) == E3
    assert e3.prepaid_units is not None
    assert (e3.prepaid_units.enabled, e3.consumed_units, e3.capability_status) == (2, 0, "Enabled")
    assert "EXCHANGE_S_ENTERPRISE" in {p.service_plan_name for p in e3.service_plans or []}
    assert e3.applies_to == "User"


async def test_licenses_are_assigned_and_swapped_atomically(
    world: World, directory: Directory, skus: None, graph_client
) -> None:
    client = graph_client()
    user = client.users.by_user_id(directory.bob["id"])
    await user.patch(User(usage_location="NO"))

    result = await user.assign_license.post(assign(add=[E3]))
    assert result is not None
    assert result.id == directory.bob["id"]
    swapped = await user.assign_license.post(assign(add=[E5], remove=[E3]))
    assert swapped is not None

    details = await user.license_details.get()
    assert details is not None
    assert [d.sku_part_number for d in details.value or []] == ["SPE_E5"]
    selected = await user.get(select("assignedLicenses", "licenseAssignmentStates"))
    assert selected is not None
    assert [str(lic.sku_id) for lic in selected.assigned_licenses or []] == [E5]
    assert [(s.assigned_by_group, s.state) for s in selected.license_assignment_states or []] == [(None, "Active")]


async def test_an_exchange_licence_provisions_the_mailbox(
    world: World, directory: Directory, skus: None, graph_client
) -> None:
    client = graph_client()
    created = await client.users.post(new_user("nora@contoso.example", usage_location="NO"))
    assert created is not None
    assert created.id
    with pytest.raises(ODataError) as before:
        await client.users.by_user_id(created.id).mailbox_settings.get()
    assert odata_error(before)[:2] == (404, "MailboxNotEnabledForRESTAPI")

    await client.users.by_user_id(created.id).assign_license.post(assign(add=[BUSINESS_BASIC]))

    assert world.graph.user(directory.tenant_id, created.id)["mail"] == "nora@contoso.example"
    settings = await client.users.by_user_id(created.id).mailbox_settings.get()
    assert settings is not None


@pytest.mark.parametrize(
    ("case", "message"),
    [
        ("no usage location", "License assignment cannot be done for user with invalid usage location."),
        ("no free seat", f"Subscription with SKU {E5} does not have any available licenses."),
        ("unknown sku", "License 11111111-2222-3333-4444-555555555555 does not correspond to a valid company License."),
    ],
)
async def test_licence_assignment_errors_change_nothing(
    world: World, directory: Directory, skus: None, graph_client, case: str, message: str
) -> None:
    client = graph_client()
    user = client.users.by_user_id(directory.bob["id"])
    if case != "no usage location":
        await user.patch(User(usage_location="NO"))
        await user.assign_license.post(assign(add=[E3]))
    if case == "no free seat":
        await client.users.by_user_id(directory.alice["id"]).patch(User(usage_location="NO"))
        await client.users.by_user_id(directory.alice["id"]).assign_license.post(assign(add=[E5]))
    before = world.graph.licenses_of(directory.tenant_id, directory.bob["id"])
    wanted = "11111111-2222-3333-4444-555555555555" if case == "unknown sku" else E5

    with pytest.raises(ODataError) as raised:
        await user.assign_license.post(assign(add=[wanted], remove=before))

    assert odata_error(raised) == (400, "Request_BadRequest", message)
    assert world.graph.licenses_of(directory.tenant_id, directory.bob["id"]) == before


async def test_group_based_licences_are_inherited_and_cannot_be_removed_directly(
    world: World, directory: Directory, skus: None, graph_client
) -> None:
    licensed = world.graph.add_group(directory.tenant_id, "E3 users", licenses=["SPE_E3"])
    world.graph.add_member(directory.tenant_id, licensed, directory.alice["id"])
    user = graph_client().users.by_user_id(directory.alice["id"])

    selected = await user.get(select("assignedLicenses", "licenseAssignmentStates"))
    assert selected is not None
    assert [str(s.assigned_by_group) for s in selected.license_assignment_states or []] == [licensed]
    with pytest.raises(ODataError) as raised:
        await user.assign_license.post(assign(remove=[E3]))
    assert odata_error(raised)[2] == (
        "User license is inherited from a group membership and it cannot be removed directly from the user."
    )

    world.graph.remove_member(directory.tenant_id, licensed, directory.alice["id"])
    assert world.graph.licenses_of(directory.tenant_id, directory.alice["id"]) == []


def test_a_group_licence_without_seats_is_an_error_state(world: World, directory: Directory, skus: None) -> None:
    licensed = world.graph.add_group(directory.tenant_id, "E5 users", licenses=["SPE_E5"])
    world.graph.add_member(directory.tenant_id, licensed, directory.alice["id"])
    world.graph.add_member(directory.tenant_id, licensed, directory.bob["id"])

    bob = world.graph.user(directory.tenant_id, directory.bob["id"])
    assert bob["assignedLicenses"] == []
    assert [(s["state"], s["error"]) for s in bob["licenseAssignmentStates"]] == [("Error", "CountViolation")]
    assert world.graph.licenses_of(directory.tenant_id, directory.alice["id"]) == [E5]


# =============================================================================================
# Graph: mailbox settings and mail
# =============================================================================================


async def test_automatic_replies_round_trip(world: World, directory: Directory, graph_client) -> None:
    settings = graph_client().users.by_user_id(directory.alice["id"]).mailbox_settings
    before = await settings.get()
    assert before is not None
    assert before.automatic_replies_setting is not None
    assert before.automatic_replies_setting.status == AutomaticRepliesStatus.Disabled

    updated = await settings.patch(
        MailboxSettings(
            automatic_replies_setting=AutomaticRepliesSetting(
                status=AutomaticRepliesStatus.Scheduled,
                external_audience=ExternalAudienceScope.ContactsOnly,
                internal_reply_message="Back Monday",
                external_reply_message="Out of office",
                scheduled_start_date_time=DateTimeTimeZone(date_time="2030-07-01T08:00:00", time_zone="UTC"),
                scheduled_end_date_time=DateTimeTimeZone(date_time="2030-07-14T17:00:00", time_zone="UTC"),
            )
        )
    )

    assert updated is not None
    replies = updated.automatic_replies_setting
    assert replies is not None
    assert (replies.status, replies.external_audience) == (
        AutomaticRepliesStatus.Scheduled,
        ExternalAudienceScope.ContactsOnly,
    )
    assert replies.scheduled_end_date_time is not None
    assert replies.scheduled_end_date_time.date_time == "2030-07-14T17:00:00"
    stored = world.graph.mailbox_settings(directory.tenant_id, directory.alice["id"])
    assert stored is not None
    assert stored["automaticRepliesSetting"]["internalReplyMessage"] == "Back Monday"


async def test_mailbox_settings_need_a_mailbox(directory: Directory, graph_client) -> None:
    with pytest.raises(ODataError) as raised:
        await graph_client().users.by_user_id(directory.synced["id"]).mailbox_settings.get()
    assert odata_error(raised) == (
        404,
        "MailboxNotEnabledForRESTAPI",
        "The mailbox is either inactive, soft-deleted, or is hosted on-premise.",
    )


async def test_send_mail_is_accepted_and_kept_in_the_outbox(world: World, directory: Directory, graph_client) -> None:
    message = Message(
        subject="Your password was reset",
        body=ItemBody(content_type=BodyType.Text, content="Use the link to sign in."),
        to_recipients=[Recipient(email_address=EmailAddress(address="maria@contoso.example"))],
    )

    result = (
        await graph_client()
        .users.by_user_id(directory.admin["id"])
        .send_mail.post(SendMailPostRequestBody(message=message, save_to_sent_items=False))
    )

    assert result is None
    assert world.graph.request_log[-1].status == 202
    [sent] = world.graph.sent_mail(directory.tenant_id)
    assert (sent["from"], sent["to"], sent["subject"]) == (
        "gina@contoso.example",
        ["maria@contoso.example"],
        "Your password was reset",
    )
    assert sent["saveToSentItems"] is False


async def test_send_mail_needs_a_recipient_and_mail_send(world: World, directory: Directory, graph_client) -> None:
    empty = SendMailPostRequestBody(message=Message(subject="Hi", body=ItemBody(content="x")))
    with pytest.raises(ODataError) as raised:
        await graph_client().users.by_user_id(directory.admin["id"]).send_mail.post(empty)
    assert odata_error(raised)[:2] == (400, "ErrorInvalidRecipients")

    world.graph.consent(directory.tenant_id, APP_ID, ["User.Read.All"])
    with pytest.raises(ODataError) as denied:
        await graph_client().users.by_user_id(directory.admin["id"]).send_mail.post(empty)
    assert odata_error(denied)[0] == 403
    assert world.graph.sent_mail(directory.tenant_id) == []


# =============================================================================================
# Graph: a 429 storm
# =============================================================================================


def test_a_storm_answers_every_call_429_until_it_passes(world: World, directory: Directory) -> None:
    world.graph.faults.storm(3, retry_after=5)
    headers = world.bearer(directory.tenant_id)

    statuses = [
        httpx.request(
            method, f"{world.graph.graph_url}/users/{directory.alice['id']}", headers=headers, json=body
        ).status_code
        for method, body in (("GET", None), ("PATCH", {"jobTitle": "x"}), ("GET", None), ("GET", None))
    ]

    assert statuses == [429, 429, 429, 200]
    throttled = [r for r in world.graph.request_log[-4:] if r.status == 429]
    assert len(throttled) == 3
    assert world.graph.user(directory.tenant_id, directory.alice["id"])["jobTitle"] is None


def test_a_storm_can_be_bounded_in_time(world: World, directory: Directory) -> None:
    world.graph.faults.storm(1000, retry_after=1, seconds=0.3)
    url = f"{world.graph.graph_url}/users"
    first = httpx.get(url, headers=world.bearer(directory.tenant_id))
    time.sleep(0.35)
    second = httpx.get(url, headers=world.bearer(directory.tenant_id))

    assert (first.status_code, first.headers["Retry-After"]) == (429, "1")
    assert first.headers["x-ms-throttle-scope"].startswith("Tenant_Application/Read/")
    assert second.status_code == 200
    assert world.graph.faults.storm_remaining == 0


async def test_the_sdk_gives_up_inside_a_storm(world: World, directory: Directory, graph_client) -> None:
    client = graph_client()
    await client.users.by_user_id(directory.alice["id"]).get()  # warm up the token cache
    world.graph.faults.storm(5, retry_after=1)
    one_retry: RequestConfiguration[Any] = RequestConfiguration(options=[RetryHandlerOption(max_retries=1)])

    with pytest.raises(ODataError) as raised:
        await client.users.by_user_id(directory.alice["id"]).get(one_retry)

    assert raised.value.response_status_code == 429
    assert world.graph.faults.storm_remaining == 3


async def test_members_can_be_cast_and_removed_with_the_id_query(
    world: World, directory: Directory, groups: Groups, graph_client
) -> None:
    members = graph_client().groups.by_group_id(groups.team).members
    world.graph.add_member(directory.tenant_id, groups.team, directory.bob["id"])

    users = await members.graph_user.get()
    nested = await members.graph_group.get()
    assert users is not None
    assert nested is not None
    assert [u.id for u in users.value or []] == [directory.bob["id"]]
    assert [g.id for g in nested.value or []] == [groups.sales]

    reference = f"https://graph.microsoft.com/v1.0/directoryObjects/{directory.bob['id']}"
    await members.ref.delete(
        RequestConfiguration(query_parameters=RefRequestBuilder.RefRequestBuilderDeleteQueryParameters(id=reference))
    )
    assert world.graph.members(directory.tenant_id, groups.team) == [groups.sales]

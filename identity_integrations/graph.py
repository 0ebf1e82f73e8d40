"""Microsoft Graph for one customer tenant, through msgraph-sdk.

msgraph-sdk is imported here only, lazily (its first use costs seconds and ~80 MB). A Graph
client binds its connection pool to the event loop that first uses it, so clients are cached
per (event loop, tenant); the Functions worker runs async handlers on one long-lived loop."""

from __future__ import annotations

import asyncio
import logging
import threading
from typing import Any
from urllib.parse import urlsplit

from identity_integrations.credentials import TenantCredentials
from identity_integrations.graph_base import odata_literal
from identity_integrations.graph_groups import GroupOps
from identity_integrations.graph_licensing import LicenseOps
from identity_integrations.graph_methods import AuthMethodOps
from identity_integrations.graph_users import UserOps
from identity_integrations.models import DirectoryRole, DirectoryUser, WriteReceipt
from tierone.errors import PermanentError
from tierone.settings import Settings

log = logging.getLogger("tierone.graph")

USER_FIELDS = [
    "id",
    "displayName",
    "userPrincipalName",
    "mail",
    "accountEnabled",
    "onPremisesSyncEnabled",
    "lastPasswordChangeDateTime",
    "otherMails",
]


def to_user(user: Any) -> DirectoryUser:
    return DirectoryUser(
        id=str(user.id),
        display_name=user.display_name or "",
        user_principal_name=user.user_principal_name or "",
        mail=user.mail,
        account_enabled=user.account_enabled is not False,
        on_premises_sync_enabled=bool(user.on_premises_sync_enabled),
        last_password_change=user.last_password_change_date_time,
        other_mails=[m for m in (user.other_mails or []) if m],
    )


def _token_provider(credential: Any, scopes: list[str], graph_host: str) -> Any:
    from kiota_abstractions.authentication import AccessTokenProvider, AllowedHostsValidator

    class CredentialTokenProvider(AccessTokenProvider):
        """Hands the tenant's token only to the configured Graph host."""

        def __init__(self) -> None:
            self._validator = AllowedHostsValidator([graph_host])

        async def get_authorization_token(
            self, uri: str, additional_authentication_context: dict[str, Any] | None = None
        ) -> str:
            if (urlsplit(uri).netloc or "").lower() != graph_host:
                return ""
            # azure-identity caches the token; the sync call runs off the loop.
            token = await asyncio.to_thread(credential.get_token, *scopes)
            return str(token.token)

        def get_allowed_hosts_validator(self) -> AllowedHostsValidator:
            return self._validator

    return CredentialTokenProvider()


class GraphDirectory(UserOps, AuthMethodOps, GroupOps, LicenseOps):
    """The Directory interface for one tenant."""

    def __init__(self, tenant_id: str, settings: Settings, credentials: TenantCredentials) -> None:
        from kiota_abstractions.authentication import BaseBearerTokenAuthenticationProvider
        from msgraph import GraphRequestAdapter, GraphServiceClient

        self.tenant_id = tenant_id
        base = settings.graph_base_url.rstrip("/")
        parts = urlsplit(base)
        provider = _token_provider(credentials.for_tenant(tenant_id), [settings.graph_scope], parts.netloc.lower())
        adapter = GraphRequestAdapter(BaseBearerTokenAuthenticationProvider(provider))
        adapter.base_url = base
        self._client = GraphServiceClient(request_adapter=adapter)

    async def find_user_by_email(self, email: str) -> DirectoryUser | None:
        from kiota_abstractions.base_request_configuration import RequestConfiguration
        from msgraph.generated.users.users_request_builder import UsersRequestBuilder

        literal = odata_literal(email.strip())
        smtp = odata_literal(f"smtp:{email.strip()}")
        query = UsersRequestBuilder.UsersRequestBuilderGetQueryParameters(
            filter=f"mail eq {literal} or userPrincipalName eq {literal} or proxyAddresses/any(p:p eq {smtp})",
            select=USER_FIELDS,
            top=5,
        )
        config = RequestConfiguration(query_parameters=query)
        result = await self._call("find user", lambda: self._client.users.get(request_configuration=config))
        users = list((result.value if result else None) or [])
        if len(users) > 1:
            raise PermanentError(f"{len(users)} directory users match the requester's e-mail address")
        return to_user(users[0]) if users else None

    async def find_user_by_display_name(self, name: str) -> DirectoryUser | None:
        """The one user with exactly this display name; None when nobody or several people match."""
        from kiota_abstractions.base_request_configuration import RequestConfiguration
        from msgraph.generated.users.users_request_builder import UsersRequestBuilder

        query = UsersRequestBuilder.UsersRequestBuilderGetQueryParameters(
            filter=f"displayName eq {odata_literal(name.strip())}", select=USER_FIELDS, top=2
        )
        config = RequestConfiguration(query_parameters=query)
        result = await self._call("find user by name", lambda: self._client.users.get(request_configuration=config))
        users = list((result.value if result else None) or [])
        return to_user(users[0]) if len(users) == 1 else None

    async def get_user(self, user_id: str) -> DirectoryUser:
        from kiota_abstractions.base_request_configuration import RequestConfiguration
        from msgraph.generated.users.item.user_item_request_builder import UserItemRequestBuilder

        query = UserItemRequestBuilder.UserItemRequestBuilderGetQueryParameters(select=USER_FIELDS)
        config = RequestConfiguration(query_parameters=query)
        user = await self._call(
            "read user", lambda: self._client.users.by_user_id(user_id).get(request_configuration=config)
        )
        if user is None:
            raise PermanentError(f"user {user_id} not found")
        return to_user(user)

    async def directory_roles(self, user_id: str) -> list[DirectoryRole]:
        builder = self._client.users.by_user_id(user_id).transitive_member_of.graph_directory_role
        page = await self._call("read roles", lambda: builder.get())
        roles: list[DirectoryRole] = []
        while page is not None:
            roles.extend(
                DirectoryRole(display_name=r.display_name or "", role_template_id=r.role_template_id)
                for r in page.value or []
            )
            next_link = page.odata_next_link
            if not next_link:
                break
            next_page = builder.with_url(next_link)
            page = await self._call("read roles", next_page.get)
        return roles

    async def manager_id(self, user_id: str) -> str | None:
        from msgraph.generated.models.o_data_errors.o_data_error import ODataError

        async def read() -> Any:
            try:
                return await self._client.users.by_user_id(user_id).manager.get()
            except ODataError as exc:
                if exc.response_status_code == 404:  # no manager of record
                    return None
                raise

        manager = await self._call("read manager", read)
        return str(manager.id) if manager is not None and manager.id else None

    async def set_temporary_password(self, user_id: str, password: str) -> WriteReceipt:
        from msgraph.generated.models.password_profile import PasswordProfile
        from msgraph.generated.models.user import User

        body = User(password_profile=PasswordProfile(password=password, force_change_password_next_sign_in=True))
        builder = self._client.users.by_user_id(user_id)
        return await self._write("set password", lambda cfg: builder.patch(body, cfg))


class GraphDirectories:
    """GraphDirectory per (event loop, tenant) for the process."""

    def __init__(self, settings: Settings) -> None:
        self._settings = settings
        self._credentials = TenantCredentials(settings)
        self._lock = threading.Lock()
        self._cache: dict[tuple[int, str], GraphDirectory] = {}

    def for_tenant(self, tenant_id: str) -> GraphDirectory:
        key = (id(asyncio.get_running_loop()), tenant_id)
        with self._lock:
            directory = self._cache.get(key)
            if directory is None:
                directory = GraphDirectory(tenant_id, self._settings, self._credentials)
                self._cache[key] = directory
            return directory

"""Entra ID, Graph and Exchange Online sandboxes with one multi-tenant app reached through a managed
identity (its federated credential), the way the function app reaches customer tenants: for the
playbook contract tests and the playbook benchmark, which add a customer tenant per test or intent.

`CustomerDesk` is what both put around one customer tenant: its people, seeded in the Graph
sandbox, and each read back as the `DirectoryUser` a playbook is given."""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from identity_integrations.credentials import TenantCredentials
from identity_integrations.models import DirectoryUser
from sandbox.entra_login import EntraSandbox
from sandbox.exchange_online import ExchangeSandbox
from sandbox.graph_tenant import GraphSandbox
from tierone.settings import Settings

CUSTOMER_DOMAIN = "contoso.example"


@dataclass
class IdentityStack:
    entra: EntraSandbox
    graph: GraphSandbox
    exchange: ExchangeSandbox
    app_id: str
    identity_client_id: str
    settings: Settings
    credentials: TenantCredentials

    def customer_tenant(self) -> str:
        """A consented customer tenant with Temporary Access Passes enabled."""
        tenant_id = self.graph.add_tenant(default_domain=CUSTOMER_DOMAIN)
        self.graph.consent(tenant_id, self.app_id)
        self.graph.set_tap_policy(tenant_id, enabled=True)
        return tenant_id


@contextlib.contextmanager
def _environment(values: dict[str, str]) -> Iterator[None]:
    saved = {name: os.environ.get(name) for name in values}
    os.environ.update(values)
    try:
        yield
    finally:
        for name, value in saved.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value


@contextlib.contextmanager
def identity_stack(**app_settings: str) -> Iterator[IdentityStack]:
    """The three sandboxes running, the MSP's app and managed identity registered, and the app's
    settings (plus `app_settings`, by app-setting name) pointing at them."""
    with (
        EntraSandbox() as entra,
        GraphSandbox(entra) as graph,
        ExchangeSandbox(graph) as exchange,
        _environment(entra.env()),
    ):
        msp = entra.add_tenant(domains=["msp.example"])
        identity = entra.add_managed_identity(msp)
        app = entra.register_app(federated_subject=identity.principal_id)
        settings = Settings.model_validate(
            {
                "GRAPH_BASE_URL": graph.graph_url,
                "EXCHANGE_ADMIN_URL": exchange.admin_url,
                "TIERONE_GRAPH_AUTH": "federated",
                "TIERONE_APP_CLIENT_ID": app.client_id,
                "TIERONE_MANAGED_IDENTITY_CLIENT_ID": identity.client_id,
                "AZURE_AUTHORITY_HOST": entra.authority_host,
                **app_settings,
            }
        )
        credentials = TenantCredentials(settings)
        try:
            yield IdentityStack(entra, graph, exchange, app.client_id, identity.client_id, settings, credentials)
        finally:
            # Close pooled connections, or the Entra sandbox's TLS server waits for them on shutdown.
            for credential in [*credentials._by_tenant.values(), credentials._managed_identity]:
                if credential is not None:
                    credential.close()


class CustomerDesk:
    """People of one customer tenant (mixed into a dataclass with `tenant_id` and `people` fields)."""

    tenant_id: str
    people: dict[str, dict[str, Any]]

    @property
    def graph(self) -> GraphSandbox:
        raise NotImplementedError

    def person(self, key: str, name: str, **kwargs: Any) -> dict[str, Any]:
        upn = f"{key}@{CUSTOMER_DOMAIN}"
        kwargs.setdefault("mail", upn)
        self.people[key] = self.graph.add_user(self.tenant_id, name, upn, **kwargs)
        return self.people[key]

    def user(self, key: str) -> DirectoryUser:
        p = self.graph.user(self.tenant_id, self.people[key]["id"])
        return DirectoryUser(
            id=p["id"],
            display_name=p["displayName"],
            user_principal_name=p["userPrincipalName"],
            mail=p.get("mail"),
            account_enabled=bool(p.get("accountEnabled", True)),
            on_premises_sync_enabled=bool(p.get("onPremisesSyncEnabled")),
        )

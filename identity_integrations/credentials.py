"""Tokens for customer tenants, without secrets by default.

Production: the function app's user-assigned managed identity is a federated credential on the
MSP's multi-tenant app registration, so for each customer tenant a ClientAssertionCredential
presents the managed identity's token (audience api://AzureADTokenExchange) as its assertion.
A client secret or certificate remain as fallbacks for MSPs who cannot use that yet.

The synchronous azure-identity credentials are used (called from a worker thread): the
assertion callback of ClientAssertionCredential is synchronous anyway, and this keeps a second
HTTP stack (aiohttp) out of the process."""

from __future__ import annotations

import threading
from typing import Any
from urllib.parse import urlsplit

from tierone.errors import ConfigError
from tierone.settings import Settings

TOKEN_EXCHANGE_SCOPE = "api://AzureADTokenExchange/.default"  # noqa: S105 (a scope, not a secret)
MICROSOFT_AUTHORITY_HOSTS = frozenset(
    {
        "login.microsoftonline.com",
        "login.microsoftonline.us",
        "login.chinacloudapi.cn",
        "login.partner.microsoftonline.cn",
    }
)


def _authority_kwargs(settings: Settings) -> dict[str, Any]:
    if not settings.authority_host:
        return {}
    host = urlsplit(settings.authority_host).hostname or ""
    # Instance discovery only knows Microsoft's own clouds; any other authority is taken as configured.
    return {
        "authority": settings.authority_host,
        "disable_instance_discovery": host.lower() not in MICROSOFT_AUTHORITY_HOSTS,
    }


class TenantCredentials:
    """One credential per customer tenant, created on first use and kept for the process."""

    def __init__(self, settings: Settings) -> None:
        self._settings = settings
        self._lock = threading.Lock()
        self._by_tenant: dict[str, Any] = {}
        self._managed_identity: Any = None

    def _assertion(self) -> str:
        from azure.identity import ManagedIdentityCredential

        with self._lock:
            if self._managed_identity is None:
                self._managed_identity = ManagedIdentityCredential(client_id=self._settings.managed_identity_client_id)
            credential = self._managed_identity
        return str(credential.get_token(TOKEN_EXCHANGE_SCOPE).token)

    def _create(self, tenant_id: str) -> Any:
        import azure.identity as identity

        s = self._settings
        s.require("app_client_id")
        assert s.app_client_id is not None
        extra = _authority_kwargs(s)
        if s.graph_auth == "federated":
            return identity.ClientAssertionCredential(tenant_id, s.app_client_id, self._assertion, **extra)
        if s.graph_auth == "client_secret":
            s.require("app_client_secret")
            assert s.app_client_secret is not None
            return identity.ClientSecretCredential(
                tenant_id, s.app_client_id, s.app_client_secret.get_secret_value(), **extra
            )
        if s.graph_auth == "certificate":
            s.require("app_certificate_path")
            return identity.CertificateCredential(
                tenant_id, s.app_client_id, certificate_path=s.app_certificate_path, **extra
            )
        raise ConfigError(f"unknown TIERONE_GRAPH_AUTH {s.graph_auth!r}")

    def for_tenant(self, tenant_id: str) -> Any:
        with self._lock:
            credential = self._by_tenant.get(tenant_id)
        if credential is None:
            credential = self._create(tenant_id)
            with self._lock:
                credential = self._by_tenant.setdefault(tenant_id, credential)
        return credential

"""A stand-in for Microsoft Entra ID's login side, so that unchanged azure-identity code gets tokens.

Two servers, mirroring what production talks to:

* **The authority** (`authority_host`, HTTPS on its own loopback port): OpenID discovery
  (`GET /{tenant}/v2.0/.well-known/openid-configuration`), the signing keys
  (`GET /{tenant}/discovery/v2.0/keys`) and the token endpoint (`POST /{tenant}/oauth2/v2.0/token`,
  client credentials grant with `client_secret` or a federated `client_assertion`). MSAL, which
  azure-identity's sync credentials use, refuses any authority that is not https, so the sandbox
  makes a throw-away CA plus a server certificate for 127.0.0.1/localhost at start. Clients trust it
  through `ca_bundle_path` (the `connection_verify=` credential kwarg) or `trust_bundle_path`
  (certifi's roots plus the sandbox CA, for `REQUESTS_CA_BUNDLE`/`SSL_CERT_FILE`).
* **The managed identity endpoint** (`identity_endpoint`, plain http like App Service's own):
  `GET /msi/token?resource=...&api-version=2019-08-01&client_id=...` with the `X-IDENTITY-HEADER`
  secret. With `IDENTITY_ENDPOINT`/`IDENTITY_HEADER` set, `ManagedIdentityCredential` uses it.

Tokens are RS256 JWTs signed by one RSA key held by this object. The Graph sandbox
(`sandbox.graph_tenant.GraphSandbox`) is constructed with (or creates) an `EntraSandbox` and checks
bearer tokens with `verify_access_token`, so both sides share that key without any network call.

Model: tenants (ids plus domain aliases), one multi-tenant app registration per `register_app`, and
per-tenant admin consent (`consent`) which creates the app's service principal there and fixes the
application permissions that land in the token's `roles` claim. The app is implicitly consented in
its home tenant. A federated identity credential (`federated_subject`) trusts managed identity tokens
whose `sub` is that identity's principal (object) id and whose audience is `api://AzureADTokenExchange`,
the secretless pattern of graph.md §9.2. Certificate credentials are not modelled.

Tokens carry only the permissions of the resource they are for, as Entra's do: a token for
Exchange Online (`https://outlook.office365.com`, app id 00000002-0000-0ff1-ce00-000000000000) holds
the consented Exchange app roles (`EXCHANGE_APP_ROLES`, e.g. `Exchange.ManageAsApp`) and a Graph
token the rest. Consent is recorded as one flat list of permission names for simplicity. A token
for a resource with no consented roles has no `roles` claim at all (like Entra's).

Issuer strings inside tokens are the real cloud's (`https://login.microsoftonline.com/{tid}/v2.0`,
`https://sts.windows.net/{tid}/`) so production configuration (e.g. a FIC's issuer) reads the same
here; only the host that serves the endpoints is local.
"""

from __future__ import annotations

import base64
import datetime as dt
import hashlib
import ipaddress
import json
import secrets
import shutil
import tempfile
import threading
import time
import uuid
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl

import jwt
import uvicorn
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from sandbox._server import BackgroundServer, StartStop

GRAPH_RESOURCE = "https://graph.microsoft.com"
GRAPH_APP_ID = "00000003-0000-0000-c000-000000000000"
EXCHANGE_RESOURCE = "https://outlook.office365.com"
EXCHANGE_APP_ID = "00000002-0000-0ff1-ce00-000000000000"  # "Office 365 Exchange Online"
TOKEN_EXCHANGE_AUDIENCE = "api://AzureADTokenExchange"
JWT_BEARER = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"
PUBLIC_CLOUD_LOGIN = "https://login.microsoftonline.com"

# The kiota token provider derives the scope from the request host when production code does not
# pass `scopes=` to GraphServiceClient. Against the sandbox that host is loopback, so those scopes
# are read as Graph; real Entra would answer AADSTS500011 for them.
_LOOPBACK_RESOURCES = ("http://127.0.0.1", "http://localhost", "https://127.0.0.1", "https://localhost")

# Resources the token endpoint issues app-only tokens for (the audience written into the token).
KNOWN_RESOURCES: Mapping[str, str] = {
    GRAPH_RESOURCE: GRAPH_RESOURCE,
    GRAPH_RESOURCE + "/": GRAPH_RESOURCE,
    GRAPH_APP_ID: GRAPH_RESOURCE,
    EXCHANGE_RESOURCE: EXCHANGE_RESOURCE,
    EXCHANGE_RESOURCE + "/": EXCHANGE_RESOURCE,
    EXCHANGE_APP_ID: EXCHANGE_RESOURCE,
    **dict.fromkeys(_LOOPBACK_RESOURCES, GRAPH_RESOURCE),
}

# App roles of the Office 365 Exchange Online resource (graph.md §6.3, §6.4); every other consented
# permission is read as a Microsoft Graph one.
EXCHANGE_APP_ROLES = frozenset({"Exchange.ManageAsApp", "Exchange.ManageAsAppV2", "full_access_as_app"})

# What admin consent grants when the caller does not say: TierOne's least-privilege set (graph.md
# Appendix A) for the actions the Graph and Exchange sandboxes serve.
DEFAULT_APP_PERMISSIONS: tuple[str, ...] = (
    # Microsoft Graph
    "User.Read.All",  # look up users, managers, memberOf, licence details
    "User.ReadWrite.All",  # create users, set manager/usageLocation/jobTitle/department (no narrower one)
    "User-PasswordProfile.ReadWrite.All",  # password reset
    "User.EnableDisableAccount.All",  # block / unblock sign-in
    "User.RevokeSessions.All",  # revokeSignInSessions
    "RoleManagement.Read.Directory",  # directory roles of a target before acting
    "Domain.Read.All",  # verified domains before creating a user
    "IdentityRiskyUser.ReadWrite.All",  # read and dismiss user risk
    "UserAuthenticationMethod.Read.All",  # list a user's authentication methods
    "UserAuthMethod-MicrosoftAuthApp.ReadWrite.All",  # the granular per-type deletes ("MFA reset")
    "UserAuthMethod-Phone.ReadWrite.All",
    "UserAuthMethod-SoftwareOATH.ReadWrite.All",
    "UserAuthMethod-Passkey.ReadWrite.All",
    "UserAuthMethod-WindowsHello.ReadWrite.All",
    "UserAuthMethod-Email.ReadWrite.All",
    "UserAuthMethod-TAP.ReadWrite.All",  # create a Temporary Access Pass
    "Policy.Read.AuthenticationMethod",  # read the TAP policy
    "GroupMember.ReadWrite.All",  # list groups and members, add/remove members
    "LicenseAssignment.ReadWrite.All",  # subscribedSkus, licenseDetails, assignLicense
    "MailboxSettings.ReadWrite",  # automatic replies
    "Mail.Send",  # notification mail
    # Office 365 Exchange Online
    "Exchange.ManageAsApp",  # InvokeCommand (mailbox permissions, DL members, convert, hide from GAL)
)

ACCESS_TOKEN_LIFETIME_S = 3599  # what Entra reports as expires_in for app-only tokens
_RESERVED_SCOPES = frozenset({"openid", "profile", "offline_access"})


# --------------------------------------------------------------------------------------------
# Registry records
# --------------------------------------------------------------------------------------------


@dataclass
class AppRegistration:
    client_id: str
    display_name: str
    client_secret: str | None = None
    federated_subject: str | None = None
    federated_issuer: str | None = None  # None: any issuer this sandbox signs for
    home_tenant_id: str | None = None


@dataclass(frozen=True)
class ManagedIdentity:
    """A user-assigned managed identity living in `tenant_id` (the MSP's tenant)."""

    client_id: str
    principal_id: str
    tenant_id: str
    resource_id: str


@dataclass(frozen=True)
class Consent:
    service_principal_id: str
    permissions: tuple[str, ...]


@dataclass(frozen=True)
class TokenRecord:
    """One token endpoint or managed identity call, for assertions in tests."""

    endpoint: str  # "token" or "msi"
    tenant: str
    client_id: str
    status: int
    error_code: int | None = None


@dataclass
class _State:
    tenants: set[str] = field(default_factory=set)
    domains: dict[str, str] = field(default_factory=dict)  # domain (lower case) -> tenant id
    apps: dict[str, AppRegistration] = field(default_factory=dict)
    consents: dict[tuple[str, str], Consent] = field(default_factory=dict)
    identities: dict[str, ManagedIdentity] = field(default_factory=dict)  # by client id
    log: list[TokenRecord] = field(default_factory=list)


class EntraError(Exception):
    """An error the token endpoint reports in AAD's JSON shape."""

    def __init__(self, status: int, error: str, code: int, description: str) -> None:
        super().__init__(f"AADSTS{code}: {description}")
        self.status = status
        self.error = error
        self.code = code
        self.description = description


class TokenRejected(Exception):
    """A bearer token a resource must refuse; the message is what Graph would say."""


# --------------------------------------------------------------------------------------------
# Signing key
# --------------------------------------------------------------------------------------------


class TokenSigner:
    """An RSA key that signs every sandbox token and publishes itself as a JWKS."""

    def __init__(self) -> None:
        self._key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        public_der = self._key.public_key().public_bytes(
            serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
        )
        self.kid = _b64url(hashlib.sha256(public_der).digest()[:20])

    def sign(self, claims: Mapping[str, Any]) -> str:
        return jwt.encode(dict(claims), self._key, algorithm="RS256", headers={"kid": self.kid})

    def decode(self, token: str, audiences: Iterable[str] | None) -> dict[str, Any]:
        """Verify signature and lifetime (and audience when given); raises jwt.InvalidTokenError."""
        options = {"require": ["exp", "iat"], "verify_aud": audiences is not None}
        claims: dict[str, Any] = jwt.decode(
            token,
            self._key.public_key(),
            algorithms=["RS256"],
            audience=list(audiences) if audiences is not None else None,
            options=options,  # type: ignore[arg-type]
        )
        return claims

    def jwks(self) -> dict[str, Any]:
        numbers = self._key.public_key().public_numbers()
        return {
            "keys": [
                {
                    "kty": "RSA",
                    "use": "sig",
                    "kid": self.kid,
                    "n": _b64url(_int_bytes(numbers.n)),
                    "e": _b64url(_int_bytes(numbers.e)),
                }
            ]
        }


def _b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def _int_bytes(value: int) -> bytes:
    return value.to_bytes((value.bit_length() + 7) // 8, "big")


# --------------------------------------------------------------------------------------------
# TLS material and an HTTPS flavour of BackgroundServer
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class TlsMaterial:
    ca_path: Path
    cert_path: Path
    key_path: Path


def make_tls_material(directory: Path) -> TlsMaterial:
    """A throw-away CA and a server certificate for 127.0.0.1/localhost signed by it."""
    now = dt.datetime.now(dt.UTC)
    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca_name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "TierOne sandbox CA")])
    ca_cert = (
        x509.CertificateBuilder()
        .subject_name(ca_name)
        .issuer_name(ca_name)
        .public_key(ca_key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(hours=1))
        .not_valid_after(now + dt.timedelta(days=2))
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(_key_usage(cert_sign=True), critical=True)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(ca_key.public_key()), critical=False)
        .sign(ca_key, hashes.SHA256())
    )
    server_key = ec.generate_private_key(ec.SECP256R1())
    server_cert = (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "127.0.0.1")]))
        .issuer_name(ca_name)
        .public_key(server_key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(hours=1))
        .not_valid_after(now + dt.timedelta(days=1))
        .add_extension(
            x509.SubjectAlternativeName([x509.DNSName("localhost"), x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]),
            critical=False,
        )
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(_key_usage(cert_sign=False), critical=True)
        .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(server_key.public_key()), critical=False)
        .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_key.public_key()), critical=False)
        .sign(ca_key, hashes.SHA256())
    )
    material = TlsMaterial(directory / "ca.pem", directory / "server.pem", directory / "server.key")
    material.ca_path.write_bytes(ca_cert.public_bytes(serialization.Encoding.PEM))
    material.cert_path.write_bytes(server_cert.public_bytes(serialization.Encoding.PEM))
    material.key_path.write_bytes(
        server_key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    return material


def _key_usage(*, cert_sign: bool) -> x509.KeyUsage:
    return x509.KeyUsage(
        digital_signature=True,
        content_commitment=False,
        key_encipherment=False,
        data_encipherment=False,
        key_agreement=False,
        key_cert_sign=cert_sign,
        crl_sign=cert_sign,
        encipher_only=False,
        decipher_only=False,
    )


class TlsBackgroundServer(BackgroundServer):
    """BackgroundServer, but serving https with the given certificate (BackgroundServer has no
    ssl arguments, and the identity libraries need an https authority)."""

    def __init__(self, app: Any, tls: TlsMaterial, name: str = "https-server") -> None:
        super().__init__(app, name=name)
        self.tls = tls

    @property
    def url(self) -> str:
        return f"https://127.0.0.1:{self.port}"

    def _config(self, **extra: Any) -> uvicorn.Config:
        return super()._config(ssl_certfile=str(self.tls.cert_path), ssl_keyfile=str(self.tls.key_path), **extra)


# --------------------------------------------------------------------------------------------
# The sandbox
# --------------------------------------------------------------------------------------------


class EntraSandbox(StartStop):
    """Entra ID authority + App Service managed identity endpoint, multi-tenant, thread-safe.

    Seed it from any thread (`add_tenant`, `register_app`, `consent`, `add_managed_identity`);
    `start()` brings up both servers. Use as a context manager or call `stop()`.
    """

    def __init__(self, identity_header: str | None = None) -> None:
        self.signer = TokenSigner()
        self.identity_header = identity_header or secrets.token_urlsafe(24)
        self._lock = threading.RLock()
        self._state = _State()
        self._tmpdir: Path | None = None
        self._tls: TlsMaterial | None = None
        self._authority: TlsBackgroundServer | None = None
        self._msi: BackgroundServer | None = None

    # -- lifecycle ---------------------------------------------------------------------------

    def start(self) -> EntraSandbox:
        if self._authority is not None:
            return self
        self._tmpdir = Path(tempfile.mkdtemp(prefix="tierone-entra-"))
        self._tls = make_tls_material(self._tmpdir)
        self._write_trust_bundle()
        self._authority = TlsBackgroundServer(self.authority_app(), self._tls, name="entra-authority")
        self._authority.start()
        self._msi = BackgroundServer(self.identity_app(), name="entra-msi").start()
        return self

    def stop(self) -> None:
        for server in (self._authority, self._msi):
            if server is not None:
                server.stop()
        self._authority = self._msi = None
        if self._tmpdir is not None:
            shutil.rmtree(self._tmpdir, ignore_errors=True)
            self._tmpdir = self._tls = None

    def _write_trust_bundle(self) -> None:
        # Setting REQUESTS_CA_BUNDLE/SSL_CERT_FILE replaces the default roots, so the bundle keeps
        # the public ones (certifi) and adds the sandbox CA: other https traffic keeps working.
        assert self._tls is not None
        assert self._tmpdir is not None
        public_roots = b""
        try:
            import certifi

            public_roots = Path(certifi.where()).read_bytes()
        except ImportError:  # pragma: no cover - certifi comes with requests, which MSAL needs
            pass
        (self._tmpdir / "trust-bundle.pem").write_bytes(public_roots + b"\n" + self._tls.ca_path.read_bytes())

    # -- where clients connect ---------------------------------------------------------------

    @property
    def authority_host(self) -> str:
        """Pass as `authority=` to azure-identity credentials (or set AZURE_AUTHORITY_HOST)."""
        return self._running(self._authority).url

    @property
    def ca_bundle_path(self) -> str:
        """PEM of the sandbox CA alone; pass as `connection_verify=` to azure-identity credentials."""
        self._running(self._authority)
        assert self._tls is not None
        return str(self._tls.ca_path)

    @property
    def trust_bundle_path(self) -> str:
        """certifi's public roots plus the sandbox CA, for REQUESTS_CA_BUNDLE / SSL_CERT_FILE."""
        self._running(self._authority)
        assert self._tmpdir is not None
        return str(self._tmpdir / "trust-bundle.pem")

    @property
    def identity_endpoint(self) -> str:
        return f"{self._running(self._msi).url}/msi/token"

    def env(self) -> dict[str, str]:
        """Environment for a process whose azure-identity code should use this sandbox."""
        return {
            "AZURE_AUTHORITY_HOST": self.authority_host,
            "IDENTITY_ENDPOINT": self.identity_endpoint,
            "IDENTITY_HEADER": self.identity_header,
            "REQUESTS_CA_BUNDLE": self.trust_bundle_path,
            "SSL_CERT_FILE": self.trust_bundle_path,
        }

    @staticmethod
    def _running(server: BackgroundServer | None) -> BackgroundServer:
        if server is None:
            raise RuntimeError("EntraSandbox is not started")
        return server

    # -- seeding -----------------------------------------------------------------------------

    def add_tenant(self, tenant_id: str | None = None, domains: Iterable[str] = ()) -> str:
        """Register a tenant; `domains` also name it in authority URLs. A domain names one tenant:
        a later tenant claiming the same domain takes it over (handy when every test tenant is
        "contoso.example")."""
        tenant_id = (tenant_id or str(uuid.uuid4())).lower()
        with self._lock:
            self._state.tenants.add(tenant_id)
            self._state.domains.update(dict.fromkeys((d.lower() for d in domains), tenant_id))
        return tenant_id

    def register_app(
        self,
        client_id: str | None = None,
        client_secret: str | None = None,
        federated_subject: str | None = None,
        *,
        federated_issuer: str | None = None,
        home_tenant_id: str | None = None,
        display_name: str = "TierOne",
    ) -> AppRegistration:
        """A multi-tenant app. `federated_subject` is the managed identity's principal id that a
        federated identity credential trusts (audience api://AzureADTokenExchange)."""
        app = AppRegistration(
            client_id=(client_id or str(uuid.uuid4())).lower(),
            display_name=display_name,
            client_secret=client_secret,
            federated_subject=federated_subject,
            federated_issuer=federated_issuer,
            home_tenant_id=home_tenant_id.lower() if home_tenant_id else None,
        )
        with self._lock:
            self._state.apps[app.client_id] = app
        if app.home_tenant_id:
            self.add_tenant(app.home_tenant_id)
            self.consent(app.home_tenant_id, app.client_id)
        return app

    def consent(self, tenant_id: str, client_id: str, permissions: Iterable[str] | None = None) -> Consent:
        """Admin consent: provisions the app's service principal in the tenant with these
        application permissions (the token's `roles`)."""
        key = (tenant_id.lower(), client_id.lower())
        with self._lock:
            if key[0] not in self._state.tenants:
                raise KeyError(f"unknown tenant {tenant_id}")
            if key[1] not in self._state.apps:
                raise KeyError(f"unknown app {client_id}")
            previous = self._state.consents.get(key)
            granted = Consent(
                service_principal_id=previous.service_principal_id if previous else str(uuid.uuid4()),
                permissions=tuple(DEFAULT_APP_PERMISSIONS if permissions is None else permissions),
            )
            self._state.consents[key] = granted
        return granted

    def revoke_consent(self, tenant_id: str, client_id: str) -> None:
        with self._lock:
            self._state.consents.pop((tenant_id.lower(), client_id.lower()), None)

    def add_managed_identity(
        self, tenant_id: str, client_id: str | None = None, principal_id: str | None = None
    ) -> ManagedIdentity:
        tenant_id = self.add_tenant(tenant_id)
        identity_client_id = (client_id or str(uuid.uuid4())).lower()
        identity = ManagedIdentity(
            client_id=identity_client_id,
            principal_id=(principal_id or str(uuid.uuid4())).lower(),
            tenant_id=tenant_id,
            resource_id=(
                f"/subscriptions/{uuid.uuid4()}/resourcegroups/tierone/providers/"
                f"Microsoft.ManagedIdentity/userAssignedIdentities/tierone-{identity_client_id[:8]}"
            ),
        )
        with self._lock:
            self._state.identities[identity.client_id] = identity
        return identity

    # -- introspection -----------------------------------------------------------------------

    @property
    def token_log(self) -> list[TokenRecord]:
        with self._lock:
            return list(self._state.log)

    def service_principal_id(self, tenant_id: str, client_id: str) -> str | None:
        with self._lock:
            consent = self._state.consents.get((tenant_id.lower(), client_id.lower()))
        return consent.service_principal_id if consent else None

    def knows_tenant(self, tenant_id: str) -> bool:
        return self._resolve_tenant(tenant_id) is not None

    # -- tokens ------------------------------------------------------------------------------

    def issue_access_token(
        self,
        tenant_id: str,
        client_id: str,
        resource: str = GRAPH_RESOURCE,
        *,
        lifetime_s: int = ACCESS_TOKEN_LIFETIME_S,
        credential_type: str = "1",
    ) -> str:
        """An app-only access token as the token endpoint would issue it (raises EntraError when
        Entra would refuse). Also handy for tests that want a bearer token without azure-identity."""
        tenant = self._require_tenant(tenant_id)
        app, consent = self._require_consented_app(tenant, client_id)
        now = int(time.time())
        claims = {
            "aud": resource,
            "iss": f"https://sts.windows.net/{tenant}/",
            "iat": now,
            "nbf": now,
            "exp": now + lifetime_s,
            "app_displayname": app.display_name,
            "appid": app.client_id,
            "appidacr": credential_type,  # 1 = secret, 2 = certificate or assertion
            "idp": f"https://sts.windows.net/{tenant}/",
            "idtyp": "app",
            "oid": consent.service_principal_id,
            "sub": consent.service_principal_id,
            "tid": tenant,
            "uti": _b64url(secrets.token_bytes(16)),
            "ver": "1.0",
        }
        roles = roles_for_resource(KNOWN_RESOURCES.get(resource, resource), consent.permissions)
        if roles:
            claims["roles"] = roles
        return self.signer.sign(claims)

    def verify_access_token(self, token: str, audiences: Iterable[str]) -> dict[str, Any]:
        """Validate a bearer token for a resource; raises TokenRejected with Graph's wording."""
        if not token:
            raise TokenRejected("Access token is empty.")
        if token.count(".") != 2:
            raise TokenRejected("IDX14100: JWT is not well formed, there are no dots (.).")
        try:
            return self.signer.decode(token, audiences)
        except jwt.ExpiredSignatureError as exc:
            raise TokenRejected("Lifetime validation failed, the token is expired.") from exc
        except jwt.InvalidAudienceError as exc:
            raise TokenRejected("Access token validation failure. Invalid audience.") from exc
        except jwt.InvalidTokenError as exc:
            raise TokenRejected("Access token validation failure.") from exc

    def _managed_identity_token(self, identity: ManagedIdentity, resource: str) -> tuple[str, int]:
        now = int(time.time())
        expires_on = now + 86399  # managed identity tokens live about a day
        claims = {
            "aud": resource,
            "iss": f"{PUBLIC_CLOUD_LOGIN}/{identity.tenant_id}/v2.0",
            "iat": now,
            "nbf": now,
            "exp": expires_on,
            "azp": identity.client_id,
            "appid": identity.client_id,
            "idtyp": "app",
            "oid": identity.principal_id,
            "sub": identity.principal_id,
            "tid": identity.tenant_id,
            "xms_mirid": identity.resource_id,
            "ver": "2.0",
        }
        return self.signer.sign(claims), expires_on

    # -- lookups -----------------------------------------------------------------------------

    def _resolve_tenant(self, tenant: str) -> str | None:
        wanted = tenant.lower()
        with self._lock:
            if wanted in self._state.tenants:
                return wanted
            return self._state.domains.get(wanted)

    def _require_tenant(self, tenant: str) -> str:
        tenant_id = self._resolve_tenant(tenant)
        if tenant_id is None:
            raise EntraError(
                400,
                "invalid_tenant",
                90002,
                f"Tenant '{tenant}' not found. Check to make sure you have the correct tenant ID and are "
                "signing into the correct cloud. Check with your subscription administrator, this may "
                "happen if there are no active subscriptions for the tenant.",
            )
        return tenant_id

    def _require_consented_app(self, tenant_id: str, client_id: str) -> tuple[AppRegistration, Consent]:
        with self._lock:
            app = self._state.apps.get(client_id.lower())
            consent = self._state.consents.get((tenant_id, client_id.lower()))
        if app is None:
            raise EntraError(
                400,
                "unauthorized_client",
                700016,
                f"Application with identifier '{client_id}' was not found in the directory '{tenant_id}'. "
                "This can happen if the application has not been installed by the administrator of the "
                "tenant or consented to by any user in the tenant. You may have sent your authentication "
                "request to the wrong tenant.",
            )
        if consent is None:
            raise EntraError(
                401,
                "invalid_client",
                7000229,
                f"The client application {client_id} is missing service principal in the tenant "
                f"{tenant_id}. See instructions here: https://go.microsoft.com/fwlink/?linkid=2225119",
            )
        return app, consent

    # -- HTTP: the authority -----------------------------------------------------------------

    def authority_app(self) -> Starlette:
        return Starlette(
            routes=[
                Route("/{tenant}/v2.0/.well-known/openid-configuration", self._openid_configuration),
                Route("/{tenant}/discovery/v2.0/keys", self._keys),
                Route("/{tenant}/discovery/keys", self._keys),
                Route("/{tenant}/oauth2/v2.0/token", self._token, methods=["POST"]),
            ]
        )

    async def _openid_configuration(self, request: Request) -> Response:
        tenant = request.path_params["tenant"]
        try:
            tenant_id = self._require_tenant(tenant)
        except EntraError as exc:
            return self._error_response(exc, request)
        base = f"{self.authority_host}/{tenant_id}"
        return JSONResponse(
            {
                "token_endpoint": f"{base}/oauth2/v2.0/token",
                "token_endpoint_auth_methods_supported": [
                    "client_secret_post",
                    "private_key_jwt",
                    "client_secret_basic",
                ],
                "jwks_uri": f"{base}/discovery/v2.0/keys",
                "response_modes_supported": ["query", "fragment", "form_post"],
                "subject_types_supported": ["pairwise"],
                "id_token_signing_alg_values_supported": ["RS256"],
                "response_types_supported": ["code", "id_token", "code id_token", "id_token token"],
                "scopes_supported": ["openid", "profile", "email", "offline_access"],
                "issuer": f"{PUBLIC_CLOUD_LOGIN}/{tenant_id}/v2.0",
                "request_uri_parameter_supported": False,
                "userinfo_endpoint": "https://graph.microsoft.com/oidc/userinfo",
                "authorization_endpoint": f"{base}/oauth2/v2.0/authorize",
                "device_authorization_endpoint": f"{base}/oauth2/v2.0/devicecode",
                "http_logout_supported": True,
                "frontchannel_logout_supported": True,
                "end_session_endpoint": f"{base}/oauth2/v2.0/logout",
                "claims_supported": ["sub", "iss", "aud", "exp", "iat", "tid", "oid", "roles"],
                "tenant_region_scope": "EU",
                "cloud_instance_name": "microsoftonline.com",
                "cloud_graph_host_name": "graph.windows.net",
                "msgraph_host": "graph.microsoft.com",
                "rbac_url": "https://pas.windows.net",
            }
        )

    async def _keys(self, request: Request) -> Response:
        return JSONResponse(self.signer.jwks())

    async def _token(self, request: Request) -> Response:
        tenant = request.path_params["tenant"]
        form = dict(parse_qsl((await request.body()).decode("utf-8"), keep_blank_values=True))
        _merge_basic_auth(request, form)
        client_id = form.get("client_id", "")
        try:
            body = self._client_credentials(tenant, form)
        except EntraError as exc:
            self._record(TokenRecord("token", tenant, client_id, exc.status, exc.code))
            return self._error_response(exc, request)
        self._record(TokenRecord("token", tenant, client_id, 200))
        return JSONResponse(body, headers={"Cache-Control": "no-store, no-cache", "Pragma": "no-cache"})

    def _client_credentials(self, tenant: str, form: dict[str, str]) -> dict[str, Any]:
        grant_type = form.get("grant_type", "")
        if grant_type != "client_credentials":
            raise EntraError(
                400,
                "unsupported_grant_type",
                70003,
                f"The app requested an unsupported grant type '{grant_type}'. "
                "The sandbox only serves the client credentials grant.",
            )
        for required in ("client_id", "scope"):
            if not form.get(required):
                raise EntraError(
                    400,
                    "invalid_request",
                    900144,
                    f"The request body must contain the following parameter: '{required}'.",
                )
        resource = _resource_from_scope(form["scope"])
        tenant_id = self._require_tenant(tenant)
        app, _ = self._require_consented_app(tenant_id, form["client_id"])
        credential_type = self._authenticate_client(app, form)
        token = self.issue_access_token(tenant_id, app.client_id, resource, credential_type=credential_type)
        return {
            "token_type": "Bearer",
            "expires_in": ACCESS_TOKEN_LIFETIME_S,
            "ext_expires_in": ACCESS_TOKEN_LIFETIME_S,
            "access_token": token,
        }

    def _authenticate_client(self, app: AppRegistration, form: dict[str, str]) -> str:
        """Check the client's secret or assertion; returns the `appidacr` value."""
        if "client_assertion" in form:
            self._check_assertion(app, form)
            return "2"
        if "client_secret" in form:
            if app.client_secret is None or not secrets.compare_digest(form["client_secret"], app.client_secret):
                raise EntraError(
                    401,
                    "invalid_client",
                    7000215,
                    "Invalid client secret provided. Ensure the secret being sent in the request is the "
                    "client secret value, not the client secret ID, for a secret added to app "
                    f"'{app.client_id}'.",
                )
            return "1"
        raise EntraError(
            401,
            "invalid_client",
            7000218,
            "The request body must contain the following parameter: 'client_assertion' or 'client_secret'.",
        )

    def _check_assertion(self, app: AppRegistration, form: dict[str, str]) -> None:
        if form.get("client_assertion_type") != JWT_BEARER:
            raise EntraError(
                400,
                "invalid_request",
                50027,
                "Invalid client_assertion_type; expected 'urn:ietf:params:oauth:client-assertion-type:jwt-bearer'.",
            )
        assertion = form["client_assertion"]
        try:
            claims = self.signer.decode(assertion, audiences=None)
        except jwt.ExpiredSignatureError as exc:
            raise EntraError(
                400, "invalid_client", 700024, "Client assertion is not within its valid time range."
            ) from exc
        except jwt.InvalidTokenError as exc:
            # Certificate-signed assertions land here too: certificates are not modelled.
            raise EntraError(401, "invalid_client", 700027, "Client assertion failed signature validation.") from exc
        issuer, subject, audience = str(claims.get("iss")), str(claims.get("sub")), claims.get("aud")
        if not (
            app.federated_subject is not None
            and subject == app.federated_subject
            and audience == TOKEN_EXCHANGE_AUDIENCE
            and (app.federated_issuer is None or issuer == app.federated_issuer)
        ):
            raise EntraError(
                400,
                "invalid_request",
                70021,
                "No matching federated identity record found for presented assertion. "
                f"Assertion Issuer: '{issuer}'. Assertion Subject: '{subject}'. "
                f"Assertion Audience: '{audience}'.",
            )

    def _error_response(self, exc: EntraError, request: Request) -> JSONResponse:
        trace_id = str(uuid.uuid4())
        correlation_id = request.headers.get("client-request-id") or str(uuid.uuid4())
        timestamp = dt.datetime.now(dt.UTC).strftime("%Y-%m-%d %H:%M:%SZ")
        description = (
            f"AADSTS{exc.code}: {exc.description}\r\nTrace ID: {trace_id}\r\n"
            f"Correlation ID: {correlation_id}\r\nTimestamp: {timestamp}"
        )
        return JSONResponse(
            {
                "error": exc.error,
                "error_description": description,
                "error_codes": [exc.code],
                "timestamp": timestamp,
                "trace_id": trace_id,
                "correlation_id": correlation_id,
                "error_uri": f"{PUBLIC_CLOUD_LOGIN}/error?code={exc.code}",
            },
            status_code=exc.status,
            headers={"Cache-Control": "no-store, no-cache", "Pragma": "no-cache"},
        )

    def _record(self, record: TokenRecord) -> None:
        with self._lock:
            self._state.log.append(record)

    # -- HTTP: managed identity (App Service protocol) ---------------------------------------

    def identity_app(self) -> Starlette:
        return Starlette(routes=[Route("/msi/token", self._msi_token)])

    async def _msi_token(self, request: Request) -> Response:
        params = request.query_params
        client_id = params.get("client_id", "")
        if not secrets.compare_digest(request.headers.get("x-identity-header", ""), self.identity_header):
            return self._msi_error(401, "Unauthorized: X-IDENTITY-HEADER is missing or invalid.", client_id)
        if params.get("api-version") != "2019-08-01":
            return self._msi_error(400, "Unsupported api-version; expected 2019-08-01.", client_id)
        resource = params.get("resource", "").removesuffix("/.default")
        if not resource:
            return self._msi_error(400, "Required query parameter 'resource' is missing.", client_id)
        identity = self._find_identity(params)
        if identity is None:
            return self._msi_error(
                400, "No managed identity found for specified ClientId/ResourceId/PrincipalId.", client_id
            )
        token, expires_on = self._managed_identity_token(identity, resource)
        self._record(TokenRecord("msi", identity.tenant_id, identity.client_id, 200))
        return JSONResponse(
            {
                "access_token": token,
                "expires_on": str(expires_on),
                "resource": resource,
                "token_type": "Bearer",
                "client_id": identity.client_id,
            }
        )

    def _find_identity(self, params: Mapping[str, str]) -> ManagedIdentity | None:
        with self._lock:
            identities = list(self._state.identities.values())
        if "client_id" in params:
            return next((i for i in identities if i.client_id == params["client_id"].lower()), None)
        if "object_id" in params or "principal_id" in params:
            wanted = (params.get("object_id") or params.get("principal_id") or "").lower()
            return next((i for i in identities if i.principal_id == wanted), None)
        if "mi_res_id" in params:
            return next((i for i in identities if i.resource_id.lower() == params["mi_res_id"].lower()), None)
        # No selector means the system-assigned identity, which the sandbox only fakes when exactly
        # one identity exists (production TierOne always names its user-assigned identity).
        return identities[0] if len(identities) == 1 else None

    def _msi_error(self, status: int, message: str, client_id: str) -> JSONResponse:
        self._record(TokenRecord("msi", "", client_id, status))
        return JSONResponse(
            {"statusCode": status, "message": message, "correlationId": str(uuid.uuid4())},
            status_code=status,
        )


def roles_for_resource(resource: str, permissions: Iterable[str]) -> list[str]:
    """The consented permissions that belong to `resource` (what lands in its tokens' `roles`)."""
    if resource == EXCHANGE_RESOURCE:
        return [p for p in permissions if p in EXCHANGE_APP_ROLES]
    if resource == GRAPH_RESOURCE:
        return [p for p in permissions if p not in EXCHANGE_APP_ROLES]
    return []


def _resource_from_scope(scope: str) -> str:
    """`https://graph.microsoft.com/.default` → the resource; anything else is refused like Entra."""
    scopes = [s for s in scope.split() if s not in _RESERVED_SCOPES]
    if len(scopes) != 1 or not scopes[0].endswith("/.default"):
        raise EntraError(
            400,
            "invalid_scope",
            1002012,
            f"The provided value for scope {scope} is not valid. Client credential flows must have a "
            "scope value with /.default suffixed to the resource identifier (application ID URI).",
        )
    requested = scopes[0].removesuffix("/.default")
    resource = KNOWN_RESOURCES.get(requested) or KNOWN_RESOURCES.get(requested.rstrip("/"))
    if resource is None:
        raise EntraError(
            400,
            "invalid_resource",
            500011,
            f"The resource principal named {requested} was not found in the tenant. This can happen if "
            "the application has not been installed by the administrator of the tenant or consented to "
            "by any user in the tenant.",
        )
    return resource


def _merge_basic_auth(request: Request, form: dict[str, str]) -> None:
    """client_secret_basic: the client id and secret may come in an Authorization header."""
    header = request.headers.get("authorization", "")
    if not header.lower().startswith("basic "):
        return
    try:
        decoded = base64.b64decode(header[6:]).decode("utf-8")
    except ValueError:
        return
    client_id, _, secret = decoded.partition(":")
    form.setdefault("client_id", client_id)
    form.setdefault("client_secret", secret)


class SandboxCredential:
    """A sync azure-core TokenCredential minting sandbox tokens directly, for tests that are not
    about authentication. Production code uses azure-identity against the servers instead."""

    def __init__(self, entra: EntraSandbox, tenant_id: str, client_id: str) -> None:
        self._entra = entra
        self._tenant_id = tenant_id
        self._client_id = client_id

    def get_token(self, *scopes: str, **kwargs: Any) -> Any:
        from azure.core.credentials import AccessToken

        resource = _resource_from_scope(" ".join(scopes))
        token = self._entra.issue_access_token(self._tenant_id, self._client_id, resource)
        return AccessToken(token, int(time.time()) + ACCESS_TOKEN_LIFETIME_S)


def decode_unverified(token: str) -> dict[str, Any]:
    """The claims of a JWT without checking it (for tests and diagnostics)."""
    payload = token.split(".")[1]
    padded = payload + "=" * (-len(payload) % 4)
    claims: dict[str, Any] = json.loads(base64.urlsafe_b64decode(padded))
    return claims

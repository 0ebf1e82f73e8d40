"""A stand-in for Exchange Online's admin REST endpoint (the "InvokeCommand" API the EXO V3
PowerShell module and CIPP use, graph.md §6.2), over the same tenants as the Graph sandbox.

`ExchangeSandbox(graph)` serves `POST {admin_url}/{tenantId}/InvokeCommand` with the body
`{"CmdletInput": {"CmdletName": "...", "Parameters": {...}}}` on its own loopback port (plain
http). State is the Graph sandbox's: a user with a mail address has a mailbox, a shared mailbox is a
disabled user with a SharedMailbox, and distribution lists and mail-enabled security groups are the
Graph groups of those kinds — so a member added here shows in `GET /groups/{id}/members` and an
auto-reply set through Graph's mailboxSettings is what `Get-MailboxAutoReplyConfiguration` reads.

Authentication: a bearer token from the Entra sandbox for `https://outlook.office365.com` (or the
Exchange app id) whose `roles` hold `Exchange.ManageAsApp` (401 otherwise), and a service principal
with an Exchange-capable directory role in the tenant (`set_app_role`; default "Exchange Recipient
Administrator"; none → 403). Read-only roles see only Get-* cmdlets, as RBAC hides the rest.

Cmdlets: Get-Mailbox, Set-Mailbox (Type, HiddenFromAddressListsEnabled, GrantSendOnBehalfTo as a
`#Exchange.GenericHashTable` add/remove or a replacement list, ForwardingSmtpAddress,
ForwardingAddress, DeliverToMailboxAndForward), Get/Add/Remove-MailboxPermission,
Get/Add/Remove-RecipientPermission, Get/Add/Remove-DistributionGroupMember,
Get/Set-MailboxAutoReplyConfiguration. Parameter names are case-insensitive like PowerShell's.

Responses: `{"@odata.context": ..., "value": [...]}` (`value` empty for cmdlets that output nothing),
warnings in `@adminapi.warnings`, paging with `Prefer: odata.maxpagesize=N` and `@odata.nextLink`
(POST the same body to it). Errors use the service's OData shape:
`{"error": {"code", "message": "Error executing cmdlet", "details": [{"code", "target", "message":
"<ErrorId>|<ExceptionType>|<text>"}], "innererror": {"message", "type", "stacktrace",
"internalexception": {"message": "<text>", "type", "stacktrace"}}}}` — the cmdlet's own words are in
`details[].message` (prefixed) and `innererror.internalexception.message` (bare). Object-not-found
is a 404 ("NotFound"), other cmdlet failures a 400 ("BadRequest").

Judgement calls (the API is undocumented): adding an existing Full Access or Send As grant is a
warning ("The appropriate access control entry is already present on object ..."), not an error,
and so is removing one that is absent ("...because the ACE doesn't exist on the object.", the text
CIPP matches); Add/Remove-DistributionGroupMember need `BypassSecurityGroupManagerCheck` because the
app never manages the group; the inner exception key is `internalexception` (lower case, as the
service's OData serializer writes it); error ids (`Ex6F9304|...`) other than
ManagementObjectNotFoundException's are the sandbox's own; mailbox Identity/Name is the alias.
"""

from __future__ import annotations

import asyncio
import copy
import datetime as dt
import hashlib
import json
import threading
import uuid
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlencode

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from sandbox._server import BackgroundServer, ServedSandbox
from sandbox.entra_login import EXCHANGE_APP_ID, EXCHANGE_RESOURCE, TokenRejected
from sandbox.graph_tenant import GraphFaults, GraphSandbox, Mailbox, Tenant, _graph_datetime

PUBLIC_ADMIN_API = "https://outlook.office365.com/adminapi/beta"
ODATA_JSON = "application/json;odata.metadata=minimal;odata.streaming=true;IEEE754Compatible=false;charset=utf-8"
MANAGE_AS_APP = "Exchange.ManageAsApp"
# Directory roles Exchange accepts for app-only access (graph.md §6.3): full, or Get-* only.
WRITE_ROLES = frozenset({"Global Administrator", "Exchange Administrator", "Exchange Recipient Administrator"})
READ_ROLES = WRITE_ROLES | {
    "Global Reader",
    "Helpdesk Administrator",
    "Security Administrator",
    "Security Reader",
    "Compliance Administrator",
}
MAX_PAGE_SIZE = 1000

NOT_FOUND = "Microsoft.Exchange.Configuration.Tasks.ManagementObjectNotFoundException"
AMBIGUOUS = "Microsoft.Exchange.Configuration.Tasks.ManagementObjectAmbiguousException"
PARAMETER_BINDING = "System.Management.Automation.ParameterBindingException"
MEMBER_EXISTS = "Microsoft.Exchange.Management.Tasks.MemberAlreadyExistsException"
MEMBER_NOT_FOUND = "Microsoft.Exchange.Management.Tasks.MemberNotFoundException"
GROUP_MANAGER = "Microsoft.Exchange.Configuration.Tasks.OperationRequiresGroupManagerException"
SYNCED = "Microsoft.Exchange.Configuration.Tasks.TaskException"
COMMAND_NOT_FOUND = "System.Management.Automation.CommandNotFoundException"
_ERROR_IDS = {
    NOT_FOUND: "Ex6F9304",  # the id the service really uses for this exception
    AMBIGUOUS: "Ex3D4BB5",
    PARAMETER_BINDING: "Ex9A2C71",
    MEMBER_EXISTS: "ExB7465C",
    MEMBER_NOT_FOUND: "Ex4BAB7C",
    GROUP_MANAGER: "Ex2E8D0F",
    SYNCED: "Ex5C1A9E",
    COMMAND_NOT_FOUND: "Ex0D7F3B",
}
_COMMON_PARAMETERS = frozenset({"confirm", "erroraction", "warningaction", "verbose", "debug", "whatif"})
_MAILBOX_TYPES = {
    "regular": "UserMailbox",
    "shared": "SharedMailbox",
    "room": "RoomMailbox",
    "equipment": "EquipmentMailbox",
}
_AUTO_REPLY_STATES = {"disabled": "disabled", "enabled": "alwaysEnabled", "scheduled": "scheduled"}
_AUDIENCES = {"none": "none", "known": "contactsOnly", "all": "all"}
_MAILBOX_RIGHTS = ("FullAccess", "ReadPermission", "ChangeOwner", "ChangePermission", "DeleteItem", "ExternalAccount")


class ExchangeError(Exception):
    """A failed call, rendered in the admin API's OData error shape."""

    def __init__(
        self,
        status: int,
        text: str,
        exception_type: str | None = None,
        *,
        code: str | None = None,
        headers: Mapping[str, str] | None = None,
    ) -> None:
        super().__init__(text)
        self.status = status
        self.text = text
        self.exception_type = exception_type
        self.code = code or {400: "BadRequest", 401: "Unauthorized", 403: "Forbidden", 404: "NotFound"}.get(
            status, "InternalServerError"
        )
        self.headers = dict(headers or {})

    def body(self) -> dict[str, Any]:
        if self.exception_type is None:  # not a cmdlet failure: authentication, throttling, routing
            return {
                "error": {
                    "code": self.code,
                    "message": self.text,
                    "details": [{"code": "Client", "target": "", "message": self.text}],
                    "innererror": {"message": self.text, "type": "", "stacktrace": ""},
                }
            }
        error_id = _ERROR_IDS.get(self.exception_type, "Ex000000")
        return {
            "error": {
                "code": self.code,
                "message": "Error executing cmdlet",
                "details": [
                    {"code": "Client", "target": "", "message": f"{error_id}|{self.exception_type}|{self.text}"}
                ],
                "innererror": {
                    "message": "Error executing cmdlet",
                    "type": "Microsoft.Exchange.Admin.OData.Core.ODataServiceException",
                    "stacktrace": "",
                    "internalexception": {"message": self.text, "type": self.exception_type, "stacktrace": ""},
                },
                "adminapi.warnings@odata.type": "#Collection(String)",
                "@adminapi.warnings": [],
            }
        }


@dataclass(frozen=True)
class ExchangeRecord:
    """One InvokeCommand call as the sandbox saw it."""

    tenant_id: str | None
    cmdlet: str | None
    parameters: dict[str, Any]
    status: int
    request_id: str
    anchor_mailbox: str | None
    warnings: tuple[str, ...] = ()


@dataclass
class _Invocation:
    tenant: Tenant
    cmdlet: str
    params: dict[str, Any]  # lower-case parameter name -> value
    warnings: list[str] = field(default_factory=list)
    writes: bool = False

    def get(self, name: str, default: Any = None) -> Any:
        return self.params.get(name.lower(), default)

    def has(self, name: str) -> bool:
        return name.lower() in self.params


Cmdlet = Callable[[_Invocation], list[dict[str, Any]]]


@dataclass(frozen=True)
class _CmdletSpec:
    handler: Cmdlet
    parameters: frozenset[str]  # lower case
    mandatory: tuple[str, ...]
    writes: bool


class ExchangeSandbox(ServedSandbox):
    """Exchange Online's admin API for the Graph sandbox's tenants, on a loopback port.

    Seed with `add_shared_mailbox` and `set_app_role` (users, groups and licences through the
    Graph sandbox); inspect with `mailbox`, `permissions`, `request_log`; `faults` works like
    the Graph sandbox's (latency, fail_next, storm)."""

    _not_started = "ExchangeSandbox is not started"

    def __init__(self, graph: GraphSandbox) -> None:
        self.graph = graph
        self.entra = graph.entra
        self.faults = GraphFaults()
        self._lock = threading.Lock()
        self._log: list[ExchangeRecord] = []
        self._server: BackgroundServer | None = None
        self._cmdlets = self._cmdlet_table()
        self.app = Starlette(
            routes=[
                Route("/adminapi/beta/{tenant}/InvokeCommand", self._invoke, methods=["POST"]),
                Route("/adminapi/{rest:path}", self._unknown, methods=["GET", "POST", "PATCH", "PUT", "DELETE"]),
            ]
        )

    # -- lifecycle ---------------------------------------------------------------------------

    def start(self) -> ExchangeSandbox:
        if self._server is None:
            self._serve(self.app, "exchange-sandbox")
        return self

    def stop(self) -> None:
        self._stop_server()

    @property
    def admin_url(self) -> str:
        """Stands for https://outlook.office365.com/adminapi/beta: POST {admin_url}/{tenant}/InvokeCommand."""
        return f"{self.url}/adminapi/beta"

    # -- seeding -----------------------------------------------------------------------------

    def add_shared_mailbox(self, tenant_id: str, display_name: str, address: str) -> dict[str, Any]:
        """A shared mailbox (a disabled Entra user with a SharedMailbox); returns the Graph user."""
        return self.graph.add_shared_mailbox(tenant_id, display_name, address)

    def set_app_role(self, tenant_id: str, role_display_name: str | None) -> None:
        """The directory role Exchange sees on TierOne's service principal (default "Exchange
        Recipient Administrator"; read-only roles get Get-* cmdlets only; None → 403)."""
        with self.graph._lock:
            self.graph._tenant(tenant_id).exchange_role = role_display_name

    # -- introspection -----------------------------------------------------------------------

    def mailbox(self, tenant_id: str, identity: str) -> dict[str, Any]:
        """What Get-Mailbox shows for the mailbox, plus its permissions and auto-reply state."""
        with self.graph._lock:
            tenant = self.graph._tenant(tenant_id)
            user, mailbox = self._find_mailbox(tenant, identity)
            view = self._mailbox_view(tenant, user, mailbox)
            view["AutoReply"] = copy.deepcopy(mailbox.auto_reply)
            view["Permissions"] = self._permission_summary(tenant, mailbox)
            return view

    def permissions(self, tenant_id: str, identity: str) -> dict[str, Any]:
        """{"FullAccess": {upn: automapping}, "SendAs": [upn], "SendOnBehalf": [upn]}."""
        with self.graph._lock:
            tenant = self.graph._tenant(tenant_id)
            _, mailbox = self._find_mailbox(tenant, identity)
            return self._permission_summary(tenant, mailbox)

    @property
    def request_log(self) -> list[ExchangeRecord]:
        with self._lock:
            return list(self._log)

    def clear_request_log(self) -> None:
        with self._lock:
            self._log.clear()

    # -- HTTP --------------------------------------------------------------------------------

    async def _unknown(self, request: Request) -> Response:
        error = ExchangeError(404, f"The requested resource '{request.url.path}' was not found.", code="NotFound")
        return self._error_response(error, str(uuid.uuid4()))

    async def _invoke(self, request: Request) -> Response:
        request_id = str(uuid.uuid4())
        anchor = request.headers.get("x-anchormailbox")
        tenant_id: str | None = None
        cmdlet_name: str | None = None
        parameters: dict[str, Any] = {}
        warnings: list[str] = []
        try:
            latency = self.faults.latency_ms
            if latency:
                await asyncio.sleep(latency / 1000)
            claims = self._authenticate(request)
            tenant = self._authorise(request, claims)
            tenant_id = tenant.id
            cmdlet_name, parameters = await self._read_body(request)
            fault = self.faults.take("POST")
            if fault is not None and not fault.after_applying:
                raise _fault_error(fault.status, fault.retry_after)
            values, warnings = self._run(tenant, cmdlet_name, parameters)
            if fault is not None:
                raise _fault_error(fault.status, fault.retry_after)
            response = self._page(request, tenant, values, warnings)
        except ExchangeError as error:
            response = self._error_response(error, request_id)
        response.headers["request-id"] = request_id
        self._record(
            ExchangeRecord(
                tenant_id, cmdlet_name, parameters, response.status_code, request_id, anchor, tuple(warnings)
            )
        )
        return response

    def _authenticate(self, request: Request) -> dict[str, Any]:
        header = request.headers.get("authorization", "")
        scheme, _, token = header.partition(" ")
        challenge = {
            "WWW-Authenticate": f'Bearer client_id="{EXCHANGE_APP_ID}", '
            'trusted_issuers="00000001-0000-0000-c000-000000000000@*", '
            'token_types="app_asserted_user_v1 service_asserted_app_v1", '
            'authorization_uri="https://login.microsoftonline.com/common/oauth2/authorize", error="invalid_token"'
        }
        try:
            if scheme.lower() != "bearer":
                raise TokenRejected("Access token is empty.")
            claims = self.entra.verify_access_token(
                token.strip(), [EXCHANGE_RESOURCE, EXCHANGE_RESOURCE + "/", EXCHANGE_APP_ID]
            )
        except TokenRejected as exc:
            raise ExchangeError(401, str(exc), headers=challenge) from exc
        if MANAGE_AS_APP not in (claims.get("roles") or []):
            # Sandbox wording: the service answers 401 to a token without its app role.
            raise ExchangeError(
                401, f"The access token does not grant the {MANAGE_AS_APP} application permission.", headers=challenge
            )
        return claims

    def _authorise(self, request: Request, claims: Mapping[str, Any]) -> Tenant:
        reference = request.path_params["tenant"]
        tenant = self.graph._tenant_by_reference(reference)
        if tenant is None or tenant.id != claims.get("tid"):
            # Sandbox wording: the organization in the URL must be the token's.
            raise ExchangeError(401, f"The tenant '{reference}' in the request URL is not the access token's tenant.")
        if tenant.exchange_role not in READ_ROLES:
            raise ExchangeError(
                403,
                f"The role assigned to application {claims.get('appid')} isn't supported in this scenario. Please "
                "check online documentation for assigning correct Directory Roles to Azure AD Application for EXO "
                "App-Only Authentication.",
            )
        return tenant

    @staticmethod
    async def _read_body(request: Request) -> tuple[str, dict[str, Any]]:
        try:
            body = json.loads(await request.body() or b"null")
        except ValueError as exc:
            raise ExchangeError(400, "The request body is not valid JSON.", code="BadRequest") from exc
        cmdlet_input = body.get("CmdletInput") if isinstance(body, dict) else None
        if not isinstance(cmdlet_input, dict):
            raise ExchangeError(400, "The request body must contain CmdletInput.CmdletName.", code="BadRequest")
        name = cmdlet_input.get("CmdletName")
        if not isinstance(name, str) or not name:
            raise ExchangeError(400, "The request body must contain CmdletInput.CmdletName.", code="BadRequest")
        parameters = cmdlet_input.get("Parameters") or {}
        if not isinstance(parameters, dict):
            raise ExchangeError(400, "CmdletInput.Parameters must be an object.", code="BadRequest")
        return name, parameters

    def _run(self, tenant: Tenant, name: str, parameters: Mapping[str, Any]) -> tuple[list[dict[str, Any]], list[str]]:
        spec = self._cmdlets.get(name.lower())
        can_write = tenant.exchange_role in WRITE_ROLES
        if spec is None or (spec.writes and not can_write):
            raise ExchangeError(
                400,
                f"The term '{name}' is not recognized as a name of a cmdlet, function, script file, or executable "
                "program. Check the spelling of the name, or if a path was included, verify that the path is correct "
                "and try again.",
                COMMAND_NOT_FOUND,
            )
        params = {k.lower(): v for k, v in parameters.items()}
        for key in params:
            if key not in spec.parameters and key not in _COMMON_PARAMETERS:
                original = next(k for k in parameters if k.lower() == key)
                raise ExchangeError(
                    400, f"A parameter cannot be found that matches parameter name '{original}'.", PARAMETER_BINDING
                )
        missing = [m for m in spec.mandatory if params.get(m.lower()) in (None, "", [])]
        if missing:
            raise ExchangeError(
                400,
                f"Cannot process command because of one or more missing mandatory parameters: {' '.join(missing)}.",
                PARAMETER_BINDING,
            )
        invocation = _Invocation(tenant, name, params, writes=spec.writes)
        with self.graph._lock:
            values = spec.handler(invocation)
        return values, invocation.warnings

    def _page(self, request: Request, tenant: Tenant, values: list[dict[str, Any]], warnings: list[str]) -> Response:
        selected = request.query_params.get("$select") or request.query_params.get("select")
        if selected:
            keep = [p.strip() for p in selected.split(",") if p.strip()]
            values = [{k: v for k, v in item.items() if k in keep} for item in values]
        page_size = MAX_PAGE_SIZE
        for part in request.headers.get("prefer", "").split(","):
            key, _, value = part.strip().partition("=")
            if key.lower() == "odata.maxpagesize" and value.isdigit():
                page_size = max(1, min(int(value), MAX_PAGE_SIZE))
        token = request.query_params.get("$skiptoken", "0")
        offset = int(token) if token.isdigit() else 0
        body: dict[str, Any] = {
            "@odata.context": f"{PUBLIC_ADMIN_API}/{tenant.id}/$metadata#Collection(Exchange.GenericHashTable)",
        }
        if warnings:
            body["adminapi.warnings@odata.type"] = "#Collection(String)"
            body["@adminapi.warnings"] = list(warnings)
        body["value"] = values[offset : offset + page_size]
        if offset + page_size < len(values):
            params = [(k, v) for k, v in request.query_params.multi_items() if k != "$skiptoken"]
            params.append(("$skiptoken", str(offset + page_size)))
            body["@odata.nextLink"] = f"{str(request.base_url).rstrip('/')}{request.url.path}?{urlencode(params)}"
        return JSONResponse(body, media_type=ODATA_JSON)

    @staticmethod
    def _error_response(error: ExchangeError, request_id: str) -> Response:
        return JSONResponse(error.body(), status_code=error.status, headers={**error.headers, "request-id": request_id})

    def _record(self, record: ExchangeRecord) -> None:
        with self._lock:
            self._log.append(record)

    # -- recipients --------------------------------------------------------------------------

    @staticmethod
    def _server_name(tenant: Tenant) -> str:
        digest = hashlib.sha256(tenant.id.encode()).hexdigest().upper()
        return f"AM{digest[0]}PR0{digest[1]}A0{digest[2]}DC00{digest[3]}.EURPRD0{digest[4]}.PROD.OUTLOOK.COM"

    @staticmethod
    def _user_keys(user: Mapping[str, Any]) -> set[str]:
        keys = {user["id"], user["userPrincipalName"], user.get("mail") or "", user.get("mailNickname") or ""}
        keys.add(user.get("displayName") or "")
        keys.update(str(a).split(":", 1)[-1] for a in user.get("proxyAddresses") or [])
        return {k.lower() for k in keys if k}

    @staticmethod
    def _group_keys(group: Mapping[str, Any]) -> set[str]:
        keys = {group["id"], group.get("displayName") or "", group.get("mailNickname") or "", group.get("mail") or ""}
        keys.update(str(a).split(":", 1)[-1] for a in group.get("proxyAddresses") or [])
        return {k.lower() for k in keys if k}

    def _not_found(self, tenant: Tenant, identity: Any) -> ExchangeError:
        return ExchangeError(
            404,
            f"The operation couldn't be performed because object '{identity}' couldn't be found on "
            f"'{self._server_name(tenant)}'.",
            NOT_FOUND,
        )

    @staticmethod
    def _ambiguous(identity: Any) -> ExchangeError:
        return ExchangeError(
            400, f"The operation couldn't be performed because '{identity}' matches multiple entries.", AMBIGUOUS
        )

    def _find_mailbox(self, tenant: Tenant, identity: Any) -> tuple[dict[str, Any], Mailbox]:
        wanted = str(identity).lower()
        matches = [u for u in tenant.users.values() if u.get("mail") and wanted in self._user_keys(u)]
        if not matches:
            raise self._not_found(tenant, identity)
        if len(matches) > 1:
            raise self._ambiguous(identity)
        mailbox = tenant.mailbox_of(matches[0])
        assert mailbox is not None
        return matches[0], mailbox

    @staticmethod
    def _member_not_found(identity: Any) -> ExchangeError:
        return ExchangeError(
            404,
            f'Couldn\'t find object "{identity}". Please make sure that it was spelled correctly or specify a '
            "different object.",
            NOT_FOUND,
        )

    def _find_recipient_user(self, tenant: Tenant, identity: Any, *, mailbox_only: bool = False) -> dict[str, Any]:
        """A user named in User/Trustee/Member/GrantSendOnBehalfTo-style parameters."""
        wanted = str(identity).lower()
        matches = [
            u for u in tenant.users.values() if wanted in self._user_keys(u) and (u.get("mail") or not mailbox_only)
        ]
        if not matches:
            raise self._member_not_found(identity)
        if len(matches) > 1:
            raise self._ambiguous(identity)
        return matches[0]

    def _find_distribution_group(self, tenant: Tenant, identity: Any) -> dict[str, Any]:
        """Distribution lists and mail-enabled security groups (Microsoft 365 groups are not
        distribution groups to Exchange, and plain security groups are not recipients at all)."""
        wanted = str(identity).lower()
        matches = [
            g
            for g in tenant.groups.values()
            if g.get("mailEnabled") and "Unified" not in g.get("groupTypes", []) and wanted in self._group_keys(g)
        ]
        if not matches:
            raise self._not_found(tenant, identity)
        if len(matches) > 1:
            raise self._ambiguous(identity)
        return matches[0]

    @staticmethod
    def _name(user: Mapping[str, Any]) -> str:
        return str(user.get("mailNickname") or user["userPrincipalName"].split("@")[0])

    def _recipient_view(self, tenant: Tenant, object_id: str) -> dict[str, Any] | None:
        found = tenant.find_object(object_id)
        if found is None:
            return None
        kind, entity = found
        if kind == "user":
            mailbox = tenant.mailbox_of(entity)
            details = mailbox.kind if mailbox else "User"
            recipient_type = "UserMailbox" if mailbox else "User"
            return {
                "Identity": self._name(entity),
                "Name": self._name(entity),
                "DisplayName": entity["displayName"],
                "Alias": entity.get("mailNickname"),
                "PrimarySmtpAddress": entity.get("mail"),
                "RecipientType": recipient_type,
                "RecipientTypeDetails": details,
                "ExternalDirectoryObjectId": entity["id"],
            }
        security = entity.get("securityEnabled")
        return {
            "Identity": entity["mailNickname"],
            "Name": entity["mailNickname"],
            "DisplayName": entity["displayName"],
            "Alias": entity["mailNickname"],
            "PrimarySmtpAddress": entity.get("mail"),
            "RecipientType": "MailUniversalSecurityGroup" if security else "MailUniversalDistributionGroup",
            "RecipientTypeDetails": "MailUniversalSecurityGroup" if security else "MailUniversalDistributionGroup",
            "ExternalDirectoryObjectId": entity["id"],
        }

    def _mailbox_view(self, tenant: Tenant, user: Mapping[str, Any], mailbox: Mailbox) -> dict[str, Any]:
        name = self._name(user)
        forwarding = tenant.users.get(mailbox.forwarding_address or "")
        return {
            "Identity": name,
            "Id": name,
            "Name": name,
            "Alias": user.get("mailNickname"),
            "DisplayName": user["displayName"],
            "PrimarySmtpAddress": user.get("mail"),
            "UserPrincipalName": user["userPrincipalName"],
            "EmailAddresses": list(user.get("proxyAddresses") or []),
            "RecipientType": "UserMailbox",
            "RecipientTypeDetails": mailbox.kind,
            "IsMailboxEnabled": True,
            "IsDirSynced": bool(user.get("onPremisesSyncEnabled")),
            "AccountDisabled": not user.get("accountEnabled", True),
            "HiddenFromAddressListsEnabled": mailbox.hidden,
            "GrantSendOnBehalfTo": [self._name(tenant.users[u]) for u in mailbox.send_on_behalf if u in tenant.users],
            "ForwardingAddress": self._name(forwarding) if forwarding else None,
            "ForwardingSmtpAddress": mailbox.forwarding_smtp_address,
            "DeliverToMailboxAndForward": mailbox.deliver_to_mailbox_and_forward,
            "ExternalDirectoryObjectId": user["id"],
            "ExchangeGuid": mailbox.exchange_guid,
            "Guid": str(uuid.uuid5(uuid.NAMESPACE_OID, user["id"])),
            "WhenCreated": user.get("createdDateTime"),
        }

    @staticmethod
    def _permission_summary(tenant: Tenant, mailbox: Mailbox) -> dict[str, Any]:
        def upn(uid: str) -> str:
            return str(tenant.users[uid]["userPrincipalName"]) if uid in tenant.users else uid

        return {
            "FullAccess": {upn(u): bool(g["auto_mapping"]) for u, g in mailbox.full_access.items()},
            "SendAs": [upn(u) for u in mailbox.send_as],
            "SendOnBehalf": [upn(u) for u in mailbox.send_on_behalf],
        }

    # -- cmdlets -----------------------------------------------------------------------------

    def _cmdlet_table(self) -> dict[str, _CmdletSpec]:
        def spec(
            handler: Cmdlet, params: Iterable[str], mandatory: Iterable[str] = (), writes: bool = True
        ) -> _CmdletSpec:
            return _CmdletSpec(handler, frozenset(p.lower() for p in params), tuple(mandatory), writes)

        table = {
            "Get-Mailbox": spec(self._get_mailbox, ("Identity", "ResultSize", "RecipientTypeDetails"), writes=False),
            "Set-Mailbox": spec(
                self._set_mailbox,
                (
                    "Identity",
                    "Type",
                    "HiddenFromAddressListsEnabled",
                    "GrantSendOnBehalfTo",
                    "ForwardingSmtpAddress",
                    "ForwardingAddress",
                    "DeliverToMailboxAndForward",
                    "Force",
                ),
                ("Identity",),
            ),
            "Get-MailboxPermission": spec(self._get_mailbox_permission, ("Identity", "User"), ("Identity",), False),
            "Add-MailboxPermission": spec(
                self._add_mailbox_permission,
                ("Identity", "User", "AccessRights", "AutoMapping", "InheritanceType"),
                ("Identity", "User", "AccessRights"),
            ),
            "Remove-MailboxPermission": spec(
                self._remove_mailbox_permission,
                ("Identity", "User", "AccessRights", "InheritanceType", "BypassMasterAccountSid"),
                ("Identity", "User", "AccessRights"),
            ),
            "Get-RecipientPermission": spec(
                self._get_recipient_permission, ("Identity", "Trustee", "AccessRights"), ("Identity",), False
            ),
            "Add-RecipientPermission": spec(
                self._add_recipient_permission,
                ("Identity", "Trustee", "AccessRights"),
                ("Identity", "Trustee", "AccessRights"),
            ),
            "Remove-RecipientPermission": spec(
                self._remove_recipient_permission,
                ("Identity", "Trustee", "AccessRights"),
                ("Identity", "Trustee", "AccessRights"),
            ),
            "Get-DistributionGroupMember": spec(
                self._get_group_members, ("Identity", "ResultSize"), ("Identity",), False
            ),
            "Add-DistributionGroupMember": spec(
                self._add_group_member,
                ("Identity", "Member", "BypassSecurityGroupManagerCheck"),
                ("Identity", "Member"),
            ),
            "Remove-DistributionGroupMember": spec(
                self._remove_group_member,
                ("Identity", "Member", "BypassSecurityGroupManagerCheck"),
                ("Identity", "Member"),
            ),
            "Get-MailboxAutoReplyConfiguration": spec(self._get_auto_reply, ("Identity",), ("Identity",), False),
            "Set-MailboxAutoReplyConfiguration": spec(
                self._set_auto_reply,
                (
                    "Identity",
                    "AutoReplyState",
                    "InternalMessage",
                    "ExternalMessage",
                    "ExternalAudience",
                    "StartTime",
                    "EndTime",
                ),
                ("Identity",),
            ),
        }
        return {name.lower(): value for name, value in table.items()}

    # Get-Mailbox / Set-Mailbox

    def _get_mailbox(self, call: _Invocation) -> list[dict[str, Any]]:
        tenant = call.tenant
        if call.get("Identity") not in (None, ""):
            user, mailbox = self._find_mailbox(tenant, call.get("Identity"))
            return [self._mailbox_view(tenant, user, mailbox)]
        wanted = call.get("RecipientTypeDetails")
        kinds = {str(k).lower() for k in ([wanted] if isinstance(wanted, str) else wanted or [])}
        views = []
        for candidate in tenant.users.values():
            found = tenant.mailbox_of(candidate)
            if found is not None and (not kinds or found.kind.lower() in kinds):
                views.append(self._mailbox_view(tenant, candidate, found))
        return views

    def _set_mailbox(self, call: _Invocation) -> list[dict[str, Any]]:
        tenant = call.tenant
        user, mailbox = self._find_mailbox(tenant, call.get("Identity"))
        name = self._name(user)
        before = copy.deepcopy(mailbox)
        if call.has("Type"):
            kind = _MAILBOX_TYPES.get(str(call.get("Type")).lower())
            if kind is None:
                raise ExchangeError(
                    400,
                    f"Cannot bind parameter 'Type'. Cannot convert value \"{call.get('Type')}\" to type "
                    '"Microsoft.Exchange.Management.RecipientTasks.ConvertibleMailboxSubType". Error: "Unable to '
                    f"match the identifier name {call.get('Type')} to a valid enumerator name. Specify one of the "
                    'following enumerator names and try again: Regular, Room, Equipment, Shared"',
                    PARAMETER_BINDING,
                )
            mailbox.kind = kind
        if call.has("HiddenFromAddressListsEnabled"):
            hidden = _boolean(call.get("HiddenFromAddressListsEnabled"), "HiddenFromAddressListsEnabled")
            if user.get("onPremisesSyncEnabled") and hidden != mailbox.hidden:
                raise ExchangeError(
                    400,
                    f"The operation on mailbox \"{name}\" failed because it's out of the current user's write scope. "
                    f"The action 'Set-Mailbox', 'HiddenFromAddressListsEnabled', can't be performed on the object "
                    f"'{name}' because the object is being synchronized from your on-premises organization. This "
                    "action should be performed on the object in your on-premises organization.",
                    SYNCED,
                )
            mailbox.hidden = hidden
        if call.has("GrantSendOnBehalfTo"):
            self._apply_send_on_behalf(tenant, mailbox, call.get("GrantSendOnBehalfTo"))
        if call.has("ForwardingSmtpAddress"):
            value = call.get("ForwardingSmtpAddress")
            mailbox.forwarding_smtp_address = None if value in (None, "") else _smtp(str(value))
        if call.has("ForwardingAddress"):
            value = call.get("ForwardingAddress")
            target = None if value in (None, "") else self._find_recipient_user(tenant, value, mailbox_only=True)
            mailbox.forwarding_address = target["id"] if target else None
        if call.has("DeliverToMailboxAndForward"):
            mailbox.deliver_to_mailbox_and_forward = _boolean(
                call.get("DeliverToMailboxAndForward"), "DeliverToMailboxAndForward"
            )
        if mailbox == before:
            call.warnings.append(f"The command completed successfully but no settings of '{name}' have been modified.")
        return []

    def _apply_send_on_behalf(self, tenant: Tenant, mailbox: Mailbox, value: Any) -> None:
        def ids(raw: Any) -> list[str]:
            items = raw if isinstance(raw, list) else [raw]
            return [self._find_recipient_user(tenant, item, mailbox_only=True)["id"] for item in items if item]

        if isinstance(value, dict):  # {"@odata.type": "#Exchange.GenericHashTable", "add": ..., "remove": ...}
            changes = {k.lower(): v for k, v in value.items() if not k.startswith("@")}
            unknown = [k for k in changes if k not in ("add", "remove")]
            if unknown:
                raise ExchangeError(
                    400,
                    f"Cannot bind parameter 'GrantSendOnBehalfTo'. The hashtable key '{unknown[0]}' isn't valid; "
                    "use Add or Remove.",
                    PARAMETER_BINDING,
                )
            for uid in ids(changes.get("add")):
                if uid not in mailbox.send_on_behalf:
                    mailbox.send_on_behalf.append(uid)
            for uid in ids(changes.get("remove")):
                if uid in mailbox.send_on_behalf:
                    mailbox.send_on_behalf.remove(uid)
        else:  # a plain value replaces the list; $null clears it
            mailbox.send_on_behalf = list(dict.fromkeys(ids(value))) if value is not None else []

    # Full Access

    @staticmethod
    def _rights(call: _Invocation, allowed: Iterable[str]) -> list[str]:
        raw = call.get("AccessRights")
        items = raw if isinstance(raw, list) else str(raw).split(",")
        rights = []
        for item in items:
            match = next((a for a in allowed if a.lower() == str(item).strip().lower()), None)
            if match is None:
                raise ExchangeError(
                    400,
                    f"Cannot bind parameter 'AccessRights' to the target. Exception setting \"AccessRights\": "
                    f'"Unable to match the identifier name {str(item).strip()} to a valid enumerator name. Specify '
                    f'one of the following enumerator names and try again: {", ".join(allowed)}"',
                    PARAMETER_BINDING,
                )
            rights.append(match)
        return rights

    def _get_mailbox_permission(self, call: _Invocation) -> list[dict[str, Any]]:
        tenant = call.tenant
        user, mailbox = self._find_mailbox(tenant, call.get("Identity"))
        name = self._name(user)
        entries = [_ace(name, "NT AUTHORITY\\SELF", ["FullAccess, ReadPermission"], "All")]
        for uid, grant in mailbox.full_access.items():
            if uid in tenant.users:
                entries.append(
                    _ace(name, tenant.users[uid]["userPrincipalName"], grant["rights"], grant["inheritance"])
                )
        if call.get("User"):
            trustee = self._find_recipient_user(tenant, call.get("User"))
            entries = [e for e in entries if e["User"].lower() == trustee["userPrincipalName"].lower()]
        return entries

    def _add_mailbox_permission(self, call: _Invocation) -> list[dict[str, Any]]:
        tenant = call.tenant
        user, mailbox = self._find_mailbox(tenant, call.get("Identity"))
        trustee = self._find_recipient_user(tenant, call.get("User"))
        rights = self._rights(call, _MAILBOX_RIGHTS)
        inheritance = str(call.get("InheritanceType") or "All")
        auto_mapping = _boolean(call.get("AutoMapping", True), "AutoMapping")
        grant = mailbox.full_access.get(trustee["id"])
        if grant is not None and set(rights) <= set(grant["rights"]):
            call.warnings.append(
                f'The appropriate access control entry is already present on object "{self._name(user)}" for '
                f'account "{trustee["userPrincipalName"]}".'
            )
            return []
        merged = sorted({*rights, *(grant["rights"] if grant else [])})
        mailbox.full_access[trustee["id"]] = {
            "rights": merged,
            "auto_mapping": auto_mapping,
            "inheritance": inheritance,
        }
        return [_ace(self._name(user), trustee["userPrincipalName"], merged, inheritance)]

    def _remove_mailbox_permission(self, call: _Invocation) -> list[dict[str, Any]]:
        tenant = call.tenant
        user, mailbox = self._find_mailbox(tenant, call.get("Identity"))
        trustee = self._find_recipient_user(tenant, call.get("User"))
        rights = self._rights(call, _MAILBOX_RIGHTS)
        grant = mailbox.full_access.get(trustee["id"])
        if grant is None or not set(rights) & set(grant["rights"]):
            call.warnings.append(
                f'Can\'t remove the access control entry on the object "{self._name(user)}" for account '
                f'"{trustee["userPrincipalName"]}" because the ACE doesn\'t exist on the object.'
            )
            return []
        remaining = [r for r in grant["rights"] if r not in rights]
        if remaining:
            grant["rights"] = remaining
        else:
            del mailbox.full_access[trustee["id"]]
        return []

    # Send As

    def _get_recipient_permission(self, call: _Invocation) -> list[dict[str, Any]]:
        tenant = call.tenant
        user, mailbox = self._find_mailbox(tenant, call.get("Identity"))
        name = self._name(user)
        entries = [_send_as(name, "NT AUTHORITY\\SELF")]
        entries += [_send_as(name, tenant.users[u]["userPrincipalName"]) for u in mailbox.send_as if u in tenant.users]
        if call.get("Trustee"):
            trustee = self._find_recipient_user(tenant, call.get("Trustee"))
            entries = [e for e in entries if e["Trustee"].lower() == trustee["userPrincipalName"].lower()]
        return entries

    def _add_recipient_permission(self, call: _Invocation) -> list[dict[str, Any]]:
        tenant = call.tenant
        user, mailbox = self._find_mailbox(tenant, call.get("Identity"))
        trustee = self._find_recipient_user(tenant, call.get("Trustee"))
        self._rights(call, ("SendAs",))
        if trustee["id"] in mailbox.send_as:
            call.warnings.append(
                f'The appropriate access control entry is already present on object "{self._name(user)}" for '
                f'account "{trustee["userPrincipalName"]}".'
            )
            return []
        mailbox.send_as.append(trustee["id"])
        return [_send_as(self._name(user), trustee["userPrincipalName"])]

    def _remove_recipient_permission(self, call: _Invocation) -> list[dict[str, Any]]:
        tenant = call.tenant
        user, mailbox = self._find_mailbox(tenant, call.get("Identity"))
        trustee = self._find_recipient_user(tenant, call.get("Trustee"))
        self._rights(call, ("SendAs",))
        if trustee["id"] not in mailbox.send_as:
            call.warnings.append(
                f'Can\'t remove the access control entry on the object "{self._name(user)}" for account '
                f'"{trustee["userPrincipalName"]}" because the ACE doesn\'t exist on the object.'
            )
            return []
        mailbox.send_as.remove(trustee["id"])
        return []

    # Distribution groups

    def _get_group_members(self, call: _Invocation) -> list[dict[str, Any]]:
        tenant = call.tenant
        group = self._find_distribution_group(tenant, call.get("Identity"))
        views = [self._recipient_view(tenant, m) for m in tenant.group_members.get(group["id"], [])]
        return [v for v in views if v is not None]

    def _check_group_write(self, call: _Invocation, group: Mapping[str, Any]) -> None:
        name = group["displayName"]
        if group.get("onPremisesSyncEnabled"):
            raise ExchangeError(
                400,
                f"The action '{call.cmdlet}', 'Members', can't be performed on the object '{name}' because the object "
                "is being synchronized from your on-premises organization. This action should be performed on the "
                "object in your on-premises organization.",
                SYNCED,
            )
        if not _boolean(call.get("BypassSecurityGroupManagerCheck", False), "BypassSecurityGroupManagerCheck"):
            raise ExchangeError(
                400,
                "You don't have sufficient permissions. "
                "This operation can only be performed by a manager of the group.",
                GROUP_MANAGER,
            )

    def _find_member(self, tenant: Tenant, identity: Any) -> str:
        wanted = str(identity).lower()
        users = [u["id"] for u in tenant.users.values() if wanted in self._user_keys(u)]
        groups = [g["id"] for g in tenant.groups.values() if g.get("mailEnabled") and wanted in self._group_keys(g)]
        matches = users + groups
        if not matches:
            raise self._member_not_found(identity)
        if len(matches) > 1:
            raise self._ambiguous(identity)
        return matches[0]

    def _add_group_member(self, call: _Invocation) -> list[dict[str, Any]]:
        tenant = call.tenant
        group = self._find_distribution_group(tenant, call.get("Identity"))
        member = self._find_member(tenant, call.get("Member"))
        self._check_group_write(call, group)
        members = tenant.group_members.setdefault(group["id"], [])
        if member in members:
            raise ExchangeError(
                400,
                f'The recipient "{call.get("Member")}" is already a member of the group "{group["displayName"]}".',
                MEMBER_EXISTS,
            )
        members.append(member)
        self.graph._refresh_licenses_of(tenant, member)
        return []

    def _remove_group_member(self, call: _Invocation) -> list[dict[str, Any]]:
        tenant = call.tenant
        group = self._find_distribution_group(tenant, call.get("Identity"))
        member = self._find_member(tenant, call.get("Member"))
        self._check_group_write(call, group)
        members = tenant.group_members.setdefault(group["id"], [])
        if member not in members:
            raise ExchangeError(
                400,
                f'The recipient "{call.get("Member")}" isn\'t a member of the group "{group["displayName"]}".',
                MEMBER_NOT_FOUND,
            )
        members.remove(member)
        self.graph._refresh_licenses_of(tenant, member)
        return []

    # Automatic replies (the same state as Graph's mailboxSettings.automaticRepliesSetting)

    def _get_auto_reply(self, call: _Invocation) -> list[dict[str, Any]]:
        user, mailbox = self._find_mailbox(call.tenant, call.get("Identity"))
        reply = mailbox.auto_reply
        state = next(k for k, v in _AUTO_REPLY_STATES.items() if v == reply["status"])
        audience = next(k for k, v in _AUDIENCES.items() if v == reply["externalAudience"])
        return [
            {
                "Identity": self._name(user),
                "MailboxOwnerId": self._name(user),
                "AutoReplyState": state.capitalize(),
                "ExternalAudience": audience.capitalize(),
                "InternalMessage": reply.get("internalReplyMessage") or "",
                "ExternalMessage": reply.get("externalReplyMessage") or "",
                "StartTime": _exchange_time(reply["scheduledStartDateTime"]["dateTime"]),
                "EndTime": _exchange_time(reply["scheduledEndDateTime"]["dateTime"]),
            }
        ]

    def _set_auto_reply(self, call: _Invocation) -> list[dict[str, Any]]:
        _user, mailbox = self._find_mailbox(call.tenant, call.get("Identity"))
        reply = mailbox.auto_reply
        if call.has("AutoReplyState"):
            reply["status"] = _enum(call.get("AutoReplyState"), _AUTO_REPLY_STATES, "AutoReplyState", "AutoReplyState")
        if call.has("ExternalAudience"):
            reply["externalAudience"] = _enum(
                call.get("ExternalAudience"), _AUDIENCES, "ExternalAudience", "ExternalAudience"
            )
        if call.has("InternalMessage"):
            reply["internalReplyMessage"] = str(call.get("InternalMessage") or "")
        if call.has("ExternalMessage"):
            reply["externalReplyMessage"] = str(call.get("ExternalMessage") or "")
        for parameter, key in (("StartTime", "scheduledStartDateTime"), ("EndTime", "scheduledEndDateTime")):
            if call.has(parameter):
                moment = _exchange_datetime(call.get(parameter), parameter)
                reply[key] = {"dateTime": _graph_datetime(moment), "timeZone": "UTC"}
        return []


# --------------------------------------------------------------------------------------------
# Helpers
# --------------------------------------------------------------------------------------------


def _fault_error(status: int, retry_after: int | None) -> ExchangeError:
    headers = {"Retry-After": str(retry_after)} if retry_after is not None else {}
    if status == 429:
        return ExchangeError(429, "Too many requests", code="TooManyRequests", headers=headers)
    if status == 503:
        return ExchangeError(503, "Service Unavailable", code="ServiceUnavailable", headers=headers)
    if status == 504:
        return ExchangeError(504, "The operation timed out.", code="GatewayTimeout", headers=headers)
    return ExchangeError(status, "An unexpected error occurred.", code="InternalServerError", headers=headers)


def _ace(identity: str, user: str, rights: list[str], inheritance: str) -> dict[str, Any]:
    return {
        "Identity": identity,
        "User": user,
        "AccessRights": list(rights),
        "IsInherited": False,
        "Deny": False,
        "InheritanceType": inheritance,
    }


def _send_as(identity: str, trustee: str) -> dict[str, Any]:
    return {
        "Identity": identity,
        "Trustee": trustee,
        "AccessControlType": "Allow",
        "AccessRights": ["SendAs"],
        "IsInherited": False,
        "InheritanceType": "None",
    }


def _boolean(value: Any, parameter: str) -> bool:
    if isinstance(value, bool):
        return value
    if isinstance(value, str) and value.lower() in ("true", "false", "$true", "$false"):
        return value.lower().lstrip("$") == "true"
    raise ExchangeError(
        400,
        f"Cannot process argument transformation on parameter '{parameter}'. Cannot convert value \"{value}\" to "
        'type "System.Boolean".',
        PARAMETER_BINDING,
    )


def _enum(value: Any, mapping: Mapping[str, str], parameter: str, type_name: str) -> str:
    key = str(value).lower()
    if key not in mapping:
        names = ", ".join(k.capitalize() for k in mapping)
        raise ExchangeError(
            400,
            f"Cannot bind parameter '{parameter}'. Cannot convert value \"{value}\" to type "
            f'"Microsoft.Exchange.Data.Storage.Management.{type_name}". Error: "Unable to match the identifier name '
            f"{value} to a valid enumerator name. Specify one of the following enumerator names and try again: "
            f'{names}"',
            PARAMETER_BINDING,
        )
    return mapping[key]


def _smtp(address: str) -> str:
    return address if address.lower().startswith("smtp:") else f"smtp:{address}"


def _exchange_datetime(value: Any, parameter: str) -> dt.datetime:
    try:
        moment = dt.datetime.fromisoformat(str(value).replace("Z", "+00:00"))
    except ValueError as exc:
        raise ExchangeError(
            400,
            f"Cannot process argument transformation on parameter '{parameter}'. Cannot convert value \"{value}\" to "
            'type "System.DateTime".',
            PARAMETER_BINDING,
        ) from exc
    return moment.astimezone(dt.UTC) if moment.tzinfo else moment.replace(tzinfo=dt.UTC)


def _exchange_time(graph_value: str) -> str:
    """Graph's "2026-05-01T08:00:00.0000000" as Exchange prints it ("2026-05-01T08:00:00")."""
    return graph_value.split(".")[0]

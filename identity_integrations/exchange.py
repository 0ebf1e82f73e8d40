"""Exchange Online for one customer tenant, through the admin API's InvokeCommand endpoint.

Graph cannot grant Full Access, Send As or Send on Behalf, change distribution-list or
mail-enabled security-group membership, convert a mailbox to shared or hide it from the address
list (graph.md §4.2, §6). The Exchange Online PowerShell module does it by POSTing each cmdlet to
`{base}/{tenantId}/InvokeCommand` as `{"CmdletInput": {"CmdletName", "Parameters"}}` with an
app-only token for https://outlook.office365.com; this adapter does the same over httpx.

Retries follow the Graph adapter's rule: a read (a Get- cmdlet) is retried on throttling and 5xx,
honouring Retry-After; a write is sent once (every InvokeCommand is a POST, so "read" is decided by
the cmdlet's verb) and a 429/5xx/timeout surfaces as a TransientError, so the playbook's ledger
checks the mailbox before it tries again. Only a connection that never reached Exchange is retried."""

from __future__ import annotations

import asyncio
import logging
import re
import threading
from typing import Any

import httpx
from pydantic import BaseModel, Field

from identity_integrations.credentials import TenantCredentials
from identity_integrations.models import WriteReceipt
from tierone.errors import PermanentError, TransientError
from tierone.settings import Settings

log = logging.getLogger("tierone.exchange")

# The arbitration mailbox the EXO module anchors tenant-wide cmdlets on (CIPP's default too).
SYSTEM_MAILBOX = "SystemMailbox{bb558c35-97f1-4cb9-8ff7-d53741dc928c}"
READ_ATTEMPTS = 4
PAGE_SIZE = 1000  # Prefer: odata.maxpagesize (the service's maximum)
MAX_RETRY_AFTER_SECONDS = 30.0
TIMEOUT = httpx.Timeout(60.0, connect=10.0)
# "Ex6F9304|Microsoft.Exchange.Configuration.Tasks.ManagementObjectNotFoundException|The operation..."
_ERROR_PREFIX = re.compile(r"^(?:[A-Za-z0-9]+\|)?(?P<type>[\w.]+(?:Exception|Error))\|(?P<text>.*)$", re.DOTALL)
_SELF = "nt authority\\self"


class ExchangeError(PermanentError):
    """Exchange refused a cmdlet for a reason retrying cannot change."""

    def __init__(self, cmdlet: str, status: int, kind: str, message: str) -> None:
        super().__init__(f"Exchange {cmdlet}: {status} {kind + ': ' if kind else ''}{message}")
        self.cmdlet = cmdlet
        self.status = status
        self.kind = kind  # the .NET exception's short name, e.g. ManagementObjectNotFoundException
        self.message = message

    def mentions(self, *fragments: str) -> bool:
        text = f"{self.kind} {self.message}".lower()
        return any(fragment.lower() in text for fragment in fragments)

    @property
    def not_found(self) -> bool:
        return self.status == 404 or self.mentions("ManagementObjectNotFound", "couldn't be found")


class Mailbox(BaseModel):
    """The parts of Get-Mailbox the playbooks read."""

    identity: str
    display_name: str = ""
    user_principal_name: str = ""
    primary_smtp_address: str = ""
    alias: str = ""
    external_id: str | None = None  # the Entra object id (ExternalDirectoryObjectId)
    recipient_type: str = ""  # RecipientTypeDetails: UserMailbox, SharedMailbox, ...
    hidden_from_address_lists: bool = False
    send_on_behalf: list[str] = Field(default_factory=list)  # GrantSendOnBehalfTo

    @property
    def is_shared(self) -> bool:
        return self.recipient_type == "SharedMailbox"

    @property
    def names(self) -> set[str]:
        """Every string Exchange may use for this recipient in a permission or membership list."""
        return _names(
            self.identity,
            self.display_name,
            self.user_principal_name,
            self.primary_smtp_address,
            self.alias,
            self.external_id,
        )


class Recipient(BaseModel):
    """A member of a distribution list, as Get-DistributionGroupMember lists it."""

    name: str
    display_name: str = ""
    primary_smtp_address: str = ""
    external_id: str | None = None  # the Entra object id

    @property
    def names(self) -> set[str]:
        return _names(self.name, self.display_name, self.primary_smtp_address, self.external_id)


class InvokeResult(BaseModel):
    values: list[dict[str, Any]] = Field(default_factory=list)
    warnings: list[str] = Field(default_factory=list)
    status: int = 200
    request_id: str | None = None

    def receipt(self) -> WriteReceipt:
        return WriteReceipt(
            status=self.status, request_id=self.request_id, body={"warnings": self.warnings} if self.warnings else None
        )


def _names(*values: str | None) -> set[str]:
    return {v.strip().lower() for v in values if v and v.strip()}


def _is_read(cmdlet: str) -> bool:
    return cmdlet.split("-", 1)[0].lower() == "get"


def _error_text(body: Any) -> tuple[str, str]:
    """The exception type and message Exchange nested in its error (graph.md §6.2)."""
    error = body.get("error") if isinstance(body, dict) else None
    if not isinstance(error, dict):
        return "", str(body)[:300] if body else ""
    candidates: list[str] = []
    for detail in error.get("details") or []:
        if isinstance(detail, dict) and detail.get("message"):
            candidates.append(str(detail["message"]))
    inner = error.get("innererror") or {}
    internal = inner.get("internalException") or inner.get("internalexception") or {}
    if isinstance(internal, dict) and internal.get("message"):
        candidates.append(str(internal["message"]))
    candidates.append(str(error.get("message") or error.get("code") or ""))
    raw = next((c for c in candidates if c), "")
    match = _ERROR_PREFIX.match(raw)
    if match:
        return match.group("type").rsplit(".", 1)[-1], match.group("text").strip()[:300]
    return str(error.get("code") or ""), raw.strip()[:300]


def _retry_after(response: httpx.Response) -> float | None:
    value = response.headers.get("Retry-After")
    try:
        return max(0.0, float(value)) if value is not None else None
    except ValueError:
        return None


def _backoff(attempt: int) -> float:
    return float(min(8.0, 0.5 * 2**attempt))


class ExchangeAdmin:
    """The Exchange Online cmdlets TierOne uses, for one tenant."""

    def __init__(
        self,
        tenant_id: str,
        settings: Settings,
        credentials: TenantCredentials,
        *,
        client: httpx.AsyncClient | None = None,
    ) -> None:
        self.tenant_id = tenant_id
        self._url = f"{settings.exchange_admin_url.rstrip('/')}/{tenant_id}/InvokeCommand"
        self._scope = settings.exchange_scope
        self._credential = credentials.for_tenant(tenant_id)
        self._client = client or httpx.AsyncClient(timeout=TIMEOUT)

    async def aclose(self) -> None:
        await self._client.aclose()

    # -- plumbing ----------------------------------------------------------------------------

    async def _token(self) -> str:
        from azure.core.exceptions import ClientAuthenticationError

        try:
            # azure-identity caches the token; the synchronous call runs off the loop.
            token = await asyncio.to_thread(self._credential.get_token, self._scope)
        except ClientAuthenticationError as exc:
            first_line = (exc.message or "").splitlines()[0] if exc.message else type(exc).__name__
            raise PermanentError(f"cannot sign in to Exchange for tenant {self.tenant_id}: {first_line}") from exc
        return str(token.token)

    def _anchor(self, mailbox: str | None) -> str:
        # Mailbox cmdlets route to the mailbox's own server; tenant-wide ones to the system mailbox.
        if mailbox and "@" in mailbox:
            return f"UPN:{mailbox}"
        return f"APP:{SYSTEM_MAILBOX}@{self.tenant_id}"

    async def invoke(self, cmdlet: str, parameters: dict[str, Any], *, mailbox: str | None = None) -> InvokeResult:
        """Run one cmdlet; follow @odata.nextLink for reads. Raises TransientError / ExchangeError."""
        body = {"CmdletInput": {"CmdletName": cmdlet, "Parameters": parameters}}
        headers = {
            "Authorization": f"Bearer {await self._token()}",
            "X-AnchorMailbox": self._anchor(mailbox),
            "Prefer": f"odata.maxpagesize={PAGE_SIZE}",
            "Accept": "application/json",
        }
        result = InvokeResult()
        url: str | None = self._url
        while url:
            page = await self._send(cmdlet, url, body, headers)
            result.status = page.status_code
            result.request_id = page.headers.get("request-id") or result.request_id
            data = page.json() if page.content else {}
            if not isinstance(data, dict):
                data = {}
            result.values.extend(v for v in data.get("value") or [] if isinstance(v, dict))
            result.warnings.extend(str(w) for w in data.get("@adminapi.warnings") or [])
            url = data.get("@odata.nextLink")
        for warning in result.warnings:
            log.info("Exchange %s warned: %s", cmdlet, warning)
        return result

    async def _send(self, cmdlet: str, url: str, body: dict[str, Any], headers: dict[str, str]) -> httpx.Response:
        read = _is_read(cmdlet)
        problem = ""
        for attempt in range(READ_ATTEMPTS if read else 2):
            try:
                response = await self._client.post(url, json=body, headers=headers)
            except httpx.ConnectError as exc:
                problem = f"connection failed ({type(exc).__name__})"  # never reached Exchange: safe to repeat
                await asyncio.sleep(_backoff(attempt))
                continue
            except httpx.TransportError as exc:
                # A timeout or a connection dropped mid-exchange: a write may have landed.
                if not read:
                    raise TransientError(f"Exchange {cmdlet}: connection broke ({type(exc).__name__})") from exc
                problem = f"connection broke ({type(exc).__name__})"
                await asyncio.sleep(_backoff(attempt))
                continue
            status = response.status_code
            if status < 300:
                return response
            if status == 429 or status >= 500:
                wait = _retry_after(response)
                problem = f"answered {status}"
                if not read or (wait is not None and wait > MAX_RETRY_AFTER_SECONDS):
                    raise TransientError(f"Exchange {cmdlet}: {status}", retry_after=wait)
                await asyncio.sleep(wait if wait is not None else _backoff(attempt))
                continue
            if status == 401:
                raise PermanentError(f"Exchange {cmdlet}: 401: the app is not authorised in tenant {self.tenant_id}")
            try:
                parsed = response.json()
            except ValueError:
                parsed = response.text
            kind, message = _error_text(parsed)
            raise ExchangeError(cmdlet, status, kind, message)
        raise TransientError(f"Exchange {cmdlet}: {problem}")

    async def _write(self, cmdlet: str, parameters: dict[str, Any], *, mailbox: str | None = None) -> WriteReceipt:
        return (await self.invoke(cmdlet, parameters, mailbox=mailbox)).receipt()

    # -- mailboxes ---------------------------------------------------------------------------

    async def mailbox(self, identity: str) -> Mailbox | None:
        try:
            found = await self.invoke("Get-Mailbox", {"Identity": identity}, mailbox=identity)
        except ExchangeError as exc:
            if exc.not_found:
                return None
            raise
        if not found.values:
            return None
        return _to_mailbox(found.values[0])

    async def convert_to_shared(self, mailbox: str) -> WriteReceipt:
        return await self._write("Set-Mailbox", {"Identity": mailbox, "Type": "Shared"}, mailbox=mailbox)

    async def set_hidden_from_address_lists(self, mailbox: str, hidden: bool) -> WriteReceipt:
        parameters = {"Identity": mailbox, "HiddenFromAddressListsEnabled": hidden}
        return await self._write("Set-Mailbox", parameters, mailbox=mailbox)

    async def auto_reply(self, mailbox: str) -> dict[str, Any]:
        found = await self.invoke("Get-MailboxAutoReplyConfiguration", {"Identity": mailbox}, mailbox=mailbox)
        config = found.values[0] if found.values else {}
        return {
            "state": str(config.get("AutoReplyState") or "Disabled"),
            "internal": config.get("InternalMessage"),
            "external": config.get("ExternalMessage"),
        }

    async def set_auto_reply(self, mailbox: str, message: str) -> WriteReceipt:
        parameters = {
            "Identity": mailbox,
            "AutoReplyState": "Enabled",
            "InternalMessage": message,
            "ExternalMessage": message,
            "ExternalAudience": "All",
        }
        return await self._write("Set-MailboxAutoReplyConfiguration", parameters, mailbox=mailbox)

    # -- Full Access -------------------------------------------------------------------------

    async def full_access_holders(self, mailbox: str) -> list[str]:
        """Users holding explicit (not inherited, not denied) Full Access, without the owner's SELF entry."""
        found = await self.invoke("Get-MailboxPermission", {"Identity": mailbox}, mailbox=mailbox)
        return [
            str(entry.get("User") or "")
            for entry in found.values
            if "FullAccess" in _rights(entry)
            and not entry.get("IsInherited")
            and not entry.get("Deny")
            and str(entry.get("User") or "").lower() != _SELF
        ]

    async def grant_full_access(self, mailbox: str, user: str, automap: bool = True) -> WriteReceipt:
        parameters = {
            "Identity": mailbox,
            "User": user,
            "AccessRights": ["FullAccess"],
            "AutoMapping": automap,
            "InheritanceType": "All",
        }
        return await self._write("Add-MailboxPermission", parameters, mailbox=mailbox)

    async def remove_full_access(self, mailbox: str, user: str) -> WriteReceipt:
        parameters = {"Identity": mailbox, "User": user, "AccessRights": ["FullAccess"], "InheritanceType": "All"}
        return await self._write("Remove-MailboxPermission", parameters, mailbox=mailbox)

    # -- Send As -----------------------------------------------------------------------------

    async def send_as_holders(self, mailbox: str) -> list[str]:
        found = await self.invoke("Get-RecipientPermission", {"Identity": mailbox}, mailbox=mailbox)
        return [
            str(entry.get("Trustee") or "")
            for entry in found.values
            if "SendAs" in _rights(entry)
            and not entry.get("IsInherited")
            and str(entry.get("AccessControlType") or "Allow") == "Allow"
            and str(entry.get("Trustee") or "").lower() != _SELF
        ]

    async def grant_send_as(self, mailbox: str, user: str) -> WriteReceipt:
        parameters = {"Identity": mailbox, "Trustee": user, "AccessRights": ["SendAs"]}
        return await self._write("Add-RecipientPermission", parameters, mailbox=mailbox)

    async def remove_send_as(self, mailbox: str, user: str) -> WriteReceipt:
        parameters = {"Identity": mailbox, "Trustee": user, "AccessRights": ["SendAs"]}
        return await self._write("Remove-RecipientPermission", parameters, mailbox=mailbox)

    # -- Send on Behalf ----------------------------------------------------------------------

    async def send_on_behalf(self, mailbox: str) -> list[str]:
        """Delegates' UPNs. Get-Mailbox lists GrantSendOnBehalfTo by recipient *name* (usually the
        alias), so each is looked up to compare like the Full Access and Send As lists."""
        found = await self.mailbox(mailbox)
        if found is None:
            raise ExchangeError("Get-Mailbox", 404, "ManagementObjectNotFoundException", f"no mailbox {mailbox}")
        delegates: list[str] = []
        for name in found.send_on_behalf:
            delegate = await self.mailbox(name)
            delegates.append(delegate.user_principal_name if delegate and delegate.user_principal_name else name)
        return delegates

    async def grant_send_on_behalf(self, mailbox: str, user: str) -> WriteReceipt:
        # The add/remove hashtable changes one entry; a plain list would replace everyone else's.
        change = {"@odata.type": "#Exchange.GenericHashTable", "add": user}
        return await self._write("Set-Mailbox", {"Identity": mailbox, "GrantSendOnBehalfTo": change}, mailbox=mailbox)

    async def remove_send_on_behalf(self, mailbox: str, user: str) -> WriteReceipt:
        change = {"@odata.type": "#Exchange.GenericHashTable", "remove": user}
        return await self._write("Set-Mailbox", {"Identity": mailbox, "GrantSendOnBehalfTo": change}, mailbox=mailbox)

    # -- distribution lists and mail-enabled security groups ---------------------------------

    async def dl_members(self, group: str) -> list[Recipient]:
        found = await self.invoke("Get-DistributionGroupMember", {"Identity": group})
        return [
            Recipient(
                name=str(entry.get("Name") or entry.get("Identity") or ""),
                display_name=str(entry.get("DisplayName") or ""),
                primary_smtp_address=str(entry.get("PrimarySmtpAddress") or ""),
                external_id=entry.get("ExternalDirectoryObjectId"),
            )
            for entry in found.values
        ]

    async def add_dl_member(self, group: str, member: str) -> WriteReceipt:
        # The app is never the group's manager; its Exchange role is what authorises the change.
        parameters = {"Identity": group, "Member": member, "BypassSecurityGroupManagerCheck": True}
        return await self._tolerant_write("Add-DistributionGroupMember", parameters, "MemberAlreadyExistsException")

    async def remove_dl_member(self, group: str, member: str) -> WriteReceipt:
        parameters = {"Identity": group, "Member": member, "BypassSecurityGroupManagerCheck": True}
        return await self._tolerant_write("Remove-DistributionGroupMember", parameters, "MemberNotFoundException")

    async def _tolerant_write(self, cmdlet: str, parameters: dict[str, Any], already: str) -> WriteReceipt:
        """A write whose `already` error means the desired state already holds (a retry after a lost answer)."""
        try:
            return await self._write(cmdlet, parameters)
        except ExchangeError as exc:
            if exc.kind == already:
                log.info("Exchange %s: %s (nothing to do)", cmdlet, exc.message)
                return WriteReceipt(status=exc.status)
            raise


def _rights(entry: dict[str, Any]) -> set[str]:
    rights = entry.get("AccessRights") or []
    if isinstance(rights, str):
        rights = [r.strip() for r in rights.split(",")]
    return {str(r) for r in rights}


def _to_mailbox(entry: dict[str, Any]) -> Mailbox:
    on_behalf = entry.get("GrantSendOnBehalfTo") or []
    return Mailbox(
        identity=str(entry.get("Identity") or entry.get("Name") or ""),
        display_name=str(entry.get("DisplayName") or ""),
        user_principal_name=str(entry.get("UserPrincipalName") or ""),
        primary_smtp_address=str(entry.get("PrimarySmtpAddress") or ""),
        alias=str(entry.get("Alias") or ""),
        external_id=entry.get("ExternalDirectoryObjectId"),
        recipient_type=str(entry.get("RecipientTypeDetails") or ""),
        hidden_from_address_lists=bool(entry.get("HiddenFromAddressListsEnabled")),
        send_on_behalf=[str(v) for v in on_behalf] if isinstance(on_behalf, list) else [str(on_behalf)],
    )


class ExchangeAdmins:
    """ExchangeAdmin per (event loop, tenant): an httpx client's pool belongs to its loop."""

    def __init__(self, settings: Settings, credentials: TenantCredentials | None = None) -> None:
        self._settings = settings
        self._credentials = credentials or TenantCredentials(settings)
        self._lock = threading.Lock()
        self._cache: dict[tuple[int, str], ExchangeAdmin] = {}

    def for_tenant(self, tenant_id: str) -> ExchangeAdmin:
        key = (id(asyncio.get_running_loop()), tenant_id)
        with self._lock:
            admin = self._cache.get(key)
            if admin is None:
                admin = ExchangeAdmin(tenant_id, self._settings, self._credentials)
                self._cache[key] = admin
            return admin

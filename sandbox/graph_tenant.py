"""A stand-in for Microsoft Graph v1.0 over customers' Entra ID tenants, faithful enough that
unchanged msgraph-sdk code cannot tell it from the real service.

Served under `{url}/v1.0` by `GraphSandbox` (point a client there with
`client.request_adapter.base_url = sandbox.graph_url`). What it covers is what TierOne's L1
playbooks touch (graph.md §1–7, §10, Appendix A and B):

* users: `GET /users/{id|upn}` with `$select`; `GET /users` with `$filter` (eq, in, startswith,
  `proxyAddresses/any(...)`, `otherMails/any(...)`, `and`/`or`, parentheses), `$select`, `$top` and
  `@odata.nextLink` paging through `$skiptoken`; `POST /users` (verified-domain UPNs, duplicates,
  password rules); `PATCH /users/{id}` (passwordProfile, accountEnabled, usageLocation, jobTitle,
  department, ...) with Entra's rules: password complexity and a small banned list,
  on-premises-mastered (synced) objects, and the role hierarchy of "who can reset whom" between the
  calling app's directory role and the target's; `DELETE /users/{id}` (soft delete);
  `POST .../revokeSignInSessions`; `GET|PUT|DELETE .../manager[/$ref]`;
  `.../memberOf`, `.../transitiveMemberOf` (roles and groups, with the `microsoft.graph.group` and
  `microsoft.graph.directoryRole` casts); `GET /directoryRoles[/{id}[/members]]`;
* `GET /domains`, `GET /organization` (verified domains);
* Identity Protection: `GET /identityProtection/riskyUsers[/{id}]`, `POST .../dismiss`,
  `POST .../confirmCompromised` (Entra ID P2 only);
* authentication methods: `GET .../authentication/methods[/{id}]` (polymorphic), the type-specific
  collections (`phoneMethods`, `microsoftAuthenticatorMethods`, ...) with `GET`/`DELETE` per method,
  `POST .../temporaryAccessPassMethods`, and the TAP policy under
  `/policies/authenticationMethodsPolicy/authenticationMethodConfigurations/temporaryAccessPass`;
* groups: `GET /groups` (`$filter`, `$select`), `GET /groups/{id}`, `GET .../members` (paged),
  `POST .../members/$ref`, `DELETE .../members/{id}/$ref` and the destructive
  `DELETE .../members/{id}` (no `/$ref`: deletes the member object itself, as Graph does);
  group-based licensing;
* licensing: `GET /subscribedSkus`, `GET /users/{id}/licenseDetails`, `POST /users/{id}/assignLicense`;
* mail: `GET|PATCH /users/{id}/mailboxSettings`, `POST /users/{id}/sendMail` (an outbox per tenant);
* bearer-token authentication: tokens come from `sandbox.entra_login.EntraSandbox` (the call acts
  in the token's `tid`; application permissions come from its `roles` claim), and errors,
  throttling (`faults`, including a 429 `storm`) and headers in Graph's shapes.

Key sharing: a GraphSandbox is built with an EntraSandbox (`GraphSandbox(entra)`) or creates and
owns one (`GraphSandbox()`), and verifies tokens with that object's signing key in process.
`add_tenant` registers the tenant on both sides. Consent of an app in a tenant is Entra's business
(`entra.consent(...)`, or `GraphSandbox.consent`). The Exchange Online sandbox
(`sandbox.exchange_online.ExchangeSandbox`) shares this object's tenants, so mailboxes, permissions,
auto-replies and distribution-list members are one state seen from both APIs.

Faithfulness notes: default user properties are Graph's v1.0 default set (so `accountEnabled`,
`onPremisesSyncEnabled`, `assignedLicenses`, ... need `$select`); cloud-only users report
`onPremisesSyncEnabled: null` like Graph; string equality in filters is case-insensitive like the
directory's. Judgement calls where Microsoft documents no exact behaviour are marked "sandbox
choice" next to the code. `password_of`, `password_profile`, `is_locked_out`, `tap_of`,
`sent_mail`, `members`, `risk_of`, `deleted_users` and `request_log` are sandbox-only introspection.
"""

from __future__ import annotations

import asyncio
import base64
import copy
import datetime as dt
import json
import re
import secrets
import threading
import time
import unicodedata
import uuid
from collections.abc import Awaitable, Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlencode

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from sandbox._server import BackgroundServer, ServedSandbox
from sandbox.entra_login import GRAPH_APP_ID, GRAPH_RESOURCE, EntraSandbox, TokenRejected

PUBLIC_GRAPH = "https://graph.microsoft.com/v1.0"
ODATA_JSON = "application/json;odata.metadata=minimal;odata.streaming=true;IEEE754Compatible=false;charset=utf-8"
DEFAULT_PAGE_SIZE = 100
MAX_PAGE_SIZE = 999

# Built-in role template ids (graph.md §9.1, Microsoft's built-in roles list).
ROLE_TEMPLATES: Mapping[str, str] = {
    "Global Administrator": "62e90394-69f5-4237-9190-012177145e10",
    "Privileged Authentication Administrator": "7be44c8a-adaf-4e2a-84d6-ab2649e08a13",
    "Privileged Role Administrator": "e8611ab8-c189-46e8-94e1-60213ab1f814",
    "User Administrator": "fe930be7-5e62-47db-91af-98c3a49a38b1",
    "Helpdesk Administrator": "729827e3-9c14-49f7-bb1b-9608f156bbb8",
    "Authentication Administrator": "c4e39bd9-1100-46d3-8c65-fb160da0071f",
    "Password Administrator": "966707d0-3269-4727-9be2-8c3a10f19b9d",
    "Exchange Administrator": "29232cdf-9323-42fd-ade2-1d097af3e4de",
    "Exchange Recipient Administrator": "31392ffb-586c-42d1-9346-e59415a2cc4e",
    "Security Administrator": "194ae4cb-b126-40b2-bd5b-6091b380977d",
    "Intune Administrator": "3a2c62db-5318-420d-8d74-23affee5d9d5",
    "Groups Administrator": "fdd7a751-b60b-444a-984c-02652fe8fa1c",
    "Directory Readers": "88d8e3e3-8f55-4a1e-953a-9b9898b8876b",
    "Guest Inviter": "95e79109-95c0-4d8e-aee3-d01accf2d47b",
    "Message Center Reader": "790c1fb9-7f7d-4f88-86a1-ef1f95c05c1b",
    "Reports Reader": "4a5d8f65-41da-4de4-8968-e035b65339cf",
    "User Experience Success Manager": "27460883-1df1-4691-b032-3b79643e5e63",
    "Usage Summary Reports Reader": "75934031-6c7e-415a-99d7-48dbd49e875e",
}

# "Who can reset passwords" (graph.md §1.3, Entra privileged-roles page): for each role the
# calling app may hold, the target roles it may still act on. A target with no role is always
# fair game for these; a target holding any role outside the set, or belonging to a role-assignable
# group, is refused with 403. The same table governs the other sensitive actions (revoke sessions,
# accountEnabled, otherMails, phones, delete).
_HELPDESK_SCOPE = frozenset(
    {
        "Directory Readers",
        "Guest Inviter",
        "Helpdesk Administrator",
        "Message Center Reader",
        "Password Administrator",
        "Reports Reader",
        "User Experience Success Manager",
        "Usage Summary Reports Reader",
    }
)
RESETTABLE_BY: Mapping[str, frozenset[str] | None] = {
    "Global Administrator": None,  # None: every target
    "Privileged Authentication Administrator": None,
    "User Administrator": _HELPDESK_SCOPE | {"Groups Administrator", "User Administrator"},
    "Authentication Administrator": _HELPDESK_SCOPE | {"Authentication Administrator"},
    "Helpdesk Administrator": _HELPDESK_SCOPE,
    "Password Administrator": frozenset({"Directory Readers", "Guest Inviter", "Password Administrator"}),
}

# Application permissions accepted per kind of call (graph.md Appendix A; Microsoft's permission
# map lists the least privileged first, the broader ones after it).
_READ_USERS = frozenset(
    {
        "User.ReadBasic.All",
        "User.Read.All",
        "User.ReadWrite.All",
        "Directory.Read.All",
        "Directory.ReadWrite.All",
    }
)
_READ_ROLES = frozenset(
    {
        "RoleManagement.Read.Directory",
        "RoleManagement.Read.All",
        "RoleManagement.ReadWrite.Directory",
        "Directory.Read.All",
        "Directory.ReadWrite.All",
    }
)
_WRITE_USERS = frozenset({"User.ReadWrite.All", "Directory.ReadWrite.All"})
_WRITE_PASSWORD = _WRITE_USERS | {"User-PasswordProfile.ReadWrite.All"}
_WRITE_ENABLED = _WRITE_USERS | {"User.EnableDisableAccount.All"}
_REVOKE_SESSIONS = _WRITE_USERS | {"User.RevokeSessions.All"}
_DELETE_USERS = _WRITE_USERS | {"User.DeleteRestore.All"}
_READ_DOMAINS = frozenset({"Domain.Read.All", "Domain.ReadWrite.All", "Directory.Read.All", "Directory.ReadWrite.All"})
_READ_ORGANIZATION = frozenset(
    {"Organization.Read.All", "Organization.ReadWrite.All", "Directory.Read.All", "Directory.ReadWrite.All"}
)
_READ_RISK = frozenset({"IdentityRiskyUser.Read.All", "IdentityRiskyUser.ReadWrite.All"})
_WRITE_RISK = frozenset({"IdentityRiskyUser.ReadWrite.All"})
_READ_METHODS = frozenset({"UserAuthenticationMethod.Read.All", "UserAuthenticationMethod.ReadWrite.All"})
_WRITE_METHODS = frozenset({"UserAuthenticationMethod.ReadWrite.All"})
_READ_AUTH_POLICY = frozenset(
    {"Policy.Read.AuthenticationMethod", "Policy.ReadWrite.AuthenticationMethod", "Policy.Read.All"}
)
_READ_GROUPS = frozenset(
    {
        "GroupMember.Read.All",
        "GroupMember.ReadWrite.All",
        "Group.Read.All",
        "Group.ReadWrite.All",
        "Directory.Read.All",
        "Directory.ReadWrite.All",
    }
)
_WRITE_MEMBERS = frozenset({"GroupMember.ReadWrite.All", "Group.ReadWrite.All", "Directory.ReadWrite.All"})
_DELETE_GROUPS = frozenset({"Group.ReadWrite.All", "Directory.ReadWrite.All"})
_WRITE_ROLE_ASSIGNABLE = frozenset({"RoleManagement.ReadWrite.Directory"})
_READ_SKUS = frozenset(
    {
        "LicenseAssignment.Read.All",
        "LicenseAssignment.ReadWrite.All",
        "Organization.Read.All",
        "Organization.ReadWrite.All",
        "Directory.Read.All",
        "Directory.ReadWrite.All",
    }
)
_READ_LICENSE_DETAILS = _READ_USERS | {"LicenseAssignment.Read.All", "LicenseAssignment.ReadWrite.All"}
_ASSIGN_LICENSE = frozenset({"LicenseAssignment.ReadWrite.All", "User.ReadWrite.All", "Directory.ReadWrite.All"})
_READ_MAILBOX_SETTINGS = frozenset({"MailboxSettings.Read", "MailboxSettings.ReadWrite"})
_WRITE_MAILBOX_SETTINGS = frozenset({"MailboxSettings.ReadWrite"})
_SEND_MAIL = frozenset({"Mail.Send"})

# Properties a GET returns without $select (Graph v1.0's default user projection).
DEFAULT_USER_PROPERTIES = (
    "businessPhones",
    "displayName",
    "givenName",
    "jobTitle",
    "mail",
    "mobilePhone",
    "officeLocation",
    "preferredLanguage",
    "surname",
    "userPrincipalName",
    "id",
)
_SELECTABLE_USER_PROPERTIES = frozenset(
    {
        *DEFAULT_USER_PROPERTIES,
        "accountEnabled",
        "onPremisesSyncEnabled",
        "proxyAddresses",
        "otherMails",
        "lastPasswordChangeDateTime",
        "usageLocation",
        "department",
        "createdDateTime",
        "userType",
        "mailNickname",
        "signInSessionsValidFromDateTime",
        "passwordPolicies",
        "passwordProfile",
        "employeeId",
        "companyName",
        "assignedLicenses",
        "licenseAssignmentStates",
    }
)
_READ_ONLY_USER_PROPERTIES = frozenset(
    {"id", "createdDateTime", "lastPasswordChangeDateTime", "onPremisesSyncEnabled", "proxyAddresses",
     "signInSessionsValidFromDateTime", "assignedLicenses", "licenseAssignmentStates"}
)  # fmt: skip
_SENSITIVE_USER_PROPERTIES = frozenset({"accountEnabled", "otherMails", "mobilePhone", "businessPhones"})
# Properties Entra Connect owns for synced users; editing them in the cloud is refused.
_SYNC_MASTERED_PROPERTIES = frozenset(
    {"passwordProfile", "displayName", "givenName", "surname", "jobTitle", "department", "mail",
     "mailNickname", "mobilePhone", "businessPhones", "officeLocation", "userPrincipalName", "companyName",
     "employeeId"}
)  # fmt: skip
_REQUIRED_ON_CREATE = ("accountEnabled", "displayName", "mailNickname", "userPrincipalName", "passwordProfile")
_UPN_LOCAL_PART = re.compile(r"^[A-Za-z0-9'._!#^~-]{1,64}$")
_MAIL_NICKNAME = re.compile(r"^[A-Za-z0-9'._!#^~-]{1,64}$")
_USAGE_LOCATION = re.compile(r"^[A-Z]{2}$")
_GUID = re.compile(r"^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$")

# Groups: Graph v1.0's default projection (assignedLicenses needs $select, as in Graph).
DEFAULT_GROUP_PROPERTIES = (
    "id",
    "deletedDateTime",
    "classification",
    "createdDateTime",
    "creationOptions",
    "description",
    "displayName",
    "expirationDateTime",
    "groupTypes",
    "isAssignableToRole",
    "mail",
    "mailEnabled",
    "mailNickname",
    "membershipRule",
    "membershipRuleProcessingState",
    "onPremisesLastSyncDateTime",
    "onPremisesSyncEnabled",
    "preferredDataLocation",
    "preferredLanguage",
    "proxyAddresses",
    "renewedDateTime",
    "resourceBehaviorOptions",
    "resourceProvisioningOptions",
    "securityEnabled",
    "securityIdentifier",
    "theme",
    "visibility",
    "onPremisesProvisioningErrors",
    "serviceProvisioningErrors",
)
_SELECTABLE_GROUP_PROPERTIES = frozenset({*DEFAULT_GROUP_PROPERTIES, "assignedLicenses"})
GROUP_KINDS = ("security", "m365", "mail_security", "distribution", "dynamic")

# Entra's banned-password check, much simplified: a normalised password must not contain these.
BANNED_PASSWORD_TERMS = (
    "password",
    "welcome",
    "letmein",
    "qwerty",
    "123456",
    "iloveyou",
    "changeme",
    "admin",
    "monkey",
    "dragon",
)
_LEET = str.maketrans({"0": "o", "1": "l", "3": "e", "4": "a", "5": "s", "7": "t", "@": "a", "$": "s"})
_PASSWORD_SYMBOLS = set("@#$%^&*-_!+=[]{}|\\:',.?/`~\"();<> ")

# Error texts (graph.md §1.5, §3, §4.3, §5.3, §7.1, Appendix B).
MSG_PASSWORD_COMPLEXITY = (
    "The specified password does not comply with password complexity requirements. Please provide a different password."
)
MSG_SYNCED_OBJECT = (
    "Unable to update the specified properties for on-premises mastered Directory Sync objects "
    "or objects currently undergoing migration."
)
MSG_INSUFFICIENT_PRIVILEGES = "Insufficient privileges to complete the operation."
MSG_UNVERIFIED_DOMAIN = (
    "The domain portion of the userPrincipalName property is invalid. "
    "You must use one of the verified domain names in your organization."
)
MSG_ALREADY_MEMBER = (
    "One or more added object references already exist for the following modified properties: 'members'."
)
MSG_MAIL_ENABLED_GROUP = "Cannot Update a mail-enabled security groups and or distribution list."
# Sandbox choice: Microsoft documents no text for a membership change on a dynamic group; graph.md
# §4.3 records the one observed (CIPP) report, "Insufficient privileges to complete the operation.",
# which the sandbox sends with the 400 Request_BadRequest of the other "not editable here" cases.
MSG_DYNAMIC_GROUP = MSG_INSUFFICIENT_PRIVILEGES
MSG_NO_USAGE_LOCATION = "License assignment cannot be done for user with invalid usage location."
MSG_INHERITED_LICENSE = (
    "User license is inherited from a group membership and it cannot be removed directly from the user."
)
MSG_DEFAULT_METHOD = (
    "Cannot delete default method with other methods configured. Please change default method before deletion."
)
# Sandbox choice: the phone-method docs say a user cannot keep alternateMobile without mobile but
# quote no error; this is the sandbox's wording.
MSG_MOBILE_BEFORE_ALTERNATE = (
    "Cannot delete the mobile phone method while an alternateMobile phone method exists. "
    "Delete the alternateMobile phone method first."
)
MSG_TAP_POLICY = (
    "Converged UserCredentialPolicy does not allow creating or updating this authentication method. "
    "AuthMethodType [TemporaryAccessPass]."
)
MSG_TAP_GUEST = "Temporary Access Pass cannot be added to an external guest user."
MSG_NOT_LICENSED = "Your tenant is not licensed for this feature."
MSG_MAILBOX_NOT_ENABLED = "The mailbox is either inactive, soft-deleted, or is hosted on-premise."

# Authentication methods (graph.md §3). Well-known method ids are Graph's own.
PASSWORD_METHOD_ID = "28c10230-6103-485e-b985-444c60001490"
EMAIL_METHOD_ID = "3ddfcfc8-9383-446f-83cc-3ab9be4be18f"
PHONE_METHOD_IDS: Mapping[str, str] = {
    "mobile": "3179e48a-750b-4051-897c-87b9720928f7",
    "alternateMobile": "b6332ec1-7057-4abe-9331-3d72feddfe41",
    "office": "e37fc753-ff3b-4958-9484-eaa9425c82bc",
}


@dataclass(frozen=True)
class MethodKind:
    name: str  # seeding name, e.g. "phone"
    odata_type: str
    collection: str  # the type-specific segment, e.g. "phoneMethods"
    granular: str | None  # the UserAuthMethod-<X> permission family
    counts_against_default: bool  # an MFA method that keeps the default from being deleted


METHOD_KINDS: Mapping[str, MethodKind] = {
    kind.name: kind
    for kind in (
        MethodKind("password", "#microsoft.graph.passwordAuthenticationMethod", "passwordMethods", "Password", False),
        MethodKind(
            "microsoftAuthenticator",
            "#microsoft.graph.microsoftAuthenticatorAuthenticationMethod",
            "microsoftAuthenticatorMethods",
            "MicrosoftAuthApp",
            True,
        ),
        MethodKind("phone", "#microsoft.graph.phoneAuthenticationMethod", "phoneMethods", "Phone", True),
        MethodKind(
            "softwareOath",
            "#microsoft.graph.softwareOathAuthenticationMethod",
            "softwareOathMethods",
            "SoftwareOATH",
            True,
        ),
        MethodKind("fido2", "#microsoft.graph.fido2AuthenticationMethod", "fido2Methods", "Passkey", True),
        MethodKind("email", "#microsoft.graph.emailAuthenticationMethod", "emailMethods", "Email", False),
        MethodKind(
            "temporaryAccessPass",
            "#microsoft.graph.temporaryAccessPassAuthenticationMethod",
            "temporaryAccessPassMethods",
            "TAP",
            False,
        ),
        MethodKind(
            "windowsHelloForBusiness",
            "#microsoft.graph.windowsHelloForBusinessAuthenticationMethod",
            "windowsHelloForBusinessMethods",
            "WindowsHello",
            True,
        ),
    )
}
_KIND_BY_COLLECTION: Mapping[str, MethodKind] = {kind.collection: kind for kind in METHOD_KINDS.values()}
_KIND_BY_TYPE: Mapping[str, MethodKind] = {kind.odata_type: kind for kind in METHOD_KINDS.values()}
TAP_MIN_LIFETIME, TAP_MAX_LIFETIME = 10, 43_200
_TAP_ALPHABET = "ABCDEFGHJKLMNPQRSTUVWXYZabcdefghijkmnopqrstuvwxyz23456789!#$%&*+=?@"

# Licensing (graph.md §5.4: real skuIds and part numbers; service plans are a real but trimmed
# subset of each SKU's, enough for mailbox provisioning and Entra ID P2 detection).
SERVICE_PLANS: Mapping[str, str] = {
    "EXCHANGE_S_STANDARD": "9aaf7827-d63c-4b61-89c3-182f06f82e5c",
    "EXCHANGE_S_ENTERPRISE": "efb87545-963c-4e0d-99df-69c6916d9eb0",
    "EXCHANGE_S_DESKLESS": "4a82b400-a79f-41a4-b4e2-e94f5787b113",
    "EXCHANGE_S_FOUNDATION": "113feb6c-3fe4-4440-bddc-54d774bf0318",
    "SHAREPOINTSTANDARD": "c7699d2e-19aa-44de-8edf-1736da088ca1",
    "SHAREPOINTENTERPRISE": "5dbe027f-2339-4123-9542-606e4d348a72",
    "TEAMS1": "57ff2da0-773e-42df-b2af-ffb7a2317929",
    "OFFICESUBSCRIPTION": "43de0ff5-c92c-492b-9116-175376d08c38",
    "AAD_PREMIUM": "41781fb2-bc02-4b7c-bd55-b576c07bb09d",
    "AAD_PREMIUM_P2": "eec0eb4f-6444-4f95-aba0-50c24d67f998",
    "INTUNE_A": "c1ec4a95-1f05-45b3-a911-aa3fa01094f5",
}
MAILBOX_PLANS = frozenset({"EXCHANGE_S_STANDARD", "EXCHANGE_S_ENTERPRISE", "EXCHANGE_S_DESKLESS"})
_E3_PLANS = ("EXCHANGE_S_ENTERPRISE", "SHAREPOINTENTERPRISE", "TEAMS1", "OFFICESUBSCRIPTION")
_BUSINESS_PLANS = ("EXCHANGE_S_STANDARD", "SHAREPOINTSTANDARD", "TEAMS1")
SKU_CATALOG: Mapping[str, tuple[str, str, tuple[str, ...]]] = {
    # skuPartNumber: (skuId, product name, service plans)
    "SPE_E3": ("05e9a617-0261-4cee-bb44-138d3ef5d965", "Microsoft 365 E3", (*_E3_PLANS, "AAD_PREMIUM", "INTUNE_A")),
    "SPE_E5": (
        "06ebc4ee-1bb5-47dd-8120-11324bc54e06",
        "Microsoft 365 E5",
        (*_E3_PLANS, "AAD_PREMIUM", "AAD_PREMIUM_P2", "INTUNE_A"),
    ),
    "ENTERPRISEPACK": ("6fd2c87f-b296-42f0-b197-1e91e994b900", "Office 365 E3", _E3_PLANS),
    "ENTERPRISEPREMIUM": ("c7df2760-2c81-4ef7-b578-5b5392b571df", "Office 365 E5", _E3_PLANS),
    "STANDARDPACK": ("18181a46-0d4e-45cd-891e-60aabd171b4e", "Office 365 E1", _BUSINESS_PLANS),
    "SPB": (
        "cbdc14ab-d96c-4c30-b9f4-6ada7cdc1d46",
        "Microsoft 365 Business Premium",
        (*_BUSINESS_PLANS, "AAD_PREMIUM", "INTUNE_A"),
    ),
    "O365_BUSINESS_PREMIUM": (
        "f245ecc8-75af-4f8e-b61f-27d8114de5f3",
        "Microsoft 365 Business Standard",
        _BUSINESS_PLANS,
    ),
    "O365_BUSINESS_ESSENTIALS": (
        "3b555118-da6a-4418-894f-7df1e2096870",
        "Microsoft 365 Business Basic",
        _BUSINESS_PLANS,
    ),
    "EXCHANGESTANDARD": ("4b9405b0-7788-4568-add1-99614e613b69", "Exchange Online (Plan 1)", ("EXCHANGE_S_STANDARD",)),
    "SPE_F1": (
        "66b55226-6b4f-492c-910c-a3b7a3c9d993",
        "Microsoft 365 F3",
        ("EXCHANGE_S_DESKLESS", "TEAMS1", "AAD_PREMIUM", "INTUNE_A"),
    ),
    "DESKLESSPACK": ("4b585984-651b-448a-9e53-3b10f069cf7f", "Office 365 F3", ("EXCHANGE_S_DESKLESS", "TEAMS1")),
    "VISIOCLIENT": ("c5928f49-12ba-48f7-ada3-0d743a3601d5", "Visio Plan 2", ("EXCHANGE_S_FOUNDATION",)),
    "PROJECTPREMIUM": ("09015f9f-377f-4538-bbb5-f75ceb09358a", "Project Online Premium", ("EXCHANGE_S_FOUNDATION",)),
}

# Mailbox settings (graph.md §7.2 auto-reply row).
_AUTO_REPLY_STATUS = ("disabled", "alwaysEnabled", "scheduled")
_EXTERNAL_AUDIENCE = ("none", "contactsOnly", "all")
_MAILBOX_SETTINGS_WRITABLE = frozenset(
    {"automaticRepliesSetting", "timeZone", "language", "dateFormat", "timeFormat", "workingHours",
     "delegateMeetingMessageDeliveryOptions", "archiveFolder"}
)  # fmt: skip


# --------------------------------------------------------------------------------------------
# Errors and state
# --------------------------------------------------------------------------------------------


class GraphError(Exception):
    """An error response in Graph's shape: {"error": {"code", "message", "innerError"}}."""

    def __init__(self, status: int, code: str, message: str, headers: Mapping[str, str] | None = None) -> None:
        super().__init__(f"{status} {code}: {message}")
        self.status = status
        self.code = code
        self.message = message
        self.headers = dict(headers or {})

    def response(self, request_id: str, client_request_id: str) -> Response:
        body = {
            "error": {
                "code": self.code,
                "message": self.message,
                "innerError": {
                    "date": dt.datetime.now(dt.UTC).strftime("%Y-%m-%dT%H:%M:%S"),
                    "request-id": request_id,
                    "client-request-id": client_request_id,
                },
            }
        }
        return JSONResponse(body, status_code=self.status, headers=self.headers)


def _not_found(reference: str) -> GraphError:
    return GraphError(
        404,
        "Request_ResourceNotFound",
        f"Resource '{reference}' does not exist or one of its queried reference-property objects are not present.",
    )


def _denied() -> GraphError:
    return GraphError(403, "Authorization_RequestDenied", MSG_INSUFFICIENT_PRIVILEGES)


def _bad_request(message: str, code: str = "Request_BadRequest") -> GraphError:
    return GraphError(400, code, message)


def _invalid_value(prop: str, resource: str = "User") -> GraphError:
    return _bad_request(f"Invalid value specified for property '{prop}' of resource '{resource}'.")


@dataclass
class DirectoryRole:
    id: str
    display_name: str
    role_template_id: str
    description: str
    members: list[str] = field(default_factory=list)

    def to_graph(self) -> dict[str, Any]:
        return {
            "@odata.type": "#microsoft.graph.directoryRole",
            "id": self.id,
            "deletedDateTime": None,
            "description": self.description,
            "displayName": self.display_name,
            "roleTemplateId": self.role_template_id,
        }


@dataclass
class Subscription:
    """One row of /subscribedSkus."""

    sku_id: str
    sku_part_number: str
    enabled: int
    service_plans: tuple[tuple[str, str], ...]  # (servicePlanId, servicePlanName)
    suspended: int = 0
    warning: int = 0
    locked_out: int = 0
    capability_status: str = "Enabled"
    subscription_id: str = field(default_factory=lambda: str(uuid.uuid4()))

    @property
    def plan_names(self) -> dict[str, str]:
        return dict(self.service_plans)


def _default_auto_reply() -> dict[str, Any]:
    start = dt.datetime.now(dt.UTC).replace(minute=0, second=0, microsecond=0)
    return {
        "status": "disabled",
        "externalAudience": "all",
        "internalReplyMessage": "",
        "externalReplyMessage": "",
        "scheduledStartDateTime": {"dateTime": _graph_datetime(start), "timeZone": "UTC"},
        "scheduledEndDateTime": {"dateTime": _graph_datetime(start + dt.timedelta(days=1)), "timeZone": "UTC"},
    }


@dataclass
class Mailbox:
    """The Exchange Online side of a user object (shared by the Graph and Exchange sandboxes)."""

    kind: str = "UserMailbox"  # or "SharedMailbox"
    exchange_guid: str = field(default_factory=lambda: str(uuid.uuid4()))
    hidden: bool = False
    send_on_behalf: list[str] = field(default_factory=list)  # user ids
    full_access: dict[str, dict[str, Any]] = field(default_factory=dict)  # user id -> rights, automapping
    send_as: list[str] = field(default_factory=list)  # user ids
    auto_reply: dict[str, Any] = field(default_factory=_default_auto_reply)  # Graph's automaticRepliesSetting
    forwarding_smtp_address: str | None = None
    forwarding_address: str | None = None  # user id
    deliver_to_mailbox_and_forward: bool = False
    time_zone: str = "UTC"


def _default_tap_policy() -> dict[str, Any]:
    # Entra's defaults (graph.md §3.4): a new tenant's TAP policy is disabled.
    return {
        "state": "disabled",
        "defaultLifetimeInMinutes": 60,
        "defaultLength": 8,
        "minimumLifetimeInMinutes": 60,
        "maximumLifetimeInMinutes": 480,
        "isUsableOnce": False,
        "includeTargets": [{"targetType": "group", "id": "all_users", "isRegistrationRequired": False}],
        "excludeTargets": [],
    }


@dataclass
class Tenant:
    id: str
    default_domain: str
    users: dict[str, dict[str, Any]] = field(default_factory=dict)  # id -> Graph properties
    roles: dict[str, DirectoryRole] = field(default_factory=dict)  # display name -> role
    managers: dict[str, str] = field(default_factory=dict)  # user id -> manager id
    passwords: dict[str, dict[str, Any]] = field(default_factory=dict)  # user id -> passwordProfile
    locked_out: set[str] = field(default_factory=set)
    app_role: str | None = "User Administrator"
    exchange_role: str | None = "Exchange Recipient Administrator"  # the app's role as Exchange sees it
    display_name: str = ""
    domains: dict[str, dict[str, Any]] = field(default_factory=dict)  # lower-case name -> Graph domain
    groups: dict[str, dict[str, Any]] = field(default_factory=dict)  # id -> Graph properties
    group_members: dict[str, list[str]] = field(default_factory=dict)  # group id -> member object ids
    subscriptions: dict[str, Subscription] = field(default_factory=dict)  # skuId -> subscription
    direct_licenses: dict[str, dict[str, list[str]]] = field(default_factory=dict)  # user -> sku -> disabled
    auth_methods: dict[str, list[dict[str, Any]]] = field(default_factory=dict)  # user id -> methods
    default_methods: dict[str, str] = field(default_factory=dict)  # user id -> method id
    tap_secrets: dict[str, str] = field(default_factory=dict)  # TAP method id -> the pass
    tap_policy: dict[str, Any] = field(default_factory=_default_tap_policy)
    p2: bool = False
    risk: dict[str, dict[str, Any]] = field(default_factory=dict)  # user id -> riskyUser
    mailboxes: dict[str, Mailbox] = field(default_factory=dict)  # user id -> mailbox
    outbox: list[dict[str, Any]] = field(default_factory=list)
    deleted_users: dict[str, dict[str, Any]] = field(default_factory=dict)

    def find_user(self, reference: str) -> dict[str, Any] | None:
        wanted = reference.lower()
        if wanted in self.users:
            return self.users[wanted]
        return next((u for u in self.users.values() if u["userPrincipalName"].lower() == wanted), None)

    def find_group(self, reference: str) -> dict[str, Any] | None:
        return self.groups.get(reference.lower())

    def roles_of(self, user_id: str) -> list[DirectoryRole]:
        return [role for role in self.roles.values() if user_id in role.members]

    def groups_of(self, object_id: str) -> list[str]:
        """Ids of the groups the object is a direct member of."""
        return [gid for gid, members in self.group_members.items() if object_id in members]

    def transitive_groups_of(self, object_id: str) -> list[str]:
        seen: list[str] = []
        queue = self.groups_of(object_id)
        while queue:
            gid = queue.pop(0)
            if gid not in seen:
                seen.append(gid)
                queue.extend(self.groups_of(gid))
        return seen

    def transitive_members(self, group_id: str) -> list[str]:
        seen: list[str] = []
        queue = list(self.group_members.get(group_id, []))
        while queue:
            member = queue.pop(0)
            if member in seen:
                continue
            seen.append(member)
            queue.extend(self.group_members.get(member, []))
        return seen

    def find_object(self, object_id: str) -> tuple[str, dict[str, Any]] | None:
        """("user" | "group", properties) for a directory object id."""
        if object_id.lower() in self.users:
            return "user", self.users[object_id.lower()]
        if object_id.lower() in self.groups:
            return "group", self.groups[object_id.lower()]
        return None

    def consumed_units(self, sku_id: str, excluding: str | None = None) -> int:
        return sum(
            1
            for uid, user in self.users.items()
            if uid != excluding and any(lic["skuId"] == sku_id for lic in user.get("assignedLicenses") or [])
        )

    def mailbox_of(self, user: Mapping[str, Any]) -> Mailbox | None:
        """The user's mailbox: every user with a mail address has one (graph.md §7.1: licensing
        provisions it); the record is made on first use."""
        if not user.get("mail"):
            return None
        return self.mailboxes.setdefault(user["id"], Mailbox())


@dataclass(frozen=True)
class RequestRecord:
    """One Graph call as the sandbox saw it (passwords redacted)."""

    tenant_id: str | None
    method: str
    path: str
    query: str
    status: int
    request_id: str
    client_request_id: str
    body: Any = None


# --------------------------------------------------------------------------------------------
# Fault injection
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class PlannedFault:
    status: int
    retry_after: int | None
    method: str | None
    after_applying: bool

    def error(self, tenant_id: str, app_id: str) -> GraphError:
        headers: dict[str, str] = {}
        if self.retry_after is not None:
            headers["Retry-After"] = str(self.retry_after)
        if self.status == 429:
            write = self.method not in (None, "GET")
            headers["x-ms-throttle-scope"] = (
                f"Tenant_Application/{'ReadWrite' if write else 'Read'}/{app_id}/{tenant_id}"
            )
            headers["x-ms-throttle-information"] = "WriteLimitExceeded" if write else "ResourceUnitLimitExceeded"
            return GraphError(429, "TooManyRequests", "Too many requests", headers)
        if self.status == 503:
            return GraphError(503, "serviceNotAvailable", "Service Unavailable", headers)
        if self.status == 504:
            return GraphError(504, "UnknownError", "The operation timed out.", headers)
        return GraphError(self.status, "generalException", "An unexpected error occurred.", headers)


class GraphFaults:
    """Knobs for latency and transient failures, safe to turn from any thread."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._planned: list[PlannedFault] = []
        self._latency_ms = 0
        self._storm_left = 0
        self._storm_until: float | None = None
        self._storm_retry_after: int | None = None

    @property
    def latency_ms(self) -> int:
        with self._lock:
            return self._latency_ms

    @latency_ms.setter
    def latency_ms(self, value: int) -> None:
        with self._lock:
            self._latency_ms = max(0, int(value))

    def fail_next(
        self,
        n: int = 1,
        status: int = 429,
        retry_after: int | None = 1,
        *,
        method: str | None = None,
        after_applying: bool = False,
    ) -> None:
        """Answer the next `n` authenticated calls (only `method` ones, if given) with `status`.

        `after_applying=True` performs the call's effect first and then fails, like a write that
        landed but whose response was lost (a 504 on a PATCH): what makes blind retries risky."""
        fault = PlannedFault(status, retry_after, method.upper() if method else None, after_applying)
        with self._lock:
            self._planned.extend([fault] * n)

    def storm(self, n_requests: int, retry_after: int | None = 10, *, seconds: float | None = None) -> None:
        """A throttling storm: every authenticated call, whatever its method, is answered 429 with
        `Retry-After: retry_after` until `n_requests` have been refused (or, with `seconds`, until
        that much time has passed, whichever comes first). Unlike `fail_next`, retries that honour
        Retry-After still land inside the storm while it lasts: what a tenant-wide throttle does."""
        with self._lock:
            self._storm_left = max(0, int(n_requests))
            self._storm_until = time.monotonic() + seconds if seconds is not None else None
            self._storm_retry_after = retry_after

    @property
    def storm_remaining(self) -> int:
        with self._lock:
            if self._storm_until is not None and time.monotonic() >= self._storm_until:
                return 0
            return self._storm_left

    def clear(self) -> None:
        with self._lock:
            self._planned.clear()
            self._latency_ms = 0
            self._storm_left = 0
            self._storm_until = None

    @property
    def pending(self) -> int:
        with self._lock:
            return len(self._planned)

    def take(self, method: str) -> PlannedFault | None:
        with self._lock:
            if self._storm_left > 0:
                if self._storm_until is not None and time.monotonic() >= self._storm_until:
                    self._storm_left = 0
                else:
                    self._storm_left -= 1
                    return PlannedFault(429, self._storm_retry_after, method, False)
            for index, fault in enumerate(self._planned):
                if fault.method in (None, method):
                    return self._planned.pop(index)
        return None


# --------------------------------------------------------------------------------------------
# $filter
# --------------------------------------------------------------------------------------------

Predicate = Callable[[Mapping[str, Any]], bool]

_TOKEN_RE = re.compile(r"\s*(?:(?P<str>'(?:[^']|'')*')|(?P<punct>[(),:/])|(?P<word>[A-Za-z0-9_.@+-]+))")


@dataclass(frozen=True)
class FilterSchema:
    """What one entity set supports in $filter without advanced query capabilities."""

    resource: str
    eq: frozenset[str]
    startswith: frozenset[str]
    collections: frozenset[str]


USER_FILTER = FilterSchema(
    "User",
    frozenset(
        {"id", "userPrincipalName", "mail", "displayName", "givenName", "surname", "jobTitle", "department",
         "accountEnabled", "userType", "mailNickname", "employeeId", "usageLocation", "companyName"}
    ),
    frozenset(
        {"displayName", "givenName", "surname", "mail", "userPrincipalName", "jobTitle", "department", "mailNickname"}
    ),
    frozenset({"proxyAddresses", "otherMails", "businessPhones"}),
)  # fmt: skip
GROUP_FILTER = FilterSchema(
    "Group",
    frozenset(
        {"id", "displayName", "mail", "mailNickname", "mailEnabled", "securityEnabled", "isAssignableToRole",
         "onPremisesSyncEnabled"}
    ),
    frozenset({"displayName", "mail", "mailNickname"}),
    frozenset({"groupTypes", "proxyAddresses"}),
)  # fmt: skip
RISKY_USER_FILTER = FilterSchema(
    "RiskyUser",
    frozenset({"id", "riskLevel", "riskState", "riskDetail", "userPrincipalName", "userDisplayName"}),
    frozenset({"userPrincipalName", "userDisplayName"}),
    frozenset(),
)


class _FilterParser:
    """Recursive descent over the OData subset Graph supports without advanced queries."""

    def __init__(self, text: str, schema: FilterSchema = USER_FILTER) -> None:
        self.text = text
        self.schema = schema
        self.tokens = self._tokenize(text)
        self.pos = 0

    def _unsupported(self, prop: str) -> GraphError:
        return GraphError(
            400,
            "Request_UnsupportedQuery",
            f"Unsupported or invalid query filter clause specified for property '{prop}' of resource "
            f"'{self.schema.resource}'.",
        )

    def _tokenize(self, text: str) -> list[tuple[str, str, int]]:
        tokens, index = [], 0
        while index < len(text):
            if text[index:].strip() == "":
                break
            match = _TOKEN_RE.match(text, index)
            if match is None:
                raise self._syntax(index)
            kind = match.lastgroup or ""
            tokens.append((kind, match.group(kind), match.start(kind)))
            index = match.end()
        return tokens

    def _syntax(self, position: int | None = None) -> GraphError:
        if position is None:
            position = self.tokens[self.pos][2] if self.pos < len(self.tokens) else len(self.text)
        return GraphError(
            400, "BadRequest", f"Invalid filter clause: Syntax error at position {position} in '{self.text}'."
        )

    def _peek(self) -> tuple[str, str, int] | None:
        return self.tokens[self.pos] if self.pos < len(self.tokens) else None

    def _next(self) -> tuple[str, str, int]:
        token = self._peek()
        if token is None:
            raise self._syntax()
        self.pos += 1
        return token

    def _expect(self, value: str) -> None:
        if self._next()[1].lower() != value:
            self.pos -= 1
            raise self._syntax()

    def _accept_word(self, word: str) -> bool:
        token = self._peek()
        if token and token[0] == "word" and token[1].lower() == word:
            self.pos += 1
            return True
        return False

    def parse(self) -> Predicate:
        predicate = self._or()
        if self._peek() is not None:
            raise self._syntax()
        return predicate

    def _or(self) -> Predicate:
        parts = [self._and()]
        while self._accept_word("or"):
            parts.append(self._and())
        return parts[0] if len(parts) == 1 else (lambda item: any(p(item) for p in parts))

    def _and(self) -> Predicate:
        parts = [self._unary()]
        while self._accept_word("and"):
            parts.append(self._unary())
        return parts[0] if len(parts) == 1 else (lambda item: all(p(item) for p in parts))

    def _unary(self) -> Predicate:
        if self._accept_word("not"):
            # Graph wants ConsistencyLevel: eventual for `not`; the sandbox does not model that.
            raise GraphError(
                400, "Request_UnsupportedQuery", "Unsupported query: 'not' needs advanced query capabilities."
            )
        token = self._peek()
        if token and token[1] == "(":
            self.pos += 1
            inner = self._or()
            self._expect(")")
            return inner
        return self._clause()

    def _clause(self) -> Predicate:
        kind, word, _ = self._next()
        if kind != "word":
            self.pos -= 1
            raise self._syntax()
        if word.lower() == "startswith":
            return self._startswith()
        if word.lower() in ("endswith", "contains"):
            # endswith needs ConsistencyLevel: eventual + $count; contains is not supported at all.
            raise GraphError(
                400, "Request_UnsupportedQuery", f"Unsupported Query: '{word}' on resource '{self.schema.resource}'."
            )
        token = self._peek()
        if token and token[1] == "/":
            self.pos += 1
            return self._any(word)
        return self._comparison(word)

    def _startswith(self) -> Predicate:
        self._expect("(")
        prop = self._property()
        self._expect(",")
        prefix = str(self._literal()).lower()
        self._expect(")")
        if prop not in self.schema.startswith:
            raise self._unsupported(prop)
        return lambda item: str(item.get(prop) or "").lower().startswith(prefix)

    def _any(self, prop: str) -> Predicate:
        self._expect("any")
        self._expect("(")
        variable = self._property()
        self._expect(":")
        if self._property() != variable:
            raise self._syntax()
        operator = self._next()[1].lower()
        if operator != "eq":
            raise self._unsupported(prop)
        wanted = str(self._literal()).lower()
        self._expect(")")
        if prop not in self.schema.collections:
            raise self._unsupported(prop)
        return lambda item: any(str(value).lower() == wanted for value in item.get(prop) or [])

    def _comparison(self, prop: str) -> Predicate:
        operator = self._next()[1].lower()
        if prop not in self.schema.eq:
            raise self._unsupported(prop)
        if operator == "in":
            values = self._literal_list()
            return lambda item: _normalise(item.get(prop)) in values
        if operator != "eq":
            # ne/gt/lt need ConsistencyLevel: eventual + $count on directory objects.
            raise self._unsupported(prop)
        wanted = _normalise(self._literal())
        return lambda item: _normalise(item.get(prop)) == wanted

    def _property(self) -> str:
        kind, word, _ = self._next()
        if kind != "word":
            self.pos -= 1
            raise self._syntax()
        return word

    def _literal(self) -> Any:
        kind, word, _ = self._next()
        if kind == "str":
            return word[1:-1].replace("''", "'")
        lowered = word.lower()
        if kind == "word" and lowered in ("true", "false", "null"):
            return {"true": True, "false": False, "null": None}[lowered]
        self.pos -= 1
        raise self._syntax()

    def _literal_list(self) -> set[Any]:
        self._expect("(")
        values = {_normalise(self._literal())}
        while (token := self._peek()) is not None and token[1] == ",":
            self.pos += 1
            values.add(_normalise(self._literal()))
        self._expect(")")
        return values


def _normalise(value: Any) -> Any:
    return value.lower() if isinstance(value, str) else value


def parse_user_filter(text: str) -> Predicate:
    return _FilterParser(text, USER_FILTER).parse()


def parse_filter(text: str, schema: FilterSchema) -> Predicate:
    return _FilterParser(text, schema).parse()


# --------------------------------------------------------------------------------------------
# Password rules
# --------------------------------------------------------------------------------------------


def password_problem(password: str, user: Mapping[str, Any]) -> str | None:
    """Why Entra would refuse this password for this user, or None (sandbox's reading of the
    cloud password policy: 8–256 allowed characters, 3 of 4 classes, no banned terms)."""
    if not 8 <= len(password) <= 256:
        return "length"
    if any(not (c.isascii() and (c.isalnum() or c in _PASSWORD_SYMBOLS)) for c in password):
        return "character"
    classes = [
        any(c.islower() for c in password),
        any(c.isupper() for c in password),
        any(c.isdigit() for c in password),
        any(c in _PASSWORD_SYMBOLS for c in password),
    ]
    if sum(classes) < 3:
        return "classes"
    normalised = unicodedata.normalize("NFKC", password).lower().translate(_LEET)
    personal = [str(user.get("mailNickname") or ""), str(user.get("givenName") or ""), str(user.get("surname") or "")]
    banned = [*BANNED_PASSWORD_TERMS, *(term.lower() for term in personal if len(term) >= 4)]
    if any(term in normalised for term in banned):
        return "banned"
    return None


# --------------------------------------------------------------------------------------------
# The sandbox
# --------------------------------------------------------------------------------------------


@dataclass
class _Call:
    """What a handler gets: the request, the tenant the token names, the token's claims and the
    parsed JSON body (None for bodiless requests)."""

    request: Request
    tenant: Tenant
    claims: dict[str, Any]
    body: Any = None

    @property
    def permissions(self) -> set[str]:
        return set(self.claims.get("roles") or [])

    @property
    def app_only(self) -> bool:
        """No `scp` claim: an application token (every token the sandbox's Entra issues)."""
        return "scp" not in self.claims

    def require(self, accepted: frozenset[str]) -> None:
        if not self.permissions & accepted:
            raise _denied()

    def has(self, accepted: frozenset[str]) -> bool:
        return bool(self.permissions & accepted)


Handler = Callable[[_Call], Awaitable[Response]]


def _timestamp(moment: dt.datetime) -> str:
    return moment.strftime("%Y-%m-%dT%H:%M:%SZ")


def _now() -> str:
    return _timestamp(dt.datetime.now(dt.UTC))


def _graph_datetime(moment: dt.datetime) -> str:
    """A DateTimeTimeZone's dateTime (no offset, seven fractional digits like Exchange's)."""
    return moment.strftime("%Y-%m-%dT%H:%M:%S.0000000")


class GraphSandbox(ServedSandbox):
    """Microsoft Graph v1.0 for many tenants at once, on a loopback port.

    Seed from any thread with `add_tenant`, `add_domain`, `add_user`, `assign_role`, `set_manager`,
    `set_app_role`, `add_group`, `add_member`, `add_subscription`, `set_premium`, `set_user_risk`,
    `add_auth_method`, `set_tap_policy`, `add_shared_mailbox`; inspect with `user`, `password_of`,
    `password_profile`, `members`, `tap_of`, `auth_methods`, `risk_of`, `sent_mail`, `request_log`.
    Users and groups may be named by id or UPN / id or display name wherever seeding takes them.
    """

    _not_started = "GraphSandbox is not started"

    def __init__(self, entra: EntraSandbox | None = None) -> None:
        self._owns_entra = entra is None
        self.entra = entra or EntraSandbox()
        self.faults = GraphFaults()
        self._lock = threading.RLock()
        self._tenants: dict[str, Tenant] = {}
        self._log: list[RequestRecord] = []
        self._server: BackgroundServer | None = None
        self.app = self._build_app()

    # -- lifecycle ---------------------------------------------------------------------------

    def start(self) -> GraphSandbox:
        if self._owns_entra:
            self.entra.start()
        if self._server is None:
            self._serve(self.app, "graph-sandbox")
        return self

    def stop(self) -> None:
        self._stop_server()
        if self._owns_entra:
            self.entra.stop()

    @property
    def graph_url(self) -> str:
        """The base URL for msgraph-sdk: `client.request_adapter.base_url = sandbox.graph_url`."""
        return f"{self.url}/v1.0"

    # -- seeding: tenants and domains --------------------------------------------------------

    def add_tenant(self, tenant_id: str | None = None, default_domain: str = "contoso.example") -> str:
        """A tenant whose default (verified) domain is `default_domain`; like every Entra tenant it
        also has an initial `<label>.onmicrosoft.com` domain."""
        default_domain = default_domain.lower()
        tenant_id = self.entra.add_tenant(tenant_id, domains=[default_domain])
        label = re.sub(r"[^a-z0-9]", "", default_domain.split(".")[0]) or "tenant"
        with self._lock:
            if tenant_id not in self._tenants:
                tenant = Tenant(tenant_id, default_domain, display_name=label.capitalize())
                tenant.domains[f"{label}.onmicrosoft.com"] = _domain(f"{label}.onmicrosoft.com", True, False, True)
                tenant.domains[default_domain] = _domain(default_domain, True, True, False)
                self._tenants[tenant_id] = tenant
        return tenant_id

    def add_domain(self, tenant_id: str, name: str, verified: bool = True, default: bool = False) -> dict[str, Any]:
        """Add a custom domain (unverified ones cannot carry UPNs); `default=True` makes it the
        tenant's default domain."""
        name = name.lower()
        with self._lock:
            tenant = self._tenant(tenant_id)
            if default and not verified:
                raise ValueError("only a verified domain can be the default")
            previous = tenant.domains.get(name)
            domain = _domain(name, verified, default, bool(previous and previous["isInitial"]))
            if default:
                for other in tenant.domains.values():
                    other["isDefault"] = False
                tenant.default_domain = name
            tenant.domains[name] = domain
        if verified:
            self.entra.add_tenant(tenant_id, domains=[name])
        return copy.deepcopy(domain)

    def consent(self, tenant_id: str, client_id: str, permissions: Iterable[str] | None = None) -> None:
        """Shortcut for `entra.consent`: the app may now get tokens for this tenant."""
        self.entra.consent(tenant_id, client_id, permissions)

    # -- seeding: users, roles, managers ------------------------------------------------------

    def add_user(
        self,
        tenant_id: str,
        display_name: str,
        user_principal_name: str,
        mail: str | None = None,
        manager_id: str | None = None,
        account_enabled: bool = True,
        on_premises_sync_enabled: bool = False,
        given_name: str | None = None,
        surname: str | None = None,
        proxy_addresses: list[str] | None = None,
        other_mails: list[str] | None = None,
        *,
        usage_location: str | None = None,
        job_title: str | None = None,
        department: str | None = None,
        mobile_phone: str | None = None,
        user_type: str = "Member",
        password: str | None = None,
    ) -> dict[str, Any]:
        """Create a user; returns its Graph representation (all properties, camelCase). A user
        with a `mail` address has an Exchange Online mailbox."""
        # Seeded users stand for accounts that already existed, so their dates lie in the past.
        created = _timestamp(dt.datetime.now(dt.UTC) - dt.timedelta(days=90))
        user = _new_user(
            display_name=display_name,
            user_principal_name=user_principal_name,
            mail=mail,
            account_enabled=account_enabled,
            created=created,
            given_name=given_name,
            surname=surname,
            proxy_addresses=proxy_addresses,
            other_mails=other_mails,
            usage_location=usage_location,
            job_title=job_title,
            department=department,
            mobile_phone=mobile_phone,
            user_type=user_type,
        )
        user["onPremisesSyncEnabled"] = True if on_premises_sync_enabled else None
        with self._lock:
            tenant = self._tenant(tenant_id)
            if tenant.find_user(user_principal_name) is not None:
                raise ValueError(f"duplicate userPrincipalName {user_principal_name}")
            tenant.users[user["id"]] = user
            tenant.passwords[user["id"]] = {"password": password, "forceChangePasswordNextSignIn": False}
            if manager_id is not None:
                self._set_manager(tenant, user["id"], manager_id)
            return copy.deepcopy(user)

    def set_manager(self, tenant_id: str, user_id: str, manager_id: str | None) -> None:
        with self._lock:
            tenant = self._tenant(tenant_id)
            uid = self._user_id(tenant, user_id)
            if manager_id is None:
                tenant.managers.pop(uid, None)
            else:
                self._set_manager(tenant, uid, manager_id)

    @staticmethod
    def _set_manager(tenant: Tenant, user_id: str, manager_id: str) -> None:
        manager = tenant.find_user(manager_id)
        if manager is None:
            raise KeyError(f"unknown manager {manager_id}")
        tenant.managers[user_id] = manager["id"]

    def assign_role(self, tenant_id: str, user_id: str, role_display_name: str) -> dict[str, Any]:
        """Make the user a member of the directory role (activating the role in the tenant)."""
        with self._lock:
            tenant = self._tenant(tenant_id)
            uid = self._user_id(tenant, user_id)
            role = tenant.roles.get(role_display_name)
            if role is None:
                role = DirectoryRole(
                    id=str(uuid.uuid4()),
                    display_name=role_display_name,
                    role_template_id=ROLE_TEMPLATES.get(role_display_name, str(uuid.uuid4())),
                    description=f"{role_display_name} (sandbox)",
                )
                tenant.roles[role_display_name] = role
            if uid not in role.members:
                role.members.append(uid)
            return role.to_graph()

    def set_app_role(self, tenant_id: str, role_display_name: str | None) -> None:
        """The directory role TierOne's service principal holds in this tenant (default
        "User Administrator"; None for no role, which makes every password reset a 403)."""
        with self._lock:
            self._tenant(tenant_id).app_role = role_display_name

    def smart_lockout(self, tenant_id: str, user_id: str) -> None:
        """Sandbox-only: mark the account as locked by smart lockout (an admin reset clears it)."""
        with self._lock:
            tenant = self._tenant(tenant_id)
            tenant.locked_out.add(self._user_id(tenant, user_id))

    # -- seeding: Identity Protection ----------------------------------------------------------

    def set_premium(self, tenant_id: str, p2: bool) -> None:
        """Whether the tenant has Entra ID P2 (Identity Protection's riskyUsers APIs need it).
        Adding a subscription whose plans include AAD_PREMIUM_P2 turns it on too."""
        with self._lock:
            self._tenant(tenant_id).p2 = p2

    def set_user_risk(self, tenant_id: str, user_id: str, level: str) -> dict[str, Any]:
        """Identity Protection flags the user: level "low" | "medium" | "high" (riskState
        atRisk), or "none" (riskState none)."""
        if level not in ("none", "low", "medium", "high"):
            raise ValueError(f"unknown risk level {level}")
        with self._lock:
            tenant = self._tenant(tenant_id)
            user = tenant.users[self._user_id(tenant, user_id)]
            record = {
                "id": user["id"],
                "isDeleted": False,
                "isProcessing": False,
                "riskLastUpdatedDateTime": _now(),
                "riskLevel": level,
                "riskState": "none" if level == "none" else "atRisk",
                "riskDetail": "none",
                "userDisplayName": user["displayName"],
                "userPrincipalName": user["userPrincipalName"],
            }
            tenant.risk[user["id"]] = record
            return copy.deepcopy(record)

    # -- seeding: authentication methods --------------------------------------------------------

    def add_auth_method(self, tenant_id: str, user_id: str, kind: str, default: bool = False, **fields: Any) -> str:
        """Register an authentication method for the user; returns its id. `kind` is one of
        microsoftAuthenticator, phone, softwareOath, fido2, email, temporaryAccessPass,
        windowsHelloForBusiness. `fields` are Graph properties in camelCase or snake_case (e.g.
        `phone_type="alternateMobile", phone_number="+1 425 555 0100"`). `default=True` makes it the
        user's default sign-in method, which Graph refuses to delete while other MFA methods exist."""
        if kind not in METHOD_KINDS or kind == "password":
            raise ValueError(f"unknown authentication method kind {kind!r}")
        values = {_camel(k): v for k, v in fields.items()}
        with self._lock:
            tenant = self._tenant(tenant_id)
            uid = self._user_id(tenant, user_id)
            if kind == "temporaryAccessPass":
                method = self._create_tap(tenant, uid, values)
            else:
                method = _seed_method(tenant, uid, METHOD_KINDS[kind], values)
                tenant.auth_methods.setdefault(uid, []).append(method)
            if default:
                tenant.default_methods[uid] = method["id"]
            return str(method["id"])

    def set_tap_policy(
        self,
        tenant_id: str,
        enabled: bool = True,
        *,
        include_groups: Iterable[str] = ("all_users",),
        exclude_groups: Iterable[str] = (),
        default_lifetime: int = 60,
        min_lifetime: int = 60,
        max_lifetime: int = 480,
        usable_once: bool = False,
        length: int = 8,
    ) -> dict[str, Any]:
        """The tenant's Temporary Access Pass policy (a new tenant's is disabled, as in Entra).
        `include_groups`/`exclude_groups` name groups by id or display name; "all_users" is every
        user. Lifetimes are minutes within 10–43,200; `usable_once=True` forces one-time passes."""
        if not TAP_MIN_LIFETIME <= min_lifetime <= default_lifetime <= max_lifetime <= TAP_MAX_LIFETIME:
            raise ValueError("TAP lifetimes must satisfy 10 <= min <= default <= max <= 43200")
        if not 8 <= length <= 48:
            raise ValueError("TAP length must be 8–48")
        with self._lock:
            tenant = self._tenant(tenant_id)

            def targets(names: Iterable[str]) -> list[dict[str, Any]]:
                ids = [n if n == "all_users" else self._group_id(tenant, n) for n in names]
                return [{"targetType": "group", "id": i, "isRegistrationRequired": False} for i in ids]

            tenant.tap_policy = {
                "state": "enabled" if enabled else "disabled",
                "defaultLifetimeInMinutes": default_lifetime,
                "defaultLength": length,
                "minimumLifetimeInMinutes": min_lifetime,
                "maximumLifetimeInMinutes": max_lifetime,
                "isUsableOnce": usable_once,
                "includeTargets": targets(include_groups),
                "excludeTargets": targets(exclude_groups),
            }
            return copy.deepcopy(tenant.tap_policy)

    # -- seeding: groups ------------------------------------------------------------------------

    def add_group(
        self,
        tenant_id: str,
        display_name: str,
        kind: str = "security",
        on_prem_synced: bool = False,
        role_assignable: bool = False,
        licenses: Iterable[str] = (),
        mail: str | None = None,
        *,
        membership_rule: str | None = None,
    ) -> str:
        """A group; returns its id. `kind`: "security", "m365" (Microsoft 365 / Unified),
        "mail_security" (mail-enabled security), "distribution" (distribution list) or "dynamic"
        (dynamic-membership security group; seed its members with `add_member`). `licenses` are
        skuIds or part numbers of the tenant's subscriptions, assigned to the group (group-based
        licensing: members inherit them). Mail-enabled kinds get `mail` or alias@default domain."""
        if kind not in GROUP_KINDS:
            raise ValueError(f"unknown group kind {kind!r}; expected one of {GROUP_KINDS}")
        if role_assignable and kind not in ("security", "m365"):
            raise ValueError("only security and Microsoft 365 groups can be role-assignable")
        nickname = re.sub(r"[^A-Za-z0-9]", "", display_name) or "group"
        with self._lock:
            tenant = self._tenant(tenant_id)
            mail_enabled = kind in ("m365", "mail_security", "distribution")
            address = (mail or f"{nickname.lower()}@{tenant.default_domain}") if mail_enabled else None
            sku_ids = [self._sku_id(tenant, s) for s in licenses]
            group: dict[str, Any] = {
                "id": str(uuid.uuid4()),
                "deletedDateTime": None,
                "classification": None,
                "createdDateTime": _timestamp(dt.datetime.now(dt.UTC) - dt.timedelta(days=200)),
                "creationOptions": [],
                "description": None,
                "displayName": display_name,
                "expirationDateTime": None,
                "groupTypes": {"m365": ["Unified"], "dynamic": ["DynamicMembership"]}.get(kind, []),
                "isAssignableToRole": True if role_assignable else None,
                "mail": address,
                "mailEnabled": mail_enabled,
                "mailNickname": nickname,
                "membershipRule": (membership_rule or '(user.department -eq "Sales")') if kind == "dynamic" else None,
                "membershipRuleProcessingState": "On" if kind == "dynamic" else None,
                "onPremisesLastSyncDateTime": _timestamp(dt.datetime.now(dt.UTC)) if on_prem_synced else None,
                "onPremisesSyncEnabled": True if on_prem_synced else None,
                "preferredDataLocation": None,
                "preferredLanguage": None,
                "proxyAddresses": [f"SMTP:{address}"] if address else [],
                "renewedDateTime": _timestamp(dt.datetime.now(dt.UTC) - dt.timedelta(days=200)),
                "resourceBehaviorOptions": [],
                "resourceProvisioningOptions": [],
                "securityEnabled": kind in ("security", "mail_security", "dynamic"),
                "securityIdentifier": f"S-1-12-1-{secrets.randbelow(2**31)}-{secrets.randbelow(2**31)}",
                "theme": None,
                "visibility": "Private" if kind == "m365" else None,
                "onPremisesProvisioningErrors": [],
                "serviceProvisioningErrors": [],
                "assignedLicenses": [{"disabledPlans": [], "skuId": s} for s in sku_ids],
            }
            tenant.groups[group["id"]] = group
            tenant.group_members[group["id"]] = []
            return str(group["id"])

    def add_member(self, tenant_id: str, group: str, member: str) -> None:
        """Sandbox-level membership (no Graph rules apply: this is how dynamic, synced and
        distribution groups get their members). `member` is a user (id or UPN) or a group (id or
        display name). Members inherit the group's licences."""
        with self._lock:
            tenant = self._tenant(tenant_id)
            gid = self._group_id(tenant, group)
            object_id = self._object_id(tenant, member)
            if object_id not in tenant.group_members[gid]:
                tenant.group_members[gid].append(object_id)
            self._refresh_licenses_of(tenant, object_id)

    def remove_member(self, tenant_id: str, group: str, member: str) -> None:
        with self._lock:
            tenant = self._tenant(tenant_id)
            gid = self._group_id(tenant, group)
            object_id = self._object_id(tenant, member)
            if object_id in tenant.group_members[gid]:
                tenant.group_members[gid].remove(object_id)
            self._refresh_licenses_of(tenant, object_id)

    # -- seeding: licensing and mailboxes ------------------------------------------------------

    def add_subscription(self, tenant_id: str, sku_part_number: str, seats: int, *, sku_id: str | None = None) -> str:
        """Buy `seats` of a product (a part number from graph.md §5.4, e.g. "SPE_E3"); returns its
        skuId. Other part numbers need `sku_id` and get no service plans. Buying more of a SKU the
        tenant has raises its seat count."""
        part = sku_part_number.upper()
        catalogued = SKU_CATALOG.get(part)
        if catalogued is None and sku_id is None:
            raise KeyError(f"unknown skuPartNumber {sku_part_number}; pass sku_id= for products outside SKU_CATALOG")
        resolved_id = (sku_id or (catalogued[0] if catalogued else "")).lower()
        plans = tuple((SERVICE_PLANS[name], name) for name in (catalogued[2] if catalogued else ()))
        with self._lock:
            tenant = self._tenant(tenant_id)
            existing = tenant.subscriptions.get(resolved_id)
            if existing is not None:
                existing.enabled += seats
            else:
                tenant.subscriptions[resolved_id] = Subscription(resolved_id, part, seats, plans)
            if "AAD_PREMIUM_P2" in dict(plans).values():
                tenant.p2 = True
        return resolved_id

    def add_shared_mailbox(self, tenant_id: str, display_name: str, address: str) -> dict[str, Any]:
        """A shared mailbox: as in Exchange Online, a disabled user object with a mailbox of type
        SharedMailbox. Returns the user's Graph representation."""
        user = self.add_user(tenant_id, display_name, address, mail=address, account_enabled=False)
        with self._lock:
            tenant = self._tenant(tenant_id)
            mailbox = tenant.mailbox_of(tenant.users[user["id"]])
            assert mailbox is not None
            mailbox.kind = "SharedMailbox"
        return user

    # -- introspection -----------------------------------------------------------------------

    def user(self, tenant_id: str, user_id: str) -> dict[str, Any]:
        """All stored properties of a user (by id or UPN), whatever Graph would project."""
        with self._lock:
            tenant = self._tenant(tenant_id)
            return copy.deepcopy(tenant.users[self._user_id(tenant, user_id)])

    def users(self, tenant_id: str) -> list[dict[str, Any]]:
        with self._lock:
            return copy.deepcopy(list(self._tenant(tenant_id).users.values()))

    def deleted_users(self, tenant_id: str) -> list[dict[str, Any]]:
        """Users deleted through the API (soft-deleted in Entra, restorable for 30 days)."""
        with self._lock:
            return copy.deepcopy(list(self._tenant(tenant_id).deleted_users.values()))

    def manager_of(self, tenant_id: str, user_id: str) -> str | None:
        with self._lock:
            tenant = self._tenant(tenant_id)
            return tenant.managers.get(self._user_id(tenant, user_id))

    def password_of(self, tenant_id: str, user_id: str) -> str | None:
        """The last password set for the user (sandbox-only: Graph never reveals it)."""
        return self.password_profile(tenant_id, user_id).get("password")

    def password_profile(self, tenant_id: str, user_id: str) -> dict[str, Any]:
        """The last passwordProfile written (password and forceChange... flags); sandbox-only."""
        with self._lock:
            tenant = self._tenant(tenant_id)
            return dict(tenant.passwords[self._user_id(tenant, user_id)])

    def is_locked_out(self, tenant_id: str, user_id: str) -> bool:
        with self._lock:
            tenant = self._tenant(tenant_id)
            return self._user_id(tenant, user_id) in tenant.locked_out

    def group(self, tenant_id: str, group: str) -> dict[str, Any]:
        with self._lock:
            tenant = self._tenant(tenant_id)
            return copy.deepcopy(tenant.groups[self._group_id(tenant, group)])

    def members(self, tenant_id: str, group: str) -> list[str]:
        """Object ids of the group's direct members, in the order they joined."""
        with self._lock:
            tenant = self._tenant(tenant_id)
            return list(tenant.group_members[self._group_id(tenant, group)])

    def licenses_of(self, tenant_id: str, user_id: str) -> list[str]:
        """skuIds the user effectively holds (direct and group-inherited)."""
        with self._lock:
            tenant = self._tenant(tenant_id)
            user = tenant.users[self._user_id(tenant, user_id)]
            return [lic["skuId"] for lic in user["assignedLicenses"]]

    def risk_of(self, tenant_id: str, user_id: str) -> dict[str, Any] | None:
        with self._lock:
            tenant = self._tenant(tenant_id)
            return copy.deepcopy(tenant.risk.get(self._user_id(tenant, user_id)))

    def auth_methods(self, tenant_id: str, user_id: str) -> list[dict[str, Any]]:
        """The user's registered methods (Graph shapes, password first)."""
        with self._lock:
            tenant = self._tenant(tenant_id)
            return self._methods_view(tenant, self._user_id(tenant, user_id))

    def default_method(self, tenant_id: str, user_id: str) -> str | None:
        with self._lock:
            tenant = self._tenant(tenant_id)
            return tenant.default_methods.get(self._user_id(tenant, user_id))

    def tap_of(self, tenant_id: str, user_id: str) -> dict[str, Any] | None:
        """The user's Temporary Access Pass including the pass itself (sandbox-only: Graph shows
        it once, in the creation response), or None."""
        with self._lock:
            tenant = self._tenant(tenant_id)
            uid = self._user_id(tenant, user_id)
            for method in tenant.auth_methods.get(uid, []):
                if method["@odata.type"] == METHOD_KINDS["temporaryAccessPass"].odata_type:
                    view = self._tap_view(tenant, method)
                    view["temporaryAccessPass"] = tenant.tap_secrets.get(method["id"])
                    return view
            return None

    def tap_policy(self, tenant_id: str) -> dict[str, Any]:
        with self._lock:
            return copy.deepcopy(self._tenant(tenant_id).tap_policy)

    def sent_mail(self, tenant_id: str) -> list[dict[str, Any]]:
        """Messages accepted by POST /users/{id}/sendMail, oldest first."""
        with self._lock:
            return copy.deepcopy(self._tenant(tenant_id).outbox)

    def mailbox_settings(self, tenant_id: str, user_id: str) -> dict[str, Any] | None:
        with self._lock:
            tenant = self._tenant(tenant_id)
            user = tenant.users[self._user_id(tenant, user_id)]
            mailbox = tenant.mailbox_of(user)
            return None if mailbox is None else self._mailbox_settings_view(user, mailbox)

    @property
    def request_log(self) -> list[RequestRecord]:
        with self._lock:
            return list(self._log)

    def clear_request_log(self) -> None:
        with self._lock:
            self._log.clear()

    # -- model lookups (also used by the Exchange sandbox) -----------------------------------

    @staticmethod
    def _user_id(tenant: Tenant, reference: str) -> str:
        """Seeding and introspection accept a user's id or UPN, like Graph's /users/{ref}."""
        user = tenant.find_user(reference)
        if user is None:
            raise KeyError(f"unknown user {reference}")
        return str(user["id"])

    @staticmethod
    def _group_id(tenant: Tenant, reference: str) -> str:
        group = tenant.find_group(reference) or next(
            (g for g in tenant.groups.values() if g["displayName"].lower() == reference.lower()), None
        )
        if group is None:
            raise KeyError(f"unknown group {reference}")
        return str(group["id"])

    def _object_id(self, tenant: Tenant, reference: str) -> str:
        user = tenant.find_user(reference)
        if user is not None:
            return str(user["id"])
        return self._group_id(tenant, reference)

    def _tenant(self, tenant_id: str) -> Tenant:
        tenant = self._tenants.get(tenant_id.lower())
        if tenant is None:
            raise KeyError(f"unknown tenant {tenant_id}")
        return tenant

    def _tenant_by_reference(self, reference: str) -> Tenant | None:
        """A tenant by id or by one of its domains (the latest tenant claiming it wins)."""
        wanted = reference.lower()
        with self._lock:
            if wanted in self._tenants:
                return self._tenants[wanted]
            matches = [t for t in self._tenants.values() if wanted in t.domains]
            return matches[-1] if matches else None

    @staticmethod
    def _sku_id(tenant: Tenant, reference: str) -> str:
        wanted = reference.lower()
        if wanted in tenant.subscriptions:
            return wanted
        for sub in tenant.subscriptions.values():
            if sub.sku_part_number.lower() == wanted:
                return sub.sku_id
        raise KeyError(f"the tenant has no subscription {reference}")

    # -- model rules --------------------------------------------------------------------------

    def _refresh_licenses_of(self, tenant: Tenant, object_id: str) -> None:
        if object_id in tenant.users:
            self._refresh_licenses(tenant, object_id)
        elif object_id in tenant.groups:
            for member in tenant.group_members.get(object_id, []):
                if member in tenant.users:
                    self._refresh_licenses(tenant, member)

    def _refresh_licenses(self, tenant: Tenant, user_id: str) -> None:
        """Recompute assignedLicenses / licenseAssignmentStates from direct assignments and the
        groups the user is a direct member of (group licensing does not flow through nesting). A
        group licence with no free seat lands in state Error / CountViolation, as in Entra."""
        user = tenant.users[user_id]
        previous = {lic["skuId"] for lic in user.get("assignedLicenses") or []}
        states: list[dict[str, Any]] = []
        assigned: dict[str, list[str]] = {}
        for sku, disabled in tenant.direct_licenses.get(user_id, {}).items():
            assigned[sku] = list(disabled)
            states.append(_license_state(sku, disabled, None, "Active", "None"))
        for gid in tenant.groups_of(user_id):
            for lic in tenant.groups[gid].get("assignedLicenses") or []:
                sku, disabled = lic["skuId"], list(lic.get("disabledPlans") or [])
                sub = tenant.subscriptions.get(sku)
                if sku in assigned or sku in previous:
                    active = True
                else:
                    active = sub is not None and tenant.consumed_units(sku, excluding=user_id) < sub.enabled
                if active:
                    assigned.setdefault(sku, disabled)
                states.append(
                    _license_state(
                        sku, disabled, gid, "Active" if active else "Error", "None" if active else "CountViolation"
                    )
                )
        user["assignedLicenses"] = [{"disabledPlans": d, "skuId": s} for s, d in assigned.items()]
        user["licenseAssignmentStates"] = states
        self._provision_mailbox(tenant, user)

    @staticmethod
    def _provision_mailbox(tenant: Tenant, user: dict[str, Any]) -> None:
        """A licence with an enabled Exchange plan gives a mail-less user a mailbox at their UPN
        (Exchange does it asynchronously; the sandbox at once)."""
        if user.get("mail"):
            return
        for lic in user.get("assignedLicenses") or []:
            sub = tenant.subscriptions.get(lic["skuId"])
            if sub is None:
                continue
            for plan_id, plan_name in sub.service_plans:
                if plan_name in MAILBOX_PLANS and plan_id not in (lic.get("disabledPlans") or []):
                    user["mail"] = user["userPrincipalName"]
                    user["proxyAddresses"] = [f"SMTP:{user['userPrincipalName']}"]
                    tenant.mailbox_of(user)
                    return

    @staticmethod
    def _is_privileged_target(tenant: Tenant, target_id: str) -> bool:
        return any(tenant.groups[g].get("isAssignableToRole") for g in tenant.groups_of(target_id))

    @classmethod
    def _check_role_hierarchy(cls, tenant: Tenant, target_id: str) -> None:
        """403 when the target holds a role the app's own role may not act on, or belongs to a
        role-assignable group (only PAA/GA may act on those, graph.md §1.3)."""
        allowed = RESETTABLE_BY.get(tenant.app_role or "", frozenset())
        if allowed is None:
            return
        target_roles = {role.display_name for role in tenant.roles_of(target_id)}
        if not target_roles <= allowed or cls._is_privileged_target(tenant, target_id):
            raise _denied()

    def _delete_user(self, tenant: Tenant, user_id: str) -> None:
        user = tenant.users.pop(user_id)
        user["deletedDateTime"] = _now()
        tenant.deleted_users[user_id] = user
        for members in tenant.group_members.values():
            if user_id in members:
                members.remove(user_id)
        for role in tenant.roles.values():
            if user_id in role.members:
                role.members.remove(user_id)
        tenant.managers.pop(user_id, None)
        for subordinate, manager in list(tenant.managers.items()):
            if manager == user_id:
                del tenant.managers[subordinate]
        tenant.direct_licenses.pop(user_id, None)
        tenant.default_methods.pop(user_id, None)
        tenant.mailboxes.pop(user_id, None)
        for method in tenant.auth_methods.pop(user_id, []):
            tenant.tap_secrets.pop(method["id"], None)
        if user_id in tenant.risk:
            tenant.risk[user_id]["isDeleted"] = True
        tenant.locked_out.discard(user_id)
        for mailbox in tenant.mailboxes.values():
            mailbox.full_access.pop(user_id, None)
            for grants in (mailbox.send_as, mailbox.send_on_behalf):
                if user_id in grants:
                    grants.remove(user_id)

    def _delete_group(self, tenant: Tenant, group_id: str) -> None:
        tenant.groups.pop(group_id)
        members = tenant.group_members.pop(group_id, [])
        for others in tenant.group_members.values():
            if group_id in others:
                others.remove(group_id)
        for member in members:
            if member in tenant.users:
                self._refresh_licenses(tenant, member)

    def _tap_in_scope(self, tenant: Tenant, user_id: str) -> bool:
        policy = tenant.tap_policy
        groups = set(tenant.transitive_groups_of(user_id))
        if any(t["id"] in groups for t in policy.get("excludeTargets") or []):
            return False
        return any(t["id"] == "all_users" or t["id"] in groups for t in policy.get("includeTargets") or [])

    def _create_tap(self, tenant: Tenant, user_id: str, values: Mapping[str, Any]) -> dict[str, Any]:
        policy = tenant.tap_policy
        lifetime = values.get("lifetimeInMinutes", policy["defaultLifetimeInMinutes"])
        usable_once = values.get("isUsableOnce", policy["isUsableOnce"])
        start = values.get("startDateTime")
        start_moment = _parse_datetime(start) if start else dt.datetime.now(dt.UTC)
        method = {
            "@odata.type": METHOD_KINDS["temporaryAccessPass"].odata_type,
            "id": str(uuid.uuid4()),
            "createdDateTime": _now(),
            "startDateTime": _timestamp(start_moment),
            "lifetimeInMinutes": lifetime,
            "isUsableOnce": usable_once,
        }
        pass_value = "".join(secrets.choice(_TAP_ALPHABET) for _ in range(int(policy["defaultLength"])))
        methods = tenant.auth_methods.setdefault(user_id, [])
        for old in [m for m in methods if m["@odata.type"] == method["@odata.type"]]:  # one TAP per user
            methods.remove(old)
            tenant.tap_secrets.pop(old["id"], None)
        methods.append(method)
        tenant.tap_secrets[method["id"]] = pass_value
        return method

    @staticmethod
    def _tap_view(tenant: Tenant, method: Mapping[str, Any]) -> dict[str, Any]:
        now = dt.datetime.now(dt.UTC)
        start = _parse_datetime(method["startDateTime"])
        end = start + dt.timedelta(minutes=int(method["lifetimeInMinutes"]))
        if tenant.tap_policy["state"] != "enabled":
            usable, reason = False, "DisabledByPolicy"
        elif now < start:
            usable, reason = False, "NotYetValid"
        elif now >= end:
            usable, reason = False, "Expired"
        else:
            usable, reason = True, "EnabledByPolicy"
        return {**method, "temporaryAccessPass": None, "isUsable": usable, "methodUsabilityReason": reason}

    def _methods_view(self, tenant: Tenant, user_id: str) -> list[dict[str, Any]]:
        user = tenant.users[user_id]
        password = {
            "@odata.type": METHOD_KINDS["password"].odata_type,
            "id": PASSWORD_METHOD_ID,
            "password": None,
            "createdDateTime": user.get("lastPasswordChangeDateTime"),
        }
        methods = [password]
        for method in tenant.auth_methods.get(user_id, []):
            if method["@odata.type"] == METHOD_KINDS["temporaryAccessPass"].odata_type:
                methods.append(self._tap_view(tenant, method))
            else:
                methods.append(copy.deepcopy(method))
        return methods

    @staticmethod
    def _mailbox_settings_view(user: Mapping[str, Any], mailbox: Mailbox) -> dict[str, Any]:
        return {
            "archiveFolder": base64.urlsafe_b64encode(f"archive:{user['id']}".encode()).decode().rstrip("="),
            "timeZone": mailbox.time_zone,
            "automaticRepliesSetting": copy.deepcopy(mailbox.auto_reply),
            "language": {"locale": "en-US", "displayName": "English (United States)"},
            "dateFormat": "M/d/yyyy",
            "timeFormat": "h:mm tt",
            "userPurpose": "shared" if mailbox.kind == "SharedMailbox" else "user",
            "delegateMeetingMessageDeliveryOptions": "sendToDelegateOnly",
            "workingHours": {
                "daysOfWeek": ["monday", "tuesday", "wednesday", "thursday", "friday"],
                "startTime": "08:00:00.0000000",
                "endTime": "17:00:00.0000000",
                "timeZone": {"name": mailbox.time_zone},
            },
        }

    # -- HTTP plumbing -----------------------------------------------------------------------

    def _build_app(self) -> Starlette:
        def cast(relation: str, type_name: str, handler: Handler) -> list[tuple[str, dict[str, Handler]]]:
            # Graph accepts a type cast with or without the "microsoft." namespace; kiota sends it without.
            return [(f"{relation}/{ns}.{type_name}", {"GET": handler}) for ns in ("microsoft.graph", "graph")]

        u = "/v1.0/users/{ref}"
        auth = f"{u}/authentication"
        routes: list[tuple[str, dict[str, Handler]]] = [
            ("/v1.0/users", {"GET": self._list_users, "POST": self._create_user}),
            (u, {"GET": self._get_user, "PATCH": self._patch_user, "DELETE": self._delete_user_endpoint}),
            (f"{u}/manager", {"GET": self._get_manager}),
            (
                f"{u}/manager/$ref",
                {"GET": self._get_manager_ref, "PUT": self._put_manager, "DELETE": self._delete_manager},
            ),
            (f"{u}/memberOf", {"GET": self._member_of}),
            (f"{u}/transitiveMemberOf", {"GET": self._transitive_member_of}),
            *cast(f"{u}/memberOf", "directoryRole", self._roles_of_user),
            *cast(f"{u}/transitiveMemberOf", "directoryRole", self._roles_of_user),
            *cast(f"{u}/memberOf", "group", self._groups_of_user),
            *cast(f"{u}/transitiveMemberOf", "group", self._transitive_groups_of_user),
            (f"{u}/revokeSignInSessions", {"POST": self._revoke_sessions}),
            (f"{u}/licenseDetails", {"GET": self._license_details}),
            (f"{u}/assignLicense", {"POST": self._assign_license}),
            (f"{u}/mailboxSettings", {"GET": self._get_mailbox_settings, "PATCH": self._patch_mailbox_settings}),
            (f"{u}/sendMail", {"POST": self._send_mail}),
            (f"{auth}/methods", {"GET": self._list_methods}),
            (f"{auth}/methods/{{method}}", {"GET": self._get_method, "DELETE": self._delete_generic_method}),
            (f"{auth}/{{collection}}", {"GET": self._list_typed_methods, "POST": self._create_typed_method}),
            (f"{auth}/{{collection}}/{{method}}", {"GET": self._get_typed_method, "DELETE": self._delete_typed_method}),
            ("/v1.0/directoryRoles", {"GET": self._list_roles}),
            ("/v1.0/directoryRoles/{role}", {"GET": self._get_role}),
            ("/v1.0/directoryRoles/{role}/members", {"GET": self._role_members}),
            ("/v1.0/domains", {"GET": self._list_domains}),
            ("/v1.0/domains/{domain}", {"GET": self._get_domain}),
            ("/v1.0/organization", {"GET": self._organization}),
            ("/v1.0/identityProtection/riskyUsers", {"GET": self._list_risky_users}),
            ("/v1.0/identityProtection/riskyUsers/dismiss", {"POST": self._dismiss_risk}),
            ("/v1.0/identityProtection/riskyUsers/confirmCompromised", {"POST": self._confirm_compromised}),
            ("/v1.0/identityProtection/riskyUsers/{risky}", {"GET": self._get_risky_user}),
            (
                "/v1.0/policies/authenticationMethodsPolicy/authenticationMethodConfigurations/{config}",
                {"GET": self._get_method_configuration},
            ),
            ("/v1.0/groups", {"GET": self._list_groups}),
            ("/v1.0/groups/{group}", {"GET": self._get_group}),
            ("/v1.0/groups/{group}/members", {"GET": self._list_members}),
            ("/v1.0/groups/{group}/transitiveMembers", {"GET": self._list_transitive_members}),
            (
                "/v1.0/groups/{group}/members/$ref",
                {"POST": self._add_member_ref, "DELETE": self._remove_member_by_query},
            ),
            ("/v1.0/groups/{group}/members/{member}/$ref", {"DELETE": self._remove_member_ref}),
            *cast("/v1.0/groups/{group}/members", "user", self._list_user_members),
            *cast("/v1.0/groups/{group}/members", "group", self._list_group_members),
            ("/v1.0/groups/{group}/members/{member}", {"GET": self._get_member, "DELETE": self._delete_member_object}),
            ("/v1.0/subscribedSkus", {"GET": self._subscribed_skus}),
            ("/v1.0/{rest:path}", {}),
        ]
        all_methods = ["GET", "POST", "PATCH", "PUT", "DELETE"]
        return Starlette(
            routes=[Route(path, self._endpoint(handlers), methods=all_methods) for path, handlers in routes]
        )

    def _endpoint(self, handlers: Mapping[str, Handler]) -> Callable[[Request], Awaitable[Response]]:
        async def endpoint(request: Request) -> Response:
            request_id = str(uuid.uuid4())
            client_request_id = request.headers.get("client-request-id") or request_id
            tenant_id, body = None, None
            try:
                latency = self.faults.latency_ms
                if latency:
                    await asyncio.sleep(latency / 1000)
                claims = self._authenticate(request)
                tenant_id = claims["tid"]
                body = await self._json_body(request)
                response = await self._dispatch(request, handlers, claims, body)
            except GraphError as error:
                response = error.response(request_id, client_request_id)
            response.headers["request-id"] = request_id
            response.headers["client-request-id"] = client_request_id
            self._record(request, tenant_id, response.status_code, request_id, client_request_id, body)
            return response

        return endpoint

    async def _dispatch(
        self, request: Request, handlers: Mapping[str, Handler], claims: dict[str, Any], body: Any
    ) -> Response:
        handler = handlers.get(request.method)
        if not handlers:
            segment = request.path_params.get("rest", "").rstrip("/").split("/")[-1]
            raise GraphError(400, "BadRequest", f"Resource not found for the segment '{segment}'.")
        if handler is None:
            raise GraphError(405, "Request_BadRequest", "Specified HTTP method is not allowed for the request target.")
        with self._lock:
            tenant = self._tenants.get(claims["tid"])
        if tenant is None:
            raise GraphError(
                401,
                "Authorization_IdentityNotFound",
                "The identity of the calling application could not be established.",
            )
        call = _Call(request, tenant, claims, body)
        fault = self.faults.take(request.method)
        if fault is not None and not fault.after_applying:
            raise fault.error(call.tenant.id, str(call.claims.get("appid")))
        response = await handler(call)
        if fault is not None:
            raise fault.error(call.tenant.id, str(call.claims.get("appid")))
        return response

    def _authenticate(self, request: Request) -> dict[str, Any]:
        header = request.headers.get("authorization", "")
        scheme, _, token = header.partition(" ")
        try:
            if scheme.lower() != "bearer":
                raise TokenRejected("Access token is empty.")
            claims = self.entra.verify_access_token(token.strip(), [GRAPH_RESOURCE, GRAPH_RESOURCE + "/", GRAPH_APP_ID])
            if not claims.get("tid"):
                raise TokenRejected("Access token validation failure.")
        except TokenRejected as exc:
            raise GraphError(
                401,
                "InvalidAuthenticationToken",
                str(exc),
                {
                    "WWW-Authenticate": 'Bearer realm="", authorization_uri="https://login.microsoftonline.com/'
                    f'common/oauth2/authorize", client_id="{GRAPH_APP_ID}"'
                },
            ) from exc
        return claims

    @staticmethod
    async def _json_body(request: Request) -> Any:
        if request.method not in ("POST", "PATCH", "PUT"):
            return None
        raw = await request.body()
        if not raw:
            return None
        try:
            return json.loads(raw)
        except ValueError as exc:
            raise GraphError(
                400,
                "BadRequest",
                "Unable to read JSON request payload. Please ensure Content-Type header is set and payload "
                "is of valid JSON format.",
            ) from exc

    def _record(
        self, request: Request, tenant_id: str | None, status: int, request_id: str, client_request_id: str, body: Any
    ) -> None:
        record = RequestRecord(
            tenant_id=tenant_id,
            method=request.method,
            path=request.url.path,
            query=request.url.query,
            status=status,
            request_id=request_id,
            client_request_id=client_request_id,
            body=_redact(body),
        )
        with self._lock:
            self._log.append(record)

    # -- responses ---------------------------------------------------------------------------

    @staticmethod
    def _base(call: _Call) -> str:
        return str(call.request.base_url).rstrip("/") + "/v1.0"

    @staticmethod
    def _json(body: Mapping[str, Any], status: int = 200, headers: Mapping[str, str] | None = None) -> Response:
        return JSONResponse(
            dict(body), status_code=status, media_type=ODATA_JSON, headers={"OData-Version": "4.0", **(headers or {})}
        )

    @staticmethod
    def _selection(
        call: _Call, allowed: frozenset[str] = _SELECTABLE_USER_PROPERTIES, type_name: str = "user"
    ) -> list[str] | None:
        raw = _query(call.request, "select")
        if raw is None:
            return None
        selected = [p.strip() for p in raw.split(",") if p.strip()]
        for prop in selected:
            if prop not in allowed:
                raise GraphError(
                    400,
                    "BadRequest",
                    f"Could not find a property named '{prop}' on type 'microsoft.graph.{type_name}'.",
                )
        return selected

    @staticmethod
    def _project(user: Mapping[str, Any], selected: list[str] | None) -> dict[str, Any]:
        return {prop: copy.deepcopy(user.get(prop)) for prop in (selected or DEFAULT_USER_PROPERTIES)}

    @staticmethod
    def _project_group(group: Mapping[str, Any], selected: list[str] | None) -> dict[str, Any]:
        return {prop: copy.deepcopy(group.get(prop)) for prop in (selected or DEFAULT_GROUP_PROPERTIES)}

    def _project_object(self, kind: str, entity: Mapping[str, Any], selected: list[str] | None) -> dict[str, Any]:
        """A directory object in a polymorphic collection: its @odata.type and its type's
        projection ($select names properties of either type; absent ones are left out)."""
        if kind == "user":
            props = selected or list(DEFAULT_USER_PROPERTIES)
            body = {p: copy.deepcopy(entity.get(p)) for p in props if p in _SELECTABLE_USER_PROPERTIES}
        else:
            props = selected or list(DEFAULT_GROUP_PROPERTIES)
            body = {p: copy.deepcopy(entity.get(p)) for p in props if p in _SELECTABLE_GROUP_PROPERTIES}
        return {"@odata.type": f"#microsoft.graph.{kind}", **body}

    def _context(self, entity_set: str, selected: list[str] | None, suffix: str = "") -> str:
        projection = f"({','.join(selected)})" if selected else ""
        return f"{PUBLIC_GRAPH}/$metadata#{entity_set}{projection}{suffix}"

    def _find(self, call: _Call, param: str = "ref") -> dict[str, Any]:
        reference = call.request.path_params[param]
        with self._lock:
            user = call.tenant.find_user(reference)
        if user is None:
            raise _not_found(reference)
        return user

    def _find_group(self, call: _Call) -> dict[str, Any]:
        reference = call.request.path_params["group"]
        with self._lock:
            group = call.tenant.find_group(reference)
        if group is None:
            raise _not_found(reference)
        return group

    @staticmethod
    def _page_size(call: _Call) -> int:
        raw = _query(call.request, "top")
        if raw is None:
            return DEFAULT_PAGE_SIZE
        if not raw.isdigit() or not 1 <= int(raw) <= MAX_PAGE_SIZE:
            raise GraphError(
                400,
                "Request_BadRequest",
                f"Invalid page size specified: '{raw}'. Must be between 1 and {MAX_PAGE_SIZE} inclusive.",
            )
        return int(raw)

    def _next_link(self, call: _Call, offset: int) -> str:
        params = [(k, v) for k, v in call.request.query_params.multi_items() if k.lstrip("$") != "skiptoken"]
        params.append(("$skiptoken", _encode_skiptoken(offset)))
        path = call.request.url.path.removeprefix("/v1.0")
        return f"{self._base(call)}{path}?{urlencode(params)}"

    def _page(self, call: _Call, items: list[dict[str, Any]], context: str) -> Response:
        page_size = self._page_size(call)
        offset = _decode_skiptoken(_query(call.request, "skiptoken"))
        body: dict[str, Any] = {"@odata.context": context, "value": items[offset : offset + page_size]}
        if offset + page_size < len(items):
            body["@odata.nextLink"] = self._next_link(call, offset + page_size)
        return self._json(body)

    # -- users -------------------------------------------------------------------------------

    async def _get_user(self, call: _Call) -> Response:
        call.require(_READ_USERS)
        selected = self._selection(call)
        with self._lock:
            body = self._project(self._find(call), selected)
        return self._json({"@odata.context": self._context("users", selected, "/$entity"), **body})

    async def _list_users(self, call: _Call) -> Response:
        call.require(_READ_USERS)
        selected = self._selection(call)
        raw_filter = _query(call.request, "filter")
        predicate = parse_user_filter(raw_filter) if raw_filter else None
        with self._lock:
            matches = [
                self._project(u, selected) for u in call.tenant.users.values() if predicate is None or predicate(u)
            ]
        return self._page(call, matches, self._context("users", selected))

    async def _create_user(self, call: _Call) -> Response:
        call.require(_WRITE_USERS)
        body = call.body
        if not isinstance(body, dict):
            raise GraphError(400, "BadRequest", "Empty Payload. JSON content expected.")
        values = {k: v for k, v in body.items() if not k.startswith("@odata.")}
        unknown = [k for k in values if k not in _SELECTABLE_USER_PROPERTIES]
        if unknown:
            raise _bad_request(f"Invalid property '{unknown[0]}'.")
        read_only = [k for k in values if k in _READ_ONLY_USER_PROPERTIES]
        if read_only:
            raise _bad_request(f"Property '{read_only[0]}' is read-only and cannot be set.")
        for prop in _REQUIRED_ON_CREATE:
            if values.get(prop) in (None, ""):
                raise _invalid_value(prop)
        if not isinstance(values["accountEnabled"], bool):
            raise _invalid_value("accountEnabled")
        upn = str(values["userPrincipalName"])
        local, at, domain = upn.rpartition("@")
        if not at or not _UPN_LOCAL_PART.match(local) or local.startswith(".") or local.endswith("."):
            raise _invalid_value("userPrincipalName")
        nickname = str(values["mailNickname"])
        if not _MAIL_NICKNAME.match(nickname):
            raise _invalid_value("mailNickname")
        if "usageLocation" in values:
            _check_usage_location(values["usageLocation"])
        with self._lock:
            tenant = call.tenant
            registered = tenant.domains.get(domain.lower())
            if registered is None or not registered["isVerified"]:
                raise _bad_request(MSG_UNVERIFIED_DOMAIN)
            taken_addresses = {
                a.split(":", 1)[-1].lower() for u in tenant.users.values() for a in u.get("proxyAddresses") or []
            }
            if tenant.find_user(upn) is not None:
                raise _bad_request("Another object with the same value for property userPrincipalName already exists.")
            if any(str(u.get("mailNickname") or "").lower() == nickname.lower() for u in tenant.users.values()):
                raise _bad_request("Another object with the same value for property mailNickname already exists.")
            if upn.lower() in taken_addresses:
                raise _bad_request("Another object with the same value for property proxyAddresses already exists.")
            user = _new_user(
                display_name=str(values["displayName"]),
                user_principal_name=upn,
                mail=None,  # the mailbox (and mail) comes with an Exchange licence
                account_enabled=values["accountEnabled"],
                created=_now(),
            )
            user["mailNickname"] = nickname
            for prop, value in values.items():
                if prop not in ("passwordProfile", "mail"):
                    user[prop] = copy.deepcopy(value)
            if values.get("mail"):
                user["mail"] = values["mail"]
            _check_password_profile(values["passwordProfile"], user, required=True)
            profile = {k: v for k, v in values["passwordProfile"].items() if not k.startswith("@odata.")}
            tenant.users[user["id"]] = user
            tenant.passwords[user["id"]] = {"forceChangePasswordNextSignIn": False, **profile}
            body_out = self._project(user, None)
        return self._json(
            {"@odata.context": self._context("users", None, "/$entity"), **body_out},
            status=201,
            headers={"Location": f"{PUBLIC_GRAPH}/directoryObjects/{user['id']}/Microsoft.DirectoryServices.User"},
        )

    async def _patch_user(self, call: _Call) -> Response:
        body = call.body
        if not isinstance(body, dict):
            raise GraphError(400, "BadRequest", "Empty Payload. JSON content expected.")
        changes = {k: v for k, v in body.items() if not k.startswith("@odata.")}
        with self._lock:
            user = self._find(call)
            self._check_patch(call, user, changes)
            self._apply_patch(call.tenant, user, changes)
        return Response(status_code=204)

    def _check_patch(self, call: _Call, user: Mapping[str, Any], changes: Mapping[str, Any]) -> None:
        unknown = [k for k in changes if k not in _SELECTABLE_USER_PROPERTIES]
        if unknown:
            raise GraphError(400, "Request_BadRequest", f"Invalid property '{unknown[0]}'.")
        read_only = [k for k in changes if k in _READ_ONLY_USER_PROPERTIES]
        if read_only:
            raise GraphError(400, "Request_BadRequest", f"Property '{read_only[0]}' is read-only and cannot be set.")
        for prop in changes:
            call.require(_permissions_for_property(prop))
        if "passwordProfile" in changes and call.tenant.app_role not in RESETTABLE_BY:
            raise _denied()
        if _SENSITIVE_USER_PROPERTIES.intersection(changes) or "passwordProfile" in changes:
            self._check_role_hierarchy(call.tenant, user["id"])
        if user.get("onPremisesSyncEnabled") and _SYNC_MASTERED_PROPERTIES.intersection(changes):
            raise GraphError(400, "Request_BadRequest", MSG_SYNCED_OBJECT)
        if "passwordProfile" in changes:
            _check_password_profile(changes["passwordProfile"], user)
        if "accountEnabled" in changes and not isinstance(changes["accountEnabled"], bool):
            raise _invalid_value("accountEnabled")
        if changes.get("usageLocation") is not None:
            _check_usage_location(changes["usageLocation"])

    @staticmethod
    def _apply_patch(tenant: Tenant, user: dict[str, Any], changes: Mapping[str, Any]) -> None:
        for prop, value in changes.items():
            if prop == "passwordProfile":
                profile = {k: v for k, v in value.items() if not k.startswith("@odata.")}
                tenant.passwords[user["id"]] = {**tenant.passwords.get(user["id"], {}), **profile}
                if profile.get("password") is not None:
                    user["lastPasswordChangeDateTime"] = _now()
                    tenant.locked_out.discard(user["id"])  # an admin reset unlocks smart lockout (§2.1)
                    risk = tenant.risk.get(user["id"])
                    if risk is not None and risk["riskState"] == "atRisk":
                        # An admin-generated temporary password remediates user risk (§2.1, [U] exact states).
                        risk.update(
                            riskLevel="none",
                            riskState="remediated",
                            riskDetail="adminGeneratedTemporaryPassword",
                            riskLastUpdatedDateTime=_now(),
                        )
            else:
                user[prop] = copy.deepcopy(value)

    async def _delete_user_endpoint(self, call: _Call) -> Response:
        call.require(_DELETE_USERS)
        with self._lock:
            user = self._find(call)
            self._check_role_hierarchy(call.tenant, user["id"])
            self._delete_user(call.tenant, user["id"])
        return Response(status_code=204)

    async def _revoke_sessions(self, call: _Call) -> Response:
        call.require(_REVOKE_SESSIONS)
        with self._lock:
            user = self._find(call)
            self._check_role_hierarchy(call.tenant, user["id"])
            user["signInSessionsValidFromDateTime"] = _now()
        return self._json({"@odata.context": f"{PUBLIC_GRAPH}/$metadata#Edm.Boolean", "value": True})

    # -- manager -----------------------------------------------------------------------------

    def _manager_of(self, call: _Call) -> dict[str, Any]:
        user = self._find(call)
        manager_id = call.tenant.managers.get(user["id"])
        manager = call.tenant.users.get(manager_id) if manager_id else None
        if manager is None:
            raise _not_found("manager")
        return manager

    async def _get_manager(self, call: _Call) -> Response:
        call.require(_READ_USERS)
        selected = self._selection(call)
        with self._lock:
            body = self._project(self._manager_of(call), selected)
        return self._json(
            {
                "@odata.context": f"{PUBLIC_GRAPH}/$metadata#directoryObjects/$entity",
                "@odata.type": "#microsoft.graph.user",
                **body,
            }
        )

    async def _get_manager_ref(self, call: _Call) -> Response:
        call.require(_READ_USERS)
        with self._lock:
            manager = self._manager_of(call)
        return self._json(
            {
                "@odata.context": f"{PUBLIC_GRAPH}/$metadata#$ref",
                "@odata.id": f"{PUBLIC_GRAPH}/directoryObjects/{manager['id']}/Microsoft.DirectoryServices.User",
            }
        )

    async def _put_manager(self, call: _Call) -> Response:
        call.require(_WRITE_USERS)
        manager_id = _reference_id(call.body)
        with self._lock:
            user = self._find(call)
            manager = call.tenant.users.get(manager_id)
            if manager is None:
                raise _not_found(manager_id)
            if user.get("onPremisesSyncEnabled"):
                raise _bad_request(MSG_SYNCED_OBJECT)
            if manager["id"] == user["id"]:
                # Sandbox choice: Entra refuses a self-reference as a circular reference.
                raise _bad_request("Setting the manager property would create a circular reference.")
            call.tenant.managers[user["id"]] = manager["id"]
        return Response(status_code=204)

    async def _delete_manager(self, call: _Call) -> Response:
        call.require(_WRITE_USERS)
        with self._lock:
            user = self._find(call)
            if user["id"] not in call.tenant.managers:
                raise _not_found("manager")
            if user.get("onPremisesSyncEnabled"):
                raise _bad_request(MSG_SYNCED_OBJECT)
            del call.tenant.managers[user["id"]]
        return Response(status_code=204)

    # -- memberOf ----------------------------------------------------------------------------

    def _memberships(self, call: _Call, transitive: bool) -> tuple[list[DirectoryRole], list[dict[str, Any]]]:
        with self._lock:
            user = self._find(call)
            tenant = call.tenant
            group_ids = tenant.transitive_groups_of(user["id"]) if transitive else tenant.groups_of(user["id"])
            return tenant.roles_of(user["id"]), [tenant.groups[g] for g in group_ids]

    async def _member_of(self, call: _Call) -> Response:
        return await self._directory_objects_of(call, transitive=False)

    async def _transitive_member_of(self, call: _Call) -> Response:
        return await self._directory_objects_of(call, transitive=True)

    async def _directory_objects_of(self, call: _Call, transitive: bool) -> Response:
        call.require(_READ_USERS | _READ_GROUPS)
        roles, groups = self._memberships(call, transitive)
        values = [self._project_object("group", g, None) for g in groups] + [role.to_graph() for role in roles]
        return self._page(call, values, f"{PUBLIC_GRAPH}/$metadata#directoryObjects")

    async def _roles_of_user(self, call: _Call) -> Response:
        call.require(_READ_USERS)
        roles, _ = self._memberships(call, transitive=True)
        return self._json(
            {"@odata.context": f"{PUBLIC_GRAPH}/$metadata#directoryRoles", "value": [r.to_graph() for r in roles]}
        )

    async def _groups_of_user(self, call: _Call) -> Response:
        return await self._groups_of(call, transitive=False)

    async def _transitive_groups_of_user(self, call: _Call) -> Response:
        return await self._groups_of(call, transitive=True)

    async def _groups_of(self, call: _Call, transitive: bool) -> Response:
        call.require(_READ_USERS | _READ_GROUPS)
        selected = self._selection(call, _SELECTABLE_GROUP_PROPERTIES, "group")
        _, groups = self._memberships(call, transitive)
        values = [{"@odata.type": "#microsoft.graph.group", **self._project_group(g, selected)} for g in groups]
        return self._page(call, values, self._context("groups", selected))

    # -- directory roles ---------------------------------------------------------------------

    async def _list_roles(self, call: _Call) -> Response:
        call.require(_READ_ROLES)
        with self._lock:
            roles = [role.to_graph() for role in call.tenant.roles.values()]
        return self._json({"@odata.context": f"{PUBLIC_GRAPH}/$metadata#directoryRoles", "value": roles})

    def _find_role(self, call: _Call) -> DirectoryRole:
        reference = call.request.path_params["role"]
        match = re.fullmatch(r"roleTemplateId=['\"]?([0-9a-fA-F-]+)['\"]?", reference)
        with self._lock:
            for role in call.tenant.roles.values():
                if role.id == reference.lower() or (match and role.role_template_id == match.group(1).lower()):
                    return role
        raise _not_found(reference)

    async def _get_role(self, call: _Call) -> Response:
        call.require(_READ_ROLES)
        role = self._find_role(call)
        return self._json({"@odata.context": f"{PUBLIC_GRAPH}/$metadata#directoryRoles/$entity", **role.to_graph()})

    async def _role_members(self, call: _Call) -> Response:
        call.require(_READ_ROLES)
        role = self._find_role(call)
        with self._lock:
            members = [
                {"@odata.type": "#microsoft.graph.user", **self._project(call.tenant.users[m], None)}
                for m in role.members
                if m in call.tenant.users
            ]
        return self._json({"@odata.context": f"{PUBLIC_GRAPH}/$metadata#directoryObjects", "value": members})

    # -- domains and organization ------------------------------------------------------------

    async def _list_domains(self, call: _Call) -> Response:
        call.require(_READ_DOMAINS)
        with self._lock:
            domains = copy.deepcopy(list(call.tenant.domains.values()))
        return self._json({"@odata.context": f"{PUBLIC_GRAPH}/$metadata#domains", "value": domains})

    async def _get_domain(self, call: _Call) -> Response:
        call.require(_READ_DOMAINS)
        name = call.request.path_params["domain"].lower()
        with self._lock:
            domain = copy.deepcopy(call.tenant.domains.get(name))
        if domain is None:
            raise _not_found(name)
        return self._json({"@odata.context": f"{PUBLIC_GRAPH}/$metadata#domains/$entity", **domain})

    async def _organization(self, call: _Call) -> Response:
        call.require(_READ_ORGANIZATION)
        with self._lock:
            tenant = call.tenant
            verified = [
                {
                    "capabilities": "Email, OfficeCommunicationsOnline",
                    "isDefault": d["isDefault"],
                    "isInitial": d["isInitial"],
                    "name": d["id"],
                    "type": "Managed",
                }
                for d in tenant.domains.values()
                if d["isVerified"]
            ]
            org = {
                "id": tenant.id,
                "deletedDateTime": None,
                "businessPhones": [],
                "city": None,
                "country": None,
                "countryLetterCode": "US",
                "createdDateTime": "2019-03-04T10:00:00Z",
                "displayName": tenant.display_name,
                "onPremisesSyncEnabled": True
                if any(u.get("onPremisesSyncEnabled") for u in tenant.users.values())
                else None,
                "preferredLanguage": "en",
                "tenantType": "AAD",
                "verifiedDomains": verified,
                "assignedPlans": [],
                "provisionedPlans": [],
                "technicalNotificationMails": [],
            }
        return self._json({"@odata.context": f"{PUBLIC_GRAPH}/$metadata#organization", "value": [org]})

    # -- Identity Protection -----------------------------------------------------------------

    def _require_p2(self, call: _Call) -> None:
        # Sandbox choice: code "Forbidden"; the message is the one CIPP maps (graph.md §2.1).
        if not call.tenant.p2:
            raise GraphError(403, "Forbidden", MSG_NOT_LICENSED)

    async def _list_risky_users(self, call: _Call) -> Response:
        call.require(_READ_RISK)
        self._require_p2(call)
        raw_filter = _query(call.request, "filter")
        predicate = parse_filter(raw_filter, RISKY_USER_FILTER) if raw_filter else None
        with self._lock:
            values = [copy.deepcopy(r) for r in call.tenant.risk.values() if predicate is None or predicate(r)]
        return self._page(call, values, f"{PUBLIC_GRAPH}/$metadata#identityProtection/riskyUsers")

    async def _get_risky_user(self, call: _Call) -> Response:
        call.require(_READ_RISK)
        self._require_p2(call)
        reference = call.request.path_params["risky"].lower()
        with self._lock:
            record = copy.deepcopy(call.tenant.risk.get(reference))
        if record is None:
            # Only users Identity Protection ever flagged are riskyUsers.
            raise GraphError(404, "ResourceNotFound", f"The requested resource '{reference}' could not be found.")
        return self._json(
            {"@odata.context": f"{PUBLIC_GRAPH}/$metadata#identityProtection/riskyUsers/$entity", **record}
        )

    def _risk_action_ids(self, call: _Call) -> list[str]:
        ids = _action_parameters(call.body).get("userids")
        if not isinstance(ids, list) or not ids or not all(isinstance(i, str) for i in ids):
            raise GraphError(400, "BadRequest", "The request body must contain a non-empty 'userIds' collection.")
        if len(ids) > 60:
            raise GraphError(400, "BadRequest", "A maximum of 60 users can be submitted in a single request.")
        return [i.lower() for i in ids]

    async def _dismiss_risk(self, call: _Call) -> Response:
        call.require(_WRITE_RISK)
        self._require_p2(call)
        ids = self._risk_action_ids(call)
        with self._lock:
            for uid in ids:
                record = call.tenant.risk.get(uid)
                if record is not None:
                    record.update(
                        riskLevel="none",
                        riskState="dismissed",
                        riskDetail="adminDismissedAllRiskForUser",
                        riskLastUpdatedDateTime=_now(),
                    )
        return Response(status_code=204)

    async def _confirm_compromised(self, call: _Call) -> Response:
        call.require(_WRITE_RISK)
        self._require_p2(call)
        ids = self._risk_action_ids(call)
        with self._lock:
            for uid in ids:
                user = call.tenant.users.get(uid)
                if user is None:
                    continue
                record = call.tenant.risk.setdefault(
                    uid,
                    {
                        "id": uid,
                        "isDeleted": False,
                        "isProcessing": False,
                        "userDisplayName": user["displayName"],
                        "userPrincipalName": user["userPrincipalName"],
                    },
                )
                record.update(
                    riskLevel="high",
                    riskState="confirmedCompromised",
                    riskDetail="adminConfirmedUserCompromised",
                    riskLastUpdatedDateTime=_now(),
                )
        return Response(status_code=204)

    # -- authentication methods --------------------------------------------------------------

    def _methods_context(self, user_id: str, collection: str, entity: bool = False) -> str:
        return f"{PUBLIC_GRAPH}/$metadata#users('{user_id}')/authentication/{collection}" + (
            "/$entity" if entity else ""
        )

    @staticmethod
    def _kind(call: _Call) -> MethodKind:
        collection = call.request.path_params["collection"]
        kind = _KIND_BY_COLLECTION.get(collection)
        if kind is None:
            raise GraphError(400, "BadRequest", f"Resource not found for the segment '{collection}'.")
        return kind

    @staticmethod
    def _method_permissions(kind: MethodKind, write: bool) -> frozenset[str]:
        granular = {f"UserAuthMethod-{kind.granular}.ReadWrite.All"}
        if not write:
            granular.add(f"UserAuthMethod-{kind.granular}.Read.All")
        return (_WRITE_METHODS if write else _READ_METHODS) | granular

    async def _list_methods(self, call: _Call) -> Response:
        call.require(_READ_METHODS)
        with self._lock:
            user = self._find(call)
            values = self._methods_view(call.tenant, user["id"])
        return self._json({"@odata.context": self._methods_context(user["id"], "methods"), "value": values})

    async def _get_method(self, call: _Call) -> Response:
        call.require(_READ_METHODS)
        method_id = call.request.path_params["method"].lower()
        with self._lock:
            user = self._find(call)
            method = next((m for m in self._methods_view(call.tenant, user["id"]) if m["id"] == method_id), None)
        if method is None:
            raise _method_not_found(method_id)
        return self._json({"@odata.context": self._methods_context(user["id"], "methods", True), **method})

    async def _delete_generic_method(self, call: _Call) -> Response:
        """graph.md §3.2: the generic delete is delegated-only in Microsoft's permission map.
        Sandbox choice: an application token gets the 403 Authorization_RequestDenied Graph gives
        for a permission the token cannot hold; callers must use the type-specific collections."""
        if call.app_only:
            raise _denied()
        raise GraphError(405, "Request_BadRequest", "Specified HTTP method is not allowed for the request target.")

    async def _list_typed_methods(self, call: _Call) -> Response:
        kind = self._kind(call)
        call.require(self._method_permissions(kind, write=False))
        with self._lock:
            user = self._find(call)
            values = [m for m in self._methods_view(call.tenant, user["id"]) if m["@odata.type"] == kind.odata_type]
        for value in values:
            value.pop("@odata.type", None)
        return self._json({"@odata.context": self._methods_context(user["id"], kind.collection), "value": values})

    async def _get_typed_method(self, call: _Call) -> Response:
        kind = self._kind(call)
        call.require(self._method_permissions(kind, write=False))
        method_id = call.request.path_params["method"].lower()
        with self._lock:
            user = self._find(call)
            method = next(
                (
                    m
                    for m in self._methods_view(call.tenant, user["id"])
                    if m["id"] == method_id and m["@odata.type"] == kind.odata_type
                ),
                None,
            )
        if method is None:
            raise _method_not_found(method_id)
        method.pop("@odata.type", None)
        return self._json({"@odata.context": self._methods_context(user["id"], kind.collection, True), **method})

    async def _delete_typed_method(self, call: _Call) -> Response:
        kind = self._kind(call)
        if kind.name == "password":
            raise GraphError(405, "Request_BadRequest", "Specified HTTP method is not allowed for the request target.")
        call.require(self._method_permissions(kind, write=True))
        method_id = call.request.path_params["method"].lower()
        with self._lock:
            tenant = call.tenant
            user = self._find(call)
            methods = tenant.auth_methods.get(user["id"], [])
            method = next((m for m in methods if m["id"] == method_id and m["@odata.type"] == kind.odata_type), None)
            if method is None:
                raise _method_not_found(method_id)
            others = [m for m in methods if m is not method and _KIND_BY_TYPE[m["@odata.type"]].counts_against_default]
            if tenant.default_methods.get(user["id"]) == method_id and others:
                raise GraphError(400, "badRequest", MSG_DEFAULT_METHOD)
            alternate = any(m.get("phoneType") == "alternateMobile" for m in methods)
            if kind.name == "phone" and method.get("phoneType") == "mobile" and alternate:
                raise GraphError(400, "badRequest", MSG_MOBILE_BEFORE_ALTERNATE)
            methods.remove(method)
            tenant.tap_secrets.pop(method_id, None)
            if tenant.default_methods.get(user["id"]) == method_id:
                del tenant.default_methods[user["id"]]
        return Response(status_code=204)

    async def _create_typed_method(self, call: _Call) -> Response:
        kind = self._kind(call)
        if kind.name != "temporaryAccessPass":
            # Sandbox scope: only TAP creation is modelled (TierOne never registers other methods).
            raise GraphError(405, "Request_BadRequest", "Specified HTTP method is not allowed for the request target.")
        call.require(self._method_permissions(kind, write=True))
        body = call.body if isinstance(call.body, dict) else {}
        values = {k: v for k, v in body.items() if not k.startswith("@odata.") and v is not None}
        unknown = [k for k in values if k not in ("lifetimeInMinutes", "isUsableOnce", "startDateTime")]
        if unknown:
            raise GraphError(
                400,
                "badRequest",
                f"The property '{unknown[0]}' does not exist on type "
                "'microsoft.graph.temporaryAccessPassAuthenticationMethod'.",
            )
        with self._lock:
            tenant = call.tenant
            user = self._find(call)
            policy = tenant.tap_policy
            if user.get("userType") == "Guest":
                raise GraphError(400, "badRequest", MSG_TAP_GUEST)
            if policy["state"] != "enabled" or not self._tap_in_scope(tenant, user["id"]):
                raise GraphError(400, "badRequest", MSG_TAP_POLICY)
            lifetime = values.get("lifetimeInMinutes", policy["defaultLifetimeInMinutes"])
            low, high = policy["minimumLifetimeInMinutes"], policy["maximumLifetimeInMinutes"]
            if not isinstance(lifetime, int) or isinstance(lifetime, bool) or not low <= lifetime <= high:
                # Sandbox wording: Graph documents the bounds (10–43,200 and the policy's) but no text.
                raise GraphError(
                    400,
                    "badRequest",
                    f"The lifetimeInMinutes value must be between {low} and {high} minutes, "
                    "as set by the Temporary Access Pass policy.",
                )
            if values.get("isUsableOnce") is False and policy["isUsableOnce"]:
                raise GraphError(
                    400,
                    "badRequest",
                    "The Temporary Access Pass policy only allows one-time use passes (isUsableOnce).",
                )
            if "startDateTime" in values:
                try:
                    _parse_datetime(values["startDateTime"])
                except (TypeError, ValueError) as exc:
                    raise GraphError(
                        400, "badRequest", "Invalid value specified for property 'startDateTime'."
                    ) from exc
            method = self._create_tap(tenant, user["id"], values)
            view = self._tap_view(tenant, method)
            view["temporaryAccessPass"] = tenant.tap_secrets[method["id"]]  # shown this once only
        view.pop("@odata.type", None)
        return self._json(
            {"@odata.context": self._methods_context(user["id"], kind.collection, True), **view}, status=201
        )

    async def _get_method_configuration(self, call: _Call) -> Response:
        call.require(_READ_AUTH_POLICY)
        config = call.request.path_params["config"]
        if config.lower() != "temporaryaccesspass":
            # Sandbox scope: only the TAP configuration is modelled.
            raise _not_found(config)
        with self._lock:
            policy = copy.deepcopy(call.tenant.tap_policy)
        return self._json(
            {
                "@odata.context": f"{PUBLIC_GRAPH}/$metadata#policies/authenticationMethodsPolicy/"
                "authenticationMethodConfigurations/$entity",
                "@odata.type": "#microsoft.graph.temporaryAccessPassAuthenticationMethodConfiguration",
                "id": "TemporaryAccessPass",
                **policy,
            }
        )

    # -- groups ------------------------------------------------------------------------------

    async def _list_groups(self, call: _Call) -> Response:
        call.require(_READ_GROUPS)
        selected = self._selection(call, _SELECTABLE_GROUP_PROPERTIES, "group")
        raw_filter = _query(call.request, "filter")
        predicate = parse_filter(raw_filter, GROUP_FILTER) if raw_filter else None
        with self._lock:
            matches = [
                self._project_group(g, selected)
                for g in call.tenant.groups.values()
                if predicate is None or predicate(g)
            ]
        return self._page(call, matches, self._context("groups", selected))

    async def _get_group(self, call: _Call) -> Response:
        call.require(_READ_GROUPS)
        selected = self._selection(call, _SELECTABLE_GROUP_PROPERTIES, "group")
        with self._lock:
            body = self._project_group(self._find_group(call), selected)
        return self._json({"@odata.context": self._context("groups", selected, "/$entity"), **body})

    async def _list_members(self, call: _Call) -> Response:
        return await self._members_of(call, transitive=False)

    async def _list_transitive_members(self, call: _Call) -> Response:
        return await self._members_of(call, transitive=True)

    async def _list_user_members(self, call: _Call) -> Response:
        return await self._members_of(call, transitive=False, only="user")

    async def _list_group_members(self, call: _Call) -> Response:
        return await self._members_of(call, transitive=False, only="group")

    async def _members_of(self, call: _Call, transitive: bool, only: str | None = None) -> Response:
        call.require(_READ_GROUPS)
        selected = self._selection(call, _SELECTABLE_USER_PROPERTIES | _SELECTABLE_GROUP_PROPERTIES, "directoryObject")
        with self._lock:
            tenant = call.tenant
            group = self._find_group(call)
            ids = tenant.transitive_members(group["id"]) if transitive else tenant.group_members.get(group["id"], [])
            values = []
            for member in ids:
                found = tenant.find_object(member)
                if found is not None and only in (None, found[0]):
                    values.append(self._project_object(found[0], found[1], selected))
        context = f"{PUBLIC_GRAPH}/$metadata#{'directoryObjects' if only is None else only + 's'}"
        return self._page(call, values, context)

    async def _get_member(self, call: _Call) -> Response:
        call.require(_READ_GROUPS)
        member = call.request.path_params["member"].lower()
        with self._lock:
            group = self._find_group(call)
            found = call.tenant.find_object(member) if member in call.tenant.group_members[group["id"]] else None
            if found is None:
                raise _not_found(member)
            body = self._project_object(found[0], found[1], None)
        return self._json({"@odata.context": f"{PUBLIC_GRAPH}/$metadata#directoryObjects/$entity", **body})

    def _check_membership_change(self, call: _Call, group: Mapping[str, Any]) -> None:
        """The rules of graph.md §4.2/4.3, in the order Graph applies them."""
        call.require(_WRITE_MEMBERS)
        if group.get("isAssignableToRole") and not call.has(_WRITE_ROLE_ASSIGNABLE):
            raise _denied()
        if group.get("mailEnabled") and "Unified" not in group.get("groupTypes", []):
            raise _bad_request(MSG_MAIL_ENABLED_GROUP)
        if "DynamicMembership" in group.get("groupTypes", []):
            raise _bad_request(MSG_DYNAMIC_GROUP)
        if group.get("onPremisesSyncEnabled"):
            raise _bad_request(MSG_SYNCED_OBJECT)

    async def _add_member_ref(self, call: _Call) -> Response:
        member_id = _reference_id(call.body)
        with self._lock:
            tenant = call.tenant
            group = self._find_group(call)
            self._check_membership_change(call, group)
            if tenant.find_object(member_id) is None:
                raise _not_found(member_id)
            if member_id == group["id"]:
                raise _bad_request("A group cannot be a member of itself.")
            members = tenant.group_members[group["id"]]
            if member_id in members:
                raise _bad_request(MSG_ALREADY_MEMBER)
            members.append(member_id)
            self._refresh_licenses_of(tenant, member_id)
        return Response(status_code=204)

    def _remove_member(self, call: _Call, member_id: str) -> Response:
        with self._lock:
            tenant = call.tenant
            group = self._find_group(call)
            self._check_membership_change(call, group)
            members = tenant.group_members[group["id"]]
            if member_id not in members:
                raise _not_found(member_id)
            members.remove(member_id)
            self._refresh_licenses_of(tenant, member_id)
        return Response(status_code=204)

    async def _remove_member_ref(self, call: _Call) -> Response:
        return self._remove_member(call, call.request.path_params["member"].lower())

    async def _remove_member_by_query(self, call: _Call) -> Response:
        """`DELETE /groups/{id}/members/$ref?$id=https://graph.microsoft.com/v1.0/directoryObjects/{id}`
        (msgraph-sdk spells the parameter `@id`)."""
        raw = call.request.query_params.get("@id") or _query(call.request, "id")
        if not raw:
            raise _bad_request("The $id query parameter is required to delete a reference.")
        return self._remove_member(call, _reference_id({"@odata.id": raw}))

    async def _delete_member_object(self, call: _Call) -> Response:
        """`DELETE /groups/{id}/members/{id}` WITHOUT `/$ref`: Graph resolves the path to the member
        object itself and deletes it, if the app may delete that kind of object (graph.md §4.1,
        `group-delete-members.md`). This is the foot-gun the sandbox keeps on purpose."""
        member_id = call.request.path_params["member"].lower()
        with self._lock:
            tenant = call.tenant
            group = self._find_group(call)
            if member_id not in tenant.group_members[group["id"]]:
                raise _not_found(member_id)
            found = tenant.find_object(member_id)
            if found is None:
                raise _not_found(member_id)
            kind, _ = found
            if kind == "user":
                call.require(_DELETE_USERS)
                self._check_role_hierarchy(tenant, member_id)
                self._delete_user(tenant, member_id)
            else:
                call.require(_DELETE_GROUPS)
                self._delete_group(tenant, member_id)
        return Response(status_code=204)

    # -- licensing ---------------------------------------------------------------------------

    def _sku_view(self, tenant: Tenant, sub: Subscription) -> dict[str, Any]:
        return {
            "accountId": tenant.id,
            "accountName": tenant.display_name,
            "appliesTo": "User",
            "capabilityStatus": sub.capability_status,
            "consumedUnits": tenant.consumed_units(sub.sku_id),
            "id": f"{tenant.id}_{sub.sku_id}",
            "prepaidUnits": {
                "enabled": sub.enabled,
                "suspended": sub.suspended,
                "warning": sub.warning,
                "lockedOut": sub.locked_out,
            },
            "servicePlans": [
                {"servicePlanId": pid, "servicePlanName": name, "provisioningStatus": "Success", "appliesTo": "User"}
                for pid, name in sub.service_plans
            ],
            "skuId": sub.sku_id,
            "skuPartNumber": sub.sku_part_number,
            "subscriptionIds": [sub.subscription_id],
        }

    async def _subscribed_skus(self, call: _Call) -> Response:
        call.require(_READ_SKUS)
        with self._lock:
            values = [self._sku_view(call.tenant, s) for s in call.tenant.subscriptions.values()]
        return self._json({"@odata.context": f"{PUBLIC_GRAPH}/$metadata#subscribedSkus", "value": values})

    async def _license_details(self, call: _Call) -> Response:
        call.require(_READ_LICENSE_DETAILS)
        with self._lock:
            tenant = call.tenant
            user = self._find(call)
            values = []
            for lic in user.get("assignedLicenses") or []:
                sub = tenant.subscriptions.get(lic["skuId"])
                plans = sub.service_plans if sub else ()
                values.append(
                    {
                        "id": base64.urlsafe_b64encode(f"{user['id']}:{lic['skuId']}".encode()).decode().rstrip("="),
                        "skuId": lic["skuId"],
                        "skuPartNumber": sub.sku_part_number if sub else None,
                        "servicePlans": [
                            {
                                "servicePlanId": pid,
                                "servicePlanName": name,
                                "provisioningStatus": "Disabled" if pid in lic["disabledPlans"] else "Success",
                                "appliesTo": "User",
                            }
                            for pid, name in plans
                        ],
                    }
                )
        return self._json(
            {"@odata.context": f"{PUBLIC_GRAPH}/$metadata#users('{user['id']}')/licenseDetails", "value": values}
        )

    async def _assign_license(self, call: _Call) -> Response:
        call.require(_ASSIGN_LICENSE)
        body = _action_parameters(call.body)
        # Sandbox choice (graph.md Appendix C.4): both parameters are required, as the docs list them.
        if not isinstance(body.get("addlicenses"), list):
            raise _invalid_value("addLicenses")
        if not isinstance(body.get("removelicenses"), list):
            raise _invalid_value("removeLicenses")
        adds: dict[str, list[str]] = {}
        for entry in body["addlicenses"]:
            sku = entry.get("skuId") if isinstance(entry, dict) else None
            if not isinstance(sku, str) or not _GUID.match(sku):
                raise _invalid_value("skuId", "AssignedLicense")
            disabled = entry.get("disabledPlans") or []
            adds[sku.lower()] = [str(p).lower() for p in disabled]
        removes = []
        for sku in body["removelicenses"]:
            if not isinstance(sku, str) or not _GUID.match(sku):
                raise _invalid_value("removeLicenses")
            removes.append(sku.lower())
        with self._lock:
            tenant = call.tenant
            user = self._find(call)
            for sku in [*adds, *removes]:
                if sku not in tenant.subscriptions:
                    raise _bad_request(f"License {sku} does not correspond to a valid company License.")
            if adds and not user.get("usageLocation"):
                raise _bad_request(MSG_NO_USAGE_LOCATION)
            direct = tenant.direct_licenses.setdefault(user["id"], {})
            effective = {lic["skuId"] for lic in user.get("assignedLicenses") or []}
            for sku in removes:
                inherited = any(s["skuId"] == sku and s["assignedByGroup"] for s in user["licenseAssignmentStates"])
                if sku not in direct and inherited:
                    raise _bad_request(MSG_INHERITED_LICENSE)
            for sku in adds:
                sub = tenant.subscriptions[sku]
                if sku not in effective and tenant.consumed_units(sku, excluding=user["id"]) >= sub.enabled:
                    raise _bad_request(f"Subscription with SKU {sku} does not have any available licenses.")
            for sku in removes:
                direct.pop(sku, None)  # removing a licence the user lacks is a no-op (sandbox choice)
            for sku, disabled in adds.items():
                direct[sku] = disabled
            self._refresh_licenses(tenant, user["id"])
            body_out = self._project(user, None)
        return self._json({"@odata.context": self._context("users", None, "/$entity"), **body_out})

    # -- mailbox settings and mail -----------------------------------------------------------

    def _mailbox_user(self, call: _Call) -> tuple[dict[str, Any], Mailbox]:
        reference = call.request.path_params["ref"]
        user = call.tenant.find_user(reference)
        if user is None:
            raise GraphError(404, "ErrorInvalidUser", f"The requested user '{reference}' is invalid.")
        mailbox = call.tenant.mailbox_of(user)
        if mailbox is None:
            raise GraphError(404, "MailboxNotEnabledForRESTAPI", MSG_MAILBOX_NOT_ENABLED)
        return user, mailbox

    async def _get_mailbox_settings(self, call: _Call) -> Response:
        call.require(_READ_MAILBOX_SETTINGS)
        with self._lock:
            user, mailbox = self._mailbox_user(call)
            view = self._mailbox_settings_view(user, mailbox)
        return self._json({"@odata.context": f"{PUBLIC_GRAPH}/$metadata#users('{user['id']}')/mailboxSettings", **view})

    async def _patch_mailbox_settings(self, call: _Call) -> Response:
        call.require(_WRITE_MAILBOX_SETTINGS)
        if not isinstance(call.body, dict):
            raise GraphError(400, "BadRequest", "Empty Payload. JSON content expected.")
        changes = _strip_odata(call.body)
        for prop in changes:
            if prop not in _MAILBOX_SETTINGS_WRITABLE:
                raise GraphError(
                    400,
                    "RequestBodyRead",
                    f"The property '{prop}' does not exist on type 'microsoft.graph.mailboxSettings'. Make sure to "
                    "only use property names that are defined by the type or mark the type as open type.",
                )
        replies = changes.get("automaticRepliesSetting")
        if replies is not None:
            _check_auto_replies(replies)
        with self._lock:
            user, mailbox = self._mailbox_user(call)
            if replies is not None:
                mailbox.auto_reply.update(copy.deepcopy(replies))
            if isinstance(changes.get("timeZone"), str):
                mailbox.time_zone = changes["timeZone"]
            view = self._mailbox_settings_view(user, mailbox)
        return self._json({"@odata.context": f"{PUBLIC_GRAPH}/$metadata#users('{user['id']}')/mailboxSettings", **view})

    async def _send_mail(self, call: _Call) -> Response:
        call.require(_SEND_MAIL)
        body = _action_parameters(call.body)
        message = body.get("message")
        if not isinstance(message, dict):
            raise GraphError(400, "ErrorInvalidParameter", "The value of the parameter 'Message' is empty.")
        message = _strip_odata(message)
        recipients: dict[str, list[str]] = {}
        for field_name in ("toRecipients", "ccRecipients", "bccRecipients"):
            addresses = []
            for entry in message.get(field_name) or []:
                address = (entry.get("emailAddress") or {}).get("address") if isinstance(entry, dict) else None
                if not isinstance(address, str) or not re.fullmatch(r"[^@\s]+@[^@\s]+\.[^@\s]+", address):
                    raise GraphError(
                        400,
                        "ErrorInvalidRecipients",
                        f"At least one recipient is not valid., Recipient '{address}' is not resolved. "
                        "All recipients must be resolved before a message can be submitted.",
                    )
                addresses.append(address)
            recipients[field_name] = addresses
        if not any(recipients.values()):
            raise GraphError(
                400,
                "ErrorInvalidRecipients",
                "At least one recipient is not valid., A message can't be sent because it contains no recipients.",
            )
        with self._lock:
            user, _mailbox = self._mailbox_user(call)
            content = message.get("body") or {}
            call.tenant.outbox.append(
                {
                    "id": str(uuid.uuid4()),
                    "from": user["mail"],
                    "sender_id": user["id"],
                    "subject": message.get("subject"),
                    "contentType": content.get("contentType", "text"),
                    "content": content.get("content", ""),
                    "to": recipients["toRecipients"],
                    "cc": recipients["ccRecipients"],
                    "bcc": recipients["bccRecipients"],
                    "saveToSentItems": body.get("savetosentitems", True),
                    "sentDateTime": _now(),
                }
            )
        return Response(status_code=202)


# --------------------------------------------------------------------------------------------
# Helpers
# --------------------------------------------------------------------------------------------


def _new_user(
    *,
    display_name: str,
    user_principal_name: str,
    mail: str | None,
    account_enabled: bool,
    created: str,
    given_name: str | None = None,
    surname: str | None = None,
    proxy_addresses: list[str] | None = None,
    other_mails: list[str] | None = None,
    usage_location: str | None = None,
    job_title: str | None = None,
    department: str | None = None,
    mobile_phone: str | None = None,
    user_type: str = "Member",
) -> dict[str, Any]:
    return {
        "id": str(uuid.uuid4()),
        "displayName": display_name,
        "givenName": given_name,
        "surname": surname,
        "userPrincipalName": user_principal_name,
        "mail": mail,
        "mailNickname": user_principal_name.split("@")[0],
        "accountEnabled": account_enabled,
        # Graph reports null, not false, for accounts that were never synced.
        "onPremisesSyncEnabled": None,
        "proxyAddresses": list(proxy_addresses if proxy_addresses is not None else ([f"SMTP:{mail}"] if mail else [])),
        "otherMails": list(other_mails or []),
        "businessPhones": [],
        "mobilePhone": mobile_phone,
        "officeLocation": None,
        "preferredLanguage": None,
        "jobTitle": job_title,
        "department": department,
        "usageLocation": usage_location,
        "userType": user_type,
        "createdDateTime": created,
        "lastPasswordChangeDateTime": created,
        "signInSessionsValidFromDateTime": created,
        "passwordPolicies": None,
        "passwordProfile": None,
        "employeeId": None,
        "companyName": None,
        "assignedLicenses": [],
        "licenseAssignmentStates": [],
    }


def _domain(name: str, verified: bool, default: bool, initial: bool) -> dict[str, Any]:
    return {
        "id": name,
        "authenticationType": "Managed",
        "availabilityStatus": None,
        "isAdminManaged": True,
        "isDefault": default,
        "isInitial": initial,
        "isRoot": True,
        "isVerified": verified,
        "passwordNotificationWindowInDays": 14,
        "passwordValidityPeriodInDays": 2147483647,
        "supportedServices": ["Email", "OfficeCommunicationsOnline"] if verified else [],
        "state": None,
    }


def _license_state(sku: str, disabled: list[str], group_id: str | None, state: str, error: str) -> dict[str, Any]:
    return {
        "assignedByGroup": group_id,
        "disabledPlans": list(disabled),
        "error": error,
        "lastUpdatedDateTime": _now(),
        "skuId": sku,
        "state": state,
    }


def _camel(name: str) -> str:
    head, *rest = name.split("_")
    return head + "".join(part[:1].upper() + part[1:] for part in rest)


def _seed_method(tenant: Tenant, user_id: str, kind: MethodKind, values: Mapping[str, Any]) -> dict[str, Any]:
    existing = tenant.auth_methods.get(user_id, [])
    created = _timestamp(dt.datetime.now(dt.UTC) - dt.timedelta(days=30))
    method: dict[str, Any] = {"@odata.type": kind.odata_type}
    if kind.name == "phone":
        phone_type = values.get("phoneType", "mobile")
        if phone_type not in PHONE_METHOD_IDS:
            raise ValueError(f"unknown phoneType {phone_type!r}")
        if any(m.get("phoneType") == phone_type for m in existing):
            raise ValueError(f"the user already has a {phone_type} phone")
        method |= {
            "id": PHONE_METHOD_IDS[phone_type],
            "phoneNumber": "+1 4255550100",
            "phoneType": phone_type,
            "smsSignInState": "notSupported",
        }
    elif kind.name == "email":
        if any(m["@odata.type"] == kind.odata_type for m in existing):
            raise ValueError("the user already has an email method")
        method |= {"id": EMAIL_METHOD_ID, "emailAddress": "recovery@example.org"}
    elif kind.name == "microsoftAuthenticator":
        method |= {
            "id": str(uuid.uuid4()),
            "displayName": "iPhone 15",
            "deviceTag": "SoftwareTokenActivated",
            "phoneAppVersion": "6.8.12",
            "createdDateTime": created,
        }
    elif kind.name == "softwareOath":
        method |= {"id": str(uuid.uuid4()), "secretKey": None}
    elif kind.name == "fido2":
        method |= {
            "id": str(uuid.uuid4()),
            "displayName": "YubiKey 5 NFC",
            "createdDateTime": created,
            "aaGuid": "cb69481e-8ff7-4039-93ec-0a2729a154a8",
            "model": "YubiKey 5 Series",
            "attestationCertificates": [],
            "attestationLevel": "attested",
        }
    elif kind.name == "windowsHelloForBusiness":
        method |= {
            "id": str(uuid.uuid4()),
            "displayName": "LAPTOP-7Q2K",
            "createdDateTime": created,
            "keyStrength": "normal",
        }
    method |= {k: v for k, v in values.items() if k not in ("id", "@odata.type")}
    return method


def _method_not_found(method_id: str) -> GraphError:
    # Sandbox choice: the authentication-methods service's own 404 shape.
    return GraphError(404, "itemNotFound", f"The authentication method '{method_id}' was not found for this user.")


def _parse_datetime(value: Any) -> dt.datetime:
    if not isinstance(value, str):
        raise TypeError("a datetime string is expected")
    moment = dt.datetime.fromisoformat(value.replace("Z", "+00:00"))
    return moment if moment.tzinfo else moment.replace(tzinfo=dt.UTC)


def _reference_id(body: Any) -> str:
    """The object id an `{"@odata.id": ".../directoryObjects/{id}"}` body points at (users/ and
    groups/ URLs too, on any Graph host)."""
    raw = body.get("@odata.id") if isinstance(body, dict) else None
    if not isinstance(raw, str):
        raise _bad_request("Invalid request body: the '@odata.id' reference is missing.")
    match = re.search(r"/(?:directoryObjects|users|groups)/([^/?#]+)(?:/[A-Za-z.]+)?/?$", raw)
    if match is None or not _GUID.match(match.group(1)):
        raise _bad_request(f"Invalid object identifier '{raw.rstrip('/').split('/')[-1]}'.")
    return match.group(1).lower()


def _check_usage_location(value: Any) -> None:
    if not isinstance(value, str) or not _USAGE_LOCATION.match(value):
        raise _invalid_value("usageLocation")


def _check_auto_replies(replies: Any) -> None:
    if not isinstance(replies, dict):
        raise GraphError(400, "RequestBodyRead", "Invalid value for property 'automaticRepliesSetting'.")
    for prop, allowed in (("status", _AUTO_REPLY_STATUS), ("externalAudience", _EXTERNAL_AUDIENCE)):
        if prop in replies and replies[prop] not in allowed:
            raise GraphError(
                400,
                "RequestBodyRead",
                f"The request body read failed: Requested value '{replies[prop]}' was not found.",
            )
    for prop in ("scheduledStartDateTime", "scheduledEndDateTime"):
        value = replies.get(prop)
        if value is None:
            continue
        if not isinstance(value, dict) or not isinstance(value.get("dateTime"), str):
            raise GraphError(400, "RequestBodyRead", f"Invalid value for property '{prop}'.")
        try:
            dt.datetime.fromisoformat(value["dateTime"].rstrip("Z")[:26])
        except ValueError as exc:
            raise GraphError(400, "RequestBodyRead", f"Invalid value for property '{prop}'.") from exc
        value.setdefault("timeZone", "UTC")


def _action_parameters(body: Any) -> dict[str, Any]:
    """An OData action's parameters by lower-cased name: Graph matches them case-insensitively
    (msgraph-sdk sends sendMail's as "Message" and "SaveToSentItems")."""
    if not isinstance(body, dict):
        return {}
    return {k.lower(): v for k, v in body.items() if not k.startswith("@odata.")}


def _strip_odata(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _strip_odata(v) for k, v in value.items() if not k.startswith("@odata.")}
    if isinstance(value, list):
        return [_strip_odata(v) for v in value]
    return value


def _query(request: Request, name: str) -> str | None:
    """An OData system query option; Graph v1.0 accepts it with or without the `$`."""
    params = request.query_params
    return params.get(f"${name}", params.get(name))


def _encode_skiptoken(offset: int) -> str:
    return base64.urlsafe_b64encode(f"RFNwdAIA:{offset}".encode()).decode("ascii").rstrip("=")


def _decode_skiptoken(token: str | None) -> int:
    if token is None:
        return 0
    try:
        decoded = base64.urlsafe_b64decode(token + "=" * (-len(token) % 4)).decode("ascii")
        prefix, _, offset = decoded.partition(":")
        if prefix != "RFNwdAIA" or not offset.isdigit():
            raise ValueError(decoded)
        return int(offset)
    except ValueError as exc:
        raise GraphError(400, "Request_BadRequest", "Invalid value for $skiptoken.") from exc


def _permissions_for_property(prop: str) -> frozenset[str]:
    if prop == "passwordProfile":
        return _WRITE_PASSWORD
    if prop == "accountEnabled":
        return _WRITE_ENABLED
    return _WRITE_USERS


def _check_password_profile(profile: Any, user: Mapping[str, Any], *, required: bool = False) -> None:
    if not isinstance(profile, dict):
        raise _invalid_value("passwordProfile")
    password = profile.get("password")
    if required and not password:
        raise _invalid_value("passwordProfile")
    if password is not None and (not isinstance(password, str) or password_problem(password, user)):
        raise GraphError(400, "Request_BadRequest", MSG_PASSWORD_COMPLEXITY)


def _redact(body: Any) -> Any:
    """Request bodies for the log, with any password replaced (logs must not hold secrets)."""
    if isinstance(body, dict):
        return {k: ("***" if k.lower() in ("password", "newpassword") else _redact(v)) for k, v in body.items()}
    if isinstance(body, list):
        return [_redact(v) for v in body]
    return body

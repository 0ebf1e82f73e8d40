"""Exactly which application permissions and Entra roles each action needs in a customer tenant
(least privilege; facts from Microsoft's permission reference, see docs/permissions.md).
`tierone tenants check` compares a tenant's grant against this table."""

from __future__ import annotations

import base64
import json

from pydantic import BaseModel

LOOKUPS = ("User.Read.All", "RoleManagement.Read.Directory")


class ActionNeeds(BaseModel):
    graph_permissions: tuple[str, ...]
    entra_role: str | None = None
    exchange_permission: str | None = None
    exchange_role: str | None = None


NEEDS: dict[str, ActionNeeds] = {
    "password_reset": ActionNeeds(
        graph_permissions=(*LOOKUPS, "User-PasswordProfile.ReadWrite.All"), entra_role="User Administrator"
    ),
    "account_unlock": ActionNeeds(
        graph_permissions=(
            *LOOKUPS,
            "User.EnableDisableAccount.All",
            "User.RevokeSessions.All",
            "IdentityRiskyUser.ReadWrite.All",
        ),
        entra_role="User Administrator",
    ),
    "mfa_reset": ActionNeeds(
        graph_permissions=(
            *LOOKUPS,
            "UserAuthenticationMethod.ReadWrite.All",
            "User.RevokeSessions.All",
            "Policy.Read.AuthenticationMethod",
        ),
        entra_role="Authentication Administrator",
    ),
    "group_membership": ActionNeeds(
        graph_permissions=(*LOOKUPS, "GroupMember.ReadWrite.All"),
        exchange_permission="Exchange.ManageAsApp",
        exchange_role="Exchange Recipient Administrator",
    ),
    "license_change": ActionNeeds(
        graph_permissions=(*LOOKUPS, "LicenseAssignment.ReadWrite.All", "User.ReadWrite.All")
    ),
    "mailbox_permission": ActionNeeds(
        graph_permissions=LOOKUPS,
        exchange_permission="Exchange.ManageAsApp",
        exchange_role="Exchange Recipient Administrator",
    ),
    "onboarding": ActionNeeds(
        graph_permissions=(
            *LOOKUPS,
            "User.ReadWrite.All",
            "GroupMember.ReadWrite.All",
            "LicenseAssignment.ReadWrite.All",
            "Domain.Read.All",
        ),
        entra_role="User Administrator",
    ),
    "offboarding": ActionNeeds(
        graph_permissions=(
            *LOOKUPS,
            "User.EnableDisableAccount.All",
            "User.RevokeSessions.All",
            "User-PasswordProfile.ReadWrite.All",
            "GroupMember.ReadWrite.All",
            "LicenseAssignment.ReadWrite.All",
            "MailboxSettings.ReadWrite",
        ),
        entra_role="User Administrator",
        exchange_permission="Exchange.ManageAsApp",
        exchange_role="Exchange Recipient Administrator",
    ),
}


def token_roles(access_token: str) -> set[str]:
    """The application permissions granted, as the token's `roles` claim lists them.

    The token is read, not verified: it was just issued to us by Entra ID over TLS, and the
    answer only informs an administrator (it authorises nothing)."""
    try:
        payload = access_token.split(".")[1]
        claims = json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))
    except (IndexError, ValueError):
        return set()
    roles = claims.get("roles") or []
    return {str(role) for role in roles} if isinstance(roles, list) else set()


def missing_by_action(granted: set[str]) -> dict[str, list[str]]:
    """For each action, the Graph permissions the tenant has not granted (empty when ready)."""
    return {action: [p for p in needs.graph_permissions if p not in granted] for action, needs in NEEDS.items()}

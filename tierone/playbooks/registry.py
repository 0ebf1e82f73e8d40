"""Which playbook module handles which intent. Every module exposes

    async def plan(ctx: PlaybookContext) -> list[Step]
        Reads the tenant's current state and returns the steps to run; raises PermanentError with a
        technician-readable reason when the request cannot be done safely (nothing has changed then).
    def customer_message(ctx: PlaybookContext, result: PlaybookResult, link_url: str | None) -> str
        What the requester is told: never a secret (at most the one-time link), honest about partial
        results.

Password reset keeps its own resumable flow (tierone.playbooks.password_reset) and is not listed."""

from __future__ import annotations

from types import ModuleType

from tierone.playbooks import (
    account_unlock,
    group_membership,
    license_change,
    mailbox_permission,
    mfa_reset,
    offboarding,
    onboarding,
)

PLAYBOOKS: dict[str, ModuleType] = {
    "account_unlock": account_unlock,
    "mfa_reset": mfa_reset,
    "group_membership": group_membership,
    "license_change": license_change,
    "mailbox_permission": mailbox_permission,
    "onboarding": onboarding,
    "offboarding": offboarding,
}

# Intents whose playbook needs Exchange Online (the pipeline passes an ExchangeAdmin for these).
NEEDS_EXCHANGE = frozenset({"mailbox_permission", "offboarding", "group_membership", "onboarding"})

"""MFA reset ("new phone", "authenticator not working"): remove every registered method except the
password, sign the user out, and hand over a one-time Temporary Access Pass to register again.

- Methods are deleted through their own collections (the generic endpoint is delegated-only); the
  default method cannot go while others remain, so it is retried after the rest (graph.md §3.2).
- The TAP policy is read *before* anything is deleted: a user left with no methods and no pass
  cannot sign in at all, so a policy that is off or does not cover the user is an escalation.
- The pass is one-time, 60 minutes unless the policy's limits say otherwise, and goes straight from
  Graph's answer to the credential sink (a one-time link): never into results, the ledger or logs.
  Issuing a pass replaces the previous one, so a retry simply issues (and hands over) a fresh one."""

from __future__ import annotations

from identity_integrations.graph_methods import DefaultMethodFirst, TapPolicy
from identity_integrations.models import AuthMethod, DirectoryUser, WriteReceipt
from tierone.errors import PermanentError
from tierone.playbooks.account_unlock import require_target, revoke_sessions_step
from tierone.playbooks.base import PlaybookResult, Step, combined, never
from tierone.playbooks.context import PlaybookContext

TAP_MINUTES = 60
TAP_PURPOSE = "Temporary Access Pass"
_KIND_NAMES = {
    "microsoft_authenticator_methods": "Microsoft Authenticator",
    "phone_methods": "phone",
    "software_oath_methods": "authenticator app code (OATH)",
    "fido2_methods": "security key / passkey",
    "email_methods": "e-mail",
    "temporary_access_pass_methods": "Temporary Access Pass",
    "windows_hello_for_business_methods": "Windows Hello",
}


def describe(method: AuthMethod) -> str:
    kind = _KIND_NAMES.get(method.kind, method.kind)
    return f"{kind} ({method.label})" if method.label else kind


async def plan(ctx: PlaybookContext) -> list[Step]:
    target = require_target(ctx)
    policy = await ctx.directory.tap_policy()
    await _require_tap_scope(ctx, target, policy)
    methods = await ctx.directory.auth_methods(target.id)
    lifetime = policy.lifetime(TAP_MINUTES)
    ctx.facts.update(
        methods_before=[describe(m) for m in methods],
        tap_lifetime_minutes=lifetime,
        tap_one_time=True,
    )
    return [
        _remove_methods_step(ctx, target),
        revoke_sessions_step(ctx, target, "so no device keeps a session from the old methods"),
        _issue_tap_step(ctx, target, lifetime),
    ]


async def _require_tap_scope(ctx: PlaybookContext, target: DirectoryUser, policy: TapPolicy) -> None:
    if not policy.enabled:
        raise PermanentError(
            "the tenant's Temporary Access Pass policy is off: removing the MFA methods would leave the "
            "user unable to sign in (enable the TAP policy, or reset MFA by hand)"
        )
    needs_groups = not policy.include_all_users or bool(policy.exclude_groups)
    groups = {g.id for g in await ctx.directory.user_groups(target.id)} if needs_groups else set()
    if not policy.covers(groups):
        raise PermanentError(
            "the user is outside the tenant's Temporary Access Pass policy: removing the MFA methods would "
            "leave them unable to sign in (add them to the policy, or reset MFA by hand)"
        )


def _remove_methods_step(ctx: PlaybookContext, user: DirectoryUser) -> Step:
    async def none_left() -> bool:
        return not await ctx.directory.auth_methods(user.id)

    async def apply() -> WriteReceipt | None:
        receipts: list[WriteReceipt] = []
        deferred: list[AuthMethod] = []
        for method in await ctx.directory.auth_methods(user.id):
            try:
                receipts.append(await ctx.directory.delete_auth_method(user.id, method))
            except DefaultMethodFirst:
                deferred.append(method)  # the default method: possible once it is the last one
        for method in deferred:
            receipts.append(await ctx.directory.delete_auth_method(user.id, method))
        return combined(receipts)

    return Step(
        "remove-mfa-methods",
        f"Remove {user.display_name}'s MFA methods (the password stays)",
        none_left,
        apply,
    )


def _issue_tap_step(ctx: PlaybookContext, user: DirectoryUser, lifetime: int) -> Step:
    async def apply() -> WriteReceipt:
        secret, receipt = await ctx.directory.create_tap(user.id, lifetime, True)
        await ctx.deliver_credential(secret, TAP_PURPOSE)
        return receipt

    async def has_pass() -> bool:
        methods = await ctx.directory.auth_methods(user.id)
        return any(m.kind == "temporary_access_pass_methods" for m in methods)

    # `never`: a pass's value is only readable when issued, so a retry issues a new one (it replaces the old).
    return Step(
        "issue-tap",
        f"Issue a one-time Temporary Access Pass ({lifetime} minutes) to {user.display_name}, via a one-time link",
        never,
        apply,
        verify=has_pass,
    )


def customer_message(ctx: PlaybookContext, result: PlaybookResult, link_url: str | None) -> str:
    minutes = ctx.facts.get("tap_lifetime_minutes", TAP_MINUTES)
    if result.completed and link_url:
        return (
            "Your multi-factor authentication has been reset: the old sign-in methods (authenticator app, "
            "phone numbers and so on) were removed and you have been signed out everywhere.\n"
            f"Open this one-time link to see your Temporary Access Pass:\n{link_url}\n\n"
            f"The pass works once and for {minutes} minutes. Go to https://aka.ms/mysecurityinfo, sign in with "
            "your e-mail address and the pass, and set up Microsoft Authenticator again.\n"
            "If you did not ask for this, contact your IT support straight away."
        )
    lines = ["We started resetting your multi-factor authentication but could not finish it."]
    if result.succeeded("remove-mfa-methods"):
        lines.append("Your old sign-in methods were removed.")
    if not result.succeeded("issue-tap"):
        lines.append("No Temporary Access Pass was issued yet; a technician will contact you to complete it.")
    return "\n".join(lines)

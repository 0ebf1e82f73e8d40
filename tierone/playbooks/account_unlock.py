"""Account unlock. Entra ID has no unlock API (graph.md §2.1): "locked" is one of

- a blocked sign-in (accountEnabled=false) → re-enabled;
- a risk-based block (Identity Protection, Entra ID P2) → the user's risk dismissed, where the
  tenant has the licence; high risk is a possible compromise and goes to a human instead;
- smart lockout → clears itself (first lockout 60 s); only a password reset clears it sooner, so
  the playbook says so instead of pretending to unlock anything.

After a real change the user's sessions are revoked, so every device signs in again under the
account's current state."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from identity_integrations.models import DirectoryUser, WriteReceipt
from tierone.errors import PermanentError
from tierone.playbooks.base import PlaybookResult, Step, never, note_step
from tierone.playbooks.context import PlaybookContext

# Graph timestamps have second precision and clocks drift; a read-back within this window counts.
CLOCK_SLACK = timedelta(minutes=5)
SMART_LOCKOUT_NOTE = (
    "Entra smart lockout releases the account by itself (after about a minute at first, longer after "
    "repeated lockouts); a password reset also clears it"
)


def require_target(ctx: PlaybookContext) -> DirectoryUser:
    if ctx.target is None:
        raise PermanentError(f"no user account was identified for this {ctx.request.intent.replace('_', ' ')}")
    return ctx.target


def revoke_sessions_step(ctx: PlaybookContext, user: DirectoryUser, why: str) -> Step:
    """Sign the user out everywhere; read back as signInSessionsValidFromDateTime moving forward."""
    sent_at: list[datetime] = []

    async def apply() -> WriteReceipt:
        sent_at.append(datetime.now(UTC))
        return await ctx.directory.revoke_sessions(user.id)

    async def verify() -> bool:
        valid_from = await ctx.directory.sessions_valid_from(user.id)
        return bool(sent_at) and valid_from is not None and valid_from >= sent_at[0] - CLOCK_SLACK

    # Nothing to find beforehand: revoking again is harmless, and the ledger keeps it to once.
    return Step("revoke-sessions", f"Sign {user.display_name} out of every session ({why})", never, apply, verify)


async def plan(ctx: PlaybookContext) -> list[Step]:
    target = require_target(ctx)
    user = await ctx.directory.get_user(target.id)
    risk = await ctx.directory.user_risk(target.id)  # None: no Entra ID P2, so no risk data
    ctx.facts.update(account_enabled=user.account_enabled, risk_level=risk if risk is not None else "not licensed")
    if user.on_premises_sync_enabled and not user.account_enabled:
        raise PermanentError(
            "the account is disabled in on-premises Active Directory (it is synced): enable it there, "
            "a cloud change would be overwritten at the next sync"
        )
    if risk == "high":
        raise PermanentError(
            "Identity Protection rates the user's risk high (a possible compromise): a technician must "
            "investigate before the risk is dismissed"
        )
    steps: list[Step] = []
    if not user.account_enabled:
        steps.append(_enable_step(ctx, user))
    if risk not in (None, "none", "hidden"):
        steps.append(_dismiss_risk_step(ctx, user, risk))
    if steps:
        steps.append(revoke_sessions_step(ctx, user, "so every device signs in again"))
    steps.append(note_step("smart-lockout", "Smart lockout", SMART_LOCKOUT_NOTE))
    ctx.facts["unlock_actions"] = [s.name for s in steps if s.note is None]
    return steps


def _enable_step(ctx: PlaybookContext, user: DirectoryUser) -> Step:
    async def enabled() -> bool:
        return bool((await ctx.directory.get_user(user.id)).account_enabled)

    async def apply() -> WriteReceipt:
        return await ctx.directory.set_account_enabled(user.id, True)

    return Step("enable-sign-in", f"Allow {user.display_name} to sign in again", enabled, apply)


def _dismiss_risk_step(ctx: PlaybookContext, user: DirectoryUser, risk: str) -> Step:
    async def no_risk() -> bool:
        return await ctx.directory.user_risk(user.id) in (None, "none")

    async def apply() -> WriteReceipt:
        return await ctx.directory.dismiss_risk(user.id)

    return Step("dismiss-risk", f"Dismiss {user.display_name}'s sign-in risk (was {risk})", no_risk, apply)


def customer_message(ctx: PlaybookContext, result: PlaybookResult, link_url: str | None) -> str:
    name = ctx.target.display_name if ctx.target else "The account"
    done: list[str] = []
    if result.succeeded("enable-sign-in"):
        done.append("sign-in is allowed again")
    if result.succeeded("dismiss-risk"):
        done.append("the sign-in risk that blocked it was cleared")
    if result.succeeded("revoke-sessions"):
        done.append("every open session was signed out, so please sign in again on each device")
    if done:
        lines = [f"{name}'s account is unblocked: " + "; ".join(done) + "."]
    else:
        lines = [
            f"{name}'s account is not disabled or blocked in Microsoft 365. If it says it is locked, that is "
            "Microsoft's automatic lockout after several wrong passwords: it lifts by itself within a few "
            "minutes. Please wait, then sign in carefully. If the password is forgotten, reply and ask for a "
            "password reset."
        ]
    if not result.completed:
        failure = result.failure
        lines.append(
            f"We could not finish everything ({failure.description if failure else 'a step did not complete'}); "
            "a technician will follow up."
        )
    return "\n".join(lines)

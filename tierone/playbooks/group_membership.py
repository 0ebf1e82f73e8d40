"""Group membership: add a user to, or remove them from, one group.

Where a group's membership can be changed decides how (graph.md §4.2):
- security and Microsoft 365 groups: Graph, always through members/$ref (never the user object);
- mail-enabled security groups and distribution lists: read-only in Graph, so Exchange Online's
  Add/Remove-DistributionGroupMember;
- dynamic groups (members follow a rule), on-premises-synced groups (mastered in AD) and
  role-assignable groups (membership grants admin roles): never changed here, a human decides."""

from __future__ import annotations

from identity_integrations.models import DirectoryUser, Group, WriteReceipt
from tierone.errors import PermanentError
from tierone.playbooks.account_unlock import require_target
from tierone.playbooks.base import PlaybookResult, Step, blocked_step
from tierone.playbooks.context import PlaybookContext


def refusal(group: Group) -> str | None:
    """Why TierOne must not change this group's membership, or None when it may."""
    if group.kind == "dynamic":
        return f"'{group.display_name}' is a dynamic group: its members follow its membership rule, not requests"
    if group.on_premises_sync_enabled:
        return f"'{group.display_name}' is synced from on-premises Active Directory: change its members there"
    if group.role_assignable:
        return (
            f"'{group.display_name}' is a role-assignable group: its members hold admin roles, "
            "so membership changes need a privileged administrator"
        )
    return None


def channel(group: Group) -> str:
    return "Exchange Online" if group.exchange_mastered else "Microsoft Graph"


def user_names(user: DirectoryUser) -> set[str]:
    """The unique strings Exchange may list this user under (never the display name: not unique)."""
    return {n.lower() for n in (user.user_principal_name, user.mail, user.id) if n}


def membership_step(ctx: PlaybookContext, group: Group, user: DirectoryUser, *, remove: bool) -> Step:
    """Add or remove one member, through whichever service masters the group."""
    verb = "remove" if remove else "add"
    name = f"{verb}-group-{group.id}"
    description = (
        f"Remove {user.display_name} from '{group.display_name}'"
        if remove
        else f"Add {user.display_name} to '{group.display_name}'"
    )
    problem = refusal(group)
    if problem:
        return blocked_step(name, description, problem)
    if group.exchange_mastered:
        if ctx.exchange is None:
            return blocked_step(name, description, f"'{group.display_name}' is managed in Exchange Online")
        return _exchange_step(ctx, group, user, name, description, remove)
    return _graph_step(ctx, group, user, name, description, remove)


def _graph_step(
    ctx: PlaybookContext, group: Group, user: DirectoryUser, name: str, description: str, remove: bool
) -> Step:
    async def desired() -> bool:
        return bool(await ctx.directory.is_member(group.id, user.id)) != remove

    async def apply() -> WriteReceipt:
        if remove:
            return await ctx.directory.remove_member(group.id, user.id)
        return await ctx.directory.add_member(group.id, user.id)

    return Step(name, description, desired, apply)


def _exchange_step(
    ctx: PlaybookContext, group: Group, user: DirectoryUser, name: str, description: str, remove: bool
) -> Step:
    exchange = ctx.exchange
    assert exchange is not None
    identity = group.mail or group.display_name

    async def desired() -> bool:
        names = user_names(user)
        member = any(names & recipient.names for recipient in await exchange.dl_members(identity))
        return member != remove

    async def apply() -> WriteReceipt:
        if remove:
            return await exchange.remove_dl_member(identity, user.user_principal_name)
        return await exchange.add_dl_member(identity, user.user_principal_name)

    return Step(name, f"{description} (in Exchange Online)", desired, apply)


async def find_group(ctx: PlaybookContext, name: str) -> Group:
    groups = await ctx.directory.find_groups(name)
    if not groups:
        raise PermanentError(f"no group named '{name}' exists in the tenant")
    if len(groups) > 1:
        raise PermanentError(f"{len(groups)} groups are named '{name}': a technician must pick the right one")
    return groups[0]


async def plan(ctx: PlaybookContext) -> list[Step]:
    target = require_target(ctx)
    if not ctx.request.object:
        raise PermanentError("the ticket does not say which group")
    group = await find_group(ctx, ctx.request.object)
    ctx.facts.update(group=group.display_name, group_id=group.id, group_kind=group.kind, via=channel(group))
    if group.licensed:
        ctx.facts["group_assigns_licences"] = True
    problem = refusal(group)
    if problem:
        raise PermanentError(problem)
    if group.exchange_mastered and ctx.exchange is None:
        raise PermanentError(f"'{group.display_name}' is managed in Exchange Online, which is not connected")
    return [membership_step(ctx, group, target, remove=ctx.request.remove)]


def customer_message(ctx: PlaybookContext, result: PlaybookResult, link_url: str | None) -> str:
    group = ctx.facts.get("group", ctx.request.object or "the group")
    who = ctx.target.display_name if ctx.target else "The user"
    if not result.completed:
        return f"We could not change the membership of '{group}' automatically; a technician will follow up."
    already = not result.changed_anything
    if ctx.request.remove:
        text = f"{who} is no longer a member of '{group}'." if already else f"{who} was removed from '{group}'."
    else:
        text = f"{who} is already a member of '{group}'." if already else f"{who} was added to '{group}'."
    return f"{text}\nChanges can take up to an hour to show in Outlook and Teams; signing out and in again helps."

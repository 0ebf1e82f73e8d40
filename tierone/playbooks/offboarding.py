"""Offboarding a leaver, in an order that closes the door first (graph.md §7.2):

1. block sign-in — if this fails nothing else runs (a failed step stops the playbook);
2. revoke sessions, then reset the password to a random one nobody is given;
3. convert the mailbox to shared *before* any licence goes (an unlicensed user mailbox is deleted
   after 30 days; a shared one is kept), set the auto-reply, give the manager Full Access, hide the
   mailbox from the address list;
4. remove group memberships: Graph groups through members/$ref, distribution lists and mail-enabled
   security groups through Exchange; dynamic groups are left to their rule and on-premises groups to
   AD, each with a note; role-assignable groups (they grant admin roles) are left to a human, as
   failed steps at the very end;
5. remove the licences assigned directly; licences inherited from a group are noted with the group.

Each step is its own ledger row, so a retried run resumes where it stopped."""

from __future__ import annotations

from datetime import UTC, datetime

from identity_integrations.exchange import ExchangeAdmin, Mailbox
from identity_integrations.models import DirectoryUser, Group, Sku, WriteReceipt
from tierone.errors import PermanentError
from tierone.passwords import temporary_password
from tierone.playbooks.account_unlock import CLOCK_SLACK, require_target, revoke_sessions_step
from tierone.playbooks.base import PlaybookResult, Step, StepStatus, never, note_step
from tierone.playbooks.context import OnboardingTemplate, PlaybookContext
from tierone.playbooks.group_membership import membership_step, refusal
from tierone.playbooks.licence_catalog import product_name
from tierone.playbooks.license_change import assign_step
from tierone.playbooks.mailbox_permission import permission_step, require_exchange, step_name

DEFAULT_AUTO_REPLY = OnboardingTemplate.model_fields["auto_reply_on_leave"].default


async def plan(ctx: PlaybookContext) -> list[Step]:
    target = require_target(ctx)
    user = await ctx.directory.get_user(target.id)
    if user.on_premises_sync_enabled:
        raise PermanentError(
            "the account is synced from on-premises Active Directory: disable it there first (a cloud block "
            "would be undone by the next sync)"
        )
    exchange = require_exchange(ctx, "the leaver's mailbox (kept as shared, delegated, hidden) is")
    mailbox = await exchange.mailbox(user.user_principal_name)
    manager = await _manager(ctx, user)
    ctx.facts.update(
        leaver=user.user_principal_name,
        manager=manager.user_principal_name if manager else None,
        mailbox=mailbox.primary_smtp_address if mailbox else None,
    )
    steps = [
        _block_step(ctx, user),
        revoke_sessions_step(ctx, user, "ends every open session"),
        _password_step(ctx, user),
        *_mailbox_steps(ctx, exchange, user, mailbox, manager),
    ]
    groups = await ctx.directory.user_groups(user.id)
    removable = [g for g in groups if not refusal(g)]
    kept = [g for g in groups if refusal(g) and refusal_is_note(g)]
    privileged = [g for g in groups if refusal(g) and not refusal_is_note(g)]
    steps.extend(membership_step(ctx, g, user, remove=True) for g in removable)
    steps.extend(note_step(f"keep-group-{g.id}", f"Group '{g.display_name}'", refusal(g) or "") for g in kept)
    steps.extend(await _licence_steps(ctx, user, groups, removable))
    # Role-assignable groups grant admin roles: a human must remove those. Their steps fail, and a
    # failure stops the steps after it, so they come last, once everything else has been done.
    steps.extend(membership_step(ctx, g, user, remove=True) for g in privileged)
    ctx.facts.update(
        groups_removed=[g.display_name for g in removable],
        groups_left=[g.display_name for g in kept + privileged],
    )
    return steps


def refusal_is_note(group: Group) -> bool:
    """Dynamic and on-premises groups are left with a note: the blocked account's membership is moot."""
    return group.kind == "dynamic" or group.on_premises_sync_enabled


async def _manager(ctx: PlaybookContext, user: DirectoryUser) -> DirectoryUser | None:
    manager_id = await ctx.directory.manager_id(user.id)
    return await ctx.directory.get_user(manager_id) if manager_id else None


def _block_step(ctx: PlaybookContext, user: DirectoryUser) -> Step:
    async def blocked() -> bool:
        return not (await ctx.directory.get_user(user.id)).account_enabled

    async def apply() -> WriteReceipt:
        return await ctx.directory.set_account_enabled(user.id, False)

    return Step("block-sign-in", f"Block sign-in for {user.display_name}", blocked, apply)


def _password_step(ctx: PlaybookContext, user: DirectoryUser) -> Step:
    """A random password nobody receives: any password the leaver (or an attacker) knew stops working."""
    sent_at: list[datetime] = []

    async def apply() -> WriteReceipt:
        sent_at.append(datetime.now(UTC))
        return await ctx.directory.set_temporary_password(user.id, temporary_password())

    async def changed() -> bool:
        last = (await ctx.directory.get_user(user.id)).last_password_change
        return bool(sent_at) and last is not None and last >= sent_at[0] - CLOCK_SLACK

    return Step("reset-password", f"Reset {user.display_name}'s password to a random one (not given to anyone)",
                never, apply, changed)  # fmt: skip


def _mailbox_steps(
    ctx: PlaybookContext,
    exchange: ExchangeAdmin,
    user: DirectoryUser,
    mailbox: Mailbox | None,
    manager: DirectoryUser | None,
) -> list[Step]:
    if mailbox is None:
        return [note_step("mailbox", "Mailbox", f"{user.display_name} has no Exchange Online mailbox")]
    identity = mailbox.primary_smtp_address or mailbox.identity
    steps = [_shared_step(exchange, identity), _auto_reply_step(ctx, exchange, identity, user, manager)]
    if manager is not None:
        steps.append(permission_step(exchange, mailbox, manager, "FullAccess", remove=False))
    else:
        steps.append(note_step("delegate-mailbox", "Mailbox access", "no manager of record: nobody was given access"))
    steps.append(_hide_step(exchange, identity))
    return steps


def _shared_step(exchange: ExchangeAdmin, identity: str) -> Step:
    async def shared() -> bool:
        found = await exchange.mailbox(identity)
        return found is not None and found.is_shared

    async def apply() -> WriteReceipt:
        return await exchange.convert_to_shared(identity)

    return Step("convert-to-shared", f"Convert {identity} to a shared mailbox (kept without a licence)", shared, apply)


def _auto_reply_step(
    ctx: PlaybookContext, exchange: ExchangeAdmin, identity: str, user: DirectoryUser, manager: DirectoryUser | None
) -> Step:
    template = ctx.template.auto_reply_on_leave if ctx.template else DEFAULT_AUTO_REPLY
    contact = (manager.mail or manager.user_principal_name) if manager else "our main office"
    message = template.format(name=user.display_name, company=ctx.customer_name or "the company", manager=contact)

    async def replying() -> bool:
        config = await exchange.auto_reply(identity)
        return config["state"].lower() == "enabled" and (config["internal"] or "").strip() == message.strip()

    async def apply() -> WriteReceipt:
        return await exchange.set_auto_reply(identity, message)

    ctx.facts["auto_reply"] = message
    return Step("auto-reply", f"Turn on an auto-reply on {identity} pointing to {contact}", replying, apply)


def _hide_step(exchange: ExchangeAdmin, identity: str) -> Step:
    async def hidden() -> bool:
        found = await exchange.mailbox(identity)
        return found is not None and found.hidden_from_address_lists

    async def apply() -> WriteReceipt:
        return await exchange.set_hidden_from_address_lists(identity, True)

    return Step("hide-from-gal", f"Hide {identity} from the address list", hidden, apply)


async def _licence_steps(
    ctx: PlaybookContext, user: DirectoryUser, groups: list[Group], removed: list[Group]
) -> list[Step]:
    licences = await ctx.directory.user_licenses(user.id)
    skus = {s.sku_id: s for s in await ctx.directory.subscribed_skus()}
    names = {g.id: g.display_name for g in groups}
    removed_ids = {g.id for g in removed}
    steps: list[Step] = []
    # A SKU missing from subscribedSkus (e.g. an expired trial) is still removed, by its id.
    direct = [
        skus.get(s) or Sku(sku_id=s, part_number=s, enabled_units=0, consumed_units=0) for s in sorted(licences.direct)
    ]
    if direct:
        steps.append(assign_step(ctx, user, [], direct))
    for sku_id, group_ids in sorted(licences.inherited_from.items()):
        label = product_name(skus[sku_id].part_number) if sku_id in skus else sku_id
        via = ", ".join(f"'{names.get(g, g)}'" for g in group_ids)
        gone = all(g in removed_ids for g in group_ids)
        note = f"granted by the group {via}" + (" — goes with that membership" if gone else " — left in place")
        steps.append(note_step(f"inherited-licence-{sku_id}", f"Licence {label}", note))
    ctx.facts["licences_removed"] = [s.part_number for s in direct]
    return steps


def customer_message(ctx: PlaybookContext, result: PlaybookResult, link_url: str | None) -> str:
    who = ctx.target.display_name if ctx.target else "The user"
    if not result.succeeded("block-sign-in"):
        return f"We could not block {who}'s account automatically; a technician is on it now."
    lines = [f"{who}'s account has been closed: sign-in is blocked and every session was ended."]
    if result.succeeded("convert-to-shared"):
        lines.append("The mailbox was kept as a shared mailbox")
        manager = ctx.facts.get("manager")
        if manager and result.succeeded(step_name("FullAccess", str(ctx.facts.get("mailbox")), False)):
            lines[-1] += f" and {manager} can open it"
        lines[-1] += "; senders get an automatic reply." if result.succeeded("auto-reply") else "."
    if not result.completed:
        unfinished = [s.description for s in result.steps if s.status in (StepStatus.FAILED, StepStatus.NOT_RUN)]
        lines.append("Still to be done by a technician: " + "; ".join(unfinished) + ".")
    return "\n".join(lines)

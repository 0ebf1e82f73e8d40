"""Licence assign, remove or swap, in ONE assignLicense call (add and remove together are atomic,
so a swap never leaves the user with neither licence, nor holds two seats for long).

Before anything is sent (graph.md §5.3): the product name is resolved against the catalogue and the
tenant's own subscriptions (ambiguous → a human picks), a free seat is checked, a missing usage
location is set from the client's onboarding template, and a licence the user only inherits from a
group is not "removed" from the user (Graph refuses; the group membership is what grants it)."""

from __future__ import annotations

from identity_integrations.models import DirectoryUser, Sku, UserLicenses, WriteReceipt
from tierone.errors import PermanentError
from tierone.playbooks.account_unlock import require_target
from tierone.playbooks.base import PlaybookResult, Step
from tierone.playbooks.context import PlaybookContext
from tierone.playbooks.licence_catalog import parse_wording, product_name, resolve, same_family


def usage_location_step(ctx: PlaybookContext, user: DirectoryUser, country: str) -> Step:
    """Licences cannot be assigned without a usage location; an existing one is never overwritten."""

    async def has_location() -> bool:
        return bool((await ctx.directory.user_licenses(user.id)).usage_location)

    async def apply() -> WriteReceipt:
        return await ctx.directory.set_usage_location(user.id, country)

    return Step(
        "set-usage-location",
        f"Set {user.display_name}'s usage location to {country} (required for licences)",
        has_location,
        apply,
    )


def assign_step(ctx: PlaybookContext, user: DirectoryUser, add: list[Sku], remove: list[Sku]) -> Step:
    """Add and remove in one assignLicense; only what still differs from the user's licences is sent."""
    add_ids = {s.sku_id for s in add}
    remove_ids = {s.sku_id for s in remove}

    def pending(current: UserLicenses) -> tuple[list[str], list[str]]:
        return sorted(add_ids - current.all), sorted(remove_ids & current.direct)

    async def holds() -> bool:
        to_add, to_remove = pending(await ctx.directory.user_licenses(user.id))
        return not to_add and not to_remove

    async def apply() -> WriteReceipt:
        to_add, to_remove = pending(await ctx.directory.user_licenses(user.id))
        return await ctx.directory.assign_licenses(user.id, to_add, to_remove)

    return Step("assign-licences", _describe(user, add, remove), holds, apply)


def _describe(user: DirectoryUser, add: list[Sku], remove: list[Sku]) -> str:
    added = ", ".join(product_name(s.part_number) for s in add)
    removed = ", ".join(product_name(s.part_number) for s in remove)
    if add and remove:
        return f"Replace {removed} with {added} for {user.display_name} (one atomic change)"
    if add:
        return f"Assign {added} to {user.display_name}"
    return f"Remove {removed} from {user.display_name}"


def require_free_seat(sku: Sku) -> None:
    if sku.free_units < 1:
        raise PermanentError(
            f"no free seat of {product_name(sku.part_number)}: all {sku.enabled_units} are in use "
            "(buy another seat or free one first)"
        )


async def group_names(ctx: PlaybookContext, user: DirectoryUser, group_ids: list[str]) -> str:
    names = {g.id: g.display_name for g in await ctx.directory.user_groups(user.id)}
    return ", ".join(f"'{names.get(gid, gid)}'" for gid in group_ids)


async def plan(ctx: PlaybookContext) -> list[Step]:
    target = require_target(ctx)
    if not ctx.request.object:
        raise PermanentError("the ticket does not say which licence")
    wording = parse_wording(ctx.request.object, ctx.request.remove)
    skus = await ctx.directory.subscribed_skus()
    current = await ctx.directory.user_licenses(target.id)
    add = [resolve(wording.add, skus)] if wording.add else []
    remove = [resolve(wording.remove, skus)] if wording.remove else []
    if wording.within_family and add:
        # "upgrade to E5": the user's direct licence of E5's family goes in the same call.
        remove = [s for s in skus if s.sku_id in current.direct - {add[0].sku_id} and same_family(s, add[0])]
    await _refuse_inherited_removal(ctx, target, remove, current)
    for sku in add:
        if sku.sku_id not in current.all:
            require_free_seat(sku)
    ctx.facts.update(
        licence_add=[s.part_number for s in add],
        licence_remove=[s.part_number for s in remove],
        free_seats={s.part_number: s.free_units for s in add},
    )
    steps: list[Step] = []
    if add and not current.usage_location:
        steps.append(usage_location_step(ctx, target, _template_location(ctx)))
    steps.append(assign_step(ctx, target, add, remove))
    return steps


async def _refuse_inherited_removal(
    ctx: PlaybookContext, user: DirectoryUser, remove: list[Sku], current: UserLicenses
) -> None:
    """Only a direct assignment can be removed from the user; one that is *also* inherited is removed,
    and the facts say which group keeps granting it (the user keeps the licence through it)."""
    for sku in remove:
        if sku.sku_id not in current.inherited:
            continue
        groups = await group_names(ctx, user, current.inherited_from.get(sku.sku_id, []))
        if sku.sku_id not in current.direct:
            raise PermanentError(
                f"{product_name(sku.part_number)} comes from membership of the group {groups}, not a direct "
                "assignment: remove the user from that group instead (a human decides)"
            )
        ctx.facts.setdefault("still_granted_by", {})[sku.part_number] = groups


def _template_location(ctx: PlaybookContext) -> str:
    if ctx.template is None:
        raise PermanentError(
            "the user has no usage location (required for licences) and the client has no onboarding "
            "template to take one from"
        )
    ctx.facts["usage_location_from_template"] = ctx.template.usage_location
    return ctx.template.usage_location


def customer_message(ctx: PlaybookContext, result: PlaybookResult, link_url: str | None) -> str:
    added = ", ".join(product_name(p) for p in ctx.facts.get("licence_add", []))
    removed = ", ".join(product_name(p) for p in ctx.facts.get("licence_remove", []))
    who = ctx.target.display_name if ctx.target else "The user"
    if not result.completed:
        return "We could not change the licence automatically; a technician will follow up."
    if added and removed:
        text = f"{who} now has {added} instead of {removed}."
    elif added:
        text = f"{who} now has {added}."
    else:
        text = f"{removed} was removed from {who}."
    for part, groups in ctx.facts.get("still_granted_by", {}).items():
        text += f" {who} still has {product_name(part)} through the group {groups}; a technician will review that."
    return f"{text}\nNew apps and features can take a few minutes to appear; signing out and in again helps."

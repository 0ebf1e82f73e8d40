"""Onboarding: a new account from the client's template (graph.md §7.1).

The UPN comes from the template's pattern (names ASCII-folded, anything outside a safe character
set dropped) on a domain the tenant has verified. The account is created with a random temporary
password that is handed to the manager (the requester) through a one-time link *before* Graph is
called, so an interrupted run never leaves an account whose password nobody received; a retry that
finds the account this ticket created carries on. An account with that name that this ticket did
not create belongs to someone else: the step fails and a human picks another name.

Then: manager, usage location, the template's groups for everyone and for the role, and the
template's licence if a seat is free. Groups TierOne must not change (dynamic, on-premises, role-
assignable, missing) are reported as failed steps at the end, after everything else was done."""

from __future__ import annotations

import re
import unicodedata

from identity_integrations.exchange import ExchangeError
from identity_integrations.models import DirectoryUser, Group, NewUser, Sku, WriteReceipt
from tierone.errors import PermanentError, TransientError
from tierone.passwords import temporary_password
from tierone.playbooks.base import PlaybookResult, Step, StepStatus, blocked_step
from tierone.playbooks.context import OnboardingTemplate, PlaybookContext
from tierone.playbooks.group_membership import membership_step, refusal
from tierone.playbooks.licence_catalog import product_name
from tierone.playbooks.license_change import assign_step, require_free_seat, usage_location_step

PASSWORD_PURPOSE = "temporary password"  # noqa: S105 (a label for the link, not a password)
MAX_LOCAL_PART = 64
# Letters NFKD does not decompose into ASCII.
_FOLD = str.maketrans({"ß": "ss", "æ": "ae", "Æ": "AE", "ø": "o", "Ø": "O", "đ": "d", "Đ": "D", "ł": "l",
                       "Ł": "L", "þ": "th", "Þ": "TH", "œ": "oe", "Œ": "OE", "ı": "i"})  # fmt: skip
_NAME_CHARS = re.compile(r"[^a-z0-9-]")  # from people's names: letters, digits, hyphens
_LOCAL_CHARS = re.compile(r"[^a-z0-9._-]")  # what the pattern may add: dots, underscores
_WORDS = re.compile(r"[a-z0-9]+")


def ascii_fold(text: str) -> str:
    decomposed = unicodedata.normalize("NFKD", text.translate(_FOLD))
    return "".join(ch for ch in decomposed if not unicodedata.combining(ch)).encode("ascii", "ignore").decode()


def split_name(full_name: str) -> tuple[str, str]:
    """'Anna-Lena Müller' → ('Anna-Lena', 'Müller'); 'José de la Cruz' → ('José', 'de la Cruz')."""
    parts = full_name.split()
    if len(parts) < 2:
        raise PermanentError(f"'{full_name}' is not a first and last name: a technician must name the account")
    return parts[0], " ".join(parts[1:])


def upn_local_part(pattern: str, first: str, last: str) -> str:
    def clean(name: str) -> str:
        return _NAME_CHARS.sub("", ascii_fold(name).lower())

    first_clean, last_clean = clean(first), clean(last)
    if not first_clean or not last_clean:
        raise PermanentError(f"'{first} {last}' has no letters usable in an e-mail address")
    try:
        local = pattern.format(first=first_clean, last=last_clean, f=first_clean[0], l=last_clean[0])
    except (KeyError, IndexError, ValueError) as exc:
        raise PermanentError(f"the client's UPN pattern '{pattern}' is not valid: {exc}") from exc
    local = _LOCAL_CHARS.sub("", local.lower())
    local = re.sub(r"\.{2,}", ".", local).strip(".")
    if not local or len(local) > MAX_LOCAL_PART:
        raise PermanentError(f"the UPN pattern gives an unusable name '{local}' for {first} {last}")
    return local


def role_groups(template: OnboardingTemplate, role: str | None) -> list[str]:
    """Everyone's groups, then those of each role keyword whose words all appear in the new user's
    role ("sales" matches "Sales Executive"; "it" does not match "Recruiting")."""
    names = list(template.groups)
    role_words = set(_WORDS.findall((role or "").lower()))
    for keyword, groups in template.groups_by_role.items():
        keyword_words = set(_WORDS.findall(keyword.lower()))
        if keyword_words and role_words and keyword_words <= role_words:
            names.extend(groups)
    return list(dict.fromkeys(names))  # de-duplicated, in order


async def plan(ctx: PlaybookContext) -> list[Step]:
    template = ctx.template
    if template is None:
        raise PermanentError("the client has no onboarding template (UPN pattern, domain, licence, groups)")
    if not ctx.request.new_user_name:
        raise PermanentError("the ticket does not give the new user's name")
    display_name = " ".join(ctx.request.new_user_name.split())
    first, last = split_name(display_name)
    local = upn_local_part(template.upn_pattern, first, last)
    domain = template.domain.lower()
    if domain not in await ctx.directory.verified_domains():
        raise PermanentError(f"'{domain}' is not a verified domain of the tenant: accounts cannot be created on it")
    upn = f"{local}@{domain}"
    existing = await ctx.directory.find_user_by_upn(upn)
    # The id is filled in when the account is found or created (steps run after the create step).
    account = DirectoryUser(id=existing.id if existing else "", display_name=display_name, user_principal_name=upn)
    new = NewUser(
        display_name=display_name,
        given_name=first,
        surname=last,
        user_principal_name=upn,
        mail_nickname=local,
        usage_location=template.usage_location,
        job_title=ctx.request.new_user_role,
    )
    ctx.facts.update(new_upn=upn, manager=ctx.requester.user_principal_name, role=ctx.request.new_user_role)
    steps = [_create_step(ctx, account, new), _manager_step(ctx, account)]
    licence = await _licence_steps(ctx, account, template)
    groups, missing = await _groups(ctx, role_groups(template, ctx.request.new_user_role))
    joins = {g.id: membership_step(ctx, g, account, remove=False) for g in groups}
    in_graph = [joins[g.id] for g in groups if not g.exchange_mastered]
    # A new account's mailbox appears only after it is licensed: Exchange lists come after the licence.
    in_exchange = [_mailbox_pending(joins[g.id]) for g in groups if g.exchange_mastered]
    blocked = [_blocked(account, name, problem) for name, problem in missing]
    # Steps that cannot succeed go last (a failure stops the steps after it), after everything that can.
    return [*steps, *licence[:-1], *in_graph, *licence[-1:], *in_exchange, *blocked]


def _create_step(ctx: PlaybookContext, account: DirectoryUser, new: NewUser) -> Step:
    async def exists() -> bool:
        found = await ctx.directory.find_user_by_upn(new.user_principal_name)
        if found is not None:
            account.id = found.id
        return found is not None

    async def apply() -> WriteReceipt:
        password = temporary_password()
        # Delivered first: should the create's answer be lost, the account exists *and* its password
        # reached the manager. A retry makes a new password and link (the new link replaces the old).
        await ctx.deliver_credential(password, PASSWORD_PURPOSE)
        return await ctx.directory.create_user(new, password)

    return Step(
        "create-user",
        f"Create the account {new.user_principal_name} ({new.display_name}); temporary password to "
        f"{ctx.requester.display_name} via a one-time link",
        exists,
        apply,
        conflict_if_present=(
            f"an account {new.user_principal_name} already exists and was not created for this ticket: "
            "someone else has that name, so a technician must choose another"
        ),
    )


def _manager_step(ctx: PlaybookContext, account: DirectoryUser) -> Step:
    manager = ctx.requester

    async def has_manager() -> bool:
        return await ctx.directory.manager_id(_known(account)) == manager.id

    async def apply() -> WriteReceipt:
        return await ctx.directory.set_manager(_known(account), manager.id)

    return Step("set-manager", f"Set {account.display_name}'s manager to {manager.display_name}", has_manager, apply)


def _known(account: DirectoryUser) -> str:
    if not account.id:
        raise PermanentError(f"the new account {account.user_principal_name} is not visible in the directory")
    return account.id


async def _licence_steps(ctx: PlaybookContext, account: DirectoryUser, template: OnboardingTemplate) -> list[Step]:
    """[usage location, licence], or [] without a licence in the template; the licence step goes last."""
    if not template.license_sku:
        return []
    part = template.license_sku.upper()
    name = f"Assign {product_name(part)} to {account.display_name}"
    sku = next((s for s in await ctx.directory.subscribed_skus() if s.part_number.upper() == part), None)
    ctx.facts["licence"] = part
    if sku is None:
        return [blocked_step("assign-licences", name, f"the tenant has no subscription for {product_name(part)}")]
    ctx.facts["free_seats"] = sku.free_units
    location = usage_location_step(ctx, account, template.usage_location)
    return [location, _seat_checked(ctx, assign_step(ctx, account, [sku], []), sku)]


def _seat_checked(ctx: PlaybookContext, step: Step, sku: Sku) -> Step:
    """Seats are counted when the licence is about to be assigned, not only when planning."""
    assign = step.apply

    async def apply() -> WriteReceipt | None:
        current = next((s for s in await ctx.directory.subscribed_skus() if s.sku_id == sku.sku_id), sku)
        require_free_seat(current)
        return await assign()

    step.apply = apply
    return step


async def _groups(ctx: PlaybookContext, names: list[str]) -> tuple[list[Group], list[tuple[str, str]]]:
    """The template's groups TierOne may join, and (name, why not) for the others."""
    usable: list[Group] = []
    missing: list[tuple[str, str]] = []
    for name in names:
        found = await ctx.directory.find_groups(name)
        if len(found) != 1:
            missing.append((name, "no such group exists" if not found else f"{len(found)} groups have that name"))
        elif refusal(found[0]):
            missing.append((name, refusal(found[0]) or ""))
        else:
            usable.append(found[0])
    ctx.facts["groups"] = names
    return usable, missing


def _blocked(account: DirectoryUser, name: str, problem: str) -> Step:
    return blocked_step(f"add-group-{name.lower()}", f"Add {account.display_name} to '{name}'", problem)


def _mailbox_pending(step: Step) -> Step:
    """Exchange does not know a brand-new account until its mailbox is provisioned (minutes after
    licensing): "not found" then means "not yet", so the ticket is retried later instead of failed."""
    check, apply = step.check, step.apply

    async def patiently_check() -> bool:
        try:
            return await check()
        except ExchangeError as exc:
            if exc.not_found:
                raise TransientError("the new account's mailbox is not provisioned yet") from exc
            raise

    async def patiently_apply() -> WriteReceipt | None:
        try:
            return await apply()
        except ExchangeError as exc:
            if exc.not_found:
                raise TransientError("the new account's mailbox is not provisioned yet") from exc
            raise

    step.check, step.apply = patiently_check, patiently_apply
    return step


def customer_message(ctx: PlaybookContext, result: PlaybookResult, link_url: str | None) -> str:
    upn = ctx.facts.get("new_upn", "the new account")
    name = ctx.request.new_user_name or upn
    if not result.succeeded("create-user"):
        return f"We could not create the account for {name} automatically; a technician will follow up."
    lines = [f"The account for {name} is ready: {upn}."]
    if link_url:
        lines.append(
            f"Open this one-time link to see the temporary password:\n{link_url}\n"
            "Please pass it on in person or by phone. It works once; the new user must choose their own "
            "password at first sign-in."
        )
    licence = result.status_of("assign-licences")
    if licence in (StepStatus.FAILED, StepStatus.NOT_RUN):
        lines.append("The account has no Microsoft 365 licence yet; a technician will follow up on that.")
    if not result.completed:
        unfinished = [s.description for s in result.steps if s.status in (StepStatus.FAILED, StepStatus.NOT_RUN)]
        lines.append("Still to be done by a technician: " + "; ".join(unfinished) + ".")
    return "\n".join(lines)

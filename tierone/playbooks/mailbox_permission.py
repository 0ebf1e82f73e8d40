"""Shared-mailbox access: Full Access, Send As and Send on Behalf, granted or removed through the
Exchange Online admin endpoint (none of the three exists in Graph, graph.md §6).

Only *shared* mailboxes are handled: access to a person's own mailbox is a privacy decision for
the owner or their manager, so it goes to a human."""

from __future__ import annotations

from collections.abc import Awaitable, Callable

from identity_integrations.exchange import ExchangeAdmin, Mailbox
from identity_integrations.models import DirectoryUser, WriteReceipt
from tierone.errors import PermanentError
from tierone.playbooks.account_unlock import require_target
from tierone.playbooks.base import PlaybookResult, Step
from tierone.playbooks.context import PlaybookContext
from tierone.playbooks.group_membership import user_names

RIGHTS = ("FullAccess", "SendAs", "SendOnBehalf")  # canonical names for PlaybookRequest.rights
RIGHT_NAMES = {"FullAccess": "Full Access", "SendAs": "Send As", "SendOnBehalf": "Send on Behalf"}
_ALIASES = {
    "fullaccess": "FullAccess",
    "full": "FullAccess",
    "sendas": "SendAs",
    "sendonbehalf": "SendOnBehalf",
    "sendonbehalfof": "SendOnBehalf",
    "onbehalf": "SendOnBehalf",
}


def normalise_rights(rights: list[str]) -> list[str]:
    """The ticket's rights in canonical names; Full Access when none is named (what "access" means).
    Anything else (e.g. "read-only") is not something these three rights express: a human decides."""
    found: list[str] = []
    for right in rights:
        key = "".join(ch for ch in right.lower() if ch.isalpha())
        canonical = _ALIASES.get(key)
        if canonical is None:
            raise PermanentError(f"'{right}' is not a mailbox permission TierOne grants")
        if canonical not in found:
            found.append(canonical)
    return found or ["FullAccess"]


def require_exchange(ctx: PlaybookContext, what: str = "mailbox permissions are") -> ExchangeAdmin:
    if ctx.exchange is None:
        raise PermanentError(f"{what} managed in Exchange Online, which is not connected for this client")
    exchange: ExchangeAdmin = ctx.exchange
    return exchange


def permission_step(
    exchange: ExchangeAdmin, mailbox: Mailbox, user: DirectoryUser, right: str, *, remove: bool, automap: bool = True
) -> Step:
    """Grant or remove one right on one mailbox; the holder list is read back either way."""
    identity = mailbox.primary_smtp_address or mailbox.identity
    member = user.user_principal_name
    holders, grant, revoke = _operations(exchange, right, automap)

    async def desired() -> bool:
        held = any(name.strip().lower() in user_names(user) for name in await holders(identity))
        return held != remove

    async def apply() -> WriteReceipt:
        return await (revoke if remove else grant)(identity, member)

    label = RIGHT_NAMES[right]
    description = (
        f"Remove {user.display_name}'s {label} on {identity}"
        if remove
        else f"Give {user.display_name} {label} on {identity}"
    )
    return Step(step_name(right, identity, remove), description, desired, apply)


def step_name(right: str, mailbox: str, remove: bool) -> str:
    return f"{'remove' if remove else 'grant'}-{right.lower()}-{mailbox.lower()}"


Operation = Callable[[str, str], Awaitable[WriteReceipt]]


def _operations(
    exchange: ExchangeAdmin, right: str, automap: bool
) -> tuple[Callable[[str], Awaitable[list[str]]], Operation, Operation]:
    if right == "FullAccess":

        async def grant_full(mailbox: str, user: str) -> WriteReceipt:
            return await exchange.grant_full_access(mailbox, user, automap)

        return exchange.full_access_holders, grant_full, exchange.remove_full_access
    if right == "SendAs":
        return exchange.send_as_holders, exchange.grant_send_as, exchange.remove_send_as
    return exchange.send_on_behalf, exchange.grant_send_on_behalf, exchange.remove_send_on_behalf


async def plan(ctx: PlaybookContext) -> list[Step]:
    target = require_target(ctx)
    exchange = require_exchange(ctx)
    if not ctx.request.object:
        raise PermanentError("the ticket does not say which mailbox")
    rights = normalise_rights(ctx.request.rights)
    mailbox = await exchange.mailbox(ctx.request.object)
    if mailbox is None:
        raise PermanentError(f"no mailbox '{ctx.request.object}' exists in Exchange Online")
    ctx.facts.update(
        mailbox=mailbox.primary_smtp_address or mailbox.identity, mailbox_type=mailbox.recipient_type, rights=rights
    )
    if not mailbox.is_shared:
        raise PermanentError(
            f"{mailbox.primary_smtp_address or mailbox.identity} is a personal mailbox ({mailbox.recipient_type}), "
            "not a shared one: access to it needs the owner's or their manager's approval"
        )
    if mailbox.names & user_names(target):
        raise PermanentError("the user asked for permissions on their own mailbox")
    return [permission_step(exchange, mailbox, target, right, remove=ctx.request.remove) for right in rights]


def customer_message(ctx: PlaybookContext, result: PlaybookResult, link_url: str | None) -> str:
    mailbox = str(ctx.facts.get("mailbox", ctx.request.object or "the mailbox"))
    who = ctx.target.display_name if ctx.target else "The user"
    rights: list[str] = ctx.facts.get("rights", [])
    done = [RIGHT_NAMES[r] for r in rights if result.succeeded(step_name(r, mailbox, ctx.request.remove))]
    missing = [RIGHT_NAMES[r] for r in rights if RIGHT_NAMES[r] not in done]
    lines: list[str] = []
    if done and ctx.request.remove:
        lines.append(f"{who} no longer has {_join(done)} on {mailbox}.")
    elif done:
        lines.append(f"{who} now has {_join(done)} on {mailbox}.")
        if "Full Access" in done:
            lines.append("The mailbox appears in Outlook by itself within about an hour (restart Outlook if not).")
    if missing:
        lines.append(f"We could not complete {_join(missing)} automatically; a technician will follow up.")
    return "\n".join(lines)


def _join(items: list[str]) -> str:
    return items[0] if len(items) == 1 else ", ".join(items[:-1]) + " and " + items[-1]

"""Requester verification: who asked, for whom, and may they ask for this?

The requester is the PSA contact's e-mail address resolved to a user of the mapped tenant (mail,
UPN or any proxy address); the ticket's text never names the requester. The target is the user
the ticket names (by e-mail or display name), else the requester themself. A requester may ask
for the target themself, as the target's manager of record in Entra ID, or as a contact the
client authorised for that intent (tierone.client_policy); anyone else is escalated with the
reason. Contact details written in the ticket are never used to reach anyone: out-of-band
confirmation goes only to channels registered on the account before the ticket existed."""

from __future__ import annotations

from dataclasses import dataclass

from identity_integrations.models import Directory, DirectoryRole, DirectoryUser
from tierone.client_policy import ClientPolicy, RequesterCheck
from tierone.triage import TriageResult

# Actions that hand over or reset a credential: confirmed out of band before they run.
CREDENTIAL_INTENTS = frozenset({"password_reset", "mfa_reset"})


@dataclass
class Parties:
    requester: DirectoryUser | None
    target: DirectoryUser | None
    target_roles: list[DirectoryRole]
    requester_is_manager: bool
    check: RequesterCheck

    @property
    def is_self(self) -> bool:
        return bool(self.requester and self.target and self.requester.id == self.target.id)

    def describe(self, intent: str) -> str:
        """The evidence line: how the requester was verified (or why not)."""
        if intent == "onboarding" and self.requester:
            return "requester will be the new user's manager (the PSA contact's e-mail matched a directory user)"
        if self.is_self:
            return "requester is the target, matched through the PSA contact's e-mail (rule V03-self)"
        return f"{self.check.reason} (rule {self.check.rule})"


async def resolve_parties(
    directory: Directory,
    client: ClientPolicy,
    triage: TriageResult,
    requester_email: str | None,
) -> Parties:
    requester = await directory.find_user_by_email(requester_email) if requester_email else None
    target: DirectoryUser | None = None
    if triage.intent == "onboarding":
        target = None  # the account does not exist yet; the requester becomes its manager
    elif triage.target_emails:
        target = await directory.find_user_by_email(triage.target_emails[0])
    elif triage.target_names:
        target = await directory.find_user_by_display_name(triage.target_names[0])
    elif not triage.names_someone_else:
        target = requester
    roles = await directory.directory_roles(target.id) if target else []
    is_manager = bool(
        target and requester and target.id != requester.id and await directory.manager_id(target.id) == requester.id
    )
    check = client.check_requester(triage.intent, requester=requester, target=target, requester_is_manager=is_manager)
    return Parties(requester, target, roles, is_manager, check)


@dataclass(frozen=True)
class ConfirmationChannel:
    address: str
    role: str  # who reads that mailbox, for the notes and the page


async def confirmation_channel(directory: Directory, parties: Parties) -> ConfirmationChannel | None:
    """Where to confirm a credential action: an address registered on the account before the ticket.

    The target asking for themself (they may have lost access to their own mailbox, or an attacker
    may hold it): their alternate e-mail on record, else their manager's mailbox. A manager or an
    authorised contact asking: their own mailbox, which proves the request came from them and not
    from a forged sender on the ticket."""
    requester, target = parties.requester, parties.target
    if requester is None or target is None:
        return None
    if parties.is_self:
        if target.other_mails:
            return ConfirmationChannel(target.other_mails[0], "the user's alternate e-mail on record")
        manager_id = await directory.manager_id(target.id)
        if manager_id:
            manager = await directory.get_user(manager_id)
            if manager.mail and manager.account_enabled:
                return ConfirmationChannel(manager.mail, "the user's manager of record")
        return None
    if requester.mail and requester.account_enabled:
        role = "the user's manager of record" if parties.requester_is_manager else "the authorised contact who asked"
        return ConfirmationChannel(requester.mail, role)
    return None

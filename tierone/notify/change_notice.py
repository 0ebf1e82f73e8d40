"""The notice after a credential change: the account's owner hears of it on every channel registered
before the ticket (their alternate e-mail addresses, their manager's mailbox), so that a reset they
did not ask for is noticed by someone who can object (NIST SP 800-63B: every recovery triggers a
notification; security.md §4.5 rule 5). It carries no credential and no link, only what happened,
when, on which ticket, and what to do if it was not expected."""

from __future__ import annotations

import html
from datetime import datetime

from identity_integrations.models import DirectoryUser

WHAT = {
    "password_reset": "the password was reset (a new password must be chosen at the next sign-in)",
    "mfa_reset": "the sign-in methods (MFA) were reset and a one-time Temporary Access Pass was issued",
}


def build_change_notice(
    intent: str, target: DirectoryUser, requester: DirectoryUser | None, ticket_ref: str, at: datetime
) -> tuple[str, str]:
    """(subject, HTML body); every value from the directory or the ticket is escaped."""
    e = html.escape
    who = requester.display_name or requester.user_principal_name if requester else "someone"
    body = (
        "<html><body style='font-family:Segoe UI,sans-serif'>"
        f"<p>For the account <b>{e(target.display_name)}</b> ({e(target.user_principal_name)}), "
        f"{e(WHAT.get(intent, intent))} by IT support at {at:%Y-%m-%d %H:%M} UTC, "
        f"as asked by {e(who)} (ticket {e(ticket_ref)}).</p>"
        "<p><b>If this was not expected, contact IT support straight away</b>: someone may be trying to take "
        "over the account.</p>"
        "<p style='color:#555'>This message went to the addresses registered for the account before the "
        "request. It contains no password or code, and IT support will never ask you for one.</p>"
        "</body></html>"
    )
    return f"Security notice: a change to the account {target.user_principal_name}", body


def notice_recipients(target: DirectoryUser, manager: DirectoryUser | None) -> list[str]:
    """The addresses registered before the ticket: the owner's alternate addresses and the manager's mailbox."""
    found: dict[str, None] = {}
    for address in [*target.other_mails, manager.mail if manager and manager.account_enabled else None]:
        if address and "@" in address:
            found.setdefault(address.strip().lower(), None)
    return list(found)

"""The people the sandbox plays, through the same links and pages real people use.

- A user (or their manager) answers an out-of-band confirmation: the mail TierOne sent from the
  MSP's help-desk mailbox is read from the Graph sandbox's outbox, the link opened (GET), and the
  answer posted with the page's own form token.
- An MSP technician decides an approval: the link is taken from the ticket's internal note, the
  page opened signed in (App Service Authentication's principal header, which the platform sets in
  Azure and which the sandbox sets here) and the decision posted with the page's form token.
- Time passes: the housekeeping sweep runs with its clock moved past a hold's expiry, as the
  timer would once the hold's time is up."""

from __future__ import annotations

import asyncio
import base64
import json
import re
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx

from sandbox.psa_views import TicketRef, view
from sandbox.stack import LocalStack

_CONFIRM_LINK = re.compile(r"https?://[^\s<\"']+/api/confirm/[A-Za-z0-9_-]+")
_APPROVAL_LINK = re.compile(r"https?://[^\s<\"')]+/api/approvals/[A-Za-z0-9_-]+")
_CSRF = re.compile(r"name=csrf value='([^']+)'")


class NoSuchHold(AssertionError):
    """The ticket has no confirmation mail or approval link to act on."""


def form_token(page: str) -> str | None:
    """The CSRF token of a confirm or approval page's form (None when the page offers no form)."""
    match = _CSRF.search(page)
    return match.group(1) if match else None


def _ticket_ref(ref: TicketRef) -> str:
    return f"{ref.psa}:{ref.id}"


def confirmation_mails(stack: LocalStack, ref: TicketRef) -> list[dict[str, Any]]:
    """Every confirmation mail TierOne sent for this ticket, oldest first."""
    wanted = f"(ticket {_ticket_ref(ref)})"
    return [m for m in stack.graph.sent_mail(stack.msp_tenant_id) if wanted in str(m.get("subject"))]


def confirmation_mail(stack: LocalStack, ref: TicketRef) -> dict[str, Any]:
    """The latest confirmation mail TierOne sent for this ticket."""
    mails = confirmation_mails(stack, ref)
    if not mails:
        raise NoSuchHold(f"no confirmation mail for {_ticket_ref(ref)}")
    return mails[-1]


def confirmation_link(stack: LocalStack, ref: TicketRef) -> str:
    match = _CONFIRM_LINK.search(str(confirmation_mail(stack, ref)["content"]))
    if match is None:
        raise NoSuchHold(f"the confirmation mail for {_ticket_ref(ref)} has no link")
    return match.group(0)


def _use_the_form(link: str, decision: str, what: str, headers: dict[str, str] | None = None) -> httpx.Response:
    """Open a page as a browser would (GET), then submit its form with one of its buttons."""
    with httpx.Client(timeout=10, headers=headers or {}) as http:
        page = http.get(link)
        token = form_token(page.text)
        if token is None:
            raise NoSuchHold(f"the {what} page offers no form ({page.status_code})")
        return http.post(link, data={"csrf": token, "decision": decision})


def answer_confirmation(stack: LocalStack, ref: TicketRef, *, yes: bool = True) -> httpx.Response:
    """Open the confirmation link from the mailbox and answer it."""
    link = confirmation_link(stack, ref)
    return _use_the_form(link, "yes" if yes else "no", f"confirm page for {_ticket_ref(ref)}")


def approval_link(stack: LocalStack, ref: TicketRef) -> str:
    for note in reversed(view(stack, ref).notes_by_tierone(internal=True)):
        match = _APPROVAL_LINK.search(note)
        if match:
            return match.group(0)
    raise NoSuchHold(f"no approval link on {_ticket_ref(ref)}")


def signed_in(stack: LocalStack, who: str) -> dict[str, str]:
    """The headers App Service Authentication adds for a signed-in user of the MSP's tenant."""
    user = stack.msp_staff[who]
    oid, upn = str(user["id"]), str(user["userPrincipalName"])
    claims = [
        {"typ": "http://schemas.microsoft.com/identity/claims/objectidentifier", "val": oid},
        {"typ": "preferred_username", "val": upn},
    ]
    principal = base64.b64encode(json.dumps({"auth_typ": "aad", "claims": claims}).encode()).decode()
    return {"X-MS-CLIENT-PRINCIPAL": principal, "X-MS-CLIENT-PRINCIPAL-ID": oid, "X-MS-CLIENT-PRINCIPAL-NAME": upn}


def decide_approval(stack: LocalStack, ref: TicketRef, *, approve: bool = True, who: str = "sam") -> httpx.Response:
    """A technician opens the approval link, signed in, and approves or denies."""
    link = approval_link(stack, ref)
    decision = "approve" if approve else "deny"
    return _use_the_form(link, decision, f"approval page for {_ticket_ref(ref)}", signed_in(stack, who))


def let_time_pass(stack: LocalStack, minutes: float) -> Any:
    """Run the housekeeping sweep with its clock this much later (reminders on the next channel)."""
    from tierone.holds import sweeper_from
    from tierone.settings import Settings

    return asyncio.run(sweeper_from(Settings.from_env()).sweep(datetime.now(UTC) + timedelta(minutes=minutes)))


def click_in_slack(
    stack: LocalStack,
    ref: TicketRef,
    *,
    approve: bool = True,
    slack_user: str = "U0SAMRIVERA",
    slack_team: str | None = None,
    forge: bool = False,
) -> httpx.Response:
    """An approver clicks Approve or Deny on the Slack message TierOne posted for this ticket; Slack
    signs the callback (or, with `forge`, someone else does)."""
    from tierone.notify.slack import APPROVE_ACTION, DENY_ACTION

    assert stack.host is not None
    approval_id = str(_row(stack, ref).get("ApprovalId") or "")
    if not any(approval_id and approval_id in json.dumps(m) for m in stack.slack.messages):
        raise NoSuchHold(f"no Slack message for {_ticket_ref(ref)}")
    return stack.slack.send_interaction(
        f"{stack.host.api_url}/slack/interactions",
        approval_id,
        APPROVE_ACTION if approve else DENY_ACTION,
        slack_user,
        team_id=slack_team,
        forge=forge,
    )


def _row(stack: LocalStack, ref: TicketRef) -> dict[str, Any]:
    return next(
        (r for r in stack.table_rows() if r.get("PartitionKey") == ref.psa and r.get("RowKey") == str(ref.id)), {}
    )


def let_hold_expire(stack: LocalStack, ref: TicketRef) -> Any:
    """Run the housekeeping sweep with its clock just past this ticket's hold expiry."""
    from tierone.holds import sweeper_from
    from tierone.settings import Settings

    row = _row(stack, ref)
    if not isinstance(row.get("HoldUntil"), datetime):
        raise NoSuchHold(f"{_ticket_ref(ref)} is not waiting on anything")
    later = row["HoldUntil"] + timedelta(minutes=1)
    return asyncio.run(sweeper_from(Settings.from_env()).sweep(later))

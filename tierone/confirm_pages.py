"""The confirmation page: GET shows the request and two buttons, POST records the answer.

Nobody signs in here: the recipient is whoever reads the registered mailbox, and the link's token is
what they hold. GET (and HEAD) never change anything, because mail and chat link scanners fetch
links — an answer is only ever a POST from the page's own form.

The form carries a CSRF token: an HMAC of the confirmation id under a key derived from
TIERONE_SECRET_ENCRYPTION_KEY (its own HKDF purpose, so it is useless on the approval page and vice
versa). It is stateless and bound to this one confirmation, so a POST that did not come from this
page — a cross-site form, a token copied from another confirmation's page — is refused without
touching the row. (Whoever can load the page can
read its token; the link itself is the bearer credential, and it went only to the registered address.)"""

from __future__ import annotations

import html
import logging
import re
from urllib.parse import parse_qs

from tierone.confirmations import (
    AlreadyAnswered,
    Confirmation,
    ConfirmationExpired,
    ConfirmationRefused,
    Confirmations,
    ConfirmationState,
    confirmations_from,
)
from tierone.pages import DECISION_STYLE, Page, form_token, form_token_valid, layout, message
from tierone.settings import Settings

log = logging.getLogger("tierone.confirm_pages")

_TOKEN = re.compile(r"^[A-Za-z0-9_-]{20,100}$")
_CSRF_INFO = b"tierone-confirm-csrf-v1"
YES = "yes"
NO = "no"


# --- CSRF


def csrf_token(settings: Settings, confirmation_id: str) -> str:
    return form_token(settings, _CSRF_INFO, confirmation_id)


def csrf_valid(settings: Settings, confirmation_id: str, token: str) -> bool:
    return form_token_valid(settings, _CSRF_INFO, token, confirmation_id)


# --- the page


def _layout(title: str, body: str) -> str:
    return layout(title, body, style=DECISION_STYLE)


def _message(status: int, title: str, text: str) -> Page:
    return message(status, title, text, style=DECISION_STYLE)


NOT_FOUND = _message(404, "Not found", "There is nothing here. Check that you opened the whole link from the mail.")
TITLE = "Did you ask IT support for this?"


def _details(c: Confirmation) -> str:
    e = html.escape
    rows = [
        ("Ticket", c.ticket_ref),
        ("Sent to", f"{c.masked_recipient} ({c.recipient_role})"),
        ("Expires", f"{c.expires_at:%Y-%m-%d %H:%M} UTC"),
    ]
    table = "".join(f"<tr><th>{e(k)}</th><td>{e(v)}</td></tr>" for k, v in rows)
    return f"<p>Someone asked IT support to do this:</p><p><b>{e(c.summary)}</b></p><table>{table}</table>"


def _request_page(c: Confirmation, settings: Settings) -> Page:
    if c.state is not ConfirmationState.PENDING or c.is_expired():
        # Shown, not acted on: an expired-but-pending row is left for answer() or the sweep to expire.
        state = {
            ConfirmationState.CONFIRMED: "was already confirmed",
            ConfirmationState.DECLINED: "was already declined; nobody will act on it",
        }.get(c.state, "has expired; nothing was changed")
        return Page(200, _layout(TITLE, f"{_details(c)}<p>This request <b>{html.escape(state)}</b>.</p>"))
    csrf = html.escape(csrf_token(settings, c.id), quote=True)
    form = (
        "<p>If you asked for this, or you have checked with the person concerned that they did, confirm it. "
        "If not, tell us — nothing changes until someone confirms.</p>"
        "<form method=post>"
        f"<input type=hidden name=csrf value='{csrf}'>"
        f"<button class=go type=submit name=decision value={YES}>Yes, I asked for this</button>"
        f"<button class=stop type=submit name=decision value={NO}>No, I did not ask</button></form>"
    )
    return Page(200, _layout(TITLE, _details(c) + form))


async def handle(
    method: str,
    token: str,
    body: bytes,
    settings: Settings,
    confirmations: Confirmations | None = None,
) -> tuple[Page, Confirmation | None]:
    """The page, and the answered Confirmation when this very request made the answer (so the caller
    resumes the ticket exactly once); None for every other outcome."""
    if not _TOKEN.match(token or ""):
        return NOT_FOUND, None
    confirmations = confirmations or confirmations_from(settings)
    confirmation = await confirmations.by_token(token)
    if confirmation is None:
        return NOT_FOUND, None
    if method.upper() != "POST":
        return _request_page(confirmation, settings), None  # GET and HEAD: show, never change

    form = parse_qs(body.decode("utf-8", "replace"))
    decision = (form.get("decision") or [""])[0]
    if not csrf_valid(settings, confirmation.id, (form.get("csrf") or [""])[0]) or decision not in (YES, NO):
        return _message(403, "Request not accepted", "Open the link from the mail again and use its buttons."), None
    try:
        answered = await confirmations.answer(token, decision == YES)
    except ConfirmationExpired as exc:
        return _message(exc.status, "This link has expired", str(exc)), None
    except AlreadyAnswered as exc:
        return _message(exc.status, "Already answered", str(exc)), None
    except ConfirmationRefused as exc:
        return _message(exc.status, "Not found", str(exc)), None
    if answered.state is ConfirmationState.CONFIRMED:
        text = "IT support will go ahead with this request. You can close this page."
        title = "Thank you — IT support will go ahead"
    else:
        text = (
            "Nobody will act on this request, and IT support has been told that you did not ask for it. "
            "You can close this page."
        )
        title = "Thank you — nobody will act on this request; IT support has been told"
    return Page(200, _layout(title, f"{_details(answered)}<p>{html.escape(text)}</p>")), answered

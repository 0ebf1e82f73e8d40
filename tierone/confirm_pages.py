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

import base64
import hashlib
import hmac
import html
import logging
import re
from urllib.parse import parse_qs

from tierone.approval_pages import Page  # same security headers: no-store, no-referrer, CSP, frame deny
from tierone.confirmations import (
    AlreadyAnswered,
    Confirmation,
    ConfirmationExpired,
    ConfirmationRefused,
    Confirmations,
    ConfirmationState,
    confirmations_from,
)
from tierone.errors import ConfigError
from tierone.settings import Settings

log = logging.getLogger("tierone.confirm_pages")

_TOKEN = re.compile(r"^[A-Za-z0-9_-]{20,100}$")
_CSRF_INFO = b"tierone-confirm-csrf-v1"
YES = "yes"
NO = "no"


# --- CSRF


def _csrf_key(settings: Settings) -> bytes:
    from cryptography.hazmat.primitives import hashes
    from cryptography.hazmat.primitives.kdf.hkdf import HKDF

    settings.require("secret_encryption_key")
    assert settings.secret_encryption_key is not None
    try:
        master = base64.b64decode(settings.secret_encryption_key.get_secret_value(), validate=True)
    except ValueError:
        raise ConfigError("TIERONE_SECRET_ENCRYPTION_KEY is not base64") from None
    return HKDF(algorithm=hashes.SHA256(), length=32, salt=None, info=_CSRF_INFO).derive(master)


def csrf_token(settings: Settings, confirmation_id: str) -> str:
    digest = hmac.new(_csrf_key(settings), confirmation_id.encode("utf-8"), hashlib.sha256).digest()
    return base64.urlsafe_b64encode(digest).decode("ascii").rstrip("=")


def csrf_valid(settings: Settings, confirmation_id: str, token: str) -> bool:
    return hmac.compare_digest(csrf_token(settings, confirmation_id), token or "")


# --- the page


def _layout(title: str, body: str) -> str:
    return (
        "<!doctype html><html lang=en><head><meta charset=utf-8>"
        "<meta name=viewport content='width=device-width, initial-scale=1'>"
        f"<title>{html.escape(title)}</title><style>"
        "body{font-family:system-ui,sans-serif;max-width:40rem;margin:3rem auto;padding:0 1rem;color:#1b1b1b}"
        "th{text-align:left;padding-right:1rem;vertical-align:top}"
        "button{font-size:1.05rem;padding:.55rem 1.3rem;border-radius:6px;border:0;color:#fff;margin:0 .6rem .6rem 0}"
        ".yes{background:#1a7f37}.no{background:#b42318}"
        f"</style></head><body><h1>{html.escape(title)}</h1>{body}</body></html>"
    )


def _message(status: int, title: str, text: str) -> Page:
    return Page(status, _layout(title, f"<p>{html.escape(text)}</p>"))


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
        f"<button class=yes type=submit name=decision value={YES}>Yes, I asked for this</button>"
        f"<button class=no type=submit name=decision value={NO}>No, I did not ask</button></form>"
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

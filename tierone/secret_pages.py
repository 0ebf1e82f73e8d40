"""HTML for the one-time credential page. GET never consumes the link (scanners fetch links)."""

from __future__ import annotations

import html
import logging
import re

from tierone.pages import Page, layout
from tierone.secret_links import LinkGone, SecretLinks
from tierone.settings import Settings

log = logging.getLogger("tierone.secret_pages")

_TOKEN = re.compile(r"^[A-Za-z0-9_-]{20,100}$")
_STYLE = (
    "button{font-size:1.1rem;padding:.6rem 1.4rem;background:#0b5cad}"
    "code{font-size:1.5rem;background:#f1f3f5;padding:.4rem .7rem;border-radius:6px;user-select:all}"
)


def _layout(title: str, body: str) -> str:
    return layout(title, body, style=_STYLE)


GONE = Page(
    410,
    _layout(
        "This link is no longer valid",
        "<p>It has already been used or it has expired. Ask your IT support for a new one.</p>",
    ),
)


async def handle(method: str, token: str, settings: Settings) -> Page:
    from tierone.storage import get_storage

    if not _TOKEN.match(token or ""):
        return Page(404, _layout("Not found", "<p>There is nothing here.</p>"))
    links = SecretLinks(get_storage().secrets, settings)
    method = method.upper()
    try:
        if method == "POST":
            secret = await links.reveal(token)
            return Page(
                200,
                _layout(
                    "Your temporary password",
                    f"<p><code>{html.escape(secret)}</code></p>"
                    "<p>Use it to sign in; you will be asked to choose a new password straight away. "
                    "This page will not show it again.</p>",
                ),
            )
        summary = await links.summary(token)
    except LinkGone:
        return GONE
    return Page(
        200,
        _layout(
            "A one-time message from your IT support",
            f"<p>This link holds your {html.escape(summary.purpose)}. It can be shown <b>once</b> and "
            f"expires at {summary.expires_at:%Y-%m-%d %H:%M} UTC.</p>"
            "<form method=post><button type=submit>Show it now</button></form>",
        ),
    )

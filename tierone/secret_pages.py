"""HTML for the one-time credential page. GET never consumes the link (scanners fetch links)."""

from __future__ import annotations

import html
import logging
import re
from dataclasses import dataclass, field

from tierone.secret_links import LinkGone, SecretLinks
from tierone.settings import Settings

log = logging.getLogger("tierone.secret_pages")

_TOKEN = re.compile(r"^[A-Za-z0-9_-]{20,100}$")
_HEADERS = {
    "Cache-Control": "no-store",
    "Pragma": "no-cache",
    "Referrer-Policy": "no-referrer",
    "X-Robots-Tag": "noindex, nofollow",
    "X-Content-Type-Options": "nosniff",
    "Content-Security-Policy": "default-src 'none'; style-src 'unsafe-inline'; form-action 'self'",
}


@dataclass(frozen=True)
class Page:
    status: int
    html: str
    headers: dict[str, str] = field(default_factory=lambda: dict(_HEADERS))


def _layout(title: str, body: str) -> str:
    return (
        "<!doctype html><html lang=en><head><meta charset=utf-8>"
        "<meta name=viewport content='width=device-width, initial-scale=1'>"
        f"<title>{html.escape(title)}</title><style>"
        "body{font-family:system-ui,sans-serif;max-width:34rem;margin:4rem auto;padding:0 1rem;color:#1b1b1b}"
        "button{font-size:1.1rem;padding:.6rem 1.4rem;border-radius:6px;border:0;background:#0b5cad;color:#fff}"
        "code{font-size:1.5rem;background:#f1f3f5;padding:.4rem .7rem;border-radius:6px;user-select:all}"
        f"</style></head><body><h1>{html.escape(title)}</h1>{body}</body></html>"
    )


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

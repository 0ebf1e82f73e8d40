"""What TierOne's few HTML pages share: the response, its security headers, the layout, and the
form tokens that bind a POST to the page that showed the form.

Every page is small, server-rendered and script-free: the headers forbid caching (a credential or
a decision must not linger in a proxy), referrers (the link is the credential), indexing, framing
(no clickjacking of a button) and any resource but inline styles."""

from __future__ import annotations

import base64
import hashlib
import hmac
import html
from dataclasses import dataclass, field

from tierone.errors import ConfigError
from tierone.settings import Settings

SECURITY_HEADERS = {
    "Cache-Control": "no-store",
    "Pragma": "no-cache",
    "Referrer-Policy": "no-referrer",
    "X-Robots-Tag": "noindex, nofollow",
    "X-Content-Type-Options": "nosniff",
    "X-Frame-Options": "DENY",
    "Content-Security-Policy": "default-src 'none'; style-src 'unsafe-inline'; form-action 'self'; "
    "frame-ancestors 'none'",
}

_BASE_STYLE = (
    "body{font-family:system-ui,sans-serif;max-width:40rem;margin:3rem auto;padding:0 1rem;color:#1b1b1b}"
    "th{text-align:left;padding-right:1rem;vertical-align:top}"
    "button{font-size:1.05rem;padding:.55rem 1.3rem;border-radius:6px;border:0;color:#fff;margin:0 .6rem .6rem 0}"
)
# Two-button decision forms (approve/deny, yes/no) colour their buttons with these classes.
DECISION_STYLE = ".go{background:#1a7f37}.stop{background:#b42318}"


@dataclass(frozen=True)
class Page:
    status: int
    html: str
    headers: dict[str, str] = field(default_factory=lambda: dict(SECURITY_HEADERS))


def layout(title: str, body: str, *, style: str = "") -> str:
    """A whole HTML document; `body` is already-escaped HTML, the title is escaped here."""
    return (
        "<!doctype html><html lang=en><head><meta charset=utf-8>"
        "<meta name=viewport content='width=device-width, initial-scale=1'>"
        f"<title>{html.escape(title)}</title><style>{_BASE_STYLE}{style}</style></head>"
        f"<body><h1>{html.escape(title)}</h1>{body}</body></html>"
    )


def message(status: int, title: str, text: str, *, style: str = "") -> Page:
    return Page(status, layout(title, f"<p>{html.escape(text)}</p>", style=style))


def _form_key(settings: Settings, purpose: bytes) -> bytes:
    from cryptography.hazmat.primitives import hashes
    from cryptography.hazmat.primitives.kdf.hkdf import HKDF

    settings.require("secret_encryption_key")
    assert settings.secret_encryption_key is not None
    try:
        master = base64.b64decode(settings.secret_encryption_key.get_secret_value(), validate=True)
    except ValueError:
        raise ConfigError("TIERONE_SECRET_ENCRYPTION_KEY is not base64") from None
    return HKDF(algorithm=hashes.SHA256(), length=32, salt=None, info=purpose).derive(master)


def form_token(settings: Settings, purpose: bytes, *bound_to: str) -> str:
    """A stateless CSRF token: an HMAC of what the form is bound to, under a key of its own purpose
    (so a token of one page is useless on another)."""
    digest = hmac.new(_form_key(settings, purpose), "|".join(bound_to).encode("utf-8"), hashlib.sha256).digest()
    return base64.urlsafe_b64encode(digest).decode("ascii").rstrip("=")


def form_token_valid(settings: Settings, purpose: bytes, token: str, *bound_to: str) -> bool:
    return hmac.compare_digest(form_token(settings, purpose, *bound_to), token or "")

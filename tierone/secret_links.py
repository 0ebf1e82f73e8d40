"""One-time, expiring links for credentials (temporary passwords, later TAPs).

The link carries a 256-bit random token; the table keeps only the token's SHA-256 as the row
key and the secret encrypted with AES-GCM under a key derived from the deployment's master key
(a Key Vault secret). Opening the link (GET) shows a button and changes nothing, because mail
and chat link scanners fetch links; the POST from that page reveals the secret and deletes the
row with an ETag condition, so the secret is revealed at most once."""

from __future__ import annotations

import base64
import hashlib
import logging
import os
import secrets
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from tierone.errors import ConfigError
from tierone.settings import Settings
from tierone.storage import ConcurrencyConflict, Table

log = logging.getLogger("tierone.secret_links")

PARTITION = "secret"


def token_hash(token: str) -> str:
    return hashlib.sha256(token.encode("ascii", "replace")).hexdigest()


def new_master_key() -> str:
    """A fresh master key in the form TIERONE_SECRET_ENCRYPTION_KEY expects (base64 of 32 bytes)."""
    return base64.b64encode(os.urandom(32)).decode("ascii")


class SecretCipher:
    """AES-256-GCM with a key derived from the master key; the row key is bound as associated data."""

    def __init__(self, master_key_b64: str, purpose: bytes = b"tierone-secret-links-v1") -> None:
        from cryptography.hazmat.primitives import hashes
        from cryptography.hazmat.primitives.kdf.hkdf import HKDF

        try:
            master = base64.b64decode(master_key_b64, validate=True)
        except ValueError:
            raise ConfigError("TIERONE_SECRET_ENCRYPTION_KEY is not base64") from None
        if len(master) < 32:
            raise ConfigError("TIERONE_SECRET_ENCRYPTION_KEY must hold at least 32 bytes")
        self._key = HKDF(algorithm=hashes.SHA256(), length=32, salt=None, info=purpose).derive(master)

    def encrypt(self, plaintext: str, bound_to: str) -> str:
        from cryptography.hazmat.primitives.ciphers.aead import AESGCM

        nonce = os.urandom(12)
        sealed = AESGCM(self._key).encrypt(nonce, plaintext.encode("utf-8"), bound_to.encode("utf-8"))
        return base64.b64encode(nonce + sealed).decode("ascii")

    def decrypt(self, ciphertext: str, bound_to: str) -> str:
        from cryptography.hazmat.primitives.ciphers.aead import AESGCM

        raw = base64.b64decode(ciphertext)
        return AESGCM(self._key).decrypt(raw[:12], raw[12:], bound_to.encode("utf-8")).decode("utf-8")


def cipher_from(settings: Settings, purpose: bytes = b"tierone-secret-links-v1") -> SecretCipher:
    settings.require("secret_encryption_key")
    assert settings.secret_encryption_key is not None
    return SecretCipher(settings.secret_encryption_key.get_secret_value(), purpose)


@dataclass(frozen=True)
class IssuedLink:
    token: str
    url: str
    expires_at: datetime

    @property
    def row_key(self) -> str:
        return token_hash(self.token)


@dataclass(frozen=True)
class LinkSummary:
    purpose: str
    expires_at: datetime


class LinkGone(Exception):
    """Unknown, already revealed, or expired: the page says so without telling which."""


class SecretLinks:
    def __init__(self, table: Table, settings: Settings) -> None:
        self._table = table
        self._settings = settings
        self._cipher = cipher_from(settings)

    def url_for(self, token: str) -> str:
        return f"{self._settings.public_base_url.rstrip('/')}/api/secrets/{token}"

    async def issue(self, secret: str, *, purpose: str, tenant_id: str, ticket_ref: str) -> IssuedLink:
        token = secrets.token_urlsafe(32)
        row_key = token_hash(token)
        expires = datetime.now(UTC) + timedelta(minutes=self._settings.secret_link_ttl_minutes)
        await self._table.insert(
            {
                "PartitionKey": PARTITION,
                "RowKey": row_key,
                "Ciphertext": self._cipher.encrypt(secret, row_key),
                "Purpose": purpose,
                "TenantId": tenant_id,
                "TicketRef": ticket_ref,
                "ExpiresAt": expires,
            }
        )
        return IssuedLink(token=token, url=self.url_for(token), expires_at=expires)

    async def secret_of(self, row_key: str) -> str | None:
        """The stored secret, for the issuer only (to repeat an interrupted change with the same value)."""
        entity = await self._table.get(PARTITION, row_key)
        return None if entity is None else self._cipher.decrypt(str(entity["Ciphertext"]), row_key)

    async def summary(self, token: str) -> LinkSummary:
        entity = await self._table.get(PARTITION, token_hash(token))
        if entity is None or entity.get("Revealed") or _expired(entity["ExpiresAt"]):
            raise LinkGone
        return LinkSummary(purpose=str(entity.get("Purpose", "")), expires_at=entity["ExpiresAt"])

    async def reveal(self, token: str) -> str:
        row_key = token_hash(token)
        entity = await self._table.get(PARTITION, row_key)
        if entity is None:
            raise LinkGone
        if entity.get("Revealed") or _expired(entity["ExpiresAt"]):
            raise LinkGone
        # Claim the reveal with an ETag-conditional update: of two concurrent POSTs exactly one wins.
        # (A conditional delete cannot decide it: the SDK treats deleting a gone entity as success.)
        try:
            await self._table.update(
                {"PartitionKey": PARTITION, "RowKey": row_key, "Revealed": True}, etag=str(entity.metadata["etag"])
            )
        except ConcurrencyConflict:
            raise LinkGone from None
        await self._table.delete(PARTITION, row_key)
        log.info("secret link %s… revealed (ticket %s)", row_key[:12], entity.get("TicketRef"))
        return self._cipher.decrypt(str(entity["Ciphertext"]), row_key)

    async def revoke(self, row_key: str) -> None:
        await self._table.delete(PARTITION, row_key)

    async def purge_expired(self) -> int:
        now = datetime.now(UTC)
        expired = await self._table.query("PartitionKey eq @pk and ExpiresAt lt @now", pk=PARTITION, now=now)
        for entity in expired:
            try:
                await self._table.delete(PARTITION, entity["RowKey"], etag=entity.metadata["etag"])
            except ConcurrencyConflict:
                continue
        return len(expired)


def _expired(expires_at: datetime) -> bool:
    return expires_at <= datetime.now(UTC)

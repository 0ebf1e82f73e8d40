import asyncio
from datetime import UTC, datetime, timedelta

import pytest
from cryptography.exceptions import InvalidTag

from tierone.secret_links import LinkGone, SecretCipher, SecretLinks, new_master_key, token_hash


@pytest.fixture
def links(storage, settings):
    return SecretLinks(storage.secrets, settings)


async def test_a_link_reveals_its_secret_exactly_once(links):
    link = await links.issue("Kp7m-Rt4x-Qw9z-Hb3n", purpose="temporary password", tenant_id="t", ticket_ref="cw:1")
    assert link.url.startswith("https://tierone.example.net/api/secrets/")
    assert await links.reveal(link.token) == "Kp7m-Rt4x-Qw9z-Hb3n"
    with pytest.raises(LinkGone):
        await links.reveal(link.token)


async def test_looking_at_a_link_does_not_consume_it(links):
    link = await links.issue("s3cret-Value-1", purpose="temporary password", tenant_id="t", ticket_ref="cw:2")
    for _ in range(3):
        summary = await links.summary(link.token)
        assert summary.purpose == "temporary password"
    assert await links.reveal(link.token) == "s3cret-Value-1"


async def test_two_simultaneous_reveals_hand_out_the_secret_once(links):
    link = await links.issue("Only-Once-42x", purpose="temporary password", tenant_id="t", ticket_ref="cw:3")
    results = await asyncio.gather(links.reveal(link.token), links.reveal(link.token), return_exceptions=True)
    assert sorted(type(r).__name__ for r in results) == ["LinkGone", "str"]


async def test_the_table_holds_neither_the_secret_nor_the_token(links, storage):
    link = await links.issue("Plain-Text-Never-9", purpose="temporary password", tenant_id="t", ticket_ref="cw:4")
    row = await storage.secrets.get("secret", token_hash(link.token))
    assert row is not None
    assert "Plain-Text-Never-9" not in str(dict(row))
    assert link.token not in str(dict(row))


async def test_an_expired_link_is_gone_and_is_purged(links, storage):
    link = await links.issue("Expired-Value-7", purpose="temporary password", tenant_id="t", ticket_ref="cw:5")
    past = datetime.now(UTC) - timedelta(minutes=1)
    await storage.secrets.upsert({"PartitionKey": "secret", "RowKey": link.row_key, "ExpiresAt": past})
    with pytest.raises(LinkGone):
        await links.summary(link.token)
    assert await links.purge_expired() >= 1
    assert await storage.secrets.get("secret", link.row_key) is None


async def test_unknown_tokens_are_gone(links):
    with pytest.raises(LinkGone):
        await links.reveal("x" * 43)


def test_ciphertext_is_bound_to_its_row():
    cipher = SecretCipher(new_master_key())
    sealed = cipher.encrypt("value", "row-a")
    assert cipher.decrypt(sealed, "row-a") == "value"
    with pytest.raises(InvalidTag):
        cipher.decrypt(sealed, "row-b")

"""Password reset: a temporary password the user must change at next sign-in, handed over
through a one-time link. Resumable: the password is stored (encrypted) before Graph is called,
so a retried message repeats the same change instead of making a second, different one."""

from __future__ import annotations

import logging
from datetime import UTC, datetime, timedelta

from pydantic import BaseModel

from identity_integrations.models import Directory, DirectoryUser
from tierone.errors import PermanentError, TransientError
from tierone.passwords import temporary_password
from tierone.secret_links import IssuedLink, SecretLinks

log = logging.getLogger("tierone.playbooks.password_reset")

# Graph timestamps have second precision and clocks drift; a read-back within this window counts.
_CLOCK_SLACK = timedelta(minutes=5)


class ResetCheckpoint(BaseModel):
    """What must survive a crash between steps (kept, encrypted where needed, in the tickets table)."""

    secret_row: str | None = None
    link_token: str | None = None
    link_expires: datetime | None = None
    started_at: datetime | None = None


class ResetResult(BaseModel):
    link_url: str
    link_expires: datetime
    request_id: str | None
    confirmed_change_at: datetime


async def prepare(
    links: SecretLinks, checkpoint: ResetCheckpoint, *, tenant_id: str, ticket_ref: str
) -> tuple[ResetCheckpoint, IssuedLink | None]:
    """Create the one-time link (and so the password) unless an earlier attempt already did."""
    if checkpoint.secret_row and checkpoint.link_token:
        return checkpoint, None
    link = await links.issue(
        temporary_password(), purpose="temporary password", tenant_id=tenant_id, ticket_ref=ticket_ref
    )
    updated = ResetCheckpoint(
        secret_row=link.row_key,
        link_token=link.token,
        link_expires=link.expires_at,
        started_at=datetime.now(UTC),
    )
    return updated, link


async def execute(
    directory: Directory, links: SecretLinks, target: DirectoryUser, checkpoint: ResetCheckpoint
) -> ResetResult:
    assert checkpoint.secret_row is not None
    assert checkpoint.link_token is not None
    assert checkpoint.link_expires is not None
    password = await links.secret_of(checkpoint.secret_row)
    if password is None:
        # Only possible if the link was revealed or purged before the change was confirmed.
        raise PermanentError("the prepared temporary password is gone; a technician must reset by hand")
    before = checkpoint.started_at or datetime.now(UTC)
    receipt = await directory.set_temporary_password(target.id, password)
    after = await directory.get_user(target.id)
    changed = after.last_password_change
    if changed is None or changed < before - _CLOCK_SLACK:
        # Graph said yes but the directory does not show it (yet): never report an unconfirmed change.
        raise TransientError("the password change is not visible in the directory yet")
    return ResetResult(
        link_url=links.url_for(checkpoint.link_token),
        link_expires=checkpoint.link_expires,
        request_id=receipt.request_id,
        confirmed_change_at=changed,
    )

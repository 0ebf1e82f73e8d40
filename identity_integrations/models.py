"""Directory records as the pipeline sees them (no SDK types leak out of identity_integrations)."""

from __future__ import annotations

from datetime import datetime
from typing import Protocol

from pydantic import BaseModel


class DirectoryUser(BaseModel):
    id: str
    display_name: str
    user_principal_name: str
    mail: str | None = None
    account_enabled: bool = True
    on_premises_sync_enabled: bool = False
    last_password_change: datetime | None = None


class DirectoryRole(BaseModel):
    display_name: str
    role_template_id: str | None = None


class WriteReceipt(BaseModel):
    """Evidence of a change: what Graph answered, with its request id for the audit trail."""

    status: int
    request_id: str | None = None


class Directory(Protocol):
    tenant_id: str

    async def find_user_by_email(self, email: str) -> DirectoryUser | None: ...

    async def get_user(self, user_id: str) -> DirectoryUser: ...

    async def directory_roles(self, user_id: str) -> list[DirectoryRole]: ...

    async def manager_id(self, user_id: str) -> str | None: ...

    async def set_temporary_password(self, user_id: str, password: str) -> WriteReceipt: ...

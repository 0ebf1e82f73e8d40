"""Directory records as the pipeline sees them (no SDK types leak out of identity_integrations)."""

from __future__ import annotations

from datetime import datetime
from typing import Any, Protocol

from pydantic import BaseModel, Field


class DirectoryUser(BaseModel):
    id: str
    display_name: str
    user_principal_name: str
    mail: str | None = None
    account_enabled: bool = True
    on_premises_sync_enabled: bool = False
    last_password_change: datetime | None = None
    # Alternate (personal) e-mail addresses registered on the account before any ticket: a channel
    # for out-of-band confirmation that ticket text cannot supply.
    other_mails: list[str] = []


class DirectoryRole(BaseModel):
    display_name: str
    role_template_id: str | None = None


class WriteReceipt(BaseModel):
    """Evidence of a change: what Graph answered, with its request id for the audit trail."""

    status: int
    request_id: str | None = None
    body: dict[str, Any] | None = None


class AuthMethod(BaseModel):
    """A registered authentication method; `kind` names its Graph collection (e.g. phoneMethods)."""

    id: str
    kind: str
    label: str = ""


class Group(BaseModel):
    id: str
    display_name: str
    mail: str | None = None
    group_types: list[str] = Field(default_factory=list)
    mail_enabled: bool = False
    security_enabled: bool = False
    on_premises_sync_enabled: bool = False
    membership_rule: str | None = None
    role_assignable: bool = False
    licensed: bool = False

    @property
    def kind(self) -> str:
        if "DynamicMembership" in self.group_types or self.membership_rule:
            return "dynamic"
        if "Unified" in self.group_types:
            return "m365"
        if self.mail_enabled and self.security_enabled:
            return "mail_security"
        if self.mail_enabled:
            return "distribution"
        return "security"

    @property
    def exchange_mastered(self) -> bool:
        """Mail-enabled security groups and distribution lists are read-only in Graph."""
        return self.kind in {"mail_security", "distribution"}


class Sku(BaseModel):
    sku_id: str
    part_number: str
    enabled_units: int
    consumed_units: int

    @property
    def free_units(self) -> int:
        return self.enabled_units - self.consumed_units


class UserLicenses(BaseModel):
    usage_location: str | None
    direct: set[str] = Field(default_factory=set)  # a SKU may be both direct and inherited
    inherited: set[str] = Field(default_factory=set)
    inherited_from: dict[str, list[str]] = Field(default_factory=dict)  # skuId → ids of the groups granting it

    @property
    def all(self) -> set[str]:
        return self.direct | self.inherited


class NewUser(BaseModel):
    display_name: str
    given_name: str
    surname: str
    user_principal_name: str
    mail_nickname: str
    usage_location: str | None = None
    job_title: str | None = None
    department: str | None = None


class Directory(Protocol):
    tenant_id: str

    async def find_user_by_email(self, email: str) -> DirectoryUser | None: ...

    async def find_user_by_display_name(self, name: str) -> DirectoryUser | None: ...

    async def get_user(self, user_id: str) -> DirectoryUser: ...

    async def directory_roles(self, user_id: str) -> list[DirectoryRole]: ...

    async def manager_id(self, user_id: str) -> str | None: ...

    async def set_temporary_password(self, user_id: str, password: str) -> WriteReceipt: ...

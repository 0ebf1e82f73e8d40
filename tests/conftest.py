"""Shared fixtures: one Azurite for the session, and settings pointing at it."""

from __future__ import annotations

import uuid
from collections.abc import Iterator

import pytest

from sandbox.azurite import Azurite
from tierone.audit import AuditLog
from tierone.confirmations import Confirmations
from tierone.secret_links import new_master_key
from tierone.settings import Settings
from tierone.storage import Storage


@pytest.fixture(scope="session")
def azurite() -> Iterator[Azurite]:
    with Azurite() as running:
        yield running


@pytest.fixture
def settings(azurite: Azurite) -> Settings:
    return Settings.model_validate(
        {
            "AzureWebJobsStorage": azurite.connection_string,
            "TIERONE_SECRET_ENCRYPTION_KEY": new_master_key(),
            "TIERONE_PUBLIC_BASE_URL": "https://tierone.example.net",
        }
    )


@pytest.fixture
def storage(settings: Settings) -> Storage:
    store = Storage(settings)
    store.account.ensure()
    return store


@pytest.fixture
def unique() -> str:
    return uuid.uuid4().hex[:12]


@pytest.fixture
def audit(storage: Storage) -> AuditLog:
    return AuditLog(storage.audit)


@pytest.fixture
def confirmations(storage: Storage, settings: Settings, audit: AuditLog) -> Confirmations:
    return Confirmations(storage.approvals, settings, audit)

"""Which PSA integrations this deployment has, and their clients, verifiers and registrars.

Imports stay inside the functions so the webhook path loads only the PSA it serves."""

from __future__ import annotations

import asyncio
import threading
import time
import weakref
from typing import Any

from psa_integrations.base import PsaClient, WebhookRegistrar, WebhookVerifier
from psa_integrations.models import PsaKind
from tierone.errors import ConfigError, PermanentError
from tierone.settings import Settings

_REQUIRED = {
    PsaKind.CONNECTWISE: ("connectwise_api_url", "connectwise_company_id", "connectwise_public_key"),
    PsaKind.AUTOTASK: ("autotask_username", "autotask_secret", "autotask_integration_code"),
    PsaKind.HALOPSA: ("halopsa_url", "halopsa_client_id", "halopsa_client_secret"),
}


def configured(settings: Settings) -> list[PsaKind]:
    """The PSAs whose API credentials are set on this deployment."""
    return [kind for kind, names in _REQUIRED.items() if all(getattr(settings, n) for n in names)]


def psa_client(kind: PsaKind, settings: Settings) -> PsaClient:
    if kind is PsaKind.CONNECTWISE:
        from psa_integrations.connectwise.client import ConnectWiseClient

        return ConnectWiseClient(settings)
    if kind is PsaKind.AUTOTASK:
        from psa_integrations.autotask.client import AutotaskClient

        return AutotaskClient(settings)
    if kind is PsaKind.HALOPSA:
        from psa_integrations.halopsa.client import HaloClient

        return HaloClient(settings)
    raise PermanentError(f"unknown PSA {kind}")


_verifiers: dict[tuple[PsaKind, int], Any] = {}
_lock = threading.Lock()


def webhook_verifier(kind: PsaKind, settings: Settings) -> WebhookVerifier:
    """One verifier per PSA per settings object (verifiers cache signing keys)."""
    key = (kind, id(settings))
    with _lock:
        verifier = _verifiers.get(key)
    if verifier is not None:
        return verifier
    verifier = _build_verifier(kind, settings)
    with _lock:
        return _verifiers.setdefault(key, verifier)


def _build_verifier(kind: PsaKind, settings: Settings) -> WebhookVerifier:
    if kind is PsaKind.CONNECTWISE:
        from psa_integrations.connectwise.webhook import ConnectWiseWebhooks

        settings.require("connectwise_callback_origin")
        assert settings.connectwise_callback_origin is not None
        return ConnectWiseWebhooks(settings.connectwise_callback_origin, settings.connectwise_api_member)
    if kind is PsaKind.AUTOTASK:
        from psa_integrations.autotask.webhook import AutotaskWebhooks

        return AutotaskWebhooks(settings)
    if kind is PsaKind.HALOPSA:
        from psa_integrations.halopsa.webhook import HaloWebhooks

        return HaloWebhooks(settings)
    raise ConfigError(f"unknown PSA {kind}")


def registrar(kind: PsaKind, settings: Settings) -> WebhookRegistrar:
    if kind is PsaKind.CONNECTWISE:
        from psa_integrations.connectwise.registration import ConnectWiseRegistrar

        return ConnectWiseRegistrar(settings)
    if kind is PsaKind.AUTOTASK:
        from psa_integrations.autotask.registration import AutotaskRegistrar

        return AutotaskRegistrar(settings)
    if kind is PsaKind.HALOPSA:
        from psa_integrations.halopsa.registration import HaloRegistrar

        return HaloRegistrar(settings)
    raise ConfigError(f"unknown PSA {kind}")


class PsaClients:
    """The worker's PSA clients: one per (event loop, PSA), shared by the tickets it handles.

    Reusing a client keeps its connections and TLS sessions and the metadata it caches (Autotask's
    picklists, Halo's status names) instead of paying them on every run. After `max_age_s` the next
    ticket gets a fresh client, so metadata an administrator changed in the PSA is read again; the
    replaced client is closed after `grace_s`, long enough for the runs still using it to finish.
    Callers never close a client they get here."""

    def __init__(self, settings: Settings, *, max_age_s: float = 900.0, grace_s: float = 300.0) -> None:
        self._settings = settings
        self._max_age_s = max_age_s
        self._grace_s = grace_s
        self._lock = threading.Lock()
        # Keyed by the loop itself, weakly: a client never outlives its loop, and a new loop that
        # happens to get a dead one's id() never inherits its client.
        self._clients: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, dict[PsaKind, tuple[PsaClient, float]]]
        self._clients = weakref.WeakKeyDictionary()
        self._closing: set[asyncio.Task[None]] = set()

    def get(self, kind: PsaKind) -> PsaClient:
        loop = asyncio.get_running_loop()
        now = time.monotonic()
        with self._lock:
            per_loop = self._clients.setdefault(loop, {})
            entry = per_loop.get(kind)
            if entry is not None and now - entry[1] < self._max_age_s:
                return entry[0]
            client = psa_client(kind, self._settings)
            per_loop[kind] = (client, now)
        if entry is not None:
            loop.call_later(self._grace_s, self._close, loop, entry[0])
        return client

    def _close(self, loop: asyncio.AbstractEventLoop, client: PsaClient) -> None:
        task = loop.create_task(client.aclose())
        self._closing.add(task)  # a reference, so the task is not collected before it runs
        task.add_done_callback(self._closing.discard)

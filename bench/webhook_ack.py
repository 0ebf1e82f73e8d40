"""Webhook acknowledgement latency: authentic deliveries of each PSA POSTed at the running app.

Each delivery is built exactly as that PSA's sandbox builds a real one, with the credentials the
stack configured, so the app verifies it as it would in production:

- ConnectWise: the callback envelope (`Entity` is the ticket as the sandbox holds it,
  `Metadata.key_url` on the sandbox's key endpoint), `x-content-signature` from `sign_body` with
  the sandbox's signing key; the app fetches the key (once) and checks HMAC-SHA256.
- Autotask: the payload (Action, Guid of the registered webhook, EntityType, Id, Fields,
  EventTime, SequenceNumber, PersonID) serialised in .NET's escaped form (`dotnet_dumps`),
  `X-Hook-Signature: sha1=<base64 HMAC-SHA1>` with the webhook's secret.
- HaloPSA: the envelope (id, webhook_id, notification_id, escmsg_id, event, message, object_id,
  agent_id, timestamp) with `Authorization: Basic tierone:<password>`."""

from __future__ import annotations

import base64
import itertools
import json
import sys
import time
import uuid
from abc import ABC, abstractmethod
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime

import httpx

from bench.common import BenchError, Table, ms, percentile
from sandbox.autotask import dotnet_dumps, format_event_time
from sandbox.autotask import sign as autotask_sign
from sandbox.connectwise import sign_body
from sandbox.halopsa import webhook_timestamp
from sandbox.stack import LocalStack

PROJECT_PACKAGES = ("tierone", "psa_integrations", "identity_integrations", "functions")


@dataclass
class Samples:
    psa: str
    label: str
    seconds: list[float] = field(default_factory=list)
    statuses: dict[int, int] = field(default_factory=dict)

    def add(self, seconds: float, status: int) -> None:
        self.seconds.append(seconds)
        self.statuses[status] = self.statuses.get(status, 0) + 1


@dataclass(frozen=True)
class Request:
    url: str
    body: bytes
    headers: dict[str, str]


class Sender(ABC):
    """Builds one PSA's deliveries and POSTs them over one keep-alive connection, as a dispatcher does."""

    psa: str  # PsaKind value: also the route and the function's name prefix
    name: str  # for people
    ignored_kind: str  # a delivery that is verified but starts no work
    creation_kind: str  # a delivery that is verified, recorded and queued

    def __init__(self, stack: LocalStack) -> None:
        assert stack.host is not None
        self.stack = stack
        self.base = f"{stack.host.api_url}/webhooks/{self.psa}?code={stack.function_key}"
        self.http = httpx.Client(timeout=30.0, follow_redirects=False)
        # Open the connection with a request the host answers without invoking anything (404),
        # so that no sample pays the TCP connect.
        self.http.get(f"{stack.host.url}/bench-connect")

    @abstractmethod
    def ignored(self, ticket_id: int) -> Request: ...

    @abstractmethod
    def creation(self, ticket_id: int) -> Request: ...

    @abstractmethod
    def forged(self, ticket_id: int) -> Request:
        """A delivery with wrong credentials: the app must refuse it (shows that samples are verified)."""

    def post(self, request: Request) -> tuple[float, httpx.Response]:
        start = time.perf_counter()
        response = self.http.post(request.url, content=request.body, headers=request.headers)
        return time.perf_counter() - start, response

    def close(self) -> None:
        self.http.close()


class ConnectWiseSender(Sender):
    psa, name, ignored_kind, creation_kind = "connectwise", "ConnectWise", "`updated`", "`added`"

    def __init__(self, stack: LocalStack) -> None:
        super().__init__(stack)
        self.cw = stack.connectwise
        callbacks = self.cw.callbacks()
        if not callbacks:
            raise BenchError("no callback is registered in the ConnectWise sandbox")
        self.callback_id = int(callbacks[0]["id"])

    def _request(self, ticket_id: int, action: str, member: str, key: str) -> Request:
        entity = json.dumps(self.cw.ticket(ticket_id), separators=(",", ":"), ensure_ascii=False)
        envelope = {
            "MessageId": str(uuid.uuid4()),
            "FromUrl": self.cw.url.removeprefix("http://"),
            "CompanyId": self.cw.company_id,
            "MemberId": member,
            "Action": action,
            "Type": "ticket",
            "ID": ticket_id,
            "ProductInstanceId": self.cw.product_instance_id,
            "PartnerId": self.cw.partner_id,
            "Entity": entity,
            "Metadata": {"key_url": self.cw.key_url},
            "CallbackObjectRecId": self.callback_id,
        }
        body = json.dumps(envelope, separators=(",", ":"), ensure_ascii=False).encode("utf-8")
        headers = {"Content-Type": "application/json", "x-content-signature": sign_body(key, body)}
        return Request(f"{self.base}&recordId={ticket_id}", body, headers)

    def ignored(self, ticket_id: int) -> Request:
        return self._request(ticket_id, "updated", "jsmith", self.cw.signing_key)

    def creation(self, ticket_id: int) -> Request:
        return self._request(ticket_id, "added", "portal", self.cw.signing_key)

    def forged(self, ticket_id: int) -> Request:
        return self._request(ticket_id, "updated", "jsmith", "not-the-key")


class AutotaskSender(Sender):
    psa, name, ignored_kind, creation_kind = "autotask", "Autotask", "`Update`", "`Create`"

    def __init__(self, stack: LocalStack) -> None:
        super().__init__(stack)
        self.at = stack.autotask
        webhooks = [w for w in self.at.webhooks() if w["isActive"]]
        if not webhooks:
            raise BenchError("no webhook is registered in the Autotask sandbox")
        self.guid = str(webhooks[-1]["webhookGUID"])
        # The sandbox numbers its own events from 1; these stay clear of them, so that no bench
        # delivery shares a delivery id (Guid|Id|Action|SequenceNumber) with a real one.
        self.sequence = itertools.count(1_000_001)

    def _request(self, ticket_id: int, action: str, person_id: int | None, status: int, secret: str) -> Request:
        payload = {
            "Action": action,
            "Guid": self.guid,
            "EntityType": "Ticket",
            "Id": ticket_id,
            "Fields": {"Status": str(status)},
            "EventTime": format_event_time(datetime.now(UTC)),
            "SequenceNumber": next(self.sequence),
            "PersonID": person_id,
        }
        body = dotnet_dumps(payload)
        headers = {
            "Content-Type": "application/json; charset=utf-8",
            "X-Hook-Signature": autotask_sign(secret, body),
            "User-Agent": "Autotask-Webhooks/1.0",
        }
        return Request(self.base, body, headers)

    def ignored(self, ticket_id: int) -> Request:
        # A technician completing the ticket in the UI.
        return self._request(ticket_id, "Update", self.at.technician_resource_id, 5, self.stack.autotask_webhook_secret)

    def creation(self, ticket_id: int) -> Request:
        # The ticket's creation as its contact saved it in the portal (PersonID is the contact).
        contact = self.at.ticket(ticket_id).get("createdByContactID")
        return self._request(ticket_id, "Create", contact, 1, self.stack.autotask_webhook_secret)

    def forged(self, ticket_id: int) -> Request:
        return self._request(ticket_id, "Update", self.at.technician_resource_id, 5, "not-the-secret")


class HaloSender(Sender):
    psa, name, ignored_kind, creation_kind = "halopsa", "HaloPSA", "`ticket status changed`", "`new ticket logged`"

    def __init__(self, stack: LocalStack) -> None:
        super().__init__(stack)
        self.halo = stack.halopsa
        webhooks = self.halo.webhooks()
        if not webhooks:
            raise BenchError("no webhook is registered in the HaloPSA sandbox")
        self.webhook = webhooks[-1]

    def _request(self, ticket_id: int, event: str, message: str, password: str) -> Request:
        subscriptions = self.webhook.get("events") or [{}]
        envelope = {
            "id": str(uuid.uuid4()),
            "webhook_id": self.webhook["id"],
            "notification_id": subscriptions[0].get("id"),
            "escmsg_id": str(uuid.uuid4()),
            "event": event,
            "message": message.format(f"{ticket_id:07d}"),
            "object_id": ticket_id,
            "agent_id": self.halo.human_agent_id,
            "timestamp": webhook_timestamp(datetime.now(UTC)),
        }
        body = json.dumps(envelope, separators=(",", ":"), ensure_ascii=False).encode("utf-8")
        user = self.webhook.get("basic_username") or "tierone"
        basic = base64.b64encode(f"{user}:{password}".encode()).decode("ascii")
        return Request(self.base, body, {"Content-Type": "application/json", "Authorization": f"Basic {basic}"})

    def ignored(self, ticket_id: int) -> Request:
        return self._request(
            ticket_id,
            "ticket status changed",
            "The status has been changed for Ticket ID: {}.",
            self.stack.halopsa_webhook_password,
        )

    def creation(self, ticket_id: int) -> Request:
        return self._request(
            ticket_id, "new ticket logged", "A new Ticket has been logged: {}.", self.stack.halopsa_webhook_password
        )

    def forged(self, ticket_id: int) -> Request:
        return self._request(
            ticket_id, "ticket status changed", "The status has been changed for Ticket ID: {}.", "not-the-password"
        )


SENDERS: tuple[type[Sender], ...] = (ConnectWiseSender, AutotaskSender, HaloSender)


def expect(sender: Sender, response: httpx.Response, status: int, outcome: str) -> None:
    body: object = None
    try:
        body = response.json()
    except ValueError:
        body = response.text[:200]
    if response.status_code != status or not isinstance(body, dict) or body.get("status") != outcome:
        raise BenchError(
            f"{sender.name} webhook answered {response.status_code} {body!r}; expected {status} {outcome!r}"
        )


@dataclass
class PsaAck:
    """One PSA's acknowledgement figures."""

    psa: str
    name: str
    first_seconds: float = 0.0
    first_new_modules: list[str] = field(default_factory=list)
    first_creation_seconds: float = 0.0
    first_creation_psa_calls: list[str] = field(default_factory=list)
    ignored: Samples | None = None
    created: Samples | None = None
    psa_calls_during_created: int = 0
    others_during_created: list[str] = field(default_factory=list)  # other functions (timers) run meanwhile


def first_request(sender: Sender, ticket_id: int, ack: PsaAck) -> None:
    """The first delivery this PSA's route ever sees: pays its verifier's lazy imports (and, for
    ConnectWise, the signing-key fetch)."""
    before = set(sys.modules)
    seconds, response = sender.post(sender.ignored(ticket_id))
    expect(sender, response, 200, "ignored")
    ack.first_seconds = seconds
    ack.first_new_modules = sorted(set(sys.modules) - before)


def forged_control(sender: Sender, ticket_id: int) -> None:
    print(f"bench: control: one {sender.name} delivery with wrong credentials (the app logs its refusal)", flush=True)
    _, forged = sender.post(sender.forged(ticket_id))
    if forged.status_code != 401:
        raise BenchError(f"a {sender.name} delivery with wrong credentials was answered {forged.status_code}, not 401")


def ignored_samples(sender: Sender, ticket_id: int, n: int, warmup: int) -> Samples:
    samples = Samples(sender.name, f"{sender.ignored_kind} (verified, ignored: nothing queued)")
    for i in range(warmup + n):
        seconds, response = sender.post(sender.ignored(ticket_id))
        expect(sender, response, 200, "ignored")
        if i >= warmup:
            samples.add(seconds, response.status_code)
    return samples


def wait_idle(sender: Sender) -> None:
    """Until the worker queued by the last delivery is done; a worker that never finishes is broken."""
    host = sender.stack.host
    assert host is not None
    try:
        host.wait_for_idle(30)
    except TimeoutError as exc:
        failed = [i for i in host.invocations if not i.ok]
        cause = f"; last failed invocation: {failed[-1].function_name}: {failed[-1].error}" if failed else ""
        raise BenchError(f"{sender.name}: {exc}{cause}") from None


def first_creation(sender: Sender, ticket_id: int) -> float:
    """The route's first creation delivery (for the first PSA: the first use of Table and Queue storage)."""
    seconds, response = sender.post(sender.creation(ticket_id))
    expect(sender, response, 202, "queued")
    wait_idle(sender)
    return seconds


def creation_samples(sender: Sender, ticket_ids: list[int], n: int, warmup: int) -> Samples:
    """Creation deliveries: verified, recorded in the deliveries table, queued (202).

    The tickets referenced are already closed and processed, so the worker each delivery queues
    finds the ticket's row terminal and returns; the host is left to go idle between samples so
    that a sample never competes with the previous one's worker."""
    samples = Samples(sender.name, f"{sender.creation_kind} (verified, recorded, queued)")
    for i in range(warmup + n):
        seconds, response = sender.post(sender.creation(ticket_ids[i % len(ticket_ids)]))
        expect(sender, response, 202, "queued")
        if i >= warmup:
            samples.add(seconds, response.status_code)
        wait_idle(sender)
    return samples


def table(acks: Iterable[PsaAck], warmup: int, n: int) -> Table:
    t = Table(
        "Webhook acknowledgement per PSA (request → response, ms)",
        ["PSA", "delivery", "n", "p50", "p95", "p99", "max"],
        left=2,
    )
    acks = list(acks)
    for ack in acks:
        t.add(ack.name, "first ever on this route", 1, ms(ack.first_seconds), "", "", "")
        t.add(ack.name, "first creation on this route", 1, ms(ack.first_creation_seconds), "", "", "")
        for g in (ack.ignored, ack.created):
            assert g is not None
            s = g.seconds
            t.add(
                ack.name,
                g.label,
                len(s),
                ms(percentile(s, 50)),
                ms(percentile(s, 95)),
                ms(percentile(s, 99)),
                ms(max(s)),
            )
    t.notes.append(
        f"{n} samples per kind after {warmup} warm-up requests; sequential, one keep-alive connection per PSA; "
        "routes first exercised in the order listed (ConnectWise's first request also pays the shared webhook "
        "code's imports, and its first creation the first use of Table and Queue storage)"
    )
    t.notes.append("control: per PSA, a delivery with a wrong signature (or password) is answered 401")
    for ack in acks:
        ours = [m for m in ack.first_new_modules if m.split(".")[0] in PROJECT_PACKAGES]
        t.notes.append(
            f"{ack.name}: the first request imported {len(ack.first_new_modules)} modules not yet loaded, among them "
            f"{', '.join(ours) or 'none of the project'}; the worker queued by its first creation (a closed ticket "
            f"the app had not seen) made {len(ack.first_creation_psa_calls)} PSA calls before skipping it "
            f"({', '.join(ack.first_creation_psa_calls)}); the workers queued by the {n + warmup} creation "
            f"deliveries for closed, processed tickets made {ack.psa_calls_during_created} PSA calls (expected 0)"
            + (
                f", counting those of {', '.join(sorted(set(ack.others_during_created)))}, which ran meanwhile"
                if ack.others_during_created
                else ""
            )
        )
    return t

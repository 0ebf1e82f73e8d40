"""Webhook acknowledgement latency: signed ConnectWise callbacks POSTed at the running app.

The envelope and signature are built exactly as the ConnectWise sandbox builds them for a real
callback (same fields, `sign_body` with the sandbox's signing key, `Metadata.key_url` on the
sandbox's key endpoint), so the app fetches the key and verifies as it would in production."""

from __future__ import annotations

import json
import sys
import time
import uuid
from collections.abc import Iterable
from dataclasses import dataclass, field

import httpx

from bench.common import BenchError, Table, ms, percentile
from sandbox.connectwise import sign_body
from sandbox.stack import LocalStack

PROJECT_PACKAGES = ("tierone", "psa_integrations", "identity_integrations", "functions")


@dataclass
class Samples:
    label: str
    seconds: list[float] = field(default_factory=list)
    statuses: dict[int, int] = field(default_factory=dict)

    def add(self, seconds: float, status: int) -> None:
        self.seconds.append(seconds)
        self.statuses[status] = self.statuses.get(status, 0) + 1


class CallbackSender:
    """Signs and POSTs callbacks over one keep-alive connection, as the PSA's dispatcher does."""

    def __init__(self, stack: LocalStack) -> None:
        assert stack.host is not None
        self.stack = stack
        self.cw = stack.connectwise
        self.base = f"{stack.host.api_url}/webhooks/connectwise?code={stack.function_key}&recordId="
        callbacks = self.cw.callbacks()
        if not callbacks:
            raise BenchError("no callback is registered in the ConnectWise sandbox")
        self.callback_id = int(callbacks[0]["id"])
        self.http = httpx.Client(timeout=30.0, follow_redirects=False)
        # Open the connection with a request the host answers without invoking anything (404),
        # so that no sample pays the TCP connect.
        self.http.get(f"{stack.host.url}/bench-connect")

    def envelope(self, ticket_id: int, action: str, member: str) -> bytes:
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
        return json.dumps(envelope, separators=(",", ":"), ensure_ascii=False).encode("utf-8")

    def post(self, ticket_id: int, action: str, member: str) -> tuple[float, httpx.Response]:
        body = self.envelope(ticket_id, action, member)
        headers = {"Content-Type": "application/json", "x-content-signature": sign_body(self.cw.signing_key, body)}
        start = time.perf_counter()
        response = self.http.post(f"{self.base}{ticket_id}", content=body, headers=headers)
        return time.perf_counter() - start, response

    def post_forged(self, ticket_id: int) -> httpx.Response:
        """A callback signed with the wrong key: the app must refuse it (shows that samples are verified)."""
        body = self.envelope(ticket_id, "updated", "jsmith")
        headers = {"Content-Type": "application/json", "x-content-signature": sign_body("not-the-key", body)}
        return self.http.post(f"{self.base}{ticket_id}", content=body, headers=headers)

    def close(self) -> None:
        self.http.close()


def expect(response: httpx.Response, status: int, outcome: str) -> None:
    body: object = None
    try:
        body = response.json()
    except ValueError:
        body = response.text[:200]
    if response.status_code != status or not isinstance(body, dict) or body.get("status") != outcome:
        raise BenchError(f"webhook answered {response.status_code} {body!r}; expected {status} {outcome!r}")


@dataclass
class ColdRequest:
    seconds: float
    new_modules: list[str]


def first_request(sender: CallbackSender, ticket_id: int) -> ColdRequest:
    """The first callback the app ever sees: pays the key fetch and the webhook path's lazy imports."""
    before = set(sys.modules)
    seconds, response = sender.post(ticket_id, "updated", "jsmith")
    expect(response, 200, "ignored")
    return ColdRequest(seconds, sorted(set(sys.modules) - before))


def updated_samples(sender: CallbackSender, ticket_id: int, n: int, warmup: int) -> Samples:
    print("bench: control: one callback signed with a wrong key (the app logs its refusal)", flush=True)
    forged = sender.post_forged(ticket_id)
    if forged.status_code != 401:
        raise BenchError(f"a callback with a wrong signature was answered {forged.status_code}, not 401")
    samples = Samples("updated (verified, ignored: nothing queued)")
    for i in range(warmup + n):
        seconds, response = sender.post(ticket_id, "updated", "jsmith")
        expect(response, 200, "ignored")
        if i >= warmup:
            samples.add(seconds, response.status_code)
    return samples


def first_added(sender: CallbackSender, ticket_id: int) -> float:
    """The first `added` callback: the webhook path's first use of Table and Queue storage."""
    assert sender.stack.host is not None
    seconds, response = sender.post(ticket_id, "added", "portal")
    expect(response, 202, "queued")
    sender.stack.host.wait_for_idle(30)
    return seconds


def added_samples(sender: CallbackSender, ticket_ids: list[int], n: int, warmup: int) -> Samples:
    """`added` callbacks: verified, recorded in the deliveries table, queued (202).

    The tickets referenced are already closed and processed, so the worker each callback queues
    finds the ticket's row terminal and returns; the host is left to go idle between samples so
    that a sample never competes with the previous one's worker."""
    assert sender.stack.host is not None
    samples = Samples("added (verified, recorded, queued)")
    for i in range(warmup + n):
        seconds, response = sender.post(ticket_ids[i % len(ticket_ids)], "added", "portal")
        expect(response, 202, "queued")
        if i >= warmup:
            samples.add(seconds, response.status_code)
        sender.stack.host.wait_for_idle(30)
    return samples


def table(cold: ColdRequest, first_added: float, groups: Iterable[Samples], warmup: int) -> Table:
    t = Table("Webhook acknowledgement (request → response, ms)", ["callback", "n", "p50", "p95", "p99", "max"])
    t.add("first ever (key fetch, lazy imports)", 1, ms(cold.seconds), "", "", "")
    t.add("first `added` (first storage use)", 1, ms(first_added), "", "", "")
    for g in groups:
        s = g.seconds
        t.add(g.label, len(s), ms(percentile(s, 50)), ms(percentile(s, 95)), ms(percentile(s, 99)), ms(max(s)))
    t.notes.append(f"after {warmup} warm-up requests per kind; sequential, one keep-alive connection")
    t.notes.append("control: a callback signed with a wrong key is answered 401, so every sample was verified")
    if cold.new_modules:
        ours = [m for m in cold.new_modules if m.split(".")[0] in PROJECT_PACKAGES]
        t.notes.append(
            f"the first request imported {len(cold.new_modules)} modules not yet loaded by the harness, "
            f"among them {', '.join(ours) or 'none of the project'}"
        )
    return t

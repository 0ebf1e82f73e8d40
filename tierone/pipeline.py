"""The path of one ticket: read → triage → resolve → verify → decide → act → record → close.

One queue message is one ticket. The worker is at-least-once, so every stage is idempotent:
the ticket is claimed by the first message that reaches it (others for the same ticket are
dropped), progress is checkpointed in the `tickets` table, and each PSA write is checked for
before it is made. A TransientError leaves the message to be retried; a PermanentError turns
into an escalation with its reason. Nothing is reported done unless it was read back."""

from __future__ import annotations

import asyncio
import logging
import math
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from identity_integrations.models import Directory
from psa_integrations.base import PsaClient
from psa_integrations.models import NoteVisibility, PsaKind, Ticket
from tierone import policy
from tierone.audit import AuditEvent, AuditLog
from tierone.client_policy import PolicyStore
from tierone.errors import PermanentError, TransientError
from tierone.evidence import Evidence
from tierone.gates import GateStage
from tierone.intake import TicketWork
from tierone.playbooks import base as playbook_base
from tierone.playbooks import password_reset
from tierone.playbooks.context import PlaybookContext
from tierone.requests import build_request
from tierone.run_state import TERMINAL, Outcome, Resolution, TicketState
from tierone.scope import out_of_scope
from tierone.secret_links import SecretLinks, cipher_from
from tierone.settings import Settings
from tierone.storage import Storage
from tierone.tenants import TenantMap, TenantMapping
from tierone.triage import classify
from tierone.triage.llm import second_opinion
from tierone.triage.store import load_model
from tierone.verification import CREDENTIAL_INTENTS, resolve_parties
from tierone.writeback import ensure_note, ensure_time_entry

log = logging.getLogger("tierone.pipeline")

MSP_AUDIT_PARTITION = "msp"


@dataclass
class Services:
    """What the pipeline talks to. Built once per process by `default_services`."""

    settings: Settings
    storage: Storage
    psa_client: Callable[
        [PsaKind], PsaClient
    ]  # shared clients (psa_integrations.registry.PsaClients): never closed here
    directory: Callable[[str], Directory]
    exchange: Callable[[str], Any] | None = None


def default_services(settings: Settings) -> Services:
    from identity_integrations.exchange import ExchangeAdmins
    from identity_integrations.graph import GraphDirectories
    from psa_integrations.registry import PsaClients
    from tierone.storage import get_storage

    directories = GraphDirectories(settings)
    psa_clients = PsaClients(settings)
    return Services(
        settings, get_storage(), psa_clients.get, directories.for_tenant, ExchangeAdmins(settings).for_tenant
    )


class Pipeline(GateStage):
    def __init__(self, services: Services) -> None:
        self.services = services
        self.settings = services.settings
        self.storage = services.storage
        self.audit = AuditLog(services.storage.audit)
        self.tenants = TenantMap(services.storage.tenants)
        self.client_policies = PolicyStore(services.storage.policies)

    async def process(self, work: TicketWork, message_id: str) -> Outcome:
        state = TicketState(self.storage, cipher_from(self.settings, b"tierone-ticket-state-v1"), work)
        if not await state.claim(work, message_id):
            log.info("message %s for ticket %s dropped", message_id, state.ref)
            return Outcome.SKIPPED
        psa = self.services.psa_client(work.psa)
        try:
            return await self._run(psa, work, state)
        except TransientError as exc:
            await state.save(LastError=str(exc)[:500])
            raise
        except PermanentError as exc:
            log.warning("ticket %s escalated: %s", state.ref, exc)
            if state.data.get("SecretRow") and not state.data.get("Changed"):
                # The prepared password was never set: its link must not stay valid.
                await SecretLinks(self.storage.secrets, self.settings).revoke(str(state.data["SecretRow"]))
            return await self._escalate_unreadable(psa, work, state, str(exc))

    async def _run(self, psa: PsaClient, work: TicketWork, state: TicketState) -> Outcome:
        ticket = await psa.get_ticket(work.ticket_id)
        if ticket.closed:
            await state.save(State=Outcome.SKIPPED.value, Reason="ticket already closed")
            return Outcome.SKIPPED
        elsewhere = out_of_scope(ticket, self.settings)
        if elsewhere:
            # Not TierOne's ticket: nothing is written to it, not even a note.
            log.info("ticket %s left alone: %s", state.ref, elsewhere)
            await state.save(State=Outcome.SKIPPED.value, Reason=elsewhere[:500])
            return Outcome.SKIPPED
        requester_email = ticket.contact.email if ticket.contact else None
        model = await load_model(self.storage)  # the MSP's learned model if stored, else the shipped one
        triage = classify(ticket.summary, ticket.description, requester_email, model=model)
        triage = await second_opinion(self.settings, ticket.summary, ticket.description, triage)
        evidence = Evidence(
            ticket_ref=state.ref,
            summary=ticket.summary,
            intent=triage.intent,
            confidence=triage.confidence,
            triage_reasons=triage.reasons,
            triage_candidates=triage.candidates,
            started_at=state.started_at,
            waited_seconds=state.waited_seconds,
        )
        found = Resolution(ticket=ticket, triage=triage, evidence=evidence)
        await state.save(Intent=triage.intent, Confidence=triage.confidence)
        try:
            decision = await self._resolve_and_decide(psa, found, requester_email)
        except PermanentError as exc:
            decision = policy.Decision(verdict=policy.Verdict.ESCALATE, rule="P00-lookup-failed", reason=str(exc))
        evidence.decision, evidence.rule = decision.verdict.value, decision.rule
        audit_partition = found.tenant_id or MSP_AUDIT_PARTITION
        await self.audit.append(
            audit_partition,
            f"{state.ref}:decided",
            AuditEvent(
                event_type="decided",
                ticket=state.ref,
                actor="tierone",
                requester=found.requester.id if found.requester else requester_email,
                target=found.target.id if found.target else None,
                action=triage.intent,
                outcome=decision.verdict.value,
                rule=decision.rule,
                evidence={"reason": decision.reason, "confidence": triage.confidence},
            ),
        )
        if decision.verdict is policy.Verdict.ESCALATE:
            return await self._escalate(psa, state, found, decision.reason)
        held = await self._gate(psa, state, found)
        if held is not None:
            return held
        if triage.intent == "password_reset":
            return await self._reset_password(psa, state, found)
        return await self._run_playbook(psa, state, found)

    async def _tenant_of(self, psa: PsaClient, ticket: Ticket) -> TenantMapping | None:
        """The mapping table first; else what the PSA itself records (kept for next time)."""
        mapping = await self.tenants.get(ticket.psa, ticket.company.id)
        if mapping is not None:
            return mapping
        hint = await psa.tenant_hint(ticket.company.id)
        if not hint:
            return None
        try:
            hint = str(uuid.UUID(hint))
        except ValueError:
            log.warning("company %s records %r as its tenant, which is not a tenant id", ticket.company.id, hint)
            return None
        mapping = TenantMapping(
            psa=ticket.psa, company_id=ticket.company.id, tenant_id=hint, customer_name=ticket.company.name
        )
        await self.tenants.put(mapping)
        log.info("company %s mapped to tenant %s from the PSA's own record", ticket.company.id, hint)
        return mapping

    async def _resolve_and_decide(
        self, psa: PsaClient, found: Resolution, requester_email: str | None
    ) -> policy.Decision:
        ticket, triage, evidence = found.ticket, found.triage, found.evidence
        mapping = await self._tenant_of(psa, ticket)
        if mapping is None:
            return policy.Decision(
                verdict=policy.Verdict.ESCALATE,
                rule="P00-no-tenant",
                reason=f"company {ticket.company.name} ({ticket.company.id}) is not mapped to a Microsoft tenant",
            )
        found.tenant_id = mapping.tenant_id
        found.mapping = mapping
        evidence.tenant = f"{mapping.customer_name or ticket.company.name} ({mapping.tenant_id})"
        if triage.intent == "other":
            return policy.decide(
                policy.PolicyInput(intent="other", confidence=triage.confidence, requester=None, target=None)
            )
        found.client, found.policy_version = await self.client_policies.get(mapping.tenant_id)
        directory = self.services.directory(mapping.tenant_id)
        parties = await resolve_parties(directory, found.client, triage, requester_email)
        found.parties, found.requester, found.target = parties, parties.requester, parties.target
        requester, target = parties.requester, parties.target
        evidence.requester = f"{ticket.contact.name if ticket.contact else '?'} <{requester_email}> → " + (
            f"{requester.user_principal_name} ({requester.id})" if requester else "no directory user"
        )
        found.request = build_request(triage.intent, ticket.summary, ticket.description, triage)
        evidence.target = (
            f"{target.display_name} <{target.user_principal_name}> ({target.id})"
            if target
            else ", ".join(triage.target_names + triage.target_emails) or "someone else (unresolved)"
        )
        evidence.verification = parties.describe(triage.intent)
        if target is not None:
            protected = found.client.is_protected(target)
            if protected:
                # The client's target guard wins over every other rule.
                return policy.Decision(verdict=policy.Verdict.ESCALATE, rule="P05b-protected-account", reason=protected)
        return policy.decide(
            policy.PolicyInput(
                intent=triage.intent,
                confidence=triage.confidence,
                threshold=triage.threshold,
                requester=requester,
                target=target,
                target_roles=parties.target_roles,
                names_someone_else=triage.names_someone_else,
                requester_is_manager=parties.requester_is_manager,
                requester_authorised=requester is not None
                and found.client.is_authorised_contact(triage.intent, requester),
                has_onboarding_template=mapping.onboarding is not None,
            )
        )

    async def _reset_password(self, psa: PsaClient, state: TicketState, found: Resolution) -> Outcome:
        assert found.tenant_id is not None
        assert found.target is not None
        links = SecretLinks(self.storage.secrets, self.settings)
        checkpoint, _ = await password_reset.prepare(
            links, state.reset_checkpoint(), tenant_id=found.tenant_id, ticket_ref=state.ref
        )
        await state.save_reset_checkpoint(checkpoint)
        directory = self.services.directory(found.tenant_id)
        result = await password_reset.execute(directory, links, found.target, checkpoint)
        await state.save(Changed=True, GraphRequestId=result.request_id or "")
        evidence = found.evidence
        evidence.changes = [
            f"temporary password set on {found.target.user_principal_name}, change required at next sign-in",
            "password delivered by one-time link (never written to the ticket)",
        ]
        evidence.read_back = f"lastPasswordChangeDateTime = {result.confirmed_change_at.isoformat()}"
        evidence.graph_request_ids = [result.request_id] if result.request_id else []
        await self.audit.append(
            found.tenant_id,
            f"{state.ref}:executed",
            AuditEvent(
                event_type="executed",
                ticket=state.ref,
                actor="tierone",
                requester=found.requester.id if found.requester else None,
                target=found.target.id,
                action="password_reset",
                outcome="changed",
                rule=evidence.rule,
                evidence={"graph_request_id": result.request_id, "read_back": evidence.read_back},
            ),
        )
        first_name = found.target.display_name.split(" ")[0] if found.target.display_name else "there"
        customer_text = (
            f"Hello {first_name},\n\n"
            "Your password has been reset. Open this one-time link to see your temporary password:\n"
            f"{result.link_url}\n\n"
            f"The link works once and expires at {result.link_expires:%Y-%m-%d %H:%M} UTC. You will be asked "
            "to choose a new password when you sign in.\n"
            "If you did not ask for this, contact your IT support straight away."
        )
        await self._tell_the_owner(state, found)
        return await self._close(psa, state, found, customer_text, Outcome.RESOLVED)

    async def _run_playbook(self, psa: PsaClient, state: TicketState, found: Resolution) -> Outcome:
        from tierone.playbooks.registry import PLAYBOOKS

        assert found.tenant_id is not None
        assert found.requester is not None
        assert found.request is not None
        module = PLAYBOOKS[found.triage.intent]
        ctx = self._playbook_context(state, found)
        try:
            steps = await module.plan(ctx)
        except PermanentError as exc:
            return await self._escalate(psa, state, found, str(exc))
        result = await playbook_base.run(steps, playbook_base.ActionLedger(self.storage.ledger, state.ref))
        await state.save(Changed=result.changed_anything)
        evidence = found.evidence
        evidence.changes = result.lines()
        evidence.read_back = "every change above was read back" if result.completed else "see the steps above"
        evidence.graph_request_ids = result.request_ids
        await self.audit.append(
            found.tenant_id,
            f"{state.ref}:executed",
            AuditEvent(
                event_type="executed",
                ticket=state.ref,
                actor="tierone",
                requester=found.requester.id,
                target=found.target.id if found.target else None,
                action=found.triage.intent,
                outcome="completed" if result.completed else "incomplete",
                rule=evidence.rule,
                evidence={"steps": [s.model_dump(mode="json") for s in result.steps], **ctx.facts},
            ),
        )
        if not result.completed:
            failed = next(s for s in result.steps if s.status is playbook_base.StepStatus.FAILED)
            reason = f"step '{failed.description}' failed ({failed.detail}); the steps before it stand as recorded"
            return await self._escalate(psa, state, found, reason)
        if found.triage.intent in CREDENTIAL_INTENTS:
            await self._tell_the_owner(state, found)
        link = await self._credential_link(state)
        return await self._close(psa, state, found, module.customer_message(ctx, result, link), Outcome.RESOLVED)

    async def _tell_the_owner(self, state: TicketState, found: Resolution) -> None:
        """After a credential change, a notice to the channels registered on the account (best effort:
        the change stands and is recorded whether or not the notice goes out; sent once per ticket)."""
        from tierone.notify.change_notice import build_change_notice, notice_recipients

        send_mail = self._msp_mail()
        if state.data.get("OwnerNotified") or send_mail is None or found.target is None or found.tenant_id is None:
            return
        directory = self.services.directory(found.tenant_id)
        try:
            manager_id = await directory.manager_id(found.target.id)
            manager = await directory.get_user(manager_id) if manager_id else None
            recipients = notice_recipients(found.target, manager)
            subject, body = build_change_notice(
                found.triage.intent, found.target, found.requester, state.ref, datetime.now(UTC)
            )
            assert self.settings.approval_sender is not None
            sender = self.settings.approval_sender
            await asyncio.gather(*(send_mail(sender, address, subject, body) for address in recipients))
        except (PermanentError, TransientError) as exc:
            log.warning("ticket %s: the change notice could not be sent (%s)", state.ref, exc)
            found.evidence.changes.append("the security notice to the account's registered addresses failed")
            return
        await state.save(OwnerNotified=True)
        if recipients:
            found.evidence.changes.append(f"security notice sent to {len(recipients)} registered address(es)")

    def _playbook_context(self, state: TicketState, found: Resolution) -> PlaybookContext:
        assert found.tenant_id is not None
        assert found.requester is not None
        assert found.request is not None
        return PlaybookContext(
            tenant_id=found.tenant_id,
            ticket_ref=state.ref,
            directory=self.services.directory(found.tenant_id),
            exchange=self.services.exchange(found.tenant_id) if self.services.exchange else None,
            requester=found.requester,
            target=found.target,
            request=found.request,
            deliver_credential=self._credential_sink(state, found.tenant_id),
            customer_name=found.mapping.customer_name if found.mapping else "",
            template=found.mapping.onboarding if found.mapping else None,
        )

    async def _plan_lines(self, state: TicketState, found: Resolution) -> list[str]:
        """What the action would do, step by step (planning reads; it never writes)."""
        from tierone.playbooks.registry import PLAYBOOKS

        if found.triage.intent == "password_reset":
            assert found.target is not None
            return [
                f"set a temporary password on {found.target.user_principal_name}, change required at next sign-in",
                "hand the password over by a one-time link (never in the ticket)",
            ]
        steps = await PLAYBOOKS[found.triage.intent].plan(self._playbook_context(state, found))
        return [step.description for step in steps]

    def _credential_sink(self, state: TicketState, tenant_id: str) -> Callable[[str, str], Awaitable[str]]:
        """Hands a credential over through a one-time link; a later one for the ticket replaces it."""

        async def deliver(secret: str, purpose: str) -> str:
            links = SecretLinks(self.storage.secrets, self.settings)
            previous = state.data.get("CredentialRow")
            if previous:
                await links.revoke(str(previous))
            link = await links.issue(secret, purpose=purpose, tenant_id=tenant_id, ticket_ref=state.ref)
            await state.save(CredentialRow=link.row_key, CredentialLinkSealed=state.seal(link.token))
            return link.url

        return deliver

    async def _credential_link(self, state: TicketState) -> str | None:
        sealed = state.data.get("CredentialLinkSealed")
        if not sealed:
            return None
        return SecretLinks(self.storage.secrets, self.settings).url_for(state.unseal(str(sealed)))

    async def _close(
        self, psa: PsaClient, state: TicketState, found: Resolution, customer_text: str, outcome: Outcome
    ) -> Outcome:
        ticket_id = found.ticket.id
        first = state.first_attempt
        await ensure_note(
            psa, ticket_id, state.ref, "update", customer_text, NoteVisibility.CUSTOMER, first_attempt=first
        )
        evidence = found.evidence
        evidence.finished_at = datetime.now(UTC)
        await ensure_note(
            psa,
            ticket_id,
            state.ref,
            "evidence",
            evidence.render("TierOne resolved this ticket."),
            NoteVisibility.INTERNAL,
            first_attempt=first,
        )
        start = state.started_at
        worked = (evidence.finished_at - start).total_seconds() - state.waited_seconds
        minutes = max(1, math.ceil(worked / 60))
        await ensure_time_entry(
            psa,
            ticket_id,
            state.ref,
            start,
            start + timedelta(minutes=minutes),
            f"TierOne: {found.triage.intent.replace('_', ' ')} completed automatically.",
            first_attempt=first,
        )
        status = await psa.close_ticket(ticket_id)
        await self.audit.append(
            found.tenant_id or MSP_AUDIT_PARTITION,
            f"{state.ref}:closed",
            AuditEvent(
                event_type="closed",
                ticket=state.ref,
                actor="tierone",
                outcome=outcome.value,
                rule=evidence.rule,
                evidence={"status": status},
            ),
        )
        await state.save(State=outcome.value, Status=status, FinishedAt=evidence.finished_at)
        log.info("ticket %s %s (status %s)", state.ref, outcome.value, status)
        return outcome

    async def _escalate(self, psa: PsaClient, state: TicketState, found: Resolution, reason: str) -> Outcome:
        evidence = found.evidence
        evidence.finished_at = datetime.now(UTC)
        text = evidence.render(f"TierOne escalated this ticket to a technician: {reason}.")
        await ensure_note(
            psa,
            found.ticket.id,
            state.ref,
            "escalation",
            text,
            NoteVisibility.INTERNAL,
            first_attempt=state.first_attempt,
        )
        status = await psa.escalate_ticket(found.ticket.id)
        await self.audit.append(
            found.tenant_id or MSP_AUDIT_PARTITION,
            f"{state.ref}:escalated",
            AuditEvent(
                event_type="escalated",
                ticket=state.ref,
                actor="tierone",
                outcome="escalated",
                rule=evidence.rule,
                evidence={"reason": reason},
            ),
        )
        await state.save(
            State=Outcome.ESCALATED.value,
            Reason=reason[:500],
            Status=status or "",
            FinishedAt=evidence.finished_at,
        )
        log.info("ticket %s escalated: %s", state.ref, reason)
        return Outcome.ESCALATED

    async def _escalate_unreadable(self, psa: PsaClient, work: TicketWork, state: TicketState, reason: str) -> Outcome:
        """A permanent failure before or after the decision: hand over with what is known."""
        text = f"TierOne could not complete this ticket and hands it to a technician.\nReason: {reason}"
        await ensure_note(psa, work.ticket_id, state.ref, "escalation", text, NoteVisibility.INTERNAL)
        await psa.escalate_ticket(work.ticket_id)
        await self.audit.append(
            MSP_AUDIT_PARTITION,
            f"{state.ref}:escalated",
            AuditEvent(
                event_type="escalated",
                ticket=state.ref,
                actor="tierone",
                outcome="escalated",
                rule="P99-permanent-error",
                evidence={"reason": reason[:500]},
            ),
        )
        await state.save(State=Outcome.ESCALATED.value, Reason=reason[:500], FinishedAt=datetime.now(UTC))
        return Outcome.ESCALATED

    async def defer(self, work: TicketWork, problem: TransientError) -> bool:
        """Retry later with exponential backoff (a PSA or tenant down for an hour loses nothing).

        Returns False once the deferrals are spent: the host's own retries and the poison queue
        then take over, ending in an honest escalation."""
        if work.deferrals >= self.settings.retry_max_deferrals:
            return False
        delay = min(900.0, self.settings.retry_base_seconds * 2**work.deferrals)
        delay = max(delay, problem.retry_after or 0.0)
        later = work.model_copy(update={"deferrals": work.deferrals + 1})
        await self.storage.ticket_queue.send(later.model_dump_json(), delay_seconds=math.ceil(delay))
        log.warning(
            "ticket %s:%s deferred %.0fs (retry %d of %d): %s",
            work.psa.value,
            work.ticket_id,
            delay,
            later.deferrals,
            self.settings.retry_max_deferrals,
            problem,
        )
        return True

    async def give_up(self, work: TicketWork, message_id: str) -> None:
        """The message exhausted its retries (poison queue): tell a human, honestly."""
        state = TicketState(self.storage, cipher_from(self.settings, b"tierone-ticket-state-v1"), work)
        entity = await self.storage.tickets.get(state.partition, state.row)
        if entity is not None and entity.get("State") in TERMINAL:
            return
        last_error = str(entity.get("LastError", "unknown")) if entity else "unknown"
        changed = bool(entity.get("Changed")) if entity else False
        psa = self.services.psa_client(work.psa)
        await psa.get_ticket(work.ticket_id)  # the shared client's copy may predate the failed attempts
        text = (
            "TierOne gave up on this ticket after repeated failures and hands it to a technician.\n"
            f"Last error: {last_error}\n"
            + (
                "A change WAS made and confirmed in the directory; the write-back did not finish."
                if changed
                else "No change was confirmed in the directory."
            )
        )
        await ensure_note(psa, work.ticket_id, state.ref, "gave-up", text, NoteVisibility.INTERNAL)
        await psa.escalate_ticket(work.ticket_id)
        await self.audit.append(
            MSP_AUDIT_PARTITION,
            f"{state.ref}:failed",
            AuditEvent(
                event_type="failed",
                ticket=state.ref,
                actor="tierone",
                outcome="failed",
                evidence={"last_error": last_error[:500], "changed": changed},
            ),
        )
        await self.storage.tickets.upsert(
            {
                "PartitionKey": state.partition,
                "RowKey": state.row,
                "State": Outcome.FAILED.value,
                "Reason": last_error[:500],
                "FinishedAt": datetime.now(UTC),
            }
        )

"""The client's gates between a safe decision and the change.

`tierone/policy.py` has said the request is safe to act on; the client's policy now says how far
TierOne may go for this intent, now: `off` hands the ticket to a technician untouched, `propose`
(shadow mode) posts the plan as an internal note and changes nothing, `approval` waits for a
designated approver, `auto` goes ahead. Credential actions (password and MFA resets) are also
confirmed out of band first, through a channel registered on the account before the ticket.

A gate that needs a human parks the ticket (tierone/holds.py) and ends the run's message; when the
hold is answered the run resumes here, re-reads every fact, and finds the answer. The approval is
bound to the plan's facts (target, object, change) by a hash: if the ticket was edited so that the
plan differs, the approval does not carry over."""

from __future__ import annotations

import logging
import re
import secrets
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from psa_integrations.base import PsaClient
from psa_integrations.models import NoteVisibility
from tierone.approvals import ApprovalRequest, Approvals, ApprovalState, Approver, Identity, plan_hash_of
from tierone.audit import AuditEvent, AuditLog
from tierone.client_policy import DEFAULT_SCOPE, Mode, PolicyStore
from tierone.client_policy import Approver as PolicyApprover
from tierone.confirmations import Confirmation, Confirmations, ConfirmationState, build_confirmation_mail
from tierone.errors import PermanentError
from tierone.holds import AWAITING_APPROVAL, AWAITING_CONFIRMATION
from tierone.run_state import Outcome, Resolution, TicketState
from tierone.secret_links import token_hash
from tierone.settings import Settings
from tierone.storage import ConcurrencyConflict, Storage
from tierone.verification import CREDENTIAL_INTENTS, ConfirmationChannel, confirmation_channel
from tierone.writeback import ensure_note

if TYPE_CHECKING:
    from identity_integrations.models import Directory

log = logging.getLogger("tierone.gates")

SendMail = Callable[[str, str, str, str], Awaitable[Any]]
_GUID = re.compile(r"^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$")

INTENT_LABELS = {
    "password_reset": "Reset the password",
    "account_unlock": "Unblock sign-in",
    "mfa_reset": "Reset MFA and issue a Temporary Access Pass",
    "group_membership": "Change group membership",
    "mailbox_permission": "Change shared-mailbox permissions",
    "license_change": "Change licences",
    "onboarding": "Create the account of a new starter",
    "offboarding": "Offboard a leaver",
}


def plan_facts(found: Resolution) -> tuple[str, dict[str, str]]:
    """The plan in one sentence and its stable facts (what an approver agrees to, and what is hashed)."""
    intent = found.triage.intent
    request = found.request
    facts: dict[str, str] = {}
    if found.mapping is not None:
        facts["Customer"] = found.mapping.customer_name or found.ticket.company.name
    if found.target is not None:
        facts["Target"] = f"{found.target.display_name} <{found.target.user_principal_name}>"
    if request is not None:
        if request.new_user_name:
            facts["New user"] = request.new_user_name
        if request.new_user_role:
            facts["Role"] = request.new_user_role
        if request.object:
            facts["Object"] = request.object
        if intent in ("group_membership", "mailbox_permission", "license_change"):
            facts["Change"] = "remove" if request.remove else "add"
        if request.rights:
            facts["Rights"] = ", ".join(request.rights)
        if request.replaces:
            facts["Replaces"] = request.replaces
    who = facts.get("Target") or facts.get("New user") or "an unnamed user"
    what = f" ({facts['Change']} {facts['Object']})" if "Object" in facts and "Change" in facts else ""
    return f"{INTENT_LABELS.get(intent, intent)} for {who}{what}", facts


class GateStage:
    """Mixed into the Pipeline: the mode, confirmation and approval gates."""

    settings: Settings
    storage: Storage
    audit: AuditLog
    client_policies: PolicyStore
    services: Any  # tierone.pipeline.Services

    if TYPE_CHECKING:

        async def _escalate(self, psa: PsaClient, state: TicketState, found: Resolution, reason: str) -> Outcome: ...

        async def _plan_lines(self, state: TicketState, found: Resolution) -> list[str]: ...

    # --- the gate

    async def _gate(self, psa: PsaClient, state: TicketState, found: Resolution) -> Outcome | None:
        """None: go ahead and act. Otherwise the outcome of this run (parked, proposed, escalated)."""
        assert found.client is not None
        assert found.tenant_id is not None
        intent = found.triage.intent
        mode, rule = found.client.effective_mode(intent, datetime.now(UTC))
        found.evidence.mode = f"{mode.value} (rule {rule}, client policy version {found.policy_version})"
        found.evidence.rule = f"{found.evidence.rule}; {rule}"
        await self.audit.append(
            found.tenant_id,
            f"{state.ref}:mode:{mode.value}",
            AuditEvent(
                event_type="mode",
                ticket=state.ref,
                actor="tierone",
                action=intent,
                outcome=mode.value,
                rule=rule,
                evidence={"policy_version": found.policy_version},
            ),
        )
        if mode is Mode.OFF:
            return await self._escalate(
                psa, state, found, f"the client's policy keeps {intent.replace('_', ' ')} for a technician"
            )
        if mode is Mode.PROPOSE:
            return await self._propose(psa, state, found)
        if intent in CREDENTIAL_INTENTS and found.client.confirm_credentials:
            held = await self._confirmation_gate(psa, state, found)
            if held is not None:
                return held
        # An approval asked for earlier binds even if the mode has since become `auto`: a denial stands.
        if mode is Mode.APPROVAL or state.data.get("ApprovalId"):
            return await self._approval_gate(psa, state, found)
        return None

    # --- shadow mode

    async def _propose(self, psa: PsaClient, state: TicketState, found: Resolution) -> Outcome:
        try:
            found.evidence.plan = await self._plan_lines(state, found)
        except PermanentError as exc:
            return await self._escalate(psa, state, found, f"no plan could be made: {exc}")
        evidence = found.evidence
        evidence.finished_at = datetime.now(UTC)
        text = evidence.render(
            "TierOne proposes the plan below and changed nothing (shadow mode for this client). "
            "A technician decides and carries it out."
        )
        await ensure_note(
            psa,
            found.ticket.id,
            state.ref,
            "proposal",
            text,
            NoteVisibility.INTERNAL,
            first_attempt=state.first_attempt,
        )
        status = await psa.escalate_ticket(found.ticket.id)
        await self.audit.append(
            found.tenant_id or "msp",
            f"{state.ref}:proposed",
            AuditEvent(
                event_type="proposed",
                ticket=state.ref,
                actor="tierone",
                requester=found.requester.id if found.requester else None,
                target=found.target.id if found.target else None,
                action=found.triage.intent,
                outcome="proposed",
                rule=evidence.rule,
                evidence={"plan": evidence.plan},
            ),
        )
        await state.save(State=Outcome.PROPOSED.value, Status=status or "", FinishedAt=evidence.finished_at)
        log.info("ticket %s: plan proposed (shadow mode)", state.ref)
        return Outcome.PROPOSED

    # --- out-of-band confirmation

    def _confirmations(self) -> Confirmations:
        return Confirmations(self.storage.approvals, self.settings, self.audit)

    async def _confirmation_gate(self, psa: PsaClient, state: TicketState, found: Resolution) -> Outcome | None:
        confirmations = self._confirmations()
        cid = state.data.get("ConfirmationId")
        confirmation = await confirmations.get(str(cid)) if cid else None
        if confirmation is None or (
            confirmation.state is ConfirmationState.PENDING and not state.data.get("ConfirmationSent")
        ):
            return await self._ask_confirmation(psa, state, found, confirmations, confirmation)
        evidence = found.evidence
        said = f"{confirmation.recipient_role} ({confirmation.masked_recipient})"
        if confirmation.state is ConfirmationState.PENDING and not confirmation.is_expired():
            await state.save(State=AWAITING_CONFIRMATION)
            return Outcome.AWAITING_CONFIRMATION
        if confirmation.state is ConfirmationState.CONFIRMED:
            at = f" at {confirmation.answered_at:%Y-%m-%d %H:%M} UTC" if confirmation.answered_at else ""
            evidence.confirmation = f"confirmed by {said}{at}"
            if confirmation.facts != plan_facts(found)[1]:
                # What was confirmed is not what the ticket now asks (it was edited meanwhile).
                evidence.rule = f"{evidence.rule}; V11-request-changed"
                return await self._escalate(
                    psa, state, found, "the request changed after it was confirmed; nothing was changed"
                )
            return None
        if confirmation.state is ConfirmationState.DECLINED:
            evidence.confirmation = f"declined by {said}"
            evidence.rule = f"{evidence.rule}; V09-confirmation-declined"
            return await self._escalate(
                psa,
                state,
                found,
                f"{said} answered that nobody asked for this: treat the ticket as a possible social-engineering "
                "attempt; nothing was changed",
            )
        evidence.confirmation = f"not answered by {said} before {confirmation.expires_at:%Y-%m-%d %H:%M} UTC"
        evidence.rule = f"{evidence.rule}; V10-confirmation-expired"
        return await self._escalate(
            psa, state, found, "the request was not confirmed out of band before the link expired; nothing was changed"
        )

    async def _ask_confirmation(
        self,
        psa: PsaClient,
        state: TicketState,
        found: Resolution,
        confirmations: Confirmations,
        existing: Confirmation | None,
    ) -> Outcome:
        assert found.tenant_id is not None
        assert found.parties is not None
        evidence = found.evidence
        directory: Directory = self.services.directory(found.tenant_id)
        if existing is not None:
            # Recorded but not sent (a crash in between): it goes where the record says, nowhere else.
            channel: ConfirmationChannel | None = ConfirmationChannel(existing.recipient, existing.recipient_role)
        else:
            channel = await confirmation_channel(directory, found.parties)
        send_mail = self._msp_mail()
        if channel is None or send_mail is None:
            evidence.rule = f"{evidence.rule}; V08-no-confirmation-channel"
            why = (
                "the account has no alternate e-mail or manager on record to confirm a credential change with"
                if channel is None
                else "no mailbox is configured to send confirmations (TIERONE_MSP_TENANT_ID, TIERONE_APPROVAL_SENDER)"
            )
            return await self._escalate(psa, state, found, why)
        sealed = state.data.get("ConfirmationTokenSealed")
        token = state.unseal(str(sealed)) if sealed else secrets.token_urlsafe(32)
        if not sealed:
            # Chosen and kept before the record exists, so a retried run finds the same confirmation.
            await state.save(ConfirmationTokenSealed=state.seal(token), ConfirmationId=token_hash(token))
        summary, facts = plan_facts(found)
        confirmation = existing
        if confirmation is None:
            try:
                confirmation, _ = await confirmations.create(
                    tenant_id=found.tenant_id,
                    ticket_ref=state.ref,
                    intent=found.triage.intent,
                    summary=summary,
                    facts=facts,
                    recipient=channel.address,
                    recipient_role=channel.role,
                    ttl_minutes=self.settings.confirmation_ttl_minutes,
                    token=token,
                )
            except ConcurrencyConflict:
                confirmation = await confirmations.by_token(token)
                assert confirmation is not None
        target = found.target
        first_name = (target.display_name.split(" ")[0] if target and target.display_name else "") or "there"
        if channel.role != "the user's alternate e-mail on record":
            first_name = "there"
        subject, body = build_confirmation_mail(confirmation, confirmations.url_for(token), first_name=first_name)
        assert self.settings.approval_sender is not None
        await send_mail(self.settings.approval_sender, channel.address, subject, body)
        await state.save(
            ConfirmationSent=True,
            State=AWAITING_CONFIRMATION,
            HoldUntil=confirmation.expires_at,
            ParkedAt=datetime.now(UTC),
        )
        note = (
            f"TierOne is waiting for out-of-band confirmation before it changes anything: a link went to "
            f"{channel.role} ({confirmation.masked_recipient}), an address registered before this ticket. "
            f"It expires at {confirmation.expires_at:%Y-%m-%d %H:%M} UTC; without an answer the ticket is escalated.\n"
            f"Plan: {summary}"
        )
        await ensure_note(
            psa,
            found.ticket.id,
            state.ref,
            "confirmation",
            note,
            NoteVisibility.INTERNAL,
            first_attempt=state.first_attempt,
        )
        log.info("ticket %s awaits confirmation from %s", state.ref, channel.role)
        return Outcome.AWAITING_CONFIRMATION

    # --- approval

    def _approvals(self) -> Approvals:
        return Approvals(self.storage.approvals, self.settings, self.audit)

    async def _approval_gate(self, psa: PsaClient, state: TicketState, found: Resolution) -> Outcome | None:
        assert found.tenant_id is not None
        approvals = self._approvals()
        summary, facts = plan_facts(found)
        aid = state.data.get("ApprovalId")
        approval = await approvals.get(str(aid)) if aid else None
        if approval is None:
            return await self._ask_approval(psa, state, found, approvals, summary, facts)
        evidence = found.evidence
        if approval.state is ApprovalState.PENDING and not approval.is_expired():
            await state.save(State=AWAITING_APPROVAL)
            return Outcome.AWAITING_APPROVAL
        if approval.state is ApprovalState.APPROVED:
            evidence.approval = (
                f"approved by {approval.decided_by_upn or approval.decided_by} via {approval.decision_channel} "
                f"at {approval.decided_at:%Y-%m-%d %H:%M} UTC"
            )
            if approval.plan_hash != plan_hash_of(found.tenant_id, state.ref, found.triage.intent, facts):
                evidence.rule = f"{evidence.rule}; A04-plan-changed"
                return await self._escalate(
                    psa, state, found, "the request changed after it was approved; nothing was changed"
                )
            return None
        if approval.state is ApprovalState.DENIED:
            evidence.approval = (
                f"denied by {approval.decided_by_upn or approval.decided_by} via {approval.decision_channel}"
            )
            evidence.rule = f"{evidence.rule}; A02-approval-denied"
            return await self._escalate(psa, state, found, "the approver denied the request; nothing was changed")
        evidence.approval = f"nobody decided before {approval.expires_at:%Y-%m-%d %H:%M} UTC"
        evidence.rule = f"{evidence.rule}; A03-approval-expired"
        return await self._escalate(psa, state, found, "nobody approved the request in time; nothing was changed")

    async def _ask_approval(
        self,
        psa: PsaClient,
        state: TicketState,
        found: Resolution,
        approvals: Approvals,
        summary: str,
        facts: dict[str, str],
    ) -> Outcome:
        from tierone.notify.chain import notifier_from

        assert found.tenant_id is not None
        assert found.client is not None
        evidence = found.evidence
        approvers = await self._approvers(found.client.approvers or await self._msp_default_approvers())
        if found.requester is not None:
            approvers = [a for a in approvers if a.upn.lower() != found.requester.user_principal_name.lower()]
        if not approvers:
            evidence.rule = f"{evidence.rule}; A01-no-approvers"
            return await self._escalate(
                psa, state, found, "approval is required but the client's policy names no approver who can sign in"
            )
        try:
            evidence.plan = await self._plan_lines(state, found)
        except PermanentError as exc:
            return await self._escalate(psa, state, found, f"no plan could be made: {exc}")
        aid = str(state.data.get("ApprovalId") or "") or secrets.token_urlsafe(24)
        if not state.data.get("ApprovalId"):
            await state.save(ApprovalId=aid)  # chosen before the record exists: a retry finds the same one
        requester = found.requester
        try:
            approval = await approvals.create(
                tenant_id=found.tenant_id,
                ticket_ref=state.ref,
                intent=found.triage.intent,
                summary=summary,
                facts=facts,
                requester=Identity(
                    oid=requester.id if requester else "unknown", upn=requester.user_principal_name if requester else ""
                ),
                approvers=approvers,
                approval_id=aid,
            )
        except ConcurrencyConflict:
            existing = await approvals.get(aid)
            assert existing is not None
            approval = existing

        async def psa_note(request: ApprovalRequest, url: str) -> None:
            text = evidence.render(
                "TierOne is waiting for approval before it changes anything. "
                f"Approve or deny: {url} (sign-in required; designated approvers: "
                f"{', '.join(a.upn for a in request.approvers)}). "
                f"The request expires at {request.expires_at:%Y-%m-%d %H:%M} UTC; then the ticket is escalated."
            )
            await ensure_note(
                psa,
                found.ticket.id,
                state.ref,
                "approval",
                text,
                NoteVisibility.INTERNAL,
                first_attempt=state.first_attempt,
            )

        notifier = notifier_from(self.settings, approvals, send_mail=self._msp_mail(), psa_note=psa_note)
        sent = await notifier.start(approval)
        await state.save(State=AWAITING_APPROVAL, HoldUntil=approval.expires_at, ParkedAt=datetime.now(UTC))
        log.info("ticket %s awaits approval (%s)", state.ref, ", ".join(s.channel for s in sent) or "no channel")
        return Outcome.AWAITING_APPROVAL

    async def _msp_default_approvers(self) -> list[PolicyApprover]:
        """A client that names no approvers of its own is served by the MSP default's."""
        return (await self.client_policies.resolve(DEFAULT_SCOPE)).policy.approvers

    async def _approvers(self, named: list[PolicyApprover]) -> list[Approver]:
        """The named approvers as Entra identities of the MSP's tenant (where approvers sign in)."""
        msp = self.settings.msp_tenant_id
        directory = self.services.directory(msp) if msp else None
        resolved: list[Approver] = []
        for approver in named:
            if _GUID.match(approver.id):
                upn = approver.id
                if directory is not None:
                    try:
                        upn = (await directory.get_user(approver.id)).user_principal_name
                    except PermanentError:
                        log.warning("approver %s is not a user of the MSP tenant; skipped", approver.id)
                        continue
                resolved.append(
                    Approver(
                        oid=approver.id,
                        upn=upn,
                        slack_user_id=approver.slack_id,
                        slack_team_id=approver.slack_team_id,
                    )
                )
                continue
            user = await directory.find_user_by_email(approver.id) if directory is not None else None
            if user is None:
                log.warning("approver %s cannot be resolved in the MSP tenant; skipped", approver.id)
                continue
            resolved.append(
                Approver(
                    oid=user.id,
                    upn=user.user_principal_name,
                    slack_user_id=approver.slack_id,
                    slack_team_id=approver.slack_team_id,
                )
            )
        return resolved

    def _msp_mail(self) -> SendMail | None:
        """Sends from the MSP's own mailbox (approval requests, confirmations), or None if not set up."""
        if not self.settings.msp_tenant_id or not self.settings.approval_sender:
            return None
        directory = self.services.directory(self.settings.msp_tenant_id)

        async def send(sender: str, to: str, subject: str, html: str) -> Any:
            return await directory.send_mail(sender, to, subject, html)

        return send

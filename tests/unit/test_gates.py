"""What an approver agrees to: the plan's stable facts, and the hash that binds an approval to them."""

from __future__ import annotations

from identity_integrations.models import DirectoryUser
from psa_integrations.models import Company, PsaKind, Ticket
from tierone.approvals import plan_hash_of
from tierone.evidence import Evidence
from tierone.gates import plan_facts
from tierone.playbooks.context import PlaybookRequest
from tierone.run_state import Resolution
from tierone.triage import TriageResult

GRACE = DirectoryUser(id="g-1", display_name="Grace Hopper", user_principal_name="grace@contoso.example")
TOM = DirectoryUser(id="t-1", display_name="Tom Baker", user_principal_name="tom@contoso.example")
ANNA = DirectoryUser(id="a-1", display_name="Anna Berg", user_principal_name="anna@contoso.example")


def found(target: DirectoryUser, request: PlaybookRequest) -> Resolution:
    ticket = Ticket(psa=PsaKind.CONNECTWISE, id="7", summary="Sales group", company=Company(id="1", name="Contoso"))
    triage = TriageResult.model_validate({"intent": request.intent, "confidence": 0.99})
    evidence = Evidence(ticket_ref="connectwise:7", summary=ticket.summary, intent=request.intent, confidence=0.99)
    return Resolution(
        ticket=ticket, triage=triage, evidence=evidence, tenant_id="t", requester=GRACE, target=target, request=request
    )


def test_the_plan_names_what_changes_and_for_whom():
    summary, facts = plan_facts(found(TOM, PlaybookRequest(intent="group_membership", object="Sales")))
    assert summary == "Change group membership for Tom Baker <tom@contoso.example> (add Sales)"
    assert facts == {
        "Target": "Tom Baker <tom@contoso.example>",
        "Object": "Sales",
        "Change": "add",
    }


def test_an_approval_does_not_carry_over_to_a_different_target_object_or_direction():
    def digest(target: DirectoryUser, request: PlaybookRequest) -> str:
        return plan_hash_of("t", "connectwise:7", request.intent, plan_facts(found(target, request))[1])

    approved = digest(TOM, PlaybookRequest(intent="group_membership", object="Sales"))
    assert approved == digest(TOM, PlaybookRequest(intent="group_membership", object="Sales"))
    assert approved != digest(ANNA, PlaybookRequest(intent="group_membership", object="Sales"))
    assert approved != digest(TOM, PlaybookRequest(intent="group_membership", object="Domain Admins"))
    assert approved != digest(TOM, PlaybookRequest(intent="group_membership", object="Sales", remove=True))

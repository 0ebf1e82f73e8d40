from identity_integrations.models import DirectoryRole, DirectoryUser
from tierone.policy import PolicyInput, Verdict, decide

ANNA = DirectoryUser(id="a", display_name="Anna Berg", user_principal_name="anna@contoso.example")
TOM = DirectoryUser(id="t", display_name="Tom Baker", user_principal_name="tom@contoso.example")


def facts(**overrides):
    base = {"intent": "password_reset", "confidence": 0.8, "requester": ANNA, "target": ANNA}
    return PolicyInput(**{**base, **overrides})


def test_a_user_resetting_their_own_unprivileged_account_may_act():
    decision = decide(facts())
    assert decision.verdict is Verdict.ACT
    assert decision.rule == "P10-self-service-reset"


def test_a_request_for_someone_else_escalates():
    decision = decide(facts(target=TOM))
    assert decision.verdict is Verdict.ESCALATE
    assert decision.rule == "P06-requester-not-target"


def test_text_naming_someone_else_escalates_even_if_the_target_resolved_to_the_requester():
    assert decide(facts(names_someone_else=True)).verdict is Verdict.ESCALATE


def test_a_privileged_target_is_never_changed_whoever_asks():
    decision = decide(facts(target_roles=[DirectoryRole(display_name="Global Administrator")]))
    assert decision.verdict is Verdict.ESCALATE
    assert decision.rule == "P05-target-privileged"
    assert "Global Administrator" in decision.reason


def test_low_impact_reader_roles_do_not_count_as_privileged():
    assert decide(facts(target_roles=[DirectoryRole(display_name="Directory Readers")])).verdict is Verdict.ACT


def test_unknown_requester_escalates():
    assert decide(facts(requester=None)).rule == "P04-requester-unknown"


def test_synced_and_disabled_accounts_escalate():
    synced = ANNA.model_copy(update={"on_premises_sync_enabled": True})
    disabled = ANNA.model_copy(update={"account_enabled": False})
    assert decide(facts(requester=synced, target=synced)).rule == "P07-target-synced"
    assert decide(facts(requester=disabled, target=disabled)).rule == "P08-target-disabled"


def test_other_work_and_not_yet_automated_intents_escalate():
    assert decide(facts(intent="other")).rule == "P01-not-identity-work"
    assert decide(facts(intent="mfa_reset")).rule == "P02-intent-not-automated"


def test_low_confidence_escalates():
    assert decide(facts(confidence=0.2)).rule == "P03-low-confidence"

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


def test_other_work_and_intents_outside_the_automated_set_escalate():
    assert decide(facts(intent="other")).rule == "P01-not-identity-work"
    assert decide(facts(intent="printer_setup")).rule == "P02-intent-not-automated"


def test_the_targets_manager_of_record_may_ask_on_their_behalf():
    decision = decide(facts(intent="group_membership", target=TOM, requester_is_manager=True))
    assert decision.verdict is Verdict.ACT
    assert decision.rule == "P11-group_membership-manager"


def test_someone_who_is_neither_the_target_nor_their_manager_is_refused_for_every_intent():
    for intent in ("account_unlock", "mfa_reset", "group_membership", "license_change", "mailbox_permission"):
        assert decide(facts(intent=intent, target=TOM)).rule == "P06-requester-not-target"


def test_offboarding_needs_the_leavers_manager_and_never_the_leaver():
    assert decide(facts(intent="offboarding")).rule == "P09-manager-required"
    assert decide(facts(intent="offboarding", target=TOM, requester_is_manager=True)).verdict is Verdict.ACT


def test_onboarding_acts_only_for_clients_with_a_template():
    assert decide(facts(intent="onboarding", target=None)).rule == "P12-no-onboarding-template"
    assert decide(facts(intent="onboarding", target=None, has_onboarding_template=True)).verdict is Verdict.ACT


def test_the_per_intent_threshold_is_respected():
    assert decide(facts(confidence=0.7, threshold=0.8)).rule == "P03-low-confidence"
    assert decide(facts(confidence=0.9, threshold=0.8)).verdict is Verdict.ACT


def test_a_privileged_target_is_refused_even_when_the_manager_asks():
    admin_roles = [DirectoryRole(display_name="Exchange Administrator")]
    decision = decide(facts(target=TOM, requester_is_manager=True, target_roles=admin_roles))
    assert decision.rule == "P05-target-privileged"


def test_an_unlock_may_re_enable_a_disabled_account_but_a_reset_may_not():
    disabled = ANNA.model_copy(update={"account_enabled": False})
    assert decide(facts(intent="account_unlock", requester=disabled, target=disabled)).verdict is Verdict.ACT
    assert decide(facts(requester=disabled, target=disabled)).rule == "P08-target-disabled"


def test_low_confidence_escalates():
    assert decide(facts(confidence=0.2)).rule == "P03-low-confidence"

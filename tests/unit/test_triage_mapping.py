"""How a PSA's filing of a closed ticket becomes an intent to learn from."""

from __future__ import annotations

import pytest

from psa_integrations.models import ClosedTicket, PsaKind
from tierone.errors import ConfigError
from tierone.triage.mapping import CategoryMap


def ticket(*categories: str, resolution: str = "") -> ClosedTicket:
    return ClosedTicket(psa=PsaKind.AUTOTASK, id="1", summary="s", categories=list(categories), resolution=resolution)


@pytest.mark.parametrize(
    ("categories", "intent"),
    [
        (("Service Request", "Account / Access", "Password Reset"), "password_reset"),
        (("Account", "Locked out"), "account_unlock"),
        (("Service Request", "Account", "MFA / Authenticator"), "mfa_reset"),
        (("Email", "Shared Mailbox Permission"), "mailbox_permission"),
        (("Access", "Distribution list"), "group_membership"),
        (("Account / Access", "Licence Change"), "license_change"),
        (("User Lifecycle", "New Starter"), "onboarding"),
        (("User Lifecycle", "Leaver"), "offboarding"),
        (("Hardware", "Printer"), "other"),
    ],
)
def test_the_narrowest_category_with_an_identity_keyword_decides(categories, intent):
    assert CategoryMap().map(ticket(*categories)).intent == intent


def test_a_category_naming_another_system_is_other_whatever_it_says_about_passwords():
    mapped = CategoryMap().map(ticket("Line of Business Application", "Login / Password"))
    assert mapped.intent == "other"


def test_the_msps_own_mapping_wins_and_the_most_specific_key_first():
    mapping = CategoryMap.from_setting('{"Sage": "other", "Sage > Microsoft Password": "password_reset"}')
    assert mapping.map(ticket("Sage", "Password")).intent == "other"
    assert mapping.map(ticket("Sage", "Microsoft Password")).intent == "password_reset"


def test_an_uncategorised_ticket_is_mapped_by_what_the_technician_wrote():
    assert (
        CategoryMap().map(ticket(resolution="Reset the user's password and sent a temp one")).intent == "password_reset"
    )
    assert CategoryMap().map(ticket("Service Request", resolution="Unlocked the account.")).intent == "account_unlock"


def test_tieroness_own_notes_are_never_learnt_from():
    own = ticket(resolution="[TierOne connectwise:1 update] Your password has been reset.")
    assert CategoryMap().map(own).intent is None


def test_an_unmappable_ticket_is_left_out_with_the_reason():
    mapped = CategoryMap().map(ticket("Service Request"))
    assert mapped.intent is None
    assert "Service Request" in mapped.why


@pytest.mark.parametrize("value", ["not json", '["a"]', '{"Sage": "reset_everything"}'])
def test_a_wrong_mapping_setting_is_reported_by_name(value):
    with pytest.raises(ConfigError, match="TIERONE_TRIAGE_CATEGORY_MAP"):
        CategoryMap.from_setting(value)

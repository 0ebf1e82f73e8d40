"""The rules that have the last word after the model: a credential request for a system that is not
Microsoft 365 / Entra ID is `other`, and so is a request to *create* a Team, group, list, site or
mailbox (creating a container is not a change to the membership of one that exists). Genuine
membership requests stay what they are.

The names below are made up or absent from both corpus splits on purpose: the rules must work on
evidence (a capitalised name where a system goes, a creation verb before a container), not on names.
"""

from __future__ import annotations

import pytest

from tests.unit.stand_in_models import insisting
from tierone.triage import classify
from tierone.triage.guard import creates_container, unknown_systems

ANNA = "anna.berg@contoso.example"


# -- credential requests for systems that are not Microsoft 365 -------------------------------------

NON_MICROSOFT = [
    ("Can't log in", "I can't log in to Silver Ledger, it says my password is wrong. Please reset my login."),
    ("Password", "Please reset my Practice Hub password, it expired this morning."),
    ("Locked", "I'm locked out of Time Tracker Plus, can you unlock my account?"),
    ("ERP", "Please reset my Acumatica ERP password, it expired."),
    ("Supplier portal", "I'm locked out of the Harbour Supplies portal, please unlock my account"),
    ("2FA", "I got a new phone and need my Keeper Vault 2FA reset"),
    ("Licence", "Could we get a Kestrel CAD licence for the new drafter?"),
    ("Extension PIN", "I forgot my Yeastar extension PIN, can you reset it?"),
    ("VPN", "Reset my Barracuda VPN password please, it won't connect from home."),
]


@pytest.mark.parametrize(("subject", "body"), NON_MICROSOFT)
def test_credential_requests_for_other_systems_are_other(subject, body):
    assert classify(subject, body, ANNA).intent == "other"


@pytest.mark.parametrize(
    ("subject", "body", "intent"),
    [
        ("Can't log in", "I can't log in to Silver Ledger, it says my password is wrong.", "password_reset"),
        ("Password", "Please reset my Practice Hub password, it expired.", "password_reset"),
        ("Locked", "I'm locked out of Time Tracker Plus, can you unlock my account?", "account_unlock"),
        ("Licence", "Could we get a Kestrel CAD licence for the new drafter?", "license_change"),
    ],
)
def test_a_named_system_overrides_even_a_sure_model(subject, body, intent):
    result = classify(subject, body, ANNA, model=insisting(intent))
    assert result.intent == "other"
    assert "unknown-system" in result.flags
    assert any("where a system goes" in reason for reason in result.reasons)


@pytest.mark.parametrize(
    ("text", "name"),
    [
        ("When I log in to Clinic Manager it says my password is wrong.", "Clinic Manager"),
        ("Please reset my Open Ledger login, thanks", "Open Ledger"),
        ("Could I get a Paper Works PDF licence?", "Paper Works PDF"),
        ("I'm locked out of Field Diary Plus since Monday", "Field Diary Plus"),
        ("please reset my Ledger 50 password", "Ledger 50"),
    ],
)
def test_a_capitalised_name_of_known_words_where_a_system_goes_is_a_system(text, name):
    """Each word is known ("clinic", "manager"); the name as a whole is not Microsoft's."""
    assert name in unknown_systems(text)


@pytest.mark.parametrize(
    "text",
    [
        "I can't log in to Microsoft Teams, please reset my password",
        "Please reset my Outlook Web Access password",
        "Please assign me a Power BI Pro licence",
        "Can I get a Microsoft 365 E3 licence for Tom Baker?",
        "Could you add a Visio Plan 2 licence to my account",
        "I'm locked out of my Windows Hello sign in, can you unlock my account",
        "Reset the password for Tom Baker please, he forgot it",
        "I can't sign in to the Company Portal app",
        "My Office 365 Business Premium account is locked",
    ],
)
def test_microsoft_names_and_people_are_not_taken_for_other_systems(text):
    assert unknown_systems(text) == []


@pytest.mark.parametrize(
    ("subject", "body", "intent"),
    [
        ("Password", "I can't log in to Microsoft Teams, please reset my password", "password_reset"),
        ("Password", "Please reset my Outlook Web Access password", "password_reset"),
        ("Licence", "Please assign me a Power BI Pro licence", "license_change"),
        ("Licence", "Can I get a Microsoft 365 E3 licence?", "license_change"),
    ],
)
def test_microsoft_credential_and_licence_requests_keep_their_intent(subject, body, intent):
    result = classify(subject, body, ANNA)
    assert result.intent == intent
    assert "unknown-system" not in result.flags


# -- creating a container is not a membership change ------------------------------------------------

CREATE = [
    ("New Team", "Create a new Team for the project"),
    ("Teams", "Could you create a new Team for the Harbour project? I'll add people myself."),
    ("Distribution list", "Please set up a new distribution list for the board members."),
    ("SharePoint", "Could you create a new SharePoint site for Marketing?"),
    ("Group", "We need a new security group for the auditors, please."),
    ("Shared mailbox", "Please set up a new shared mailbox called Bookings"),
    ("Channel", "can you make a new private channel in the Sales team"),
]


@pytest.mark.parametrize(("subject", "body"), CREATE)
def test_requests_to_create_a_team_group_list_site_or_mailbox_are_not_membership_changes(subject, body):
    result = classify(subject, body, ANNA)
    assert result.intent not in {"group_membership", "mailbox_permission"}


@pytest.mark.parametrize(("subject", "body"), CREATE)
def test_a_creation_request_overrides_even_a_sure_model(subject, body):
    for intent in ("group_membership", "mailbox_permission"):
        result = classify(subject, body, ANNA, model=insisting(intent))
        assert result.intent == "other"
        assert "creates-container" in result.flags
        assert any("asks for something to be created" in reason for reason in result.reasons)


def test_a_creation_request_in_the_subject_counts_too():
    result = classify("Create a new Team", "For the Harbour project please, I'll add people myself.", ANNA)
    assert result.intent != "group_membership"
    forced = classify(
        "Create a new Team",
        "For the Harbour project please, I'll add people myself.",
        ANNA,
        model=insisting("group_membership"),
    )
    assert forced.intent == "other"


@pytest.mark.parametrize(
    ("subject", "body"),
    [
        ("Team", "Please add Anna to the Sales team"),
        ("Group", "Add Tom Baker to the new Finance team please"),
        ("Group", "Please add me to the Finance security group, my manager approved it"),
        ("DL", "Can you put Anna Berg on the Board distribution list?"),
        ("Team", "Please remove Tom from the Projects team, he moved to Sales"),
    ],
)
def test_genuine_membership_requests_stay_group_membership(subject, body):
    result = classify(subject, body, ANNA)
    assert result.intent == "group_membership"
    assert "creates-container" not in result.flags
    assert creates_container(f"{subject}\n{body}") is None


@pytest.mark.parametrize(
    "text",
    [
        "Please add Anna to the Sales team",
        "Add Tom Baker to the new Finance team please",
        "Can you add a new team member to the Sales group? Anna starts Monday.",
        "I'm new in the Sales team, please add me to the team's shared mailbox",
        "Please give me full access to the Bookings shared mailbox",
        "Make me an owner of the new Projects team",
    ],
)
def test_membership_and_access_wording_is_not_a_creation_request(text):
    assert creates_container(text) is None

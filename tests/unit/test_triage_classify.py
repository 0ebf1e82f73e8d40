"""What triage says about real-looking tickets: intent, confidence against the intent's threshold,
entities, and reasons a technician can read."""

from __future__ import annotations

import pytest

from tierone.triage import INTENTS, TriageResult, classify

ANNA = "anna.berg@contoso.example"


def acted_on(result: TriageResult) -> bool:
    return result.intent != "other" and result.confidence >= result.threshold


def test_a_users_own_password_reset_is_confident_and_about_the_requester():
    result = classify("Password reset", "Hi, I forgot my password and cannot log in. Thanks, Anna", ANNA)
    assert result.intent == "password_reset"
    assert acted_on(result)
    assert result.target == "requester"
    assert not result.names_someone_else
    assert result.candidates[0][0] == "password_reset"
    assert len(result.candidates) == 3
    assert any("password" in reason for reason in result.reasons)


def test_every_result_uses_the_closed_list_and_carries_its_threshold():
    for subject in ("MFA new phone", "add me to the Sales group", "shared mailbox access", "leaver on friday", "hi"):
        result = classify(subject, "")
        assert result.intent in INTENTS
        assert all(name in INTENTS for name, _ in result.candidates)
        assert 0.0 <= result.confidence <= 1.0
        assert 0.5 <= result.threshold <= 1.0


@pytest.mark.parametrize(
    ("subject", "body", "intent"),
    [
        (
            "Account locked",
            "I typed my password wrong too many times and now it says the account is locked",
            "account_unlock",
        ),
        ("New phone", "I got a new phone and the Authenticator app didn't move over, please reset my MFA", "mfa_reset"),
        (
            "Shared mailbox",
            "Could I have full access to the accounts@contoso.example shared mailbox?",
            "mailbox_permission",
        ),
        ("Group", "Please add me to the Finance security group, my manager approved it", "group_membership"),
        ("Licence", "Could you assign me a Visio Plan 2 licence please?", "license_change"),
        (
            "New starter",
            "Tom Baker starts on Monday 3rd March as Receptionist, please set up his account",
            "onboarding",
        ),
        (
            "Leaver",
            "Grace Ortiz leaves on 15/04/2025, please disable her account and convert the mailbox",
            "offboarding",
        ),
        ("Printer not working", "The printer on the 2nd floor keeps jamming", "other"),
    ],
)
def test_each_intent_is_recognised(subject, body, intent):
    assert classify(subject, body, ANNA).intent == intent


def test_a_reset_for_a_named_colleague_names_someone_else_and_targets_them():
    result = classify("Password reset for Tom Baker", "Please reset the password for Tom Baker.", ANNA)
    assert result.intent == "password_reset"
    assert result.names_someone_else
    assert result.target == "Tom Baker"
    assert "Tom Baker" in result.target_names


def test_another_persons_address_is_the_target_but_the_requesters_own_is_not():
    result = classify(
        "pw reset", "reset password for priya@fabrikam.example please - ben@fabrikam.example", "ben@fabrikam.example"
    )
    assert result.target_emails == ["priya@fabrikam.example"]
    assert result.target == "priya@fabrikam.example"
    assert result.names_someone_else


@pytest.mark.parametrize(
    "body",
    [
        "Could you reset her password? She is travelling.",
        "My colleague is locked out, please reset the password.",
        "Please reset tom's password, he can't get in.",
        "I'm writing on behalf of the office manager, who forgot the password.",
        "Please give Tom Baker full access to the Bookings mailbox.",
        "Could you sort out Visio for Priya Shah and then reset it, thanks",
        "Please set up Omar Haddad with the same access as me.",
    ],
)
def test_any_mention_of_another_person_marks_the_ticket_as_someone_elses(body):
    assert classify("Password", body, ANNA).names_someone_else


@pytest.mark.parametrize(
    "body",
    [
        "Please add me to the Sales Team group.",
        "I need a Microsoft 365 Business Premium licence.",
        "The Microsoft Authenticator app on my new phone shows no codes, please reset my MFA.",
    ],
)
def test_product_and_team_names_are_not_taken_for_people(body):
    assert not classify("Request", body, "grace.hopper@contoso.example").names_someone_else


def test_the_requesters_own_name_in_the_sign_off_is_not_someone_else():
    body = "I forgot my password over the weekend.\n\nThanks,\nAnna Berg\nFront desk, Contoso Dental"
    assert not classify("Password reset", body, ANNA).names_someone_else


def test_objects_are_named_for_the_intents_that_have_one():
    group = classify("Group access", "Please add me to the Sales Team distribution list", ANNA)
    mailbox = classify("Mailbox", "Please give me send as rights on info@contoso.example", ANNA)
    licence = classify("Licence", "I need a Power BI Pro licence for the new reports", ANNA)
    assert group.object == "Sales Team"
    assert mailbox.object == "info@contoso.example"
    assert licence.object == "Power BI Pro"
    assert classify("Password", "I forgot my password", ANNA).object is None


def test_start_and_leave_dates_are_read_in_the_forms_people_write_them():
    starter = classify("New starter", "Priya Shah joins on Monday 3rd March 2025 as Paralegal. Please set her up.")
    leaver = classify("Leaver", "Leaver name: Omar Haddad\nLast working day: 28.02.2025\nMailbox: convert to shared")
    assert starter.intent == "onboarding"
    assert "Monday 3rd March 2025" in starter.dates
    assert leaver.intent == "offboarding"
    assert "28.02.2025" in leaver.dates
    assert leaver.target == "Omar Haddad"


def test_below_the_threshold_the_reasons_name_the_top_candidates():
    result = classify("Problem", "mailbox is full and I can't send, please help", ANNA)
    if result.confidence < result.threshold and result.intent != "other":
        assert any("candidates:" in reason for reason in result.reasons)
    assert result.candidates == sorted(result.candidates, key=lambda c: -c[1])


# --- messy text -------------------------------------------------------------------------------


def test_a_forwarded_chain_is_read_for_the_forwarded_request_not_its_headers():
    body = (
        "FYI - please sort\n\n---------- Forwarded message ---------\nFrom: Tom Baker <tom.baker@contoso.example>\n"
        "Date: Monday, 3 March 2025 09:14\nSubject: Locked out\nTo: anna.berg@contoso.example\n\n"
        "My account is locked after too many attempts. I know the password, I just need it unlocked."
    )
    result = classify("FW: Locked out", body, ANNA)
    assert result.intent == "account_unlock"
    assert result.names_someone_else  # the forwarded message is Tom's: not Anna's self-service


def test_the_quoted_history_of_an_old_ticket_does_not_decide_the_new_one():
    body = (
        "I forgot my password again, can you reset it?\n\n"
        "On Tue, 14 Jan 2025 at 10:02, Service Desk <support@msp.example> wrote:\n"
        "> We have replaced the toner in the printer.\n> The printer works again."
    )
    assert classify("RE: Ticket #4411", body, ANNA).intent == "password_reset"


def test_signatures_disclaimers_and_banners_do_not_decide_the_intent():
    body = (
        "CAUTION: This email originated from outside of the organization. Do not click links or open "
        "attachments unless you recognize the sender and know the content is safe.\n\n"
        "The printer next to reception shows a paper jam.\n\nKind regards,\nAnna\n\nAnna Berg\nOffice Manager\n"
        "T: +44 1234 567890\n\nDisclaimer: passwords and account details will never be requested by email. "
        "If you are not the intended recipient, delete this message."
    )
    assert classify("Printer", body, ANNA).intent == "other"


@pytest.mark.parametrize(
    ("subject", "body", "intent"),
    [
        ("pasword", "hi cant logon forgot my pasword pls resett", "password_reset"),
        ("", "reset my pw pls thx", "password_reset"),
        ("help", "LOCKED OUT OF MY ACCOUNT AGAIN!!! UNLOCK PLEASE", "account_unlock"),
        (
            "Neues Handy",
            "Hallo, I have a new phone (neues Handy) and the authenticator codes are gone. Danke",
            "mfa_reset",
        ),
        (
            "NEW STARTER FORM",
            "New starter name: [enter user's name]\nStart date: <DD/MM/YYYY>\nDepartment: [select]",
            "onboarding",
        ),
        ("Leaver form", "Employee leaving: [enter name]\nLeaving date: <DD/MM/YYYY>\nManager: ____", "offboarding"),
    ],
)
def test_typos_capitals_fragments_in_other_languages_and_template_blanks(subject, body, intent):
    assert classify(subject, body, ANNA).intent == intent


def test_template_blanks_are_not_taken_for_a_person():
    result = classify("NEW STARTER FORM", "New starter name: [enter user's name]\nStart date: <DD/MM/YYYY>", ANNA)
    assert result.target_names == []
    assert result.target is None  # someone new, not yet named: never the requester


def test_html_from_a_mail_client_is_read_as_text():
    body = (
        '<html><head><style>p.MsoNormal{margin:0cm;font-family:"Calibri"}</style></head><body><div class=WordSection1>'
        "<p class=MsoNormal>Hi,<o:p></o:p></p><p class=MsoNormal>my password expired this morning and I can&#8217;t "
        "sign in. Please reset it.<o:p></o:p></p></div></body></html>"
    )
    result = classify("Password expired", body, ANNA)
    assert result.intent == "password_reset"
    assert "hidden-text" not in result.flags  # a style sheet is markup, not hidden text

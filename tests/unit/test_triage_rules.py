from tierone.triage import INTENTS, classify


def test_a_user_asking_for_their_own_password_reset_is_a_password_reset_for_themself():
    result = classify(
        "Password reset", "Hi, I forgot my password and cannot log in. Thanks, Anna", "anna@contoso.example"
    )
    assert result.intent == "password_reset"
    assert not result.names_someone_else
    assert result.confidence >= 0.5
    assert result.reasons


def test_a_reset_for_a_named_colleague_is_flagged_as_someone_else():
    result = classify("Password reset for Tom Baker", "Please reset the password for Tom Baker.", "anna@x.example")
    assert result.intent == "password_reset"
    assert result.names_someone_else
    assert "Tom Baker" in result.target_names


def test_another_persons_email_address_becomes_the_candidate_target_but_the_requester_does_not():
    result = classify(
        "pw reset", "reset password for priya@fabrikam.example please - ben@fabrikam.example", "ben@fabrikam.example"
    )
    assert result.target_emails == ["priya@fabrikam.example"]
    assert result.names_someone_else


def test_printer_problems_are_other():
    assert classify("Printer not working", "The printer on floor 2 keeps jamming").intent == "other"


def test_text_with_no_signal_is_other_with_zero_confidence():
    result = classify("Hello", "Can you call me back?")
    assert result.intent == "other"
    assert result.confidence == 0.0


def test_html_is_stripped_before_reading():
    result = classify("Help", "<div><b>Forgot</b> my <span>password</span></div>")
    assert result.intent == "password_reset"


def test_every_intent_named_is_from_the_closed_list():
    samples = [
        "MFA new phone",
        "add me to the Sales group",
        "shared mailbox access",
        "new starter monday",
        "leaver on friday",
        "need an E3 licence",
        "account locked out",
    ]
    for text in samples:
        assert classify(text, "").intent in INTENTS

"""Credential and access requests for systems that are not Microsoft 365 / Entra ID are `other`:
resetting the Microsoft password would be the wrong act. So are requests that merely share words
with an identity intent."""

from __future__ import annotations

import pytest

from tierone.triage import classify

ANNA = "anna.berg@contoso.example"


@pytest.mark.parametrize(
    ("subject", "body"),
    [
        ("Sage password reset", "I've forgotten my Sage 200 password, can you reset it? My Microsoft login works."),
        ("Xero locked", "Xero has locked my account after too many attempts."),
        ("VPN password", "FortiClient says my credentials are wrong when I connect from home, reset the VPN password"),
        ("Voicemail PIN", "I've forgotten my voicemail PIN on the desk phone, can you reset it?"),
        ("Bank portal", "The bank's online portal won't accept my password, can you reset it?"),
        ("Apple ID", "My Apple ID is locked on my work iPhone, can you reset it?"),
    ],
)
def test_systems_the_corpus_knows_are_recognised_as_not_microsoft(subject, body):
    assert classify(subject, body, ANNA).intent == "other"


@pytest.mark.parametrize(
    ("subject", "body", "system"),
    [
        ("Help", "My Zorvex password stopped working this morning, please reset it", "Zorvex"),
        ("Can't get in", "I can't log into Quindle, it says my password is wrong. Please reset.", "Quindle"),
        ("locked", "Brightwater has locked my account, can you unlock it?", "Brightwater"),
        ("Licence", "Could I get a Plotwise licence? The client sends drawings in that format.", "Plotwise"),
    ],
)
def test_a_system_nobody_taught_it_is_not_taken_for_microsoft(subject, body, system):
    """Names it has never seen, in the place of a system: it cannot know they are Microsoft 365."""
    result = classify(subject, body, ANNA)
    assert result.intent == "other"
    if result.candidates[0][0] != "other":  # the model read a credential request: the rule set it aside
        assert "unknown-system" in result.flags
        assert any(system in reason for reason in result.reasons)


@pytest.mark.parametrize(
    ("subject", "body"),
    [
        ("Password reset", "I forgot my Microsoft 365 password and can't get into Outlook"),
        ("Password", "my windows password expired on the laptop, please reset"),
        ("Password", "My O365 password isn't accepted anymore"),
        ("Password reset", "I forgot my email password, can you reset it?"),
    ],
)
def test_microsoft_words_in_the_place_of_a_system_stay_microsoft(subject, body):
    result = classify(subject, body, ANNA)
    assert result.intent == "password_reset"
    assert "unknown-system" not in result.flags


def test_a_typo_of_a_known_word_is_not_an_unknown_system():
    result = classify("Password", "I forgot my outlok password and need it reset", ANNA)
    assert "unknown-system" not in result.flags


@pytest.mark.parametrize(
    ("subject", "body"),
    [
        ("Wi-Fi password", "What's the password for the guest Wi-Fi? We have visitors today."),
        ("File locked", "The spreadsheet on the shared drive says it is locked for editing by another user."),
        ("Phishing?", "I got an email saying my password expires today with a link to keep it. Looks dodgy."),
        ("BitLocker", "My laptop asks for a BitLocker recovery key after the update."),
        ("Door fob", "My door fob stopped working and I'm locked out of the building."),
        ("Password manager", "Can we get a password manager like Bitwarden for the team?"),
    ],
)
def test_words_shared_with_an_intent_do_not_make_the_request(subject, body):
    result = classify(subject, body, ANNA)
    assert result.intent == "other" or result.confidence < result.threshold

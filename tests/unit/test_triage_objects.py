"""What a credential, licence or access request is *for* decides whether TierOne may act: the Microsoft
365 password must never be reset for another vendor's system. The rule reads the object of the request
("my <X> password", "locked out of <X>", "<X> keeps rejecting my password", "a <X> licence") and treats
anything that is neither Microsoft 365, nor a person, nor a generic or function word as another system.

The system names below are invented and occur in no corpus file; the Microsoft tickets use surnames,
first names and ordinary words that an unknown-word check would take for systems. A stand-in model
that is sure of the wrong intent is used where the rule, not the model, is under test.
"""

from __future__ import annotations

import json
from importlib import resources
from typing import Any

import pytest

from tests.unit.stand_in_models import insisting
from tierone.triage import classify
from tierone.triage.guard import foreign_access, people, unknown_systems

ANNA = "anna.berg@contoso.example"


# -- another system, in many phrasings, whatever the model says --------------------------------------

NON_MICROSOFT = [
    ("password_reset", "Password", "please reset my plinkety password, locked out since lunch"),
    ("password_reset", "Reset", "Could you reset my password for Grobble - it isn't accepting my usual one."),
    ("password_reset", "login", "hi can you reset my snorvel login pls, says wrong password"),
    ("password_reset", "Help", "Vantrix keeps saying my password is wrong, can you reset it please"),
    ("password_reset", "Reset", "Please reset my Quorra web client password, it won't let me log in from home."),
    ("password_reset", "Practice system", "Could you reset my password in the PMS? It expired today."),
    (
        "password_reset",
        "FW: access",
        "I can't log into Mendra, my password has expired. Can IT reset my Mendra password?",
    ),
    ("password_reset", "Tom's login", "Can you reset Tom's Brackwell login? He's forgotten it."),
    ("account_unlock", "locked", "locked out of vpn again. pls unlock"),
    ("account_unlock", "Unlock", "my account in the ERP (Trundle) is locked, could you unlock it? I know my password."),
    ("account_unlock", "Locked", "My Wimbrel account is locked after too many attempts, please unlock it"),
    ("account_unlock", "Portal", "I'm locked out of the supplier portal, please unlock my account"),
    ("account_unlock", "Can't sign in", "I can't sign in to Parvox from home, it says my account is locked."),
    ("mfa_reset", "MFA", "Could you reset my MFA for Fennick Cloud? New phone, old codes gone."),
    ("mfa_reset", "2FA", "Stoatly wants a 2FA code that goes to my old phone. Can you reset the 2FA?"),
    ("license_change", "Licence", "Can you assign a Glimmer Pro licence to Hannah in legal?"),
    ("license_change", "Remove licence", "Please remove the Yarrowby licence from Peter's account, he doesn't use it."),
    ("license_change", "licence", "can we get a crm licence for the new sales guy"),
]


@pytest.mark.parametrize(("intent", "subject", "body"), NON_MICROSOFT)
def test_another_systems_credential_or_licence_is_other_even_when_the_model_is_sure(intent, subject, body):
    result = classify(subject, body, ANNA, model=insisting(intent))
    assert result.intent == "other"
    assert "unknown-system" in result.flags


@pytest.mark.parametrize(
    ("subject", "body"),
    [
        ("Access", "Please give our new recruiter, Naomi, access to Plimsoll - she'll need a licence too."),
        ("Access to PMS", "Could you give me access to the practice management system? I'm the new head nurse."),
    ],
)
def test_access_to_another_system_is_not_a_mailbox_permission(subject, body):
    result = classify(subject, body, ANNA, model=insisting("mailbox_permission"))
    assert result.intent == "other"
    assert "unknown-system" in result.flags


def test_access_to_a_named_mailbox_stays_a_mailbox_permission():
    assert foreign_access("Could you give Tom full access to the Lettings shared mailbox?") == []
    assert foreign_access("Please give me access to Priya Shah's calendar") == []


# -- ordinary words and people do not block genuine Microsoft requests -------------------------------

MICROSOFT = [
    (
        "password_reset",
        "Reset password",
        "Please reset the password for: Jonah Pellingham Account: jpellingham@cedar.example",
    ),
    (
        "password_reset",
        "Password",
        "Please reset the password on Simon Farrelly's account. He can't get into his email.",
    ),
    (
        "password_reset",
        "password",
        "Someone may have seen me type my password in the cafe. Please change my Microsoft password.",
    ),
    ("password_reset", "Passwort", "Hallo, könnten Sie bitte mein Passwort zurücksetzen? I can't sign into Outlook."),
    ("license_change", "Licence", "Can you make sure the existing generic account has an Office 365 E1 licence?"),
    ("license_change", "Audio Conferencing", "Could you assign me an Audio Conferencing licence please?"),
    ("license_change", "Teams Phone", "Could you add a Teams Phone licence to Neil Atkinson's account?"),
    ("mfa_reset", "MFA", "Could you re-register the MFA for Anton Kovacs please? He has a replacement phone."),
    ("account_unlock", "Locked", "I'm locked out of my Windows login at the surgery PC. Please unlock it."),
    ("account_unlock", "Locked", "O365 is saying my account is locked, can you unlock it please"),
    ("password_reset", "Password", "My M365 password expired this morning and the change screen rejects the new one."),
    ("license_change", "E3 licence for Sam", "Can you assign an E3 licence to Sam Okoro? He's moving into the office."),
    ("password_reset", "Hi", "Could you reset my password? I was trying to log into office.com on my home pc."),
    ("account_unlock", "locked", "I keep getting account locked when i try log into teams. please unlock"),
]


@pytest.mark.parametrize(("intent", "subject", "body"), MICROSOFT)
def test_names_and_ordinary_words_do_not_block_microsoft_requests(intent, subject, body):
    result = classify(subject, body, ANNA, model=insisting(intent))
    assert "unknown-system" not in result.flags, result.reasons
    assert result.intent == intent


def test_people_come_from_addresses_titles_and_sign_offs():
    found = people("Dear IT, please help Mrs Okafor.\nThanks, Declan", "kim.lee@contoso.example")
    assert {"kim", "lee", "okafor", "declan"} <= found


def test_a_typo_of_a_microsoft_or_generic_word_is_not_a_system():
    assert unknown_systems("please reset my outlok pasword") == []
    assert unknown_systems("I forgot my micrsoft 365 password") == []


# -- the hand-written training tickets --------------------------------------------------------------


def _rows(split: str) -> list[dict[str, Any]]:
    text = resources.files("tierone.triage").joinpath("corpus", f"{split}.jsonl").read_text(encoding="utf-8")
    return [json.loads(line) for line in text.splitlines()]


def test_hand_written_tickets_are_training_only_and_name_no_held_out_system():
    from tierone.triage.corpus.generate import PHONES, PRODUCTS, SYSTEMS, VPNS

    hand = _rows("handwritten")
    held_out = _rows("heldout")
    assert {r["family"] for r in hand}.isdisjoint({r["family"] for r in held_out})
    text = " ".join(f"{r['subject']} {r['body']}" for r in hand).lower()
    names = [*SYSTEMS["heldout"], *VPNS["heldout"], *PHONES["heldout"], *PRODUCTS["heldout"]]
    assert not [name for name in names if name.lower() in text]
    held_ids = {r["id"] for r in held_out}
    assert not [r for r in hand if r["id"] in held_ids]

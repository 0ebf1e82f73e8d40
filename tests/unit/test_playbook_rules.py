"""The pure rules inside the playbooks: licence names, licence wording, new users' UPNs and
mailbox rights. No tenant needed."""

from __future__ import annotations

import pytest

from identity_integrations.models import Sku
from tierone.errors import PermanentError
from tierone.playbooks.context import OnboardingTemplate
from tierone.playbooks.licence_catalog import parse_wording, products_named, resolve
from tierone.playbooks.mailbox_permission import normalise_rights
from tierone.playbooks.onboarding import ascii_fold, role_groups, split_name, upn_local_part


def sku(part: str, enabled: int = 5, consumed: int = 0) -> Sku:
    return Sku(sku_id=f"id-{part.lower()}", part_number=part, enabled_units=enabled, consumed_units=consumed)


@pytest.mark.parametrize(
    ("text", "parts"),
    [
        ("Business Premium", ["SPB"]),
        ("Microsoft 365 Business Premium licence", ["SPB"]),
        ("Business Standard", ["O365_BUSINESS_PREMIUM"]),  # the part number says Premium; the product is Standard
        ("Office 365 Business Premium", ["O365_BUSINESS_PREMIUM", "SPB"]),  # the old name: ambiguous
        ("M365 E3", ["SPE_E3"]),
        ("Office 365 E3", ["ENTERPRISEPACK"]),
        ("E5", ["ENTERPRISEPREMIUM", "SPE_E5"]),
        ("spb", ["SPB"]),
        ("Exchange Online (Plan 1)", ["EXCHANGESTANDARD"]),
        ("a new printer", []),
    ],
)
def test_friendly_names_map_to_part_numbers(text, parts):
    assert sorted(p.part_number for p in products_named(text)) == sorted(parts)


def test_the_tenants_subscriptions_settle_a_name_that_fits_two_products():
    assert resolve("E3", [sku("SPE_E3"), sku("VISIOCLIENT")]).part_number == "SPE_E3"
    with pytest.raises(PermanentError, match="ambiguous"):
        resolve("E3", [sku("SPE_E3"), sku("ENTERPRISEPACK")])
    with pytest.raises(PermanentError, match="no subscription for Microsoft 365 Business Premium"):
        resolve("Business Premium", [sku("O365_BUSINESS_PREMIUM")])
    with pytest.raises(PermanentError, match="not a licence product"):
        resolve("Copilot Pro Max", [sku("SPE_E3")])


@pytest.mark.parametrize(
    ("text", "remove", "expected"),
    [
        ("E5", False, ("E5", None, False)),
        ("E3", True, (None, "E3", False)),
        ("swap E3 for E5", False, ("E5", "E3", False)),
        ("replace Business Standard with Business Premium", False, ("Business Premium", "Business Standard", False)),
        ("move from E3 to E5", False, ("E5", "E3", False)),
        ("E3 -> E5", False, ("E5", "E3", False)),
        ("upgrade to E5", False, ("E5", None, True)),
    ],
)
def test_licence_wording(text, remove, expected):
    wording = parse_wording(text, remove)
    assert (wording.add, wording.remove, wording.within_family) == expected


@pytest.mark.parametrize(
    ("name", "pattern", "local"),
    [
        ("Zoë Ångström-Öz", "{first}.{last}", "zoe.angstrom-oz"),
        ("José de la Cruz", "{first}.{last}", "jose.delacruz"),
        ("Siobhán O'Brien", "{f}{last}", "sobrien"),
        ("Jürgen Straße", "{first}_{l}", "jurgen_s"),
        ("Łukasz Żółć", "{first}.{last}", "lukasz.zolc"),
    ],
)
def test_upns_are_ascii_from_the_clients_pattern(name, pattern, local):
    first, last = split_name(name)
    assert upn_local_part(pattern, first, last) == local


def test_names_tierone_cannot_turn_into_an_account_are_escalated():
    with pytest.raises(PermanentError, match="first and last name"):
        split_name("Cher")
    with pytest.raises(PermanentError, match="no letters"):
        upn_local_part("{first}.{last}", "李", "小龙")
    with pytest.raises(PermanentError, match="not valid"):
        upn_local_part("{given}.{last}", "Ann", "Lee")
    assert ascii_fold("Ærøskøbing") == "AEroskobing"


def test_mailbox_rights_are_read_in_their_usual_spellings():
    assert normalise_rights(["Full Access", "send-as", "Send on behalf of"]) == ["FullAccess", "SendAs", "SendOnBehalf"]
    assert normalise_rights([]) == ["FullAccess"]
    with pytest.raises(PermanentError, match="read only"):
        normalise_rights(["read only"])


def test_role_groups_match_whole_words_of_the_role():
    template = OnboardingTemplate(
        domain="contoso.example", groups=["All Staff"], groups_by_role={"sales": ["Sales"], "it": ["IT Admins"]}
    )
    assert role_groups(template, "Senior Sales Executive") == ["All Staff", "Sales"]
    assert role_groups(template, "Recruiting Partner") == ["All Staff"]
    assert role_groups(template, None) == ["All Staff"]

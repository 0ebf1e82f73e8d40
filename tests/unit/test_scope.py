"""TierOne works only the boards, queues and teams the MSP names; every other ticket is left alone."""

from __future__ import annotations

import pytest

from psa_integrations.models import Company, PsaKind, Ticket
from tierone.scope import out_of_scope
from tierone.settings import Settings


def ticket(psa: PsaKind, board_id: str | None, board_name: str | None) -> Ticket:
    return Ticket(
        psa=psa, id="1", summary="s", company=Company(id="1", name="c"), board_id=board_id, board_name=board_name
    )


def test_with_nothing_named_every_ticket_is_in_scope():
    assert out_of_scope(ticket(PsaKind.CONNECTWISE, "7", "Projects"), Settings.model_validate({})) is None


@pytest.mark.parametrize(
    ("psa", "setting", "board_id", "board_name"),
    [
        (PsaKind.CONNECTWISE, {"CONNECTWISE_BOARDS": "L1 Service Desk, Help Desk"}, "1", " l1 service desk"),
        (PsaKind.CONNECTWISE, {"CONNECTWISE_BOARDS": "12"}, "12", "Renamed board"),
        (PsaKind.AUTOTASK, {"AUTOTASK_QUEUES": "29683481"}, "29683481", "Level I Support"),
        (PsaKind.HALOPSA, {"HALOPSA_TEAMS": "1st Line,Service Desk"}, None, "1st line"),
    ],
)
def test_a_ticket_on_a_named_board_queue_or_team_is_tierones_by_name_or_id(psa, setting, board_id, board_name):
    assert out_of_scope(ticket(psa, board_id, board_name), Settings.model_validate(setting)) is None


def test_a_ticket_elsewhere_is_left_alone_with_the_reason():
    settings = Settings.model_validate({"CONNECTWISE_BOARDS": "L1 Service Desk"})
    assert out_of_scope(ticket(PsaKind.CONNECTWISE, "9", "Projects"), settings) == (
        "the ticket is on board 'Projects', which is not in CONNECTWISE_BOARDS"
    )


def test_a_ticket_on_no_team_is_outside_a_named_scope():
    settings = Settings.model_validate({"HALOPSA_TEAMS": "1st Line"})
    assert out_of_scope(ticket(PsaKind.HALOPSA, None, None), settings) == (
        "the ticket has no team, and HALOPSA_TEAMS names the ones TierOne works"
    )


def test_the_scope_of_one_psa_does_not_restrict_another():
    settings = Settings.model_validate({"CONNECTWISE_BOARDS": "L1 Service Desk"})
    assert out_of_scope(ticket(PsaKind.AUTOTASK, "5", "Sales"), settings) is None

"""Approval requests as the channels receive them: a Teams Workflows webhook (Adaptive Card in the
message envelope, Open URL to the approval page), Slack's chat.postMessage (Block Kit, Approve/Deny
buttons, no unfurling), e-mail through a Graph send_mail-shaped callable, and the chain that moves
to the next channel only after a wait without a decision."""

from collections.abc import Iterator
from datetime import timedelta

import pytest

from sandbox.chat import SlackSandbox, TeamsWorkflowsSandbox
from tierone.approvals import Actor, Approvals, Approver, Identity
from tierone.audit import AuditLog
from tierone.notify import NotifyError
from tierone.notify.chain import ApprovalNotifier
from tierone.notify.email import EmailChannel
from tierone.notify.slack import APPROVE_ACTION, DENY_ACTION, SlackChannel
from tierone.notify.teams import TeamsChannel
from tierone.storage import APPROVALS, Table

REQUESTER = Identity(oid="aaaa0000-0000-4000-8000-00000000000a", upn="requester@contoso.example")
MANAGER = Approver(oid="bbbb0000-0000-4000-8000-00000000000b", upn="manager@contoso.example", slack_user_id="U0MGR")
SENDER = "approvals@msp.example"


@pytest.fixture(scope="module")
def teams() -> Iterator[TeamsWorkflowsSandbox]:
    sandbox = TeamsWorkflowsSandbox().start()
    yield sandbox
    sandbox.stop()


@pytest.fixture(scope="module")
def slack() -> Iterator[SlackSandbox]:
    sandbox = SlackSandbox().start()
    yield sandbox
    sandbox.stop()


@pytest.fixture
def approvals(storage, settings):
    return Approvals(Table(storage.account, APPROVALS), settings, AuditLog(storage.audit))


@pytest.fixture
async def approval(approvals, unique):
    return await approvals.create(
        tenant_id=f"tenant-{unique}",
        ticket_ref=f"cw:{unique}",
        intent="mfa_reset",
        summary="Reset MFA methods of jane@contoso.example",
        facts={"User": "jane@contoso.example"},
        requester=REQUESTER,
        approvers=[MANAGER],
    )


class Outbox:
    """Records what a Graph send_mail(sender_id, to, subject, html) call would send."""

    def __init__(self) -> None:
        self.sent: list[tuple[str, str, str, str]] = []

    async def __call__(self, sender: str, to: str, subject: str, html: str) -> None:
        self.sent.append((sender, to, subject, html))


async def test_teams_gets_an_adaptive_card_in_the_message_envelope_with_an_open_url_action(teams, approval, approvals):
    url = approvals.url_for(approval.id)
    sent = await TeamsChannel(teams.webhook_url()).send(approval, url)
    assert sent.channel == "teams"
    message = teams.received[-1]
    assert message["type"] == "message"
    [attachment] = message["attachments"]
    assert attachment["contentType"] == "application/vnd.microsoft.card.adaptive"
    card = attachment["content"]
    assert (card["type"], card["version"]) == ("AdaptiveCard", "1.4")
    assert [b["type"] for b in card["body"]] == ["TextBlock", "TextBlock", "FactSet", "TextBlock"]
    assert card["actions"] == [{"type": "Action.OpenUrl", "title": "Review and decide", "url": url}]
    assert url == f"https://tierone.example.net/api/approvals/{approval.id}"
    assert "sign in" in card["body"][-1]["text"]


async def test_a_teams_webhook_that_fails_is_a_notify_error_without_the_url(teams, approval):
    teams.fail_with = 503
    try:
        with pytest.raises(NotifyError, match="HTTP 503") as caught:
            await TeamsChannel(teams.webhook_url()).send(approval, "https://x.example/api/approvals/1")
        assert "sig=" not in str(caught.value)
    finally:
        teams.fail_with = None


async def test_slack_gets_blocks_with_approve_and_deny_buttons_and_no_unfurling(slack, approval, approvals):
    channel = "C0APPROVALS"
    sent = await SlackChannel(slack.token, channel, base_url=slack.api_url).send(
        approval, approvals.url_for(approval.id)
    )
    assert sent.channel == "slack"
    message = slack.messages[-1]
    assert message["channel"] == channel
    assert message["unfurl_links"] is False
    assert message["unfurl_media"] is False
    [actions] = [b for b in message["blocks"] if b["type"] == "actions"]
    buttons = actions["elements"]
    assert [(b["type"], b["action_id"], b["value"]) for b in buttons] == [
        ("button", APPROVE_ACTION, approval.id),
        ("button", DENY_ACTION, approval.id),
    ]
    assert "<@U0MGR>" in message["blocks"][0]["text"]["text"]


async def test_slack_refusals_are_notify_errors(slack, approval):
    with pytest.raises(NotifyError, match="invalid_auth"):
        await SlackChannel("xoxb-wrong", "C0APPROVALS", base_url=slack.api_url).send(approval, "https://x/1")
    with pytest.raises(NotifyError, match="channel_not_found"):
        await SlackChannel(slack.token, "C0NOWHERE", base_url=slack.api_url).send(approval, "https://x/1")


async def test_email_goes_from_the_designated_mailbox_with_the_link_and_what_to_expect(approval, approvals):
    outbox = Outbox()
    url = approvals.url_for(approval.id)
    sent = await EmailChannel(outbox, SENDER).send(approval, url)
    assert sent.recipients == [MANAGER.upn]
    [(sender, to, subject, html)] = outbox.sent
    assert (sender, to) == (SENDER, MANAGER.upn)
    assert approval.ticket_ref in subject
    assert f"href='{url}'" in html
    assert "asked to sign in" in html


async def test_the_chain_moves_to_the_next_channel_only_after_the_wait(teams, slack, approval, approvals):
    outbox = Outbox()
    notes: list[str] = []

    async def psa_note(a, url):
        notes.append(url)

    notifier = ApprovalNotifier(
        approvals,
        [
            TeamsChannel(teams.webhook_url()),
            SlackChannel(slack.token, "C0APPROVALS", base_url=slack.api_url),
            EmailChannel(outbox, SENDER),
        ],
        wait=timedelta(minutes=15),
        psa_note=psa_note,
    )
    assert [s.channel for s in await notifier.start(approval)] == ["psa_note", "teams"]
    assert notes == [approvals.url_for(approval.id)]
    sent_at = (await approvals.get(approval.id)).last_notified_at
    assert await notifier.advance(approval, now=sent_at + timedelta(minutes=14)) == []
    assert [s.channel for s in await notifier.advance(approval, now=sent_at + timedelta(minutes=15))] == ["slack"]
    assert [s.channel for s in await notifier.advance(approval, now=sent_at + timedelta(minutes=30))] == ["email"]
    assert await notifier.advance(approval, now=sent_at + timedelta(minutes=45)) == []  # channels used up
    assert (await approvals.get(approval.id)).notified == ["teams", "slack", "email"]


async def test_the_chain_skips_a_failing_channel_and_stops_once_decided(teams, approval, approvals):
    outbox = Outbox()
    notifier = ApprovalNotifier(
        approvals, [TeamsChannel(teams.webhook_url()), EmailChannel(outbox, SENDER)], wait=timedelta(minutes=15)
    )
    teams.fail_with = 500
    try:
        assert [s.channel for s in await notifier.start(approval)] == ["email"]
    finally:
        teams.fail_with = None
    await approvals.decide(approval.id, Actor(oid=MANAGER.oid), approve=True, channel="web")
    assert await notifier.advance(approval, now=approval.created_at + timedelta(minutes=30)) == []

"""One approval request, many channels: the first configured channel at once, the next one after a
wait without a decision, until the channels run out; the expiry sweep then escalates the ticket.

The progress (channels used, when) lives on the approval row, so `advance` can run from a timer in
any instance. A channel that fails is recorded as used and the next one is tried straight away."""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable, Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

from tierone.approvals import ApprovalRequest, Approvals, ApprovalState
from tierone.notify import Channel, NotifyError, Sent
from tierone.settings import Settings

log = logging.getLogger("tierone.notify")

# Writes the internal (not customer-visible) PSA note; the lead's writeback supplies it.
PsaNote = Callable[[ApprovalRequest, str], Awaitable[Any]]


class ApprovalNotifier:
    def __init__(
        self,
        approvals: Approvals,
        channels: Sequence[Channel],
        *,
        wait: timedelta,
        psa_note: PsaNote | None = None,
    ) -> None:
        self._approvals = approvals
        self._channels = list(channels)
        self._wait = wait
        self._psa_note = psa_note

    async def start(self, approval: ApprovalRequest) -> list[Sent]:
        """Announce a new request: the internal PSA note, then the first channel that works."""
        sent: list[Sent] = []
        if self._psa_note is not None:
            await self._psa_note(approval, self._approvals.url_for(approval.id))
            sent.append(Sent(channel="psa_note", recipients=[approval.ticket_ref]))
        return sent + await self._next(approval)

    async def advance(self, approval: ApprovalRequest, now: datetime | None = None) -> list[Sent]:
        """If still pending and the last channel has waited long enough, try the next channel."""
        now = now or datetime.now(UTC)
        current = await self._approvals.get(approval.id) or approval
        if current.state is not ApprovalState.PENDING or current.is_expired(now):
            return []
        if current.last_notified_at is not None and now - current.last_notified_at < self._wait:
            return []
        return await self._next(current, now)

    async def _next(self, approval: ApprovalRequest, now: datetime | None = None) -> list[Sent]:
        for channel in self._channels:
            if channel.name in approval.notified:
                continue
            approval = await self._approvals.mark_notified(approval.id, channel.name, now)
            try:
                return [await channel.send(approval, self._approvals.url_for(approval.id))]
            except NotifyError as exc:
                log.warning("approval %s: %s failed (%s); trying the next channel", approval.id, channel.name, exc)
        return []


def channels_from(settings: Settings, send_mail: Callable[..., Awaitable[Any]] | None = None) -> list[Channel]:
    """The configured channels, in escalation order: Teams, Slack, e-mail."""
    from tierone.notify.email import EmailChannel
    from tierone.notify.slack import SlackChannel
    from tierone.notify.teams import TeamsChannel

    channels: list[Channel] = []
    if settings.teams_webhook_url is not None:
        channels.append(TeamsChannel(settings.teams_webhook_url.get_secret_value()))
    if settings.slack_bot_token is not None and settings.slack_channel:
        channels.append(
            SlackChannel(
                settings.slack_bot_token.get_secret_value(), settings.slack_channel, base_url=settings.slack_api_url
            )
        )
    if send_mail is not None and settings.approval_sender:
        channels.append(EmailChannel(send_mail, settings.approval_sender))
    return channels


def notifier_from(
    settings: Settings,
    approvals: Approvals,
    *,
    send_mail: Callable[..., Awaitable[Any]] | None = None,
    psa_note: PsaNote | None = None,
) -> ApprovalNotifier:
    return ApprovalNotifier(
        approvals,
        channels_from(settings, send_mail),
        wait=timedelta(minutes=settings.approval_channel_wait_minutes),
        psa_note=psa_note,
    )

"""Timers: reconcile tickets whose webhook never came; purge expired one-time links; expire, chase
and resume the holds (approvals, confirmations) of parked tickets."""

import logging

import azure.functions as func

bp = func.Blueprint()
log = logging.getLogger("tierone.functions.housekeeping")


@bp.function_name("reconcile_tickets")
@bp.timer_trigger(arg_name="timer", schedule="0 */5 * * * *", run_on_startup=False, use_monitor=True)
async def reconcile_tickets(timer: func.TimerRequest) -> None:
    from psa_integrations.registry import configured, psa_client
    from tierone.reconcile import reconcile
    from tierone.settings import get_settings
    from tierone.storage import get_storage

    settings = get_settings()
    queued = await reconcile(settings, get_storage(), configured(settings), lambda kind: psa_client(kind, settings))
    log.info("reconciliation: %s", queued or "no PSA configured")


@bp.function_name("purge_expired_links")
@bp.timer_trigger(arg_name="timer", schedule="0 */15 * * * *", run_on_startup=False, use_monitor=True)
async def purge_expired_links(timer: func.TimerRequest) -> None:
    from tierone.secret_links import SecretLinks
    from tierone.settings import get_settings
    from tierone.storage import get_storage

    purged = await SecretLinks(get_storage().secrets, get_settings()).purge_expired()
    log.info("purged %d expired one-time links", purged)


@bp.function_name("sweep_holds")
@bp.timer_trigger(arg_name="timer", schedule="30 * * * * *", run_on_startup=False, use_monitor=True)
async def sweep_holds(timer: func.TimerRequest) -> None:
    from tierone.holds import sweeper_from
    from tierone.settings import get_settings

    report = await sweeper_from(get_settings()).sweep()
    log.info(
        "holds: %d approvals and %d confirmations expired, %d reminders sent, %d tickets resumed",
        report.approvals_expired,
        report.confirmations_expired,
        report.notifications_sent,
        len(report.resumed),
    )

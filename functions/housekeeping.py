"""Timers: purge expired one-time links."""

import logging

import azure.functions as func

bp = func.Blueprint()
log = logging.getLogger("tierone.functions.housekeeping")


@bp.function_name("purge_expired_links")
@bp.timer_trigger(arg_name="timer", schedule="0 */15 * * * *", run_on_startup=False, use_monitor=True)
async def purge_expired_links(timer: func.TimerRequest) -> None:
    from tierone.secret_links import SecretLinks
    from tierone.settings import get_settings
    from tierone.storage import get_storage

    purged = await SecretLinks(get_storage().secrets, get_settings()).purge_expired()
    log.info("purged %d expired one-time links", purged)

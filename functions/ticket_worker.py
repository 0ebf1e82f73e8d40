"""The queue worker: one message is one ticket; the pipeline does the rest."""

import logging

import azure.functions as func

bp = func.Blueprint()
log = logging.getLogger("tierone.functions.worker")

_pipeline = None


def _get_pipeline():  # type: ignore[no-untyped-def]
    global _pipeline
    if _pipeline is None:
        from tierone.pipeline import Pipeline, default_services
        from tierone.settings import get_settings

        _pipeline = Pipeline(default_services(get_settings()))
    return _pipeline


def _work(msg: func.QueueMessage):  # type: ignore[no-untyped-def]
    from pydantic import ValidationError

    from tierone.intake import TicketWork

    try:
        return TicketWork.model_validate_json(msg.get_body())
    except ValidationError:
        # Not ours or corrupted: retrying cannot help, and it must not poison the queue silently.
        log.error("queue message %s is not a TicketWork; dropped", msg.id)
        return None


@bp.function_name("ticket_worker")
@bp.queue_trigger(arg_name="msg", queue_name="tickets", connection="AzureWebJobsStorage")
async def ticket_worker(msg: func.QueueMessage) -> None:
    work = _work(msg)
    if work is None:
        return
    from tierone.errors import TransientError

    pipeline = _get_pipeline()
    try:
        outcome = await pipeline.process(work, msg.id or "")
    except TransientError as problem:
        if await pipeline.defer(work, problem):
            return
        raise
    log.info("ticket %s:%s → %s (dequeue %s)", work.psa.value, work.ticket_id, outcome.value, msg.dequeue_count)


@bp.function_name("ticket_worker_poison")
@bp.queue_trigger(arg_name="msg", queue_name="tickets-poison", connection="AzureWebJobsStorage")
async def ticket_worker_poison(msg: func.QueueMessage) -> None:
    work = _work(msg)
    if work is None:
        return
    log.error("ticket %s:%s exhausted its retries; escalating", work.psa.value, work.ticket_id)
    await _get_pipeline().give_up(work, msg.id or "")

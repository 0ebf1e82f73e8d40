"""Approval page (GET shows, POST decides, behind App Service Authentication), Slack's
interactivity callback (anonymous at every layer; the Slack signature is the authentication) and
the out-of-band confirm page (anonymous; the one-time link sent to a registered address is the
credential). A decision taken here resumes the parked ticket at once; if that enqueue fails, the
housekeeping sweep resumes it a minute later."""

import json
import logging

import azure.functions as func

bp = func.Blueprint()
log = logging.getLogger("tierone.functions.approvals")


async def _resume(hold: object) -> None:
    from tierone.holds import resume
    from tierone.storage import get_storage

    ticket_ref, hold_id = str(getattr(hold, "ticket_ref", "")), str(getattr(hold, "id", ""))
    try:
        await resume(get_storage(), ticket_ref, hold_id)
    except Exception:  # the decision stands; the sweep re-queues the ticket
        log.exception("could not resume %s now; the housekeeping sweep will", ticket_ref)


@bp.function_name("approval_page")
@bp.route(route="approvals/{id}", methods=["GET", "POST"], auth_level=func.AuthLevel.ANONYMOUS)
async def approval_page(req: func.HttpRequest) -> func.HttpResponse:
    from tierone.approval_pages import handle
    from tierone.settings import get_settings

    page = await handle(
        req.method,
        req.route_params.get("id", ""),
        dict(req.headers),
        req.get_body() or b"",
        get_settings(),
        on_decided=_resume,
    )
    return func.HttpResponse(page.html, status_code=page.status, headers=page.headers, mimetype="text/html")


@bp.function_name("slack_interactions")
@bp.route(route="slack/interactions", methods=["POST"], auth_level=func.AuthLevel.ANONYMOUS)
async def slack_interactions(req: func.HttpRequest) -> func.HttpResponse:
    from tierone.approval_pages import handle_slack
    from tierone.settings import get_settings

    reply = await handle_slack(req.get_body() or b"", dict(req.headers), get_settings(), on_decided=_resume)
    return func.HttpResponse(json.dumps(reply.body), status_code=reply.status, mimetype="application/json")


@bp.function_name("confirm_page")
@bp.route(route="confirm/{token}", methods=["GET", "POST"], auth_level=func.AuthLevel.ANONYMOUS)
async def confirm_page(req: func.HttpRequest) -> func.HttpResponse:
    from tierone.confirm_pages import handle
    from tierone.settings import get_settings

    page, answered = await handle(req.method, req.route_params.get("token", ""), req.get_body() or b"", get_settings())
    if answered is not None:
        await _resume(answered)
    return func.HttpResponse(page.html, status_code=page.status, headers=page.headers, mimetype="text/html")

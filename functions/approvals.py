"""Approval page (GET shows, POST decides, behind App Service Authentication) and Slack's
interactivity callback (anonymous at every layer; the Slack signature is the authentication)."""

import json

import azure.functions as func

bp = func.Blueprint()


@bp.function_name("approval_page")
@bp.route(route="approvals/{id}", methods=["GET", "POST"], auth_level=func.AuthLevel.ANONYMOUS)
async def approval_page(req: func.HttpRequest) -> func.HttpResponse:
    from tierone.approval_pages import handle
    from tierone.settings import get_settings

    page = await handle(
        req.method, req.route_params.get("id", ""), dict(req.headers), req.get_body() or b"", get_settings()
    )
    return func.HttpResponse(page.html, status_code=page.status, headers=page.headers, mimetype="text/html")


@bp.function_name("slack_interactions")
@bp.route(route="slack/interactions", methods=["POST"], auth_level=func.AuthLevel.ANONYMOUS)
async def slack_interactions(req: func.HttpRequest) -> func.HttpResponse:
    from tierone.approval_pages import handle_slack
    from tierone.settings import get_settings

    reply = await handle_slack(req.get_body() or b"", dict(req.headers), get_settings())
    return func.HttpResponse(json.dumps(reply.body), status_code=reply.status, mimetype="application/json")

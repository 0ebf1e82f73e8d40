"""PSA webhook endpoints, one route per PSA. Verification and intake live in tierone.webhooks."""

import json

import azure.functions as func

bp = func.Blueprint()


async def _receive(psa: str, req: func.HttpRequest) -> func.HttpResponse:
    from psa_integrations.models import PsaKind
    from tierone.settings import get_settings
    from tierone.webhooks import receive

    reply = await receive(PsaKind(psa), req.get_body(), dict(req.headers), get_settings())
    return func.HttpResponse(
        json.dumps(reply.body), status_code=reply.status, headers=reply.headers, mimetype="application/json"
    )


@bp.function_name("connectwise_webhook")
@bp.route(route="webhooks/connectwise", methods=["POST"], auth_level=func.AuthLevel.FUNCTION)
async def connectwise_webhook(req: func.HttpRequest) -> func.HttpResponse:
    return await _receive("connectwise", req)


@bp.function_name("autotask_webhook")
@bp.route(route="webhooks/autotask", methods=["POST"], auth_level=func.AuthLevel.FUNCTION)
async def autotask_webhook(req: func.HttpRequest) -> func.HttpResponse:
    return await _receive("autotask", req)


@bp.function_name("halopsa_webhook")
@bp.route(route="webhooks/halopsa", methods=["POST"], auth_level=func.AuthLevel.FUNCTION)
async def halopsa_webhook(req: func.HttpRequest) -> func.HttpResponse:
    return await _receive("halopsa", req)

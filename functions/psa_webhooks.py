"""PSA webhook endpoints. Verification and intake live in tierone.webhooks."""

import json

import azure.functions as func

bp = func.Blueprint()


def _response(reply: "object") -> func.HttpResponse:
    from tierone.webhooks import WebhookReply

    assert isinstance(reply, WebhookReply)
    return func.HttpResponse(
        json.dumps(reply.body), status_code=reply.status, headers=reply.headers, mimetype="application/json"
    )


@bp.function_name("connectwise_webhook")
@bp.route(route="webhooks/connectwise", methods=["POST"], auth_level=func.AuthLevel.FUNCTION)
async def connectwise_webhook(req: func.HttpRequest) -> func.HttpResponse:
    from tierone.settings import get_settings
    from tierone.webhooks import receive_connectwise

    reply = await receive_connectwise(req.get_body(), dict(req.headers), get_settings())
    return _response(reply)

"""The one-time credential page: GET shows a button and changes nothing; POST reveals once."""

import azure.functions as func

bp = func.Blueprint()


@bp.function_name("secret_link")
@bp.route(route="secrets/{token}", methods=["GET", "POST"], auth_level=func.AuthLevel.ANONYMOUS)
async def secret_link(req: func.HttpRequest) -> func.HttpResponse:
    from tierone.secret_pages import handle
    from tierone.settings import get_settings

    page = await handle(req.method, req.route_params.get("token", ""), get_settings())
    return func.HttpResponse(page.html, status_code=page.status, headers=page.headers, mimetype="text/html")

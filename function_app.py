"""The Azure Functions app: registers the blueprints in functions/ and nothing else.

Imports stay light: each blueprint imports the core lazily inside its handlers, so the host
indexes the app fast and the webhook path never loads Microsoft Graph."""

import azure.functions as func

from functions.approvals import bp as approvals
from functions.housekeeping import bp as housekeeping
from functions.psa_webhooks import bp as psa_webhooks
from functions.secret_links import bp as secret_links
from functions.ticket_worker import bp as ticket_worker

app = func.FunctionApp(http_auth_level=func.AuthLevel.FUNCTION)
for blueprint in (psa_webhooks, ticket_worker, secret_links, housekeeping, approvals):
    app.register_functions(blueprint)

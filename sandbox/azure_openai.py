"""A local Azure OpenAI chat-completions endpoint, for testing the triage second opinion.

It checks what Azure checks on the path TierOne uses (the route with the deployment name, the
`api-version` query parameter, a Bearer token, a JSON body with messages and a strict
`json_schema` response format) and answers in the service's shape: `choices[0].message.content`
holds the JSON text. What it *says* is scripted: a reply function of the user message, a queue of
canned replies, or faults (a status code, or a delay longer than the client's timeout).

    with AzureOpenAISandbox() as aoai:
        aoai.reply_with({"intent": "password_reset", ...})
"""

from __future__ import annotations

import asyncio
import json
import threading
import uuid
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from sandbox._server import BackgroundServer

Reply = Callable[[dict[str, Any]], dict[str, Any]]

SUPPORTED_API_VERSIONS = frozenset({"2024-06-01", "2024-08-01-preview", "2024-10-21", "2025-01-01-preview"})


def keyword_reply(ticket: dict[str, Any]) -> dict[str, Any]:
    """A crude default reader, enough for a demo: keywords to an intent."""
    text = f"{ticket.get('subject', '')} {ticket.get('body', '')}".lower()
    intent = "other"
    for word, name in (
        ("password", "password_reset"),
        ("locked", "account_unlock"),
        ("authenticator", "mfa_reset"),
        ("mailbox", "mailbox_permission"),
        ("group", "group_membership"),
        ("licen", "license_change"),
        ("new starter", "onboarding"),
        ("leaver", "offboarding"),
    ):
        if word in text:
            intent = name
            break
    return {
        "intent": intent,
        "target": "requester",
        "object": None,
        "dates": [],
        "names_someone_else": False,
        "reasons": [f"keyword reader: {intent}"],
    }


@dataclass
class Seen:
    deployment: str
    api_version: str
    authorization: str
    body: dict[str, Any]


@dataclass
class Faults:
    status: deque[int] = field(default_factory=deque)
    delay_seconds: float = 0.0


class AzureOpenAISandbox:
    def __init__(self, deployment: str = "triage-gpt-4o-mini", reply: Reply = keyword_reply) -> None:
        self.deployment = deployment
        self._reply = reply
        self._canned: deque[dict[str, Any] | str] = deque()
        self.faults = Faults()
        self.requests: list[Seen] = []
        self._lock = threading.Lock()
        self._server = BackgroundServer(self._app(), name="azure-openai")

    @property
    def endpoint(self) -> str:
        return self._server.url

    def start(self) -> AzureOpenAISandbox:
        self._server.start()
        return self

    def stop(self) -> None:
        self._server.stop()

    def __enter__(self) -> AzureOpenAISandbox:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def reset(self) -> None:
        """Forget canned answers, faults and recorded requests (between tests)."""
        with self._lock:
            self._canned.clear()
            self.faults = Faults()
            self.requests.clear()

    def reply_with(self, *answers: dict[str, Any] | str) -> None:
        """Answer the next requests with these (a dict becomes the JSON content; a str is sent as is)."""
        with self._lock:
            self._canned.extend(answers)

    def fail_next(self, *statuses: int) -> None:
        with self._lock:
            self.faults.status.extend(statuses)

    def _app(self) -> Starlette:
        return Starlette(
            routes=[Route("/openai/deployments/{deployment}/chat/completions", self._chat, methods=["POST"])]
        )

    async def _chat(self, request: Request) -> Response:
        deployment = request.path_params["deployment"]
        if deployment != self.deployment:
            return _error(
                404, "DeploymentNotFound", f"The API deployment for this resource does not exist: {deployment}"
            )
        version = request.query_params.get("api-version", "")
        if version not in SUPPORTED_API_VERSIONS:
            return _error(404, "404", "Resource not found")
        authorization = request.headers.get("authorization", "")
        if not authorization.lower().startswith("bearer ") or len(authorization) < 20:
            return _error(401, "401", "Access denied due to invalid subscription key or wrong API endpoint.")
        try:
            body = json.loads(await request.body())
        except ValueError:
            return _error(400, "BadRequest", "The request body is not valid JSON.")
        problem = _check_body(body)
        if problem:
            return _error(400, "BadRequest", problem)
        with self._lock:
            self.requests.append(Seen(deployment, version, authorization, body))
            status = self.faults.status.popleft() if self.faults.status else None
            canned = self._canned.popleft() if self._canned else None
        if self.faults.delay_seconds:
            await asyncio.sleep(self.faults.delay_seconds)
        if status is not None:
            return _error(status, str(status), "Simulated failure")
        ticket = json.loads(body["messages"][-1]["content"])
        answer = canned if canned is not None else self._reply(ticket)
        content = answer if isinstance(answer, str) else json.dumps(answer)
        return JSONResponse(
            {
                "id": f"chatcmpl-{uuid.uuid4().hex[:24]}",
                "object": "chat.completion",
                "model": "gpt-4o-mini-2024-07-18",
                "choices": [
                    {
                        "index": 0,
                        "finish_reason": "stop",
                        "message": {"role": "assistant", "content": content, "refusal": None},
                    }
                ],
                "usage": {"prompt_tokens": 200, "completion_tokens": 40, "total_tokens": 240},
            }
        )


def _check_body(body: Any) -> str | None:
    if not isinstance(body, dict) or not isinstance(body.get("messages"), list) or not body["messages"]:
        return "'messages' is a required property"
    fmt = body.get("response_format") or {}
    if fmt.get("type") != "json_schema" or not isinstance(fmt.get("json_schema"), dict):
        return "response_format must be a json_schema for this deployment"
    schema = fmt["json_schema"].get("schema") or {}
    if fmt["json_schema"].get("strict") and (
        schema.get("additionalProperties") is not False
        or set(schema.get("required") or []) != set((schema.get("properties") or {}).keys())
    ):
        return "Invalid schema for response_format: in strict mode every property must be required"
    return None


def _error(status: int, code: str, message: str) -> Response:
    return JSONResponse({"error": {"code": code, "message": message}}, status_code=status)

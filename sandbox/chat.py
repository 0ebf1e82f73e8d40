"""Stand-ins for the chat services approval requests go out on.

`TeamsWorkflowsSandbox`: a Teams Workflows webhook ("When a Teams webhook request is received").
`POST /workflows/{flow}` records the JSON body and answers 202 Accepted, as the real trigger does;
it rejects (400) a body that is not the message envelope with an Adaptive Card attachment, the
error integrators hit most ("Property 'type' must be 'AdaptiveCard'"). `fail_with` makes the next
posts fail with a status, to test a channel that is down.

`SlackSandbox`: Slack's Web API `POST /api/chat.postMessage` (bearer token; JSON or form body;
`{"ok": true, "channel", "ts", "message"}` or `{"ok": false, "error": "invalid_auth" |
"channel_not_found"}` with HTTP 200 as Slack does), recording each message. It also plays Slack's
side of interactivity: `send_interaction` POSTs a `block_actions` payload to our endpoint as
`payload=<urlencoded JSON>` signed with v0 HMAC-SHA256 over `v0:{timestamp}:{body}`, with knobs for
a stale timestamp or a forged signature."""

from __future__ import annotations

import hashlib
import hmac
import json
import threading
import time
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qs, urlencode

import httpx
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from sandbox._server import BackgroundServer

CARD_CONTENT_TYPE = "application/vnd.microsoft.card.adaptive"


@dataclass
class TeamsWorkflowsSandbox:
    received: list[dict[str, Any]] = field(default_factory=list)
    fail_with: int | None = None
    _server: BackgroundServer | None = None
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def webhook_url(self, flow: str = "approvals") -> str:
        assert self._server is not None, "start() first"
        # Real URLs carry a SAS signature in the query string; so does this one, to keep it secret-shaped.
        return f"{self._server.url}/workflows/{flow}/triggers/manual/paths/invoke?api-version=1&sig=sandbox"

    async def _post(self, request: Request) -> Response:
        if self.fail_with is not None:
            return JSONResponse({"error": {"code": "Unavailable"}}, status_code=self.fail_with)
        try:
            body = await request.json()
        except ValueError:
            return JSONResponse({"error": {"message": "invalid JSON"}}, status_code=400)
        attachments = body.get("attachments") if isinstance(body, dict) else None
        if not attachments or any(
            a.get("contentType") != CARD_CONTENT_TYPE or (a.get("content") or {}).get("type") != "AdaptiveCard"
            for a in attachments
        ):
            return JSONResponse({"error": {"message": "Property 'type' must be 'AdaptiveCard'"}}, status_code=400)
        with self._lock:
            self.received.append(body)
        return Response(status_code=202)

    def start(self) -> TeamsWorkflowsSandbox:
        app = Starlette(routes=[Route("/workflows/{flow}/triggers/manual/paths/invoke", self._post, methods=["POST"])])
        self._server = BackgroundServer(app, name="teams-workflows").start()
        return self

    def stop(self) -> None:
        if self._server is not None:
            self._server.stop()


@dataclass
class SlackSandbox:
    token: str = "xoxb-sandbox-token"
    signing_secret: str = "sandbox-signing-secret"
    channels: set[str] = field(default_factory=lambda: {"C0APPROVALS"})
    team_id: str = "T0SANDBOX"
    messages: list[dict[str, Any]] = field(default_factory=list)
    _server: BackgroundServer | None = None
    _lock: threading.Lock = field(default_factory=threading.Lock)

    @property
    def api_url(self) -> str:
        assert self._server is not None, "start() first"
        return f"{self._server.url}/api/"

    async def _post_message(self, request: Request) -> Response:
        if request.headers.get("authorization") != f"Bearer {self.token}":
            return JSONResponse({"ok": False, "error": "invalid_auth"})
        raw = await request.body()
        if request.headers.get("content-type", "").startswith("application/json"):
            args: dict[str, Any] = json.loads(raw or b"{}")
        else:
            args = {k: v[0] for k, v in parse_qs(raw.decode()).items()}
            if isinstance(args.get("blocks"), str):
                args["blocks"] = json.loads(args["blocks"])
        if args.get("channel") not in self.channels:
            return JSONResponse({"ok": False, "error": "channel_not_found"})
        ts = f"{time.time():.6f}"
        with self._lock:
            self.messages.append({**args, "ts": ts})
        return JSONResponse({"ok": True, "channel": args["channel"], "ts": ts, "message": {"ts": ts, **args}})

    def start(self) -> SlackSandbox:
        app = Starlette(routes=[Route("/api/chat.postMessage", self._post_message, methods=["POST"])])
        self._server = BackgroundServer(app, name="slack").start()
        return self

    def stop(self) -> None:
        if self._server is not None:
            self._server.stop()

    # --- Slack's side of interactivity

    def interaction_request(
        self,
        approval_id: str,
        action_id: str,
        user_id: str,
        *,
        team_id: str | None = None,
        timestamp: int | None = None,
        forge: bool = False,
    ) -> tuple[bytes, dict[str, str]]:
        """The body and headers Slack would send for a click on a button of our message."""
        team = team_id or self.team_id
        payload = {
            "type": "block_actions",
            "team": {"id": team, "domain": "sandbox"},
            "user": {"id": user_id, "username": user_id.lower(), "team_id": team},
            "api_app_id": "A0SANDBOX",
            "trigger_id": f"{int(time.time())}.sandbox",
            "response_url": "https://hooks.slack.com/actions/T0SANDBOX/1/sandbox",
            "container": {"type": "message", "channel_id": next(iter(self.channels))},
            "actions": [
                {
                    "type": "button",
                    "action_id": action_id,
                    "block_id": f"approval:{approval_id}",
                    "value": approval_id,
                    "action_ts": f"{time.time():.6f}",
                }
            ],
        }
        body = urlencode({"payload": json.dumps(payload)}).encode()
        ts = str(timestamp if timestamp is not None else int(time.time()))
        secret = ("not-" + self.signing_secret) if forge else self.signing_secret
        signature = "v0=" + hmac.new(secret.encode(), f"v0:{ts}:".encode() + body, hashlib.sha256).hexdigest()
        headers = {
            "Content-Type": "application/x-www-form-urlencoded",
            "X-Slack-Request-Timestamp": ts,
            "X-Slack-Signature": signature,
        }
        return body, headers

    def send_interaction(
        self, endpoint: str, approval_id: str, action_id: str, user_id: str, **kw: Any
    ) -> httpx.Response:
        body, headers = self.interaction_request(approval_id, action_id, user_id, **kw)
        return httpx.post(endpoint, content=body, headers=headers, timeout=10)

"""The whole local deployment in one process: Azurite, the Entra ID and Graph sandboxes, the
ConnectWise, Autotask and HaloPSA sandboxes, and the function app under the local Functions host.

The app is configured exactly as in Azure — through app settings (environment variables) — with
only base URLs, credentials and the local authority's CA bundle differing. Graph is reached the
production way: the managed identity's token is the federated assertion of the multi-tenant app."""

from __future__ import annotations

import os
import secrets
from pathlib import Path
from typing import Any

from sandbox._server import free_port
from sandbox.autotask import AutotaskSandbox
from sandbox.azurite import Azurite
from sandbox.chat import SlackSandbox, TeamsWorkflowsSandbox
from sandbox.connectwise import ConnectWiseSandbox
from sandbox.entra_login import EntraSandbox
from sandbox.exchange_online import ExchangeSandbox
from sandbox.functions_host import LocalFunctionsHost
from sandbox.graph_tenant import GraphSandbox
from sandbox.halopsa import HaloSandbox

REPO_ROOT = Path(__file__).resolve().parent.parent
MSP_DOMAIN = "tierone-msp.example"
HELPDESK_MAILBOX = f"helpdesk@{MSP_DOMAIN}"
# The MSP's technicians who approve changes: they sign in to the approval page in the MSP's tenant.
MSP_STAFF = {"sam": "Sam Rivera", "lee": "Lee Chen"}


class LocalStack:
    def __init__(self, *, port: int | None = None) -> None:
        self.port = port or free_port()
        self.function_key = secrets.token_urlsafe(24)
        self.azurite = Azurite()
        self.entra = EntraSandbox()
        self.graph = GraphSandbox(self.entra)
        self.exchange = ExchangeSandbox(self.graph)
        self.connectwise = ConnectWiseSandbox()
        self.autotask = AutotaskSandbox(retry_delay=1.0)
        self.halopsa = HaloSandbox()
        self.teams = TeamsWorkflowsSandbox()
        self.slack = SlackSandbox()
        self.msp_tenant_id = ""
        self.msp_staff: dict[str, dict[str, Any]] = {}
        self.autotask_webhook_secret = secrets.token_urlsafe(24)
        self.halopsa_webhook_password = secrets.token_urlsafe(24)
        self.host: LocalFunctionsHost | None = None
        self.app_client_id = ""
        self.env: dict[str, str] = {}

    def start(self) -> LocalStack:
        self.azurite.start()
        self.entra.start()
        self.graph.start()
        self.exchange.start()
        self.connectwise.start()
        self.autotask.start()
        self.halopsa.start()
        self.teams.start()
        self.slack.start()
        self.halopsa.add_team("Escalations")
        self.env = self._app_settings()
        self._seed_msp_tenant()
        os.environ.update(self.env)
        self._forget_cached_settings()

        from tierone.settings import Settings
        from tierone.storage import Storage

        Storage(Settings.from_env()).account.ensure()
        from function_app import app

        self.host = LocalFunctionsHost(
            app,
            host_json_path=REPO_ROOT / "host.json",
            port=self.port,
            function_keys={"default": self.function_key},
        ).start()
        self.connectwise.register_callback(
            f"{self.host.api_url}/webhooks/connectwise?code={self.function_key}&recordId=",
            level="owner",
            description="TierOne (local)",
            self_suppressed=True,
        )
        self.autotask.register_webhook(
            f"{self.host.api_url}/webhooks/autotask?code={self.function_key}", self.autotask_webhook_secret
        )
        self.halopsa.register_webhook(
            f"{self.host.api_url}/webhooks/halopsa?code={self.function_key}",
            username="tierone",
            password=self.halopsa_webhook_password,
        )
        return self

    def _app_settings(self) -> dict[str, str]:
        from tierone.secret_links import new_master_key

        msp_tenant = self.entra.add_tenant(domains=[MSP_DOMAIN])
        identity = self.entra.add_managed_identity(msp_tenant)
        app = self.entra.register_app(federated_subject=identity.principal_id, home_tenant_id=msp_tenant)
        self.app_client_id = app.client_id
        self.msp_tenant_id = msp_tenant
        cw = self.connectwise
        return {
            "AzureWebJobsStorage": self.azurite.connection_string,
            "TIERONE_PUBLIC_BASE_URL": f"http://127.0.0.1:{self.port}",
            "TIERONE_SECRET_ENCRYPTION_KEY": new_master_key(),
            "CONNECTWISE_API_URL": cw.api_url,
            "CONNECTWISE_COMPANY_ID": "tierone-msp",
            "CONNECTWISE_PUBLIC_KEY": "sbxPublicKey4tier1",
            "CONNECTWISE_PRIVATE_KEY": "sbxPrivateKey4tier1",
            "CONNECTWISE_CLIENT_ID": "5c3e2a7d-8f41-4b6e-9d2a-1f0b7c6e3a94",
            "CONNECTWISE_CALLBACK_ORIGIN": cw.key_origin,
            "CONNECTWISE_API_MEMBER": "tierone-api",
            "CONNECTWISE_ESCALATION_STATUS": "Escalated",
            "CONNECTWISE_BOARDS": "L1 Service Desk",  # sandbox/scenario.py's board; others are left alone
            **self.autotask.app_settings(webhook_secret=self.autotask_webhook_secret),
            **self.halopsa.app_settings(
                HALOPSA_WEBHOOK_USERNAME="tierone",
                HALOPSA_WEBHOOK_PASSWORD=self.halopsa_webhook_password,
                HALOPSA_ESCALATION_TEAM="Escalations",
            ),
            "GRAPH_BASE_URL": self.graph.graph_url,
            "EXCHANGE_ADMIN_URL": self.exchange.admin_url,
            "TIERONE_GRAPH_AUTH": "federated",
            "TIERONE_APP_CLIENT_ID": app.client_id,
            "TIERONE_MANAGED_IDENTITY_CLIENT_ID": identity.client_id,
            "TIERONE_MSP_TENANT_ID": msp_tenant,
            "TIERONE_APPROVAL_SENDER": HELPDESK_MAILBOX,
            "TIERONE_TEAMS_WEBHOOK_URL": self.teams.webhook_url(),
            "TIERONE_SLACK_BOT_TOKEN": self.slack.token,
            "TIERONE_SLACK_CHANNEL": next(iter(self.slack.channels)),
            "TIERONE_SLACK_SIGNING_SECRET": self.slack.signing_secret,
            "TIERONE_SLACK_API_URL": self.slack.api_url,
            **self.entra.env(),
        }

    def _seed_msp_tenant(self) -> None:
        """The MSP's own tenant: the help-desk mailbox that sends approval and confirmation mail,
        and the technicians who approve."""
        self.graph.add_tenant(self.msp_tenant_id, default_domain=MSP_DOMAIN)
        self.graph.consent(self.msp_tenant_id, self.app_client_id)
        self.graph.add_user(self.msp_tenant_id, "TierOne Help Desk", HELPDESK_MAILBOX, mail=HELPDESK_MAILBOX)
        for key, name in MSP_STAFF.items():
            upn = f"{name.split()[0].lower()}.{name.split()[1].lower()}@{MSP_DOMAIN}"
            self.msp_staff[key] = self.graph.add_user(self.msp_tenant_id, name, upn, mail=upn)

    @staticmethod
    def _forget_cached_settings() -> None:
        from tierone.settings import get_settings
        from tierone.storage import reset_storage

        get_settings.cache_clear()
        reset_storage()

    def add_customer_tenant(self, default_domain: str) -> str:
        tenant_id = self.graph.add_tenant(default_domain=default_domain)
        self.graph.consent(tenant_id, self.app_client_id)
        return tenant_id

    def wait_until_idle(self, timeout: float = 60.0) -> None:
        """Until every callback is delivered and every queued ticket processed."""
        assert self.host is not None
        for _ in range(3):  # a callback may queue work, and work may fire callbacks
            self.connectwise.wait_for_deliveries(timeout)
            self.autotask.wait_for_deliveries(timeout)
            self.halopsa.wait_for_deliveries(timeout)
            self.host.wait_for_idle(timeout)

    def table_rows(self) -> list[dict[str, Any]]:
        """Every entity of every table the app uses (for checks that nothing secret was stored)."""
        from tierone.settings import Settings
        from tierone.storage import ALL_TABLES, StorageAccount

        account = StorageAccount(Settings.from_env())
        return [dict(row) for name in ALL_TABLES for row in account.table_client(name).list_entities()]

    def stop(self) -> None:
        if self.host is not None:
            self.host.stop()
            self.host = None
        self.connectwise.stop()
        self.autotask.stop()
        self.halopsa.stop()
        self.teams.stop()
        self.slack.stop()
        self.exchange.stop()
        self.graph.stop()
        self.entra.stop()
        self.azurite.stop()

    def __enter__(self) -> LocalStack:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

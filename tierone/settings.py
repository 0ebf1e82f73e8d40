"""One settings object, read once from the environment (Azure app settings arrive as environment
variables; Key Vault references are resolved by the platform before the app sees them)."""

from __future__ import annotations

import os
from collections.abc import Mapping
from functools import lru_cache
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, SecretStr, ValidationError

from tierone.errors import ConfigError


class Settings(BaseModel):
    """Every setting the app reads. Field aliases are the app-setting names documented in the README."""

    model_config = ConfigDict(populate_by_name=True, frozen=True, extra="ignore")

    # Storage: a connection string locally (Azurite); identity-based in Azure.
    storage_connection_string: SecretStr | None = Field(None, alias="AzureWebJobsStorage")
    storage_account_name: str | None = Field(None, alias="AzureWebJobsStorage__accountName")
    storage_table_uri: str | None = Field(None, alias="AzureWebJobsStorage__tableServiceUri")
    storage_queue_uri: str | None = Field(None, alias="AzureWebJobsStorage__queueServiceUri")
    storage_client_id: str | None = Field(None, alias="AzureWebJobsStorage__clientId")

    public_base_url: str = Field("http://127.0.0.1:7071", alias="TIERONE_PUBLIC_BASE_URL")
    secret_encryption_key: SecretStr | None = Field(None, alias="TIERONE_SECRET_ENCRYPTION_KEY")
    secret_link_ttl_minutes: int = Field(240, alias="TIERONE_SECRET_LINK_TTL_MINUTES", ge=5, le=7 * 24 * 60)
    max_webhook_bytes: int = Field(256 * 1024, alias="TIERONE_MAX_WEBHOOK_BYTES", ge=1024)
    retry_base_seconds: float = Field(30.0, alias="TIERONE_RETRY_BASE_SECONDS", gt=0)
    retry_max_deferrals: int = Field(10, alias="TIERONE_RETRY_MAX_DEFERRALS", ge=0)
    reconcile_lookback_minutes: int = Field(240, alias="TIERONE_RECONCILE_LOOKBACK_MINUTES", ge=5)

    # ConnectWise PSA
    connectwise_api_url: str | None = Field(None, alias="CONNECTWISE_API_URL")
    connectwise_company_id: str | None = Field(None, alias="CONNECTWISE_COMPANY_ID")
    connectwise_public_key: str | None = Field(None, alias="CONNECTWISE_PUBLIC_KEY")
    connectwise_private_key: SecretStr | None = Field(None, alias="CONNECTWISE_PRIVATE_KEY")
    connectwise_client_id: SecretStr | None = Field(None, alias="CONNECTWISE_CLIENT_ID")
    connectwise_api_version: str = Field("2025.1", alias="CONNECTWISE_API_VERSION")
    connectwise_callback_origin: str | None = Field(None, alias="CONNECTWISE_CALLBACK_ORIGIN")
    connectwise_api_member: str = Field("tierone-api", alias="CONNECTWISE_API_MEMBER")
    connectwise_closed_status: str | None = Field(None, alias="CONNECTWISE_CLOSED_STATUS")
    connectwise_escalation_status: str | None = Field(None, alias="CONNECTWISE_ESCALATION_STATUS")
    connectwise_work_type: str | None = Field(None, alias="CONNECTWISE_WORK_TYPE")
    connectwise_tenant_field: str = Field("Microsoft Tenant ID", alias="CONNECTWISE_TENANT_FIELD")
    # Scope (tierone/scope.py): the boards whose tickets TierOne works, by name or id, comma-separated.
    connectwise_boards: str | None = Field(None, alias="CONNECTWISE_BOARDS")

    # Autotask PSA
    autotask_zone_lookup_url: str = Field(
        "https://webservices2.autotask.net/atservicesrest/V1.0/zoneInformation", alias="AUTOTASK_ZONE_LOOKUP_URL"
    )
    autotask_api_url: str | None = Field(None, alias="AUTOTASK_API_URL")
    autotask_username: str | None = Field(None, alias="AUTOTASK_USERNAME")
    autotask_secret: SecretStr | None = Field(None, alias="AUTOTASK_SECRET")
    autotask_integration_code: SecretStr | None = Field(None, alias="AUTOTASK_INTEGRATION_CODE")
    autotask_webhook_secret: SecretStr | None = Field(None, alias="AUTOTASK_WEBHOOK_SECRET")
    autotask_api_resource_id: int | None = Field(None, alias="AUTOTASK_API_RESOURCE_ID")
    autotask_complete_status: int = Field(5, alias="AUTOTASK_COMPLETE_STATUS")
    autotask_escalation_queue_id: int | None = Field(None, alias="AUTOTASK_ESCALATION_QUEUE_ID")
    autotask_note_type: int = Field(1, alias="AUTOTASK_NOTE_TYPE")
    autotask_time_role_id: int | None = Field(None, alias="AUTOTASK_TIME_ROLE_ID")
    autotask_tenant_udf: str = Field("Microsoft Tenant ID", alias="AUTOTASK_TENANT_UDF")
    autotask_queues: str | None = Field(None, alias="AUTOTASK_QUEUES")  # queue names or ids, comma-separated

    # HaloPSA
    halopsa_url: str | None = Field(None, alias="HALOPSA_URL")
    halopsa_tenant: str | None = Field(None, alias="HALOPSA_TENANT")
    halopsa_client_id: str | None = Field(None, alias="HALOPSA_CLIENT_ID")
    halopsa_client_secret: SecretStr | None = Field(None, alias="HALOPSA_CLIENT_SECRET")
    halopsa_webhook_username: str = Field("tierone", alias="HALOPSA_WEBHOOK_USERNAME")
    halopsa_webhook_password: SecretStr | None = Field(None, alias="HALOPSA_WEBHOOK_PASSWORD")
    halopsa_api_agent_id: int | None = Field(None, alias="HALOPSA_API_AGENT_ID")
    halopsa_closed_status_id: int = Field(9, alias="HALOPSA_CLOSED_STATUS_ID")
    halopsa_note_outcome_id: int = Field(7, alias="HALOPSA_NOTE_OUTCOME_ID")
    halopsa_escalation_team: str | None = Field(None, alias="HALOPSA_ESCALATION_TEAM")
    halopsa_teams: str | None = Field(None, alias="HALOPSA_TEAMS")  # team names, comma-separated

    # Microsoft Graph: one multi-tenant app, reached without secrets by default.
    graph_base_url: str = Field("https://graph.microsoft.com/v1.0", alias="GRAPH_BASE_URL")
    graph_scope: str = Field("https://graph.microsoft.com/.default", alias="GRAPH_SCOPE")
    # Exchange Online admin API (InvokeCommand), for what Graph cannot do: mailbox permissions, DLs.
    exchange_scope: str = Field("https://outlook.office365.com/.default", alias="EXCHANGE_SCOPE")
    exchange_admin_url: str = Field("https://outlook.office365.com/adminapi/beta", alias="EXCHANGE_ADMIN_URL")
    graph_auth: Literal["federated", "client_secret", "certificate"] = Field("federated", alias="TIERONE_GRAPH_AUTH")
    app_client_id: str | None = Field(None, alias="TIERONE_APP_CLIENT_ID")
    managed_identity_client_id: str | None = Field(None, alias="TIERONE_MANAGED_IDENTITY_CLIENT_ID")
    app_client_secret: SecretStr | None = Field(None, alias="TIERONE_APP_CLIENT_SECRET")
    app_certificate_path: str | None = Field(None, alias="TIERONE_APP_CERTIFICATE_PATH")
    authority_host: str | None = Field(None, alias="AZURE_AUTHORITY_HOST")

    # Triage (docs/triage.md). The LLM second opinion is used only when endpoint and deployment are both set.
    openai_endpoint: str | None = Field(None, alias="TIERONE_OPENAI_ENDPOINT")
    openai_deployment: str | None = Field(None, alias="TIERONE_OPENAI_DEPLOYMENT")
    openai_api_version: str = Field("2024-10-21", alias="TIERONE_OPENAI_API_VERSION")
    openai_scope: str = Field("https://cognitiveservices.azure.com/.default", alias="TIERONE_OPENAI_SCOPE")
    openai_timeout_seconds: float = Field(15.0, alias="TIERONE_OPENAI_TIMEOUT_SECONDS", gt=0)
    triage_category_map: str | None = Field(None, alias="TIERONE_TRIAGE_CATEGORY_MAP")  # JSON: PSA category → intent

    # Approvals (tierone/approvals.py, tierone/notify/): each channel is used only when configured.
    teams_webhook_url: SecretStr | None = Field(None, alias="TIERONE_TEAMS_WEBHOOK_URL")  # the URL is the credential
    slack_bot_token: SecretStr | None = Field(None, alias="TIERONE_SLACK_BOT_TOKEN")
    slack_channel: str | None = Field(None, alias="TIERONE_SLACK_CHANNEL")
    slack_signing_secret: SecretStr | None = Field(None, alias="TIERONE_SLACK_SIGNING_SECRET")
    slack_api_url: str = Field("https://slack.com/api/", alias="TIERONE_SLACK_API_URL")
    # The MSP's own Entra tenant: approvers sign in there (App Service Authentication) and the
    # sender mailbox below lives there. Approvers named by UPN are resolved to object ids in it.
    msp_tenant_id: str | None = Field(None, alias="TIERONE_MSP_TENANT_ID")
    approval_sender: str | None = Field(None, alias="TIERONE_APPROVAL_SENDER")  # mailbox UPN that sends approval mail
    approval_ttl_minutes: int = Field(60, alias="TIERONE_APPROVAL_TTL_MINUTES", ge=5, le=7 * 24 * 60)
    approval_channel_wait_minutes: int = Field(15, alias="TIERONE_APPROVAL_CHANNEL_WAIT_MINUTES", ge=1, le=24 * 60)
    # Out-of-band confirmation of credential actions (tierone/confirmations.py): how long the link works.
    confirmation_ttl_minutes: int = Field(30, alias="TIERONE_CONFIRMATION_TTL_MINUTES", ge=5, le=24 * 60)

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> Settings:
        env = os.environ if environ is None else environ
        try:
            return cls.model_validate(dict(env))
        except ValidationError as exc:
            names = ", ".join(str(err["loc"][0]) for err in exc.errors())
            raise ConfigError(f"invalid app settings: {names}") from None

    def require(self, *field_names: str) -> None:
        """Fail with the app-setting names (never the values) of every required field left empty."""
        fields = type(self).model_fields
        missing = [fields[name].alias or name for name in field_names if getattr(self, name) in (None, "")]
        if missing:
            raise ConfigError(f"missing app settings: {', '.join(missing)}")


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    return Settings.from_env()

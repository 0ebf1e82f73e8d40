"""The app settings infra/main.bicep gives the function app, checked against what the code reads.

"What the code reads" is tierone.settings.Settings: each field's alias is an app setting. A new
field there fails these tests until the template sets it, or until it is listed below as one
that Azure deliberately does not get, with the reason."""

from __future__ import annotations

import re
import typing
from typing import Any

import pytest
from pydantic import SecretStr

from tests.infra import (
    KEY_VAULT_REFERENCE,
    MAIN,
    MODULES,
    Setting,
    app_settings,
    body,
    parse,
    remove_key,
    render,
    resources_of_type,
)
from tierone.settings import Settings

# Settings the code reads that an Azure deployment must NOT set, and why.
NOT_SET_IN_AZURE = {
    "AzureWebJobsStorage": "a connection string, for Azurite locally; Azure storage has shared-key access disabled",
    "AzureWebJobsStorage__accountName": "an alternative to the service URIs, which the template sets for any cloud",
    "TIERONE_APP_CLIENT_SECRET": "fallback of TIERONE_GRAPH_AUTH=client_secret; Azure uses the federated identity",
    "TIERONE_APP_CERTIFICATE_PATH": "fallback of TIERONE_GRAPH_AUTH=certificate; Azure uses the federated identity",
}

# Settings every deployment has, whatever PSA is used: always written, never under a condition.
ALWAYS_SET = {
    # identity-based host and SDK storage (azure.md §3.3)
    "AzureWebJobsStorage__credential",
    "AzureWebJobsStorage__clientId",
    "AzureWebJobsStorage__blobServiceUri",
    "AzureWebJobsStorage__queueServiceUri",
    "AzureWebJobsStorage__tableServiceUri",
    # Application Insights with Entra ingestion (azure.md §3.4)
    "APPLICATIONINSIGHTS_CONNECTION_STRING",
    "APPLICATIONINSIGHTS_AUTHENTICATION_STRING",
    # App Service Authentication signs in with the managed identity instead of a client secret
    "OVERRIDE_USE_MI_FIC_ASSERTION_CLIENTID",
    # TierOne itself
    "TIERONE_PUBLIC_BASE_URL",
    "TIERONE_SECRET_ENCRYPTION_KEY",
    "TIERONE_GRAPH_AUTH",
    "TIERONE_APP_CLIENT_ID",
    "TIERONE_MANAGED_IDENTITY_CLIENT_ID",
}

FIXED_VALUES = {"TIERONE_GRAPH_AUTH": "federated", "AzureWebJobsStorage__credential": "managedidentity"}

# The managed identity's client id, wherever a setting names the identity to use.
IDENTITY_CLIENT_ID = "identity.outputs.clientId"
NAMES_THE_IDENTITY = (
    "AzureWebJobsStorage__clientId",
    "TIERONE_MANAGED_IDENTITY_CLIENT_ID",
    "AZURE_CLIENT_ID",
    "OVERRIDE_USE_MI_FIC_ASSERTION_CLIENTID",
)

PSA_PREFIXES = ("CONNECTWISE_", "AUTOTASK_", "HALOPSA_")

# Learn, "Flex Consumption plan deprecations" (azure.md §1.5): rejected or meaningless on Flex.
FLEX_PROHIBITED = {
    "FUNCTIONS_WORKER_RUNTIME",
    "FUNCTIONS_WORKER_RUNTIME_VERSION",
    "FUNCTIONS_WORKER_PROCESS_COUNT",
    "FUNCTIONS_EXTENSION_VERSION",
    "SCM_DO_BUILD_DURING_DEPLOYMENT",
    "ENABLE_ORYX_BUILD",
    "WEBSITE_CONTENTSHARE",
    "WEBSITE_CONTENTAZUREFILECONNECTIONSTRING",
    "WEBSITE_RUN_FROM_PACKAGE",
    "WEBSITE_SKIP_CONTENTSHARE_VALIDATION",
    "WEBSITE_VNET_ROUTE_ALL",
    "APPINSIGHTS_INSTRUMENTATIONKEY",
}


def _is_secret(annotation: Any) -> bool:
    return annotation is SecretStr or SecretStr in typing.get_args(annotation)


CODE_SETTINGS = {field.alias for field in Settings.model_fields.values() if field.alias}
SECRET_SETTINGS = {
    field.alias for field in Settings.model_fields.values() if field.alias and _is_secret(field.annotation)
}


# --- The checks, as functions of a parsed main.bicep, so each test below can also prove that a
# --- check notices when the template loses what it checks.


def missing_settings(main: dict[str, Any]) -> set[str]:
    """Settings the code reads that the template neither sets nor deliberately leaves out."""
    return CODE_SETTINGS - set(NOT_SET_IN_AZURE) - set(app_settings(main))


def settings_not_always_set(main: dict[str, Any]) -> set[str]:
    settings = app_settings(main)
    return {name for name in ALWAYS_SET if not any(not s.conditional for s in settings.get(name, []))}


def secrets_not_in_key_vault(main: dict[str, Any]) -> set[str]:
    """Secret settings whose value is anything but a Key Vault reference."""
    settings = app_settings(main)
    return {
        name
        for name in SECRET_SETTINGS
        for s in settings.get(name, [])
        if not (isinstance(s.value, str) and KEY_VAULT_REFERENCE.match(s.value))
    }


def _all_settings() -> list[Setting]:
    return [s for entries in app_settings(parse(MAIN)).values() for s in entries]


# --- Tests


def test_every_setting_the_code_reads_is_set_by_the_template_or_excluded_with_a_reason():
    assert missing_settings(parse(MAIN)) == set()
    assert set(NOT_SET_IN_AZURE) <= CODE_SETTINGS, "an exclusion names a setting the code no longer reads"


@pytest.mark.parametrize("setting", ["TIERONE_APP_CLIENT_ID", "CONNECTWISE_PRIVATE_KEY", "HALOPSA_TENANT"])
def test_removing_a_setting_from_the_template_is_reported(setting):
    assert missing_settings(remove_key(parse(MAIN), setting)) == {setting}


def test_settings_left_out_of_azure_are_not_set():
    assert set(NOT_SET_IN_AZURE) & set(app_settings(parse(MAIN))) == set()


def test_settings_every_deployment_needs_are_set_unconditionally():
    assert settings_not_always_set(parse(MAIN)) == set()


def test_a_required_setting_moved_under_a_condition_is_reported():
    main = parse(MAIN)
    tierone = main["variables"]["tieroneSettings"]
    tierone["value"] = {
        "operator": {
            "type": "conditional",
            "operands": {"condition": "someFlag", "true_value": tierone["value"], "false_value": {}},
        }
    }
    assert "TIERONE_SECRET_ENCRYPTION_KEY" in settings_not_always_set(main)


def test_fixed_settings_have_their_values():
    settings = app_settings(parse(MAIN))
    for name, value in FIXED_VALUES.items():
        assert [s.value for s in settings[name]] == [value], name


def test_settings_that_name_an_identity_name_the_function_apps_managed_identity():
    settings = app_settings(parse(MAIN))
    for name in NAMES_THE_IDENTITY:
        values = [s.value for s in settings[name]]
        assert values, name
        assert all(_rendered(v) == IDENTITY_CLIENT_ID for v in values), name
    [auth_string] = settings["APPLICATIONINSIGHTS_AUTHENTICATION_STRING"]
    assert auth_string.value == "ClientId=${identity.outputs.clientId};Authorization=AAD"


def test_storage_is_reached_by_service_uri_from_the_account_itself():
    settings = app_settings(parse(MAIN))
    for service in ("blob", "queue", "table"):
        [setting] = settings[f"AzureWebJobsStorage__{service}ServiceUri"]
        assert _rendered(setting.value) == f"storage.outputs.{service}Endpoint"


def test_secrets_are_key_vault_references_and_never_values():
    assert {"TIERONE_SECRET_ENCRYPTION_KEY", "CONNECTWISE_PRIVATE_KEY", "HALOPSA_WEBHOOK_PASSWORD"} <= SECRET_SETTINGS
    assert secrets_not_in_key_vault(parse(MAIN)) == set()


def test_a_secret_given_as_a_value_is_reported():
    main = parse(MAIN)
    main["variables"]["autotaskRequired"]["value"]["AUTOTASK_SECRET"] = "autotaskSecret"
    assert secrets_not_in_key_vault(main) == {"AUTOTASK_SECRET"}


def test_every_key_vault_reference_names_a_secret_the_vault_module_writes():
    vault = parse(MODULES / "keyVault.bicep")
    written = {body(r)["name"]: body(r) for r in resources_of_type(vault, "Microsoft.KeyVault/vaults/secrets").values()}
    referenced = {
        match.group("name")
        for s in _all_settings()
        if isinstance(s.value, str) and (match := KEY_VAULT_REFERENCE.match(s.value))
    }
    assert referenced == set(written)
    for name, secret in written.items():
        assert secret["parent"] == "vault", name
        assert secret["properties"]["contentType"] == "text/plain", name


def test_the_vault_uri_in_references_is_the_vault_modules_uri():
    main = parse(MAIN)
    assert _rendered(main["variables"]["vaultUri"]["value"]) == "keyVault.outputs.uri"


def test_each_psas_settings_are_written_only_when_that_psa_is_used():
    # An unused PSA must have no settings: a Key Vault reference to a secret never stored would
    # stay as literal text and make the PSA look configured (psa_integrations.registry.configured).
    settings = app_settings(parse(MAIN))
    psa_settings = [s for entries in settings.values() for s in entries if s.name.startswith(PSA_PREFIXES)]
    assert psa_settings
    assert [s.name for s in psa_settings if not s.conditional] == []


def test_optional_settings_are_left_out_when_empty_so_tierones_defaults_apply():
    # An empty value would override a default (e.g. CONNECTWISE_API_VERSION) or fail validation
    # (e.g. AUTOTASK_ESCALATION_QUEUE_ID is an int), so optional settings sit under a condition.
    settings = app_settings(parse(MAIN))
    with_defaults = {
        field.alias
        for field in Settings.model_fields.values()
        if field.alias and field.default not in (None, "") and field.alias not in ALWAYS_SET
    }
    assert with_defaults
    for name in with_defaults:
        assert all(s.conditional for s in settings[name]), name


def test_no_setting_is_one_flex_consumption_rejects():
    names = {s.name for s in _all_settings()}
    assert names & FLEX_PROHIBITED == set()


def test_no_storage_key_or_development_storage_appears_anywhere_in_infra():
    for path in [MAIN, *sorted(MODULES.glob("*.bicep"))]:
        text = path.read_text()
        for forbidden in ("AccountKey=", "UseDevelopmentStorage", "listKeys(", "SharedAccessSignature"):
            assert forbidden not in text, f"{forbidden} in {path.name}"


def test_the_app_settings_module_applies_exactly_the_settings_it_is_given():
    module = parse(MODULES / "appSettings.bicep")
    [config] = resources_of_type(module, "Microsoft.Web/sites/config").values()
    assert config["config"]["name"] == "appsettings"
    assert config["config"]["properties"] == "settings"


def _rendered(value: Any) -> str:
    return re.sub(r"\s", "", render(value))

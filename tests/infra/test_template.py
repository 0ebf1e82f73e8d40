"""The shape of infra/: modules wired as declared, Microsoft's Flex Consumption pattern, no keys or
secrets anywhere they could leak, App Service Authentication in front of everything but the PSA
webhooks and one-time links, and TierOne's Entra registrations without client secrets."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pytest

from tests.infra import (
    INFRA,
    MAIN,
    MODULES,
    PARAMS_FILE,
    app_triggers,
    bicepparam_assignments,
    body,
    module_call,
    parse,
    render,
    resources_of_type,
    strings_in,
)
from tests.infra.test_app_settings import SECRET_SETTINGS

BICEP_FILES = [MAIN, *sorted(MODULES.glob("*.bicep"))]
ENTRA = MODULES / "entra.bicep"
PERMISSIONS_DOC = INFRA.parent / "docs" / "permissions.md"


def _http_routes() -> dict[str, str]:
    """function name → route of every HTTP function the app registers."""
    return {
        name: trigger.route for name, trigger in app_triggers().items() if trigger.get_binding_name() == "httpTrigger"
    }


# --- Modules


@pytest.mark.parametrize("path", BICEP_FILES, ids=lambda p: p.name)
def test_every_module_call_passes_declared_parameters_and_all_required_ones(path: Path):
    tree = parse(path)
    for symbol, module in tree.get("modules", {}).items():
        target = path.parent / module["detail"]["path"]
        assert target.is_file(), f"{symbol}: {target} does not exist (registry modules are not scanned offline)"
        declared = parse(target)["parameters"]
        passed = set(body(module).get("params", {}))
        required = {name for name, p in declared.items() if p.get("default") is None}
        assert passed <= set(declared), f"{symbol} passes undeclared {passed - set(declared)}"
        assert required <= passed, f"{symbol} leaves out {required - passed}"


@pytest.mark.parametrize("path", BICEP_FILES, ids=lambda p: p.name)
def test_child_resources_are_declared_at_the_top_level_with_parent(path: Path):
    # checkov's parser keeps only the last of several nested children (azure.md §4.1, blind spot 3).
    nested = [line for line in path.read_text().splitlines() if re.match(r"^\s+resource\s", line)]
    assert nested == []
    assert [name for name in parse(path).get("resources", {}) if "__" in name] == []


def test_main_calls_every_module_in_the_modules_folder():
    called = {module["detail"]["path"] for module in parse(MAIN)["modules"].values()}
    assert called == {f"modules/{p.name}" for p in MODULES.glob("*.bicep")}


# --- Flex Consumption, Python, identity-based storage


def test_the_plan_is_flex_consumption_on_linux():
    [plan] = resources_of_type(parse(MODULES / "plan.bicep"), "Microsoft.Web/serverfarms").values()
    assert plan["config"]["sku"] == {"tier": "FlexConsumption", "name": "FC1"}
    assert plan["config"]["kind"] == "functionapp"
    assert plan["config"]["properties"]["reserved"] is True


def test_the_function_app_is_python_311_deployed_from_its_blob_container():
    module = parse(MODULES / "functionApp.bicep")
    site = body(module["resources"]["site"])
    assert site["kind"] == "functionapp,linux"
    assert site["properties"]["httpsOnly"] is True
    assert site["properties"]["siteConfig"]["minTlsVersion"] == "1.2"
    config = site["properties"]["functionAppConfig"]
    assert config["runtime"] == {"name": "python", "version": "pythonVersion"}
    assert parse(MAIN)["parameters"]["pythonVersion"]["default"] == "3.11"
    storage = config["deployment"]["storage"]
    assert storage["type"] == "blobContainer"
    assert storage["value"] == "${blobEndpoint}${deploymentContainer.name}"
    container = module["resources"]["deploymentContainer"]["config"]
    assert container["parent"] == "blobService"
    assert container["properties"]["publicAccess"] == "None"


def _keys(tree: Any) -> set[str]:
    if isinstance(tree, dict):
        return set(tree).union(*(_keys(value) for value in tree.values()))
    if isinstance(tree, list):
        return set().union(*(_keys(value) for value in tree))
    return set()


def test_nothing_sets_the_runtime_the_pre_flex_way():
    for path in BICEP_FILES:
        assert "linuxFxVersion" not in _keys(parse(path)), path.name


def test_basic_auth_publishing_is_off():
    module = parse(MODULES / "functionApp.bicep")
    policies = resources_of_type(module, "Microsoft.Web/sites/basicPublishingCredentialsPolicies")
    assert {p["config"]["name"]: p["config"]["properties"]["allow"] for p in policies.values()} == {
        "ftp": False,
        "scm": False,
    }


def test_storage_refuses_shared_keys_and_anonymous_access():
    [account] = resources_of_type(parse(MODULES / "storage.bicep"), "Microsoft.Storage/storageAccounts").values()
    properties = account["config"]["properties"]
    assert properties["allowSharedKeyAccess"] is False
    assert properties["allowBlobPublicAccess"] is False
    assert properties["defaultToOAuthAuthentication"] is True
    assert properties["minimumTlsVersion"] == "TLS1_2"
    assert properties["supportsHttpsTrafficOnly"] is True


def test_monitoring_refuses_key_based_ingestion_and_queries():
    module = parse(MODULES / "monitoring.bicep")
    workspace = module["resources"]["workspace"]["config"]["properties"]
    insights = module["resources"]["appInsights"]["config"]["properties"]
    assert workspace["features"]["disableLocalAuth"] is True
    assert insights["DisableLocalAuth"] is True
    assert render(insights["WorkspaceResourceId"]) == "workspace.id"


def test_key_vault_uses_rbac_and_cannot_be_purged():
    [vault] = resources_of_type(parse(MODULES / "keyVault.bicep"), "Microsoft.KeyVault/vaults").values()
    properties = vault["config"]["properties"]
    assert properties["enableRbacAuthorization"] is True
    assert properties["enablePurgeProtection"] is True
    assert properties["enableSoftDelete"] is True
    assert "accessPolicies" not in properties


def test_key_vault_secrets_are_written_only_when_given():
    module = parse(MODULES / "keyVault.bicep")
    for name, secret in resources_of_type(module, "Microsoft.KeyVault/vaults/secrets").items():
        value = body(secret)["properties"]["value"]
        assert module["parameters"][value]["decorators"][0] == {"type": "secure"}, name
        written_if_given = {
            "operator": {
                "type": "not",
                "operands": {"bool_value": {"function": {"type": "empty", "parameters": {"item_to_test": value}}}},
            }
        }
        assert secret["config"]["condition"] == written_if_given, name


# --- App Service Authentication


def _excluded(path: str, patterns: list[str]) -> bool:
    return any(path == p or (p.endswith("/*") and path.startswith(p[:-1])) for p in patterns)


def test_sign_in_protects_everything_but_webhooks_and_one_time_links():
    auth = body(parse(MODULES / "authentication.bicep")["resources"]["authentication"])["properties"]
    assert auth["platform"]["enabled"] is True
    assert auth["globalValidation"]["requireAuthentication"] is True
    assert auth["globalValidation"]["unauthenticatedClientAction"] == "RedirectToLoginPage"
    assert auth["globalValidation"]["excludedPaths"] == "excludedPaths"
    excluded = parse(MAIN)["variables"]["anonymousPaths"]["value"]
    assert module_call(parse(MAIN), "modules/authentication.bicep")["params"]["excludedPaths"] == "anonymousPaths"

    routes = _http_routes()
    assert routes, "the app registers HTTP functions"
    for name, route in routes.items():
        path = "/api/" + re.sub(r"\{[^}]+\}", "x", route)
        behind_sign_in = route.startswith(("approvals", "dashboard"))
        assert _excluded(path, excluded) is not behind_sign_in, f"{name}: {path}"
    for page in ("/api/approvals/abc", "/api/dashboard", "/api/dashboard/tickets", "/"):
        assert not _excluded(page, excluded), page


def test_sign_in_needs_no_client_secret():
    auth = body(parse(MODULES / "authentication.bicep")["resources"]["authentication"])["properties"]
    registration = auth["identityProviders"]["azureActiveDirectory"]["registration"]
    assert registration["clientSecretSettingName"] == "OVERRIDE_USE_MI_FIC_ASSERTION_CLIENTID"
    assert registration["clientId"] == "signInClientId"
    assert "${tenant().tenantId}/v2.0" in render(registration["openIdIssuer"])
    call = module_call(parse(MAIN), "modules/authentication.bicep")["params"]
    assert call["signInClientId"] == "resolvedSignInClientId"


# --- Outputs and parameters


def _secure_parameters(tree: dict[str, Any]) -> set[str]:
    return {name for name, p in tree.get("parameters", {}).items() if {"type": "secure"} in p.get("decorators", [])}


def _functions_called(expr: Any) -> set[str]:
    if isinstance(expr, dict):
        own = {expr["function"]["type"]} if "function" in expr and isinstance(expr["function"], dict) else set()
        return own.union(*(_functions_called(value) for value in expr.values()))
    if isinstance(expr, list):
        return set().union(*(_functions_called(value) for value in expr))
    return set()


def secret_outputs(tree: dict[str, Any]) -> set[str]:
    """Outputs that could carry a secret: a @secure() parameter, a list*() call (keys, SAS,
    connection strings), a connection string property, or a function key (?code=)."""
    secure = _secure_parameters(tree)
    leaks = set()
    for name, output in tree.get("outputs", {}).items():
        text = " ".join(strings_in(output["value"]))
        if (
            set(re.findall(r"\w+", text)) & secure
            or re.search(r"\blist\w*\(|ConnectionString|\?code=|primaryKey|secondaryKey", text, re.IGNORECASE)
            or any(function.lower().startswith("list") for function in _functions_called(output["value"]))
        ):
            leaks.add(name)
    return leaks


@pytest.mark.parametrize("path", BICEP_FILES, ids=lambda p: p.name)
def test_no_output_carries_a_secret(path: Path):
    assert secret_outputs(parse(path)) == set()


def test_an_output_of_a_secret_is_reported():
    main = parse(MAIN)
    main["outputs"]["oops"] = {"decorators": [], "type": "string", "value": "secretEncryptionKey"}
    main["outputs"]["code"] = {"decorators": [], "type": "string", "value": "${siteUrl}?code=${x}"}
    main["outputs"]["keys"] = {
        "decorators": [],
        "type": "object",
        "value": {"function": {"type": "list_keys", "parameters": {"resource_id": "x"}}},
    }
    assert secret_outputs(main) == {"oops", "code", "keys"}


def test_the_webhook_outputs_name_the_apps_webhook_functions_and_routes():
    outputs = parse(MAIN)["outputs"]
    urls = outputs["webhookUrls"]["value"]
    functions = outputs["webhookFunctionNames"]["value"]
    routes = _http_routes()
    assert set(urls) == set(functions) == {"connectwise", "autotask", "halopsa"}
    for psa, function_name in functions.items():
        assert urls[psa] == "${siteUrl}/api/" + routes[function_name], psa


def test_the_parameter_file_sets_every_parameter_and_reads_secrets_from_the_environment():
    assert re.search(r"^using 'main\.bicep'$", PARAMS_FILE.read_text(), re.MULTILINE)
    assigned = bicepparam_assignments()
    declared = parse(MAIN)["parameters"]
    assert set(assigned) <= set(declared)
    assert {name for name, p in declared.items() if p.get("default") is None} <= set(assigned)
    environment_names = set()
    for name in _secure_parameters(parse(MAIN)):
        match = re.fullmatch(r"readEnvironmentVariable\('(\w+)', ''\)", assigned[name])
        assert match, f"{name} must come from the environment, not the file"
        environment_names.add(match.group(1))
    assert environment_names == SECRET_SETTINGS - {"AzureWebJobsStorage", "TIERONE_APP_CLIENT_SECRET"}


# --- Entra ID (Microsoft Graph Bicep extension)


def test_the_graph_extension_is_pinned_in_bicepconfig():
    config = json.loads((INFRA / "bicepconfig.json").read_text())
    assert config["extensions"]["microsoftGraphV1"] == (
        "br:mcr.microsoft.com/bicep/extensions/microsoftgraph/v1.0:1.0.0"
    )
    assert "microsoftGraphV1" in parse(ENTRA)["extensions"]


def test_the_managed_identity_is_the_federated_credential_of_both_registrations():
    entra = parse(ENTRA)
    credentials = resources_of_type(entra, "Microsoft.Graph/applications/federatedIdentityCredentials")
    owners = set()
    for credential in credentials.values():
        config = credential["config"]
        owners.add(config["name"].split("/")[0])
        assert config["subject"] == "managedIdentityPrincipalId"
        assert config["issuer"] == "issuer"
        assert config["audiences"] == ["tokenExchangeAudience"]
    assert owners == {"${app.uniqueName}", "${signIn.uniqueName}"}
    issuer = entra["variables"]["issuer"]["value"]
    assert issuer == "${environment().authentication.loginEndpoint}${tenant().tenantId}/v2.0"
    call = module_call(parse(MAIN), "modules/entra.bicep")["params"]
    assert render(call["managedIdentityPrincipalId"]) == "identity.outputs.principalId"


def test_no_registration_has_a_password_or_certificate():
    text = ENTRA.read_text()
    for credential in ("passwordCredentials", "keyCredentials", "addPassword"):
        assert credential not in text


def test_the_registrations_are_multi_tenant_for_graph_and_single_tenant_for_sign_in():
    entra = parse(ENTRA)
    app = entra["resources"]["app"]["config"]
    sign_in = entra["resources"]["signIn"]["config"]
    assert app["signInAudience"] == "AzureADMultipleOrgs"
    [graph_access] = app["requiredResourceAccess"]
    assert graph_access["resourceAppId"] == "graphAppId"
    assert graph_access["resourceAccess"]["loop_type"]["detail"]["array_name"] == "graphApplicationPermissions"
    assert graph_access["resourceAccess"]["config"]["type"] == "Role"
    assert sign_in["signInAudience"] == "AzureADMyOrg"
    assert sign_in["web"]["redirectUris"] == ["https://${siteHostName}/.auth/login/aad/callback"]
    sign_in_principal = entra["resources"]["signInServicePrincipal"]["config"]
    assert sign_in_principal["appRoleAssignmentRequired"] is True


def documented_permissions() -> list[str]:
    """Graph application permissions docs/permissions.md lists as enabled today (its first table)."""
    text = PERMISSIONS_DOC.read_text()
    section = text.split("## Enabled today", 1)[1].split("\n## ", 1)[0]
    table = section.split("### Microsoft Graph application permissions", 1)[1].split("\n### ", 1)[0]
    return re.findall(r"^\| `([\w.-]+)` \|", table, re.MULTILINE)


def test_the_requested_permissions_are_exactly_the_documented_ones():
    default = parse(MAIN)["parameters"]["graphApplicationPermissions"]["default"]
    in_param_file = re.search(
        r"^param graphApplicationPermissions = \[(.*?)\]", PARAMS_FILE.read_text(), re.MULTILINE | re.DOTALL
    )
    assert in_param_file
    assert sorted(default) == sorted(documented_permissions())
    assert sorted(re.findall(r"'([\w.-]+)'", in_param_file.group(1))) == sorted(default)

"""The data-plane roles, tables and queues infra/ gives the function app, checked against the code.

Without storage keys, connection strings or access policies, a missing role assignment is an app
that starts and then fails on its first table write or Key Vault reference, so each role the code
depends on is asserted here, by its built-in GUID, on the resource it must cover."""

from __future__ import annotations

from typing import Any

import pytest

from tests.infra import (
    MAIN,
    MODULES,
    app_triggers,
    body,
    is_conditional,
    module_call,
    parse,
    render,
    resources_of_type,
)
from tierone import storage

ROLES_MODULE = MODULES / "roleAssignments.bicep"

# role → (built-in role definition GUID, scope symbol in roleAssignments.bicep, what needs it)
APP_ROLES = {
    "Storage Blob Data Owner": (
        "b7e6dc6d-f1e8-4753-8033-0f276bb0955b",
        "storage",
        "the Functions host: function keys, timer and singleton leases, the deployment package",
    ),
    "Storage Queue Data Contributor": (
        "974c5e8b-45b9-4653-ba55-5f855dd0fb88",
        "storage",
        "webhook intake enqueues tickets; the worker's queue trigger and the poison queue",
    ),
    "Storage Table Data Contributor": (
        "0a9a7e1f-b9d0-4cc4-a60d-0319b160aaa3",
        "storage",
        "tierone/storage.py: deliveries, tickets, tenants, secrets, audit...",
    ),
    "Key Vault Secrets User": (
        "4633458b-17de-408a-b874-0445c86b69e6",
        "vault",
        "Key Vault references in the app settings (keyVaultReferenceIdentity)",
    ),
    "Monitoring Metrics Publisher": (
        "3913510d-42f4-4e42-8a64-420c390055eb",
        "appInsights",
        "telemetry with Entra authentication (local authentication is off)",
    ),
}

# The optional administrator (adminPrincipalId): `tierone tenants map` and secret rotation.
ADMIN_ROLES = {
    "Storage Table Data Contributor": ("0a9a7e1f-b9d0-4cc4-a60d-0319b160aaa3", "storage"),
    "Key Vault Secrets Officer": ("b86a8fe4-44ce-4948-aee5-eccb2c155cd7", "vault"),
}

SCOPES = {
    "storage": ("Microsoft.Storage/storageAccounts", "storageAccountName"),
    "vault": ("Microsoft.KeyVault/vaults", "keyVaultName"),
    "appInsights": ("Microsoft.Insights/components", "appInsightsName"),
}


def assignments(tree: dict[str, Any], principal: str) -> set[tuple[str, str, bool]]:
    """(role GUID, scope, conditional) of every role assignment to `principal` (a parameter name)."""
    variables = tree.get("variables", {})
    found = set()
    for declaration in resources_of_type(tree, "Microsoft.Authorization/roleAssignments").values():
        assignment = body(declaration)
        properties = assignment["properties"]
        if properties["principalId"] != principal:
            continue
        role = properties["roleDefinitionId"]["function"]
        assert role["type"] == "subscription_resource_id"
        assert role["parameters"]["resource_type"] == "Microsoft.Authorization/roleDefinitions"
        role_name = role["parameters"]["resource_name_1"]
        guid = variables[role_name]["value"] if role_name in variables else role_name
        found.add((guid, assignment["scope"], is_conditional(declaration)))
    return found


def missing_app_roles(tree: dict[str, Any]) -> set[str]:
    """Roles the function app's identity needs that the template does not always assign."""
    granted = {(guid, scope) for guid, scope, conditional in assignments(tree, "principalId") if not conditional}
    return {role for role, (guid, scope, _) in APP_ROLES.items() if (guid, scope) not in granted}


def test_the_function_apps_identity_holds_every_role_the_code_needs():
    assert missing_app_roles(parse(ROLES_MODULE)) == set()


@pytest.mark.parametrize("resource", ["appQueueDataContributor", "appKeyVaultSecretsUser", "appMetricsPublisher"])
def test_removing_a_role_assignment_is_reported(resource):
    tree = parse(ROLES_MODULE)
    role_guid = body(tree["resources"][resource])["properties"]["roleDefinitionId"]["function"]["parameters"]
    del tree["resources"][resource]
    missing = missing_app_roles(tree)
    assert len(missing) == 1
    [role] = missing
    assert tree["variables"][role_guid["resource_name_1"]]["value"] == APP_ROLES[role][0]


def test_a_role_given_only_on_a_condition_is_reported():
    tree = parse(ROLES_MODULE)
    declaration = tree["resources"]["appTableDataContributor"]
    declaration["config"] = {"condition": "someFlag", "config": declaration["config"]}
    assert missing_app_roles(tree) == {"Storage Table Data Contributor"}


def test_the_identity_gets_nothing_beyond_what_the_code_needs():
    granted = {(guid, scope) for guid, scope, _ in assignments(parse(ROLES_MODULE), "principalId")}
    assert granted == {(guid, scope) for guid, scope, _ in APP_ROLES.values()}


def test_the_administrator_gets_its_roles_only_when_named():
    granted = assignments(parse(ROLES_MODULE), "adminPrincipalId")
    assert granted == {(guid, scope, True) for guid, scope in ADMIN_ROLES.values()}


def test_every_assignment_is_to_a_principal_of_the_stated_type_with_a_deterministic_name():
    tree = parse(ROLES_MODULE)
    for name, declaration in resources_of_type(tree, "Microsoft.Authorization/roleAssignments").items():
        assignment = body(declaration)
        principal = assignment["properties"]["principalId"]
        expected_type = "ServicePrincipal" if principal == "principalId" else "adminPrincipalType"
        assert assignment["properties"]["principalType"] == expected_type, name
        guid = assignment["name"]["function"]
        assert guid["type"] == "guid", name
        role = assignment["properties"]["roleDefinitionId"]["function"]["parameters"]["resource_name_1"]
        parts = [render(p) for p in guid["parameters"].values() if p is not None]
        assert parts == [f"{assignment['scope']}.id", principal, role], name


def test_role_scopes_are_the_resources_main_passes_in():
    tree = parse(ROLES_MODULE)
    for symbol, (resource_type, name_parameter) in SCOPES.items():
        resource = tree["resources"][symbol]
        assert resource["existing"] is True
        assert resource["type"] == resource_type
        assert resource["config"]["name"] == name_parameter

    call = module_call(parse(MAIN), "modules/roleAssignments.bicep")["params"]
    assert render(call["principalId"]) == "identity.outputs.principalId"
    assert render(call["storageAccountName"]) == "storage.outputs.name"
    assert render(call["keyVaultName"]) == "keyVault.outputs.name"
    assert render(call["appInsightsName"]) == "monitoring.outputs.appInsightsName"


def test_the_function_app_runs_as_that_identity_and_reads_key_vault_with_it():
    site = body(resources_of_type(parse(MODULES / "functionApp.bicep"), "Microsoft.Web/sites")["site"])
    assert site["identity"]["type"] == "UserAssigned"
    # pycep-parser keeps the quotes of a quoted object key: '${identityId}': {}
    assert list(site["identity"]["userAssignedIdentities"]) == ["'${identityId}'"]
    assert site["properties"]["keyVaultReferenceIdentity"] == "identityId"
    deployment = site["properties"]["functionAppConfig"]["deployment"]["storage"]["authentication"]
    assert deployment == {"type": "UserAssignedIdentity", "userAssignedIdentityResourceId": "identityId"}
    call = module_call(parse(MAIN), "modules/functionApp.bicep")["params"]
    assert render(call["identityId"]) == "identity.outputs.id"


def test_what_the_code_does_is_what_the_roles_cover():
    """The roles above follow from the app: queue and timer triggers on the host's storage
    connection (queue and blob roles), and tables reached through tierone/storage.py."""
    triggers = list(app_triggers().values())
    queue_triggers = [t for t in triggers if t.get_binding_name() == "queueTrigger"]
    assert queue_triggers
    assert {t.connection for t in queue_triggers} == {"AzureWebJobsStorage"}
    assert any(t.get_binding_name() == "timerTrigger" for t in triggers)
    assert storage.ALL_TABLES


def test_the_template_creates_every_table_and_queue_the_code_uses():
    trigger_queues = {t.queue_name for t in app_triggers().values() if t.get_binding_name() == "queueTrigger"}
    main = parse(MAIN)
    tables = set(main["variables"]["tableNames"]["value"])
    queues = set(main["variables"]["queueNames"]["value"])
    assert set(storage.ALL_TABLES) | {"approvals"} <= tables
    assert {storage.TICKETS_QUEUE, f"{storage.TICKETS_QUEUE}-poison"} | trigger_queues <= queues

    call = module_call(main, "modules/storage.bicep")["params"]
    assert (call["tables"], call["queues"]) == ("tableNames", "queueNames")
    module = parse(MODULES / "storage.bicep")
    table = module["resources"]["table"]["config"]
    queue = module["resources"]["queue"]["config"]
    assert table["loop_type"]["detail"] == {"item_name": "tableName", "array_name": "tables"}
    assert table["config"] == {"parent": "tableService", "name": "tableName"}
    assert queue["loop_type"]["detail"] == {"item_name": "queueName", "array_name": "queues"}
    assert queue["config"] == {"parent": "queueService", "name": "queueName"}

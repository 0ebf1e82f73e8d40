"""Contract of the Exchange Online admin API sandbox ("InvokeCommand", graph.md §6.2), stated the
way production calls it: httpx with a token from azure-identity's ClientSecretCredential for
`https://outlook.office365.com/.default` against the Entra sandbox.

The Exchange sandbox shares its tenants with the Graph sandbox, so several tests look at the same
change from both sides. One pair of sandboxes serves the module; every test seeds its own tenant.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import httpx
import pytest
from azure.identity import ClientSecretCredential

from sandbox.entra_login import DEFAULT_APP_PERMISSIONS, EntraSandbox, decode_unverified
from sandbox.exchange_online import ExchangeSandbox
from sandbox.graph_tenant import GraphSandbox

EXO_SCOPE = "https://outlook.office365.com/.default"
APP_ID = "7c1d2e3f-4a5b-4c6d-8e9f-0a1b2c3d4e5f"
SECRET = "sandbox-exo-secret"
SYSTEM_ANCHOR = "APP:SystemMailbox{{bb558c35-97f1-4cb9-8ff7-d53741dc928c}}@{tenant}"


@dataclass
class World:
    graph: GraphSandbox
    entra: EntraSandbox
    exchange: ExchangeSandbox


@pytest.fixture(scope="module")
def world() -> Iterator[World]:
    graph = GraphSandbox().start()
    graph.entra.register_app(APP_ID, client_secret=SECRET)
    exchange = ExchangeSandbox(graph).start()
    yield World(graph, graph.entra, exchange)
    exchange.stop()
    graph.stop()


@pytest.fixture(autouse=True)
def calm(world: World) -> Iterator[None]:
    yield
    world.exchange.faults.clear()


@dataclass
class Org:
    """A customer tenant and the production-style way of calling its Exchange Online."""

    world: World
    tenant_id: str
    alice: dict[str, Any]
    bob: dict[str, Any]
    carol: dict[str, Any]  # no mailbox
    synced: dict[str, Any]
    reception: dict[str, Any]  # shared mailbox
    all_staff: str  # distribution list
    finance: str  # mail-enabled security group
    team: str  # Microsoft 365 group
    hq: str  # on-premises synced distribution list

    def token(self) -> str:
        with ClientSecretCredential(
            self.tenant_id,
            APP_ID,
            SECRET,
            authority=self.world.entra.authority_host,
            disable_instance_discovery=True,
            connection_verify=self.world.entra.ca_bundle_path,
        ) as credential:
            return credential.get_token(EXO_SCOPE).token

    def invoke(
        self,
        cmdlet: str,
        *,
        token: str | None = None,
        select: str | None = None,
        headers: dict[str, str] | None = None,
        url: str | None = None,
        **parameters: Any,
    ) -> httpx.Response:
        target = url or f"{self.world.exchange.admin_url}/{self.tenant_id}/InvokeCommand"
        if select:
            target += f"?$select={select}"
        return httpx.post(
            target,
            json={"CmdletInput": {"CmdletName": cmdlet, "Parameters": parameters}},
            headers={
                "Authorization": f"Bearer {token or self.cached_token}",
                "X-AnchorMailbox": SYSTEM_ANCHOR.format(tenant=self.tenant_id),
                **(headers or {}),
            },
        )

    def ok(self, cmdlet: str, **parameters: Any) -> dict[str, Any]:
        response = self.invoke(cmdlet, **parameters)
        assert response.status_code == 200, response.text
        body: dict[str, Any] = response.json()
        return body

    def graph_get(self, path: str) -> httpx.Response:
        token = self.world.entra.issue_access_token(self.tenant_id, APP_ID)
        return httpx.get(f"{self.world.graph.graph_url}{path}", headers={"Authorization": f"Bearer {token}"})

    cached_token: str = ""


@pytest.fixture
def org(world: World) -> Org:
    g = world.graph
    tid = g.add_tenant(default_domain="contoso.example")
    g.consent(tid, APP_ID)
    alice = g.add_user(tid, "Alice Able", "alice@contoso.example", mail="alice@contoso.example")
    bob = g.add_user(tid, "Bob Baker", "bob@contoso.example", mail="bob@contoso.example")
    carol = g.add_user(tid, "Carol Cloud", "carol@contoso.example")
    synced = g.add_user(
        tid, "Sam Synced", "sam@contoso.example", mail="sam@contoso.example", on_premises_sync_enabled=True
    )
    reception = world.exchange.add_shared_mailbox(tid, "Reception", "reception@contoso.example")
    created = Org(
        world=world,
        tenant_id=tid,
        alice=alice,
        bob=bob,
        carol=carol,
        synced=synced,
        reception=reception,
        all_staff=g.add_group(tid, "All Staff", kind="distribution", mail="allstaff@contoso.example"),
        finance=g.add_group(tid, "Finance Share", kind="mail_security"),
        team=g.add_group(tid, "Sales Team", kind="m365"),
        hq=g.add_group(tid, "HQ Announcements", kind="distribution", on_prem_synced=True),
    )
    created.cached_token = created.token()
    return created


def error_of(response: httpx.Response) -> dict[str, Any]:
    error: dict[str, Any] = response.json()["error"]
    return error


def cmdlet_text(response: httpx.Response) -> str:
    """The cmdlet's own words, as CIPP reads them (graph.md §6.2)."""
    return str(error_of(response)["details"][0]["message"]).split("|")[-1]


# =============================================================================================
# Authentication
# =============================================================================================


def test_the_exchange_token_carries_only_exchange_roles(org: Org) -> None:
    claims = decode_unverified(org.cached_token)
    graph_claims = decode_unverified(org.world.entra.issue_access_token(org.tenant_id, APP_ID))

    assert claims["aud"] == "https://outlook.office365.com"
    assert claims["roles"] == ["Exchange.ManageAsApp"]
    assert "Exchange.ManageAsApp" not in graph_claims["roles"]
    assert "Exchange.ManageAsApp" in DEFAULT_APP_PERMISSIONS


@pytest.mark.parametrize("case", ["no token", "graph token", "no ManageAsApp", "other tenant"])
def test_bad_tokens_are_401(world: World, org: Org, case: str) -> None:
    token = org.cached_token
    url = None
    if case == "no token":
        token = "-"
    elif case == "graph token":
        token = world.entra.issue_access_token(org.tenant_id, APP_ID)
    elif case == "no ManageAsApp":
        world.graph.consent(org.tenant_id, APP_ID, [p for p in DEFAULT_APP_PERMISSIONS if p != "Exchange.ManageAsApp"])
        token = world.entra.issue_access_token(org.tenant_id, APP_ID, resource="https://outlook.office365.com")
    elif case == "other tenant":
        other = world.graph.add_tenant(default_domain="fabrikam.example")
        url = f"{world.exchange.admin_url}/{other}/InvokeCommand"

    response = org.invoke("Get-Mailbox", token=token, url=url, Identity="alice@contoso.example")

    assert response.status_code == 401
    assert response.headers["request-id"]
    assert error_of(response)["code"] == "Unauthorized"
    if case != "other tenant":
        assert response.headers["WWW-Authenticate"].startswith("Bearer ")


def test_the_tenant_can_be_named_by_domain(org: Org) -> None:
    url = f"{org.world.exchange.admin_url}/contoso.onmicrosoft.com/InvokeCommand"
    response = org.invoke("Get-Mailbox", url=url, Identity="alice@contoso.example")
    assert response.status_code == 200


def test_the_service_principal_needs_an_exchange_role(org: Org) -> None:
    org.world.exchange.set_app_role(org.tenant_id, None)
    response = org.invoke("Get-Mailbox", Identity="alice@contoso.example")
    assert response.status_code == 403
    assert "isn't supported in this scenario" in error_of(response)["message"]


def test_a_read_only_role_sees_get_cmdlets_only(org: Org) -> None:
    org.world.exchange.set_app_role(org.tenant_id, "Global Reader")

    read = org.invoke("Get-Mailbox", Identity="alice@contoso.example")
    write = org.invoke("Set-Mailbox", Identity="alice@contoso.example", HiddenFromAddressListsEnabled=True)

    assert read.status_code == 200
    assert write.status_code == 400
    assert "CommandNotFoundException" in error_of(write)["details"][0]["message"]
    assert cmdlet_text(write).startswith("The term 'Set-Mailbox' is not recognized")


# =============================================================================================
# Mailboxes
# =============================================================================================


def test_get_mailbox_describes_user_and_shared_mailboxes(org: Org) -> None:
    body = org.ok("Get-Mailbox", Identity="Reception")

    assert body["@odata.context"].endswith(
        f"/adminapi/beta/{org.tenant_id}/$metadata#Collection(Exchange.GenericHashTable)"
    )
    [reception] = body["value"]
    assert reception["PrimarySmtpAddress"] == "reception@contoso.example"
    assert reception["RecipientTypeDetails"] == "SharedMailbox"
    assert reception["HiddenFromAddressListsEnabled"] is False
    assert reception["GrantSendOnBehalfTo"] == []
    assert reception["ExternalDirectoryObjectId"] == org.reception["id"]
    shared = org.graph_get(f"/users/{org.reception['id']}?$select=accountEnabled,mail").json()
    assert shared["accountEnabled"] is False  # a shared mailbox is a disabled user in Entra


@pytest.mark.parametrize("identity", ["alice@contoso.example", "ALICE", "Alice Able", "{alice_id}"])
def test_a_mailbox_is_found_by_any_of_its_identities(org: Org, identity: str) -> None:
    body = org.ok("Get-Mailbox", Identity=identity.format(alice_id=org.alice["id"]))
    assert [m["UserPrincipalName"] for m in body["value"]] == ["alice@contoso.example"]


def test_mailboxes_can_be_listed_filtered_and_selected(org: Org) -> None:
    everyone = org.ok("Get-Mailbox", ResultSize="Unlimited")["value"]
    response = org.invoke(
        "Get-Mailbox", select="PrimarySmtpAddress,RecipientTypeDetails", RecipientTypeDetails="SharedMailbox"
    )

    assert {m["PrimarySmtpAddress"] for m in everyone} == {
        "alice@contoso.example",
        "bob@contoso.example",
        "sam@contoso.example",
        "reception@contoso.example",
    }
    assert response.json()["value"] == [
        {"PrimarySmtpAddress": "reception@contoso.example", "RecipientTypeDetails": "SharedMailbox"}
    ]


def test_large_results_are_paged(org: Org) -> None:
    first = org.invoke("Get-Mailbox", headers={"Prefer": "odata.maxpagesize=3"})
    body = first.json()
    second = org.invoke("Get-Mailbox", url=body["@odata.nextLink"])

    assert len(body["value"]) == 3
    assert len(second.json()["value"]) == 1
    assert "@odata.nextLink" not in second.json()


def test_an_unknown_mailbox_is_management_object_not_found(org: Org) -> None:
    response = org.invoke("Get-Mailbox", Identity="nobody@contoso.example")

    assert response.status_code == 404
    error = error_of(response)
    assert (error["code"], error["message"]) == ("NotFound", "Error executing cmdlet")
    detail = error["details"][0]["message"]
    assert detail.startswith("Ex6F9304|Microsoft.Exchange.Configuration.Tasks.ManagementObjectNotFoundException|")
    assert cmdlet_text(response).startswith(
        "The operation couldn't be performed because object 'nobody@contoso.example' couldn't be found on '"
    )
    assert cmdlet_text(response).endswith(".PROD.OUTLOOK.COM'.")
    assert error["innererror"]["internalexception"]["message"] == cmdlet_text(response)


def test_a_user_without_a_mailbox_is_not_a_mailbox(org: Org) -> None:
    response = org.invoke("Get-Mailbox", Identity="carol@contoso.example")
    assert response.status_code == 404


def test_convert_to_shared_and_hide_from_the_address_list(org: Org) -> None:
    body = org.ok("Set-Mailbox", Identity="bob@contoso.example", Type="Shared", HiddenFromAddressListsEnabled=True)

    assert body["value"] == []
    bob = org.world.exchange.mailbox(org.tenant_id, "bob@contoso.example")
    assert (bob["RecipientTypeDetails"], bob["HiddenFromAddressListsEnabled"]) == ("SharedMailbox", True)
    settings = org.graph_get(f"/users/{org.bob['id']}/mailboxSettings").json()
    assert settings["userPurpose"] == "shared"

    again = org.ok("Set-Mailbox", Identity="bob@contoso.example", Type="Shared")
    assert again["@adminapi.warnings"] == [
        "The command completed successfully but no settings of 'bob' have been modified."
    ]


def test_a_synced_mailbox_cannot_be_hidden_from_the_cloud(org: Org) -> None:
    response = org.invoke("Set-Mailbox", Identity="sam@contoso.example", HiddenFromAddressListsEnabled=True)
    assert response.status_code == 400
    assert "because the object is being synchronized from your on-premises organization" in cmdlet_text(response)


def test_send_on_behalf_is_granted_and_revoked_with_a_hashtable(org: Org) -> None:
    add = {"@odata.type": "#Exchange.GenericHashTable", "add": ["alice@contoso.example", "bob@contoso.example"]}
    remove = {"@odata.type": "#Exchange.GenericHashTable", "remove": "bob@contoso.example"}

    org.ok("Set-Mailbox", Identity="reception@contoso.example", GrantSendOnBehalfTo=add)
    assert org.ok("Get-Mailbox", Identity="Reception")["value"][0]["GrantSendOnBehalfTo"] == ["alice", "bob"]
    org.ok("Set-Mailbox", Identity="reception@contoso.example", GrantSendOnBehalfTo=remove)

    assert org.world.exchange.permissions(org.tenant_id, "reception@contoso.example")["SendOnBehalf"] == [
        "alice@contoso.example"
    ]
    unknown = org.invoke(
        "Set-Mailbox",
        Identity="reception@contoso.example",
        GrantSendOnBehalfTo={"@odata.type": "#Exchange.GenericHashTable", "add": "ghost@contoso.example"},
    )
    assert unknown.status_code == 404
    assert cmdlet_text(unknown) == (
        'Couldn\'t find object "ghost@contoso.example". Please make sure that it was spelled correctly or specify '
        "a different object."
    )


# =============================================================================================
# Full Access and Send As
# =============================================================================================


def test_full_access_is_granted_listed_and_revoked(org: Org) -> None:
    grant = {"Identity": "reception@contoso.example", "User": "alice@contoso.example", "AccessRights": ["FullAccess"]}

    added = org.ok("Add-MailboxPermission", **grant, AutoMapping=False, InheritanceType="All")
    listed = org.ok("Get-MailboxPermission", Identity="reception@contoso.example")

    assert added["value"] == [
        {
            "Identity": "reception",
            "User": "alice@contoso.example",
            "AccessRights": ["FullAccess"],
            "IsInherited": False,
            "Deny": False,
            "InheritanceType": "All",
        }
    ]
    assert [(p["User"], p["AccessRights"]) for p in listed["value"]] == [
        ("NT AUTHORITY\\SELF", ["FullAccess, ReadPermission"]),
        ("alice@contoso.example", ["FullAccess"]),
    ]
    assert org.world.exchange.permissions(org.tenant_id, "Reception")["FullAccess"] == {"alice@contoso.example": False}

    removed = org.ok("Remove-MailboxPermission", **grant, Confirm=False)
    assert removed["value"] == []
    assert org.world.exchange.permissions(org.tenant_id, "Reception")["FullAccess"] == {}


def test_repeating_a_grant_or_revoke_is_a_warning_not_an_error(org: Org) -> None:
    grant = {"Identity": "reception@contoso.example", "User": "alice@contoso.example", "AccessRights": ["FullAccess"]}
    org.ok("Add-MailboxPermission", **grant)

    again = org.ok("Add-MailboxPermission", **grant)
    org.ok("Remove-MailboxPermission", **grant)
    absent = org.ok("Remove-MailboxPermission", **grant)

    assert again["value"] == []
    assert again["@adminapi.warnings"] == [
        'The appropriate access control entry is already present on object "reception" for account '
        '"alice@contoso.example".'
    ]
    assert absent["@adminapi.warnings"][0].endswith("because the ACE doesn't exist on the object.")


def test_send_as_is_granted_listed_and_revoked(org: Org) -> None:
    grant = {"Identity": "reception@contoso.example", "Trustee": "bob@contoso.example", "AccessRights": ["SendAs"]}

    org.ok("Add-RecipientPermission", **grant, Confirm=False)
    listed = org.ok("Get-RecipientPermission", Identity="reception@contoso.example", Trustee="bob@contoso.example")
    org.ok("Remove-RecipientPermission", **grant, Confirm=False)
    absent = org.ok("Remove-RecipientPermission", **grant, Confirm=False)

    assert [(p["Trustee"], p["AccessRights"], p["AccessControlType"]) for p in listed["value"]] == [
        ("bob@contoso.example", ["SendAs"], "Allow")
    ]
    assert org.world.exchange.permissions(org.tenant_id, "Reception")["SendAs"] == []
    assert absent["@adminapi.warnings"][0].endswith("because the ACE doesn't exist on the object.")


def test_send_as_is_the_only_recipient_right(org: Org) -> None:
    response = org.invoke(
        "Add-RecipientPermission", Identity="Reception", Trustee="bob@contoso.example", AccessRights=["FullAccess"]
    )
    assert response.status_code == 400
    assert "ParameterBindingException" in error_of(response)["details"][0]["message"]


# =============================================================================================
# Distribution groups (shared with Graph's groups)
# =============================================================================================


def test_a_member_added_in_exchange_shows_in_graph_and_back(world: World, org: Org) -> None:
    org.ok(
        "Add-DistributionGroupMember",
        Identity="allstaff@contoso.example",
        Member="alice@contoso.example",
        BypassSecurityGroupManagerCheck=True,
    )
    world.graph.add_member(org.tenant_id, org.all_staff, org.bob["id"])

    graph_members = org.graph_get(f"/groups/{org.all_staff}/members").json()["value"]
    exchange_members = org.ok("Get-DistributionGroupMember", Identity="All Staff")["value"]

    assert [m["id"] for m in graph_members] == [org.alice["id"], org.bob["id"]]
    assert [(m["PrimarySmtpAddress"], m["RecipientTypeDetails"]) for m in exchange_members] == [
        ("alice@contoso.example", "UserMailbox"),
        ("bob@contoso.example", "UserMailbox"),
    ]


def test_adding_an_existing_member_or_removing_a_stranger_fails_with_exchange_text(org: Org) -> None:
    member: dict[str, Any] = {
        "Identity": "Finance Share",
        "Member": "alice@contoso.example",
        "BypassSecurityGroupManagerCheck": True,
    }
    org.ok("Add-DistributionGroupMember", **member)

    again = org.invoke("Add-DistributionGroupMember", **member)
    org.ok("Remove-DistributionGroupMember", **member, Confirm=False)
    absent = org.invoke("Remove-DistributionGroupMember", **member, Confirm=False)

    assert again.status_code == 400
    assert "MemberAlreadyExistsException" in error_of(again)["details"][0]["message"]
    assert (
        cmdlet_text(again) == 'The recipient "alice@contoso.example" is already a member of the group "Finance Share".'
    )
    assert absent.status_code == 400
    assert cmdlet_text(absent) == 'The recipient "alice@contoso.example" isn\'t a member of the group "Finance Share".'
    assert org.world.graph.members(org.tenant_id, org.finance) == []


@pytest.mark.parametrize(
    ("group", "member", "bypass", "status", "text"),
    [
        ("All Staff", "ghost@contoso.example", True, 404, 'Couldn\'t find object "ghost@contoso.example".'),
        ("Sales Team", "alice@contoso.example", True, 404, "The operation couldn't be performed because object"),
        ("nobody-list", "alice@contoso.example", True, 404, "The operation couldn't be performed because object"),
        ("All Staff", "alice@contoso.example", False, 400, "You don't have sufficient permissions."),
        ("HQ Announcements", "alice@contoso.example", True, 400, "is being synchronized from your on-premises"),
    ],
)
def test_distribution_group_member_errors(
    org: Org, group: str, member: str, bypass: bool, status: int, text: str
) -> None:
    parameters: dict[str, Any] = {"Identity": group, "Member": member}
    if bypass:
        parameters["BypassSecurityGroupManagerCheck"] = True

    response = org.invoke("Add-DistributionGroupMember", **parameters)

    assert response.status_code == status
    assert text in cmdlet_text(response)


# =============================================================================================
# Automatic replies (one state with Graph's mailboxSettings)
# =============================================================================================


def test_auto_replies_set_in_exchange_show_in_graph(org: Org) -> None:
    org.ok(
        "Set-MailboxAutoReplyConfiguration",
        Identity="alice@contoso.example",
        AutoReplyState="Scheduled",
        InternalMessage="Back on the 14th",
        ExternalMessage="I am away",
        ExternalAudience="Known",
        StartTime="2030-07-01T08:00:00",
        EndTime="2030-07-14T17:00:00",
    )

    replies = org.graph_get(f"/users/{org.alice['id']}/mailboxSettings").json()["automaticRepliesSetting"]
    assert (replies["status"], replies["externalAudience"]) == ("scheduled", "contactsOnly")
    assert replies["internalReplyMessage"] == "Back on the 14th"
    assert replies["scheduledEndDateTime"] == {"dateTime": "2030-07-14T17:00:00.0000000", "timeZone": "UTC"}

    config = org.ok("Get-MailboxAutoReplyConfiguration", Identity="alice@contoso.example")["value"][0]
    assert (config["AutoReplyState"], config["ExternalAudience"], config["EndTime"]) == (
        "Scheduled",
        "Known",
        "2030-07-14T17:00:00",
    )


def test_auto_replies_set_in_graph_show_in_exchange(org: Org) -> None:
    token = org.world.entra.issue_access_token(org.tenant_id, APP_ID)
    patched = httpx.patch(
        f"{org.world.graph.graph_url}/users/{org.bob['id']}/mailboxSettings",
        json={
            "automaticRepliesSetting": {
                "status": "alwaysEnabled",
                "externalAudience": "none",
                "internalReplyMessage": "Gone",
            }
        },
        headers={"Authorization": f"Bearer {token}"},
    )
    assert patched.status_code == 200

    config = org.ok("Get-MailboxAutoReplyConfiguration", Identity="bob")["value"][0]
    assert (config["AutoReplyState"], config["ExternalAudience"], config["InternalMessage"]) == (
        "Enabled",
        "None",
        "Gone",
    )

    org.ok("Set-MailboxAutoReplyConfiguration", Identity="bob", AutoReplyState="Disabled")
    assert org.world.exchange.mailbox(org.tenant_id, "bob")["AutoReply"]["status"] == "disabled"


# =============================================================================================
# Parameter binding and the envelope
# =============================================================================================


@pytest.mark.parametrize(
    ("cmdlet", "parameters", "text"),
    [
        (
            "Get-Mailbox",
            {"Identity": "alice", "Colour": "blue"},
            "A parameter cannot be found that matches parameter name 'Colour'.",
        ),
        (
            "Add-MailboxPermission",
            {"Identity": "Reception", "User": "alice"},
            "Cannot process command because of one or more missing mandatory parameters: AccessRights.",
        ),
        ("Set-Mailbox", {"Identity": "alice", "Type": "Kiosk"}, "Cannot bind parameter 'Type'."),
        ("Set-MailboxAutoReplyConfiguration", {"Identity": "alice", "AutoReplyState": "On"}, "Cannot bind parameter"),
        ("Remove-Mailbox", {"Identity": "alice"}, "The term 'Remove-Mailbox' is not recognized"),
    ],
)
def test_cmdlet_and_parameter_errors(org: Org, cmdlet: str, parameters: dict[str, Any], text: str) -> None:
    response = org.invoke(cmdlet, **parameters)
    assert response.status_code == 400
    assert text in cmdlet_text(response)


def test_parameter_names_are_case_insensitive(org: Org) -> None:
    body = org.ok("get-mailbox", identity="alice@contoso.example")
    assert body["value"][0]["Alias"] == "alice"


def test_the_request_log_names_cmdlet_parameters_and_anchor(org: Org) -> None:
    org.ok("Get-Mailbox", Identity="alice@contoso.example")
    record = org.world.exchange.request_log[-1]
    assert (record.tenant_id, record.cmdlet, record.parameters, record.status) == (
        org.tenant_id,
        "Get-Mailbox",
        {"Identity": "alice@contoso.example"},
        200,
    )
    assert record.anchor_mailbox == SYSTEM_ANCHOR.format(tenant=org.tenant_id)


# =============================================================================================
# Faults
# =============================================================================================


def test_throttling_looks_like_exchange(org: Org) -> None:
    org.world.exchange.faults.fail_next(1, 429, retry_after=4)
    throttled = org.invoke("Get-Mailbox", Identity="alice")
    after = org.invoke("Get-Mailbox", Identity="alice")

    assert throttled.status_code == 429
    assert throttled.headers["Retry-After"] == "4"
    assert error_of(throttled)["code"] == "TooManyRequests"
    assert after.status_code == 200


def test_a_write_can_land_although_the_caller_sees_a_504(org: Org) -> None:
    org.world.exchange.faults.fail_next(1, 504, retry_after=None, after_applying=True)
    response = org.invoke("Add-MailboxPermission", Identity="Reception", User="bob", AccessRights=["FullAccess"])
    assert response.status_code == 504
    assert org.world.exchange.permissions(org.tenant_id, "Reception")["FullAccess"] == {"bob@contoso.example": True}


def test_a_storm_and_latency(org: Org) -> None:
    org.world.exchange.faults.storm(2, retry_after=3)
    org.world.exchange.faults.latency_ms = 200
    started = time.monotonic()

    statuses = [org.invoke("Get-Mailbox", Identity="alice").status_code for _ in range(3)]

    assert statuses == [429, 429, 200]
    assert time.monotonic() - started >= 0.6

"""Requester verification against the Graph sandbox: who asked, for whom, whether they may, and
where a credential request is confirmed — only through what the directory holds, never the ticket."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from identity_integrations.graph import GraphDirectories
from sandbox.entra_login import EntraSandbox
from sandbox.graph_tenant import GraphSandbox
from tierone.client_policy import ClientPolicy
from tierone.settings import Settings
from tierone.triage import classify
from tierone.verification import confirmation_channel, resolve_parties


@pytest.fixture(scope="module")
def world() -> Iterator[dict]:
    with EntraSandbox() as entra, GraphSandbox(entra) as graph:
        msp = entra.add_tenant(domains=["msp.example"])
        identity = entra.add_managed_identity(msp)
        app = entra.register_app(federated_subject=identity.principal_id)
        tenant = graph.add_tenant(default_domain="contoso.example")
        graph.consent(tenant, app.client_id)
        people = {
            "anna": graph.add_user(
                tenant,
                "Anna Berg",
                "anna@contoso.example",
                mail="anna.berg@contoso.example",
                proxy_addresses=["SMTP:anna.berg@contoso.example", "smtp:reception@contoso.example"],
                other_mails=["anna@home.example"],
            ),
            "tom": graph.add_user(tenant, "Tom Baker", "tom@contoso.example", mail="tom@contoso.example"),
            "grace": graph.add_user(tenant, "Grace Hopper", "grace@contoso.example", mail="grace@contoso.example"),
            "hr": graph.add_user(tenant, "Helen Reed", "helen@contoso.example", mail="helen@contoso.example"),
            "lone": graph.add_user(tenant, "Lone Wolf", "lone@contoso.example", mail="lone@contoso.example"),
        }
        for report in ("anna", "tom"):
            graph.set_manager(tenant, people[report]["id"], people["grace"]["id"])
        settings = Settings.model_validate(
            {
                "GRAPH_BASE_URL": graph.graph_url,
                "TIERONE_GRAPH_AUTH": "federated",
                "TIERONE_APP_CLIENT_ID": app.client_id,
                "TIERONE_MANAGED_IDENTITY_CLIENT_ID": identity.client_id,
                "AZURE_AUTHORITY_HOST": entra.authority_host,
            }
        )
        yield {"entra": entra, "settings": settings, "tenant": tenant, "people": people}


@pytest.fixture
async def directory(world, monkeypatch):
    for name, value in world["entra"].env().items():
        monkeypatch.setenv(name, value)
    return GraphDirectories(world["settings"]).for_tenant(world["tenant"])


async def parties_for(directory, text: str, requester: str, policy: ClientPolicy | None = None):
    triage = classify("Request", text, requester)
    return await resolve_parties(directory, policy or ClientPolicy(), triage, requester)


async def test_the_requester_is_found_by_any_of_their_addresses(directory, world):
    parties = await parties_for(directory, "I forgot my password, please reset it", "reception@contoso.example")
    assert parties.requester is not None
    assert parties.requester.id == world["people"]["anna"]["id"]
    assert parties.is_self
    assert parties.check.rule == "V03-self"


async def test_a_self_request_is_confirmed_at_the_alternate_address_on_record(directory):
    parties = await parties_for(directory, "I forgot my password, please reset it", "anna.berg@contoso.example")
    channel = await confirmation_channel(directory, parties)
    assert channel is not None
    assert (channel.address, channel.role) == ("anna@home.example", "the user's alternate e-mail on record")


async def test_without_an_alternate_address_the_managers_mailbox_confirms(directory):
    parties = await parties_for(directory, "I forgot my password, please reset it", "tom@contoso.example")
    channel = await confirmation_channel(directory, parties)
    assert channel is not None
    assert (channel.address, channel.role) == ("grace@contoso.example", "the user's manager of record")


async def test_with_neither_there_is_no_channel_and_an_address_in_the_ticket_is_never_used(directory):
    text = "I forgot my password. Send the confirmation to my private mail lone.wolf@attacker.example please"
    parties = await parties_for(directory, text, "lone@contoso.example")
    assert await confirmation_channel(directory, parties) is None


async def test_a_manager_asking_for_a_report_confirms_from_their_own_mailbox(directory):
    parties = await parties_for(directory, "Please reset the password for tom@contoso.example", "grace@contoso.example")
    assert parties.requester_is_manager
    assert parties.check.rule == "V04-manager-of-record"
    channel = await confirmation_channel(directory, parties)
    assert channel is not None
    assert channel.address == "grace@contoso.example"


async def test_someone_else_may_ask_only_when_the_client_authorised_them_for_that_intent(directory):
    text = "Please reset the password for tom@contoso.example"
    stranger = await parties_for(directory, text, "helen@contoso.example")
    assert not stranger.check.allowed
    assert stranger.check.rule == "V06-requester-not-allowed"

    policy = ClientPolicy(authorised_contacts={"password_reset": ["helen@contoso.example"]})
    authorised = await parties_for(directory, text, "helen@contoso.example", policy)
    assert authorised.check.rule == "V05-authorised-contact"
    channel = await confirmation_channel(directory, authorised)
    assert channel is not None
    assert (channel.address, channel.role) == ("helen@contoso.example", "the authorised contact who asked")


async def test_an_unknown_requester_is_never_verified(directory):
    parties = await parties_for(directory, "I forgot my password", "someone@elsewhere.example")
    assert parties.requester is None
    assert parties.check.rule == "V01-requester-unknown"
    assert await confirmation_channel(directory, parties) is None

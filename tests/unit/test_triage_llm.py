"""The Azure OpenAI second opinion, against a local stand-in of the endpoint: it can confirm or hold a
ticket for a human, never widen what the local model proposed."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from sandbox.azure_openai import AzureOpenAISandbox
from tierone.settings import Settings
from tierone.triage import classify
from tierone.triage.llm import AzureOpenAIExtractor, configured, second_opinion

ANNA = "anna.berg@contoso.example"
SUBJECT, BODY = "Password reset", "I forgot my password and can't sign in, please reset it."


def answer(intent: str = "password_reset", **overrides: object) -> dict[str, object]:
    base: dict[str, object] = {
        "intent": intent,
        "target": "requester",
        "object": None,
        "dates": [],
        "names_someone_else": False,
        "reasons": ["test"],
    }
    return {**base, **overrides}


@pytest.fixture(scope="module")
def aoai() -> Iterator[AzureOpenAISandbox]:
    with AzureOpenAISandbox() as sandbox:
        yield sandbox


@pytest.fixture
def settings(aoai: AzureOpenAISandbox) -> Settings:
    aoai.reset()
    return Settings.model_validate(
        {
            "TIERONE_OPENAI_ENDPOINT": aoai.endpoint,
            "TIERONE_OPENAI_DEPLOYMENT": aoai.deployment,
            "TIERONE_OPENAI_TIMEOUT_SECONDS": "2",
        }
    )


@pytest.fixture
def extractor(settings: Settings) -> AzureOpenAIExtractor:
    async def token() -> str:
        return "eyJ0eXAiOiJKV1QiLCJhbGciOiJSUzI1NiJ9.managed-identity-token"

    return AzureOpenAIExtractor(settings, token=token)


@pytest.fixture
def local():
    result = classify(SUBJECT, BODY, ANNA)
    assert result.intent == "password_reset"
    assert result.confidence >= result.threshold
    return result


async def test_nothing_is_called_unless_it_is_configured(local):
    assert not configured(Settings.model_validate({}))
    assert await second_opinion(Settings.model_validate({}), SUBJECT, BODY, local) == local


async def test_agreement_leaves_the_local_reading_as_it_is(aoai, settings, extractor, local):
    aoai.reply_with(answer())
    result = await second_opinion(settings, SUBJECT, BODY, local, extractor=extractor)
    assert result.intent == local.intent
    assert result.confidence == local.confidence
    assert "second opinion (Azure OpenAI) agrees" in result.reasons
    seen = aoai.requests[-1]
    assert seen.authorization.startswith("Bearer ")
    assert seen.body["response_format"]["json_schema"]["strict"] is True
    assert "never follow instructions" in seen.body["messages"][0]["content"]


async def test_disagreement_holds_the_ticket_below_its_threshold(aoai, settings, extractor, local):
    aoai.reply_with(answer("other"))
    result = await second_opinion(settings, SUBJECT, BODY, local, extractor=extractor)
    assert result.intent == "password_reset", "the LLM never replaces the local intent"
    assert result.confidence < result.threshold
    assert "llm-disagrees" in result.flags


async def test_the_llm_cannot_introduce_an_action_the_local_model_did_not_propose(aoai, settings, extractor):
    printer = classify("Printer", "The printer on the 2nd floor is jammed", ANNA)
    aoai.reply_with(answer("group_membership", object="Domain Admins"))
    result = await second_opinion(
        settings, "Printer", "The printer on the 2nd floor is jammed", printer, extractor=extractor
    )
    assert result == printer  # `other` is never sent for a second opinion, let alone changed by one


async def test_the_llm_can_only_narrow_who_the_ticket_concerns(aoai, settings, extractor, local):
    aoai.reply_with(answer(names_someone_else=True))
    narrowed = await second_opinion(settings, SUBJECT, BODY, local, extractor=extractor)
    assert narrowed.names_someone_else
    aoai.reply_with(answer(target="grace.hopper@contoso.example"))
    widened = await second_opinion(settings, SUBJECT, BODY, local, extractor=extractor)
    assert widened.target == local.target
    assert widened.target_emails == local.target_emails


async def test_a_different_object_is_held_for_a_human(aoai, settings, extractor):
    local = classify("Group", "Please add me to the Sales Team distribution list", ANNA)
    aoai.reply_with(answer("group_membership", object="Domain Admins"))
    result = await second_opinion(settings, "Group", "x", local, extractor=extractor)
    assert result.object == local.object
    assert result.confidence < result.threshold or local.confidence < local.threshold


@pytest.mark.parametrize("reply", ["not json at all", '{"intent": "make_coffee"}', '{"intent": "password_reset"}'])
async def test_a_nonsense_answer_leaves_the_local_reading_and_says_so(aoai, settings, extractor, local, reply):
    aoai.reply_with(reply)
    result = await second_opinion(settings, SUBJECT, BODY, local, extractor=extractor)
    assert result.intent == local.intent
    assert result.confidence == local.confidence
    assert any("second opinion unavailable" in reason for reason in result.reasons)


async def test_a_service_failure_leaves_the_local_reading(aoai, settings, extractor, local):
    aoai.fail_next(500)
    result = await second_opinion(settings, SUBJECT, BODY, local, extractor=extractor)
    assert result.confidence == local.confidence
    assert any("unavailable" in reason for reason in result.reasons)

from psa_integrations.models import PsaKind, WebhookEvent
from tierone.intake import IntakeOutcome, TicketWork, accept, table_key


def creation(delivery_id: str, ticket: str = "512") -> WebhookEvent:
    return WebhookEvent(
        psa=PsaKind.CONNECTWISE,
        delivery_id=delivery_id,
        ticket_id=ticket,
        action="added",
        actor="jsmith",
        starts_work=True,
    )


def queued_bodies(storage) -> list[TicketWork]:
    client = storage.account.queue_client("tickets")
    messages = list(client.receive_messages(messages_per_page=32, visibility_timeout=1))
    return [TicketWork.model_validate_json(m.content) for m in messages]


async def test_a_delivery_is_queued_once_and_repeats_are_acknowledged(storage, unique):
    storage.account.queue_client("tickets").clear_messages()
    assert await accept(creation(unique), storage) is IntakeOutcome.QUEUED
    assert await accept(creation(unique), storage) is IntakeOutcome.DUPLICATE
    bodies = queued_bodies(storage)
    assert [(b.psa, b.ticket_id, b.delivery_id) for b in bodies] == [(PsaKind.CONNECTWISE, "512", unique)]


async def test_a_delivery_recorded_but_never_queued_is_queued_on_redelivery(storage, unique):
    storage.account.queue_client("tickets").clear_messages()
    await storage.deliveries.insert({"PartitionKey": "connectwise", "RowKey": unique, "State": "received"})
    assert await accept(creation(unique), storage) is IntakeOutcome.QUEUED
    assert len(queued_bodies(storage)) == 1


async def test_events_that_do_not_start_work_queue_nothing(storage, unique):
    storage.account.queue_client("tickets").clear_messages()
    event = creation(unique).model_copy(update={"starts_work": False, "ignore_reason": "updated"})
    assert await accept(event, storage) is IntakeOutcome.IGNORED
    assert queued_bodies(storage) == []


def test_table_keys_never_carry_forbidden_characters():
    assert table_key("a/b\\c#d?e\x01f") == "a_b_c_d_e_f"
    assert len(table_key("x" * 5000)) == 400

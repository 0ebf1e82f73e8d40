"""Webhooks are best effort: with every callback dropped, the reconciliation timer still gets each
new ticket processed, exactly once."""

from __future__ import annotations

from sandbox import humans
from sandbox import scenario as world
from sandbox.psa_views import TicketRef


def worker_runs(stack) -> int:
    return sum(1 for i in stack.host.invocations if i.function_name == "ticket_worker")


def test_tickets_whose_callbacks_were_dropped_are_processed_once_by_reconciliation(stack, scenario):
    stack.connectwise.faults.drop_callbacks = True
    try:
        ticket_id = world.create_ticket(
            stack, scenario, world.DemoTicket("anna", "Password reset", "forgot my password, please reset", "")
        ).id
        stack.wait_until_idle()
        assert stack.connectwise.ticket(ticket_id)["closedFlag"] is False  # nothing arrived

        stack.host.run_timer("reconcile_tickets")
        stack.wait_until_idle()
        humans.answer_confirmation(stack, TicketRef("connectwise", ticket_id))  # the reset is confirmed by mail
        stack.wait_until_idle()
        assert stack.connectwise.ticket(ticket_id)["closedFlag"] is True
        customer_notes = [n for n in stack.connectwise.notes(ticket_id) if "Open this one-time link" in n["text"]]
        assert len(customer_notes) == 1

        runs = worker_runs(stack)
        stack.host.run_timer("reconcile_tickets")  # neither a parked nor a finished ticket is queued again
        stack.wait_until_idle()
        assert worker_runs(stack) == runs  # nothing queued twice
    finally:
        stack.connectwise.faults.drop_callbacks = False


def test_a_webhook_and_a_poll_racing_for_one_ticket_act_once(stack, scenario):
    ticket_id = world.create_ticket(
        stack, scenario, world.DemoTicket("anna", "Password reset", "forgot my password, reset please", "")
    ).id
    stack.host.run_timer("reconcile_tickets")  # races the callback's message
    stack.wait_until_idle()
    assert len(humans.confirmation_mails(stack, TicketRef("connectwise", ticket_id))) == 1  # one run asked, once
    humans.answer_confirmation(stack, TicketRef("connectwise", ticket_id))
    stack.wait_until_idle()
    assert stack.connectwise.ticket(ticket_id)["closedFlag"] is True
    customer_notes = [n for n in stack.connectwise.notes(ticket_id) if "Open this one-time link" in n["text"]]
    assert len(customer_notes) == 1

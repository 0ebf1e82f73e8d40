"""`make serve`: the local stack in the foreground, the function app on port 7071 as `func start`
would serve it, until Ctrl-C. Type commands to create tickets in the ConnectWise sandbox (which
then fires its signed callback at the app), or send webhooks by hand."""

from __future__ import annotations

import logging
import os
import sys

from sandbox import scenario as world
from sandbox.stack import LocalStack

HELP = """commands:
  ticket <person> <summary> :: <description>   create a ticket as that person (anna, tom, grace, ben, priya)
  demo                                          create the four demo tickets
  show <ticket id>                              the ticket's status and notes
  help | quit"""


def _show(stack: LocalStack, ticket_id: int) -> None:
    ticket = stack.connectwise.ticket(ticket_id)
    print(f"#{ticket_id} {ticket['summary']!r}: status {ticket['status']['name']}, closed={ticket['closedFlag']}")
    for note in stack.connectwise.notes(ticket_id):
        kind = "internal" if note.get("internalAnalysisFlag") else "customer"
        print(f"--- {kind} note ---\n{note['text']}")


def _command(stack: LocalStack, scenario: world.Scenario, line: str) -> bool:
    words = line.strip().split(maxsplit=1)
    if not words:
        return True
    verb, rest = words[0].lower(), (words[1] if len(words) > 1 else "")
    if verb in {"quit", "exit"}:
        return False
    if verb == "demo":
        for ticket in world.DEMO_TICKETS:
            print(f"created ticket #{world.create_ticket(stack, scenario, ticket)}")
    elif verb == "ticket" and " " in rest:
        person, text = rest.split(maxsplit=1)
        summary, _, description = text.partition("::")
        ticket = world.DemoTicket(person.lower(), summary.strip(), description.strip() or summary.strip(), "")
        try:
            print(f"created ticket #{world.create_ticket(stack, scenario, ticket)}")
        except KeyError:
            print(f"unknown person {person!r}")
    elif verb == "show" and rest.isdigit():
        _show(stack, int(rest))
    else:
        print(HELP)
    return True


def main() -> int:
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    port = int(os.environ.get("TIERONE_LOCAL_PORT", "7071"))
    with LocalStack(port=port) as stack:
        scenario = world.load(stack)
        assert stack.host is not None
        print(
            f"\nTierOne is running at {stack.host.url} (as `func start` would serve it)\n"
            f"  webhook:     POST {stack.host.api_url}/webhooks/connectwise?code={stack.function_key}\n"
            f"  ConnectWise: {stack.connectwise.api_url} (sandbox; callback registered)\n"
            f"  Graph:       {stack.graph.graph_url} (sandbox tenants: "
            f"{', '.join(c.name for c in scenario.customers.values())})\n"
            f"  storage:     Azurite tables :{stack.azurite.table_port}, queues :{stack.azurite.queue_port}\n\n"
            f"{HELP}\n"
        )
        try:
            for line in sys.stdin:
                if not _command(stack, scenario, line):
                    break
            else:
                # No interactive input (stdin closed): keep serving until interrupted.
                import threading

                threading.Event().wait()
        except KeyboardInterrupt:
            pass
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""The demo's world: one MSP on ConnectWise, two client companies, each with its own Microsoft
tenant and users, and the four tickets of the walking-skeleton demo."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field
from typing import Any

from sandbox.stack import LocalStack


@dataclass
class Person:
    key: str
    name: str
    email: str
    company: str
    user_id: str = ""
    contact_id: int = 0


@dataclass
class Customer:
    name: str
    identifier: str
    domain: str
    tenant_id: str = ""
    company_id: int = 0
    people: dict[str, Person] = field(default_factory=dict)


@dataclass
class DemoTicket:
    requester: str
    summary: str
    description: str
    expected: str


@dataclass
class Scenario:
    customers: dict[str, Customer]
    board_id: int

    def person(self, key: str) -> Person:
        for customer in self.customers.values():
            if key in customer.people:
                return customer.people[key]
        raise KeyError(key)


DEMO_TICKETS = [
    DemoTicket(
        "anna",
        "Password reset",
        "Hi,\n\nI forgot my password over the weekend and now I can't log in. Could you reset it please?\n\n"
        "Thanks,\nAnna Berg\nFront desk, Contoso Dental",
        "resolved",
    ),
    DemoTicket(
        "ben",
        "Password reset for Priya Shah",
        "Please reset the password for Priya Shah (priya.shah@fabrikamlegal.example), she is travelling "
        "and cannot get in.\n\nBen",
        "escalated",
    ),
    DemoTicket(
        "tom",
        "Printer on the 2nd floor not working",
        "The printer next to reception shows a paper jam and nothing prints.",
        "escalated",
    ),
    DemoTicket(
        "grace",
        "Reset my password",
        "Please reset my password, I cannot sign in since this morning. Grace",
        "escalated",
    ),
]


def load(stack: LocalStack) -> Scenario:
    from psa_integrations.models import PsaKind
    from tierone.settings import Settings
    from tierone.storage import Storage
    from tierone.tenants import TenantMap, TenantMapping

    cw, graph = stack.connectwise, stack.graph
    board = cw.add_board("L1 Service Desk")
    customers = {
        "contoso": Customer("Contoso Dental", "ContosoDental", "contosodental.example"),
        "fabrikam": Customer("Fabrikam Legal", "FabrikamLegal", "fabrikamlegal.example"),
    }
    people = [
        Person("anna", "Anna Berg", "anna.berg@contosodental.example", "contoso"),
        Person("tom", "Tom Baker", "tom.baker@contosodental.example", "contoso"),
        Person("grace", "Grace Hopper", "grace.hopper@contosodental.example", "contoso"),
        Person("ben", "Ben Ortiz", "ben.ortiz@fabrikamlegal.example", "fabrikam"),
        Person("priya", "Priya Shah", "priya.shah@fabrikamlegal.example", "fabrikam"),
    ]
    mappings: list[Any] = []
    for customer in customers.values():
        customer.tenant_id = stack.add_customer_tenant(customer.domain)
        company = cw.add_company(customer.name, customer.identifier)
        customer.company_id = int(company["id"])
        mappings.append(
            TenantMapping(
                psa=PsaKind.CONNECTWISE,
                company_id=str(customer.company_id),
                tenant_id=customer.tenant_id,
                customer_name=customer.name,
            )
        )
    for person in people:
        customer = customers[person.company]
        first, last = person.name.split(" ", 1)
        user = graph.add_user(
            customer.tenant_id, person.name, person.email, mail=person.email, given_name=first, surname=last
        )
        person.user_id = str(user["id"])
        person.contact_id = int(cw.add_contact(customer.company_id, first, last, person.email)["id"])
        customer.people[person.key] = person
    contoso = customers["contoso"]
    graph.assign_role(contoso.tenant_id, contoso.people["grace"].user_id, "Global Administrator")
    graph.set_manager(contoso.tenant_id, contoso.people["anna"].user_id, contoso.people["grace"].user_id)
    fabrikam = customers["fabrikam"]
    graph.set_manager(fabrikam.tenant_id, fabrikam.people["ben"].user_id, fabrikam.people["priya"].user_id)

    tenants = TenantMap(Storage(Settings.from_env()).tenants)

    async def store_mappings() -> None:
        for mapping in mappings:
            await tenants.put(mapping)

    asyncio.run(store_mappings())
    return Scenario(customers=customers, board_id=int(board["id"]))


def create_ticket(stack: LocalStack, scenario: Scenario, ticket: DemoTicket) -> int:
    """Create the ticket as its requester would through the PSA's portal (fires the callback)."""
    person = scenario.person(ticket.requester)
    customer = scenario.customers[person.company]
    created = stack.connectwise.create_ticket(
        ticket.summary,
        ticket.description,
        customer.company_id,
        person.contact_id,
        scenario.board_id,
        entered_by="portal",
    )
    return int(created["id"])

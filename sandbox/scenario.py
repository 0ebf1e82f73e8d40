"""The demo's world: one MSP whose clients sit on three PSAs — Contoso Dental on ConnectWise,
Fabrikam Legal on Autotask, Northwind Traders on HaloPSA — each client with its own Microsoft
tenant and users, and the demo's tickets."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field
from typing import Any

from sandbox.psa_views import TicketRef
from sandbox.stack import LocalStack


@dataclass
class Person:
    key: str
    name: str
    email: str
    company: str
    user_id: str = ""
    contact_id: int = 0
    site_id: int = 0


@dataclass
class Customer:
    key: str
    name: str
    domain: str
    psa: str
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

    def customer_of(self, key: str) -> Customer:
        return self.customers[self.person(key).company]


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
    DemoTicket(
        "priya",
        "Forgot my password",
        "Hello, I have forgotten my password and can't get into Outlook. Can you reset it? Priya",
        "resolved",
    ),
    DemoTicket(
        "nina",
        "Password expired - cannot sign in",
        "<p>Hi team,</p><p>my password expired this morning and I can't sign in to my laptop. "
        "Please reset it.</p><p>Nina Patel<br>Accounts, Northwind Traders</p>",
        "resolved",
    ),
]

_CUSTOMERS = [
    Customer("contoso", "Contoso Dental", "contosodental.example", "connectwise"),
    Customer("fabrikam", "Fabrikam Legal", "fabrikamlegal.example", "autotask"),
    Customer("northwind", "Northwind Traders", "northwind.example", "halopsa"),
]
_PEOPLE = [
    ("anna", "Anna Berg", "contoso"),
    ("tom", "Tom Baker", "contoso"),
    ("grace", "Grace Hopper", "contoso"),
    ("ben", "Ben Ortiz", "fabrikam"),
    ("priya", "Priya Shah", "fabrikam"),
    ("nina", "Nina Patel", "northwind"),
    ("omar", "Omar Haddad", "northwind"),
]


def load(stack: LocalStack) -> Scenario:
    """Seed every sandbox. Contoso and Fabrikam are mapped in TierOne's tenants table; Northwind is
    mapped only in HaloPSA's own Azure AD connection, which TierOne reads at ticket time."""
    from psa_integrations.models import PsaKind
    from tierone.settings import Settings
    from tierone.storage import Storage
    from tierone.tenants import TenantMap, TenantMapping

    board = stack.connectwise.add_board("L1 Service Desk")
    customers = {c.key: Customer(c.key, c.name, c.domain, c.psa) for c in _CUSTOMERS}
    mappings: list[Any] = []
    for customer in customers.values():
        customer.tenant_id = stack.add_customer_tenant(customer.domain)
        customer.company_id = _add_company(stack, customer)
        if customer.psa != "halopsa":
            mappings.append(
                TenantMapping(
                    psa=PsaKind(customer.psa),
                    company_id=str(customer.company_id),
                    tenant_id=customer.tenant_id,
                    customer_name=customer.name,
                )
            )
    for key, name, company in _PEOPLE:
        customer = customers[company]
        first, last = name.split(" ", 1)
        email = f"{first}.{last}@{customer.domain}".lower()
        person = Person(key, name, email, company)
        user = stack.graph.add_user(customer.tenant_id, name, email, mail=email, given_name=first, surname=last)
        person.user_id = str(user["id"])
        _add_contact(stack, customer, person)
        customer.people[key] = person
    contoso, fabrikam = customers["contoso"], customers["fabrikam"]
    stack.graph.assign_role(contoso.tenant_id, contoso.people["grace"].user_id, "Global Administrator")
    stack.graph.set_manager(contoso.tenant_id, contoso.people["anna"].user_id, contoso.people["grace"].user_id)
    stack.graph.set_manager(fabrikam.tenant_id, fabrikam.people["ben"].user_id, fabrikam.people["priya"].user_id)

    tenants = TenantMap(Storage(Settings.from_env()).tenants)

    async def store_mappings() -> None:
        for mapping in mappings:
            await tenants.put(mapping)

    asyncio.run(store_mappings())
    return Scenario(customers=customers, board_id=int(board["id"]))


def _add_company(stack: LocalStack, customer: Customer) -> int:
    if customer.psa == "connectwise":
        return int(stack.connectwise.add_company(customer.name, customer.key.title())["id"])
    if customer.psa == "autotask":
        return int(stack.autotask.add_company(customer.name)["id"])
    client = stack.halopsa.add_client(customer.name)
    stack.halopsa.add_tenant_mapping(int(client["id"]), customer.tenant_id, customer.domain)
    return int(client["id"])


def _add_contact(stack: LocalStack, customer: Customer, person: Person) -> None:
    first, last = person.name.split(" ", 1)
    if customer.psa == "connectwise":
        person.contact_id = int(stack.connectwise.add_contact(customer.company_id, first, last, person.email)["id"])
    elif customer.psa == "autotask":
        person.contact_id = int(stack.autotask.add_contact(customer.company_id, first, last, person.email)["id"])
    else:
        site = stack.halopsa.add_site(customer.company_id, "Head Office")
        person.site_id = int(site["id"])
        user = stack.halopsa.add_user(customer.company_id, person.site_id, person.name, person.email, person.user_id)
        person.contact_id = int(user["id"])


def create_ticket(stack: LocalStack, scenario: Scenario, ticket: DemoTicket) -> TicketRef:
    """Create the ticket as its requester would through the PSA's portal (which fires the webhook)."""
    person = scenario.person(ticket.requester)
    customer = scenario.customers[person.company]
    if customer.psa == "connectwise":
        created = stack.connectwise.create_ticket(
            ticket.summary,
            ticket.description,
            customer.company_id,
            person.contact_id,
            scenario.board_id,
            entered_by="portal",
        )
    elif customer.psa == "autotask":
        created = stack.autotask.create_ticket(
            ticket.summary,
            ticket.description,
            customer.company_id,
            person.contact_id,
            created_by_contact_id=person.contact_id,
        )
    else:
        created = stack.halopsa.create_ticket(
            ticket.summary, ticket.description, customer.company_id, person.contact_id
        )
    return TicketRef(customer.psa, int(created["id"]))

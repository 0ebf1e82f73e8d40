"""The demo's world: one MSP whose clients sit on three PSAs — Contoso Dental on ConnectWise,
Fabrikam Legal on Autotask, Northwind Traders on HaloPSA — each client with its own Microsoft
tenant and users, and the demo's tickets."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from sandbox.psa_views import TicketRef
from sandbox.stack import LocalStack
from tierone.client_policy import Approver, ClientPolicy, Mode
from tierone.playbooks.context import OnboardingTemplate


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
    # What the people do when TierOne asks, in order: "confirm" / "decline" (the user's out-of-band
    # confirmation), "approve" / "deny" (a technician on the approval page), "expire" (nobody answers).
    answers: tuple[str, ...] = ()


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
        ("confirm",),
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
        "escalated",
        ("decline",),  # Priya's alternate mailbox answers "No, I did not ask": someone else sent this
    ),
    DemoTicket(
        "nina",
        "Password expired - cannot sign in",
        "<p>Hi team,</p><p>my password expired this morning and I can't sign in to my laptop. "
        "Please reset it.</p><p>Nina Patel<br>Accounts, Northwind Traders</p>",
        "resolved",
        ("confirm",),
    ),
    DemoTicket(
        "omar",
        "Account blocked",
        "Hi, my account has been blocked since yesterday and I cannot log in to anything. Please unlock it.\n"
        "Thanks, Omar Haddad",
        "resolved",
    ),
    DemoTicket(
        "tom",
        "New phone - Authenticator not working",
        "I got a new phone over the weekend and the Microsoft Authenticator app no longer works. "
        "Can you reset my MFA so I can set it up again? Tom",
        "resolved",
        ("confirm", "approve"),  # Tom's manager confirms by mail, then a technician approves
    ),
    DemoTicket(
        "grace",
        "Group membership: Sales",
        "Please add Anna Berg to the Sales security group. Thanks, Grace",
        "escalated",
        ("deny",),
    ),
    DemoTicket(
        "grace",
        "Shared mailbox access for Anna",
        "Please give Anna Berg full access to the info@contosodental.example shared mailbox. Thanks, Grace",
        "resolved",
    ),
    DemoTicket(
        "priya",
        "Licence for Ben",
        "Hello, Ben Ortiz needs a Microsoft 365 Business Premium licence for the new case system. Priya",
        "escalated",
        ("expire",),
    ),
    DemoTicket(
        "grace",
        "New starter: John Smith",
        "New starter: John Smith, starting Monday as Sales Executive. Please set up his account. Grace",
        "resolved",
        ("approve",),
    ),
    DemoTicket(
        "priya",
        "Leaver: Carl Jensen",
        "Carl Jensen is leaving us; his last day is Friday. Please offboard his account. Priya",
        "resolved",
    ),
    DemoTicket(
        "nina",
        "Access to the Finance group",
        "Hi, could you please add me to the Finance group? I need the budget files. Thanks, Nina",
        "proposed",  # Northwind is trying TierOne in shadow mode for group changes
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
    ("carl", "Carl Jensen", "fabrikam"),
    ("nina", "Nina Patel", "northwind"),
    ("omar", "Omar Haddad", "northwind"),
]


PERSON_DETAILS: dict[str, dict[str, Any]] = {
    # Alternate e-mail addresses registered on the accounts long before any ticket: where TierOne
    # asks a user to confirm a credential request (ticket text can never supply one).
    "anna": {"other_mails": ["anna.berg@home.example"]},
    "priya": {"other_mails": ["priya.s@home.example"]},
    "nina": {"other_mails": ["nina.patel@home.example"]},
    "ben": {"usage_location": "GB"},
    "carl": {"usage_location": "GB", "job_title": "Paralegal"},
    "omar": {"account_enabled": False},
}

# How far each client lets TierOne go (tierone/client_policy.py). The MSP default names the
# approvers and keeps the conservative modes; after-hours is "auto" here only so that the demo's
# outcome does not depend on the hour it runs at.
# Each approver's Slack user and workspace ids are bound here, at enrolment; a click is never matched by name.
SLACK_TEAM = "T0SANDBOX"  # sandbox.chat.SlackSandbox's workspace
MSP_APPROVERS = {"sam.rivera@tierone-msp.example": "U0SAMRIVERA", "lee.chen@tierone-msp.example": "U0LEECHEN"}
CLIENT_MODES: dict[str, dict[str, str]] = {
    "contoso": {"mailbox_permission": "auto"},
    "fabrikam": {"offboarding": "auto"},
    "northwind": {"group_membership": "propose"},
}


def load(stack: LocalStack) -> Scenario:
    """Seed every sandbox. Contoso and Fabrikam are mapped in TierOne's tenants table; Northwind is
    mapped only in HaloPSA's own Azure AD connection, which TierOne reads at ticket time."""
    from psa_integrations.models import PsaKind
    from tierone.client_policy import DEFAULT_SCOPE, PolicyStore
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
                    onboarding=ONBOARDING_TEMPLATES.get(customer.key),
                )
            )
    for key, name, company in _PEOPLE:
        customer = customers[company]
        first, last = name.split(" ", 1)
        email = f"{first}.{last}@{customer.domain}".lower()
        person = Person(key, name, email, company)
        user = stack.graph.add_user(
            customer.tenant_id, name, email, mail=email, given_name=first, surname=last, **PERSON_DETAILS.get(key, {})
        )
        person.user_id = str(user["id"])
        _add_contact(stack, customer, person)
        customer.people[key] = person
    _seed_identity_work(stack, customers)

    storage = Storage(Settings.from_env())
    tenants = TenantMap(storage.tenants)
    policies = PolicyStore(storage.policies)

    async def store_mappings() -> None:
        for mapping in mappings:
            await tenants.put(mapping)
        await policies.set(DEFAULT_SCOPE, _msp_default, by="demo", note="MSP default: approvers, after-hours auto")
        for key, modes in CLIENT_MODES.items():
            await policies.set(
                customers[key].tenant_id, _with_modes(modes), by="demo", note=f"{customers[key].name}: {modes}"
            )

    asyncio.run(store_mappings())
    return Scenario(customers=customers, board_id=int(board["id"]))


def _msp_default(policy: ClientPolicy) -> ClientPolicy:
    return policy.model_copy(
        update={
            "after_hours": Mode.AUTO,
            "approvers": [
                Approver(id=upn, slack_id=slack, slack_team_id=SLACK_TEAM) for upn, slack in MSP_APPROVERS.items()
            ],
        }
    )


def _with_modes(modes: dict[str, str]) -> Callable[[ClientPolicy], ClientPolicy]:
    def change(policy: ClientPolicy) -> ClientPolicy:
        return policy.model_copy(update={"modes": {**policy.modes, **{k: Mode(v) for k, v in modes.items()}}})

    return change


ONBOARDING_TEMPLATES = {
    "contoso": OnboardingTemplate(
        domain="contosodental.example",
        upn_pattern="{first}.{last}",
        usage_location="US",
        license_sku="SPB",
        groups=["All Staff"],
        groups_by_role={"sales": ["Sales"]},
    )
}


def _seed_identity_work(stack: LocalStack, customers: dict[str, Customer]) -> None:
    """What the identity tickets need: managers, an admin, groups, licences, a shared mailbox,
    registered MFA methods, a TAP policy, a blocked account."""
    graph = stack.graph
    contoso, fabrikam, northwind = customers["contoso"], customers["fabrikam"], customers["northwind"]
    c, f, n = contoso.people, fabrikam.people, northwind.people
    graph.assign_role(contoso.tenant_id, c["grace"].user_id, "Global Administrator")
    for report in ("anna", "tom"):
        graph.set_manager(contoso.tenant_id, c[report].user_id, c["grace"].user_id)
    for report in ("ben", "carl"):
        graph.set_manager(fabrikam.tenant_id, f[report].user_id, f["priya"].user_id)

    graph.set_tap_policy(contoso.tenant_id, enabled=True, usable_once=True)
    graph.add_auth_method(
        contoso.tenant_id, c["tom"].user_id, "microsoftAuthenticator", default=True, display_name="Tom's old iPhone"
    )
    graph.add_auth_method(
        contoso.tenant_id, c["tom"].user_id, "phone", phone_type="mobile", phone_number="+1 206 555 0142"
    )
    graph.add_group(contoso.tenant_id, "Sales", kind="security")
    graph.add_group(contoso.tenant_id, "All Staff", kind="m365")
    graph.add_subscription(contoso.tenant_id, "SPB", seats=25)
    stack.exchange.add_shared_mailbox(contoso.tenant_id, "Contoso Info", "info@contosodental.example")

    graph.add_subscription(fabrikam.tenant_id, "SPB", seats=10)
    graph.add_subscription(fabrikam.tenant_id, "EXCHANGESTANDARD", seats=10)
    # Group-based licensing: Carl's mailbox licence comes with the Matters Team group.
    matters = graph.add_group(fabrikam.tenant_id, "Matters Team", kind="security", licenses=["EXCHANGESTANDARD"])
    graph.add_member(fabrikam.tenant_id, matters, f["carl"].user_id)
    graph.add_group(northwind.tenant_id, "Finance", kind="security")
    del n  # Omar's account is blocked from the start (see PERSON_DETAILS)


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

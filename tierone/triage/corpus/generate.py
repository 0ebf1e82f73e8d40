"""Write the triage corpus: `python -m tierone.triage.corpus.generate` → train.jsonl, heldout.jsonl.

Deterministic (seeded per family and sample), so the files in the repository can be regenerated
byte for byte. Real tickets are messy, so every sample goes through noise layers: e-mail client
HTML, forwarded chains and quoted replies with their headers, signatures and legal disclaimers,
"[EXTERNAL]" banners, typos, lower-cased or flattened text, fragments in other languages, and
generic subjects that leave the body to carry the request.

The split is by family: every fourth family of each group is held out whole (families.HELD_OUT), and the
non-Microsoft system names, VPN clients, phone systems and products are drawn from disjoint pools
per split. The model never trains on a held-out phrasing or a held-out system name.
"""

from __future__ import annotations

import hashlib
import json
import random
import re
import string
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from tierone.triage.corpus import families as fam

HERE = Path(__file__).resolve().parent
TRAIN_FILE = HERE / "train.jsonl"
HELDOUT_FILE = HERE / "heldout.jsonl"
SAMPLES_PER_FAMILY = 40

FIRST_NAMES = [
    "Anna",
    "Tom",
    "Priya",
    "Ben",
    "Grace",
    "Nina",
    "Omar",
    "Sofia",
    "Liam",
    "Chen",
    "Aisha",
    "Mateo",
    "Hannah",
    "Ravi",
    "Fatima",
    "Lucas",
    "Mei",
    "Jonas",
    "Amara",
    "Ewan",
    "Zofia",
    "Kwame",
    "Ingrid",
    "Diego",
    "Yuki",
    "Sean",
    "Leila",
    "Pieter",
    "Chloe",
    "Arjun",
    "Nadia",
    "Oliver",
    "Siobhan",
    "Tariq",
    "Elena",
    "Felix",
    "Ngozi",
    "Marco",
    "Freya",
    "Hamza",
    "Lena",
    "Dev",
    "Rosa",
    "Kai",
    "Imogen",
    "Samir",
    "Jana",
    "Callum",
    "Wei",
    "Beatriz",
]
LAST_NAMES = [
    "Berg",
    "Baker",
    "Shah",
    "Ortiz",
    "Hopper",
    "Patel",
    "Haddad",
    "Rossi",
    "Murphy",
    "Wang",
    "Khan",
    "Garcia",
    "Fischer",
    "Sharma",
    "Ali",
    "Silva",
    "Zhang",
    "Novak",
    "Okafor",
    "Campbell",
    "Kowalski",
    "Mensah",
    "Larsen",
    "Fernandez",
    "Tanaka",
    "O'Brien",
    "Haddadi",
    "de",
    "Vries",
    "Martin",
    "Iyer",
    "Petrov",
    "Hughes",
    "Byrne",
    "Aziz",
    "Costa",
    "Wagner",
    "Eze",
    "Romano",
    "Lindqvist",
    "Malik",
    "Becker",
    "Nair",
    "Delgado",
    "Lee",
    "Ward",
    "Hassan",
    "Dvorak",
    "MacLeod",
    "Liu",
    "Moreira",
]
COMPANIES = (
    ("Contoso Dental", "contosodental.example"),
    ("Fabrikam Legal", "fabrikamlegal.example"),
    ("Northwind Traders", "northwind.example"),
    ("Tailspin Logistics", "tailspin.example"),
    ("Woodgrove Accountants", "woodgrove.example"),
    ("Adatum Engineering", "adatum.example"),
    ("Litware Clinic", "litware.example"),
    ("Proseware Estates", "proseware.example"),
)
MSP_NAMES = ("BlueLine IT", "Stackwise Support", "Helix Managed Services")
GROUPS = (
    "Finance",
    "Sales Team",
    "SG-Finance-RW",
    "All Staff",
    "Marketing",
    "HR Confidential",
    "Project Falcon",
    "Managers",
    "Leeds Office",
    "dl-operations",
    "Board Members",
    "Warehouse",
    "Legal Members",
    "Accounts Payable",
    "Partners",
    "Clinical Staff",
    "Site Managers",
    "Bid Team",
)
MAILBOXES = (
    "accounts@{domain}",
    "info@{domain}",
    "Reception",
    "bookings@{domain}",
    "Customer Service",
    "invoices@{domain}",
    "HR",
    "careers@{domain}",
    "Orders",
    "Lettings",
    "enquiries@{domain}",
    "Payroll",
)
LICENCES = (
    "Microsoft 365 Business Premium",
    "Business Standard",
    "Microsoft 365 E3",
    "Office 365 E1",
    "Visio Plan 2",
    "Project Plan 3",
    "Power BI Pro",
    "Microsoft 365 Copilot",
    "Exchange Online Plan 2",
    "Teams Premium",
    "Microsoft 365 F3",
    "Microsoft 365 E5",
)
MS_APPS = ("Outlook", "Teams", "OneDrive", "Office", "Word", "Excel", "SharePoint", "the Office apps")
DEVICES = ("laptop", "PC", "desktop", "Surface", "computer", "work laptop")
DEPARTMENTS = ("Finance", "Sales", "Operations", "HR", "Marketing", "Accounts", "the warehouse", "Reception", "Legal")
ROLES = (
    "Office Manager",
    "Accounts Assistant",
    "Sales Executive",
    "Dental Nurse",
    "Paralegal",
    "Warehouse Operative",
    "Project Manager",
    "Receptionist",
    "Marketing Coordinator",
    "Solicitor",
    "Site Engineer",
    "Practice Manager",
)
DATE_FORMATS = (
    "%A %-d %B",
    "%d/%m/%Y",
    "%-d %B",
    "%Y-%m-%d",
    "%-d %b %Y",
    "%B %-d",
    "%d.%m.%Y",
    "%a %d/%m",
    "%-dth %B",
)
RELATIVE_DATES = ("next Monday", "Monday", "tomorrow", "this Friday", "the 1st", "next week Tuesday")

# Disjoint per split: a held-out ticket names a system the model never saw in training.
SYSTEMS = {
    "train": (
        "Sage 50",
        "Sage 200",
        "Xero",
        "QuickBooks",
        "NetSuite",
        "Dentrix",
        "Clio",
        "Salesforce",
        "HubSpot",
        "ADP",
        "BrightPay",
        "Procore",
        "SAP Business One",
        "IRIS",
        "Zoho CRM",
        "Jira",
        "Dropbox",
        "Zoom",
        "Slack",
        "Kashflow",
    ),
    "heldout": (
        "Epicor",
        "Eaglesoft",
        "Actionstep",
        "NetDocuments",
        "Pipedrive",
        "MYOB",
        "FreeAgent",
        "Paychex",
        "BambooHR",
        "Deputy",
        "Bullhorn",
        "Dext",
        "iManage",
        "Open Dental",
        "Cliniko",
        "simPRO",
    ),
}
VPNS = {
    "train": ("FortiClient", "GlobalProtect", "the Fortinet VPN"),
    "heldout": ("Cisco AnyConnect", "SonicWall NetExtender", "WatchGuard VPN"),
}
PHONES = {"train": ("3CX", "RingCentral"), "heldout": ("8x8", "Dialpad", "Mitel")}
PRODUCTS = {
    "train": ("Adobe Acrobat", "AutoCAD", "SketchUp", "Adobe Creative Cloud"),
    "heldout": ("Bluebeam", "Nitro PDF", "Revit", "Camtasia"),
}

GENERIC_SUBJECTS = (
    "Help",
    "IT issue",
    "(no subject)",
    "Urgent",
    "Quick one",
    "Question",
    "Support request",
    "",
    "Problem",
    "Can you help?",
    "Request",
)
SUBJECT_PREFIXES = ("RE: ", "FW: ", "Fwd: ", "[EXTERNAL] ", "AW: ", "WG: ", "TR: ", "Re: ", "[#TKT-{n}] ")
GREETINGS = (
    "Hi,",
    "Hello,",
    "Hi team,",
    "Hiya",
    "Good morning,",
    "Dear IT,",
    "Hello support,",
    "Hi {tech},",
    "Morning all",
    "Hallo zusammen,",
    "Bonjour,",
    "Hola,",
    "Hoi,",
    "Olá,",
)
CLOSINGS = (
    "Thanks",
    "Thank you",
    "Cheers",
    "Kind regards",
    "Many thanks",
    "Thx",
    "Best",
    "Regards",
    "Danke und Gruß",
    "Merci d'avance",
    "Gracias",
    "Bedankt",
    "Mit freundlichen Grüßen",
    "Cordialement",
)
FOREIGN_FRAGMENTS = ("Bitte dringend!", "C'est urgent.", "Es urgente.", "Dank je wel.", "Grazie mille.", "Pilne!")
# Same request said in another language, for the intents whose words travel (password, lock, phone).
FOREIGN_BY_INTENT = {
    "password_reset": ("(Passwort vergessen)", "(mot de passe oublié)", "(he olvidado mi contraseña)"),
    "account_unlock": ("(Konto gesperrt)", "(compte verrouillé)", "(cuenta bloqueada)"),
    "mfa_reset": ("(neues Handy)", "(nouveau téléphone)", "(teléfono nuevo)"),
}
DISCLAIMERS = (
    "CONFIDENTIALITY NOTICE: This e-mail and any attachments are confidential and may be legally privileged. "
    "If you are not the intended recipient, please notify the sender immediately and delete it. Any "
    "unauthorised use, disclosure or copying is prohibited.",
    "This email has been scanned for viruses and malware. {company} is registered in England and Wales, "
    "company number {number}. Registered office: 1 High Street, Leeds LS1 1AA.",
    "Please consider the environment before printing this email.",
    "Diese E-Mail enthält vertrauliche Informationen. Wenn Sie nicht der richtige Adressat sind, informieren "
    "Sie bitte sofort den Absender und vernichten Sie diese Mail.",
    "Disclaimer: the information in this message is intended solely for the addressee. Access by anyone else "
    "is unauthorised. Passwords and account details will never be requested by email.",
)
BANNERS = (
    "CAUTION: This email originated from outside of the organization. Do not click links or open attachments "
    "unless you recognize the sender and know the content is safe.",
    "[EXTERNAL EMAIL] Be careful with links and attachments.",
    "*** This ticket was created from an email. Reply above this line. ***",
)
QUOTED_HISTORY = (
    "Hi, thanks for contacting the service desk. Your ticket has been logged and an engineer will be in touch.",
    "We have replaced the toner in the printer. Please let us know if you have any more problems.",
    "Your laptop has been updated and restarted. Closing this ticket.",
    "Could you send us a screenshot of the error please?",
    "The new monitor has been ordered and will arrive on Thursday.",
)
TYPO_MAP = {
    "password": ("pasword", "passwrod", "passowrd", "pssword", "password"),
    "account": ("acount", "accont", "accout"),
    "please": ("plese", "pls", "plz", "pleas"),
    "licence": ("lisence", "licnece", "licens"),
    "mailbox": ("mail box", "mailbx", "malibox"),
    "unlock": ("unlcok", "unlok"),
    "authenticator": ("authenticater", "authentificator", "autheticator"),
    "locked": ("lockd", "loked"),
    "starter": ("startr", "stater"),
    "access": ("acces", "acess"),
}
KEYBOARD_NEIGHBOURS = dict(zip(string.ascii_lowercase, "swvfrdghukjlnbipwtaeyhqcxt", strict=True))


@dataclass
class Person:
    first: str
    last: str
    domain: str

    @property
    def name(self) -> str:
        return f"{self.first} {self.last}"

    @property
    def email(self) -> str:
        local = f"{self.first}.{self.last}".lower().replace("'", "").replace(" ", "")
        return f"{local}@{self.domain}"


def _rng(*parts: object) -> random.Random:
    digest = hashlib.sha256("|".join(map(str, parts)).encode()).digest()
    return random.Random(int.from_bytes(digest[:8], "big"))


_ALTERNATIVES = re.compile(r"<<([^<>]*)>>")


def expand(template: str, rng: random.Random) -> str:
    return _ALTERNATIVES.sub(lambda m: rng.choice(m.group(1).split("|")), template)


def _date(rng: random.Random) -> str:
    if rng.random() < 0.25:
        return rng.choice(RELATIVE_DATES)
    from datetime import date, timedelta

    day = date(2025, 1, 6) + timedelta(days=rng.randrange(0, 400))
    text = day.strftime(rng.choice(DATE_FORMATS))
    return text.replace("1th", "1st").replace("2th", "2nd").replace("3th", "3rd").replace("11st", "11th")


def _person(rng: random.Random, domain: str, avoid: Person | None = None) -> Person:
    while True:
        person = Person(rng.choice(FIRST_NAMES), rng.choice(LAST_NAMES), domain)
        if avoid is None or person.first != avoid.first:
            return person


@dataclass
class Sample:
    subject: str
    body: str
    requester: Person
    target: str
    obj: str | None
    dates: list[str]


def _fill(family: fam.Family, split: str, rng: random.Random) -> Sample:
    company, domain = rng.choice(COMPANIES)
    requester = _person(rng, domain)
    other = _person(rng, domain, avoid=requester)
    slots = {
        "name": other.name,
        "tfirst": other.first,
        "temail": other.email,
        "group": rng.choice(GROUPS),
        "mailbox": rng.choice(MAILBOXES).format(domain=domain),
        "licence": rng.choice(LICENCES),
        "date": _date(rng),
        "system": rng.choice(SYSTEMS[split]),
        "vpn": rng.choice(VPNS[split]),
        "phone": rng.choice(PHONES[split]),
        "product": rng.choice(PRODUCTS[split]),
        "msapp": rng.choice(MS_APPS),
        "device": rng.choice(DEVICES),
        "dept": rng.choice(DEPARTMENTS),
        "role": rng.choice(ROLES),
        "company": company,
    }
    subject = expand(rng.choice(family.subjects), rng).format(**slots)
    body = expand(rng.choice(family.bodies), rng).format(**slots)
    text = subject + " " + body
    target = "requester"
    if family.target != "requester":
        # What the text itself names: the full name, else the address, else the first name only.
        found = [v for v in (other.name, other.email, other.first) if v in text]
        target = found[0] if found else "requester"
    obj = None
    if family.obj:
        # A mailbox family may name a person's mailbox ("Arjun's calendar") instead of a shared one.
        found = [v for v in (slots[family.obj], other.name, other.first) if v in text]
        obj = found[0] if found else None
    dates = [slots["date"]] if "{date}" in "".join(family.subjects + family.bodies) and slots["date"] in text else []
    return Sample(subject, body, requester, target, obj, dates)


# --------------------------------------------------------------------------------------------
# Noise layers
# --------------------------------------------------------------------------------------------


def _typos(text: str, rng: random.Random, rate: float) -> str:
    def one(match: re.Match[str]) -> str:
        word = match.group(0)
        lowered = word.lower()
        if lowered in TYPO_MAP and rng.random() < rate * 4:
            return rng.choice(TYPO_MAP[lowered])
        if len(word) < 4 or rng.random() >= rate:
            return word
        i = rng.randrange(1, len(word) - 1)
        kind = rng.randrange(4)
        if kind == 0:
            return word[:i] + word[i + 1] + word[i] + word[i + 2 :]
        if kind == 1:
            return word[:i] + word[i + 1 :]
        if kind == 2:
            return word[:i] + word[i] + word[i:]
        return word[:i] + KEYBOARD_NEIGHBOURS.get(word[i].lower(), word[i]) + word[i + 1 :]

    return re.sub(r"[A-Za-z]+", one, text)


def _signature(person: Person, company: str, rng: random.Random) -> str:
    lines = [person.name]
    if rng.random() < 0.7:
        lines.append(rng.choice(ROLES))
    if rng.random() < 0.7:
        lines.append(company)
    if rng.random() < 0.6:
        lines.append(
            f"{rng.choice(('T', 'Tel', 'Phone', 'M', 'Mob'))}: +44 {rng.randrange(1000, 9999)} "
            f"{rng.randrange(100000, 999999)}"
        )
    if rng.random() < 0.3:
        lines.append(f"www.{person.domain}")
    if rng.random() < 0.2:
        lines.append("Follow us on LinkedIn | Twitter")
    return "\n".join(lines)


def _header_block(sender: str, sender_email: str, to: str, subject: str, rng: random.Random) -> str:
    style = rng.randrange(3)
    when = rng.choice(("Monday, 3 March 2025 09:14", "Tue, 14 Jan 2025 at 16:02", "05 June 2025 11:47"))
    if style == 0:
        return (
            f"---------- Forwarded message ---------\nFrom: {sender} <{sender_email}>\nDate: {when}\n"
            f"Subject: {subject}\nTo: {to}"
        )
    if style == 1:
        return (
            f"-----Original Message-----\nFrom: {sender} <{sender_email}>\nSent: {when}\nTo: {to}\nSubject: {subject}"
        )
    return f"From: {sender} <{sender_email}> Sent: {when} To: {to} Subject: {subject}"


def _html(text: str, rng: random.Random) -> str:
    paragraphs = text.split("\n")
    escaped = [
        p.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;").replace("'", rng.choice(("&#8217;", "'")))
        for p in paragraphs
    ]
    if rng.random() < 0.5:
        inner = "".join(f'<p class="MsoNormal">{p or "&nbsp;"}<o:p></o:p></p>' for p in escaped)
        return (
            '<html><head><style>p.MsoNormal{margin:0cm;font-size:11.0pt;font-family:"Calibri",sans-serif;}'
            '</style></head><body lang="EN-GB"><div class="WordSection1">' + inner + "</div></body></html>"
        )
    return "<div>" + "<br>".join(escaped) + "</div>"


def _messy(sample: Sample, family: fam.Family, rng: random.Random) -> tuple[str, str, list[str]]:
    company = next(name for name, domain in COMPANIES if domain == sample.requester.domain)
    layers: list[str] = []
    subject, body = sample.subject, sample.body
    lines: list[str] = []
    if rng.random() < 0.55:
        lines.append(rng.choice(GREETINGS).format(tech=rng.choice(FIRST_NAMES)))
    lines.append(body)
    foreign = FOREIGN_BY_INTENT.get(family.intent)
    if rng.random() < 0.08:
        lines.append(rng.choice(FOREIGN_FRAGMENTS))
        layers.append("foreign")
    if foreign and rng.random() < 0.12:
        lines[-1] += " " + rng.choice(foreign)
        layers.append("foreign")
    if rng.random() < 0.7:
        closing = rng.choice(CLOSINGS)
        lines.append(f"{closing},\n{sample.requester.first}" if rng.random() < 0.6 else closing)
    if rng.random() < 0.45:
        lines.append("\n" + _signature(sample.requester, company, rng))
        layers.append("signature")
    if rng.random() < 0.15:
        lines.append(rng.choice(("Sent from my iPhone", "Get Outlook for Android", "Sent from my Galaxy")))
        layers.append("signature")
    if rng.random() < 0.25:
        lines.append("\n" + rng.choice(DISCLAIMERS).format(company=company, number=rng.randrange(10**6, 10**7)))
        layers.append("disclaimer")
    text = "\n".join(lines)

    msp = rng.choice(MSP_NAMES)
    chain = rng.random()
    if chain < 0.12:
        # Forwarded: the request is the forwarded message, under the forwarder's short note.
        # A request about the requester is their own earlier e-mail (to a manager, say) sent on to IT;
        # one about somebody else comes from HR or a manager.
        colleague = _person(rng, sample.requester.domain, avoid=sample.requester)
        sender, to = (sample.requester, colleague) if family.target == "requester" else (colleague, sample.requester)
        note = rng.choice(("See below, can you action?", "FYI - please sort", "pls help", "Forwarding this on.", ""))
        header = _header_block(sender.name, sender.email, to.email, subject, rng)
        text = f"{note}\n\n{header}\n\n{text}"
        subject = "FW: " + subject
        layers.append("forwarded")
    elif chain < 0.27:
        # A reply on an earlier ticket thread: the quoted history is about something else.
        history = rng.choice(QUOTED_HISTORY)
        if rng.random() < 0.5:
            quoted = "\n".join("> " + line for line in history.split(". "))
            text += f"\n\nOn Tue, 14 Jan 2025 at 10:02, {msp} Service Desk <support@msp.example> wrote:\n{quoted}"
        else:
            header = _header_block(f"{msp} Service Desk", "support@msp.example", sample.requester.email, "Ticket", rng)
            text += f"\n\n{header}\n\n{history}"
        subject = "RE: " + subject
        layers.append("quoted-reply")
    if rng.random() < 0.1:
        text = rng.choice(BANNERS) + "\n\n" + text
        layers.append("banner")

    if rng.random() < 0.35:
        text = _typos(text, rng, rate=0.04)
        subject = _typos(subject, rng, rate=0.04)
        layers.append("typos")
    if rng.random() < 0.15:
        text, subject = text.lower(), subject.lower()
        layers.append("lowercase")
    if rng.random() < 0.07:
        text = re.sub(r"[^\w\s@.]", " ", text)
        layers.append("no-punctuation")
    if rng.random() < 0.15:
        text = re.sub(r"\s+", " ", text)
        layers.append("flattened")
    elif rng.random() < 0.3:
        text = _html(text, rng)
        layers.append("html")
    if rng.random() < 0.12:
        subject = rng.choice(GENERIC_SUBJECTS)
        layers.append("generic-subject")
    elif rng.random() < 0.15:
        subject = rng.choice(SUBJECT_PREFIXES).format(n=rng.randrange(1000, 99999)) + subject
    if rng.random() < 0.04:
        subject = subject.upper()
    return subject, text, layers


def split_of(family: fam.Family) -> str:
    return "heldout" if family.key in fam.HELD_OUT else "train"


def generate() -> dict[str, list[dict[str, Any]]]:
    out: dict[str, list[dict[str, Any]]] = {"train": [], "heldout": []}
    for family in fam.FAMILIES:
        split = split_of(family)
        for n in range(SAMPLES_PER_FAMILY):
            rng = _rng(family.key, n)
            sample = _fill(family, split, rng)
            subject, body, layers = _messy(sample, family, rng)
            out[split].append(
                {
                    "id": "",
                    "subject": subject,
                    "body": body,
                    "requester_email": sample.requester.email,
                    "intent": family.intent,
                    "target": sample.target,
                    "object": sample.obj,
                    "dates": sample.dates,
                    "family": family.key,
                    "noise": sorted(set(layers)),
                }
            )
    for split, rows in out.items():
        _rng("shuffle", split).shuffle(rows)
        for i, row in enumerate(rows):
            row["id"] = f"{split}-{i:05d}"
    return out


def write(out: dict[str, list[dict[str, Any]]]) -> None:
    for split, path in (("train", TRAIN_FILE), ("heldout", HELDOUT_FILE)):
        with path.open("w", encoding="utf-8") as handle:
            for row in out[split]:
                handle.write(json.dumps(row, ensure_ascii=False) + "\n")


def main() -> None:
    out = generate()
    write(out)
    for split, rows in out.items():
        families = {r["family"] for r in rows}
        print(f"{split}: {len(rows)} tickets from {len(families)} families")


if __name__ == "__main__":
    main()

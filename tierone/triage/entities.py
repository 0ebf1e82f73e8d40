"""Who and what a ticket names: the target person, the group / mailbox / licence, start or leave dates.

Everything here only proposes. The safety property is one-sided on purpose: `names_someone_else`
is computed on *all* the text a reader can see (forwarded headers and signatures included) and on
hidden text too, so that any mention of another person makes the ticket someone else's business and
stops self-service actions; the *targets* and *objects*, which could widen an action, come only
from the screened request text.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from tierone.triage.schema import OBJECT_KIND
from tierone.triage.text import EMAIL

# Local parts of shared or role addresses: a mailbox, not a person.
_ROLE_LOCAL = re.compile(
    r"^(info|accounts?|sales|support|help|helpdesk|servicedesk|service|it|itsupport|admin|office|reception|hr|"
    r"finance|billing|noreply|no-reply|donotreply|enquiries|inquiries|orders|invoices?|marketing|team|jobs|careers|"
    r"payroll|operations|ops|contact|hello|bookings?|legal|lettings|customerservice|customer\.service|"
    r"accountspayable|ap|ar|purchasing|reports?|alerts?|notifications?|postmaster|mailer-daemon|security)$",
    re.I,
)
_THIRD_PARTY = re.compile(
    r"\b(on behalf of|for (my|a|our) (colleague|manager|boss|employee|team member|staff member|assistant|director|"
    r"user|client|intern|temp|member of staff)|(my|our|a) (colleague|co-worker|coworker|boss|employee|team member|"
    r"staff member|new starter|new hire|leaver|direct report|pa|assistant|director|intern|temp)\b|"
    r"\b(his|her|their) (password|account|login|mailbox|inbox|phone|mfa|2fa|authenticator|laptop|access|"
    r"licen[cs]e|email|calendar|notice|last day|contract)|(one of my|one of our) (team|staff|users|employees))",
    re.I,
)
_NAME = r"[A-Z][a-z]+(?:-[A-Z]?[a-z]+|'[A-Z][a-z]+)?"
_FULL_NAME = rf"{_NAME}(?:\s+(?:de|van|von|da|di|le|la|del|der|o')?\s*{_NAME})?"
_NAME_PATTERNS = [
    # "for Tom Baker", "reset Tom's password", "Tom Baker is leaving", "new starter: Tom Baker"
    re.compile(
        r"\b(?:for|to|add|remove|unlock|welcome|give|grant|let|allow|provide|send|assign|copy|make|set up|create|"
        r"disable|enable|block|reset|offboard|onboard|email|call|contact|help|ask|tell|cc)\s+"
        rf"({_FULL_NAME})(?=\s|[,.;:)!?]|$)"
    ),
    re.compile(
        rf"\b({_FULL_NAME})['’]s?\s+(?:password|account|login|mailbox|inbox|calendar|access|laptop|licen[cs]e|"
        r"email|phone|mfa|2fa|notice|last day|contract|retirement|predecessor|account)\b"
    ),
    # A full name doing something, or a single name doing something only a person does.
    re.compile(
        rf"\b({_NAME}\s+{_NAME})\s+(?:is|has|was|will|starts|joins|retires|needs|can't|cannot|no longer|should|"
        r"from (?:finance|sales|hr|accounts|operations|marketing|legal|reception|the)\b|\()",
    ),
    re.compile(
        rf"\b({_NAME})\s+(?:has left|left|is leaving|has resigned|resigned|starts|joins|retires|is off|is on leave|"
        r"is away|has forgotten|forgot|has locked|is locked|can't (?:log|sign|get)|cannot (?:log|sign|get))\b",
    ),
    re.compile(
        rf"(?:starter|joiner|hire|leaver|employee|user|contractor|temp|intern|student)\s*[,:-]?\s+({_FULL_NAME})\b"
    ),
]
_LABELLED = re.compile(
    r"^\s*(?:full name|name|user|user affected|leaver(?: name)?|new starter(?: name)?|starter name|employee"
    r"(?: leaving)?|for whom\??|for)\s*[:=]\s*(.+?)\s*$",
    re.I | re.M,
)
_POSSESSIVE_LOWER = re.compile(
    r"\b([a-z]{3,})['’]s\s+(password|account|login|mailbox|inbox|calendar|access|licen[cs]e|phone|mfa)\b"
)
# Day and month names are capitalised but never a person's name.
CALENDAR_WORDS = frozenset(
    [
        "monday",
        "tuesday",
        "wednesday",
        "thursday",
        "friday",
        "saturday",
        "sunday",
        "january",
        "february",
        "march",
        "april",
        "may",
        "june",
        "july",
        "august",
        "september",
        "october",
        "november",
        "december",
    ]
)
_NOT_NAMES = (
    frozenset(
        [
            "i",
            "me",
            "my",
            "we",
            "our",
            "you",
            "your",
            "he",
            "she",
            "they",
            "them",
            "it",
            "this",
            "that",
            "the",
            "a",
            "an",
            "please",
            "hi",
            "hello",
            "dear",
            "thanks",
            "thank",
            "manager",
            "colleague",
            "boss",
            "user",
            "team",
            "company",
            "client",
            "everyone",
            "someone",
            "today",
            "yesterday",
            "tomorrow",
            "what",
            "there",
            "let",
            "who",
            "microsoft",
            "office",
            "outlook",
            "teams",
            "onedrive",
            "sharepoint",
            "windows",
            "excel",
            "word",
            "visio",
            "project",
            "power",
            "exchange",
            "new",
            "old",
            "my",
            "ms",
            "it",
            "hr",
            "finance",
            "sales",
            "accounts",
            "reception",
            "marketing",
            "legal",
            "operations",
            "warehouse",
            "request",
            "type",
            "category",
            "urgent",
            "help",
            "quick",
            "reset",
            "unlock",
            "add",
            "remove",
            "access",
            "mailbox",
            "password",
            "account",
            "group",
            "licence",
            "license",
            "shared",
            "send",
            "full",
            "read",
            "edit",
            "all",
            "staff",
            "board",
            "members",
            "managers",
            "partners",
            "site",
            "leeds",
            "project",
            "email",
            "mobile",
            "phone",
            "laptop",
            "pc",
            "apple",
            "google",
            "business",
            "premium",
            "standard",
            "basic",
            "copilot",
            "leaver",
            "starter",
            "onboarding",
            "offboarding",
            "checklist",
            "contractor",
            "intern",
            "temp",
            "student",
            "agency",
            "summer",
            "work",
            "experience",
            "returning",
            "employee",
            "new",
            "starter",
            "user",
            "sent",
            "from",
            "date",
            "subject",
            "to",
            "cc",
            "description",
            "urgency",
            "details",
            "notes",
            "reason",
            "system",
            "status",
            "category",
            "priority",
            "position",
            "role",
            "title",
            "department",
            "manager",
            "approval",
        ]
    )
    | CALENDAR_WORDS
)
# Capitalised pairs anywhere but at the start of a sentence or line (where any word is capitalised).
_CAPITALISED_PAIR = re.compile(
    r"(?<=[a-z,;:(]\s)[A-Z][a-z]+(?:-[A-Z][a-z]+)?\s[A-Z][a-z]+(?:-[A-Z][a-z]+)?(?:'[A-Z][a-z]+)?\b"
)
_NOT_NAME_WORDS = (
    frozenset(
        [
            "microsoft",
            "office",
            "teams",
            "team",
            "group",
            "groups",
            "mailbox",
            "mailboxes",
            "inbox",
            "calendar",
            "business",
            "premium",
            "standard",
            "basic",
            "plan",
            "pro",
            "online",
            "exchange",
            "power",
            "visio",
            "project",
            "copilot",
            "outlook",
            "windows",
            "azure",
            "entra",
            "authenticator",
            "onedrive",
            "sharepoint",
            "word",
            "excel",
            "dental",
            "legal",
            "traders",
            "clinic",
            "estates",
            "logistics",
            "engineering",
            "accountants",
            "support",
            "desk",
            "service",
            "services",
            "customer",
            "sales",
            "finance",
            "marketing",
            "accounts",
            "payable",
            "staff",
            "members",
            "member",
            "board",
            "site",
            "sites",
            "managers",
            "manager",
            "head",
            "front",
            "reception",
            "floor",
            "admin",
            "admins",
            "administrator",
            "administrators",
            "global",
            "domain",
            "security",
            "distribution",
            "list",
            "policy",
            "new",
            "starter",
            "leaver",
            "user",
            "users",
            "account",
            "licence",
            "license",
            "portal",
            "app",
            "system",
            "password",
            "reset",
            "mfa",
            "phone",
            "ltd",
            "limited",
            "inc",
            "llc",
            "plc",
            "gmbh",
            "corp",
            "company",
            "the",
            "and",
            "of",
            "for",
            "north",
            "south",
            "east",
            "west",
            "street",
            "road",
            "house",
            "building",
            "room",
            "please",
            "thanks",
            "thank",
            "regards",
            "kind",
            "best",
            "many",
            "hi",
            "hello",
            "dear",
            "operations",
            "hr",
            "it",
            "lettings",
            "payroll",
            "bookings",
            "orders",
            "careers",
            "info",
            "enquiries",
            "invoices",
            "care",
            "day",
            "shift",
            "contract",
            "notice",
            "data",
            "drive",
            "share",
            "file",
            "files",
            "folder",
            "e3",
            "e5",
            "f3",
            "f1",
            "plan1",
            "plan2",
            "leeds",
            "london",
            "manchester",
            "office365",
            "microsoft365",
            "pdf",
            "vpn",
            "wifi",
            "wi",
            "fi",
        ]
    )
    | CALENDAR_WORDS
)
_PLACEHOLDER = re.compile(r"^\s*(\[.*\]|<.*>|_+|-+|me|myself|n/?a|none|tbc|tbd|\?+)\s*$", re.I)

_MAILBOX_OBJECT = [
    re.compile(
        r"\b(?:access to|send as|send from|send on behalf of|rights on|permission (?:on|to)|delegate on|"
        r"add (?:me|\w+) to|give (?:me|\w+) access to|open|to|on|for)\s+(?:the\s+)?([A-Z][\w&' -]{1,30}?|"
        r"[\w.-]+@[\w.-]+)\s+(?:shared\s+)?(?:mailbox|inbox|shared inbox)\b",
        re.I,
    ),
    re.compile(r"\b(?:mailbox|inbox)\s*[:=]\s*([\w.@' -]{2,40}?)\s*$", re.I | re.M),
    re.compile(
        r"\b(?:access to|send as|send from|send on behalf of|rights on|access on|add me to|permission on)\s+"
        r"(?:the\s+)?([\w.-]+@[\w.-]+\.\w+)",
        re.I,
    ),
    re.compile(rf"\b({_FULL_NAME})['’]s\s+(?:mailbox|calendar|inbox)\b"),
]
_GROUP_OBJECT = [
    re.compile(r"\b(?:group|dl|distribution list)\s*[:=]\s*([\w&' -]{2,40}?)\s*$", re.I | re.M),
    re.compile(
        r"\b(?:to|into|in|from|off|of)\s+(?:the\s+)?([\w&'-]+(?:\s[\w&'-]+){0,3}?)\s+"
        r"(?:security group|distribution list|mailing list|group|dl)\b",
        re.I,
    ),
    re.compile(
        r"\b(?:to|into|in|from|off|of)\s+(?:the\s+)?([\w&'-]+(?:\s[\w&'-]+){0,3}?)\s+"
        r"(?:team|members|site members|sharepoint site)\b",
        re.I,
    ),
    re.compile(r"\b((?:sg|dl|grp|gg|m365)[-_][\w-]+)\b", re.I),
    re.compile(
        r"\b(?:add (?:me|\w+(?:\s\w+)?) to|put me in|remove (?:me|\w+(?:\s\w+)?) from|member of|"
        r"no longer be in|take me off|be in)\s+(?:the\s+)?([A-Z][\w&'-]*(?:\s[A-Z][\w&'-]*){0,3})"
    ),
]
_GROUP_NOISE = re.compile(r"^(the|a|an|my|our|this|that|same|usual|new|teams?|microsoft|ms)$", re.I)
_LICENCE_OBJECT = re.compile(
    r"\b((?:microsoft|office|m|o)\s?365\s+(?:business\s+)?(?:premium|standard|basic|e[135]|f[13]|apps(?: for "
    r"(?:business|enterprise))?|copilot)|office 365 e[135]|(?:microsoft|m)\s?365 e[35]|(?<![\w-])e[35](?![\w-])|"
    r"business (?:premium|standard|basic)|visio(?: plan [12])?|project(?: plan [135]| online)|power bi (?:pro|premium)|"
    r"exchange online(?: plan [12]| kiosk)?|teams (?:premium|phone|rooms)|copilot|entra id p[12]|"
    r"defender for (?:business|endpoint)|(?<![\w-])f[13](?![\w-]))\b",
    re.I,
)

_MONTH = (
    r"(?:jan(?:uary)?|feb(?:ruary)?|mar(?:ch)?|apr(?:il)?|may|june?|july?|aug(?:ust)?|sep(?:t(?:ember)?)?|"
    r"oct(?:ober)?|nov(?:ember)?|dec(?:ember)?)"
)
_WEEKDAY = r"(?:mon|tues|wednes|thurs|fri|satur|sun)day"
_DATE = re.compile(
    rf"(?<![\w+/.-])(?:\d{{4}}-\d{{2}}-\d{{2}}|\d{{1,2}}[/.]\d{{1,2}}(?:[/.]\d{{2,4}})?(?![\d/.]*\d{{3}})|"
    rf"(?:{_WEEKDAY}|(?:mon|tue|wed|thu|fri|sat|sun))\s+\d{{1,2}}(?:st|nd|rd|th)?(?:\s+(?:of\s+)?{_MONTH}(?:\s+\d{{4}})?|[/.]\d{{1,2}})?|"
    rf"\d{{1,2}}(?:st|nd|rd|th)?\s+(?:of\s+)?{_MONTH}(?:\s+\d{{4}})?|{_MONTH}\s+\d{{1,2}}(?:st|nd|rd|th)?(?:,?\s+\d{{4}})?|"
    rf"(?:next|this|coming)\s+(?:week\s+)?(?:{_WEEKDAY}|week|month)|(?:next week )?{_WEEKDAY}|tomorrow|"
    rf"the\s+\d{{1,2}}(?:st|nd|rd|th)|end of (?:the )?(?:week|month))(?![\w/])",
    re.I,
)
DATED_INTENTS = frozenset({"onboarding", "offboarding"})


@dataclass
class Entities:
    target_emails: list[str] = field(default_factory=list)
    target_names: list[str] = field(default_factory=list)
    names_someone_else: bool = False
    someone_else_because: list[str] = field(default_factory=list)
    object: str | None = None
    dates: list[str] = field(default_factory=list)
    target: str | None = None


def requester_tokens(requester_email: str | None) -> frozenset[str]:
    """Name parts of the requester, from the address's local part ("anna.berg" → anna, berg)."""
    if not requester_email or "@" not in requester_email:
        return frozenset()
    local = requester_email.split("@", 1)[0].lower()
    return frozenset(t for t in re.split(r"[._+\-']+", local) if len(t) >= 2)


def _is_requester(name: str, mine: frozenset[str]) -> bool:
    parts = [p.lower().strip("'’") for p in name.split()]
    return bool(parts) and parts[0] in mine and all(p in mine for p in parts[:2] if len(parts) > 1 and p[:1].isalpha())


def person_emails(text: str, requester_email: str | None) -> list[str]:
    me = (requester_email or "").lower()
    found: list[str] = []
    for address in EMAIL.findall(text):
        address = address.lower().strip(".")
        if address == me or _ROLE_LOCAL.match(address.split("@", 1)[0]) or address in found:
            continue
        found.append(address)
    return found


def _names(text: str, mine: frozenset[str], *, loose: bool = False) -> list[str]:
    """Names in request positions ("for Tom Baker", "Tom's password", "Leaver: Tom Baker"); `loose` adds
    any capitalised pair that is not a product or team word (for the someone-else check only)."""
    found: list[str] = []

    def add(name: str) -> None:
        name = re.sub(r"\s+", " ", name).strip(" ,.;:'’")
        first = name.split(" ")[0].lower() if name else ""
        if not name or first in _NOT_NAMES or _PLACEHOLDER.match(name) or _is_requester(name, mine):
            return
        if any(name == f or f.startswith(name + " ") for f in found):
            return
        found[:] = [f for f in found if not name.startswith(f + " ")]
        found.append(name)

    for match in _LABELLED.finditer(text):
        value = match.group(1)
        if not _PLACEHOLDER.match(value) and not EMAIL.search(value) and len(value.split()) <= 4:
            add(value.title() if value.islower() else value)
    for pattern in _NAME_PATTERNS:
        for match in pattern.finditer(text):
            add(match.group(1))
    for match in _POSSESSIVE_LOWER.finditer(text):
        add(match.group(1).title())
    for match in _CAPITALISED_PAIR.finditer(text if loose else ""):
        # Two capitalised words that are not product, team or calendar words: most likely a person.
        if not {w.lower() for w in match.group(0).split()} & _NOT_NAME_WORDS:
            add(match.group(0))
    return found


def _object(intent: str, text: str, privileged: list[str]) -> str | None:
    kind = OBJECT_KIND.get(intent)
    value: str | None = None
    if kind == "licence":
        match = _LICENCE_OBJECT.search(text)
        value = match.group(1) if match else None
    elif kind == "mailbox":
        value = _first(_MAILBOX_OBJECT, text)
    elif kind == "group":
        value = _first(_GROUP_OBJECT, text, reject=_GROUP_NOISE)
    if value and any(p.lower() in value.lower() or value.lower() in p.lower() for p in privileged):
        return None
    return value


def _first(patterns: list[re.Pattern[str]], text: str, reject: re.Pattern[str] | None = None) -> str | None:
    for pattern in patterns:
        for match in pattern.finditer(text):
            value = match.group(1).strip(" .,;:'\"")
            if value and not (reject and reject.match(value)) and value.lower() not in ("me", "you", "my"):
                return value
    return None


def extract(
    intent: str,
    request: str,
    visible: str,
    hidden: str,
    requester_email: str | None,
    privileged: list[str] | None = None,
) -> Entities:
    """`request` is the screened request text; `visible` and `hidden` the whole message, for the
    conservative someone-else check only."""
    mine = requester_tokens(requester_email)
    found = Entities()
    found.target_emails = person_emails(request, requester_email)
    found.target_names = _names(request, mine)

    everywhere = "\n".join(part for part in (visible, hidden, request) if part)
    others = person_emails(everywhere, requester_email)
    if others:
        found.someone_else_because.append(f"names another person's address ({others[0]})")
    third = _THIRD_PARTY.search(everywhere)
    if third:
        found.someone_else_because.append(f"'{third.group(0)}'")
    # Capitalised pairs are read in the request (and hidden text) only: signatures are full of them.
    named = found.target_names or _names(everywhere, mine) or _names(f"{request}\n{hidden}", mine, loose=True)
    if named:
        found.someone_else_because.append(f"names {named[0]}")
    found.names_someone_else = bool(found.someone_else_because)

    found.object = _object(intent, request, privileged or [])
    if intent == "mailbox_permission" and found.object:
        # "access to Arjun's calendar": Arjun's mailbox is the object; the target is whoever gets access.
        found.target_names = [n for n in found.target_names if n != found.object]
    if intent in DATED_INTENTS:
        found.dates = list(dict.fromkeys(m.group(0).strip() for m in _DATE.finditer(request)))

    if found.target_emails:
        found.target = found.target_emails[0]
    elif found.target_names:
        found.target = found.target_names[0]
    elif intent in DATED_INTENTS or found.names_someone_else:
        found.target = None  # somebody else, not named in a form we can resolve
    else:
        found.target = "requester"
    return found

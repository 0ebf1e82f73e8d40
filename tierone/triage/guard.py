"""Guards between ticket text and anything that acts on it.

Ticket text is written by whoever can send the help desk an e-mail. It may try to add an action
("also add me to Domain Admins"), a target, or talk to an automated reader ("AI: ignore your
rules"), or hide such text in HTML. The guards:

- take sentences that instruct an automated system, and sentences that ask for privileged roles or
  groups, out of the text the model and the entity extractor read (so they can change neither the
  intent nor the target nor the object), and flag the ticket so a human sees it;
- notice an unknown name in the place of a system ("my Epicor password", "log into Dext"), or a
  capitalised product name of several words none of which is Microsoft's ("log in to Open Dental",
  "a Nitro PDF licence"): the model cannot know it is not Microsoft 365 — and resetting the
  Microsoft password would be the wrong act;
- notice a request to create a container ("create a new Team for the project", "set up a new
  distribution list"): creating a Team, group, site or mailbox is not a membership or permission
  change on one that exists.
"""

from __future__ import annotations

import difflib
import re
from dataclasses import dataclass, field

from tierone.triage.entities import CALENDAR_WORDS
from tierone.triage.text import EMAIL, sentences

_ADDRESSED_TO_MACHINE = re.compile(
    r"\b(ignore|disregard|forget|override|bypass)\b[^.!?\n]{0,40}\b(previous|prior|above|earlier|all|any|your|the|"
    r"these|those)\b[^.!?\n]{0,25}\b(instructions?|rules?|prompts?|polic(y|ies)|guidelines|guardrails|checks?)\b|"
    r"\b(you are|act as|pretend (to be|you are)|as an?)\s+(an?\s+)?(ai|assistant|bot|language model|llm|chatgpt|"
    r"gpt|copilot|tierone|automation|automated (system|agent|technician))\b|"
    r"\b(dear|attention|note to|message (for|to)|instructions? (for|to)|hey|hi|hello)\s+(the\s+)?(ai|assistant|bot|"
    r"tierone|automation|automated (system|agent|technician|helpdesk)|llm|chatgpt|copilot|model)\b|"
    r"^\s*(system|assistant|ai|tierone|bot|llm)\s*[:>\]]|\[(system|inst|assistant)\]|<\|?(system|im_start)\|?>|"
    r"\b(system prompt|prompt injection|jailbreak|developer mode)\b|"
    r"\b(do not|don't|dont|never)\s+(escalate|tell|notify|inform|log|record|mention|alert|flag|audit)\b|"
    r"\b(pre-?approved|already (been )?approved|auto-?approve|no approval (is )?(needed|required)|"
    r"approval (is )?not (needed|required)|skip (the )?(verification|approval|checks?|policy))\b|"
    r"\b(new|updated|real|actual) instructions?\b",
    re.I | re.M,
)
_PRIVILEGED = re.compile(
    r"\b(domain admins?|enterprise admins?|schema admins?|administrators group|global (admin(istrator)?s?|reader)|"
    r"privileged (role|authentication) admin(istrator)?|(security|exchange|user|helpdesk|billing|sharepoint|teams|"
    r"intune|compliance|application|cloud application|authentication|conditional access|password|"
    r"license|licence) admin(istrator)?s?\b|company admin(istrator)?|tenant admin(istrator)?|"
    r"local admin(istrator)?|admin(istrator)? (rights|access|role|roles|privileges|permissions|account|group)|"
    r"break[- ]?glass|owner of (the|all) (tenant|subscription)|subscription owner|full control of the tenant|"
    r"(elevate|promote) (me|my account|him|her|them|\w+) to)\b",
    re.I,
)
_ZERO_WIDTH = re.compile("[\u200b-\u200f\u202a-\u202e\u2060-\u2064\ufeff]")

# -- the object of a credential ------------------------------------------------------------------------
# A credential or licence request names what the credential is for: "reset my <X> password", "locked out
# of <X>", "<X> account locked", "can't log into <X>", "a <X> licence", "<X> keeps rejecting my password".
# X is judged on its own words: Microsoft 365 / Entra words are positive evidence; a person (named in the
# ticket, in an address, possessive, after a title) or a generic or function word (in any language) says
# nothing; anything else — capitalised or not, one word or several, "VPN", "ERP", "portal", "app" — is
# another system, and the Microsoft action would be the wrong one.
_CREDENTIAL = (
    r"pass\s?words?|passwort|passwd|pwd|passcode|pins?|log-?ins?|log\s+in|logon|sign-?ins?|sign\s+in|"
    r"credentials?|user\s?names?|licen[cs]es?|seats?|subscriptions?|2fa|mfa|two[- ]factor|2-?step|tokens?|"
    r"accounts?|acct|access|portal"
)
_CREDENTIAL_WORD = re.compile(rf"\b(?:{_CREDENTIAL})\b", re.I)
# Whose object follows: "log into X", "locked out of X", "password for X", "access to X", "account in X".
_OBJECT_AFTER = re.compile(
    r"\b(?:(?:log|logging|logged|sign|signing|signed)\s*(?:in|on)\s*(?:to|into|on|at)|log\s*onto|login\s+to|"
    r"locked\s+out\s+(?:of|from)|get\s+(?:in|into|onto)(?:\s+to)?|can'?t\s+access|cannot\s+access|"
    r"(?:pass\s?words?|passwort|pwd|passcode|pins?|log-?ins?|logon|credentials?|user\s?names?|2fa|mfa|accounts?|"
    r"access)\s+(?:for|into))\s+",
    re.I,
)
# "password on / in / with / at X" only for a capitalised name or an acronym: "my password in Xero",
# "my account in the ERP", not "the password in the cafe".
_OBJECT_AFTER_NAMED = re.compile(
    rf"\b(?:{_CREDENTIAL})\s+(?:on|in|with|at|within|for)\s+(?:the\s+|my\s+|our\s+)?(?=(?-i:[A-Z0-9]))", re.I
)
# "Adobe keeps saying my password is wrong", "Mailchimp wants a 2FA code", "Xero has locked my account".
_OBJECT_LEADS = re.compile(
    r"^\W*((?:the\s+)?\w[\w.+&/-]*(?:\s+\w[\w.+&/-]*)?)\s+(?:keeps?|kept|says?|said|wants?|won'?t|will\s+not|"
    r"asks?|is\s+asking|is\s+saying|rejects?|is\s+rejecting|isn'?t\s+accepting|doesn'?t\s+accept|forced|"
    r"(?:has\s+)?locked)\b[^.!?\n]{0,60}?\b(?:password|passwort|login|log\s*in|credentials|locked|sign\s*in|"
    r"2fa|mfa|code|pin|account)\b",
    re.I | re.M,
)
_THIRD_PERSON = re.compile(r"\b(?:he|she|his|her|him|he's|she's|he'll|she'll|he’s|she’s|they|them)\b", re.I)
_PRONOUN = re.compile(r"\b(?:he|she|his|her|him|they|their|them|he's|she's)\b", re.I)
_TOKEN = re.compile(r"\w[\w+&'’/-]*(?:\.\w[\w+&'’/-]*)*|[^\w\s]|\n")

# Microsoft 365 / Entra ID words: positive evidence that the credential or licence is Microsoft's.
_MICROSOFT = frozenset(
    [
        "microsoft",
        "msft",
        "ms",
        "windows",
        "win10",
        "win11",
        "office",
        "office365",
        "o365",
        "m365",
        "365",
        "microsoft365",
        "outlook",
        "owa",
        "teams",
        "onedrive",
        "sharepoint",
        "entra",
        "azure",
        "aad",
        "exchange",
        "intune",
        "visio",
        "powerbi",
        "bi",
        "dynamics",
        "copilot",
        "authenticator",
        "defender",
        "purview",
        "autopilot",
        "planner",
        "skype",
        "yammer",
        "viva",
        "bookings",
        "onenote",
        "excel",
        "powerpoint",
        "publisher",
        "surface",
        "hotmail",
        "clipchamp",
        "pc",
        "pcs",
        "laptop",
        "laptops",
        "computer",
        "computers",
        "desktop",
        "e1",
        "e3",
        "e5",
        "f1",
        "f3",
        "a1",
        "a3",
        "a5",
        "p1",
        "p2",
        "w365",
        "mfa-microsoft",
    ]
)
_MICROSOFT_PHRASE = re.compile(
    r"\b(?:company\s+portal|admin\s+(?:centre|center|portal)|my\s*(?:apps|sign-?ins|account)|power\s+(?:bi|automate|apps)|"
    r"office\.com|microsoft\.com|windows\s+hello|audio\s+conferencing|teams\s+(?:phone|premium|rooms?)|"
    r"exchange\s+online|project\s+(?:plan|online)|business\s+(?:basic|standard|premium)|apps\s+for\s+business|"
    r"self[- ]service\s+password)\b",
    re.I,
)
# Words that say nothing about which system: IT and workplace words, plan words, departments, web parts.
_GENERIC = (
    frozenset(
        [
            "work",
            "works",
            "working",
            "email",
            "e-mail",
            "emails",
            "mail",
            "mails",
            "computer",
            "computers",
            "laptop",
            "laptops",
            "pc",
            "pcs",
            "desktop",
            "machine",
            "device",
            "devices",
            "network",
            "domain",
            "login",
            "logins",
            "logon",
            "company",
            "business",
            "corporate",
            "main",
            "normal",
            "usual",
            "regular",
            "current",
            "old",
            "new",
            "temporary",
            "temp",
            "temps",
            "own",
            "user",
            "users",
            "staff",
            "online",
            "web",
            "personal",
            "default",
            "first",
            "second",
            "admin",
            "admins",
            "single",
            "sign",
            "signin",
            "up",
            "phone",
            "phones",
            "mobile",
            "cell",
            "profile",
            "account",
            "accounts",
            "password",
            "passwords",
            "pin",
            "code",
            "codes",
            "authentication",
            "auth",
            "verification",
            "security",
            "two",
            "factor",
            "step",
            "2-step",
            "2fa",
            "mfa",
            "multi-factor",
            "multifactor",
            "existing",
            "generic",
            "shared",
            "guest",
            "guests",
            "service",
            "test",
            "training",
            "spare",
            "standard",
            "basic",
            "premium",
            "pro",
            "plan",
            "plans",
            "enterprise",
            "essentials",
            "home",
            "proper",
            "paid",
            "free",
            "trial",
            "extra",
            "additional",
            "audio",
            "conferencing",
            "calling",
            "domestic",
            "international",
            "rooms",
            "room",
            "meeting",
            "meetings",
            "channel",
            "calendar",
            "mailbox",
            "mailboxes",
            "inbox",
            "group",
            "groups",
            "site",
            "drive",
            "files",
            "folder",
            "cloud",
            "sso",
            "identity",
            "directory",
            "ad",
            "active",
            "com",
            "net",
            "org",
            "co",
            "uk",
            "www",
            "http",
            "https",
            "page",
            "screen",
            "details",
            "info",
            "number",
            "remote",
            "hybrid",
            "local",
            "tenant",
            "organisation",
            "organization",
            "department",
            "dept",
            "reception",
            "finance",
            "sales",
            "hr",
            "marketing",
            "operations",
            "ops",
            "warehouse",
            "manager",
            "managers",
            "team",
            "teams",
            "apps",
            "licence",
            "licences",
            "license",
            "licenses",
            "seat",
            "seats",
            "subscription",
            "subscriptions",
            "access",
            "full",
            "usual",
            "windows",
            "corporate",
            "office-wide",
            "everyday",
            "daily",
            "main-office",
            "work-related",
            "pc's",
            "laptop's",
            "sign-in",
            "sign-ins",
            "log-in",
            "log-ins",
            "username",
            "user-name",
            "credentials",
            "credential",
            "token",
            "tokens",
            "contractor",
            "contractors",
            "intern",
            "interns",
            "starter",
            "starters",
            "leaver",
            "leavers",
            "person",
            "colleague",
            "colleagues",
            "boss",
            "assistant",
            "software",
            "account's",
            "email's",
            "outlook's",
            "tablet",
            "tablets",
            "ipad",
            "project",
            "word",
            "pwd",
            "self",
            "request",
            "requests",
            "type",
            "subject",
            "category",
            "issue",
            "description",
            "urgency",
            "field",
            "member",
            "members",
            "bigger",
            "larger",
            "more",
            "today",
            "tonight",
            "tomorrow",
            "yesterday",
            "morning",
            "afternoon",
            "evening",
            "weekend",
            "week",
            "month",
        ]
    )
    | CALENDAR_WORDS
)
# Words that name another kind of system even in lower case, whatever surrounds them.
_OTHER_SYSTEM = frozenset(
    [
        "vpn",
        "erp",
        "crm",
        "pms",
        "ehr",
        "emr",
        "dms",
        "lms",
        "hris",
        "ats",
        "pos",
        "portal",
        "app",
        "application",
        "system",
        "platform",
        "database",
        "tool",
        "wifi",
        "wi-fi",
        "wireless",
        "voicemail",
        "extension",
        "handset",
        "payroll",
        "bank",
        "banking",
        "supplier",
        "printer",
        "copier",
        "intranet",
        "extranet",
        "website",
        "door",
        "fob",
        "alarm",
        "cctv",
    ]
)
# Function words of other languages the help desk sees ("mein Passwort", "mon compte", "mijn wachtwoord").
_FOREIGN_FUNCTION = frozenset(
    [
        "mein",
        "meine",
        "meinen",
        "meinem",
        "meiner",
        "dein",
        "deine",
        "sein",
        "seine",
        "ihr",
        "ihre",
        "unser",
        "unsere",
        "das",
        "der",
        "die",
        "den",
        "dem",
        "des",
        "ein",
        "eine",
        "einen",
        "einem",
        "bitte",
        "und",
        "oder",
        "mit",
        "für",
        "fur",
        "von",
        "zum",
        "zur",
        "auf",
        "mon",
        "ma",
        "mes",
        "ton",
        "ta",
        "son",
        "sa",
        "notre",
        "votre",
        "le",
        "la",
        "les",
        "un",
        "une",
        "du",
        "des",
        "de",
        "pour",
        "et",
        "ou",
        "mi",
        "mis",
        "tu",
        "su",
        "sus",
        "el",
        "los",
        "las",
        "una",
        "por",
        "para",
        "mijn",
        "mijnen",
        "het",
        "een",
        "van",
        "voor",
        "en",
        "il",
        "lo",
        "gli",
        "mio",
        "mia",
        "miei",
        "nostro",
        "per",
        "meu",
        "minha",
        "o",
        "os",
        "as",
        "um",
        "uma",
        "do",
        "da",
        "min",
        "mitt",
        "mina",
    ]
)
_ACTION = frozenset(
    [
        "reset",
        "resets",
        "resetting",
        "change",
        "changed",
        "changing",
        "unlock",
        "unlocked",
        "unlocking",
        "forgot",
        "forgotten",
        "forget",
        "expired",
        "expiring",
        "locked",
        "lock",
        "new",
        "please",
        "pls",
        "plz",
        "need",
        "needs",
        "needed",
        "want",
        "wants",
        "help",
        "can",
        "could",
        "would",
        "will",
        "cant",
        "can't",
        "cannot",
        "couldnt",
        "couldn't",
        "dont",
        "don't",
        "wont",
        "won't",
        "didnt",
        "didn't",
        "isnt",
        "isn't",
        "unable",
        "urgent",
        "asap",
        "just",
        "still",
        "also",
        "again",
        "sort",
        "fix",
        "update",
        "remove",
        "removed",
        "add",
        "added",
        "assign",
        "assigned",
        "give",
        "get",
        "got",
        "my's",
        "set",
        "sets",
        "setting",
        "wrong",
        "right",
        "correct",
        "different",
        "whole",
        "entire",
        "recover",
        "recovery",
        "renew",
        "renewed",
        "disable",
        "disabled",
        "enable",
        "enabled",
        "create",
        "created",
        "blocked",
        "block",
        "suspended",
        "unassign",
        "approve",
        "require",
        "register",
        "re-register",
        "re-registration",
        "clear",
        "say",
        "says",
        "saying",
        "keep",
        "keeps",
        "keeping",
        "i'm",
        "i've",
        "i'll",
        "i'd",
        "it's",
        "he's",
        "she's",
        "we're",
        "we've",
        "they're",
        "that's",
        "there's",
        "what's",
        "let's",
        "can’t",
        "don’t",
        "won’t",
        "i’m",
        "i’ve",
        "it’s",
    ]
)

# Creating a container is not changing who is in one: "create a new Team for the project", "set up a
# new distribution list", "we'd like a new shared mailbox". Capitals or Microsoft words may stand between
# "new" and the container ("a new Microsoft Team", "a new Finance channel"), nothing else.
_CONTAINER = (
    r"(?:teams?\s+channel|channel|team|teams\s+site|(?:sharepoint\s+)?site|(?:security\s+|m365\s+|microsoft\s+365\s+|"
    r"office\s+365\s+|unified\s+)?group|distribution\s+(?:list|group)|dl|mailing\s+list|contact\s+group|"
    r"shared\s+(?:mailbox|inbox|calendar|drive|folder)|(?:resource|room|equipment)\s+mailbox|mailbox|inbox)"
)
_CONTAINER_QUALIFIER = (
    r"(?:(?-i:[A-Z][\w&'-]*)|ms|microsoft|private|public|shared|security|mail-enabled|dynamic|m365|o365|365|office|"
    r"sharepoint|teams|project|email|e-mail|contact|outlook)"
)
_CREATES_CONTAINER = re.compile(
    rf"\b(?:(?:create|creating|set\s*up|setting\s+up|spin\s+up|make|making|build|start|open|add|need|needs|want|"
    rf"like|request|requesting|get)\s+(?:me\s+|us\s+|them\s+)?(?:a|an|one|another)\s+(?:brand[- ]?)?new\s+"
    rf"(?:{_CONTAINER_QUALIFIER}\s+){{0,3}}{_CONTAINER}|"
    rf"(?:create|creating|set\s*up|setting\s+up|spin\s+up)\s+(?:me\s+|us\s+|them\s+)?(?:a|an)\s+"
    rf"(?:{_CONTAINER_QUALIFIER}\s+){{0,3}}{_CONTAINER}\s+(?:for|called|named|so)\b)"
    r"(?![\w'’]|\s+(?:members?|membership|owners?|access|permissions?)\b)",
    re.I,
)
CONTAINER_INTENTS = frozenset({"group_membership", "mailbox_permission"})
AUTOMATABLE_CREDENTIAL_INTENTS = frozenset({"password_reset", "account_unlock", "mfa_reset", "license_change"})


@dataclass
class Screened:
    """The request text with what must not steer an action taken out, and why."""

    text: str
    flags: list[str] = field(default_factory=list)
    reasons: list[str] = field(default_factory=list)
    privileged: list[str] = field(default_factory=list)


def screen(request: str, hidden: str = "") -> Screened:
    text = _ZERO_WIDTH.sub("", request)
    result = Screened(text=text)
    if _ZERO_WIDTH.search(request):
        result.flags.append("invisible-characters")
        result.reasons.append("invisible Unicode characters removed")
    if len(re.findall(r"\w+", hidden)) >= 3:
        result.flags.append("hidden-text")
        result.reasons.append("the HTML hides text from the reader; it was not read")
    kept: list[str] = []
    for line in text.split("\n"):
        # What follows an instruction to the automation on the same line or paragraph is part of it.
        addressed = _ADDRESSED_TO_MACHINE.search(line)
        if addressed:
            _note(
                result,
                "instruction-to-automation",
                f"text addressed to an automated system ignored: {_quote(line[addressed.start() :])}",
            )
            line = line[: addressed.start()]
        kept.extend(_screen_sentences(line, result))
    remaining = "\n".join(kept).strip()
    # A ticket that is nothing but the removed request is still classified on its own words; the flags
    # keep it from being acted on, and the object extractor never sees a privileged name (see entities).
    result.text = remaining if len(re.findall(r"\w+", remaining)) >= 2 else text
    return result


def _screen_sentences(line: str, result: Screened) -> list[str]:
    kept: list[str] = []
    for sentence in _split_keep(line):
        privileged = _PRIVILEGED.search(sentence)
        if privileged:
            result.privileged.append(privileged.group(0))
            _note(
                result,
                "privileged-request",
                f"asks for a privileged role or group ({privileged.group(0)}): never proposed",
            )
            continue
        kept.append(sentence)
    return kept


def _split_keep(text: str) -> list[str]:
    parts = sentences(text)
    return parts or ([text] if text.strip() else [])


def _note(result: Screened, flag: str, reason: str) -> None:
    if flag not in result.flags:
        result.flags.append(flag)
    result.reasons.append(reason)


def _quote(sentence: str) -> str:
    sentence = re.sub(r"\s+", " ", sentence).strip()
    return f'"{sentence[:80]}…"' if len(sentence) > 80 else f'"{sentence}"'


def _boundary_words() -> frozenset[str]:
    """English stop words (scikit-learn's list, imported only when a ticket is classified, never on the
    webhook path), other languages' function words and request verbs: they end the name of an object."""
    global _BOUNDARY
    if _BOUNDARY is None:
        from sklearn.feature_extraction.text import ENGLISH_STOP_WORDS

        stop = frozenset(ENGLISH_STOP_WORDS) - {"system", "bill", "fire", "mill", "interest"}
        _BOUNDARY = stop | _FOREIGN_FUNCTION | _ACTION
    return _BOUNDARY


_BOUNDARY: frozenset[str] | None = None
_SIGN_OFF = re.compile(
    r"(?:^|\n|[.!]\s)\s*(?:(?:many\s+|kind\s+|best\s+|warm\s+)?(?:thanks|thank\s+you|regards|cheers|ta|thx|tia|"
    r"best|wishes|danke|merci|gracias|bedankt)[\s,!.]*|[-–—]\s*)\b([A-Z]?[a-z][\w'’-]+)\b",
    re.I,
)
_TITLED = re.compile(r"\b(?i:mr|mrs|ms|miss|dr|prof)\.?\s+([A-Z][\w'’-]+)")


def people(visible: str, requester_email: str | None = None) -> frozenset[str]:
    """Lower-cased name parts of the people a ticket mentions: the requester's and every address's local
    part, a title's name and the name that signs the message off. (Not the entity extractor's names in
    request positions: "log in to Citrix", "password for Sage Intacct" look like "for Tom Baker".)"""
    tokens: set[str] = set()
    for address in [*EMAIL.findall(visible), requester_email or ""]:
        local = address.split("@", 1)[0].lower()
        tokens.add(local)
        tokens.update(t for t in re.split(r"[._+\-']+", local) if len(t) >= 2)
    tokens.update(_people_in(visible))
    for pattern in (_SIGN_OFF, _TITLED):
        for match in pattern.finditer(visible):
            word = match.group(1).lower()
            if word not in _GENERIC and word not in _MICROSOFT and word not in _boundary_words():
                tokens.add(word)
    return frozenset(tokens)


def unknown_systems(text: str, people: frozenset[str] = frozenset()) -> list[str]:
    """What a credential or licence is for, where it is neither Microsoft 365 nor a person nor a generic
    word: "my Salesforce password" → Salesforce, "locked out of vpn" → vpn, "log in to Open Dental"."""
    found: list[str] = []

    def judge(tokens: list[str]) -> None:
        name = _object_name(tokens, people)
        if name and name not in found:
            found.append(name)

    text = EMAIL.sub(" ", text)
    people = people | _people_in(text)
    for match in _CREDENTIAL_WORD.finditer(text):
        judge(_run_before(text[max(0, match.start() - 100) : match.start()]))
    for pattern in (_OBJECT_AFTER, _OBJECT_AFTER_NAMED):
        for match in pattern.finditer(text):
            after = text[match.end() : match.end() + 200]
            run = _run_after(after)
            # "the password for Tom Baker, he forgot it", "MFA for Anton Kovacs please? He has a new phone": a
            # capitalised name right after "for / on" that the sentence or the next calls he or she is a person.
            following = " ".join(re.split(r"(?<=[.!?])\s+|\n", after)[:2])
            determined = re.search(r"\b(?:the|my|our|your|their)\s*$", match.group(0), re.I)
            by_name = re.search(r"\b(?:for|on)\s*$", match.group(0), re.I)
            whose = re.search(
                r"\b(?:pass\s?words?|pwd|accounts?|log-?ins?|access)\s+(?:for|on)\s*$", match.group(0), re.I
            )
            person = _THIRD_PERSON.search(following) or (whose and _full_name(run))
            if run and by_name and not determined and person:
                continue
            if _names_microsoft(_run_before(text[max(0, match.start() - 100) : match.start()])):
                continue  # "a Microsoft 365 E3 licence for Tom Baker": the object is named; "for" names who
            judge(run)
    for line in re.split(r"(?<=[.!?])\s+|\n", text):
        lead = _OBJECT_LEADS.match(line)
        if lead and not _PRONOUN.search(lead.group(0)[len(lead.group(1)) :]):
            subject = _words(lead.group(1))
            while subject and _ends_run(subject[-1]):  # "Brightwater has" locked my account
                subject.pop()
            judge(_run_before(" ".join(subject)))
    return found


_PERSON_CONTEXT = re.compile(
    r"(?-i:\b([A-Z][a-z'’-]+(?:\s+[A-Z][a-z'’-]+){0,2}))(?:['’]s\b|\s+(?:is|has|was|will|needs|can|can't|cannot|"
    r"starts|joins|joined|left|works|said|says|called|who|\(he|\(she)\b|[?.!,]\s+(?:he|she|his|her|they)\b)|"
    r"^\s*(?:from|to|cc|user|name|employee|staff member|leaver|starter)\s*:\s*"
    r"(?-i:([A-Z][a-z'’-]+(?:\s+[A-Z][a-z'’-]+)+))",
    re.I | re.M,
)


def _people_in(text: str) -> frozenset[str]:
    """Name parts the ticket itself uses of a person: "Melissa Hart's account", "Ana Sousa needs…",
    "From: Idris Bello" (two-word names, or a single name with a possessive)."""
    tokens: set[str] = set()
    for match in _PERSON_CONTEXT.finditer(text):
        name = match.group(1) or match.group(2) or ""
        words = [w.lower().strip("'’") for w in name.split()]
        if len(words) >= 2 or (match.group(1) and re.match(r"['’]s", text[match.end(1) : match.end(1) + 2])):
            tokens.update(w for w in words if w not in _GENERIC and w not in _MICROSOFT and w not in _boundary_words())
    return frozenset(tokens)


def _words(text: str) -> list[str]:
    return _TOKEN.findall(text)


def _is_word(token: str) -> bool:
    return token[:1].isalnum() or token[:1] == "_"


def _ends_run(token: str) -> bool:
    """Punctuation, a line break, a stop or function word, or a verb form ("failed", "saying")."""
    lower = token.lower()
    return not _is_word(token) or lower in _boundary_words() or bool(re.fullmatch(r"[a-z]{3,}(?:ing|ed)", lower))


def _run_before(text: str) -> list[str]:
    """The words naming an object right before a credential word, back to a stop word or punctuation."""
    run: list[str] = []
    for token in reversed(_words(text)):
        if _ends_run(token) or len(run) == 4:
            break
        run.insert(0, token)
    return run


def _run_after(text: str) -> list[str]:
    """The words naming an object right after "log into", "locked out of", "password for"…"""
    tokens = _words(text)
    determiners = {"the", "my", "our", "your", "his", "her", "their", "a", "an", "this", "that"}
    while tokens and tokens[0].lower() in determiners:
        tokens.pop(0)
    run: list[str] = []
    for token in tokens:
        if _ends_run(token) or len(run) == 4:
            break
        run.append(token)
    return run


_ACCESS_TO = re.compile(r"\baccess\s+(?:to|for|on|in)\s+", re.I)
_MAILBOX_EVIDENCE = re.compile(
    r"mail|inbox|calendar|diary|diaries|folder|contacts|send[- ]?as|on\s+behalf|delegat|outlook|shared|exchange", re.I
)


def foreign_access(text: str, people: frozenset[str] = frozenset()) -> list[str]:
    """For a mailbox reading: what "access to X" / "X access" names, when X is a kind of system ("the
    practice management system", "the CRM portal"), or, in a ticket that says nothing of a mailbox,
    calendar or mail, a name that is not a person's ("access to Bullhorn")."""
    text = EMAIL.sub(" mail ", text)
    strict = not _MAILBOX_EVIDENCE.search(text)
    people = people | _people_in(text)
    runs = [_run_after(text[m.end() : m.end() + 100]) for m in _ACCESS_TO.finditer(text)]
    runs += [_run_before(text[max(0, m.start() - 100) : m.start()]) for m in re.finditer(r"\baccess\b", text, re.I)]
    found: list[str] = []
    for run in runs:
        name = _object_name(run, people, kinds_only=not strict)
        if name and name not in found:
            found.append(name)
    return found


def _full_name(tokens: list[str]) -> bool:
    """Two or three capitalised plain words ("for Tom Baker"): after "for" more often a person than a
    product. A single word ("for KashFlow") or one with a generic, Microsoft or system word is not."""
    return 2 <= len(tokens) <= 3 and all(
        re.fullmatch(r"[A-Z][a-z'’-]+", t)
        and t.lower() not in _GENERIC
        and t.lower() not in _MICROSOFT
        and t.lower() not in _OTHER_SYSTEM
        for t in tokens
    )


def _names_microsoft(tokens: list[str]) -> bool:
    name = " ".join(tokens)
    words = [p for t in tokens for p in re.split(r"[-./&+]", t.lower()) if p]
    return bool(_MICROSOFT_PHRASE.search(name)) or any(w in _MICROSOFT or w.rstrip("s") in _MICROSOFT for w in words)


def _object_name(tokens: list[str], people: frozenset[str], *, kinds_only: bool = False) -> str | None:
    """The run of words if it names another system, else None. With `kinds_only`, only a word for a kind
    of system ("system", "portal", "CRM") counts, not an unknown name."""
    if not tokens:
        return None
    name = " ".join(tokens)
    if _MICROSOFT_PHRASE.search(name):
        return None
    possessive = [i for i, t in enumerate(tokens) if t.lower().endswith(("'s", "’s", "s'"))]
    if possessive:  # "Simon Farrelly's account" → account; "Tom's Xero login" → Xero
        tokens = tokens[possessive[-1] + 1 :]
        name = " ".join(tokens)
    words = [t.lower().strip(".-&+/'’") for t in tokens]
    if not words or any(_is_person(w, people) for w in words):
        return None  # "the password for Jonah Whitcombe" (jwhitcombe@…)
    unknown = False
    for word in words:
        parts = [p for p in re.split(r"[-./&+]", word) if p] or [word]
        if any(p in _MICROSOFT or p.rstrip("s") in _MICROSOFT for p in parts):
            return None
        for part in parts:
            if part in _OTHER_SYSTEM or part.rstrip("s") in _OTHER_SYSTEM or (not kinds_only and not _plain(part)):
                unknown = True
    return name if unknown else None


def _plain(word: str) -> bool:
    """A generic or function word, a number or a typo of a Microsoft or generic word."""
    if re.fullmatch(r"[\d.,]+|[a-z]", word) or word in _GENERIC or word in _boundary_words():
        return True
    if re.fullmatch(r"[a-z]{2,}(?:ing|ed)", word):
        return True  # a verb or participle ("failed", "archiving", "referenced"), not a name
    if word.endswith("s") and word[:-1] in _GENERIC:
        return True
    return len(word) >= 4 and _looks_like_typo(word, _MICROSOFT | _GENERIC | _boundary_words())


def _is_person(word: str, people: frozenset[str]) -> bool:
    if len(word) < 2 or word in _GENERIC or word in _MICROSOFT:
        return False
    return word in people or any(len(word) >= 4 and len(p) > len(word) and p.endswith(word) for p in people)


def _looks_like_typo(word: str, pool: frozenset[str]) -> bool:
    """A misspelt Microsoft or generic word ("outlok", "pasword") is not a system."""
    near = [k for k in pool if k[:1] == word[:1] and abs(len(k) - len(word)) <= 1 and len(k) >= 4]
    return bool(difflib.get_close_matches(word, near, n=1, cutoff=0.8))


def creates_container(text: str) -> str | None:
    """The words asking for a new Team, channel, group, list, site or mailbox to be created, if any."""
    match = _CREATES_CONTAINER.search(EMAIL.sub(" ", text))
    return re.sub(r"\s+", " ", match.group(0)).strip() if match else None

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

# Words that name a credential or a licence: an unknown word right before one of them is a system.
_CREDENTIAL = (
    r"password|passwort|pwd|passcode|pin|login|log-in|logon|sign-in|signin|credentials|username|user name|"
    r"licen[cs]e|subscription|portal|2fa|mfa|token|account"
)
_SYSTEM_BEFORE = re.compile(rf"\b([a-z][\w.+&-]{{1,30}})\s+(?:app\s+|system\s+|software\s+)?({_CREDENTIAL})\b", re.I)
_SYSTEM_AFTER = re.compile(
    r"\b(?:(?:log|logging|sign|signing)\s*(?:in|on)\s*(?:to|into|on)|locked out of|get into|can't get into|"
    r"password (?:for|on|in)|login (?:for|to))\s+(?:the\s+|my\s+|our\s+)?([a-z][\w.+&-]{1,30})\b",
    re.I,
)
_SYSTEM_LEADS = re.compile(
    r"^\s*([a-z][\w.+&-]{1,30})\s+(?:(?:wants|says|asks|rejects|won't|keeps|forced|needs)\b"
    r"[^.!?\n]{0,60}\b(?:password|login|credentials|locked|sign in)\b|(?:has\s+)?locked\s+(?:me|my)\b)",
    re.M | re.I,
)
# Words that are Microsoft 365 / Entra ID or plain English in that position, whatever the training saw.
_MICROSOFT_OR_GENERIC = frozenset(
    [
        "microsoft",
        "windows",
        "office",
        "o365",
        "m365",
        "365",
        "0",
        "000",
        "o000",
        "m000",
        "outlook",
        "teams",
        "onedrive",
        "sharepoint",
        "entra",
        "azure",
        "ms",
        "msft",
        "exchange",
        "intune",
        "work",
        "email",
        "e-mail",
        "mail",
        "computer",
        "laptop",
        "pc",
        "desktop",
        "network",
        "domain",
        "login",
        "company",
        "business",
        "main",
        "normal",
        "usual",
        "current",
        "old",
        "new",
        "temporary",
        "temp",
        "own",
        "user",
        "staff",
        "online",
        "web",
        "my",
        "the",
        "our",
        "your",
        "his",
        "her",
        "their",
        "this",
        "that",
        "same",
        "one",
        "it",
        "new",
        "default",
        "personal",
        "first",
        "second",
        "admin",
        "sign",
        "up",
        "signin",
        "single",
        "office365",
        "microsoft365",
        "surface",
        "device",
        "phone",
        "mobile",
        "profile",
    ]
)
_NOT_A_SYSTEM = frozenset(
    [
        "a",
        "an",
        "the",
        "my",
        "our",
        "your",
        "his",
        "her",
        "their",
        "its",
        "this",
        "that",
        "these",
        "those",
        "me",
        "i",
        "you",
        "we",
        "they",
        "he",
        "she",
        "it",
        "them",
        "us",
        "all",
        "any",
        "some",
        "no",
        "not",
        "new",
        "old",
        "wrong",
        "right",
        "correct",
        "same",
        "other",
        "another",
        "different",
        "expired",
        "locked",
        "forgotten",
        "forgot",
        "reset",
        "change",
        "changed",
        "changing",
        "temporary",
        "temp",
        "current",
        "previous",
        "last",
        "next",
        "whole",
        "entire",
        "every",
        "each",
        "both",
        "own",
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
        "to",
        "into",
        "and",
        "or",
        "but",
        "please",
        "pls",
        "plz",
        "help",
        "need",
        "needs",
        "my's",
        "can",
        "could",
        "would",
        "will",
        "just",
        "still",
        "also",
        "again",
        "urgent",
        "asap",
    ]
)
# Microsoft 365 / Entra product, plan and app words: a capitalised name made only of words outside this
# list and the generic ones above, in the place of a system, is another vendor's product.
_MICROSOFT_PRODUCT = frozenset(
    [
        "dynamics",
        "power",
        "bi",
        "automate",
        "apps",
        "visio",
        "project",
        "planner",
        "word",
        "excel",
        "powerpoint",
        "onenote",
        "access",
        "publisher",
        "bookings",
        "forms",
        "stream",
        "viva",
        "sway",
        "yammer",
        "copilot",
        "defender",
        "purview",
        "autopilot",
        "authenticator",
        "skype",
        "kiosk",
        "frontline",
        "plan",
        "premium",
        "standard",
        "basic",
        "essentials",
        "enterprise",
        "pro",
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
        "id",
        "365",
        "online",
        "hello",
        "edge",
        "bing",
        "live",
        "hotmail",
        "msn",
        "xbox",
        "remote",
        "desktop",
        "rdp",
        "cloud",
        "pc",
        "store",
        "portal",
        "admin",
        "center",
        "centre",
        "my",
        "account",
        "accounts",
        "security",
        "info",
        "mailbox",
        "calendar",
        "inbox",
        "group",
        "groups",
        "channel",
        "site",
        "sites",
        "drive",
    ]
)
# A capitalised name: Title or UPPER case ("Open Dental", "PDF"), camel case ("iManage", "simPRO") or a
# number after a name ("Sage 50"). Case-sensitive on purpose: capitals are the evidence of a name.
_PROPER = r"(?:[A-Z][\w.+&-]*|[a-z]+[A-Z][\w.+&-]*)"
_PROPER_RUN = rf"{_PROPER}(?:[ \t]+(?:{_PROPER}|\d[\w.+&-]*)){{1,3}}"
_NAMED_BEFORE = re.compile(
    rf"\b(?i:my|our|the|a|an|your|his|her|their)\s+({_PROPER_RUN})(?![\w'’])\s+"
    rf"(?i:(?:app|system|software|account)\s+)?(?i:{_CREDENTIAL})\b"
)
_NAMED_AFTER = re.compile(
    r"\b(?i:(?:log|logging|logged|sign|signing|signed)\s*(?:in|on)\s*(?:to|into|on)|locked\s+out\s+of|"
    rf"get\s+into)\s+(?i:(?:the|my|our)\s+)?({_PROPER_RUN})(?![\w'’])"
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


def unknown_systems(text: str, known: frozenset[str]) -> list[str]:
    """Names in the place of a system ("my Epicor password", "log into Dext") that the model has
    never seen and that are not Microsoft 365 words, nor plausibly typos of a known word."""
    found: list[str] = []
    text = EMAIL.sub(" ", text)
    candidates = [m.group(1) for m in _SYSTEM_BEFORE.finditer(text)]
    candidates += [m.group(1) for m in _SYSTEM_AFTER.finditer(text)]
    candidates += [m.group(1) for m in _SYSTEM_LEADS.finditer(text)]
    for word in candidates:
        folded = re.sub(r"\d", "0", word.lower()).strip(".-&+:")
        parts = [p for p in re.split(r"[-.&+]", folded) if p]
        if (
            len(folded) < 3
            or folded in known
            or (len(parts) > 1 and all(p in known or p in _MICROSOFT_OR_GENERIC for p in parts))
            or folded in _MICROSOFT_OR_GENERIC
            or folded in _NOT_A_SYSTEM
            or folded.endswith("'s")
            or _looks_like_typo(folded, known)
        ):
            continue
        if word not in found:
            found.append(word)
    for name in _named_products(text):
        if name not in found and not any(name.startswith(f"{word} ") or name.endswith(f" {word}") for word in found):
            found.append(name)
    return found


def _named_products(text: str) -> list[str]:
    """Capitalised names of two to four words where a system goes ("log in to Open Dental", "my Nitro
    PDF licence") with no Microsoft or generic word among them. Each word may be known to the model
    ("open", "dental"): the name as a whole is not Microsoft's."""
    names: list[str] = []
    for match in [*_NAMED_BEFORE.finditer(text), *_NAMED_AFTER.finditer(text)]:
        name = re.sub(r"\s+", " ", match.group(1)).strip(".-&+")
        words = [w.lower().strip(".-&+") for w in name.split()]
        exempt = _MICROSOFT_OR_GENERIC | _MICROSOFT_PRODUCT | _NOT_A_SYSTEM
        if any(w in exempt or re.sub(r"\d", "0", w) in _MICROSOFT_OR_GENERIC for w in words):
            continue
        if name not in names:
            names.append(name)
    return names


def creates_container(text: str) -> str | None:
    """The words asking for a new Team, channel, group, list, site or mailbox to be created, if any."""
    match = _CREATES_CONTAINER.search(EMAIL.sub(" ", text))
    return re.sub(r"\s+", " ", match.group(0)).strip() if match else None


def _looks_like_typo(word: str, known: frozenset[str]) -> bool:
    """A misspelt known word ("pasword", "wrk") is not a system. Short words are only checked against
    the generic words: "myob" is a system, not a typo of "mob"."""
    pool = _MICROSOFT_OR_GENERIC if len(word) < 5 else known
    near = [k for k in pool if k[:1] == word[:1] and abs(len(k) - len(word)) <= 2]
    return bool(difflib.get_close_matches(word, near, n=1, cutoff=0.85 if len(word) >= 5 else 0.8))

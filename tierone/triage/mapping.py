"""From how a PSA filed a closed ticket to one of the nine intents, for `tierone learn`.

Default mapping, by keywords in the category names (ConnectWise type / subtype / item, Autotask
ticket category / issue type / sub-issue type, HaloPSA ticket type / category path):

1. the MSP's own mapping first (TIERONE_TRIAGE_CATEGORY_MAP, JSON: {"keyword or path": "intent"});
   the longest matching key wins, so {"Sage": "other"} beats the default "password" keyword;
2. a category naming a non-Microsoft system (application, ERP, VPN, phone...) means `other`:
   "Line of Business Application > Login / Password" is not a Microsoft password;
3. the narrowest category with an identity keyword (password, unlock, MFA, mailbox, group, licence,
   new starter, leaver) gives the intent;
4. a category naming everyday non-identity work (hardware, printer, network...) means `other`;
5. otherwise the technician's resolution note, if it says what was done ("reset the password",
   "unlocked the account"...). Notes written by TierOne itself are never used: it must not learn
   from its own output.
Anything else is left out of training and counted in the report.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass

from psa_integrations.models import ClosedTicket
from tierone.errors import ConfigError
from tierone.triage.schema import INTENTS

_IDENTITY = [
    ("offboarding", re.compile(r"offboard|leaver|leaving|termination|terminated|departure|exit|disable user", re.I)),
    ("onboarding", re.compile(r"onboard|new (user|starter|hire|employee|joiner)|starter|joiner", re.I)),
    ("mfa_reset", re.compile(r"\bmfa\b|\b2fa\b|multi.?factor|two.?factor|authenticator", re.I)),
    ("account_unlock", re.compile(r"unlock|locked|lock.?out", re.I)),
    ("password_reset", re.compile(r"password|\bpwd\b|passwort", re.I)),
    ("mailbox_permission", re.compile(r"mailbox|send.?as|full access|delegat|calendar permission", re.I)),
    ("group_membership", re.compile(r"\bgroups?\b|distribution|\bdl\b|membership", re.I)),
    ("license_change", re.compile(r"licen[cs]|subscription", re.I)),
]
_NON_MICROSOFT = re.compile(
    r"line of business|\blob\b|application|\bapp\b|\berp\b|\bcrm\b|\bvpn\b|phone|voip|telephony|third.?party|"
    r"3rd.?party|vendor|website|door|building",
    re.I,
)
_EVERYDAY = re.compile(
    r"hardware|printer|printing|laptop|desktop|monitor|network|wi-?fi|internet|server|backup|software|install|"
    r"mail delivery|spam|phishing|security incident|procurement|purchase|quote|cctv|av\b|audio|video|general",
    re.I,
)
_RESOLUTION = [
    ("password_reset", re.compile(r"\breset\b.{0,30}\bpassword|password.{0,20}\breset|temporary password", re.I)),
    ("account_unlock", re.compile(r"\bunlocked\b|removed the lock|cleared the lockout", re.I)),
    ("mfa_reset", re.compile(r"(re-?registered|reset|cleared).{0,30}(mfa|authenticator|authentication methods)", re.I)),
    ("mailbox_permission", re.compile(r"(granted|gave|added).{0,40}(full access|send.?as|send on behalf)", re.I)),
    ("group_membership", re.compile(r"(added|removed).{0,40}\b(group|distribution list)\b", re.I)),
    ("license_change", re.compile(r"(assigned|removed|added).{0,40}licen[cs]e", re.I)),
    ("onboarding", re.compile(r"created (the )?(new )?(user|account) for", re.I)),
    ("offboarding", re.compile(r"(disabled|blocked).{0,30}(account|sign-?in)|converted.{0,30}shared", re.I)),
]
_OWN_NOTE = re.compile(r"\[TierOne\b|TierOne (resolved|escalated)", re.I)


@dataclass(frozen=True)
class Mapped:
    intent: str | None
    why: str


class CategoryMap:
    def __init__(self, overrides: dict[str, str] | None = None) -> None:
        overrides = overrides or {}
        wrong = sorted(f"{key} → {value}" for key, value in overrides.items() if value not in INTENTS)
        if wrong:
            raise ConfigError(f"TIERONE_TRIAGE_CATEGORY_MAP maps to intents outside the closed list: {wrong}")
        # Longest key first: the most specific override wins.
        self._overrides = sorted(((k.lower(), v) for k, v in overrides.items()), key=lambda kv: -len(kv[0]))

    @classmethod
    def from_setting(cls, value: str | None) -> CategoryMap:
        if not value:
            return cls()
        try:
            data = json.loads(value)
        except ValueError:
            raise ConfigError("TIERONE_TRIAGE_CATEGORY_MAP is not JSON") from None
        if not isinstance(data, dict) or not all(isinstance(k, str) and isinstance(v, str) for k, v in data.items()):
            raise ConfigError('TIERONE_TRIAGE_CATEGORY_MAP must be a JSON object: {"category keyword": "intent"}')
        return cls(data)

    def map(self, ticket: ClosedTicket) -> Mapped:
        path = " > ".join(ticket.categories)
        lowered = path.lower()
        for key, intent in self._overrides:
            if key in lowered:
                return Mapped(intent, f"mapping setting: '{key}'")
        if _NON_MICROSOFT.search(path):
            return Mapped("other", f"category names another system: '{path}'")
        for category in reversed(ticket.categories):  # narrowest first
            for intent, pattern in _IDENTITY:
                if pattern.search(category):
                    return Mapped(intent, f"category '{category}'")
        if _EVERYDAY.search(path):
            return Mapped("other", f"category '{path}'")
        if ticket.resolution and not _OWN_NOTE.search(ticket.resolution):
            for intent, pattern in _RESOLUTION:
                if pattern.search(ticket.resolution):
                    return Mapped(intent, "resolution note")
        return Mapped(None, f"no mapping for '{path or 'no category'}'")

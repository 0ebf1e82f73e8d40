"""Friendly licence names ↔ SKU part numbers, and what a ticket's licence wording asks for.

People write "E3", "Business Premium" or "upgrade to E5"; Graph speaks skuPartNumbers and skuIds.
Names are resolved against this catalogue (Microsoft's "Product names and service plan
identifiers" table, graph.md §5.4) and then against the tenant's own subscribed SKUs, never
against display names. Two traps the table makes explicit:

- "Business Premium" is SPB; O365_BUSINESS_PREMIUM is Microsoft 365 Business *Standard* (its
  product was called "Office 365 Business Premium" before 2020, so that old name is ambiguous);
- "E3"/"E5"/"F3" exist as both Microsoft 365 and Office 365 products: the tenant's subscriptions
  decide, and when it has both the request is ambiguous and a human chooses."""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Iterable
from dataclasses import dataclass

from identity_integrations.models import Sku
from tierone.errors import PermanentError


@dataclass(frozen=True)
class Product:
    part_number: str
    name: str
    aliases: tuple[str, ...] = ()
    family: str | None = None  # products one upgrades between ("upgrade to E5" swaps within a family)
    rank: int = 0


CATALOG: tuple[Product, ...] = (
    Product("STANDARDPACK", "Office 365 E1", ("office 365 e1", "o365 e1", "e1"), "enterprise", 1),
    Product("ENTERPRISEPACK", "Office 365 E3", ("office 365 e3", "o365 e3", "e3"), "enterprise", 3),
    Product("ENTERPRISEPREMIUM", "Office 365 E5", ("office 365 e5", "o365 e5", "e5"), "enterprise", 5),
    Product("SPE_E3", "Microsoft 365 E3", ("microsoft 365 e3", "m365 e3", "e3"), "enterprise", 3),
    Product("SPE_E5", "Microsoft 365 E5", ("microsoft 365 e5", "m365 e5", "e5"), "enterprise", 5),
    Product(
        "O365_BUSINESS_ESSENTIALS",
        "Microsoft 365 Business Basic",
        ("microsoft 365 business basic", "m365 business basic", "business basic", "office 365 business essentials"),
        "business",
        1,
    ),
    Product(
        "O365_BUSINESS_PREMIUM",
        "Microsoft 365 Business Standard",
        (
            "microsoft 365 business standard",
            "m365 business standard",
            "business standard",
            "office 365 business premium",  # its pre-2020 name: ambiguous with SPB, see below
        ),
        "business",
        2,
    ),
    Product(
        "SPB",
        "Microsoft 365 Business Premium",
        (
            "microsoft 365 business premium",
            "m365 business premium",
            "business premium",
            "office 365 business premium",  # what people may still mean by it
        ),
        "business",
        3,
    ),
    Product("DESKLESSPACK", "Office 365 F3", ("office 365 f3", "o365 f3", "f3"), "frontline", 1),
    Product("SPE_F1", "Microsoft 365 F3", ("microsoft 365 f3", "m365 f3", "f3"), "frontline", 1),
    Product(
        "EXCHANGESTANDARD",
        "Exchange Online (Plan 1)",
        ("exchange online plan 1", "exchange online p1", "exchange plan 1", "exo p1"),
        "exchange",
        1,
    ),
    Product(
        "EXCHANGEENTERPRISE",
        "Exchange Online (Plan 2)",
        ("exchange online plan 2", "exchange online p2", "exchange plan 2", "exo p2"),
        "exchange",
        2,
    ),
    Product("O365_BUSINESS", "Microsoft 365 Apps for business", ("m365 apps for business", "apps for business")),
    Product(
        "OFFICESUBSCRIPTION",
        "Microsoft 365 Apps for enterprise",
        ("m365 apps for enterprise", "apps for enterprise"),
    ),
    Product("VISIOCLIENT", "Visio Plan 2", ("visio plan 2", "visio")),
    Product("PROJECTPREMIUM", "Project Online Premium", ("project online premium", "project premium")),
    Product("POWER_BI_PRO", "Power BI Pro", ("power bi pro",)),
)
BY_PART_NUMBER = {product.part_number: product for product in CATALOG}


def _normalise(text: str) -> str:
    text = unicodedata.normalize("NFKC", text).lower()
    text = re.sub(r"[()\[\]\"'’.,:;!?]", " ", text)
    text = re.sub(r"\bmicrosoft\s*365\b|\bms\s*365\b", "microsoft 365", text)
    text = re.sub(r"\boffice\s*365\b", "office 365", text)
    text = re.sub(r"\blicen[cs]es?\b|\bsubscriptions?\b|\bplans?\b(?!\s*\d)", " ", text)
    return re.sub(r"\s+", " ", text).strip()


def _contains(text: str, alias: str) -> bool:
    return re.search(rf"(?<![\w-]){re.escape(alias)}(?![\w-])", text) is not None


def products_named(text: str) -> list[Product]:
    """The catalogue products `text` names, by its longest matching alias (or an exact part number)."""
    wanted = text.strip()
    exact = BY_PART_NUMBER.get(wanted.upper())
    if exact is not None:
        return [exact]
    normalised = _normalise(wanted)
    best, found = 0, []
    for product in CATALOG:
        length = max((len(a) for a in product.aliases if _contains(normalised, a)), default=0)
        if length > best:
            best, found = length, [product]
        elif length and length == best:
            found.append(product)
    return found


def product_name(part_number: str) -> str:
    product = BY_PART_NUMBER.get(part_number)
    return f"{product.name} ({part_number})" if product else part_number


def resolve(text: str, skus: Iterable[Sku]) -> Sku:
    """The tenant's one subscription `text` names; PermanentError with the reason otherwise."""
    candidates = products_named(text)
    if not candidates:
        raise PermanentError(f"'{text}' is not a licence product TierOne knows")
    by_part = {sku.part_number.upper(): sku for sku in skus}
    owned = [by_part[p.part_number] for p in candidates if p.part_number in by_part]
    if not owned:
        names = " or ".join(product_name(p.part_number) for p in candidates)
        raise PermanentError(f"the tenant has no subscription for {names}")
    if len(owned) > 1:
        names = " and ".join(product_name(s.part_number) for s in owned)
        raise PermanentError(f"'{text}' is ambiguous: the tenant has both {names}")
    return owned[0]


@dataclass(frozen=True)
class LicenceWording:
    """What the ticket's words ask for: add one product, remove one, or replace one by another."""

    add: str | None = None
    remove: str | None = None
    within_family: bool = False  # "upgrade to E5": replace whatever the user has of E5's family


_SWAP_PATTERNS = (
    re.compile(r"\b(?:swap|switch|exchange|trade)\s+(?:out\s+)?(?P<old>.+?)\s+(?:for|to|with)\s+(?P<new>.+)", re.I),
    re.compile(r"\breplace\s+(?P<old>.+?)\s+(?:with|by)\s+(?P<new>.+)", re.I),
    re.compile(
        r"\b(?:upgrade|downgrade|move|change|migrate|switch|go)?\s*(?:\w+\s+)?from\s+(?P<old>.+?)\s+to\s+(?P<new>.+)",
        re.I,
    ),
    re.compile(r"^(?P<old>.+?)\s*(?:->|→|=>)\s*(?P<new>.+)$"),
)
_FAMILY_PATTERN = re.compile(r"\b(?:upgrade|downgrade|move|change|migrate|switch)\b.*?\bto\s+(?P<new>.+)", re.I)


def parse_wording(text: str, remove: bool = False) -> LicenceWording:
    text = text.strip()
    for pattern in _SWAP_PATTERNS:
        match = pattern.search(text)
        if match:
            return LicenceWording(add=match.group("new").strip(), remove=match.group("old").strip())
    match = _FAMILY_PATTERN.search(text)
    if match:
        return LicenceWording(add=match.group("new").strip(), within_family=True)
    return LicenceWording(remove=text) if remove else LicenceWording(add=text)


def same_family(sku: Sku, other: Sku) -> bool:
    a, b = BY_PART_NUMBER.get(sku.part_number), BY_PART_NUMBER.get(other.part_number)
    return a is not None and b is not None and a.family is not None and a.family == b.family

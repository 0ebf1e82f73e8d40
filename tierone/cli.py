"""`tierone` — the operator's command line. Reads the same app settings as the function app.

tierone psa register connectwise|autotask|halopsa --url https://<app>/api/webhooks/<psa>?code=<key>
tierone tenants map --psa connectwise --company 250 --tenant <entra tenant id> [--name "Contoso"]
tierone tenants show [--psa connectwise]
tierone tenants import --psa halopsa
tierone tenants check <tenant id>
tierone triage [--eval] tickets.jsonl
tierone learn [--psa halopsa] [--days 365] [--dry-run]
tierone policy show|history [--tenant <tenant id>]
tierone policy set --tenant <tenant id|*> --intent mfa_reset --mode approval [--hours mon-fri 08:00-18:00 ...]
tierone audit verify [--tenant <tenant id>]
tierone audit export --tenant <tenant id> --since 2025-01-01 [--format jsonl|csv]
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import uuid
from collections.abc import Sequence

from psa_integrations.models import PsaKind
from tierone import governance_cli
from tierone.errors import TierOneError
from tierone.settings import Settings


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="tierone", description=__doc__.split("\n\n")[0])
    commands = parser.add_subparsers(dest="command", required=True)

    psa = commands.add_parser("psa", help="PSA integration tasks").add_subparsers(dest="action", required=True)
    register = psa.add_parser("register", help="create or update TierOne's webhook in the PSA (idempotent)")
    register.add_argument("psa", choices=[k.value for k in PsaKind])
    register.add_argument("--url", required=True, help="the app's webhook URL for this PSA, with ?code=<key>")

    tenants = commands.add_parser("tenants", help="PSA company → Microsoft tenant mapping").add_subparsers(
        dest="action", required=True
    )
    mapping = tenants.add_parser("map", help="map one PSA company to its Entra tenant")
    mapping.add_argument("--psa", required=True, choices=[k.value for k in PsaKind])
    mapping.add_argument("--company", required=True, help="the PSA's company/client id")
    mapping.add_argument("--tenant", required=True, help="the Entra tenant id (GUID)")
    mapping.add_argument("--name", default="", help="customer name, for notes and reports")
    show = tenants.add_parser("show", help="list the mappings")
    show.add_argument("--psa", choices=[k.value for k in PsaKind])
    imported = tenants.add_parser("import", help="import the PSA's own mapping (HaloPSA's Azure AD connection)")
    imported.add_argument("--psa", required=True, choices=[k.value for k in PsaKind])
    check = tenants.add_parser("check", help="what a customer tenant has not granted TierOne yet, per action")
    check.add_argument("tenant", help="the Entra tenant id")

    triage = commands.add_parser("triage", help="classify tickets from a JSON-lines file (docs/triage.md)")
    triage.add_argument("file", help="JSON lines with id, subject, body (and intent, with --eval); - for stdin")
    triage.add_argument("--eval", action="store_true", help="score against each line's intent instead")
    triage.add_argument("--model", help="a model artifact file instead of the shipped model")
    learn = commands.add_parser("learn", help="train this MSP's triage model from its closed tickets")
    learn.add_argument("--psa", choices=[k.value for k in PsaKind], help="one PSA (default: every configured one)")
    learn.add_argument("--days", type=int, default=365, help="closed in the last N days (default 365)")
    learn.add_argument("--limit", type=int, default=2000, help="at most N tickets per PSA (default 2000)")
    learn.add_argument("--dry-run", action="store_true", help="train and report, store nothing")
    governance_cli.add_parsers(commands)  # policy show|set|history, audit verify|export
    return parser


async def _register(settings: Settings, psa: PsaKind, url: str) -> int:
    from psa_integrations.registry import registrar

    result = await registrar(psa, settings).register(url)
    print(f"{psa.value}: {result.action} — {result.detail}")
    for step in result.steps:
        print(f"  - {step}")
    return 0


async def _map(settings: Settings, psa: PsaKind, company: str, tenant: str, name: str) -> int:
    from tierone.storage import Storage
    from tierone.tenants import TenantMap, TenantMapping

    try:
        tenant_id = str(uuid.UUID(tenant))
    except ValueError:
        print(f"error: {tenant!r} is not a tenant id (a GUID)", file=sys.stderr)
        return 2
    await TenantMap(Storage(settings).tenants).put(
        TenantMapping(psa=psa, company_id=company, tenant_id=tenant_id, customer_name=name)
    )
    print(f"{psa.value} company {company} → tenant {tenant_id}")
    return 0


async def _show(settings: Settings, psa: PsaKind | None) -> int:
    from tierone.storage import Storage
    from tierone.tenants import TenantMap

    for mapping in await TenantMap(Storage(settings).tenants).all(psa):
        print(f"{mapping.psa.value}\t{mapping.company_id}\t{mapping.tenant_id}\t{mapping.customer_name}")
    return 0


def _check(settings: Settings, tenant: str) -> int:
    from identity_integrations.credentials import TenantCredentials
    from identity_integrations.permissions import NEEDS, missing_by_action, token_roles

    credential = TenantCredentials(settings).for_tenant(tenant)
    try:
        granted = token_roles(credential.get_token(settings.graph_scope).token)
    except Exception as exc:  # the admin needs the reason, whatever azure-identity raised
        print(f"error: cannot get a Graph token for tenant {tenant}: {str(exc).splitlines()[0]}", file=sys.stderr)
        print("Has the tenant's admin consented to the app? See docs/deploy.md.", file=sys.stderr)
        return 2
    missing = missing_by_action(granted)
    ready = 0
    for action, needs in NEEDS.items():
        lacking = missing[action]
        ready += not lacking
        status = "ready" if not lacking else "missing " + ", ".join(lacking)
        role = f"; needs the {needs.entra_role} role" if needs.entra_role else ""
        exchange = (
            f"; Exchange: {needs.exchange_permission} + {needs.exchange_role}" if needs.exchange_permission else ""
        )
        print(f"{action:<20} {status}{role}{exchange}")
    print(
        f"{ready} of {len(NEEDS)} actions have every Graph permission they need. Directory roles are not in the "
        "token: confirm them in the Entra admin center (Roles and administrators)."
    )
    return 0 if ready == len(NEEDS) else 1


async def _import(settings: Settings, psa: PsaKind) -> int:
    from psa_integrations.registry import psa_client
    from tierone.storage import Storage
    from tierone.tenants import TenantMap, TenantMapping

    client = psa_client(psa, settings)
    try:
        lister = getattr(client, "list_tenant_mappings", None)
        if lister is None:
            print(
                f"{psa.value} keeps no tenant mapping of its own: map companies with `tierone tenants map`, or put"
                " the tenant id in the company field TierOne reads at ticket time (see the README)."
            )
            return 1
        rows = await lister()
    finally:
        await client.aclose()
    tenants = TenantMap(Storage(settings).tenants)
    for company_id, name, tenant_id in rows:
        await tenants.put(TenantMapping(psa=psa, company_id=company_id, tenant_id=tenant_id, customer_name=name))
        print(f"{psa.value} company {company_id} ({name}) → tenant {tenant_id}")
    print(f"{len(rows)} mapping(s) imported")
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    try:
        if args.command in ("triage", "learn"):
            from tierone.triage import cli as triage_cli

            if args.command == "triage":
                return triage_cli.triage_file(args.file, evaluate_labels=args.eval, model_path=args.model)
            return triage_cli.learn_command(args.psa, args.days, args.limit, args.dry_run)
        settings = Settings.from_env()
        if args.command in ("policy", "audit"):
            return governance_cli.run(settings, args)
        if args.command == "psa":
            return asyncio.run(_register(settings, PsaKind(args.psa), args.url))
        if args.action == "map":
            return asyncio.run(_map(settings, PsaKind(args.psa), args.company, args.tenant, args.name))
        if args.action == "check":
            return _check(settings, args.tenant)
        if args.action == "show":
            return asyncio.run(_show(settings, PsaKind(args.psa) if args.psa else None))
        return asyncio.run(_import(settings, PsaKind(args.psa)))
    except TierOneError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())

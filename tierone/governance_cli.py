"""`tierone policy …` and `tierone audit …`: per-client policy edits and audit-chain reviews.

Kept out of tierone/cli.py so that module stays a thin dispatcher; cli.py adds these parsers and
hands the parsed arguments to `run`."""

from __future__ import annotations

import argparse
import asyncio
import csv
import getpass
import json
import sys
from datetime import UTC, datetime
from typing import Any

from tierone.client_policy import DEFAULT_SCOPE, Approver, BusinessHours, ClientPolicy, Mode
from tierone.policy import AUTONOMOUS_INTENTS
from tierone.settings import Settings

# Policy changes to the MSP-wide default are audited in the MSP's own partition (as in pipeline.py).
MSP_AUDIT_PARTITION = "msp"

_MODES = [m.value for m in Mode]
_INTENTS = sorted(AUTONOMOUS_INTENTS)


def add_parsers(commands: Any) -> None:
    """Register the `policy` and `audit` subcommands on the top-level subparsers."""
    policy = commands.add_parser("policy", help="per-client policy (docs/policy.md)").add_subparsers(
        dest="action", required=True
    )
    show = policy.add_parser("show", help="the policy in force, as JSON, with its version")
    show.add_argument("--tenant", default=DEFAULT_SCOPE, help="Entra tenant id (default: the MSP-wide default)")
    history = policy.add_parser("history", help="every stored version of a policy")
    history.add_argument("--tenant", default=DEFAULT_SCOPE)
    edit = policy.add_parser("set", help="change a policy; each call stores one new version")
    edit.add_argument("--tenant", required=True, help=f"Entra tenant id, or {DEFAULT_SCOPE!r} for the MSP default")
    edit.add_argument("--intent", choices=_INTENTS)
    edit.add_argument("--mode", choices=_MODES, help="with --intent")
    edit.add_argument("--after-hours", choices=_MODES, help="the strictest mode allowed outside business hours")
    edit.add_argument("--hours", nargs=2, metavar=("DAYS", "HH:MM-HH:MM"), help="e.g. mon-fri 08:00-18:00")
    edit.add_argument("--tz", help="IANA time zone, e.g. Europe/London")
    edit.add_argument("--vip", action="append", default=[], metavar="UPN")
    edit.add_argument("--remove-vip", action="append", default=[], metavar="UPN")
    edit.add_argument("--break-glass", action="append", default=[], metavar="UPN")
    edit.add_argument("--remove-break-glass", action="append", default=[], metavar="UPN")
    edit.add_argument("--authorise", nargs=2, action="append", default=[], metavar=("INTENT", "UPN"))
    edit.add_argument("--revoke", nargs=2, action="append", default=[], metavar=("INTENT", "UPN"))
    edit.add_argument("--approver", nargs="+", action="append", default=[], metavar="UPN [SLACK_ID [SLACK_TEAM_ID]]")
    edit.add_argument("--remove-approver", action="append", default=[], metavar="UPN")
    edit.add_argument(
        "--confirm-credentials",
        choices=["on", "off"],
        help="confirm password and MFA resets out of band before acting (default on)",
    )
    edit.add_argument(
        "--by", default=None, help="who makes the change (default: the operating-system user running the CLI)"
    )

    audit = commands.add_parser("audit", help="the hash-chained audit trail").add_subparsers(
        dest="action", required=True
    )
    verify = audit.add_parser("verify", help="check every chain (or one tenant's); exit 1 when one is broken")
    verify.add_argument("--tenant")
    export = audit.add_parser("export", help="one tenant's records since a date, to stdout")
    export.add_argument("--tenant", required=True)
    export.add_argument("--since", required=True, help="YYYY-MM-DD (UTC)")
    export.add_argument("--format", choices=["jsonl", "csv"], default="jsonl")


def _edit(args: argparse.Namespace) -> tuple[Any, list[str]]:
    """A function applying the requested edits to a policy, and a description of them (for history and audit).
    Validation errors surface before anything is stored."""
    notes: list[str] = []
    if (args.intent is None) != (args.mode is None):
        raise ValueError("--intent and --mode go together")
    hours = BusinessHours.parse(*args.hours) if args.hours else None
    for intent, _ in [*args.authorise, *args.revoke]:
        if intent not in AUTONOMOUS_INTENTS:
            raise ValueError(f"unknown intent {intent!r}; one of {', '.join(_INTENTS)}")
    approvers = []
    for values in args.approver:
        if len(values) > 3:
            raise ValueError("--approver takes a UPN or object id and, optionally, a Slack user id and team id")
        approvers.append(
            Approver(
                id=values[0].lower(),
                slack_id=values[1] if len(values) >= 2 else None,
                slack_team_id=values[2] if len(values) == 3 else None,
            )
        )

    if args.intent:
        notes.append(f"{args.intent}={args.mode}")
    if args.after_hours:
        notes.append(f"after_hours={args.after_hours}")
    if hours:
        notes.append(f"hours={' '.join(args.hours)}")
    if args.tz:
        notes.append(f"time_zone={args.tz}")
    notes += [f"+vip {u}" for u in args.vip] + [f"-vip {u}" for u in args.remove_vip]
    notes += [f"+break-glass {u}" for u in args.break_glass] + [f"-break-glass {u}" for u in args.remove_break_glass]
    notes += [f"+authorised {i} {u}" for i, u in args.authorise] + [f"-authorised {i} {u}" for i, u in args.revoke]
    notes += [f"+approver {a.id}" for a in approvers] + [f"-approver {u}" for u in args.remove_approver]
    if args.confirm_credentials:
        notes.append(f"confirm_credentials={args.confirm_credentials}")

    def change(policy: ClientPolicy) -> ClientPolicy:
        data = policy.model_dump()
        if args.intent:
            data["modes"][args.intent] = args.mode
        if args.after_hours:
            data["after_hours"] = args.after_hours
        if hours:
            data["business_hours"] = hours.model_dump()
        if args.tz:
            data["time_zone"] = args.tz
        drop = {u.lower() for u in args.remove_vip}
        data["vip_upns"] = [u for u in data["vip_upns"] + args.vip if u.lower() not in drop]
        drop = {u.lower() for u in args.remove_break_glass}
        data["break_glass_upns"] = [u for u in data["break_glass_upns"] + args.break_glass if u.lower() not in drop]
        contacts: dict[str, list[str]] = data["authorised_contacts"]
        for intent, who in args.authorise:
            contacts.setdefault(intent, []).append(who)
        for intent, who in args.revoke:
            contacts[intent] = [c for c in contacts.get(intent, []) if c.lower() != who.lower()]
        drop = {u.lower() for u in args.remove_approver} | {a.id for a in approvers}  # re-adding replaces
        data["approvers"] = [a for a in data["approvers"] if a["id"].lower() not in drop]
        data["approvers"] += [a.model_dump() for a in approvers]
        if args.confirm_credentials:
            data["confirm_credentials"] = args.confirm_credentials == "on"
        return ClientPolicy.model_validate(data)

    return change, notes


async def _policy(settings: Settings, args: argparse.Namespace) -> int:
    from tierone.audit import AuditEvent, AuditLog
    from tierone.client_policy import PolicyStore
    from tierone.storage import POLICIES, Storage, Table

    storage = Storage(settings)
    store = PolicyStore(Table(storage.account, POLICIES))
    if args.action == "show":
        resolved = await store.resolve(args.tenant)
        out = {
            "tenant": args.tenant,
            "scope": resolved.scope,
            "version": resolved.version,
            "policy": resolved.policy.model_dump(mode="json"),
        }
        print(json.dumps(out, indent=2))
        return 0
    if args.action == "history":
        for v in await store.history(args.tenant):
            print(
                json.dumps(
                    {"version": v.version, "set_at": v.set_at.isoformat(), "set_by": v.set_by, "change": v.change}
                )
            )
        return 0

    try:
        change, notes = _edit(args)
        ClientPolicy.model_validate(change(ClientPolicy()).model_dump())  # fail fast on invalid values
    except ValueError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    if not notes:
        print("error: nothing to change (see `tierone policy set --help`)", file=sys.stderr)
        return 2
    by = args.by or getpass.getuser()
    note = "; ".join(notes)
    version = await store.set(args.tenant, change, by=by, note=note)
    # The change itself is audited in the tenant's chain (who, what, which version).
    partition = MSP_AUDIT_PARTITION if args.tenant == DEFAULT_SCOPE else args.tenant
    await AuditLog(storage.audit).append(
        partition,
        f"policy|{args.tenant}|{version}",
        AuditEvent(
            event_type="policy_changed",
            ticket=f"policy:{args.tenant}",
            actor=by,
            action="policy_set",
            outcome=f"version {version}",
            evidence={"tenant": args.tenant, "version": version, "change": note},
        ),
    )
    print(f"{args.tenant}: policy version {version} ({note})")
    return 0


async def _audit(settings: Settings, args: argparse.Namespace) -> int:
    from tierone.audit import EXPORT_FIELDS, AuditLog
    from tierone.storage import Storage

    log = AuditLog(Storage(settings).audit)
    if args.action == "verify":
        tenants = [args.tenant] if args.tenant else await log.partitions()
        broken = 0
        for tenant in tenants:
            problems = await log.verify(tenant)
            broken += bool(problems)
            print(f"{tenant}: {'intact' if not problems else 'BROKEN'} ({len(await log.records(tenant))} records)")
            for problem in problems:
                print(f"  - {problem}")
        print(f"{len(tenants)} chain(s) checked, {broken} broken")
        return 1 if broken else 0

    try:
        since = datetime.strptime(args.since, "%Y-%m-%d").replace(tzinfo=UTC)
    except ValueError:
        print(f"error: --since {args.since!r} is not YYYY-MM-DD", file=sys.stderr)
        return 2
    rows = await log.export(args.tenant, since)
    if args.format == "jsonl":
        for row in rows:
            print(json.dumps(row, default=str))
    else:
        writer = csv.DictWriter(sys.stdout, fieldnames=["tenant", *EXPORT_FIELDS], lineterminator="\n")
        writer.writeheader()
        writer.writerows(rows)
    return 0


def run(settings: Settings, args: argparse.Namespace) -> int:
    if args.command == "policy":
        return asyncio.run(_policy(settings, args))
    return asyncio.run(_audit(settings, args))

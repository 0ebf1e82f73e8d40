"""checkov's offline policy scan of infra/, judged by its JSON report rather than its exit code.

checkov exits 0 on a file it cannot parse and silently drops what its parser does not understand
(azure.md §4.1), so the tests read the summary: no parsing error, enough resources scanned, and
every failed check accepted, with a reason, in infra/checkov-skips.toml — which in turn may not
keep entries for checks that pass now. checkov lives in its own venv (.venv/tools, `make install`):
its pins conflict with pytest's."""

from __future__ import annotations

import json
import os
import re
import subprocess
import tomllib
from pathlib import Path
from typing import Any

import pytest

from tests.infra import INFRA, REPO, SKIPS_FILE

CHECKOV = Path(os.environ.get("TIERONE_CHECKOV", REPO / ".venv" / "tools" / "bin" / "checkov"))

# With fewer checks evaluated than this, checkov has lost files or resources: fail, don't pass.
MIN_CHECKS_EVALUATED = 60

# Files whose resources checkov must have evaluated (the rest hold only types it has no checks for).
MUST_BE_SCANNED = {
    "main.bicep",
    "modules/functionApp.bicep",
    "modules/plan.bicep",
    "modules/storage.bicep",
    "modules/keyVault.bicep",
    "modules/appSettings.bicep",
    "modules/authentication.bicep",
}

# Protections the template relies on; a change that makes one of them fail is a regression.
MUST_PASS = {
    ("CKV_AZURE_3", "modules/storage.bicep"),  # HTTPS-only storage
    ("CKV_AZURE_44", "modules/storage.bicep"),  # TLS 1.2 storage
    ("CKV_AZURE_34", "modules/functionApp.bicep"),  # deployment container not public
    ("CKV_AZURE_42", "modules/keyVault.bicep"),  # vault recoverable
    ("CKV_AZURE_110", "modules/keyVault.bicep"),  # purge protection
    ("CKV_AZURE_70", "modules/functionApp.bicep"),  # HTTPS only
    ("CKV_AZURE_78", "modules/functionApp.bicep"),  # FTP(S) disabled
    ("CKV_AZURE_145", "modules/functionApp.bicep"),  # TLS 1.2 function app
    ("CKV_AZURE_16", "modules/functionApp.bicep"),  # managed identity
    ("CKV_AZURE_131", "main.bicep"),  # no default value on @secure() parameters
}


def _relative(check: dict[str, Any]) -> str:
    return check["file_path"].lstrip("/")


def _finding(check: dict[str, Any]) -> tuple[str, str]:
    return check["check_id"], f"{_relative(check)}:{check['resource']}"


@pytest.fixture(scope="module")
def skips() -> dict[str, Any]:
    return tomllib.loads(SKIPS_FILE.read_text())


@pytest.fixture(scope="module")
def report(skips: dict[str, Any]) -> dict[str, Any]:
    """checkov's JSON report for infra/, run once for this module."""
    if not CHECKOV.exists():
        pytest.fail(f"{CHECKOV} is missing: `make install` creates it (infra/requirements-checkov.txt)")
    command = [str(CHECKOV), "-d", "infra", "--framework", "bicep", "--compact", "--skip-download", "-o", "json"]
    for entry in skips["not_scanned"]:
        command += ["--skip-path", re.escape(f"infra/{entry['path']}")]
    result = subprocess.run(command, cwd=REPO, capture_output=True, text=True, timeout=300, check=False)  # noqa: S603
    assert result.returncode in (0, 1), result.stderr[-2000:]  # 1 = some check failed
    parsed = json.loads(result.stdout)
    reports = parsed if isinstance(parsed, list) else [parsed]
    [bicep] = [r for r in reports if r["check_type"] == "bicep"]
    return bicep


def test_checkov_parsed_every_file_it_read(report):
    assert report["summary"]["parsing_errors"] == 0, report["results"].get("parsing_errors")


def test_checkov_actually_evaluated_the_templates(report):
    results = report["results"]
    summary = report["summary"]
    assert summary["passed"] + summary["failed"] >= MIN_CHECKS_EVALUATED, summary
    scanned = {_relative(c) for c in results["passed_checks"] + results["failed_checks"]}
    assert scanned >= MUST_BE_SCANNED


def test_every_failed_check_is_accepted_with_a_reason(report, skips):
    accepted = {(entry["check"], resource) for entry in skips["skip"] for resource in entry["resources"]}
    unexplained = sorted(
        f"{check_id} {resource}: {c['check_name']}"
        for c in report["results"]["failed_checks"]
        for check_id, resource in [_finding(c)]
        if (check_id, resource) not in accepted
    )
    assert unexplained == []


def test_every_accepted_failure_still_fails(report, skips):
    failing = {_finding(c) for c in report["results"]["failed_checks"]}
    stale = sorted(
        f"{entry['check']} {resource}"
        for entry in skips["skip"]
        for resource in entry["resources"]
        if (entry["check"], resource) not in failing
    )
    assert stale == [], "remove these from infra/checkov-skips.toml: they pass now"


def test_every_skip_and_unscanned_file_gives_a_reason(skips):
    for entry in skips["skip"] + skips["not_scanned"]:
        assert len(entry["reason"].split()) >= 8, entry
    checks = [entry["check"] for entry in skips["skip"]]
    assert len(checks) == len(set(checks)), "one entry per check"


def test_only_files_checkovs_parser_cannot_read_are_left_out(skips):
    # Only the Graph extension file: pycep-parser 0.5.1 (checkov's) has no `extension` statement.
    not_scanned = {entry["path"] for entry in skips["not_scanned"]}
    with_extensions = {
        str(path.relative_to(INFRA))
        for path in INFRA.rglob("*.bicep")
        if re.search(r"^extension\s", path.read_text(), re.MULTILINE)
    }
    assert not_scanned == with_extensions


def test_the_protections_the_template_relies_on_pass(report):
    passed = {(c["check_id"], _relative(c)) for c in report["results"]["passed_checks"]}
    assert MUST_PASS - passed == set()

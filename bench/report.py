"""Write the run's figures into docs/benchmarks.md, between markers, leaving the prose alone.

A self-contained benchmark (e.g. the playbooks) is a *section*: its tables and observations sit
between their own markers inside the results, so `python -m bench --only <section>` can rewrite that
section alone and leave the rest of the last full run in place."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path

from bench.common import REPO_ROOT, Machine, Table

DOC = REPO_ROOT / "docs" / "benchmarks.md"
START = "<!-- bench:results:start (written by `make bench`; edits between these markers are overwritten) -->"
END = "<!-- bench:results:end -->"

_SKELETON = f"""# Benchmarks

`make bench` (`python -m bench`) measures TierOne on the local sandbox and rewrites the results
section below.

## Results

{START}
{END}
"""


Section = tuple[Sequence[Table], Sequence[str]]  # a section's tables and observations


def _section_markers(key: str) -> tuple[str, str]:
    return f"<!-- bench:{key}:start -->", f"<!-- bench:{key}:end -->"


def section_markdown(key: str, tables: Sequence[Table], findings: Sequence[str], stamp: str = "") -> str:
    start, end = _section_markers(key)
    parts = [stamp] if stamp else []
    parts += [t.markdown() for t in tables]
    if findings:
        parts.append(f"**Observations ({key})**\n\n" + "\n".join(f"- {f}" for f in findings))
    return f"{start}\n" + "\n\n".join(parts) + f"\n{end}"


def results_markdown(
    machine: Machine, tables: Sequence[Table], findings: Sequence[str], sections: Mapping[str, Section] | None = None
) -> str:
    parts = ["\n".join(f"- {line}" for line in machine.lines())]
    parts += [t.markdown() for t in tables]
    if findings:
        parts.append("**Observations from this run**\n\n" + "\n".join(f"- {f}" for f in findings))
    parts += [section_markdown(key, *section) for key, section in (sections or {}).items()]
    return "\n\n".join(parts)


def _split(text: str) -> tuple[str, str, str]:
    """(everything up to and including START, the results, END and everything after it)."""
    if START not in text or END not in text:
        text = text.rstrip("\n") + f"\n\n## Results\n\n{START}\n{END}\n"
    head, rest = text.split(START, 1)
    body, tail = rest.split(END, 1)
    return head + START, body, END + tail


def write(
    machine: Machine,
    tables: Sequence[Table],
    findings: Sequence[str],
    sections: Mapping[str, Section] | None = None,
    path: Path = DOC,
) -> Path:
    head, _, tail = _split(path.read_text(encoding="utf-8") if path.exists() else _SKELETON)
    body = results_markdown(machine, tables, findings, sections)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(f"{head}\n{body}\n{tail}", encoding="utf-8")
    return path


def write_section(
    machine: Machine, key: str, tables: Sequence[Table], findings: Sequence[str], path: Path = DOC
) -> Path:
    """Rewrite one section of the results (added at their end if absent), leaving the rest as it is."""
    head, body, tail = _split(path.read_text(encoding="utf-8") if path.exists() else _SKELETON)
    stamp = (
        f"*Measured on its own (`python -m bench --only {key}`): {machine.date}, commit {machine.commit}, "
        f"{machine.cpu_model}, nproc = {machine.nproc}, load {machine.load}.*"
    )
    section = section_markdown(key, tables, findings, stamp)
    start, end = _section_markers(key)
    if start in body and end in body:
        before, rest = body.split(start, 1)
        _, after = rest.split(end, 1)
        body = f"{before}{section}{after}"
    else:
        body = body.rstrip("\n") + f"\n\n{section}\n"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(f"{head}{body}{tail}", encoding="utf-8")
    return path

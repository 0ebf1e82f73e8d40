"""Write the run's figures into docs/benchmarks.md, between markers, leaving the prose alone."""

from __future__ import annotations

from collections.abc import Sequence
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


def results_markdown(machine: Machine, tables: Sequence[Table], findings: Sequence[str]) -> str:
    parts = ["\n".join(f"- {line}" for line in machine.lines())]
    parts += [t.markdown() for t in tables]
    if findings:
        parts.append("**Observations from this run**\n\n" + "\n".join(f"- {f}" for f in findings))
    return "\n\n".join(parts)


def write(machine: Machine, tables: Sequence[Table], findings: Sequence[str], path: Path = DOC) -> Path:
    text = path.read_text(encoding="utf-8") if path.exists() else _SKELETON
    if START not in text or END not in text:
        text = text.rstrip("\n") + f"\n\n## Results\n\n{START}\n{END}\n"
    head, rest = text.split(START, 1)
    _, tail = rest.split(END, 1)
    body = results_markdown(machine, tables, findings)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(f"{head}{START}\n{body}\n{END}{tail}", encoding="utf-8")
    return path

"""Cold import of `function_app` in fresh interpreters: time, peak RSS, and no msgraph.

What the Functions worker does at a cold start before it can index the app: import the module.
The webhook path must stay light, so Microsoft Graph's SDK must not be loaded by that import."""

from __future__ import annotations

import json
import os
import re
import statistics
import subprocess
import sys
import time
from dataclasses import dataclass

from bench.common import REPO_ROOT, BenchError, Table, ms, progress

# Modules that must not be loaded by `import function_app` (the webhook path never needs them).
FORBIDDEN = ("msgraph", "kiota_abstractions", "kiota_http")
# Loaded or not, worth knowing: what the import drags in.
NOTABLE = ("pydantic", "httpx", "azure.data.tables", "azure.storage.queue", "azure.identity", "werkzeug")

# Peak RSS: VmHWM of this process's address space where /proc has it. ru_maxrss is reported too,
# but Linux carries it across execve, so a child of a big parent reports the parent's peak.
_CHILD = r"""
import json, resource, sys, time

def hwm_kb():
    try:
        with open("/proc/self/status") as status:
            for line in status:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1])
    except OSError:
        pass
    return None

before = hwm_kb()
start = time.perf_counter()
import function_app
elapsed = time.perf_counter() - start
print(json.dumps({
    "seconds": elapsed,
    "hwm_before_kb": before,
    "hwm_peak_kb": hwm_kb(),
    "ru_maxrss_kb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss,
    "modules": sorted(sys.modules),
}))
"""

_IMPORTTIME = re.compile(r"^import time:\s+(\d+) \|\s+(\d+) \|( *)(\S+)$")


@dataclass
class ColdImport:
    seconds: list[float]
    process_seconds: list[float]
    rss_peak_mb: list[float]
    rss_before_mb: float
    ru_maxrss_mb: list[float]
    module_count: int
    forbidden_loaded: list[str]
    notable_loaded: list[str]
    heaviest_self: list[tuple[str, float]]
    direct_imports: list[tuple[str, float]]

    def tables(self, target_s: float) -> list[Table]:
        runs = len(self.seconds)
        t = Table(f"Cold import of function_app ({runs} fresh interpreters)", ["measure", "median", "max"])
        t.add("import function_app (ms)", ms(statistics.median(self.seconds)), ms(max(self.seconds)))
        t.add(
            "interpreter start + import, whole process (ms)",
            ms(statistics.median(self.process_seconds)),
            ms(max(self.process_seconds)),
        )
        t.add("peak RSS, VmHWM (MB)", f"{statistics.median(self.rss_peak_mb):.1f}", f"{max(self.rss_peak_mb):.1f}")
        t.add("ru_maxrss (MB)", f"{statistics.median(self.ru_maxrss_mb):.1f}", f"{max(self.ru_maxrss_mb):.1f}")
        verdict = "within" if max(self.seconds) <= target_s else "OVER"
        t.notes.append(f"target ≤ {target_s:.1f} s: {verdict} (max {max(self.seconds):.3f} s)")
        t.notes.append(f"peak RSS of the bare interpreter before the import: {self.rss_before_mb:.1f} MB")
        t.notes.append(
            "ru_maxrss survives execve on Linux: it shows the benchmark process's own peak when that is larger"
        )
        t.notes.append(f"modules in sys.modules after the import: {self.module_count}")
        forbidden = ", ".join(self.forbidden_loaded) or "none"
        t.notes.append(f"msgraph / kiota loaded by the import: {forbidden} (must be none)")
        t.notes.append(f"also loaded: {', '.join(self.notable_loaded) or 'none of ' + ', '.join(NOTABLE)}")
        heavy = Table("python -X importtime: heaviest modules by own time", ["module", "self (ms)"])
        for name, seconds in self.heaviest_self:
            heavy.add(name, ms(seconds))
        direct = Table("python -X importtime: function_app's direct imports", ["module", "cumulative (ms)"])
        for name, seconds in self.direct_imports:
            direct.add(name, ms(seconds))
        return [t, heavy, direct]


def _child_env() -> dict[str, str]:
    env = dict(os.environ)
    env.pop("PYTHONSTARTUP", None)
    env["PYTHONDONTWRITEBYTECODE"] = "1"  # measure what is on disk, write nothing
    return env


@dataclass(frozen=True)
class _ChildRun:
    seconds: float
    process_seconds: float
    rss_before_kb: int
    rss_peak_kb: int
    ru_maxrss_kb: int
    modules: frozenset[str]


def _run_child() -> _ChildRun:
    start = time.perf_counter()
    done = subprocess.run(  # noqa: S603
        [sys.executable, "-c", _CHILD], cwd=REPO_ROOT, env=_child_env(), capture_output=True, text=True, check=False
    )
    elapsed = time.perf_counter() - start
    if done.returncode != 0:
        raise BenchError(f"`import function_app` failed in a fresh interpreter:\n{done.stderr.strip()}")
    data = json.loads(done.stdout.strip().splitlines()[-1])
    return _ChildRun(
        seconds=float(data["seconds"]),
        process_seconds=elapsed,
        rss_before_kb=int(data["hwm_before_kb"] or data["ru_maxrss_kb"]),
        rss_peak_kb=int(data["hwm_peak_kb"] or data["ru_maxrss_kb"]),
        ru_maxrss_kb=int(data["ru_maxrss_kb"]),
        modules=frozenset(data["modules"]),
    )


def _importtime() -> tuple[list[tuple[str, float]], list[tuple[str, float]]]:
    done = subprocess.run(
        [sys.executable, "-X", "importtime", "-c", "import function_app"],
        cwd=REPO_ROOT,
        env=_child_env(),
        capture_output=True,
        text=True,
        check=False,
    )
    rows: list[tuple[str, int, int, int]] = []  # name, self µs, cumulative µs, depth
    for line in done.stderr.splitlines():
        match = _IMPORTTIME.match(line)
        if match:
            own, cumulative, indent, name = match.groups()
            rows.append((name, int(own), int(cumulative), (len(indent) - 1) // 2))
    # Only what `import function_app` loads: the rows of its subtree (printed before it, deeper).
    top = next((i for i, r in enumerate(rows) if r[0] == "function_app"), None)
    if top is None:
        return [], []
    subtree = [rows[top]]
    for row in reversed(rows[:top]):
        if row[3] == 0:
            break
        subtree.append(row)
    heaviest = sorted(subtree, key=lambda r: r[1], reverse=True)[:5]
    direct = sorted((r for r in subtree if r[3] == 1), key=lambda r: r[2], reverse=True)[:5]
    return [(n, s / 1e6) for n, s, _, _ in heaviest], [(n, c / 1e6) for n, _, c, _ in direct]


def measure(runs: int = 7) -> ColdImport:
    progress(f"cold import: {runs} fresh interpreters running `import function_app`")
    results = [_run_child() for _ in range(runs)]
    modules = results[-1].modules
    heaviest, direct = _importtime()
    forbidden = sorted({m for r in results for m in r.modules if m.split(".")[0] in FORBIDDEN})
    return ColdImport(
        seconds=[r.seconds for r in results],
        process_seconds=[r.process_seconds for r in results],
        rss_peak_mb=[r.rss_peak_kb / 1024 for r in results],
        rss_before_mb=statistics.median(r.rss_before_kb / 1024 for r in results),
        ru_maxrss_mb=[r.ru_maxrss_kb / 1024 for r in results],
        module_count=len(modules),
        forbidden_loaded=forbidden,
        notable_loaded=[n for n in NOTABLE if n in modules],
        heaviest_self=heaviest,
        direct_imports=direct,
    )

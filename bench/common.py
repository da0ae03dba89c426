"""Shared benchmark helpers: sizes, isolated measurements, reporting.

Every measurement that reports a peak RSS runs in a fresh Python process
(:func:`run_isolated`): the process imports what it needs, runs one function and reports
``resource.getrusage(RUSAGE_SELF).ru_maxrss`` at the end - the whole process's peak,
imports included, nothing subtracted. Times are measured inside that process around the
work only (interpreter start-up and imports excluded).

Units: MB = 10**6 bytes throughout.
"""

from __future__ import annotations

import contextlib
import importlib
import json
import os
import platform
import resource
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parent.parent
DEFAULT_RESULTS = REPO / "bench" / "results"
RESULT_MARK = "@@BENCH_RESULT@@ "
MB = 1_000_000


# ---------------------------------------------------------------------------- sizes
@dataclass(frozen=True)
class Size:
    """What one ``--size`` runs.

    Attributes
    ----------
    name : str
    tickets : int
        Sample tickets of the big export (ingest, load_frame, breach rates, unlimited fetch).
    ingest_events : tuple of (label, events or None)
        Prefixes of the export ingested (None: all of it).
    naive_whole_events : int or None
        Also run the naive baseline on the whole export in one frame up to this many events.
    batch_pages : int or None
        Pages per normalise+commit batch (None: ``zdevents.export.fetch.BATCH_PAGES``).
    fetch_tickets : int
        Sample tickets served for the rate-limited fetch.
    fetch_rpm : float
        Rate limit of the server and of the client in the rate-limited fetch.
    settle : bool
        Wait for the server's 60 s window to empty after its warm-up request.
    repeat : int
        Repetitions of the short (in-memory) measurements; the best one is reported.
    s3_tickets : int
        Sample tickets fetched into the S3 stand-in and onto local disk (``delta``).
    isolate : bool
        Run each measurement in a fresh process (False: in this process, for the quick
        smoke run of the test suite, where peak RSS figures then mean nothing).
    """

    name: str
    tickets: int
    ingest_events: tuple[tuple[str, int | None], ...]
    naive_whole_events: int | None
    batch_pages: int | None
    fetch_tickets: int
    fetch_rpm: float
    settle: bool
    repeat: int
    s3_tickets: int
    isolate: bool = True


SIZES: dict[str, Size] = {
    "small": Size(
        name="small",
        tickets=120,
        ingest_events=(("3k", 3_000), ("all", None)),
        naive_whole_events=3_000,
        batch_pages=2,
        fetch_tickets=40,
        fetch_rpm=600,
        settle=False,
        repeat=1,
        s3_tickets=40,
        isolate=False,
    ),
    "full": Size(
        name="full",
        tickets=89_500,  # ~5.0M metric events at ~55.9 per ticket
        ingest_events=(("1M", 1_000_000), ("5M", None)),
        naive_whole_events=1_000_000,
        batch_pages=None,
        fetch_tickets=32_500,  # ~1.82M events: ~1,830 pages, just past 3 windows of 600
        fetch_rpm=600,
        settle=True,
        repeat=3,
        s3_tickets=17_900,  # ~1.0M metric events
    ),
    "xl": Size(  # breach_rates only (python -m bench --size xl --only breach_rates); not in CI
        name="xl",
        tickets=89_500,  # the full export, copied 10 times in the cache: ~50M metric events
        ingest_events=(("5M", None),),
        naive_whole_events=None,
        batch_pages=None,
        fetch_tickets=32_500,
        fetch_rpm=600,
        settle=True,
        repeat=1,
        s3_tickets=17_900,
    ),
}


# ---------------------------------------------------------------------------- machine
def _cpu_model() -> str:
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.lower().startswith("model name"):
                return line.split(":", 1)[1].strip()
    return platform.processor() or platform.machine()


def _ram_gb() -> float | None:
    with contextlib.suppress(OSError, ValueError, IndexError):
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemTotal:"):
                return int(line.split()[1]) * 1024 / 1e9
    return None


def machine() -> dict[str, Any]:
    """CPU model, cores, RAM, OS, Python and library versions of this machine."""
    versions: dict[str, str] = {}
    for name in ("pandas", "pyarrow", "polars", "duckdb", "narwhals", "numpy"):
        try:
            versions[name] = importlib.import_module(name).__version__
        except Exception:  # a missing optional engine is just not listed
            versions[name] = "-"
    return {
        "cpu": _cpu_model(),
        "cores": os.cpu_count(),
        "ram_gb": _ram_gb(),
        "os": f"{platform.system()} {platform.release()}",
        "python": platform.python_version(),
        **versions,
    }


def machine_line(info: dict[str, Any] | None = None) -> str:
    """One line describing the machine (what every benchmark prints)."""
    info = info or machine()
    ram = f"{info['ram_gb']:.0f} GB RAM" if info.get("ram_gb") else "RAM unknown"
    return (
        f"{info['cpu']}, {info['cores']} cores, {ram}, {info['os']}; Python {info['python']}, "
        f"pandas {info['pandas']}, pyarrow {info['pyarrow']}, polars {info['polars']}, "
        f"duckdb {info['duckdb']}, narwhals {info['narwhals']}"
    )


# ---------------------------------------------------------------------------- measuring
def peak_rss_mb() -> float:
    """This process's peak resident set size so far, in MB (Linux reports KiB)."""
    kib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    scale = 1 if sys.platform == "darwin" else 1024
    return kib * scale / MB


def cpu_seconds() -> float:
    """User + system CPU seconds used by this process so far (all its threads)."""
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def current_rss_mb() -> float:
    """This process's resident set size now, in MB (0 when /proc is unavailable)."""
    try:
        pages = int(Path("/proc/self/statm").read_text().split()[1])
    except (OSError, ValueError, IndexError):
        return 0.0
    return pages * os.sysconf("SC_PAGE_SIZE") / MB


def hwm_rss_mb() -> float | None:
    """Peak RSS of this process image (``VmHWM``; Linux only), in MB."""
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) * 1024 / MB
    except (OSError, ValueError, IndexError):
        pass
    return None


# Linux's ru_maxrss survives fork and exec: a process started directly from this (large)
# process would report this process's peak as its own. The measured process is therefore
# started by a minimal launcher (python -S, a few MB), which forks and execs it: the fork
# starts a fresh accounting, the exec a fresh address space.
_LAUNCHER = (
    "import os, sys\n"
    "pid = os.fork()\n"
    "if pid == 0:\n"
    "    os.execv(sys.argv[1], sys.argv[1:])\n"
    "_, status = os.waitpid(pid, 0)\n"
    "sys.exit(os.waitstatus_to_exitcode(status))\n"
)


class BenchError(RuntimeError):
    """A measured process failed; the message carries its stderr."""


def subprocess_env() -> dict[str, str]:
    """The environment of a process the benchmarks start: ``bench`` importable, fixed hash seed."""
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(p for p in (str(REPO), env.get("PYTHONPATH", "")) if p)
    env.setdefault("PYTHONHASHSEED", "0")
    return env


_ISOLATE = True


def set_isolation(isolate: bool) -> None:
    """Whether :func:`run_isolated` starts a fresh process (True) or calls in this one."""
    global _ISOLATE
    _ISOLATE = isolate


def run_isolated(
    target: str, timeout: float = 3600, env: dict[str, str] | None = None, **kwargs: Any
) -> dict[str, Any]:
    """Run ``module:function(**kwargs)`` in a fresh Python process and return its result.

    The function returns a JSON-able dict; ``peak_rss_mb`` (whole process, at the end) is
    added to it. ``env`` adds environment variables to that process's. After
    ``set_isolation(False)`` the function runs in this process instead (a smoke run: the
    RSS is then this process's, and ``env`` is not applied).

    Examples
    --------
    >>> run_isolated("bench.common:_echo", value=3)["value"]  # doctest: +SKIP
    3
    """
    if not _ISOLATE:
        module_name, _, function_name = target.partition(":")
        function = getattr(importlib.import_module(module_name), function_name)
        result = json.loads(json.dumps(dict(function(**kwargs)), default=str))
        result["peak_rss_mb"] = peak_rss_mb()
        result["vmhwm_mb"] = hwm_rss_mb()
        result["isolated"] = False
        return result
    worker = [sys.executable, "-m", "bench._worker", target, json.dumps(kwargs)]
    args = [sys.executable, "-S", "-c", _LAUNCHER, *worker]
    proc = subprocess.run(
        args,
        cwd=REPO,
        env={**subprocess_env(), **(env or {})},
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )
    for line in reversed(proc.stdout.splitlines()):
        if line.startswith(RESULT_MARK):
            return json.loads(line[len(RESULT_MARK) :])
    tail = "\n".join(proc.stderr.strip().splitlines()[-25:])
    raise BenchError(f"{target} failed (exit {proc.returncode}):\n{tail}")


def rss_probe(megabytes: int = 0) -> dict[str, Any]:
    """Touch ``megabytes`` MB and report (checks what :func:`run_isolated` measures)."""
    block = bytearray(megabytes * MB)
    for i in range(0, len(block), 4096):
        block[i] = 1
    return {"megabytes": megabytes}


def best_of(fn: Callable[[], Any], repeat: int) -> tuple[float, list[float], Any]:
    """Run ``fn`` ``repeat`` times; (best seconds, all seconds, last result)."""
    times: list[float] = []
    result = None
    for _ in range(max(1, repeat)):
        result = None  # let the previous result go before the next run
        start = time.perf_counter()
        result = fn()
        times.append(time.perf_counter() - start)
    return min(times), times, result


def interleaved(
    names: list[str], repeat: int, measure: Callable[[str], dict[str, Any]]
) -> tuple[dict[str, list[dict[str, Any]]], dict[str, dict[str, Any]], dict[str, float]]:
    """Run ``measure(name)`` for every name, ``repeat`` rounds, the names interleaved.

    Returns every run per name, the fastest run per name (least ``seconds``) and the largest
    ``peak_rss_mb`` of each name's runs. Interleaving spreads changes of the machine's load
    over all the names instead of one.
    """
    every: dict[str, list[dict[str, Any]]] = {name: [] for name in names}
    for _ in range(max(1, repeat)):
        for name in names:
            every[name].append(measure(name))
    best = {name: min(tries, key=lambda r: r["seconds"]) for name, tries in every.items()}
    peak = {name: max(r["peak_rss_mb"] for r in tries) for name, tries in every.items()}
    return every, best, peak


def spread(trace: list, points: int) -> list:
    """About ``points`` evenly spaced entries of ``trace`` (first and last included).

    Examples
    --------
    >>> spread(list(range(11)), 3)
    [0, 5, 10]
    """
    if len(trace) <= points:
        return trace
    step = (len(trace) - 1) / (points - 1)
    return [trace[round(i * step)] for i in range(points)]


# ---------------------------------------------------------------------------- reporting
@dataclass
class Ratio:
    """A ratio line: ``label: value`` against ``goal`` (``met`` None when there is no goal)."""

    label: str
    value: float | None
    goal: str = ""
    met: bool | None = None
    unit: str = "x"

    def shown(self) -> str:
        if self.value is None:
            return "n/a"
        if self.unit == "" and float(self.value).is_integer():
            return f"{int(self.value)}"
        return f"{self.value:.2f}{self.unit}"

    def line(self, bench: str) -> str:
        shown = self.shown()
        verdict = "" if self.met is None else (" MET" if self.met else " MISSED")
        goal = f" (goal {self.goal})" if self.goal else ""
        return f"[{bench}] ratio {self.label}: {shown}{goal}{verdict}"


@dataclass
class Table:
    """A results table: a title, column names, rows of already formatted cells."""

    title: str
    columns: list[str]
    rows: list[list[str]] = field(default_factory=list)

    def markdown(self) -> str:
        lines = [f"**{self.title}**", "", "| " + " | ".join(self.columns) + " |"]
        lines.append("|" + "|".join("---" for _ in self.columns) + "|")
        lines += ["| " + " | ".join(row) + " |" for row in self.rows]
        return "\n".join(lines)

    def text(self) -> str:
        widths = [len(c) for c in self.columns]
        for row in self.rows:
            widths = [max(w, len(cell)) for w, cell in zip(widths, row, strict=True)]
        fmt = "  ".join(f"{{:<{w}}}" for w in widths)
        out = [self.title, fmt.format(*self.columns)]
        out += [fmt.format(*row) for row in self.rows]
        return "\n".join(out)


@dataclass
class Result:
    """What one benchmark reports."""

    name: str
    title: str
    tables: list[Table] = field(default_factory=list)
    ratios: list[Ratio] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    raw: dict[str, Any] = field(default_factory=dict)
    failures: list[str] = field(default_factory=list)

    def ratio(self, *args: Any, **kwargs: Any) -> Ratio:
        item = Ratio(*args, **kwargs)
        self.ratios.append(item)
        return item

    def print(self, machine_text: str) -> None:
        print(f"\n=== {self.name}: {self.title}")
        print(f"[{self.name}] machine: {machine_text}")
        for table in self.tables:
            print(table.text())
        for note in self.notes:
            print(f"[{self.name}] note: {note}")
        for item in self.ratios:
            print(item.line(self.name))
        for failure in self.failures:
            print(f"[{self.name}] FAILURE: {failure}")
        sys.stdout.flush()

    def markdown(self) -> str:
        parts = [f"## {self.name}: {self.title}", ""]
        for table in self.tables:
            parts += [table.markdown(), ""]
        if self.ratios:
            parts += ["| ratio | value | goal | met? |", "|---|---|---|---|"]
            for item in self.ratios:
                value = item.shown()
                met = "-" if item.met is None else ("yes" if item.met else "**no**")
                parts.append(f"| {item.label} | {value} | {item.goal or '-'} | {met} |")
            parts.append("")
        parts += [f"- {note}" for note in self.notes]
        parts += [f"- **FAILURE**: {failure}" for failure in self.failures]
        return "\n".join(parts).rstrip() + "\n"


def fmt_rate(events: float, seconds: float) -> str:
    """Events per second in millions, e.g. ``0.95M/s``."""
    return f"{events / seconds / 1e6:.3f}M/s" if seconds > 0 else "-"


def fmt_s(seconds: float | None) -> str:
    return "-" if seconds is None else f"{seconds:.2f} s"


def fmt_mb(megabytes: float | None) -> str:
    return "-" if megabytes is None else f"{megabytes:,.0f} MB"


def table_format_of(data_dir: str | os.PathLike[str]) -> str:
    """``"delta"`` for an object-store URL or a folder holding a Delta table, else ``"parquet"``.

    The benchmarks name the store they measure, so a Parquet cache they built is read as one
    (the default store would convert it into a Delta table on first use).
    """
    text = str(data_dir)
    if "://" in text or any(Path(data_dir).glob("*/*/_delta_log")):
        return "delta"
    return "parquet"


def results_dir(path: str | os.PathLike[str] | None = None) -> Path:
    """Where generated data and raw results go (``bench/results`` by default)."""
    folder = Path(path) if path is not None else DEFAULT_RESULTS
    folder.mkdir(parents=True, exist_ok=True)
    return folder


def save_raw(folder: Path, result: Result, size: Size) -> Path:
    """Write the raw figures of ``result`` as JSON next to the data."""
    path = folder / f"{result.name}-{size.name}.json"
    payload = {
        "name": result.name,
        "size": size.name,
        "raw": result.raw,
        "ratios": [vars(r) for r in result.ratios],
        "failures": result.failures,
    }
    path.write_text(json.dumps(payload, indent=1, default=str))
    return path


FLAT_GOAL = 1.10
"""Peak RSS is flat when the largest size's is at most this many times the smallest size's."""


def peak_rss_ratios(
    result: Result,
    what: str,
    peaks: dict[str, float],
    goal_mb: float,
    flat_label: str | None = None,
) -> None:
    """The peak-RSS goal at the largest size and its flatness against the smallest.

    ``peaks`` maps size labels, smallest first, to peak RSS (MB) of ``what``; adds
    ``peak RSS of <what> @<largest>`` (goal ``<= goal_mb``) and, with two sizes or more,
    ``<flat_label>`` (default ``peak RSS of <what> @<largest> / @<smallest> (flat)``, goal
    ``<= FLAT_GOAL``).

    Examples
    --------
    >>> result = Result("x", "x")
    >>> peak_rss_ratios(result, "the ingest", {"1M": 300.0, "5M": 345.0}, 400.0)
    >>> [(r.label, round(r.value, 2), r.met) for r in result.ratios]
    [('peak RSS of the ingest @5M', 345.0, True), ('peak RSS of the ingest @5M / @1M (flat)', 1.15, False)]
    """
    labels = list(peaks)
    largest = labels[-1]
    result.ratio(
        f"peak RSS of {what} @{largest}",
        peaks[largest],
        f"<= {goal_mb:.0f} MB",
        peaks[largest] <= goal_mb,
        unit=" MB",
    )
    if len(labels) > 1:
        growth = peaks[largest] / peaks[labels[0]]
        result.ratio(
            flat_label or f"peak RSS of {what} @{largest} / @{labels[0]} (flat)",
            growth,
            f"<= {FLAT_GOAL:.2f}x",
            growth <= FLAT_GOAL,
        )

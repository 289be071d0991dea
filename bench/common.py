"""What every benchmark shares: repetition, robust statistics and the result files.

The machine is shared and noisy, so a figure is always reported as a ratio against a
baseline measured in the same run, with a median and a spread over repetitions.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
import json
import os
from pathlib import Path
import platform
import statistics
import time

from harness.ha_lanes import lane

BENCH_DIR = Path(__file__).resolve().parent
RESULTS_DIR = BENCH_DIR / "results"
RESULTS_TABLE = BENCH_DIR / "RESULTS.md"
TABLE_HEADER = (
    "| date | figure | project | baseline | ratio | target | met | machine |\n"
    "|---|---|---|---|---|---|---|---|\n"
)


@dataclass(frozen=True)
class Sample:
    """Median and spread of repeated measurements of one quantity."""

    median: float
    p10: float
    p90: float
    n: int

    @classmethod
    def of(cls, values: Sequence[float]) -> Sample:
        if not values:
            raise ValueError("no measurements")
        ordered = sorted(values)
        return cls(
            median=statistics.median(ordered),
            p10=percentile(ordered, 10),
            p90=percentile(ordered, 90),
            n=len(ordered),
        )

    def show(self, unit: str, digits: int = 2) -> str:
        d = digits
        return (
            f"{self.median:.{d}f} {unit} (p10 {self.p10:.{d}f}, p90 {self.p90:.{d}f}, n={self.n})"
        )


def percentile(ordered: Sequence[float], pct: float) -> float:
    """Linear-interpolated percentile of an already sorted sequence."""
    if not ordered:
        raise ValueError("no values")
    rank = (len(ordered) - 1) * pct / 100
    low = int(rank)
    high = min(low + 1, len(ordered) - 1)
    return ordered[low] + (ordered[high] - ordered[low]) * (rank - low)


def repeat(fn: Callable[[], float], times: int, warmup: int = 1) -> Sample:
    """Run ``fn`` (which returns one measurement) ``warmup + times`` times."""
    for _ in range(warmup):
        fn()
    return Sample.of([fn() for _ in range(times)])


@dataclass
class Result:
    """One figure: the project against its baseline, with the target it is held to."""

    figure: str
    unit: str
    project: Sample
    baseline: Sample
    target: str
    met: bool
    lower_is_better: bool = True
    details: dict[str, object] = field(default_factory=dict)

    @property
    def ratio(self) -> float:
        return self.project.median / self.baseline.median if self.baseline.median else float("inf")


def machine() -> str:
    python = f"{platform.python_implementation()} {platform.python_version()}"
    ha = lane()
    hass = f"HA {ha.version}" if ha.installed else "no HA"
    return f"{platform.machine()}, {os.cpu_count()} cores, {python}, {hass}"


def record(name: str, results: Sequence[Result]) -> None:
    """Write ``results/<name>.json`` and append one table line per figure to RESULTS.md."""
    RESULTS_DIR.mkdir(exist_ok=True)
    stamp = time.strftime("%Y-%m-%d %H:%M", time.gmtime())
    payload = {
        "benchmark": name,
        "date": stamp,
        "machine": machine(),
        "results": [asdict(r) | {"ratio": r.ratio} for r in results],
    }
    (RESULTS_DIR / f"{name}.json").write_text(json.dumps(payload, indent=2) + "\n")
    if not RESULTS_TABLE.exists():
        RESULTS_TABLE.write_text(
            "# Benchmark results\n\nRatio = project / baseline, both measured in the same run.\n\n"
            + TABLE_HEADER
        )
    with RESULTS_TABLE.open("a") as table:
        for r in results:
            table.write(
                f"| {stamp} | {r.figure} | {r.project.median:.3g} {r.unit} "
                f"| {r.baseline.median:.3g} {r.unit} "
                f"| {r.ratio:.2f} | {r.target} | {'yes' if r.met else 'no'} | {machine()} |\n"
            )
    for r in results:
        print(
            f"{r.figure}: project {r.project.show(r.unit)} vs baseline {r.baseline.show(r.unit)}"
            f" -> ratio {r.ratio:.2f} (target {r.target}: {'met' if r.met else 'missed'})"
        )

"""Figure 5: firmware core cost, against the previous commit's firmware.

Wraps ``bench/firmware/measure.py`` (callgrind instructions per published reading
and per handled command, heap per registered sensor/actuator slot, wire bytes of
10 readings singly versus batched). The baseline is the same script run on the
previous commit that has it, checked out as a git worktree under
``build/bench/prev-<sha>``; when there is none, the last recorded
``bench/results/firmware.json``; when there is neither, the figure is compared
with itself (ratio 1) and says so. Instruction counts are deterministic
(callgrind), so one run per commit is enough: the spread is zero by construction.

Wire bytes compare batch against singly within the same run (the batch is what the
integration mode buys).

Parameters: ``BENCH_FW_N`` operations per callgrind run (default 2000),
``BENCH_FW_PREVIOUS`` a commit to compare with (default: the newest ancestor of
HEAD~1 that has the measurement script).
"""

from __future__ import annotations

import json
import os
from pathlib import Path
import subprocess
import sys
import tempfile
import time
from typing import Any

from bench import common
from bench.system import BUILD, ROOT, env_int

SCRIPT = Path("bench") / "firmware" / "measure.py"
TOLERANCE = 1.02  # instruction counts may move a little with the compiler's choices


def _measure(repo: Path, n: int) -> dict[str, Any]:
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "fw.json"
        subprocess.run(
            [sys.executable, str(repo / SCRIPT), "-n", str(n), "--json", str(out)],
            cwd=repo,
            check=True,
            capture_output=True,
        )
        return dict(json.loads(out.read_text()))


def _git(*args: str) -> str:
    res = subprocess.run(["git", *args], cwd=ROOT, capture_output=True, text=True, check=False)
    return res.stdout.strip() if res.returncode == 0 else ""


def _previous_commit() -> str | None:
    wanted = os.environ.get("BENCH_FW_PREVIOUS")
    if wanted:
        return _git("rev-parse", wanted) or None
    # The newest ancestor of HEAD~1 that changed the firmware component or the script.
    sha = _git(
        "log",
        "-1",
        "--format=%H",
        "HEAD~1",
        "--",
        "firmware/components/esp_mcp_bridge",
        "bench/firmware",
    )
    return sha or None


def _previous_figures(n: int) -> tuple[dict[str, Any] | None, str]:
    sha = _previous_commit()
    if sha is not None:
        tree = BUILD / f"prev-{sha[:12]}"
        if not tree.exists():
            BUILD.mkdir(parents=True, exist_ok=True)
            subprocess.run(
                ["git", "worktree", "add", "--detach", str(tree), sha],
                cwd=ROOT,
                check=True,
                capture_output=True,
            )
        try:
            return _measure(tree, n), f"commit {sha[:12]}"
        except subprocess.CalledProcessError as err:
            print(f"   previous commit {sha[:12]} does not measure: {err.stderr!r:.200}")
            subprocess.run(
                ["git", "worktree", "remove", "--force", str(tree)],
                cwd=ROOT,
                check=False,
                capture_output=True,
            )
    recorded = common.RESULTS_DIR / "firmware_raw.json"
    if recorded.exists():
        raw = json.loads(recorded.read_text())
        if isinstance(raw, dict) and "per_op" in raw:
            return raw, f"recorded run of {raw.get('date', '?')}"
    return None, "none (no previous commit with bench/firmware, no recorded run)"


def _one(value: float) -> common.Sample:
    return common.Sample.of([value])


def run() -> list[common.Result]:
    n = env_int("BENCH_FW_N", 2000)
    now = _measure(ROOT, n)
    before, source = _previous_figures(n)
    base = before if before is not None else now
    vs = "previous" if before is not None else "itself (no previous figures)"
    results: list[common.Result] = []
    labels = {
        "reading": "firmware: instructions per published reading",
        "tick": "firmware: instructions per scheduled reading",
        "ping": "firmware: instructions per handled cmd ping",
        "write": "firmware: instructions per handled actuator write",
    }
    for kind, figure in labels.items():
        p = float(now["per_op"][kind]["instructions"])
        b = float(base["per_op"].get(kind, now["per_op"][kind])["instructions"])
        results.append(
            common.Result(
                figure=figure,
                unit="Ir",
                project=_one(p),
                baseline=_one(b),
                target=f"<= {vs} x{TOLERANCE}",
                met=p <= b * TOLERANCE,
                details={"baseline_source": source, "n": n},
            )
        )
    for key, figure in (
        ("per_sensor_slot", "firmware: heap per sensor slot"),
        ("per_actuator_slot", "firmware: heap per actuator slot"),
    ):
        p = float(now["heap"][key])
        b = float(base["heap"].get(key, p))
        results.append(
            common.Result(
                figure=figure,
                unit="B",
                project=_one(p),
                baseline=_one(b),
                target=f"<= {vs}",
                met=p <= b,
                details={"baseline_source": source, "heap": now["heap"]},
            )
        )
    results.append(
        _batch_vs_singly(
            "firmware: instructions per scheduled reading, 5 due at once, batched vs singly",
            "Ir",
            batch=float(now["per_op"]["tick5_batch"]["instructions"]),
            single=float(now["per_op"]["tick5"]["instructions"]),
            better="cheaper",
            details={"per_op": {k: now["per_op"][k] for k in ("tick5", "tick5_batch")}},
        )
    )
    results.append(
        _batch_vs_singly(
            "firmware: wire bytes, 10 readings batched vs singly",
            "B",
            batch=float(now["wire"]["batch"]["wire_bytes"]),
            single=float(now["wire"]["single"]["wire_bytes"]),
            better="smaller",
            details={"wire": now["wire"]},
        )
    )
    _remember(now)
    return results


def _batch_vs_singly(
    figure: str, unit: str, *, batch: float, single: float, better: str, details: dict[str, Any]
) -> common.Result:
    """A figure of the same run: the batch against sending singly, which it must beat."""
    return common.Result(
        figure=figure,
        unit=unit,
        project=_one(batch),
        baseline=_one(single),
        target=f"< 1 (batch {better})",
        met=batch < single,
        details=details,
    )


def _remember(raw: dict[str, Any]) -> None:
    """Keep the raw figures for the next run's comparison (when there is no previous commit)."""
    common.RESULTS_DIR.mkdir(exist_ok=True)
    path = common.RESULTS_DIR / "firmware_raw.json"
    stamped = raw | {"date": time.strftime("%Y-%m-%d %H:%M", time.gmtime())}
    path.write_text(json.dumps(stamped, indent=2) + "\n")

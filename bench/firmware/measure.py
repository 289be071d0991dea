"""Firmware core measurements: instructions per operation, heap per entity, bytes on the wire.

Builds ``bench_core`` (the portable core plus a no-op port with a fake clock)
with the system C compiler at -O2 and measures:

* instructions per published reading and per handled command: callgrind runs
  with N operations and with 0 (the baseline: create, register, connect,
  stop); per operation = (Ir(N) - Ir(0)) / N; for a scheduler pass with five
  sensors due, per reading = (Ir(N) - Ir(0)) / 5N, singly (mode mqtt) and as one
  batch (mode integration);
* heap per sensor and per actuator: mallinfo2() around mcp_core_create() with
  1 and 33 registry slots (the registries are allocated at create time), and
  around the registrations themselves;
* bytes on the wire for 10 readings sent singly versus as one batch: every
  PUBLISH counted as 1 (type/flags) + len(varint(RL)) + RL with
  RL = 2 + len(topic) + (2 if QoS > 0) + len(payload) (MQTT 3.1.1, no TCP/IP
  or TLS overhead).

Usage: python bench/firmware/measure.py [-n 2000] [--json FILE]
Needs gcc, valgrind and libcjson-dev (make bootstrap installs them).
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path
import re
import shutil
import subprocess
import sys
import tempfile
from typing import Any

ROOT = Path(__file__).resolve().parents[2]
CORE = ROOT / "firmware" / "components" / "esp_mcp_bridge"
BUILD = ROOT / "build" / "bench"
KINDS = {
    "reading": "published reading (application API, mcp_core_publish_sensor_value)",
    "tick": "scheduled reading (tick -> read callback -> publish)",
    "tick5": "scheduled reading, 5 due in one pass, mode mqtt (one message each)",
    "tick5_batch": "scheduled reading, 5 due in one pass, mode integration (one batch)",
    "ping": "handled command `cmd ping` with id (parse, dispatch, response)",
    "write": "handled actuator write with id (parse, validate, callback, state, response)",
}
# Operations that carry several readings: their figures are per reading.
READINGS_PER_OP = {"tick5": 5, "tick5_batch": 5}


def build() -> Path:
    BUILD.mkdir(parents=True, exist_ok=True)
    binary = BUILD / "bench_core"
    cflags = ["-I/usr/include/cjson"]
    if shutil.which("pkg-config"):
        res = subprocess.run(
            ["pkg-config", "--cflags", "libcjson"], capture_output=True, text=True, check=False
        )
        if res.returncode == 0 and res.stdout.strip():
            cflags = res.stdout.split()
    sources = [str(Path(__file__).with_name("bench_core.c"))]
    sources += sorted(str(p) for p in (CORE / "core" / "src").glob("*.c"))
    cmd = [
        "gcc", "-std=c11", "-D_DEFAULT_SOURCE", "-O2", "-g", "-DNDEBUG",
        f"-I{CORE / 'include'}", f"-I{CORE / 'core' / 'include'}", *cflags,
        *sources, "-lcjson", "-lm", "-o", str(binary),
    ]  # fmt: skip
    subprocess.run(cmd, check=True)
    return binary


def callgrind_ir(binary: Path, kind: str, n: int) -> int:
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "callgrind.out"
        subprocess.run(
            ["valgrind", "--tool=callgrind", f"--callgrind-out-file={out}", str(binary), kind,
             str(n)],
            check=True, capture_output=True,
        )  # fmt: skip
        match = re.search(r"^(?:summary|totals): (\d+)", out.read_text(), re.MULTILINE)
        if match is None:
            raise RuntimeError("no instruction total in the callgrind output")
        return int(match.group(1))


def run_json(binary: Path, *args: str) -> Any:
    res = subprocess.run([str(binary), *args], capture_output=True, text=True, check=True)
    return json.loads(res.stdout)


def measure(n: int) -> dict[str, Any]:
    binary = build()
    per_op = {}
    for kind in KINDS:
        base = callgrind_ir(binary, kind, 0)
        total = callgrind_ir(binary, kind, n)
        published = run_json(binary, kind, str(n))["published"]
        units = n * READINGS_PER_OP.get(kind, 1)
        per_op[kind] = {
            "instructions": round((total - base) / units),
            "baseline_instructions": base,
            "messages_per_op": published / units,
        }
    heap = run_json(binary, "heap")
    return {"n": n, "per_op": per_op, "heap": heap, "wire": run_json(binary, "wire")}


def report(r: dict[str, Any]) -> str:
    lines = [f"Instructions (callgrind Ir, gcc -O2, x86-64, N={r['n']}, baseline subtracted):", ""]
    lines += ["| operation | instructions/op | MQTT messages/op |", "|---|---|---|"]
    # (per reading for the five-sensor scheduler passes)
    for kind, label in KINDS.items():
        op = r["per_op"][kind]
        lines.append(f"| {label} | {op['instructions']} | {op['messages_per_op']:.2f} |")
    h = r["heap"]
    lines += [
        "",
        "Heap (glibc mallinfo2):",
        "",
        f"- context with 1 sensor + 1 actuator slot: {h['create_1_1']} B; "
        f"with 16 + 16 (defaults): {h['create_16_16']} B",
        f"- per sensor slot: {h['per_sensor_slot']:.0f} B; per actuator slot: "
        f"{h['per_actuator_slot']:.0f} B (allocated by mcp_core_create for "
        "max_sensors/max_actuators)",
        f"- registering 10 sensors: {h['register_10_sensors']} B; 10 actuators: "
        f"{h['register_10_actuators']} B more",
        f"- so one registered sensor costs {h['per_sensor_total']:.0f} B, one registered "
        f"actuator {h['per_actuator_total']:.0f} B (slot + registration)",
    ]
    w = r["wire"]
    s, b = w["single"], w["batch"]
    lines += [
        "",
        "10 readings on the wire (MQTT 3.1.1 PUBLISH, QoS 0; "
        "bytes = 1 + len(varint(RL)) + RL, RL = 2 + topic + payload):",
        "",
        "| | messages | topic B | payload B | wire B |",
        "|---|---|---|---|---|",
        f"| singly | {s['messages']} | {s['topic_bytes']} | {s['payload_bytes']} | "
        f"{s['wire_bytes']} |",
        f"| one batch | {b['messages']} | {b['topic_bytes']} | {b['payload_bytes']} | "
        f"{b['wire_bytes']} |",
        "",
        f"batch / singly = {b['wire_bytes'] / s['wire_bytes']:.2f}",
    ]
    return "\n".join(lines)


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("-n", type=int, default=2000, help="operations per callgrind run")
    parser.add_argument("--json", type=Path, help="also write the raw figures here")
    args = parser.parse_args(argv)
    for program in ("gcc", "valgrind"):
        if shutil.which(program) is None:
            print(f"{program} is missing (make bootstrap installs it)", file=sys.stderr)
            return 2
    result = measure(args.n)
    print(report(result))
    if args.json is not None:
        args.json.write_text(json.dumps(result, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))

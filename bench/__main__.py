"""``python -m bench [name ...]``: run the benchmarks (all of them by default)."""

from __future__ import annotations

import importlib
from pathlib import Path
import pkgutil
import sys

from bench import common

BENCHMARKS = sorted(
    m.name
    for m in pkgutil.iter_modules([str(Path(__file__).parent)])
    if m.name.startswith("bench_")
)


def main(argv: list[str]) -> int:
    wanted = argv or BENCHMARKS
    unknown = sorted(set(wanted) - set(BENCHMARKS))
    if unknown:
        print(f"unknown benchmark(s): {', '.join(unknown)}; known: {', '.join(BENCHMARKS)}")
        return 2
    for name in wanted:
        print(f"== {name}")
        module = importlib.import_module(f"bench.{name}")
        common.record(name.removeprefix("bench_"), module.run())
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))

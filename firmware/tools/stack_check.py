#!/usr/bin/env python3
"""Worst-case stack of the core's call paths, from GCC's -fcallgraph-info=su.

Usage: stack_check.py BUDGETS.json FILE.ci|DIR...   (a DIR is searched for *.ci)

BUDGETS: {"margin": bytes, "recursion": {"function": bound, ...},
          "tasks": [{"name", "stack", "margin"?, "entries": [function, ...]}, ...]}.
Each entry's deepest path (own frames summed along direct calls; calls through
pointers, i.e. application callbacks and port functions, are what the margin
is for) must fit its task's stack minus the margin. A function on a recursion
listed in "recursion" counts bound times. A frame of unbounded dynamic size fails.
Exit 1 when a path does not fit, 2 on bad input.
"""

from __future__ import annotations

from collections.abc import Iterable
import json
from pathlib import Path
import re
import sys

NODE = re.compile(r'node: \{ title: "([^"]+)" label: "([^"]*)"')
EDGE = re.compile(r'edge: \{ sourcename: "([^"]+)" targetname: "([^"]+)"')
SIZE = re.compile(r"\\n(\d+) bytes \((static|dynamic[^)]*)\)")


def short(title: str) -> str:
    """A static function is titled file:name, an external one by its name."""
    return title.rsplit(":", 1)[-1]


def load(paths: Iterable[str]) -> tuple[dict[str, int], dict[str, set[str]], list[str]]:
    frames: dict[str, int] = {}
    calls: dict[str, set[str]] = {}
    dynamic: list[str] = []
    for path in paths:
        with open(path, encoding="utf-8") as handle:
            text = handle.read()
        for title, label in NODE.findall(text):
            size = SIZE.search(label)
            if size is None:
                continue  # declared here, defined elsewhere (or a library function)
            frames[title] = int(size.group(1))
            if size.group(2) not in ("static", "dynamic,bounded"):
                dynamic.append(short(title))
        for source, target in EDGE.findall(text):
            calls.setdefault(source, set()).add(target)
    return frames, calls, dynamic


class Graph:
    """Frames and direct calls; deepest() memoises the worst path from a function."""

    def __init__(
        self, frames: dict[str, int], calls: dict[str, set[str]], recursion: dict[str, int]
    ):
        self.frames = frames
        self.calls = calls
        self.recursion = recursion
        self.by_name = {short(t): t for t in frames}
        self.memo: dict[str, tuple[int, list[str]]] = {}

    def deepest(self, fn: str, on_path: set[str]) -> tuple[int, list[str]]:
        if fn in self.memo:
            return self.memo[fn]
        own = self.frames.get(fn, 0) * self.recursion.get(short(fn), 1)
        best: tuple[int, list[str]] = (0, [])
        on_path.add(fn)
        for callee in self.calls.get(fn, ()):
            target = callee if callee in self.frames else self.by_name.get(callee, callee)
            if target in on_path:
                continue  # the recursion is counted through its bound
            got = self.deepest(target, on_path)
            if got[0] > best[0]:
                best = got
        on_path.discard(fn)
        self.memo[fn] = (own + best[0], [f"{short(fn)} ({self.frames.get(fn, 0)})", *best[1]])
        return self.memo[fn]


def main(argv: list[str]) -> int:
    if len(argv) < 3:
        print(__doc__, file=sys.stderr)
        return 2
    with open(argv[1], encoding="utf-8") as handle:
        budgets = json.load(handle)
    files: list[str] = []
    for arg in argv[2:]:
        path = Path(arg)
        found = sorted(path.rglob("*.ci")) if path.is_dir() else [path]
        files.extend(str(p) for p in found)
    frames, calls, dynamic = load(files)
    if not frames:
        print("stack_check: no frames in the .ci files", file=sys.stderr)
        return 2
    failed = False
    for name in dynamic:
        print(f"FAIL {name}: frame of dynamic size")
        failed = True
    margin = int(budgets["margin"])
    recursion = {k: int(v) for k, v in budgets.get("recursion", {}).items()}
    graph = Graph(frames, calls, recursion)
    for task in budgets["tasks"]:
        task_margin = int(task.get("margin", margin))
        limit = int(task["stack"]) - task_margin
        for entry in task["entries"]:
            title = graph.by_name.get(entry)
            if title is None:
                print(f"FAIL {entry}: not found")
                failed = True
                continue
            total, path = graph.deepest(title, set())
            ok = total <= limit
            failed |= not ok
            verdict = "OK  " if ok else "FAIL"
            budget = f"{limit} B ({task['stack']} - {task_margin})"
            print(f"{verdict} {task['name']}: {entry} {total} B of {budget}")
            if not ok:
                print("     " + " -> ".join(path))
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))

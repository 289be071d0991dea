"""Pure helpers to suggest what the caller probably meant when an id is unknown."""

from __future__ import annotations

from collections.abc import Iterable
import difflib


def close_matches(name: str, candidates: Iterable[str], limit: int = 3) -> list[str]:
    """Candidates most similar to `name`: case-insensitive exact, then substring, then difflib."""
    pool = list(dict.fromkeys(candidates))
    if not pool or limit <= 0:
        return []
    wanted = name.strip().lower()
    lowered = {c: c.lower() for c in pool}
    result: list[str] = [c for c in pool if lowered[c] == wanted]
    result += [
        c
        for c in pool
        if c not in result and wanted and (wanted in lowered[c] or lowered[c] in wanted)
    ]
    fuzzy = difflib.get_close_matches(wanted, [lowered[c] for c in pool], n=limit, cutoff=0.5)
    back = {v: k for k, v in lowered.items()}
    result += [back[f] for f in fuzzy if back[f] not in result]
    return result[:limit]


def unknown_message(kind: str, name: str, candidates: Iterable[str]) -> str:
    """ "unknown device 'x'; did you mean: a, b" (or the list of known ones when few)."""
    pool = sorted(dict.fromkeys(candidates))
    matches = close_matches(name, pool)
    if matches:
        return f"unknown {kind} {name!r}; did you mean: {', '.join(matches)}?"
    if not pool:
        return f"unknown {kind} {name!r}; there are none"
    if len(pool) <= 10:
        return f"unknown {kind} {name!r}; known: {', '.join(pool)}"
    return f"unknown {kind} {name!r}; {len(pool)} known, none similar"

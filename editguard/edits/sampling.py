"""Seeded, order-independent choice of edits (and the stable hash behind it)."""

from __future__ import annotations

import hashlib
from collections.abc import Sequence

from editguard.edits.request import EditRequest


def unit_hash(*parts: object) -> int:
    return int.from_bytes(hashlib.sha256("\x00".join(map(str, parts)).encode()).digest()[:8], "big")


def sample(requests: Sequence[EditRequest], n: int, seed: int = 0) -> list[EditRequest]:
    """``n`` edits with distinct subjects, in a seeded order that does not depend on the input order.

    Prefix-consistent: ``sample(r, 10, s)`` is the first 10 of ``sample(r, 50, s)``.
    """
    if n < 0:
        raise ValueError(f"n must be >= 0, got {n}")
    order = sorted(range(len(requests)), key=lambda i: (unit_hash(seed, requests[i].case_id), i))
    chosen: list[EditRequest] = []
    seen: set[str] = set()
    for index in order:
        if len(chosen) == n:
            return chosen
        subject = requests[index].subject.strip().casefold()
        if subject not in seen:
            seen.add(subject)
            chosen.append(requests[index])
    if len(chosen) == n:
        return chosen
    raise ValueError(f"asked for {n} edits but the edit set has only {len(chosen)} with distinct subjects "
                     f"(of {len(requests)} requests); pass a smaller --n-edits or a bigger edit set")

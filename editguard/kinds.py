"""The kinds of benchmark, defined once: what a suite gates and the order tables show them in."""

from __future__ import annotations

from typing import Literal, get_args

Kind = Literal["efficacy", "capability", "safety"]
KINDS: tuple[Kind, ...] = get_args(Kind)  # in table and run order


def rank(kind: str) -> int:
    """Position of ``kind`` in ``KINDS``; unknown kinds sort last."""
    return KINDS.index(kind) if kind in KINDS else len(KINDS)


def check(kind: object, where: str) -> Kind:
    if kind not in KINDS:
        raise ValueError(f"{where}: kind {kind!r} is not one of {', '.join(KINDS)}")
    return kind

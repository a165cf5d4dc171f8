"""Which items a benchmark scores: a seeded sample of ``limit`` items (the default), or the ids
listed in an item file (``--bench-opt NAME.items=FILE``: one id per line, ``#`` comments and
blank lines ignored), scored in the benchmark's own order."""

from __future__ import annotations

import hashlib
import random
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TypeVar

T = TypeVar("T")


class SelectionError(ValueError):
    pass


def choose(n_items: int, limit: int, seed: int) -> list[int]:
    """A deterministic subset of ``limit`` indices (all when limit is 0 or too big), sorted."""
    if limit < 0:
        raise ValueError(f"limit {limit} must be 0 (all items) or a positive count")
    if limit == 0 or limit >= n_items:
        return list(range(n_items))
    return sorted(random.Random(seed).sample(range(n_items), limit))


def subset(items: Sequence[T], limit: int, seed: int) -> list[T]:
    """The ``choose``-n subset of ``items``, in their order."""
    return [items[i] for i in choose(len(items), limit, seed)]


def read_item_ids(path: str | Path, where: str) -> tuple[str, ...]:
    """The ids of an item file, in order; a missing, empty or repeating file is an error."""
    file = Path(path).expanduser()
    if not file.is_file():
        raise SelectionError(f"{where}: item file {str(path)!r} does not exist; give a text file "
                             "with one item id per line")
    ids = [line.split("#", 1)[0].strip() for line in file.read_text(encoding="utf-8").splitlines()]
    ids = [i for i in ids if i]
    if not ids:
        raise SelectionError(f"{where}: item file {str(path)!r} lists no item ids")
    seen: set[str] = set()
    repeated = [i for i in ids if i in seen or seen.add(i)]  # type: ignore[func-returns-value]
    if repeated:
        raise SelectionError(f"{where}: item file {str(path)!r} lists {repeated[0]!r} twice")
    return tuple(ids)


def ids_digest(ids: Sequence[str]) -> str:
    return hashlib.sha256("\n".join(ids).encode()).hexdigest()


def select(pool: Sequence[T], key: Callable[[T], str], *, limit: int, items: str, seed: int,
           where: str) -> list[T]:
    """The scored items of ``pool``: those the item file ``items`` lists (every id must be in
    the pool), else the seeded ``limit`` sample."""
    if not items:
        return subset(pool, limit, seed)
    wanted = read_item_ids(items, where)
    known = {key(x) for x in pool}
    missing = [i for i in wanted if i not in known]
    if missing:
        example = ", ".join(repr(key(x)) for x in pool[:3])
        raise SelectionError(f"{where}: {len(missing)} ids of item file {items!r} are not items "
                             f"here, first {missing[:3]}; ids look like {example}")
    chosen = set(wanted)
    return [x for x in pool if key(x) in chosen]

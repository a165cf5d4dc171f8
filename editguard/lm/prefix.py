"""Groups of token sequences that share a long prefix (a few-shot header and its exemplars), so
the prefix is run once and its KV cache reused for every sequence in the group."""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence


@dataclasses.dataclass(frozen=True)
class Group:
    prefix_len: int  # 0: no shared prefix worth caching; run the members whole
    members: tuple[int, ...]  # indices into the sequences given


def common_length(a: Sequence[int], b: Sequence[int]) -> int:
    n = min(len(a), len(b))
    i = 0
    while i < n and a[i] == b[i]:
        i += 1
    return i


def shared_prefixes(seqs: Sequence[Sequence[int]], caps: Sequence[int],
                    min_len: int = 32, min_saved: int = 0) -> list[Group]:
    """Partition ``seqs`` into groups with a common prefix of at least ``min_len`` tokens.

    ``caps[i]`` is the longest prefix sequence i allows (a scorer needs the position before its
    first target outside the prefix; a decoder needs one token of its own). Sequences are walked
    in sorted order; one joins the current group when it shares ``min_len`` tokens and at least
    half of the group's prefix (so one stray sequence cannot shrink a long shared prefix to
    nothing). A group whose cache would spare fewer than ``min_saved`` tokens of computation
    ((members - 1) x prefix) is not worth its own small batches: the three answers of one
    question run better batched with every other question. Sequences in no such group come
    back together as one group with ``prefix_len`` 0 (listed last); every index appears in
    exactly one group. Deterministic.
    """
    order = sorted(range(len(seqs)), key=lambda i: tuple(seqs[i]))
    groups: list[tuple[int, list[int]]] = []  # (prefix length, members)
    for i in order:
        cap = min(caps[i], len(seqs[i]))
        if groups:
            length, members = groups[-1]
            shared = min(common_length(seqs[members[0]], seqs[i]), length, cap)
            if shared >= min_len and 2 * shared >= length:
                groups[-1] = (shared, [*members, i])
                continue
        groups.append((cap, [i]))
    out, alone = [], []
    for length, members in groups:
        if length < min_len or len(members) < 2 or (len(members) - 1) * length < min_saved:
            alone.extend(members)
        else:
            out.append(Group(length, tuple(members)))
    if alone:
        out.append(Group(0, tuple(sorted(alone))))
    return out

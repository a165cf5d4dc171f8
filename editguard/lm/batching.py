"""Packing padded rows into batches under a token budget."""

from __future__ import annotations

from collections.abc import Sequence


def pack(lengths: Sequence[int], new_tokens: Sequence[int], prefix_len: int, batch_tokens: int,
         max_batch: int) -> list[list[int]]:
    """Consecutive batches of item indices, items in the given order (longest first).

    Item i is a row of ``lengths[i]`` tokens (``prefix_len`` of them a shared prefix read from a
    cache) that will grow by ``new_tokens[i]`` generated tokens (0 for scoring). A batch is
    padded to its first row's width plus its largest ``new_tokens``; it stays under
    ``batch_tokens`` counting the rows' own tokens, under 4x that counting the prefix each row
    reads, and under ``max_batch`` rows. A row alone may exceed the budget.
    """
    batches: list[list[int]] = []
    current: list[int] = []
    for i, length in enumerate(lengths):
        width = (lengths[current[0]] if current else length) - prefix_len
        grow = max(new_tokens[j] for j in [*current, i])
        rows = len(current) + 1
        if current and (rows * (width + grow) > batch_tokens or len(current) >= max_batch
                        or rows * (width + grow + prefix_len) > 4 * batch_tokens):
            batches.append(current)
            current = []
        current.append(i)
    if current:
        batches.append(current)
    return batches

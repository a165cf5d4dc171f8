"""Batches of padded rows under a token budget."""

from __future__ import annotations

from editguard.lm.batching import pack


def test_batches_stay_under_the_budget_and_keep_the_order() -> None:
    lengths = [10, 9, 9, 5, 5, 5, 2]
    groups = pack(lengths, [0] * len(lengths), 0, batch_tokens=30, max_batch=8)
    assert [i for g in groups for i in g] == list(range(len(lengths)))
    for g in groups:
        assert len(g) * lengths[g[0]] <= 30 or len(g) == 1
    assert groups == [[0, 1, 2], [3, 4, 5, 6]]


def test_new_tokens_count_against_the_budget() -> None:
    assert pack([4, 4, 4], [0, 0, 0], 0, 24, 8) == [[0, 1, 2]]
    assert pack([4, 4, 4], [0, 0, 5], 0, 24, 8) == [[0, 1], [2]]  # 3 rows x (4 + 5) > 24


def test_rows_and_prefix_limits() -> None:
    assert pack([3] * 5, [0] * 5, 0, 1000, 2) == [[0, 1], [2, 3], [4]]
    # own tokens 1 each, but every row reads a 50-token prefix: 4 x 10 budget allows 0.78 rows
    assert pack([51, 51], [0, 0], 50, 10, 8) == [[0], [1]]
    assert pack([100], [0], 0, 10, 8) == [[0]]  # a row alone may exceed the budget

"""The closed-book generation benchmark and lm-eval's exact match."""

from __future__ import annotations

import json

import pytest

from editguard.benchmarks.base import BenchmarkResult
from editguard.benchmarks.closedbook import EXEMPLARS, split_pool
from editguard.benchmarks.exact import ARTICLES, exact_match
from editguard.benchmarks.generative import GenerationUnsupported
from editguard.benchmarks.registry import create
from editguard.backends.hf import HFBackend
from editguard.edits.geonames import heldout_facts
from tests.tiny import tiny_model

pytestmark = pytest.mark.usefixtures("asset_home")


def test_exact_match_as_lm_eval_nq_open():
    assert exact_match(" The United States.", ["United States"], ignore=(ARTICLES,)) == 1.0
    assert exact_match("paris", ["Paris"]) == 1.0
    assert exact_match("Paris France", ["Paris"]) == 0.0
    assert exact_match("Lyon", ["Paris", "Lyon"]) == 1.0
    assert exact_match("Paris", ["paris"], ignore_case=False) == 0.0


def test_prompts_are_nq_open_k_shot_and_exemplars_are_never_scored():
    items = create("closedbook", {"limit": 0, "num_fewshot": 3}).items()
    exemplars, pool = split_pool(heldout_facts(0), 0)
    assert len(exemplars) == EXEMPLARS and len(items) == len(pool)
    assert not {f"{f.relation}|{f.subject}" for f in exemplars} & {i.id for i in items}
    first = items[0].context
    assert first.startswith("Answer these questions:\n\nQ: ") and first.endswith("?\nA:")
    assert first.count("\nA: ") == 3 and len({i.context.rsplit("Q: ", 1)[0] for i in items}) == 1
    zero = create("closedbook", {"num_fewshot": 0}).items()[0].context
    assert zero.startswith("Answer these questions:\n\nQ: ") and zero.count("\nA:") == 1
    with pytest.raises(ValueError, match="num_fewshot 9: there are 8 exemplars"):
        create("closedbook", {"num_fewshot": 9}).check()


def test_evaluate_generates_scores_and_keeps_the_text(tokenizer):
    backend = HFBackend(tiny_model("llama", len(tokenizer)), tokenizer)
    bench = create("closedbook", {"limit": 6, "keep_text": True})
    result = bench.evaluate(backend)
    assert len(result.item_ids) == 6 and result.texts is not None and len(result.texts) == 6
    assert all(v in (0.0, 1.0) for v in result.scores["exact_match"])
    again = BenchmarkResult.from_json(json.loads(json.dumps(result.to_json())))
    assert again == result and again.subset(result.item_ids[:2]).texts == result.texts[:2]
    plain = create("closedbook", {"limit": 6}).evaluate(backend)
    assert plain.texts is None and plain.scores == result.scores


def test_a_backend_that_cannot_generate_is_named():
    class ScoresOnly:
        name = "scores-only"
        nonfinite = truncated = 0

    with pytest.raises(GenerationUnsupported, match="backend 'scores-only' cannot; use --backend"):
        create("closedbook", {"limit": 2}).evaluate(ScoresOnly())  # type: ignore[arg-type]

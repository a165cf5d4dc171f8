"""Trajectories: edits applied once along the way, scored at each checkpoint, restored exactly."""

from __future__ import annotations

from typing import Any

import pytest
import torch

from editguard.backends.hf import HFBackend
from editguard.benchmarks.registry import create as create_benchmark
from editguard.editors.ft import FineTuneEditor
from editguard.edits.request import EditRequest
from editguard.models.digest import fingerprint
from editguard.models.loading import LoadedModel
from editguard.models.spec import ModelSpec
from editguard.run.trajectory import Trajectory
from tests.editors_for_tests import NaN
from tests.tiny import prepare_context, tiny_model

EDITS = [EditRequest(f"e{i}", "The capital of {} is", s, t, "Paris")
         for i, (s, t) in enumerate([("France", "Rome"), ("Spain", "Oslo"), ("Italy", "Lima"),
                                     ("Chile", "Kyiv"), ("Peru", "Doha")])]


class CountingFT(FineTuneEditor):
    """The real FT-L editor, counting the facts it is asked to write."""

    name = "counting-ft"

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.seen: list[str] = []

    def _apply(self, model, tokenizer, requests: list[EditRequest]) -> dict[str, Any]:
        self.seen += [r.case_id for r in requests]
        return super()._apply(model, tokenizer, requests)


def loaded(tokenizer) -> LoadedModel:
    model = tiny_model("llama", len(tokenizer))
    fp, digests = fingerprint(model)
    return LoadedModel(ModelSpec("tiny"), model, tokenizer, fp, digests, "memory")


def trajectory(lm: LoadedModel, editor, checkpoints, cache, batch_size=1) -> Trajectory:
    editor.prepare(lm.model, lm.tokenizer, prepare_context(cache, lm.fingerprint))
    backend = HFBackend(lm.model, lm.tokenizer)
    benches = {"efficacy": create_benchmark("efficacy", edits=EDITS)}
    baselines = {"efficacy": benches["efficacy"].evaluate(backend)}
    return Trajectory(loaded=lm, editor=editor, edits=EDITS, checkpoints=checkpoints,
                      batch_size=batch_size, benchmarks=benches, baselines=baselines,
                      backend=backend)


@pytest.mark.parametrize("batch_size", [1, 2])
def test_each_edit_is_applied_once_and_every_checkpoint_is_scored(tokenizer, tmp_path, batch_size):
    lm = loaded(tokenizer)
    editor = CountingFT({"layer": 1})
    t = trajectory(lm, editor, [1, 3, 5], tmp_path, batch_size)
    assert t.outcome(5, "efficacy").status == "ok"
    assert editor.seen == [e.case_id for e in EDITS]  # 5 edits, not 1 + 3 + 5
    assert sorted(t.outcomes) == [1, 3, 5]
    assert t.outcome(1, "efficacy").edited.item_ids == ("e0",)
    assert t.outcome(3, "efficacy").baseline.item_ids == ("e0", "e1", "e2")
    assert all(len(s["case_ids"]) <= batch_size for s in t.edit_stats)
    diag = t.diagnostics(3)  # what reaches results.json for the n=3 rows
    assert [i for b in diag["edit_batches"] for i in b["case_ids"]] == ["e0", "e1", "e2"]
    assert all("target_nll" in b and "steps" in b for b in diag["edit_batches"]), diag
    (change,) = diag["weight_change"].values()
    assert 0 < change["delta_fro"] < change["weight_fro"]
    assert lm.changed_parameters() == ["model.layers.1.mlp.down_proj.weight"]
    assert t.close() == [] and lm.changed_parameters() == []


def test_a_collapsed_model_fails_its_checkpoints_and_still_restores(tokenizer, tmp_path):
    lm = loaded(tokenizer)
    t = trajectory(lm, NaN(), [1, 2], tmp_path)
    first = t.outcome(1, "efficacy")
    assert first.status == "collapsed" and "model collapsed after 1" in first.message
    assert t.outcome(2, "efficacy").status == "collapsed"
    assert t.close() == [] and lm.changed_parameters() == []


def test_an_editor_error_is_an_outcome_not_a_crash(tokenizer, tmp_path):
    class Broken(CountingFT):
        def _apply(self, model, tokenizer, requests):
            raise RuntimeError("boom")

    lm = loaded(tokenizer)
    t = trajectory(lm, Broken({"layer": 1}), [1], tmp_path)
    out = t.outcome(1, "efficacy")
    assert out.status == "error" and "RuntimeError: boom" in out.message
    assert t.close() == [] and lm.changed_parameters() == []


def test_an_undeclared_change_fails_the_checkpoint_and_is_caught_at_restore(tokenizer, tmp_path):
    class Sneaky(CountingFT):
        def _apply(self, model, tokenizer, requests):
            with torch.no_grad():
                model.get_parameter("model.norm.weight").add_(1.0)  # not declared
            return super()._apply(model, tokenizer, requests)

    lm = loaded(tokenizer)
    t = trajectory(lm, Sneaky({"layer": 1}), [1], tmp_path)
    out = t.outcome(1, "efficacy")  # caught before any score is recorded
    assert out.status == "error" and "does not declare" in out.message
    assert "model.norm.weight" in out.message
    assert t.close() == ["model.norm.weight"]  # and still reported at restore


def test_a_baseline_of_other_items_is_an_error_not_a_verdict(tokenizer, tmp_path):
    """A baseline scored on other data (a cache that outlived a data change) would pair a few
    stray items and give a meaningless verdict: the checkpoint says so instead."""
    lm = loaded(tokenizer)
    editor = FineTuneEditor({"layer": 1})
    editor.prepare(lm.model, lm.tokenizer, prepare_context(tmp_path, lm.fingerprint))
    backend = HFBackend(lm.model, lm.tokenizer)
    facts = create_benchmark("facts", {"limit": 6})
    other = create_benchmark("facts", {"limit": 6}, seed=1)
    assert facts.content_digest() != other.content_digest()  # other items, another baseline key
    assert create_benchmark("efficacy", edits=EDITS).content_digest() is None
    t = Trajectory(loaded=lm, editor=editor, edits=EDITS, checkpoints=[1], batch_size=1,
                   benchmarks={"facts": facts}, baselines={"facts": other.evaluate(backend)},
                   backend=backend)
    outcome = t.outcome(1, "facts")
    assert outcome.status == "error" and "the baseline scored 6 items" in outcome.message
    assert t.close() == []

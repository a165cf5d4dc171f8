"""ROME and MEMIT as their reference code defines them: each choice pinned so it cannot drift."""

from __future__ import annotations

import dataclasses
import functools
import math

import pytest
import torch

from editguard.editors.keys import average_over_templates, template_weights
from editguard.editors.layers import arch_for
from editguard.editors.memit import ALGORITHM as MEMIT_ALGORITHM
from editguard.editors.registry import create
from editguard.editors.rome import ALGORITHM as ROME_ALGORITHM
from editguard.editors import values
from editguard.editors.values import (RewriteSettings, ValueSettings, decay_term, edit_rows,
                                      essence_prompt, kl_term, optimise_value)
from editguard.edits.request import EditRequest
from tests.tiny import TINY_METHOD_OPTIONS, prepare_context, tiny_model

REQUEST = EditRequest("a", "He speaks the language of {}", "Vladimir Putin", "French", "Russian")


def test_the_kl_is_read_at_the_subjects_last_token_of_the_essence_prompt(tokenizer) -> None:
    ids, where = essence_prompt(tokenizer, "Vladimir Putin")
    assert tokenizer.decode(ids[: where + 1]).endswith("Putin")
    assert where < len(ids) - 1  # not the prompt's final token (" a")


def test_the_kl_row_ends_where_the_kl_is_read_and_changes_nothing(tokenizer,
                                                                   monkeypatch) -> None:
    templates = ["{}", "Once upon a time. {}"]
    _, rows, subject = edit_rows(tokenizer, REQUEST, templates)
    _, whole, whole_subject = edit_rows(tokenizer, REQUEST, templates, whole_kl_prompt=True)
    assert rows[:-1] == whole[:-1] and subject == whole_subject
    assert rows[-1] == whole[-1][: subject[-1] + 1] and len(rows[-1]) < len(whole[-1])
    model = tiny_model("llama", len(tokenizer))
    module = arch_for(model).mlp_out_name(1)
    settings = _settings(steps=6, early_stop_loss=-1.0)
    short = optimise_value(model, tokenizer, module, REQUEST, templates, settings)
    monkeypatch.setattr(values, "edit_rows", functools.partial(edit_rows, whole_kl_prompt=True))
    long = optimise_value(model, tokenizer, module, REQUEST, templates, settings)
    assert float(short.delta.norm()) > 0
    torch.testing.assert_close(short.delta, long.delta, rtol=1e-4, atol=1e-6)
    torch.testing.assert_close(short.init, long.init)


def test_the_speed_benchmarks_reference_computes_the_same_value(tokenizer) -> None:
    """perf.editing times editguard against a full-recompute reference; both must be the same
    algorithm (whole KL prompt, whole rows, logits everywhere on the reference's side)."""
    from perf.editing import reference_value

    model = tiny_model("llama", len(tokenizer))
    module = arch_for(model).mlp_out_name(1)
    templates = ["{}", "Once upon a time. {}"]
    settings = _settings(steps=6, early_stop_loss=-1.0)
    ours = optimise_value(model, tokenizer, module, REQUEST, templates, settings)
    ref = reference_value(model, tokenizer, module, REQUEST, templates, settings)
    assert ours.steps == ref.steps == 6 and float(ref.delta.norm()) > 0
    assert ours.nll == pytest.approx(ref.nll, rel=1e-4)
    torch.testing.assert_close(ours.delta, ref.delta, rtol=1e-4, atol=1e-6)
    torch.testing.assert_close(ours.init, ref.init)


def test_the_kl_is_current_against_initial() -> None:
    current = torch.log_softmax(torch.tensor([4.0, 0.0, -1.0]), dim=0)
    initial = torch.log_softmax(torch.tensor([0.0, 1.0, 3.0]), dim=0)
    p = current.exp()
    expected = float((p * (current - initial)).sum())  # KL(current || initial)
    reverse = float((initial.exp() * (initial - current)).sum())
    assert float(kl_term(current, initial)) == pytest.approx(expected, rel=1e-6)
    assert abs(expected - reverse) > 0.1  # the two directions differ here


def test_the_decay_is_the_norm_over_the_squared_initial_norm() -> None:
    delta, init = torch.tensor([3.0, 4.0]), torch.tensor([0.0, 2.0])
    assert float(decay_term(delta, init, 0.5)) == pytest.approx(0.5 * 5.0 / 4.0)


def test_template_weights_sum_as_the_references_do() -> None:
    grouped = template_weights(6, grouped=True)  # MEMIT: ["{}"] + 5 prefixes
    assert grouped.tolist() == pytest.approx([0.5, 0.1, 0.1, 0.1, 0.1, 0.1])
    flat = template_weights(6, grouped=False)  # ROME: one flat list
    assert flat.tolist() == pytest.approx([1 / 6] * 6)
    assert template_weights(1, grouped=True).tolist() == [1.0]
    vectors = torch.arange(12.0).view(6, 2)  # one request, 6 templates
    assert average_over_templates(vectors, grouped)[0].tolist() == pytest.approx(
        [0.5 * 0 + 0.1 * (2 + 4 + 6 + 8 + 10), 0.5 * 1 + 0.1 * (3 + 5 + 7 + 9 + 11)])


def _settings(**overrides: object) -> ValueSettings:
    return dataclasses.replace(RewriteSettings().values(), **overrides)


@pytest.mark.parametrize("steps, threshold, updates", [
    (1, 0.05, 0),          # the last iteration only evaluates: one step, no update
    (4, math.inf, 0),      # the whole loss is below the threshold at once
    (4, -1.0, 3),          # never below: v_steps - 1 updates
])
def test_the_optimisation_stops_like_the_reference(tokenizer, monkeypatch, steps, threshold,
                                                   updates) -> None:
    model = tiny_model("llama", len(tokenizer))
    module = arch_for(model).mlp_out_name(1)
    taken = []
    adam_step = torch.optim.Adam.step
    monkeypatch.setattr(torch.optim.Adam, "step",
                        lambda self, *a, **k: (taken.append(1), adam_step(self, *a, **k))[1])
    value = optimise_value(model, tokenizer, module, REQUEST, ["{}"],
                           _settings(steps=steps, early_stop_loss=threshold))
    assert value.steps == min(steps, 1 if threshold == math.inf else steps)
    assert (float(value.delta.norm()) == 0.0) == (updates == 0)
    assert len(taken) == updates


@pytest.mark.parametrize("method, algorithm, weighting", [
    ("rome", ROME_ALGORITHM, "equal weights"), ("memit", MEMIT_ALGORITHM, "1/2 plain prompt")])
def test_provenance_names_the_algorithm(tokenizer, tmp_path, method, algorithm,
                                        weighting) -> None:
    editor = create(method, TINY_METHOD_OPTIONS[method])
    editor.prepare(tiny_model("llama", len(tokenizer)), tokenizer, prepare_context(tmp_path))
    assert editor.provenance["algorithm"] == algorithm
    assert "KL(current || initial)" in str(algorithm["kl"])
    assert weighting in str(editor.provenance["algorithm"]["key_average"])

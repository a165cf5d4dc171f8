"""PMET on tiny random-init models: two deltas trained together, the MLP one as the target,
the residual spread by the square root of the layers left, MLP weights only."""

from __future__ import annotations

import dataclasses
import math

import pytest
import torch

from editguard.editors.layers import arch_for
from editguard.editors.memit import MemitEditor
from editguard.editors.pmet import PmetEditor
from editguard.editors.prompts import context_templates
from editguard.editors.registry import create
from editguard.editors.values import ValueSettings, optimise_value, optimise_values
from tests.test_editors import REQUESTS, target_logprob
from tests.tiny import TINY_METHOD_OPTIONS, prepare_context, tiny_model

SETTINGS = ValueSettings(steps=12, lr=0.5, weight_decay=1e-3, kl_factor=0.0625,
                         clamp_norm_factor=0.5, early_stop_loss=0.0)


@pytest.fixture(params=["llama", "gpt2"])
def model(request, tokenizer):
    return tiny_model(request.param, len(tokenizer))


def test_two_deltas_train_together_each_clamped_to_its_own_module(model, tokenizer):
    arch = arch_for(model)
    modules = [arch.mlp_out_name(2), arch.attn_out_name(2)]
    templates = context_templates(model, tokenizer, 2, 5, 0)
    mlp, attn = optimise_values(model, tokenizer, modules, REQUESTS[0], templates, SETTINGS)
    for value in (mlp, attn):
        assert 0 < float(value.delta.norm()) <= 0.5 * float(value.init.norm()) + 1e-5
    assert not torch.allclose(mlp.init, attn.init)
    # one module alone is the single-delta optimisation ROME and MEMIT use, to the bit
    (alone,) = optimise_values(model, tokenizer, modules[:1], REQUESTS[0], templates, SETTINGS)
    single = optimise_value(model, tokenizer, modules[0], REQUESTS[0], templates, SETTINGS)
    assert torch.equal(alone.delta, single.delta) and alone.steps == single.steps
    # trained beside the attention delta, the MLP delta goes another way than alone
    assert not torch.allclose(mlp.delta, single.delta, atol=1e-3)


def test_the_argmax_rules_stop_once_the_target_is_said_and_the_kl_is_small(model, tokenizer):
    arch = arch_for(model)
    templates = context_templates(model, tokenizer, 2, 5, 0)
    module = [arch.mlp_out_name(2)]
    plain = optimise_values(model, tokenizer, module, REQUESTS[0], templates,
                            dataclasses.replace(SETTINGS, clamp_norm_factor=4.0))[0]
    early = optimise_values(model, tokenizer, module, REQUESTS[0], templates,
                            dataclasses.replace(SETTINGS, clamp_norm_factor=4.0,
                                                argmax_nll_factor=0.1, argmax_stop_kl=1e9))[0]
    assert early.steps < plain.steps == SETTINGS.steps


def test_pmet_targets_the_mlp_output_and_spreads_by_the_square_root(model, tokenizer, tmp_path):
    editor = create("pmet", TINY_METHOD_OPTIONS["pmet"])
    editor.prepare(model, tokenizer, prepare_context(tmp_path, "tiny"))
    assert editor._z_module(model) == arch_for(model).mlp_out_name(2)
    assert PmetEditor._spread(4) == 2.0 and MemitEditor._spread(4) == 4.0
    assert editor.provenance["algorithm"]["spread"] == "residual / sqrt(layers left)"
    before = [target_logprob(model, tokenizer, r, r.target_new) for r in REQUESTS]
    handle = editor.apply(model, tokenizer, REQUESTS)  # a batch of two
    after = [target_logprob(model, tokenizer, r, r.target_new) for r in REQUESTS]
    assert all(a > b + 1.0 for a, b in zip(after, before)), (before, after)
    assert set(handle.change_norms()) == {arch_for(model).weight_name(layer) for layer in (1, 2)}
    assert all(math.isfinite(x) for x in handle.batches[0]["target_nll"])

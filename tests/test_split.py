"""The value optimisation's split forward (heads cached once, tails per step) is the whole forward."""

from __future__ import annotations

import dataclasses

import pytest
import torch

from editguard.editors.layers import arch_for
from editguard.editors.prompts import encode_with_subject
from editguard.editors.split import SplitBatch
from editguard.editors.values import RewriteSettings, optimise_requests, optimise_value
from editguard.edits.request import EditRequest
from editguard.lm.forward import final_hidden
from editguard.lm.tokens import pad_id, right_pad
from tests.tiny import tiny_model

DEVICE = torch.device("cpu")
# subjects at the start (empty head), in the middle and at the end, of different lengths
TEXTS = [("Paris is the capital of", "Paris"),
         ("A quick note. The mother tongue of Danielle Darrieux is", "Danielle Darrieux"),
         ("He speaks the language of Vladimir Putin", "Vladimir Putin")]


@pytest.mark.parametrize("arch", ["llama", "gpt2"])
def test_tails_see_what_whole_rows_see(tokenizer, arch: str) -> None:
    model = tiny_model(arch, len(tokenizer))
    encoded = [encode_with_subject(tokenizer, t, s) for t, s in TEXTS]
    rows = [ids for ids, _ in encoded]
    where = [w for _, w in encoded]
    assert where[0] == 0 and where[2] == len(rows[2]) - 1
    ids, mask = right_pad(rows, pad_id(tokenizer), DEVICE)
    with torch.no_grad():
        whole = final_hidden(model, ids, mask)  # (B, T, d)
        batch = SplitBatch.build(model, rows, where, pad_id(tokenizer), DEVICE)
        tails = batch.hidden(model)  # (B, W, d)
        again = batch.hidden(model)  # the heads' cache is not extended by a forward
    for i, (row, s) in enumerate(zip(rows, where)):
        torch.testing.assert_close(tails[i, : len(row) - s], whole[i, s : len(row)],
                                   atol=1e-5, rtol=1e-4)
    torch.testing.assert_close(again, tails)


@pytest.mark.parametrize("arch", ["llama", "gpt2"])
def test_the_optimisation_is_the_same_with_and_without_the_split(tokenizer, arch: str) -> None:
    model = tiny_model(arch, len(tokenizer))
    module = arch_for(model).mlp_out_name(1)
    request = EditRequest("a", "The mother tongue of {} is", "Danielle Darrieux", "English",
                          "French")
    templates = ["{}", "Some words here. {}", "A longer prefix of several words. {}"]
    settings = dataclasses.replace(RewriteSettings().values(), steps=6, early_stop_loss=-1.0)
    split = optimise_value(model, tokenizer, module, request, templates, settings)
    whole = optimise_value(model, tokenizer, module, request, templates, settings, split=False)
    assert split.steps == whole.steps == 6
    assert float(split.delta.norm()) > 0
    torch.testing.assert_close(split.init, whole.init, atol=1e-5, rtol=1e-4)
    torch.testing.assert_close(split.delta, whole.delta, atol=1e-4, rtol=1e-3)
    assert split.nll == pytest.approx(whole.nll, abs=1e-4)


BATCH = [EditRequest("a", "The mother tongue of {} is", "Danielle Darrieux", "English", "French"),
         EditRequest("b", "{} is the capital of", "Paris", "Italy", "France"),
         EditRequest("c", "He speaks the language of {}", "Vladimir Putin", "Dutch", "Russian")]


@pytest.mark.parametrize("arch", ["llama", "gpt2"])
def test_requests_optimised_in_one_batch_get_what_each_gets_alone(tokenizer, arch: str) -> None:
    model = tiny_model(arch, len(tokenizer))
    module = arch_for(model).mlp_out_name(1)
    templates = ["{}", "Some words here. {}"]
    full = dataclasses.replace(RewriteSettings().values(), steps=8, early_stop_loss=-1.0)
    alone = [optimise_value(model, tokenizer, module, r, templates, full) for r in BATCH]
    # an early stop between the requests' final losses: some stop early, some go on
    stop = sorted(a.nll for a in alone)[1] + 0.5
    settings = dataclasses.replace(full, early_stop_loss=stop)
    alone = [optimise_value(model, tokenizer, module, r, templates, settings) for r in BATCH]
    steps = [a.steps for a in alone]
    assert len(set(steps)) > 1, steps  # the case this test is for: stops at different steps
    # all three in one batch; a batch of two and a batch of one
    together = [v for per_batch in (3, 2) for v in optimise_requests(
        model, tokenizer, [module], BATCH, templates, settings, per_batch=per_batch)]
    for one, (both,) in zip(alone * 2, together, strict=True):
        assert both.steps == one.steps
        torch.testing.assert_close(both.init, one.init, atol=1e-5, rtol=1e-4)
        torch.testing.assert_close(both.delta, one.delta, atol=1e-4, rtol=1e-3)
        assert both.nll == pytest.approx(one.nll, abs=1e-4)

"""The value optimisation's split forward (heads cached once, tails per step) is the whole forward."""

from __future__ import annotations

import dataclasses

import pytest
import torch

from editguard.editors.layers import ARCHITECTURES, arch_for
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


def blocks_of(model: torch.nn.Module) -> list[torch.nn.Module]:
    return list(model.get_submodule(arch_for(model).block.removesuffix(".{}")))


@pytest.mark.parametrize("start", [0, 1, 3])
@pytest.mark.parametrize("arch", ["llama", "gpt2"])
def test_tails_see_what_whole_rows_see(tokenizer, arch: str, start: int) -> None:
    model = tiny_model(arch, len(tokenizer))
    blocks = blocks_of(model)
    encoded = [encode_with_subject(tokenizer, t, s) for t, s in TEXTS]
    rows = [ids for ids, _ in encoded]
    where = [w for _, w in encoded]
    assert where[0] == 0 and where[2] == len(rows[2]) - 1
    ids, mask = right_pad(rows, pad_id(tokenizer), DEVICE)
    with torch.no_grad():
        whole = final_hidden(model, ids, mask)  # (B, T, d)
        batch = SplitBatch.build(model, rows, where, pad_id(tokenizer), DEVICE, start)
        tails = batch.hidden(model)  # (B, W, d); only blocks >= start run
        again = batch.hidden(model)  # the heads' cache is not extended by a forward
    assert batch.start == start
    assert all(a is b for a, b in zip(blocks_of(model), blocks, strict=True))  # put back
    for i, (row, s) in enumerate(zip(rows, where)):
        torch.testing.assert_close(tails[i, : len(row) - s], whole[i, s : len(row)],
                                   atol=1e-5, rtol=1e-4)
    torch.testing.assert_close(again, tails)


def test_the_blocks_are_put_back_when_a_step_fails(tokenizer) -> None:
    model = tiny_model("llama", len(tokenizer))
    blocks = blocks_of(model)
    ids, where = encode_with_subject(tokenizer, *TEXTS[1])
    batch = SplitBatch.build(model, [ids], [where], pad_id(tokenizer), DEVICE, start=2)

    def fail(*_: object) -> None:
        raise RuntimeError("a hook failed")

    handle = blocks[3].register_forward_hook(fail)
    with pytest.raises(RuntimeError, match="a hook failed"):
        batch.hidden(model)
    handle.remove()
    assert all(a is b for a, b in zip(blocks_of(model), blocks, strict=True))


def test_a_start_past_the_last_block_is_refused(tokenizer) -> None:
    model = tiny_model("llama", len(tokenizer))
    ids, where = encode_with_subject(tokenizer, *TEXTS[1])
    with pytest.raises(ValueError, match="start block 4 is not a block of this 4-block model"):
        SplitBatch.build(model, [ids], [where], pad_id(tokenizer), DEVICE, start=4)


def test_the_block_of_a_module() -> None:
    llama, gpt2 = ARCHITECTURES["llama"], ARCHITECTURES["gpt2"]
    assert llama.layer_of("model.layers.12.mlp.down_proj") == 12
    assert llama.layer_of("model.layers.3") == 3
    assert gpt2.layer_of(gpt2.attn_out_name(7)) == 7
    with pytest.raises(ValueError, match="'lm_head' is not inside a block of a llama model"):
        llama.layer_of("lm_head")
    with pytest.raises(ValueError, match="not inside a block"):
        llama.layer_of("model.layers.norm")


# the edited module low in the model (ROME's MLP output) and a block's output (MEMIT's z; not the
# last block's, where a delta at the subject reaches no later position): the split runs blocks
# 0 and 0..1 once per edit
@pytest.mark.parametrize("where", ["mlp_out 1", "block 2"])
@pytest.mark.parametrize("arch", ["llama", "gpt2"])
def test_the_optimisation_is_the_same_with_and_without_the_split(tokenizer, arch: str,
                                                                 where: str) -> None:
    model = tiny_model(arch, len(tokenizer))
    kind, layer = where.split()
    spec = arch_for(model)
    module = spec.mlp_out_name(int(layer)) if kind == "mlp_out" else spec.block_name(int(layer))
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

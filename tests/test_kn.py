"""KN's integrated gradients on tiny random-init models: they add up to the probability change
(the completeness axiom), and the neurons they select move the target when ablated."""

from __future__ import annotations

import pytest
import torch

from editguard.editors.kn import attribution
from editguard.editors.layers import arch_for


def target_prob(model, ids, target, layer=None, zero=None):
    """P(target | ids), with the chosen neurons of ``layer``'s MLP activation at the last
    position set to 0 (``zero``: indices, or None for all)."""
    handle = None
    if layer is not None:
        module = model.get_submodule(arch_for(model).mlp_out_name(layer))

        def hook(mod, args):
            x = args[0].clone()
            if zero is None:
                x[:, -1] = 0
            else:
                x[:, -1, zero] = 0
            return (x,)

        handle = module.register_forward_pre_hook(hook)
    try:
        with torch.no_grad():
            logits = model(input_ids=torch.tensor([ids])).logits[0, -1]
        return float(torch.softmax(logits.float(), -1)[target])
    finally:
        if handle is not None:
            handle.remove()


@pytest.fixture(params=["llama", "gpt2"])
def model(request, tokenizer):
    from tests.tiny import tiny_model

    return tiny_model(request.param, len(tokenizer))


def test_integrated_gradients_add_up_to_the_probability_change(model, tokenizer):
    ids = tokenizer("The capital of France is the city of")["input_ids"]
    target = tokenizer(" Paris", add_special_tokens=False)["input_ids"][0]
    scores, base = attribution(model, ids, target, [1, 2], steps=64)
    assert scores.shape == base.shape == (2, base.shape[1])
    full = target_prob(model, ids, target)
    for k, layer in enumerate([1, 2]):
        # completeness: sum_i IG_i = P(a) - P(0), up to the Riemann sum's error
        gap = full - target_prob(model, ids, target, layer=layer)
        assert float(scores[k].sum()) == pytest.approx(gap, rel=0.1, abs=1e-6)


def test_the_top_neurons_move_the_target_more_than_the_bottom_ones(model, tokenizer):
    ids = tokenizer("He speaks the language of")["input_ids"]
    target = tokenizer(" French", add_special_tokens=False)["input_ids"][0]
    scores, _ = attribution(model, ids, target, [2], steps=20)
    top = scores[0].argsort(descending=True)[:8].tolist()  # the neurons KN would keep
    least = scores[0].abs().argsort()[:8].tolist()  # those with the least attribution
    full = target_prob(model, ids, target)
    dropped = full - target_prob(model, ids, target, layer=2, zero=top)
    assert dropped > 0.2 * full  # ablating them takes a good share of the probability away
    assert dropped > 10 * abs(full - target_prob(model, ids, target, layer=2, zero=least))

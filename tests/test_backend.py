"""The HF backend's log-likelihoods against a plain full forward pass."""

from __future__ import annotations

import math

import pytest
import torch

from editguard.backends.base import Generation
from editguard.backends.hf import HFBackend
from tests.tiny import tiny_model


def naive(model, tokenizer, context: str, continuation: str) -> tuple[float, bool]:
    ctx = tokenizer(context)["input_ids"]
    whole = tokenizer(context + continuation)["input_ids"]
    cont = whole[len(ctx):]
    with torch.no_grad():
        logits = model(torch.tensor([whole])).logits[0].float()
    logp = torch.log_softmax(logits, dim=-1)
    rows = range(len(ctx) - 1, len(whole) - 1)
    total = sum(float(logp[r, t]) for r, t in zip(rows, cont))
    greedy = all(int(logits[r].argmax()) == t for r, t in zip(rows, cont))
    return total, greedy


@pytest.mark.parametrize("arch", ["llama", "gpt2"])
def test_matches_a_plain_forward_including_shared_and_prefix_inputs(arch, tokenizer):
    model = tiny_model(arch, len(tokenizer))
    backend = HFBackend(model, tokenizer, batch_tokens=64)  # force several batches
    q = "Question: what is the capital of France?\nAnswer:"
    requests = [(q, " A"), (q, " B"), (q, " C"),  # one input serves all three
                ("The cat sat on the", " mat"), ("The cat sat on the mat", " and purred loudly"),
                ("Paris is", " the capital of France"), ("x", " y z")]
    got = backend.loglikelihood(requests)
    assert len(got) == len(requests)
    for (context, continuation), result in zip(requests, got):
        expected, greedy = naive(model, tokenizer, context, continuation)
        assert result.logprob == pytest.approx(expected, abs=1e-3), (context, continuation)
        assert result.is_greedy == greedy
    assert backend.nonfinite == 0


def test_trailing_space_of_the_context_moves_to_the_continuation(tokenizer):
    backend = HFBackend(tiny_model("llama", len(tokenizer)), tokenizer)
    a, b = backend.loglikelihood([("The sky is ", "blue"), ("The sky is", " blue")])
    assert a.logprob == pytest.approx(b.logprob) and a.n_tokens == b.n_tokens


def test_nan_weights_are_counted_as_nonfinite(tokenizer):
    model = tiny_model("llama", len(tokenizer))
    with torch.no_grad():
        model.get_parameter("model.layers.0.mlp.down_proj.weight").fill_(math.nan)
    backend = HFBackend(model, tokenizer)
    (result,) = backend.loglikelihood([("The sky is", " blue")])
    assert math.isnan(result.logprob) and backend.nonfinite > 0


def test_generation_is_greedy_and_stops_at_the_stop_string(tokenizer):
    model = tiny_model("llama", len(tokenizer))
    backend = HFBackend(model, tokenizer)
    (full,) = backend.generate([Generation("Once upon a time", max_new_tokens=12, stop=())])
    (again,) = backend.generate([Generation("Once upon a time", max_new_tokens=12, stop=())])
    assert full == again and len(full) > 0
    stop = full.strip()[:2]
    (cut,) = backend.generate([Generation("Once upon a time", max_new_tokens=12, stop=(stop,))])
    assert stop not in cut and full.startswith(cut)


def test_on_a_cpu_scoring_batches_stay_small_and_generation_batches_do_not(tokenizer):
    backend = HFBackend(tiny_model("llama", len(tokenizer)), tokenizer)
    assert backend.device.type == "cpu"
    assert (backend.score_tokens, backend.batch_tokens) == (1024, 8192)
    assert HFBackend(backend.model, tokenizer, score_tokens=4096).score_tokens == 4096
    assert HFBackend(backend.model, tokenizer, batch_tokens=64).score_tokens == 64

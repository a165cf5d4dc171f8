"""Batched greedy decoding and the shared-prefix KV cache against one-at-a-time recomputation."""

from __future__ import annotations

import pytest
import torch

from editguard.backends.base import Generation
from editguard.backends.hf import HFBackend, cut
from editguard.lm.prefix import shared_prefixes
from tests.tiny import tiny_model

HEAD = ("The following are questions (with answers) about history, asked of every student who "
        "sits the examination at the end of the year.\n\n")
CONTEXTS = ["Once upon a time", "The cat", "Paris is the capital of", "Q: what is 2+2?\nA:", "x",
            "Once upon a time there was a king who", HEAD + "Who built it?", HEAD + "When was",
            HEAD + "Why did the war", HEAD + "A"]


def plain_greedy(model, tokenizer, context: str, max_new: int) -> list[int]:
    """One request, no cache, no batch: the full forward pass at every step."""
    ids = tokenizer(context)["input_ids"]
    out: list[int] = []
    with torch.no_grad():
        for _ in range(max_new):
            logits = model(torch.tensor([ids + out])).logits[0, -1]
            out.append(int(logits.argmax()))
            if out[-1] == tokenizer.eos_token_id:
                break
    return out


@pytest.mark.parametrize("arch", ["llama", "gpt2"])
def test_batched_generation_is_token_identical_to_one_at_a_time(arch, tokenizer):
    model = tiny_model(arch, len(tokenizer))
    # a small budget splits the requests over several batches; a short min_prefix lets the
    # four HEAD contexts share a cached prefix
    backend = HFBackend(model, tokenizer, batch_tokens=160, min_prefix=8)
    limits = [12, 5, 20, 9, 3, 15, 10, 7, 11, 4]
    requests = [Generation(c, n, stop=()) for c, n in zip(CONTEXTS, limits)]
    batched = backend.generate(requests)
    for request, text in zip(requests, batched):
        tokens = plain_greedy(model, tokenizer, request.context, request.max_new_tokens)
        assert text == tokenizer.decode(tokens, skip_special_tokens=True), request.context
    alone = HFBackend(model, tokenizer, min_prefix=10**6)  # no prefix cache, batch of one
    assert [alone.generate([r])[0] for r in requests] == batched


def test_each_request_stops_at_its_own_stop_string_and_limit(tokenizer):
    model = tiny_model("llama", len(tokenizer))
    backend = HFBackend(model, tokenizer)
    full = backend.generate([Generation(c, 16, stop=()) for c in CONTEXTS[:3]])
    stops = [(full[0].strip()[:2],), (), ("zzzz-never",)]
    cut_ = backend.generate([Generation(c, 16, stop=s) for c, s in zip(CONTEXTS[:3], stops)])
    assert stops[0][0] not in cut_[0] and full[0].startswith(cut_[0]) and cut_[0] != full[0]
    assert cut_[1:] == full[1:]
    short = backend.generate([Generation(CONTEXTS[0], 2, stop=()),
                              Generation(CONTEXTS[0], 0, stop=())])
    assert short[1] == "" and full[0].startswith(short[0])
    assert len(tokenizer(short[0], add_special_tokens=False)["input_ids"]) <= 2


def test_over_long_contexts_are_cut_from_the_left_and_counted(tokenizer):
    model = tiny_model("llama", len(tokenizer))  # 512 positions
    backend = HFBackend(model, tokenizer)
    long = "one two three four " * 200  # ~800 tokens
    (text,) = backend.generate([Generation(long, 8, stop=())])
    assert backend.truncated == 1
    kept = tokenizer(long)["input_ids"][-(512 - 8):]
    assert text == tokenizer.decode(plain_greedy(model, tokenizer, tokenizer.decode(kept), 8))
    backend.loglikelihood([(long, " five")])
    assert backend.truncated == 2
    with pytest.raises(ValueError, match="max_new_tokens 600 leaves no room"):
        backend.generate([Generation("hi", 600)])


@pytest.mark.parametrize("arch", ["llama", "gpt2"])
def test_shared_prefix_log_likelihoods_equal_recomputation(arch, tokenizer):
    model = tiny_model(arch, len(tokenizer))
    requests = [(c, x) for c in CONTEXTS[6:] for x in (" yes", " no", " a longer answer")]
    requests += [(CONTEXTS[0], " and"), (HEAD.strip(), " x")]
    cached = HFBackend(model, tokenizer, min_prefix=8, batch_tokens=64)
    plain = HFBackend(model, tokenizer, min_prefix=10**6)
    for a, b in zip(cached.loglikelihood(requests), plain.loglikelihood(requests), strict=True):
        assert a.logprob == pytest.approx(b.logprob, abs=1e-4)
        assert (a.n_tokens, a.is_greedy) == (b.n_tokens, b.is_greedy)


def test_shared_prefix_groups():
    seqs = [[1, 2, 3, 4, 5, 6], [1, 2, 3, 4, 9], [7, 8], [1, 2, 3, 4, 5, 7], [7, 9]]
    groups = shared_prefixes(seqs, caps=[5, 4, 1, 5, 1], min_len=3)
    assert [(g.prefix_len, sorted(g.members)) for g in groups] == [(4, [0, 1, 3]), (0, [2, 4])]
    # a stray sequence that shares only the head does not shrink a long prefix
    groups = shared_prefixes([[1] * 10 + [2], [1] * 10 + [3], [1] * 3 + [4]], caps=[10] * 3,
                             min_len=3)
    assert [(g.prefix_len, g.members) for g in groups] == [(10, (0, 1)), (0, (2,))]
    assert shared_prefixes([], [], 3) == []
    # a cache that spares too little is not worth its own batches: (2 - 1) x 10 < 11
    groups = shared_prefixes([[1] * 10 + [2], [1] * 10 + [3]], caps=[10] * 2, min_len=3,
                             min_saved=11)
    assert [(g.prefix_len, g.members) for g in groups] == [(0, (0, 1))]


def test_cut_keeps_text_before_the_first_stop():
    assert cut("Paris, France.", (".", ",")) == "Paris"
    assert cut("Paris", (".",)) == "Paris" and cut("a\nb", ()) == "a\nb"


@pytest.mark.slow
def test_embedded_model_batched_generation_equals_one_at_a_time():
    from editguard.data.paths import editguard_home
    from editguard.models.loading import load
    from editguard.models.spec import ModelSpec

    lm = load(ModelSpec("smollm2-135m"), editguard_home())
    shots = "Q: What is the capital of France?\nA: Paris\nQ: What is the capital of Spain?\nA: Madrid\n"
    questions = ["What is the capital of Italy", "Which country is Kyoto in",
                 "What is the native language of Pablo Picasso", "Which instrument does Yo-Yo Ma play"]
    requests = [Generation(f"{shots}Q: {q}?\nA:", 8, ("\n", ".", ",")) for q in questions]
    requests += [Generation("The Eiffel Tower is located in the city of", 6, ())]
    batched = HFBackend(lm.model, lm.tokenizer, min_prefix=8).generate(requests)
    for request, text in zip(requests, batched):
        tokens = plain_greedy(lm.model, lm.tokenizer, request.context, request.max_new_tokens)
        assert text == cut(lm.tokenizer.decode(tokens, skip_special_tokens=True), request.stop)
    assert batched[0].strip() == "Rome" and "Paris" in batched[-1]

"""UltraEdit on tiny random-init models: the running normaliser, the closed-form update in the
keys' span, the lifelong state and its restore."""

from __future__ import annotations

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from editguard.editors.layers import arch_for, to_out_in
from editguard.editors.ultraedit import RunningNorm, _keys_and_gradients
from tests.test_editors import REQUESTS
from tests.tiny import prepared_editor


@settings(max_examples=25, deadline=None)
@given(st.lists(st.integers(1, 6), min_size=1, max_size=5), st.integers(0, 1000))
def test_the_running_normaliser_merges_batches_exactly(sizes, seed):
    gen = torch.Generator().manual_seed(seed)
    batches = [torch.randn(n, 3, generator=gen, dtype=torch.float64) * 3 + 1 for n in sizes]
    norm = RunningNorm(3)
    for batch in batches:
        norm.update(batch)
    whole = torch.cat(batches)
    assert norm.count == whole.shape[0]
    assert torch.allclose(norm.mean, whole.mean(dim=0))
    if whole.shape[0] > 1:
        std = whole.std(dim=0)
        assert torch.allclose(norm(whole), (whole - whole.mean(dim=0)) / (std + 1.1920929e-07))
    assert torch.equal(norm.copy().m2, norm.m2)


@pytest.fixture(params=["llama", "gpt2"])
def prepared(request, tokenizer, tmp_path):
    return prepared_editor("ultraedit", request.param, tokenizer, tmp_path)


def test_the_update_of_each_matrix_lies_in_the_span_of_its_keys(prepared, tokenizer):
    model, editor = prepared
    arch = arch_for(model)
    modules = [arch.mlp_out_name(layer) for layer in editor.config["layers"]]
    keys, grads, _ = _keys_and_gradients(model, tokenizer, REQUESTS, modules)
    rows = sum(len(tokenizer(" " + r.target_new, add_special_tokens=False)["input_ids"])
               for r in REQUESTS)
    assert all(k.shape[0] == rows == g.shape[0] for k, g in zip(keys.values(), grads.values()))
    assert all(float(g.abs().sum()) > 0 for g in grads.values())
    before = {m: model.get_parameter(m + ".weight").detach().clone() for m in modules}
    editor.apply(model, tokenizer, REQUESTS)
    for m in modules:
        delta = to_out_in(model.get_parameter(m + ".weight").detach() - before[m], arch).double()
        k = keys[m].double()  # (N, in): the update's rows are combinations of these keys
        inside = delta @ torch.linalg.pinv(k) @ k  # projection of each row onto span(K)
        assert float(delta.norm()) > 0
        assert float((delta - inside).norm()) < 1e-6 * float(delta.norm()) + 1e-9


def test_the_normaliser_is_lifelong_and_goes_back_on_restore(prepared, tokenizer):
    model, editor = prepared
    first = editor.apply(model, tokenizer, REQUESTS[:1])
    (count,) = {n.count for n in editor._norms.values()}
    second = editor.apply(model, tokenizer, REQUESTS[1:])
    # one normaliser per matrix shape, fed by every matrix of that shape, as the authors' code
    layers = len(editor.config["layers"])
    assert count == first.batches[0]["rows"] * layers
    assert {n.count for n in editor._norms.values()} == {count + second.batches[0]["rows"] * layers}
    first.merge(second)
    first.restore()
    assert editor._norms == {}  # back to before the first turn


"""MEND on tiny random-init models: the trainer's shortcut (blocks from the first edited layer up,
run on their stored input) is the full model; the update is the network's transform of the
edit's gradient; batch and sequential edits run and restore exactly; the trained network is
cached, read back, retrained when its settings or training data change, and repaired when its
file is damaged."""

from __future__ import annotations


import pytest
import torch

from editguard.editors.layers import arch_for, to_out_in
from editguard.editors.mend import GradientTransform, Rows, by_edit, target_rows, upper_hidden
from editguard.editors.registry import create
from editguard.lm.forward import final_hidden
from editguard.models.loading import module_structure
from tests.test_editors import REQUESTS, target_logprob
from tests.tiny import (TINY_METHOD_OPTIONS, check_damaged_artifact_is_retrained,
                        prepare_context, prepared_editor, tiny_model)


@pytest.fixture(params=["llama", "gpt2"])
def arch(request):
    return request.param


@pytest.mark.parametrize("first", [0, 2])
def test_upper_blocks_on_their_stored_input_give_the_full_models_hidden_states(arch, first,
                                                                               tokenizer):
    model = tiny_model(arch, len(tokenizer))
    blocks = module_structure(model)
    texts = ["The capital of France is", "Its capital is the city of Berlin, in"]
    ids = [tokenizer(t)["input_ids"] for t in texts]  # + " Rome" (one token): the same length
    rows = target_rows(model, tokenizer, first, [(t, "Rome") for t in texts])
    assert [r.hidden.shape[0] for r in rows] == [len(i) for i in ids]
    batch = Rows.of(rows, torch.device("cpu"))
    with torch.no_grad():
        upper = upper_hidden(model, first, batch)
        full = final_hidden(model, batch.ids, batch.mask)
        # the stored stream is what block ``first`` runs on: another stream, another result
        other = upper_hidden(model, first, batch, batch.hidden + 1.0)
    assert not torch.allclose(other, upper)
    for i, row in enumerate(ids):
        torch.testing.assert_close(upper[i, : len(row)], full[i, : len(row)], atol=1e-5,
                                   rtol=1e-5)
    assert module_structure(model) == blocks  # the block list is put back


def test_by_edit_groups_each_edits_tokens_and_pads_with_zeros():
    factor = torch.arange(10.0).view(5, 2)
    owner = torch.tensor([1, 0, 1, 1, 0])
    out = by_edit(factor, owner, 3)
    assert out.shape == (3, 3, 2)
    assert out[0].tolist() == [[2, 3], [8, 9], [0, 0]]
    assert out[1].tolist() == [[0, 1], [4, 5], [6, 7]]
    assert out[2].abs().sum() == 0


def test_the_update_is_the_networks_transform_of_the_edits_gradient(arch, tokenizer, tmp_path):
    model, editor = prepared_editor("mend", arch, tokenizer, tmp_path)
    spec = arch_for(model)
    cfg = editor.config
    layers = list(cfg["layers"])
    request = REQUESTS[0]
    names = [spec.mlp_out_name(layer) for layer in layers]
    # the raw factors the hard way: a full forward and backward of the prompt's new target
    row = target_rows(model, tokenizer, layers[0], [(request.text, request.target_new)])[0]
    ids = tokenizer(request.text)["input_ids"] + \
        tokenizer(" " + request.target_new, add_special_tokens=False)["input_ids"][:-1]
    captured: dict[str, torch.Tensor] = {}
    handles = []
    for name in names:
        def keep(module, args, output, name=name):
            captured[name + ".x"] = args[0].detach()[0]
            output.retain_grad()
            captured[name] = output
        handles.append(model.get_submodule(name).register_forward_hook(keep))
    embeds = model.get_input_embeddings()(torch.tensor([ids])).detach().requires_grad_(True)
    logp = torch.log_softmax(model(inputs_embeds=embeds).logits[0].float(), dim=-1)
    nll = -sum(logp[p, t] for p, t in zip(row.positions, row.tokens))
    nll.backward()
    for handle in handles:
        handle.remove()
    network: GradientTransform = editor._network
    original = {n: model.get_parameter(n + ".weight").detach().clone() for n in names}
    handle = editor.apply(model, tokenizer, [request])
    for i, name in enumerate(names):
        with torch.no_grad():
            u, v = network(captured[name + ".x"].float(), captured[name].grad[0].float(), i)
            expected = -network.edit_lr[i] * (v.T @ u)  # (out, in)
        change = to_out_in(model.get_parameter(name + ".weight").detach() - original[name], spec)
        torch.testing.assert_close(change, expected, atol=1e-5, rtol=1e-4)
    model.zero_grad(set_to_none=True)
    handle.restore()


def test_batch_and_sequential_edits_run_and_restore_exactly(arch, tokenizer, tmp_path):
    model, editor = prepared_editor("mend", arch, tokenizer, tmp_path)
    original = {n: p.detach().clone() for n, p in model.named_parameters()}
    before = [target_logprob(model, tokenizer, r, r.target_new) for r in REQUESTS]
    batch = editor.apply(model, tokenizer, REQUESTS)
    after = [target_logprob(model, tokenizer, r, r.target_new) for r in REQUESTS]
    assert sum(after) > sum(before) + 1.0
    batch.restore()
    assert all(torch.equal(p, original[n]) for n, p in model.named_parameters())
    first = editor.apply(model, tokenizer, [REQUESTS[0]])
    after_first = {n: p.detach().clone() for n, p in model.named_parameters()}
    second = editor.apply(model, tokenizer, [REQUESTS[1]])
    assert any(not torch.equal(p, after_first[n]) for n, p in model.named_parameters())
    first.merge(second)
    first.restore()
    assert all(torch.equal(p, original[n]) for n, p in model.named_parameters())


def test_the_network_is_read_back_retrained_on_new_settings_and_repaired(tokenizer, tmp_path,
                                                                        asset_home):
    model = tiny_model("llama", len(tokenizer))
    context = prepare_context(tmp_path, "tiny-llama")

    def prepared(**overrides):
        editor = create("mend", {**TINY_METHOD_OPTIONS["mend"], **overrides})
        editor.prepare(model, tokenizer, context)
        return editor.provenance["network"]

    first = prepared()
    assert first["cache"] == "trained" and first["train_seconds"] >= 0
    assert set(first["heldout"]) >= {"rewrite", "paraphrase", "neighbourhood", "edits"}
    assert first["train_edits"] + first["heldout"]["edits"] == 40
    assert prepared()["cache"] == "read"
    assert prepared(rank=8)["cache"] == "trained"  # another key: another file
    assert prepared(train_edits=30)["cache"] == "trained"  # other training data
    files = sorted((tmp_path / "mend").rglob("network.*.safetensors"))
    assert len(files) == 3
    check_damaged_artifact_is_retrained(files, first["key"], prepared)


def test_training_changes_the_network_and_is_reproducible(tokenizer, tmp_path, asset_home):
    model = tiny_model("gpt2", len(tokenizer))
    networks = []
    for folder in ("a", "b"):
        editor = create("mend", TINY_METHOD_OPTIONS["mend"])
        editor.prepare(model, tokenizer, prepare_context(tmp_path / folder, "tiny-gpt2"))
        networks.append(editor._network.state_dict())
    untrained = create("mend", TINY_METHOD_OPTIONS["mend"])
    untrained.resolve(model)
    untrained._context = prepare_context(tmp_path / "c", "tiny-gpt2")
    d_out, d_in = untrained._shape(model)
    fresh = untrained._new_network(d_in, d_out).state_dict()
    assert all(torch.equal(networks[0][k], networks[1][k]) for k in networks[0])
    assert not torch.equal(networks[0]["up.0.weight"], fresh["up.0.weight"])  # zero at start


@pytest.mark.parametrize("overrides, message", [
    ({"layers": (3, 2)}, "layers \\[3, 2\\] must be non-empty, increasing"),
    ({"edit_lr": 0.0}, "mend edit_lr 0.0 must be positive"),
    ({"c_edit": 0.0, "c_loc": 0.0}, "must be >= 0 and not both 0"),
    ({"layers": (2, 9)}, "layers = \\[2, 9\\] is outside this 4-layer model")])
def test_bad_settings_are_refused_with_the_fix(tokenizer, overrides, message):
    model = tiny_model("llama", len(tokenizer))
    with pytest.raises(ValueError, match=message):
        create("mend", {**TINY_METHOD_OPTIONS["mend"], **overrides}).resolve(model)


def test_rows_score_each_target_token_where_it_is_predicted(tokenizer):
    model = tiny_model("llama", len(tokenizer))
    rows = target_rows(model, tokenizer, 1, [("The capital of France is", "Paris"),
                                             ("It is", "New York City")])
    batch = Rows.of(rows, torch.device("cpu"))
    prompt = tokenizer("It is")["input_ids"]
    answer = tokenizer(" New York City", add_special_tokens=False)["input_ids"]
    assert rows[1].tokens == tuple(answer)
    assert rows[1].positions == tuple(range(len(prompt) - 1, len(prompt) + len(answer) - 1))
    assert batch.mask.sum(1).tolist() == [r.hidden.shape[0] for r in rows]
    assert batch.tokens.tolist() == list(rows[0].tokens) + list(rows[1].tokens)

"""GRACE on tiny random-init models: a codebook on a hook, not a weight edit; it grows along a
trajectory, answers only near its keys, and restore takes the hook away."""

from __future__ import annotations

import pytest
import torch

from editguard.editors.grace import train_value
from editguard.editors.layers import arch_for
from editguard.edits.request import EditRequest
from editguard.lm.tokens import pad_id
from editguard.models.digest import fingerprint
from editguard.models.loading import LoadedModel, module_structure
from editguard.models.spec import ModelSpec
from tests.test_editors import REQUESTS, target_logprob
from tests.tiny import prepared_editor, tiny_model


@pytest.fixture(params=["llama", "gpt2"])
def prepared(request, tokenizer, tmp_path):
    return prepared_editor("grace", request.param, tokenizer, tmp_path)


def test_the_codebook_grows_along_a_trajectory_and_restore_removes_it(prepared, tokenizer):
    model, editor = prepared
    structure = module_structure(model)
    before = [target_logprob(model, tokenizer, r, r.target_new) for r in REQUESTS]
    first = editor.apply(model, tokenizer, [REQUESTS[0]])
    second = editor.apply(model, tokenizer, [REQUESTS[1]])
    assert [b["codebook_entries"] for b in first.batches + second.batches] == [1, 2]
    for r, b in zip(REQUESTS, before):  # both edits hold with both entries in place
        assert target_logprob(model, tokenizer, r, r.target_new) > b + 1.0
    first.merge(second)
    first.restore()
    assert module_structure(model) == structure
    assert editor._book is None or not editor._book.targets


def test_undoing_the_later_edit_keeps_the_earlier_one(prepared, tokenizer):
    model, editor = prepared
    editor.apply(model, tokenizer, [REQUESTS[0]])
    kept = target_logprob(model, tokenizer, REQUESTS[0], REQUESTS[0].target_new)
    later = editor.apply(model, tokenizer, [REQUESTS[1]])
    later.restore()
    assert editor._book is not None and editor._book.targets == [REQUESTS[0].target_new]
    assert target_logprob(model, tokenizer, REQUESTS[0], REQUESTS[0].target_new) == \
        pytest.approx(kept, abs=1e-5)


def test_inputs_far_from_every_key_are_computed_as_before(prepared, tokenizer):
    model, editor = prepared
    other = EditRequest("z", "The weather today is {}", "sunny", "cold", "warm")
    before = target_logprob(model, tokenizer, other, other.target_new)
    editor.apply(model, tokenizer, [REQUESTS[0]])
    assert target_logprob(model, tokenizer, other, other.target_new) == pytest.approx(before,
                                                                                     abs=1e-6)


def test_the_same_answer_widens_an_entry_and_another_answer_splits_it(prepared, tokenizer):
    model, editor = prepared
    editor.apply(model, tokenizer, [REQUESTS[0]])
    same = editor.apply(model, tokenizer, [REQUESTS[0]])  # the same key and answer
    assert same.batches[0]["codebook_entries"] == 1
    moved = EditRequest("c", REQUESTS[0].prompt, REQUESTS[0].subject, "Madrid", "Germany")
    split = editor.apply(model, tokenizer, [moved])  # the same key, another answer
    assert split.batches[0]["codebook_entries"] == 2
    assert float(editor._book.radii.max()) < 1e-4  # zero distance: both radii shrink to ~0


def test_a_hook_left_behind_is_named_by_the_structure_check(tokenizer):
    model = tiny_model("llama", len(tokenizer))
    fp, digests = fingerprint(model)
    loaded = LoadedModel(ModelSpec("tiny"), model, tokenizer, fp, digests, "memory")
    assert loaded.changed_structure() == []
    handle = model.model.layers[1].mlp.register_forward_hook(lambda m, a, o: o)
    assert loaded.changed_structure() == ["module model.layers.1.mlp: forward hooks 0 -> 1"]
    handle.remove()
    model.model.layers[0].mlp.down_proj = torch.nn.Sequential(model.model.layers[0].mlp.down_proj)
    assert "module model.layers.0.mlp.down_proj is a Sequential, was a Linear" in \
        loaded.changed_structure()


@pytest.mark.parametrize("installed", [False, True])
def test_a_value_trains_the_same_with_and_without_the_split(prepared, tokenizer, installed):
    """The split (positions before the prompt's last and the blocks below the layer run once)
    trains the value the whole forward trains, with and without a codebook on the layer."""
    model, editor = prepared
    if installed:  # the hook of an earlier edit's entry is on the module while this one trains
        editor.apply(model, tokenizer, [REQUESTS[0]])
    module = arch_for(model).mlp_out_name(editor.resolve(model).layer)
    request = REQUESTS[1]
    prompt = tokenizer(request.text)["input_ids"]
    target = tokenizer(" " + request.target_new, add_special_tokens=False)["input_ids"]
    start = torch.rand(model.config.hidden_size, generator=torch.Generator().manual_seed(0))
    trained = {}
    for split in (True, False):
        value = start.clone()
        nll = train_value(model, module, prompt, target, value, 8, 1.0, pad_id(tokenizer), split)
        trained[split] = (value, nll)
    assert not torch.equal(trained[True][0], start)  # it trained
    torch.testing.assert_close(trained[True][0], trained[False][0], atol=1e-4, rtol=1e-3)
    assert trained[True][1] == pytest.approx(trained[False][1], abs=1e-4)

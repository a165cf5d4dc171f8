"""Editors with a network trained here (SERAC's scope classifier, MEND's gradient transform): the
artifact is trained once, read back on the next run, trained anew when its settings or training
data change, and set aside and retrained when the file is damaged."""

from __future__ import annotations

import warnings

import pytest

from editguard.editors.registry import create
from editguard.integrity import CacheRepairWarning
from tests.test_editors import REQUESTS, target_logprob
from tests.tiny import TINY_METHOD_OPTIONS, prepare_context, tiny_model

# method -> (provenance entry, file stem, a setting that changes the training, one that does not)
TRAINED = {"serac": ("classifier", "classifier", {"dim": 32}, {"threshold": 0.7}),
           "mend": ("network", "network", {"rank": 4}, None)}


@pytest.mark.parametrize("method", sorted(TRAINED))
def test_the_artifact_is_read_back_retrained_on_new_settings_and_repaired(method, tokenizer,
                                                                          tmp_path, asset_home):
    entry, stem, other, same = TRAINED[method]
    model = tiny_model("llama", len(tokenizer))
    context = prepare_context(tmp_path, "tiny-llama")

    def prepared(**overrides):
        editor = create(method, {**TINY_METHOD_OPTIONS[method], **overrides})
        editor.prepare(model, tokenizer, context)
        return editor.provenance[entry]

    first = prepared()
    assert first["cache"] == "trained" and first["train_seconds"] >= 0
    assert set(first["heldout"]) >= {"in_scope_recall"} if method == "serac" else \
        set(first["heldout"]) >= {"rewrite", "paraphrase", "neighbourhood"}
    assert prepared()["cache"] == "read"
    assert prepared(**other)["cache"] == "trained"  # another key: another file
    assert prepared(train_edits=12)["cache"] == "trained"  # other training data
    files = sorted((tmp_path / method).rglob(f"{stem}.*.safetensors"))
    assert len(files) == 3
    if same is not None:
        assert prepared(**same)["cache"] == "read"  # changes routing only, not the training
    target = next(f for f in files if first["key"][:24] in f.name)
    data = bytearray(target.read_bytes())
    data[-5] ^= 0xFF  # a flipped byte in the tensors
    target.write_bytes(bytes(data))
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        repaired = prepared()
    assert repaired["cache"].startswith("recomputed: ") and "checksum" in repaired["cache"]
    assert any(issubclass(w.category, CacheRepairWarning) for w in caught)
    assert prepared()["cache"] == "read"


@pytest.mark.parametrize("arch", ["llama", "gpt2"])
def test_mend_edits_in_a_batch_and_in_sequence_and_restores_exactly(arch, tokenizer, tmp_path,
                                                                   asset_home):
    model = tiny_model(arch, len(tokenizer))
    editor = create("mend", TINY_METHOD_OPTIONS["mend"])
    editor.prepare(model, tokenizer, prepare_context(tmp_path, f"tiny-{arch}"))
    original = {n: p.detach().clone() for n, p in model.named_parameters()}
    before = [target_logprob(model, tokenizer, r, r.target_new) for r in REQUESTS]
    batch = editor.apply(model, tokenizer, REQUESTS)
    assert set(batch.batches[0]["update_norm"]) == set(editor.parameter_names(model))
    after = [target_logprob(model, tokenizer, r, r.target_new) for r in REQUESTS]
    assert all(a > b for a, b in zip(after, before))
    later = editor.apply(model, tokenizer, REQUESTS[:1])  # sequential, on the edited weights
    batch.merge(later)
    batch.restore()
    for name, p in model.named_parameters():
        assert p.equal(original[name]), name

"""Editors with a network trained here (SERAC's scope classifier): the artifact is trained once,
read back on the next run, trained anew when its settings or training data change, and set aside
and retrained when the file is damaged."""

from __future__ import annotations

import warnings

import pytest

from editguard.editors.registry import create
from editguard.integrity import CacheRepairWarning
from tests.tiny import TINY_METHOD_OPTIONS, prepare_context, tiny_model

# method -> (provenance entry, file stem, a setting that changes the training, one that does not)
TRAINED = {"serac": ("classifier", "classifier", {"dim": 32}, {"threshold": 0.7})}


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
    assert set(first["heldout"]) >= {"in_scope_recall", "out_of_scope_specificity"}
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

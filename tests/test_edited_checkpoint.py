"""Gating a checkpoint edited elsewhere: ``--edited PATH --base PATH`` (editors/checkpoint.py)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
from transformers import AutoModelForCausalLM, AutoTokenizer

from editguard.data.paths import editguard_home
from editguard.editors.checkpoint import Checkpoint
from editguard.models.compatibility import check_compatible
from editguard.models.embedded import embedded_dir
from editguard.models.loading import load
from editguard.models.spec import ModelLoadError, ModelSpec
from tests.test_suite_plugin import run, run_inline, verdict
from tests.tiny import prepare_context, save_tiny, tiny_model

pytest_plugins = ["pytester"]
HOME = editguard_home()


def damaged_copy(source: str | Path, folder: Path, scale: float = 1.0) -> Path:
    """``source`` with seeded noise (``scale`` weight-stds) added to every MLP output matrix."""
    model = AutoModelForCausalLM.from_pretrained(source)
    gen = torch.Generator().manual_seed(0)
    with torch.no_grad():
        for name, weight in model.named_parameters():
            if name.endswith("mlp.down_proj.weight"):
                weight.add_(torch.randn(weight.shape, generator=gen) * weight.std() * scale)
    model.save_pretrained(folder)
    AutoTokenizer.from_pretrained(source).save_pretrained(folder)
    return folder


@pytest.fixture(scope="module")
def tiny_base(tmp_path_factory, tokenizer) -> Path:
    return save_tiny("llama", tokenizer, tmp_path_factory.mktemp("models") / "tiny-llama")


def test_the_checkpoint_copies_only_what_differs_and_restores_by_copy(tiny_base, tmp_path):
    damaged = damaged_copy(tiny_base, tmp_path / "tiny-damaged")
    base = load(ModelSpec(str(tiny_base)), HOME)
    editor = Checkpoint(ModelSpec(str(damaged)))
    editor.prepare(base.model, base.tokenizer, prepare_context(tmp_path / "c"))
    assert editor.parameter_names(base.model) == [
        f"model.layers.{i}.mlp.down_proj.weight" for i in range(4)]
    handle = editor.apply(base.model, base.tokenizer, [])
    theirs = dict(AutoModelForCausalLM.from_pretrained(damaged).named_parameters())
    assert all(torch.equal(p, theirs[n]) for n, p in base.model.named_parameters())
    assert base.changed_parameters() == editor.parameter_names(base.model)
    handle.restore()
    assert base.changed_parameters() == []


def test_a_checkpoint_of_another_architecture_or_tokenizer_is_refused(tiny_base, tokenizer,
                                                                     tmp_path):
    deeper = tmp_path / "tiny-deeper"
    tiny_model("llama", len(tokenizer), layers=5).save_pretrained(deeper)
    tokenizer.save_pretrained(deeper)
    with pytest.raises(ModelLoadError) as caught:
        check_compatible(ModelSpec(str(tiny_base)), ModelSpec(str(deeper)), HOME)
    assert "config num_hidden_layers: 4 vs 5" in str(caught.value)
    assert "pass the base model it was edited from" in str(caught.value)
    retokenized = tmp_path / "tiny-retokenized"
    tiny_model("llama", len(tokenizer)).save_pretrained(retokenized)
    other = AutoTokenizer.from_pretrained(tiny_base)
    other.add_tokens(["<acme-fact>"])
    other.save_pretrained(retokenized)
    with pytest.raises(ModelLoadError, match=r"tokenizer vocabulary: 49152 vs 49153 tokens, 1 "
                                             r"differ \(e\.g\. '<acme-fact>'\)"):
        check_compatible(ModelSpec(str(tiny_base)), ModelSpec(str(retokenized)), HOME)
    check_compatible(ModelSpec(str(tiny_base)), ModelSpec(str(tiny_base)), HOME)  # itself: fine
    weights_only = tmp_path / "tiny-weights-only"  # saved without its tokenizer, as some tools do
    tiny_model("llama", len(tokenizer)).save_pretrained(weights_only)
    with pytest.raises(ModelLoadError, match=r"has no tokenizer editguard can read .*copy the "
                                             r"base model's tokenizer files into it"):
        check_compatible(ModelSpec(str(tiny_base)), ModelSpec(str(weights_only)), HOME)


def test_the_suite_refuses_a_mismatched_checkpoint_before_loading_weights(pytester, tiny_base,
                                                                          tokenizer, tmp_path):
    deeper = tmp_path / "tiny-deeper"
    tiny_model("llama", len(tokenizer), layers=3).save_pretrained(deeper)
    tokenizer.save_pretrained(deeper)
    result = run_inline(pytester, "--edited", str(deeper), "--base", str(tiny_base),
                        "--collect-only")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    err = result.stderr.str()
    assert f"--edited '{deeper}' is not an edit of --base '{tiny_base}'" in err
    assert "num_hidden_layers: 4 vs 3" in err


@pytest.mark.slow
def test_a_damaged_copy_of_the_embedded_model_fails_the_capability_gate(pytester, monkeypatch,
                                                                       tmp_path):
    monkeypatch.setenv("EDITGUARD_HOME", str(HOME))
    # converted on first use (a fresh home has only the GGUF package)
    damaged = damaged_copy(embedded_dir("smollm2-135m", HOME), tmp_path / "smollm2-damaged")
    result = run(pytester, "--edited", str(damaged), "--base", "smollm2-135m",
                 "--benchmarks", "facts", "--bench-opt", "facts.limit=60", "--editguard-cache",
                 str(tmp_path / "c"), "--report-dir", str(tmp_path / "r"), "-v", timeout=600)
    case = "smollm2-135m-edited:smollm2-damaged-n0-facts"
    assert verdict(result, case) == "FAILED"
    out = result.stdout.str()
    assert "facts acc dropped" in out and "[smollm2-135m | edited:smollm2-damaged | n=0]" in out
    (row,) = json.loads((tmp_path / "r" / "results.json").read_text())["results"]
    assert row["method"] == "edited:smollm2-damaged" and row["passed"] is False
    assert row["provenance"]["method"]["spec"] == f"edited:{damaged}"
    # the diagnostics name the matrices the other tool changed: every MLP output matrix
    changed = row["provenance"]["editor"]["weight_change"]
    assert sorted(changed) == sorted(f"model.layers.{i}.mlp.down_proj.weight" for i in range(30))

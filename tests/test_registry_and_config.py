"""Editor registry, hyperparameter validation, architecture table, statistics cache."""

from __future__ import annotations

import pytest
import torch

from editguard.editors.layers import UnsupportedArchitectureError, arch_for
from editguard.editors.registry import UnknownEditorError, available, create, resolve
from editguard.editors.rome import RomeEditor
from editguard.editors.stats import StatsSpec, layer_stats, stats_path
from editguard.settings import ConfigError
from tests.tiny import prepare_context, tiny_model


def test_builtins_are_listed_and_resolve():
    assert {"ft", "rome", "memit"} <= set(available())
    assert resolve("rome") is RomeEditor


def test_unknown_method_says_what_exists_and_did_you_mean():
    with pytest.raises(UnknownEditorError) as err:
        resolve("memmit")
    text = str(err.value)
    assert "'memmit'" in text and "Did you mean 'memit'" in text
    assert f"Available: {', '.join(available())};" in text and "ft, grace, kn, memit" in text


def test_import_path_editor_and_bad_paths():
    assert resolve("editguard.editors.rome:RomeEditor") is RomeEditor
    with pytest.raises(UnknownEditorError, match="cannot import"):
        resolve("no_such_pkg.mod:Editor")
    with pytest.raises(UnknownEditorError, match="lacks"):
        resolve("editguard.editors.layers:ArchSpec")


def test_unknown_hyperparameter_is_an_error_with_a_suggestion(tokenizer, tmp_path):
    editor = create("rome", {"layr": 1})
    model = tiny_model("llama", len(tokenizer))
    with pytest.raises(ConfigError, match="unknown key 'layr'.*did you mean 'layer'"):
        editor.prepare(model, tokenizer, prepare_context(tmp_path))


def test_wrong_hyperparameter_type_is_an_error(tokenizer, tmp_path):
    editor = create("rome", {"layer": "five"})
    with pytest.raises(ConfigError, match="layer must be an integer"):
        editor.prepare(tiny_model("llama", len(tokenizer)), tokenizer, prepare_context(tmp_path))


def test_layer_outside_the_model_is_an_error(tokenizer, tmp_path):
    editor = create("ft", {"layer": 9})
    with pytest.raises(ValueError, match=r"ft: layer = 9 is outside this 4-layer model \(no layer 9\); "
                                         r"use layers in 0\.\.3 \(--method-opt ft\.layer="):
        editor.prepare(tiny_model("llama", len(tokenizer)), tokenizer, prepare_context(tmp_path))


def test_layer_range_is_checked_from_the_config_alone(tokenizer):
    config = tiny_model("llama", len(tokenizer)).config  # what a run knows before loading weights
    with pytest.raises(ValueError, match=r"memit: layers = \[2, 3, 4\] is outside .*no layer 4"):
        create("memit", {"layers": [2, 3, 4]}).resolve(config)
    assert create("memit", {"layers": [2, 3]}).resolve(config).layers == (2, 3)


def test_unsupported_architecture_names_the_supported_ones(tokenizer):
    model = tiny_model("llama", len(tokenizer))
    model.config.model_type = "mamba"
    with pytest.raises(UnsupportedArchitectureError, match="'mamba'.*supported model types: .*gpt2"):
        arch_for(model)


def test_stats_are_cached_on_disk_and_keyed_by_token_count(tokenizer, tmp_path):
    model = tiny_model("llama", len(tokenizer))
    spec = StatsSpec("wikipedia-en", n_tokens=1500, seq_len=128)
    first = layer_stats(model, tokenizer, [1, 2], spec, prepare_context(tmp_path, "fp-a"))
    assert first[1].n_tokens == 1500 and first[1].mom2.shape == (128, 128)
    assert torch.allclose(first[1].mom2, first[1].mom2.T)
    path = stats_path(tmp_path, "fp-a", "model.layers.1.mlp.down_proj", spec)
    stamp = path.stat().st_mtime_ns
    again = layer_stats(model, tokenizer, [1], spec, prepare_context(tmp_path, "fp-a"))
    assert path.stat().st_mtime_ns == stamp and torch.equal(again[1].mom2, first[1].mom2)
    other = StatsSpec("wikipedia-en", n_tokens=1000, seq_len=128)
    assert stats_path(tmp_path, "fp-a", "model.layers.1.mlp.down_proj", other) != path
    assert stats_path(tmp_path, "fp-b", "model.layers.1.mlp.down_proj", spec) != path

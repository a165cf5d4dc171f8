"""A model placed by an accelerate device map (``--gpus-per-worker``) scores and edits as a
plain load. A CPU machine has one device, so every module of the map is ``"cpu"`` and
transformers places such a map without accelerate's hooks; the test adds them with
``dispatch_model(force_hooks=True)``, as a map over several GPUs does. This checks the loading
path, scoring and editing through accelerate's hooks, not transfers between GPUs."""

from __future__ import annotations

import pytest
import torch
from accelerate import dispatch_model

from editguard.backends.hf import HFBackend
from editguard.editors.registry import available, create
from editguard.edits.request import EditRequest
from editguard.models.loading import load
from editguard.models.spec import ModelLoadError, ModelSpec
from tests.tiny import TINY_METHOD_OPTIONS, prepare_context, save_tiny

REQUEST = EditRequest("a", "Its capital is the city of {}", "Berlin", "Rome", "Germany")
SCORED = [(REQUEST.text, " Rome"), ("The capital of Germany is", " Berlin"), ("Paris is the capital of", " France"),
          ("One, two,", " three")]


def per_layer_cpu_map(layers: int) -> dict[str, int | str]:
    return {"model.embed_tokens": "cpu", **{f"model.layers.{i}": "cpu" for i in range(layers)},
            "model.norm": "cpu", "model.rotary_emb": "cpu", "lm_head": "cpu"}


@pytest.mark.parametrize("method", available())
def test_a_model_loaded_by_a_per_layer_device_map_scores_and_edits_as_a_plain_load(
        tmp_path, tokenizer, method):
    folder = save_tiny("llama", tokenizer, tmp_path / "tiny")
    spec = ModelSpec(str(folder), device="cpu")
    plain = load(spec, tmp_path)
    device_map = per_layer_cpu_map(plain.model.config.num_hidden_layers)
    mapped = load(spec, tmp_path, device_map=device_map)
    assert mapped.fingerprint == plain.fingerprint
    dispatch_model(mapped.model, device_map, force_hooks=True)
    assert hasattr(mapped.model.model.layers[0], "_hf_hook")  # accelerate moves its inputs

    def scores(model: torch.nn.Module) -> list[float]:
        return [r.logprob for r in HFBackend(model, tokenizer).loglikelihood(SCORED)]

    assert scores(mapped.model) == pytest.approx(scores(plain.model), abs=1e-6)
    before = scores(plain.model)
    changed = {}
    for name, loaded in (("plain", plain), ("mapped", mapped)):
        editor = create(method, TINY_METHOD_OPTIONS[method])
        editor.prepare(loaded.model, tokenizer, prepare_context(tmp_path / name, "tiny-llama"))
        editor.apply(loaded.model, tokenizer, [REQUEST])
        changed[name] = dict(loaded.model.named_parameters())
    for name in editor.parameter_names(plain.model):
        torch.testing.assert_close(changed["mapped"][name], changed["plain"][name],
                                   atol=1e-5, rtol=1e-4)
    after = scores(plain.model)
    assert after != pytest.approx(before, abs=1e-4)  # the edit changed what the model says
    assert scores(mapped.model) == pytest.approx(after, abs=1e-4)


def test_gpus_per_worker_without_enough_accelerators_says_what_it_sees(tmp_path, tokenizer):
    folder = save_tiny("llama", tokenizer, tmp_path / "tiny")
    have = torch.accelerator.device_count() if torch.accelerator.is_available() else 0
    with pytest.raises(ModelLoadError, match=f"this process sees {have} accelerator"):
        load(ModelSpec(str(folder), shards=max(2, have + 1)), tmp_path)

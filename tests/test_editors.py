"""Editor invariants on tiny random-init LLaMA and GPT-2 models."""

from __future__ import annotations

import pytest
import torch

from editguard.editors.base import EditHandle
from editguard.editors.layers import GPT2, LLAMA, arch_for, to_out_in
from editguard.editors.registry import create
from editguard.editors.stats import layer_stats
from editguard.edits.request import EditRequest, Neighbour
from editguard.models.loading import module_structure
from tests.tiny import TINY_METHOD_OPTIONS, prepare_context, tiny_model

# The prompts end with the subject: a random model's attention does not carry the subject to a
# later position, so only there can an edit at the subject show on a tiny random model. (The
# suite run on the real pretrained model covers prompts with the subject in the middle.)
REQUESTS = [
    EditRequest("a", "Its capital is the city of {}", "Berlin", "Rome", "Germany",
                ("The capital: {}",), (Neighbour("The capital of France is", "Paris"),)),
    EditRequest("b", "He speaks the language of {}", "Vladimir Putin", "French", "Russian"),
]


def target_logprob(model, tokenizer, request: EditRequest, target: str) -> float:
    prompt = tokenizer(request.text)["input_ids"]
    tokens = tokenizer(" " + target, add_special_tokens=False)["input_ids"]
    ids = torch.tensor([prompt + tokens[:-1]])
    with torch.no_grad():
        logp = torch.log_softmax(model(ids).logits[0].float(), dim=-1)
    return float(sum(logp[len(prompt) - 1 + j, t] for j, t in enumerate(tokens)))


@pytest.fixture(params=["llama", "gpt2"])
def arch(request):
    return request.param


@pytest.fixture
def model(arch, tokenizer):
    return tiny_model(arch, len(tokenizer))


@pytest.fixture
def cache(tmp_path_factory, arch):
    return tmp_path_factory.getbasetemp() / f"editor-cache-{arch}"


@pytest.mark.parametrize("method", ["alphaedit", "ft", "grace", "kn", "rome", "memit", "mend",
                                    "pmet", "ultraedit"])
def test_edit_raises_target_only_declared_params_change_and_restore_is_exact(
        method, arch, model, tokenizer, cache):
    editor = create(method, TINY_METHOD_OPTIONS[method])
    editor.prepare(model, tokenizer, prepare_context(cache, f"tiny-{arch}"))
    original = {n: p.detach().clone() for n, p in model.named_parameters()}
    structure = module_structure(model)
    edit = REQUESTS[0]
    before = target_logprob(model, tokenizer, edit, edit.target_new)
    handle = editor.apply(model, tokenizer, [edit])
    after = target_logprob(model, tokenizer, edit, edit.target_new)
    assert after > before + 1.0, f"{method} did not raise P(target_new): {before} -> {after}"

    declared = set(editor.parameter_names(model))
    changed = {n for n, p in model.named_parameters() if not torch.equal(p, original[n])}
    assert changed <= declared, f"changed {changed - declared} outside {declared}"
    # a weight edit changes what it declares; one that is not (grace) installs a hook instead
    assert bool(changed) == bool(declared)
    assert (module_structure(model) != structure) == (not declared)

    handle.restore()
    handle.restore()  # idempotent
    for name, p in model.named_parameters():
        assert torch.equal(p, original[name]), f"{name} not restored bit for bit"
    assert module_structure(model) == structure  # no hook or module left behind
    assert target_logprob(model, tokenizer, edit, edit.target_new) == pytest.approx(before)


def test_rome_update_is_rank_one(arch, model, tokenizer, cache):
    editor = create("rome", TINY_METHOD_OPTIONS["rome"])
    editor.prepare(model, tokenizer, prepare_context(cache, f"tiny-{arch}"))
    (name,) = editor.parameter_names(model)
    before = model.get_parameter(name).detach().clone()
    editor.apply(model, tokenizer, [REQUESTS[0]])
    delta = to_out_in(model.get_parameter(name).detach() - before, arch_for(model))
    assert torch.linalg.matrix_rank(delta.double(), rtol=1e-6) == 1


def test_memit_writes_a_batch_across_its_layers(arch, model, tokenizer, cache):
    editor = create("memit", TINY_METHOD_OPTIONS["memit"])
    editor.prepare(model, tokenizer, prepare_context(cache, f"tiny-{arch}"))
    before = [target_logprob(model, tokenizer, r, r.target_new) for r in REQUESTS]
    handle = editor.apply(model, tokenizer, REQUESTS)
    after = [target_logprob(model, tokenizer, r, r.target_new) for r in REQUESTS]
    assert all(a > b + 1.0 for a, b in zip(after, before)), (before, after)
    norms = handle.change_norms()
    assert set(norms) == set(editor.parameter_names(model))
    assert all(0 < v["delta_fro"] < v["weight_fro"] for v in norms.values()), norms
    assert len(handle.batches) == 1  # one apply() call, one record of its stats


@pytest.mark.parametrize("n", [1, 2])
def test_memit_update_from_the_prepared_inverse_is_the_direct_solve(arch, model, tokenizer,
                                                                    cache, n):
    editor = create("memit", TINY_METHOD_OPTIONS["memit"])
    editor.prepare(model, tokenizer, prepare_context(cache, f"tiny-{arch}"))
    layer = editor.resolve(model).layers[0]  # its statistics: from the prepared cache
    keys = editor._keys(model, tokenizer, REQUESTS[:n], layer)  # (n, in) float64
    resid = torch.randn(n, model.config.hidden_size, dtype=torch.float64,
                        generator=torch.Generator().manual_seed(0))
    cfg = editor.resolve(model)
    mom2 = layer_stats(model, tokenizer, [layer], cfg.stats(), editor.context)[layer].mom2
    system = cfg.mom2_update_weight * mom2.double() + keys.T @ keys  # (in, in)
    direct = resid.T @ torch.linalg.solve(system, keys.T).T  # (d, in)
    ours = editor._layer_update(layer, keys, resid)
    assert float(direct.norm()) > 0
    torch.testing.assert_close(ours, direct, rtol=1e-9, atol=1e-12 * float(direct.abs().max()))


def test_rome_refuses_a_batch(model, tokenizer, cache):
    editor = create("rome", TINY_METHOD_OPTIONS["rome"])
    editor.prepare(model, tokenizer, prepare_context(cache))
    with pytest.raises(ValueError, match="one fact at a time"):
        editor.apply(model, tokenizer, REQUESTS)


def test_apply_before_prepare_is_an_error(model, tokenizer, cache):
    editor = create("ft", TINY_METHOD_OPTIONS["ft"])
    with pytest.raises(RuntimeError, match="prepare"):
        editor.apply(model, tokenizer, REQUESTS[:1])


def test_handle_merge_restores_the_oldest_copy_and_keeps_every_batch(model):
    name = next(n for n, _ in model.named_parameters())
    param = model.get_parameter(name)
    original = param.detach().clone()
    first = EditHandle.snapshot(model, [name])
    first.batches.append({"loss": 1.0})
    with torch.no_grad():
        param.add_(1.0)
    second = EditHandle.snapshot(model, [name])
    second.batches.append({"loss": 2.0})
    with torch.no_grad():
        param.add_(1.0)
    first.merge(second)
    assert first.batches == [{"loss": 1.0}, {"loss": 2.0}]
    assert first.change_norms()[name]["delta_fro"] == pytest.approx(
        float((param.detach() - original).norm()))
    first.restore()
    assert torch.equal(param, original)
    assert first.change_norms()[name]["delta_fro"] == 0.0


def test_layer_specs_know_the_weight_layouts(tokenizer):
    gpt2 = tiny_model("gpt2", len(tokenizer))
    llama = tiny_model("llama", len(tokenizer))
    assert arch_for(gpt2) is GPT2 and arch_for(llama) is LLAMA
    # GPT-2's Conv1D stores (in, out) = (4*d, d) for c_proj; LLaMA's Linear (out, in).
    c_proj = gpt2.get_parameter(GPT2.weight_name(0))
    down = llama.get_parameter(LLAMA.weight_name(0))
    assert tuple(c_proj.shape) == (256, 64) and tuple(to_out_in(c_proj, GPT2).shape) == (64, 256)
    assert tuple(down.shape) == (64, 128) and to_out_in(down, LLAMA) is down

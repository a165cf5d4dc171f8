"""AlphaEdit on tiny random-init models: the update lives in the null space of the preserved
keys, the memory of edited keys grows with each edit and goes back on restore."""

from __future__ import annotations

import pytest
import torch

from editguard.editors.alphaedit import projector
from editguard.editors.layers import arch_for, to_out_in
from editguard.editors.registry import create
from tests.test_editors import REQUESTS
from tests.tiny import TINY_METHOD_OPTIONS, prepare_context, tiny_model


@pytest.fixture(params=["llama", "gpt2"])
def arch(request):
    return request.param


@pytest.fixture
def prepared(arch, tokenizer, tmp_path_factory):
    model = tiny_model(arch, len(tokenizer))
    editor = create("alphaedit", TINY_METHOD_OPTIONS["alphaedit"])
    editor.prepare(model, tokenizer, prepare_context(
        tmp_path_factory.getbasetemp() / f"alphaedit-{arch}", f"tiny-{arch}"))
    return model, editor


def test_the_update_leaves_the_preserved_key_space_alone(prepared, tokenizer) -> None:
    model, editor = prepared
    arch = arch_for(model)
    before = {layer: model.get_parameter(arch.weight_name(layer)).detach().clone().double()
              for layer in editor.config["layers"]}
    editor.apply(model, tokenizer, [REQUESTS[0]])
    for layer, weight in before.items():
        delta = to_out_in(model.get_parameter(arch.weight_name(layer)).detach().double() - weight,
                          arch)  # (d, in)
        p = editor._projectors[layer]
        kept = editor.provenance["null_space_dims"][str(layer)]
        assert 0 < kept < p.shape[0]
        torch.testing.assert_close(p @ p, p)  # a projector, of the rank the provenance names
        assert round(float(torch.trace(p))) == kept
        eye = torch.eye(p.shape[0], dtype=p.dtype)
        # float32 weights: the update is exact to the weights' rounding, not to float64
        assert (delta @ (eye - p)).norm() < 1e-3 * delta.norm(), layer
        assert delta.norm() > 0


def test_the_memory_of_edited_keys_grows_and_goes_back_on_restore(prepared, tokenizer) -> None:
    model, editor = prepared
    assert all(float(c.abs().max()) == 0 for c in editor._edited_keys.values())
    first = editor.apply(model, tokenizer, [REQUESTS[0]])
    after_one = {layer: c.clone() for layer, c in editor._edited_keys.items()}
    assert all(float(c.norm()) > 0 for c in after_one.values())
    second = editor.apply(model, tokenizer, [REQUESTS[1]])
    assert all(float((c - after_one[layer]).norm()) > 0
               for layer, c in editor._edited_keys.items())
    first.merge(second)
    first.restore()
    assert all(float(c.abs().max()) == 0 for c in editor._edited_keys.values())
    l2 = editor.config["l2"]
    assert all(torch.equal(a, torch.eye(a.shape[0], dtype=a.dtype) / l2)
               for a in editor._system_inverse.values())


def test_a_threshold_below_the_spectrum_is_refused(arch, tokenizer, tmp_path_factory) -> None:
    model = tiny_model(arch, len(tokenizer))
    editor = create("alphaedit", {**TINY_METHOD_OPTIONS["alphaedit"],
                                  "nullspace_threshold": 1e-9})
    with pytest.raises(ValueError, match=r"nullspace_threshold 1e-09 keeps no direction at layer "
                                         r"1 .*--method-opt alphaedit.nullspace_threshold="):
        editor.prepare(model, tokenizer, prepare_context(
            tmp_path_factory.getbasetemp() / f"alphaedit-{arch}", f"tiny-{arch}"))


def test_the_kept_inverse_gives_the_references_solve(prepared, tokenizer) -> None:
    """Each update is the reference's in x in solve, (P (K^T K + C_prev) + l2 I)^-1 P K^T R,
    computed from the kept (P C_prev + l2 I)^-1 after two sequential edits."""
    model, editor = prepared
    editor.apply(model, tokenizer, [REQUESTS[0]])
    editor.apply(model, tokenizer, [REQUESTS[1]])
    l2 = editor.config["l2"]
    generator = torch.Generator().manual_seed(0)
    for layer, p in editor._projectors.items():
        prev = editor._edited_keys[layer]
        assert float(prev.norm()) > 0
        eye = torch.eye(p.shape[0], dtype=p.dtype)
        torch.testing.assert_close(editor._system_inverse[layer] @ (p @ prev + l2 * eye), eye,
                                   rtol=0, atol=1e-9)
        keys = torch.randn(3, p.shape[0], generator=generator, dtype=torch.float64)
        resid = torch.randn(3, 5, generator=generator, dtype=torch.float64)
        direct = torch.linalg.solve(p @ (keys.T @ keys + prev) + l2 * eye, p @ keys.T @ resid).T
        torch.testing.assert_close(editor._layer_update(layer, keys, resid), direct,
                                   rtol=1e-9, atol=1e-12)


def test_the_projector_spans_the_eigenvectors_below_the_threshold() -> None:
    rotation, _ = torch.linalg.qr(torch.randn(4, 4, generator=torch.Generator().manual_seed(0),
                                              dtype=torch.float64))
    mom2 = rotation @ torch.diag(torch.tensor([0.01, 0.5, 0.001, 3.0],
                                              dtype=torch.float64)) @ rotation.T
    p, kept = projector(mom2, 0.02)
    assert kept == 2
    small = rotation[:, [0, 2]]  # the eigenvectors of 0.01 and 0.001
    torch.testing.assert_close(p, small @ small.T)

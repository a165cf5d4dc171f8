"""EasyEdit hyperparameter files mapped onto editguard's settings."""

from __future__ import annotations

import pytest

from editguard.editors.easyedit import EasyEditConfigError, translate
from editguard.editors.registry import resolve
from editguard.editors.rome import RomeSettings
from editguard.settings import build

# the keys and values of EasyEdit's hparams/ROME/llama-7b.yaml
ROME_LLAMA = """alg_name: "ROME"
model_name: "./hugging_cache/llama-7b"
stats_dir: "./data/stats"
device: 0
layers: [5]
fact_token: "subject_last"
v_num_grad_steps: 25
v_loss_layer: 31
v_lr: 5e-1
v_weight_decay: 1e-3
clamp_norm_factor: 4
kl_factor: 0.0625
mom2_adjustment: false
context_template_length_params: [[5, 10]]
rewrite_module_tmp: "model.layers.{}.mlp.down_proj"
mom2_dataset: "wikipedia"
mom2_n_samples: 100000
mom2_dtype: "float32"
"""


def write(tmp_path, text, name="hparams.yaml"):
    path = tmp_path / name
    path.write_text(text)
    return str(path)


def test_a_rome_file_maps_onto_romes_settings_and_names_what_it_cannot(tmp_path):
    settings, unmapped = translate("rome", write(tmp_path, ROME_LLAMA))
    assert settings == {"layer": 5, "v_steps": 25, "v_lr": 0.5, "v_weight_decay": 1e-3,
                        "clamp_norm_factor": 4.0, "kl_factor": 0.0625, "use_covariance": False,
                        "context_length": 5, "context_templates": 10}
    build(RomeSettings, settings, "rome")  # every mapped key is a real setting
    assert {"v_loss_layer", "mom2_n_samples", "rewrite_module_tmp", "device"} <= set(unmapped)
    assert "alg_name" not in unmapped and "layers" not in unmapped


def test_each_methods_keys(tmp_path):
    grace, _ = translate("grace", write(tmp_path, "alg_name: GRACE\ninner_params:\n"
                                        "- model.layers[27].mlp.down_proj.weight\n"
                                        "edit_lr: 1.0\nn_iter: 50\neps: 1.0\n"))
    assert grace == {"layer": 27, "edit_lr": 1.0, "n_iter": 50, "init_epsilon": 1.0}
    alpha, _ = translate("alphaedit", write(tmp_path, "alg_name: AlphaEdit\nlayers: [4, 5]\n"
                                            "nullspace_threshold: 2e-2\nL2: 10\n"))
    assert alpha == {"layers": (4, 5), "nullspace_threshold": 0.02, "l2": 10.0}
    # EasyEdit's hparams/MEND/llama-7b.yaml: three blocks' gate, up and down matrices
    mend, unmapped = translate("mend", write(tmp_path, "alg_name: MEND\ninner_params:\n" + "".join(
        f"- model.layers.{i}.mlp.{m}_proj.weight\n" for i in (29, 30, 31)
        for m in ("gate", "up", "down")) + "lr: 1e-6\nedit_lr: 1e-4\nlr_lr: 1e-4\ncedit: 0.1\n"
        "cloc: 1.0\nrank: 1920\nmax_iters: 100000\nn_hidden: 1\n"))
    assert mend == {"layers": (29, 30, 31), "lr": 1e-6, "edit_lr": 1e-4, "lr_lr": 1e-4,
                    "c_edit": 0.1, "c_loc": 1.0, "rank": 1920, "steps": 100000}
    build(resolve("mend").settings, mend, "mend")
    assert unmapped == ["n_hidden"]
    for method, text in [("memit", "layers: [4, 5]\nmom2_update_weight: 15000\n"),
                         # EasyEdit's hparams/PMET/llama-7b.yaml
                         ("pmet", "alg_name: PMET\nlayers: [4, 5, 6, 7, 8]\nv_num_grad_steps: 20\n"
                                  "v_lr: 5e-1\nclamp_norm_factor: 1\nkl_factor: 0.0625\n"
                                  "v_weight_decay: 0.5\nmom2_update_weight: 15000\n"),
                         ("ft", "layers: [21]\nlr: 5e-4\nnum_steps: 25\nnorm_constraint: 5e-5\n"),
                         ("kn", "steps: 20\nadaptive_threshold: 0.2\np: 0.4\nrefine: false\n")]:
        settings, unmapped = translate(method, write(tmp_path, text))
        build(resolve(method).settings, settings, method)  # every mapped key is a real setting
        assert not unmapped


@pytest.mark.parametrize("method, text, message", [
    ("rome", "alg_name: MEMIT\nlayers: [4]\n", "is for 'MEMIT', not ROME; pass it as "
                                               "--method-opt memit.easyedit_yaml"),
    ("rome", "layers: [4, 5]\n", "layers \\[4, 5\\]: this method edits one layer"),
    ("rome", "context_template_length_params: [[5, 10], [10, 10]]\n", "one length"),
    ("grace", "inner_params: [a, b]\n", "expected one parameter of one layer"),
    ("rome", "- just\n- a list\n", "holds no key: value mapping"),
])
def test_bad_files_are_named(tmp_path, method, text, message):
    with pytest.raises(EasyEditConfigError, match=message):
        translate(method, write(tmp_path, text))
    with pytest.raises(EasyEditConfigError, match="is not a file"):
        translate("rome", str(tmp_path / "none.yaml"))

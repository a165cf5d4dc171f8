"""EasyEdit hyperparameter files (``hparams/<METHOD>/<model>.yaml``) mapped onto editguard's keys.

``--method-opt rome.easyedit_yaml=PATH`` reads the file, checks that its ``alg_name`` is the
method's, and turns each key with a counterpart into an editguard setting; ``--method-opt`` keys
given beside it win. Keys with no counterpart (module-name templates editguard derives from the
architecture, the device, a statistics sample counted in documents rather than tokens, ...) are
returned so the run can name them.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import yaml

Convert = Callable[[Any], Any]


class EasyEditConfigError(ValueError):
    pass


def _one_layer(value: Any) -> int:
    layers = list(value) if isinstance(value, (list, tuple)) else [value]
    if len(layers) != 1:
        raise EasyEditConfigError(f"layers {layers}: this method edits one layer; give one")
    return int(layers[0])


def _layer_of_param(value: Any) -> int:
    """GRACE's ``inner_params: [model.layers[27].mlp.down_proj.weight]`` -> 27."""
    names = list(value) if isinstance(value, (list, tuple)) else [value]
    found = re.search(r"[.\[](\d+)[\].]", str(names[0])) if len(names) == 1 else None
    if found is None:
        raise EasyEditConfigError(f"inner_params {names}: expected one parameter of one layer, "
                                  "such as model.layers[27].mlp.down_proj.weight")
    return int(found.group(1))


def _layers_of_params(value: Any) -> tuple[int, ...]:
    """MEND's ``inner_params`` (the MLP matrices of its last blocks) -> the blocks, sorted.
    editguard's MEND edits each block's MLP output matrix; the file's other matrices of the
    same blocks (gate/up, c_fc) have no counterpart."""
    names = list(value) if isinstance(value, (list, tuple)) else [value]
    found = [re.search(r"[.\[](\d+)[\].]", str(n)) for n in names]
    if not names or any(f is None for f in found):
        raise EasyEditConfigError(f"inner_params {names}: expected parameters of numbered "
                                  "blocks, such as model.layers.29.mlp.down_proj.weight")
    return tuple(sorted({int(f.group(1)) for f in found if f is not None}))


def _templates(value: Any) -> dict[str, int]:
    """ROME's ``context_template_length_params: [[length, count], ...]``; editguard's templates
    have one length, so exactly one pair maps."""
    pairs = [list(p) for p in value]
    if len(pairs) != 1 or len(pairs[0]) != 2:
        raise EasyEditConfigError(
            f"context_template_length_params {pairs}: editguard's context templates have one "
            "length; give one [length, count] pair (or leave the key out and pass "
            "--method-opt rome.context_templates=N and context_length=L)")
    length, count = pairs[0]
    return {"context_length": int(length), "context_templates": int(count)}


_VALUES: dict[str, tuple[str, Convert]] = {
    "v_num_grad_steps": ("v_steps", int), "v_lr": ("v_lr", float),
    "v_weight_decay": ("v_weight_decay", float), "clamp_norm_factor": ("clamp_norm_factor", float),
    "kl_factor": ("kl_factor", float),
}
# method -> EasyEdit key -> (editguard key, conversion); "" as the key: the conversion returns
# a dict of settings
MAPPINGS: dict[str, dict[str, tuple[str, Convert]]] = {
    "rome": {"layers": ("layer", _one_layer), "mom2_adjustment": ("use_covariance", bool),
             "context_template_length_params": ("", _templates), **_VALUES},
    "memit": {"layers": ("layers", lambda v: tuple(int(x) for x in v)),
              "mom2_update_weight": ("mom2_update_weight", float), **_VALUES},
    "pmet": {"layers": ("layers", lambda v: tuple(int(x) for x in v)),
             "mom2_update_weight": ("mom2_update_weight", float), **_VALUES},
    "alphaedit": {"layers": ("layers", lambda v: tuple(int(x) for x in v)),
                  "nullspace_threshold": ("nullspace_threshold", float), "L2": ("l2", float),
                  **_VALUES},
    "ft": {"layers": ("layer", _one_layer), "lr": ("lr", float), "num_steps": ("steps", int),
           "norm_constraint": ("norm_constraint", float)},
    "grace": {"inner_params": ("layer", _layer_of_param), "n_iter": ("n_iter", int),
              "edit_lr": ("edit_lr", float), "eps": ("init_epsilon", float)},
    "mend": {"inner_params": ("layers", _layers_of_params), "rank": ("rank", int),
             "lr": ("lr", float), "edit_lr": ("edit_lr", float), "lr_lr": ("lr_lr", float),
             "cedit": ("c_edit", float), "cloc": ("c_loc", float), "max_iters": ("steps", int)},
    "kn": {"steps": ("steps", int), "adaptive_threshold": ("adaptive_threshold", float),
           "p": ("p", float), "refine": ("refine", bool)},
}
# what EasyEdit's alg_name says for each method
ALG_NAMES = {"rome": "ROME", "memit": "MEMIT", "pmet": "PMET", "alphaedit": "AlphaEdit",
             "ft": "FT", "grace": "GRACE", "kn": "KN", "mend": "MEND"}


def translate(method: str, path: str | Path) -> tuple[dict[str, Any], list[str]]:
    """(editguard settings, EasyEdit keys with no counterpart) of an EasyEdit YAML file."""
    if method not in MAPPINGS:
        raise EasyEditConfigError(f"{method}: no EasyEdit mapping; easyedit_yaml works for "
                                  f"{', '.join(sorted(MAPPINGS))}")
    file = Path(path).expanduser()
    if not file.is_file():
        raise EasyEditConfigError(f"{method}.easyedit_yaml: {str(path)!r} is not a file; give "
                                  "an EasyEdit hparams YAML such as hparams/ROME/llama-7b.yaml")
    try:
        record = yaml.safe_load(file.read_text(encoding="utf-8"))
    except yaml.YAMLError as err:
        raise EasyEditConfigError(f"{method}.easyedit_yaml: {file} is not YAML ({err})") from None
    if not isinstance(record, Mapping):
        raise EasyEditConfigError(f"{method}.easyedit_yaml: {file} holds no key: value mapping")
    alg = record.get("alg_name")
    if alg is not None and str(alg).lower() != ALG_NAMES[method].lower():
        raise EasyEditConfigError(f"{method}.easyedit_yaml: {file} is for {alg!r}, not "
                                  f"{ALG_NAMES[method]}; pass it as --method-opt "
                                  f"{_method_for(str(alg))}.easyedit_yaml=...")
    out: dict[str, Any] = {}
    unmapped: list[str] = []
    for key, value in record.items():
        if key == "alg_name":
            continue
        target = MAPPINGS[method].get(key)
        if target is None:
            unmapped.append(key)
            continue
        name, convert = target
        try:
            converted = convert(value)
        except (TypeError, ValueError) as err:
            raise EasyEditConfigError(f"{method}.easyedit_yaml: {key} = {value!r}: {err}") from None
        if name:
            out[name] = converted
        else:
            out.update(converted)
    return out, unmapped


def _method_for(alg: str) -> str:
    names = {v.lower(): k for k, v in ALG_NAMES.items()}
    return names.get(alg.lower(), "<method>")

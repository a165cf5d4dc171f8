"""Speed of the value optimisation (most of a ROME or MEMIT edit), split against whole prompts.

    .venv/bin/python -m perf.editing [--model smollm2-135m] [--edits 6]

The same requests of the embedded edit set are optimised twice at ROME's and at MEMIT's module,
with the hyperparameters of editors/configs: once running each prompt's tokens before the subject
once and only the rest per step (``SplitBatch``, what the editors use), once running the whole
prompts every step (the reference code's way). Prints both times, their ratio, and how far the
two results are apart.
"""

from __future__ import annotations

import argparse
import time

import torch

from editguard.data.paths import editguard_home
from editguard.editors.layers import arch_for
from editguard.editors.prompts import context_templates
from editguard.editors.registry import create
from editguard.editors.values import optimise_value
from editguard.edits.sampling import sample
from editguard.edits.sources import load_edit_source
from editguard.models.loading import load
from editguard.models.spec import ModelSpec


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--model", default="smollm2-135m")
    parser.add_argument("--edits", type=int, default=6)
    args = parser.parse_args()
    lm = load(ModelSpec(args.model), editguard_home())
    model, tokenizer = lm.model, lm.tokenizer
    arch = arch_for(model)
    requests = sample(load_edit_source("embedded"), args.edits, seed=0)
    print(f"{args.model} on {torch.get_num_threads()} threads, {len(requests)} edit requests")
    for method in ("rome", "memit"):
        cfg = create(method).resolve(model)
        module = (arch.mlp_out_name(cfg.layer) if method == "rome"
                  else arch.block_name(cfg.layers[-1]))
        templates = context_templates(model, tokenizer, cfg.context_templates,
                                      cfg.context_length, seed=0)
        times = {True: 0.0, False: 0.0}
        steps = 0
        worst = 0.0
        for request in requests:
            out = {}
            for split in (True, False):
                start = time.perf_counter()
                out[split] = optimise_value(model, tokenizer, module, request, templates,
                                            cfg.values(), split=split)
                times[split] += time.perf_counter() - start
            steps += out[True].steps
            gap = (out[True].delta - out[False].delta).norm() / out[False].delta.norm()
            worst = max(worst, float(gap))
        print(f"{method} value optimisation at {module}, {steps} steps in all: whole prompts "
              f"{times[False]:.2f} s, split {times[True]:.2f} s, ratio "
              f"{times[False] / times[True]:.2f}x (max relative |delta difference| {worst:.1e})")


if __name__ == "__main__":
    main()

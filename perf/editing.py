"""Seconds per ROME and MEMIT edit, against a reference that recomputes everything every step.

    .venv/bin/python -m perf.editing [--model smollm2-135m] [--edits 8] [--threads N]

Both sides run the same algorithm with the same hyperparameters (editors/configs) on the same
requests of the embedded edit set, each edit made on the unedited model and undone after. The
reference is written here from the papers' code, as EasyEdit runs it: every optimisation step
is one forward pass of the model over every whole prompt with logits over the whole vocabulary
at every position, and MEMIT optimises its requests' target vectors one after another. editguard
runs each prompt's tokens before the subject once, and the rest through the blocks below the
edited one once (``SplitBatch``), ends the KL prompt at the subject's last token (where the KL
is read), projects only the scored positions onto the vocabulary, and optimises a MEMIT batch's
requests together. Both sides take the initial value and the KL's reference distribution from
the first step's forward pass, as the reference code does. ``--threads`` sets torch's thread
count for both sides (default: torch's own, one per core).

Printed first: how many token rows one ROME step multiplies by each weight matrix on each side,
and the matmul rate of the model's MLP output matrices at those row counts (why a single edit
gains less than its share of arithmetic). Then per method: seconds per edit on each side and
their ratio, rewrite success on each side (the new target more likely than the true one on the
edit prompt), how far the two updates are apart, and the process's peak RSS before and after
the ROME edits.
"""

from __future__ import annotations

import argparse
import math
import resource
import time
from collections.abc import Sequence

import torch
import torch.nn.functional as F
from transformers import PreTrainedModel, PreTrainedTokenizerBase

from editguard.backends.hf import HFBackend
from editguard.data.corpora import load_corpus
from editguard.data.paths import editguard_home
from editguard.editors.base import EditorBase, PrepareContext
from editguard.editors.memit import MemitEditor
from editguard.editors.nethook import Trace
from editguard.editors.layers import arch_for, n_layers, to_out_in
from editguard.editors.rome import RomeEditor
from editguard.editors.values import (Value, ValueSettings, decay_term, edit_rows, frozen,
                                      kl_term)
from editguard.edits.request import EditRequest
from editguard.edits.sampling import sample
from editguard.edits.sources import load_edit_source
from editguard.lm.device import model_device
from editguard.lm.tokens import pad_id, right_pad
from editguard.models.loading import load
from editguard.models.spec import ModelSpec


def reference_value(model: PreTrainedModel, tokenizer: PreTrainedTokenizerBase, module: str,
                    request: EditRequest, templates: Sequence[str],
                    settings: ValueSettings) -> Value:
    """ROME's compute_v / MEMIT's compute_z as the reference code runs them: a full forward of
    every whole prompt per step (the KL prompt "<subject> is a" whole), log-softmax over the
    vocabulary at every position."""
    device = model_device(model)
    target, rows, subject_at = edit_rows(tokenizer, request, templates, whole_kl_prompt=True)
    kl_where = subject_at[-1]
    label_rows: list[int] = []
    label_cols: list[int] = []
    for i, row in enumerate(rows[:-1]):
        label_rows += [i] * len(target)
        label_cols += range(len(row) - len(target), len(row))
    input_ids, mask = right_pad(rows, pad_id(tokenizer), device)  # (B, T)
    at_rows = torch.arange(len(rows), device=device)
    at_cols = torch.tensor(subject_at, device=device)
    labels = torch.tensor(target * len(templates), device=device)  # (N,)
    lr, lc = torch.tensor(label_rows, device=device), torch.tensor(label_cols, device=device)

    def log_probs() -> torch.Tensor:
        logits = model(input_ids=input_ids, attention_mask=mask).logits  # (B, T, V)
        return torch.log_softmax(logits.float(), dim=2)

    # as the reference code: step 1 (delta zero) records the initial value and the KL's
    # reference distribution
    delta = torch.zeros(0)
    init = torch.zeros(0)

    def add_delta(output: torch.Tensor, _: str) -> torch.Tensor:
        nonlocal delta, init
        if init.numel() == 0:
            init = output[0, subject_at[0]].detach().float().clone()  # (d,)
            delta = torch.zeros_like(init, requires_grad=True)
        out = output.clone()
        out[at_rows, at_cols] = out[at_rows, at_cols] + delta.to(out.dtype)
        return out

    nll, step = math.inf, 0
    kl_ref = torch.zeros(0)
    optimiser: torch.optim.Adam | None = None
    max_norm = math.inf
    with frozen(model), torch.enable_grad():
        for step in range(1, settings.steps + 1):
            if optimiser is not None:
                optimiser.zero_grad()
            with Trace(model, [module], edit=add_delta, detach=False):
                logp = log_probs()  # (B, T, V)
            if optimiser is None:
                kl_ref = logp[-1, kl_where].detach()  # (V,)
                optimiser = torch.optim.Adam([delta], lr=settings.lr)
                max_norm = settings.clamp_norm_factor * float(init.norm())
            nll_t = F.nll_loss(logp[lr, lc], labels)  # mean over the target tokens
            loss = nll_t + settings.kl_factor * kl_term(logp[-1, kl_where], kl_ref) \
                + decay_term(delta, init, settings.weight_decay)
            nll = float(nll_t.detach())
            if float(loss.detach()) < settings.early_stop_loss or step == settings.steps:
                break
            loss.backward()
            optimiser.step()
            with torch.no_grad():
                if delta.norm() > max_norm:
                    delta.mul_(max_norm / delta.norm())
    return Value(init=init, delta=delta.detach().clone(), nll=nll, steps=step)


class ReferenceRome(RomeEditor):
    def _value(self, model: PreTrainedModel, tokenizer: PreTrainedTokenizerBase, module: str,
               request: EditRequest) -> Value:
        return reference_value(model, tokenizer, module, request, self._templates,
                               self._cfg.values())


class ReferenceMemit(MemitEditor):
    def _values(self, model: PreTrainedModel, tokenizer: PreTrainedTokenizerBase,
                requests: list[EditRequest]) -> list[Value]:
        return [reference_value(model, tokenizer, self._z_module(model), r, self._templates,
                                self._cfg.values()) for r in requests]


def rewrite_success(backend: HFBackend, request: EditRequest) -> bool:
    new, true = backend.loglikelihood([(request.text, " " + request.target_new),
                                       (request.text, " " + request.target_true)])
    return new.logprob > true.logprob


def run(editor: EditorBase, model: PreTrainedModel, tokenizer: PreTrainedTokenizerBase,
        batches: list[list[EditRequest]]) -> tuple[float, int, list[dict[str, torch.Tensor]]]:
    """Seconds in ``apply``, rewrite successes, and each batch's changed weights."""
    backend = HFBackend(model, tokenizer)
    names = editor.parameter_names(model)
    params = dict(model.named_parameters())
    before = {n: params[n].detach().clone() for n in names}
    seconds, successes, updates = 0.0, 0, []
    for batch in batches:
        start = time.perf_counter()
        handle = editor.apply(model, tokenizer, batch)
        seconds += time.perf_counter() - start
        successes += sum(rewrite_success(backend, r) for r in batch)
        updates.append({n: (params[n] - before[n]).detach().clone() for n in names})
        handle.restore()
    return seconds, successes, updates


def gap(ours: list[dict[str, torch.Tensor]], ref: list[dict[str, torch.Tensor]]) -> float:
    """Largest relative Frobenius difference between the two sides' updates."""
    return max(float((a[n] - b[n]).norm() / b[n].norm()) for a, b in zip(ours, ref) for n in a)


def step_rows(tokenizer: PreTrainedTokenizerBase, request: EditRequest,
              templates: Sequence[str]) -> tuple[int, int]:
    """Token rows one optimisation step of ``request`` multiplies by each weight matrix, padding
    included: editguard's (each prompt from the subject's last token, ``SplitBatch``'s tails)
    and the reference's (whole prompts)."""
    _, rows, subject_at = edit_rows(tokenizer, request, templates)
    tails = max(len(ids) - where for ids, where in zip(rows, subject_at, strict=True))
    _, whole_rows, _ = edit_rows(tokenizer, request, templates, whole_kl_prompt=True)
    whole = max(len(ids) for ids in whole_rows)
    return len(rows) * tails, len(whole_rows) * whole


@torch.no_grad()
def matmul_rate(model: PreTrainedModel, n_rows: int, repeats: int = 3) -> float:
    """GFLOP/s of (n_rows, in) @ W^T over the model's MLP output matrices, each streamed from
    memory once per pass (together they exceed the CPU's caches), best of ``repeats``."""
    arch = arch_for(model)
    weights = [to_out_in(model.get_parameter(arch.weight_name(layer)), arch)  # (out, in)
               for layer in range(n_layers(model))]
    x = torch.randn(n_rows, weights[0].shape[1], device=weights[0].device)
    flops = sum(2 * n_rows * w.shape[0] * w.shape[1] for w in weights)
    best = math.inf
    for _ in range(repeats):
        start = time.perf_counter()
        for w in weights:
            F.linear(x, w)
        best = min(best, time.perf_counter() - start)
    return flops / best / 1e9


def peak_rss_mib() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # Linux: KiB


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--model", default="smollm2-135m")
    parser.add_argument("--edits", type=int, default=8)
    parser.add_argument("--threads", type=int, default=None)
    args = parser.parse_args()
    if args.edits < 1:
        parser.error(f"--edits {args.edits}: give at least 1")
    if args.threads is not None:
        if args.threads < 1:
            parser.error(f"--threads {args.threads}: give at least 1 (or leave it out)")
        torch.set_num_threads(args.threads)
    lm = load(ModelSpec(args.model), editguard_home())
    model, tokenizer = lm.model, lm.tokenizer
    requests = sample(load_edit_source("embedded"), args.edits, seed=0)
    context = PrepareContext(fingerprint=lm.fingerprint, cache_dir=editguard_home(),
                             corpus=load_corpus)
    threads = torch.get_num_threads()
    print(f"{args.model} on {threads} thread{'' if threads == 1 else 's'}, {len(requests)} edit "
          "requests; seconds per edit, rewrite success (new target over the true one), update gap")
    singles = [[r] for r in requests]
    cases: list[tuple[str, type[EditorBase], type[EditorBase], list[list[EditRequest]]]] = [
        ("rome", RomeEditor, ReferenceRome, singles),
        ("memit, one edit per call", MemitEditor, ReferenceMemit, singles),
        (f"memit, one batch of {len(requests)}", MemitEditor, ReferenceMemit, [list(requests)]),
    ]
    for label, ours_cls, ref_cls, batches in cases:
        ours, ref = ours_cls(), ref_cls()
        for editor in (ours, ref):  # statistics are read from the cache (computed once)
            editor.prepare(model, tokenizer, context)
        if label == "rome":  # first: the rows of one step, with the prepared editor's templates
            templates = ours.provenance["context_templates"]  # as RomeEditor records them
            ours_rows, ref_rows = step_rows(tokenizer, requests[0], templates)
            print(f"one ROME step of the first request multiplies {ours_rows} token rows by "
                  f"each weight matrix here, {ref_rows} in the reference; the model's MLP output "
                  f"matrices at those rows: {matmul_rate(model, ours_rows):.0f} vs "
                  f"{matmul_rate(model, ref_rows):.0f} GFLOP/s")
        rss_before = peak_rss_mib()
        our_s, our_ok, our_up = run(ours, model, tokenizer, batches)
        rss_after = peak_rss_mib()  # editguard's side runs first: its own peak
        ref_s, ref_ok, ref_up = run(ref, model, tokenizer, batches)
        n = len(requests)
        print(f"{label}: reference {ref_s / n:.2f} s/edit, editguard {our_s / n:.2f} s/edit, "
              f"ratio {ref_s / our_s:.2f}x; rewrite success {ref_ok}/{n} vs {our_ok}/{n}; "
              f"max relative update difference {gap(our_up, ref_up):.1e}")
        if label == "rome":
            print(f"  peak RSS {rss_before:.0f} MiB after load and preparation, "
                  f"{rss_after:.0f} MiB after editguard's ROME edits")


if __name__ == "__main__":
    main()

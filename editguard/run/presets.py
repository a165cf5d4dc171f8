"""Named benchmark sets: the settings of the published studies editguard exists for.

``--preset NAME`` chooses the benchmarks and their options; ``--bench-opt`` still overrides
an option. Benchmarks of a preset whose data cannot be had here (hub data offline, no local
file) are left out and named in the run's header, so nobody mistakes what ran for the whole
study.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence

from editguard.benchmarks import registry as benchmark_registry
from editguard.benchmarks.records import DataUnavailable


@dataclasses.dataclass(frozen=True)
class Preset:
    name: str
    study: str
    benchmarks: tuple[str, ...]
    bench_opts: tuple[str, ...]  # NAME.KEY=VALUE, as on the command line


PRESETS = {
    "paper-a": Preset(
        "paper-a", "Should We Really Edit Language Models? (NeurIPS 2024)",
        benchmarks=("efficacy", "mmlu", "bbh", "gsm8k", "commonsense_qa", "triviaqa",
                    "truthfulqa", "truthfulqa_mc2", "toxigen"),
        bench_opts=("mmlu.num_fewshot=5", "gsm8k.variant=cot", "gsm8k.num_fewshot=8",
                    "commonsense_qa.num_fewshot=7", "truthfulqa.primer=true",
                    "truthfulqa.source=hub", "truthfulqa_mc2.source=hub")),
    "paper-b": Preset(
        "paper-b", "Model Editing Can Hurt General Abilities of LLMs",
        benchmarks=("efficacy", "gsm8k", "rte", "nq_open", "boolq", "mutual", "samsum",
                    "conll2003", "sst2"),
        bench_opts=("gsm8k.variant=plain", "gsm8k.num_fewshot=0")),
}


class PresetError(ValueError):
    pass


@dataclasses.dataclass(frozen=True)
class Chosen:
    benchmarks: list[str]
    bench_opts: list[str]
    left_out: list[str]  # "name: why" for each preset benchmark that will not run


def get(name: str) -> Preset:
    if name not in PRESETS:
        raise PresetError(f"--preset {name!r} is not a preset; accepted: {', '.join(PRESETS)}")
    return PRESETS[name]


def choose(name: str | None, benchmarks: Sequence[str], bench_opts: Sequence[str],
           limit_all: int | None, default_benchmarks: Sequence[str], seed: int) -> Chosen:
    """The run's benchmarks and options from a preset (or the given/default benchmarks), with
    ``--limit-all`` applied to every benchmark that has a ``limit`` (explicit options win)."""
    if limit_all is not None and limit_all < 0:
        raise PresetError(f"--limit-all {limit_all} must be 0 (all items) or a positive count")
    left_out: list[str] = []
    if name is None:
        names, opts = list(benchmarks or default_benchmarks), list(bench_opts)
    else:
        preset = get(name)
        if benchmarks:
            raise PresetError(f"--preset {name} chooses the benchmarks "
                              f"({', '.join(preset.benchmarks)}); leave out --benchmarks, or "
                              "drop --preset and name them yourself")
        opts = [*preset.bench_opts, *bench_opts]
        names = []
        for bench in preset.benchmarks:
            try:
                options = _options_of(bench, opts)
                benchmark_registry.create(bench, options, seed=seed).check()
            except DataUnavailable as err:
                left_out.append(str(err))
                continue
            names.append(bench)
        dropped = {benchmark_registry.label(b) for b in preset.benchmarks if b not in names}
        # options of a benchmark left out have nothing to apply to (the header says why)
        opts = [o for o in opts if o.split("=", 1)[0].rsplit(".", 1)[0] not in dropped]
    if limit_all is not None:
        explicit = {o.split("=", 1)[0] for o in opts}
        for bench in names:
            fields = {f.name for f in dataclasses.fields(benchmark_registry.resolve(bench).settings)}
            label = benchmark_registry.label(bench)
            if "limit" in fields and f"{label}.limit" not in explicit:
                opts.append(f"{label}.limit={limit_all}")
    return Chosen(names, opts, left_out)


def _options_of(bench: str, opts: Sequence[str]) -> dict[str, object]:
    """The options ``opts`` gives ``bench``, parsed as the run parses them."""
    from editguard.run.matrix import parse_options  # matrix imports this module

    label = benchmark_registry.label(bench)
    mine = [o for o in opts if o.strip().startswith(label + ".")]
    return parse_options(mine, "--bench-opt", [label]).get(label, {})

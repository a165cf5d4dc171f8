"""Benchmark names -> classes: the built-ins, the ``editguard.benchmarks`` entry points, and
``package.module:Class`` paths, imported lazily."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from editguard.benchmarks.base import Benchmark
from editguard.edits.request import EditRequest
from editguard.registry import Registry, UnknownPluginError

ENTRY_POINT_GROUP = "editguard.benchmarks"


class UnknownBenchmarkError(UnknownPluginError):
    pass


BENCHMARKS: Registry[Benchmark] = Registry(
    noun="benchmark", option="--benchmarks", group=ENTRY_POINT_GROUP,
    builtins={"bbh": "editguard.benchmarks.bbh:Bbh",
              "bbh_parents": "editguard.benchmarks.bbh:BbhParents",
              "bbq": "editguard.benchmarks.bbq:Bbq",
              "boolq": "editguard.benchmarks.choices:BoolQ",
              "commonsense_qa": "editguard.benchmarks.commonsense_qa:CommonsenseQA",
              "conll2003": "editguard.benchmarks.ner:Conll2003",
              "efficacy": "editguard.benchmarks.efficacy:Efficacy",
              "closedbook": "editguard.benchmarks.closedbook:ClosedBook",
              "facts": "editguard.benchmarks.facts:Facts",
              "gsm8k": "editguard.benchmarks.gsm8k:Gsm8k",
              "mmlu": "editguard.benchmarks.mmlu:Mmlu",
              "mutual": "editguard.benchmarks.mutual:Mutual",
              "nq_open": "editguard.benchmarks.openqa:NaturalQuestions",
              "rte": "editguard.benchmarks.choices:Rte",
              "samsum": "editguard.benchmarks.summaries:Samsum",
              "sst2": "editguard.benchmarks.choices:Sst2",
              "toxigen": "editguard.benchmarks.choices:ToxiGen",
              "triviaqa": "editguard.benchmarks.openqa:TriviaQA",
              "truthfulqa": "editguard.benchmarks.truthfulqa:TruthfulQA",
              "truthfulqa_mc2": "editguard.benchmarks.truthfulqa:TruthfulQAMc2"},
    required=("name", "version", "kind", "metrics", "settings", "evaluate"),
    contract="editguard.benchmarks.base.Benchmark", error=UnknownBenchmarkError)


def resolve(spec: str) -> type[Benchmark]:
    return BENCHMARKS.resolve(spec)


def label(spec: str) -> str:
    return BENCHMARKS.label(spec)


def create(spec: str, options: Mapping[str, object] | None = None, *, seed: int = 0,
           edits: Sequence[EditRequest] = ()) -> Benchmark:
    return resolve(spec)(options, seed=seed, edits=edits)


def metric_names(specs: Sequence[str] | None = None) -> dict[str, list[str]]:
    """benchmark -> its metric names (for validating thresholds); every registered benchmark
    unless ``specs`` names some."""
    names = BENCHMARKS.names() if specs is None else list(specs)
    return {label(name): [m.name for m in resolve(name).metrics] for name in names}

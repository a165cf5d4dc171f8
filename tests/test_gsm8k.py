"""GSM8K's prompts (lm-eval's exemplars), answer extraction and exact match, on stand-in data."""

from __future__ import annotations

import json

import pytest

from editguard.backends.hf import HFBackend
from editguard.benchmarks.gsm8k import FLEXIBLE, INVALID, STRICT, cot_exemplars, extract
from editguard.benchmarks.registry import create
from tests.tiny import tiny_model

pytestmark = pytest.mark.usefixtures("asset_home")

RECORDS = [{"question": "Tom has 3 apples and buys 4 more. How many apples does he have?",
            "answer": "He has 3 + 4 = <<3+4=7>>7 apples.\n#### 7"},
           {"question": "A shop sells 1,200 pens a day. How many in 2 days?",
            "answer": "1,200 * 2 = 2,400\n#### 2400"}]


@pytest.fixture()
def data(tmp_path):
    path = tmp_path / "gsm8k.jsonl"
    path.write_text("".join(json.dumps(r) + "\n" for r in RECORDS))
    return str(path)


def test_cot_prompt_is_lm_eval_gsm8k_cot(data):
    shots = cot_exemplars()
    assert len(shots) == 8 and shots[0][0].startswith("There are 15 trees in the grove.")
    item = create("gsm8k", {"path": data}).items()[0]
    expected = "".join(f"Q: {q}\nA: {t}\n\n" for q, t in shots) + f"Q: {RECORDS[0]['question']}\nA:"
    assert item.context == expected and item.references == ("7",)
    plain = create("gsm8k", {"path": data, "variant": "plain", "num_fewshot": 0}).items()[1]
    assert plain.context == f"Question: {RECORDS[1]['question']}\nAnswer:"
    assert plain.references == ("2400",)
    assert create("gsm8k", {"path": data, "num_fewshot": 2}).items()[0].context.count("Q: ") == 3


def test_answers_are_extracted_and_matched_as_lm_eval_does(data):
    bench = create("gsm8k", {"path": data})
    item = bench.items()[1]
    assert bench.score(item, " 1,200 * 2 = 2,400. The answer is 2,400.\n\n") == {
        "strict": 1.0, "flexible": 1.0}
    assert bench.score(item, " So it is 2300 pens.") == {"strict": 0.0, "flexible": 0.0}
    assert bench.score(item, " So 2400") == {"strict": 0.0, "flexible": 1.0}
    assert extract(STRICT["plain"], "x #### -3.5", last=False) == "-3.5"
    assert extract(FLEXIBLE, "1 then 22 then $3", last=True) == "$3"
    assert extract(STRICT["cot"], "no number", last=False) == INVALID


def test_bad_settings_stop_the_run(data):
    with pytest.raises(ValueError, match="variant 'plain' is 0-shot here"):
        create("gsm8k", {"path": data, "variant": "plain"}).check()
    with pytest.raises(ValueError, match="gsm8k_cot has 8 exemplars"):
        create("gsm8k", {"path": data, "num_fewshot": 9}).check()


def test_it_generates_on_a_model(data, tokenizer):
    backend = HFBackend(tiny_model("llama", len(tokenizer)), tokenizer)
    bench = create("gsm8k", {"path": data, "num_fewshot": 1})
    bench.max_new_tokens = 8  # type: ignore[misc]  # a random model never stops by itself
    result = bench.evaluate(backend)
    assert set(result.scores) == {"strict", "flexible"} and len(result.item_ids) == 2

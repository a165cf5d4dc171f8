"""BBH's chain-of-thought prompts: BIG-bench parent items in BBH's format (checked against
lm-eval's exemplars, which are real BBH items), answer extraction, and the hub source's local file."""

from __future__ import annotations

import json

import pytest

from editguard.benchmarks.bbh import (PARENTS, Bbh, BbhParents, generation_settings,
                                      parent_items, prompt, subtask_prompt)
from editguard.benchmarks.generative import Prompted
from editguard.benchmarks.records import SchemaError
from editguard.data.install import has_bigbench
from editguard.data.paths import bigbench_task_path
from tests.bigbench import requires_bigbench


@requires_bigbench
@pytest.mark.parametrize("subtask", sorted(PARENTS))
def test_parent_items_render_exactly_as_bbh_renders_its_exemplars(subtask: str) -> None:
    parent, render = PARENTS[subtask]
    task = json.loads(bigbench_task_path(parent).read_text("utf-8"))
    rendered = dict(r for r in (render(task, e) for e in task["examples"]) if r is not None)
    for text, chain in subtask_prompt(subtask)[1]:  # lm-eval's copies of BBH items
        assert text in rendered, text[:200]
        assert chain.rstrip(".").endswith(f"So the answer is {rendered[text]}")
    pool = {text for text, _ in parent_items(subtask)}
    assert not pool & {text for text, _ in subtask_prompt(subtask)[1]}  # exemplars never scored
    assert len(pool) > 100


def test_the_prompt_is_the_description_three_worked_exemplars_and_the_question() -> None:
    description, shots = subtask_prompt("navigate")
    text = prompt("navigate", "Take 1 step.")
    assert text.startswith(description) and len(shots) == 3
    assert text.count("A: Let's think step by step.\n") == 4
    assert text.endswith("\n\nQ: Take 1 step.\nA: Let's think step by step.\n")
    assert generation_settings() == (("</s>", "Q", "\n\n"), 1024)


@pytest.mark.parametrize("response, target, score", [
    ("Step one. So the answer is (B).", "(B)", 1.0),
    ("so the answer is (B).", "(B)", 1.0),
    ("So the answer is No.", "Yes", 0.0),
    ("So the answer is yes.", "Yes", 0.0),  # case is kept, as lm-eval's exact_match does
    ("I do not know.", "(A)", 0.0),  # no "the answer is": [invalid]
])
def test_the_answer_is_read_after_the_answer_is(response: str, target: str, score: float) -> None:
    bench = BbhParents({"limit": 1})
    assert bench.score(Prompted("x/0", "", (target,)), response)["exact_match"] == score


@requires_bigbench
def test_the_limit_is_spread_over_the_subtasks_and_options_are_checked() -> None:
    bench = BbhParents({"limit": 13})
    ids = [item.id for item in bench.items()]
    per_task = {s: sum(i.startswith(s + "/") for i in ids) for s in PARENTS}
    assert sum(per_task.values()) == 13 and set(per_task.values()) == {1, 2}
    assert ids == [item.id for item in BbhParents({"limit": 13}).items()]  # seeded
    only = BbhParents({"limit": 4, "subtasks": "navigate,word_sorting"})
    assert {i.id.split("/")[0] for i in only.items()} == {"navigate", "word_sorting"}
    with pytest.raises(ValueError, match="'navigat' is not one of its subtasks.*'navigate'"):
        BbhParents({"subtasks": "navigat"}).check()
    with pytest.raises(ValueError, match="max_new_tokens 0 must be at least 1"):
        BbhParents({"max_new_tokens": 0}).check()


@pytest.mark.skipif(has_bigbench(), reason="BIG-bench is installed here")
def test_without_bigbench_the_parents_say_how_to_get_it() -> None:
    with pytest.raises(FileNotFoundError, match="PyPI no longer has") as err:
        BbhParents({"limit": 2}).check()
    assert "EDITGUARD_DOWNLOADS" in str(err.value)


def test_bbh_reads_a_local_file_of_real_bbh_records(tmp_path) -> None:
    text, chain = subtask_prompt("navigate")[1][0]
    records = [{"subtask": "navigate", "input": text, "target": "No"},
               {"subtask": "word_sorting", "input": "Sort the following words alphabetically: "
                "List: b a", "target": "a b"}]
    path = tmp_path / "bbh.jsonl"
    path.write_text("".join(json.dumps(r) + "\n" for r in records))
    bench = Bbh({"path": str(path), "limit": 0, "subtasks": "navigate,word_sorting"})
    bench.check()
    items = bench.items()
    assert [i.id for i in items] == ["navigate/0", "word_sorting/0"]
    assert items[0].context == prompt("navigate", text) and items[0].references == ("No",)
    bad = tmp_path / "bad.jsonl"
    bad.write_text(json.dumps({"subtask": "navigate", "input": "x"}) + "\n")
    with pytest.raises(SchemaError, match="target"):
        Bbh({"path": str(bad)}).check()

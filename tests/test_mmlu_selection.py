"""MMLU's k-shot exemplars and item selection (subjects, item files), on the real offline data."""

from __future__ import annotations

import pytest

from editguard.benchmarks.registry import create
from editguard.benchmarks.selection import SelectionError

pytestmark = pytest.mark.usefixtures("asset_home")


def shots_in(prompt: str) -> int:
    return prompt.count("\nAnswer:") - 1


@pytest.mark.parametrize("k", [0, 1, 5])
def test_every_item_gets_exactly_k_exemplars_even_when_all_are_scored(k):
    items = create("mmlu", {"limit": 0, "num_fewshot": k}).items()
    assert len(items) == 14042 - 57 * 5
    assert {shots_in(i.context) for i in items} == {k}


def test_exemplars_are_the_first_five_of_each_subject_and_never_scored():
    items = create("mmlu", {"limit": 0, "subjects": "astronomy"}).items()
    ids = [i.id for i in items]
    assert not {f"astronomy/{n}" for n in range(5)} & set(ids) and "astronomy/5" in ids
    five = create("mmlu", {"limit": 0, "subjects": "astronomy", "num_fewshot": 5}).items()
    assert [i.id for i in five] == ids  # k does not change which items are scored
    zero_shot = items[0].context.split("\n\n")[-1]
    assert five[0].context.endswith(zero_shot)


def test_subjects_and_the_seeded_sample_compose():
    items = create("mmlu", {"limit": 30, "subjects": ["virology", "astronomy"]}).items()
    assert len(items) == 30 and {i.id.split("/")[0] for i in items} == {"virology", "astronomy"}
    assert [i.id for i in items] == [i.id for i in create(
        "mmlu", {"limit": 30, "subjects": "virology,astronomy"}).items()]


def test_an_unknown_subject_names_the_accepted_ones():
    with pytest.raises(ValueError, match=r"'astronmy' is not an MMLU subject \(did you mean "
                                         r"'astronomy'\?\); accepted: abstract_algebra, "):
        create("mmlu", {"subjects": "astronmy"}).check()


def test_more_shots_than_exemplars_stop_the_run():
    with pytest.raises(ValueError, match="num_fewshot 6: each subject has 5 dev exemplars"):
        create("mmlu", {"num_fewshot": 6}).check()


def test_an_item_file_scores_exactly_its_ids(tmp_path):
    chosen = ["virology/10", "astronomy/7", "college_physics/20"]
    listing = tmp_path / "ids.txt"
    listing.write_text("# three questions\n" + "\n".join(chosen) + "\n\n")
    bench = create("mmlu", {"items": str(listing)})
    assert sorted(i.id for i in bench.items()) == sorted(chosen)
    other = tmp_path / "other.txt"
    other.write_text("virology/10\n")
    assert bench.config()["items_sha256"] != create("mmlu", {"items": str(other)}).config()[
        "items_sha256"]


def test_bad_item_files_are_named(tmp_path):
    with pytest.raises(SelectionError, match="does not exist"):
        create("mmlu", {"items": str(tmp_path / "nope.txt")}).check()
    wrong = tmp_path / "wrong.txt"
    wrong.write_text("virology/10\nastronomy/2\nnot-an-id\n")  # astronomy/2 is an exemplar
    with pytest.raises(SelectionError, match=r"2 ids of item file .* are not items here, first "
                                             r"\['astronomy/2', 'not-an-id'\]"):
        create("mmlu", {"items": str(wrong)}).items()
    twice = tmp_path / "twice.txt"
    twice.write_text("virology/10\nvirology/10\n")
    with pytest.raises(SelectionError, match="lists 'virology/10' twice"):
        create("facts", {"items": str(twice)}).check()

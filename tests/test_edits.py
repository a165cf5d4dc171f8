"""editguard.edits: CounterFact / zsRE loaders, the GeoNames edit set, sampling and edit sources."""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from editguard.data.paths import geonames_path
from editguard.edits import sources
from editguard.edits.download import OfflineError, download
from editguard.edits.formats import load_counterfact, load_zsre, read_counterfact, read_zsre
from editguard.edits.request import EditRequest, Neighbour
from editguard.edits.sampling import sample
from editguard.edits.sources import ZSRE_URL, EditSource, load_edit_source
from editguard.edits.facts import RELATIONS, Fact, build_edits, split_facts
from editguard.edits.geonames import embedded_edits, heldout_facts, read_geonames_facts

COUNTERFACT = [
    {"case_id": 0, "pararel_idx": 2796,
     "requested_rewrite": {"prompt": "The mother tongue of {} is", "relation_id": "P103",
                           "target_new": {"str": " English", "id": "Q1860"},
                           "target_true": {"str": "French", "id": "Q150"}, "subject": "Danielle Darrieux"},
     "paraphrase_prompts": ["Shayna does this and Yossel goes still and dies. Danielle Darrieux, a native"],
     "neighborhood_prompts": ["The mother tongue of Léon Blum is", "Michel Rocard is a native speaker of"],
     "attribute_prompts": [], "generation_prompts": []},
    {"case_id": 7,
     "requested_rewrite": {"prompt": "{}, which is located in", "relation_id": "P17",
                           "target_new": {"str": "Sweden"}, "target_true": {"str": " Canada"},
                           "subject": "Toronto Pearson"},
     "paraphrase_prompts": [], "neighborhood_prompts": []},
]

ZSRE = [
    {"subject": "Watts Humphrey", "src": "What university did Watts Humphrey attend?", "pred": "",
     "rephrase": "What university did Watts Humphrey take part in?", "alt": "University of Michigan",
     "answers": ["Illinois Institute of Technology"], "loc": "nq question: who played desmond doss father",
     "loc_ans": "Hugo Weaving", "cond": "x"},
    {"case_id": "z-9", "subject": "Ramalinaceae", "src": "Which family does Ramalinaceae belong to?",
     "rephrase": "What family are Ramalinaceae?", "alt": "Lamiaceae", "answers": ["Lecanorales"],
     "loc": "nq question: where is the nose of a ship", "loc_ans": "bow"},
]


@pytest.fixture(scope="module")
def wikidata(asset_home: Path) -> dict[str, object]:
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("EDITGUARD_HOME", str(asset_home))
        facts = read_geonames_facts(geonames_path("countries.json"),
                                    geonames_path("cities15000.json"),
                                    geonames_path("us_states.json"))
        pool, heldout = split_facts(facts, seed=0)
        return {"facts": facts, "pool": pool, "heldout": heldout, "edits": build_edits(pool, seed=0),
                "heldout_api": heldout_facts(0), "embedded": embedded_edits(0)}


# ------------------------------------------------------------------------------ public formats


def test_counterfact_records() -> None:
    first, second = load_counterfact(COUNTERFACT)
    assert first == EditRequest(
        case_id="0", prompt="The mother tongue of {} is", subject="Danielle Darrieux", target_new="English",
        target_true="French",
        paraphrase_prompts=("Shayna does this and Yossel goes still and dies. Danielle Darrieux, a native",),
        neighbourhood=(Neighbour("The mother tongue of Léon Blum is", "French"),
                       Neighbour("Michel Rocard is a native speaker of", "French")),
        relation="P103")
    assert (second.case_id, second.target_true) == ("7", "Canada")
    assert second.text == "Toronto Pearson, which is located in"


def test_counterfact_errors_name_the_record() -> None:
    broken = [COUNTERFACT[0], {"case_id": 5, "requested_rewrite": {"prompt": "{} is", "subject": "X"}}]
    with pytest.raises(ValueError, match=r"record 1 \(case_id 5\).*target_new"):
        load_counterfact(broken)
    no_slot = json.loads(json.dumps(COUNTERFACT[:1]))
    no_slot[0]["requested_rewrite"]["prompt"] = "The mother tongue is"
    with pytest.raises(ValueError, match="exactly one"):
        load_counterfact(no_slot)


def test_zsre_records() -> None:
    first, second = load_zsre(ZSRE)
    assert first.case_id == "0" and second.case_id == "z-9"
    assert first.prompt == "What university did {} attend?" and first.text == ZSRE[0]["src"]
    assert (first.target_new, first.target_true) == ("University of Michigan", "Illinois Institute of Technology")
    assert first.paraphrase_prompts == ("What university did Watts Humphrey take part in?",)
    assert first.neighbourhood == (Neighbour("nq question: who played desmond doss father", "Hugo Weaving"),)


@pytest.mark.parametrize(("change", "message"), [
    ({"subject": "Somebody Else"}, r"record 0: subject 'Somebody Else' does not occur in src"),
    ({"answers": []}, r"record 0 is malformed.*answers"),
    ({"src": "What {university} did Watts Humphrey attend?"}, "braces"),
])
def test_zsre_errors_name_the_record(change: dict[str, object], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        load_zsre([{**ZSRE[0], **change}])


def test_read_files(tmp_path: Path) -> None:
    (tmp_path / "cf.json").write_text(json.dumps(COUNTERFACT))
    (tmp_path / "zsre.json").write_text(json.dumps(ZSRE))
    (tmp_path / "dict.json").write_text(json.dumps({"data": ZSRE}))
    assert [r.case_id for r in read_counterfact(tmp_path / "cf.json")] == ["0", "7"]
    assert len(read_zsre(str(tmp_path / "zsre.json"))) == 2
    with pytest.raises(ValueError, match="JSON list"):
        read_zsre(tmp_path / "dict.json")


def test_download_file_url_and_offline(tmp_path: Path) -> None:
    (tmp_path / "src.json").write_text("[]")
    assert download((tmp_path / "src.json").as_uri(), tmp_path / "d" / "x.json").read_text() == "[]"
    with pytest.raises(OfflineError, match="offline.*counterfact:/local.json"):
        download("http://127.0.0.1:9/counterfact.json", tmp_path / "d" / "cf.json", timeout=5,
                 local_hint="counterfact:/local.json")
    assert sorted(p.name for p in (tmp_path / "d").iterdir()) == ["x.json"]


def test_edit_source_parsing(tmp_path: Path) -> None:
    assert EditSource.parse("embedded") == EditSource("embedded")
    assert EditSource.parse(" zsre ") == EditSource("zsre")
    assert EditSource.parse("counterfact:/data/cf.json") == EditSource("counterfact", Path("/data/cf.json"))
    for bad in ("mquake", "counterfact:", "zsre:  ", "", "embedded:x"):
        with pytest.raises(ValueError, match="accepted forms: embedded, counterfact, zsre, counterfact:PATH"):
            EditSource.parse(bad)
    with pytest.raises(FileNotFoundError, match="no such file"):
        load_edit_source(f"zsre:{tmp_path / 'absent.json'}")


def test_edit_source_local_and_download(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    (tmp_path / "cf.json").write_text(json.dumps(COUNTERFACT))
    assert len(load_edit_source(f"counterfact:{tmp_path / 'cf.json'}", seed=3)) == 2
    monkeypatch.setenv("EDITGUARD_HOME", str(tmp_path / "home"))
    calls = []

    def fake_download(url: str, dest: Path, **kwargs: object) -> Path:
        calls.append((url, dest))
        dest.parent.mkdir(parents=True, exist_ok=True)
        dest.write_text(json.dumps(ZSRE))
        return dest

    monkeypatch.setattr(sources, "download", fake_download)
    assert len(load_edit_source("zsre")) == 2
    assert load_edit_source("zsre")[1].case_id == "z-9"
    assert calls == [(ZSRE_URL, tmp_path / "home" / "downloads" / "zsre_mem_eval.json")], "downloaded once"


# ----------------------------------------------------------------------------------- GeoNames


def test_read_geonames_facts_keeps_big_unambiguous_places(tmp_path: Path) -> None:
    countries = {
        "FR": {"name": "France", "population": 66_000_000, "capital": "Paris",
               "continentcode": "EU", "currencyname": "Euro"},
        "US": {"name": "United States", "population": 330_000_000, "capital": "Washington",
               "continentcode": "NA", "currencyname": "Dollar"},
        "SG": {"name": "Singapore", "population": 5_600_000, "capital": "Singapore",
               "continentcode": "AS", "currencyname": "Dollar"},
        "TK": {"name": "Tokelau", "population": 1_466, "capital": "", "continentcode": "OC",
               "currencyname": "Dollar"},
    }
    cities = {str(i): c for i, c in enumerate([
        {"name": "Lyon", "countrycode": "FR", "population": 500_000, "admin1code": "84"},
        {"name": "Houston", "countrycode": "US", "population": 2_300_000, "admin1code": "TX"},
        {"name": "Paris", "countrycode": "FR", "population": 2_100_000, "admin1code": "11"},
        {"name": "Paris", "countrycode": "US", "population": 100_000, "admin1code": "TX"},
        {"name": "Singapore", "countrycode": "SG", "population": 5_600_000, "admin1code": "00"},
        {"name": "Lille", "countrycode": "FR", "population": 299_999, "admin1code": "32"},
        {"name": "Düsseldorf", "countrycode": "FR", "population": 600_000, "admin1code": "07"},
    ])}
    paths = []
    for name, data in (("countries", countries), ("cities", cities),
                       ("states", {"TX": {"code": "TX", "name": "Texas"}})):
        paths.append(tmp_path / f"{name}.json")
        paths[-1].write_text(json.dumps(data))
    facts = read_geonames_facts(*paths)
    assert facts == [
        Fact("capital", "France", "Paris"), Fact("capital", "United States", "Washington"),
        Fact("continent", "France", "Europe"), Fact("continent", "Singapore", "Asia"),
        Fact("continent", "United States", "North America"),
        Fact("country", "Houston", "United States"), Fact("country", "Lyon", "France"),
        Fact("currency", "France", "Euro"), Fact("currency", "Singapore", "Dollar"),
        Fact("currency", "United States", "Dollar"), Fact("state", "Houston", "Texas"),
    ]  # two Parises, a city named like its country, small places, a name that is not plain
    # ASCII and Singapore's capital: out
    assert facts[5].prompt == "The country of Houston is"


def test_relation_templates() -> None:
    assert set(RELATIONS) == {"capital", "continent", "country", "currency", "state"}
    for name, templates in RELATIONS.items():
        assert templates.base == f"The {name} of {{}} is"
        assert len(templates.paraphrases) == 2
        for template in (templates.base, *templates.paraphrases):
            assert template.count("{}") == 1 and template == template.strip()
    assert RELATIONS["currency"].slug == "currency"


def test_real_facts_and_split(wikidata: dict) -> None:
    facts, pool, heldout = wikidata["facts"], wikidata["pool"], wikidata["heldout"]
    assert 2000 < len(facts) < 2100
    assert Fact("capital", "France", "Paris") in facts
    assert Fact("country", "Toronto", "Canada") in facts
    assert len(set(facts)) == len(facts)
    assert sorted(pool + heldout, key=repr) == sorted(facts, key=repr)
    assert not {f.subject for f in pool} & {f.subject for f in heldout}
    assert 0.45 < len(pool) / len(facts) < 0.55
    assert split_facts(facts, seed=0) == (pool, heldout)
    assert split_facts(facts, seed=1)[0] != pool
    assert wikidata["heldout_api"] == heldout


def test_real_edits(wikidata: dict) -> None:
    requests, pool = wikidata["edits"], wikidata["pool"]
    assert len(requests) > 1000
    assert [r.case_id for r in requests] == sorted({r.case_id for r in requests})
    assert set(Counter(r.relation for r in requests)) == set(RELATIONS)
    objects = {(f.relation, f.object) for f in pool}
    pool_facts = {(f.relation, f.subject, f.object) for f in pool}
    for r in requests:
        assert r.case_id.startswith(f"geo-{RELATIONS[r.relation].slug}-")
        assert r.target_new != r.target_true
        assert (r.relation, r.target_new) in objects
        assert (r.relation, r.subject, r.target_true) in pool_facts
        assert r.prompt == RELATIONS[r.relation].base
        assert all(r.subject in p for p in r.paraphrase_prompts) and len(r.paraphrase_prompts) == 2
        assert len(r.neighbourhood) == 3 and len(set(r.neighbourhood)) == 3
        assert r.text not in {n.prompt for n in r.neighbourhood}
    same_object = sum(all(n.target == r.target_true for n in r.neighbourhood) for r in requests)
    assert same_object / len(requests) > 0.7  # a country with one big city has no such neighbour
    assert build_edits(pool, seed=0) == requests
    embedded = build_edits(pool, seed=0, neighbours=wikidata["heldout_api"])
    assert wikidata["embedded"] == embedded
    assert [r.target_new for r in embedded] == [r.target_new for r in requests]
    assert [r.target_new for r in build_edits(pool, seed=1)] != [r.target_new for r in requests]


def test_embedded_edits_never_touch_heldout_subjects(wikidata: dict) -> None:
    assert not {r.subject for r in wikidata["embedded"]} & {f.subject for f in wikidata["heldout_api"]}


def test_embedded_source_reads_assets(asset_home: Path, monkeypatch: pytest.MonkeyPatch, wikidata: dict) -> None:
    monkeypatch.setenv("EDITGUARD_HOME", str(asset_home))
    assert load_edit_source("embedded", seed=0) == wikidata["embedded"]


# ------------------------------------------------------------------------------------- sample


def _synthetic(subjects: list[str]) -> list[EditRequest]:
    return [EditRequest(f"c{i}", "{} is", s, "new", "old") for i, s in enumerate(subjects)]


def test_sample_on_real_edits(wikidata: dict) -> None:
    requests = wikidata["edits"]
    fifty = sample(requests, 50, seed=0)
    assert fifty == sample(list(reversed(requests)), 50, seed=0), "independent of input order"
    assert sample(requests, 10, seed=0) == fifty[:10]
    assert len({r.subject for r in fifty}) == 50
    assert [r.case_id for r in sample(requests, 50, seed=1)] != [r.case_id for r in fifty]


def test_sample_too_many_names_both_numbers() -> None:
    requests = _synthetic(["a", "b", "a", "c"])
    assert {r.subject for r in sample(requests, 3, seed=0)} == {"a", "b", "c"}
    with pytest.raises(ValueError, match=r"asked for 4 edits .* only 3 with distinct subjects .*--n-edits"):
        sample(requests, 4, seed=0)
    assert sample(requests, 0, seed=0) == []
    with pytest.raises(ValueError, match="n must be >= 0"):
        sample(requests, -1)


@settings(max_examples=60, deadline=None)
@given(subjects=st.lists(st.sampled_from("abcdefghijkl"), min_size=1, max_size=30),
       seed=st.integers(0, 2**32), data=st.data())
def test_sample_is_prefix_consistent(subjects: list[str], seed: int, data: st.DataObject) -> None:
    requests = _synthetic(subjects)
    available = len(set(subjects))
    big = data.draw(st.integers(0, available), label="big")
    small = data.draw(st.integers(0, big), label="small")
    drawn = sample(requests, big, seed)
    assert sample(requests, small, seed) == drawn[:small]
    assert len({r.subject for r in drawn}) == big
    assert [r.case_id for r in sample(requests, big, seed)] == [r.case_id for r in drawn]


def test_embedded_neighbours_come_from_the_never_edited_pool(asset_home: Path) -> None:
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("EDITGUARD_HOME", str(asset_home))
        edits = embedded_edits(0)
    subjects = {e.subject for e in edits}
    prompts = {e.text for e in edits}
    assert all(n.prompt not in prompts for e in edits for n in e.neighbourhood)
    assert sum(len(e.neighbourhood) for e in edits) >= 2.9 * len(edits)
    assert len(subjects) > 800


def test_an_empty_or_broken_edit_file_is_named_in_the_error(tmp_path: Path) -> None:
    empty = tmp_path / "cf.json"
    empty.write_bytes(b"")
    with pytest.raises(ValueError, match=r"cf.json: not a CounterFact JSON file"):
        load_edit_source(f"counterfact:{empty}")
    with pytest.raises(FileNotFoundError, match="pass the path of an existing zsRE JSON file"):
        load_edit_source(f"zsre:{tmp_path / 'missing.json'}")

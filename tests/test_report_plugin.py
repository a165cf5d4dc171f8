"""The report plugin end to end, in pytest subprocesses (with and without xdist)."""

from __future__ import annotations

import csv
import io
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

pytest_plugins = ["pytester"]


INNER_CONFTEST = """
from editguard.reports.plugin import SESSION_PROVENANCE

def pytest_configure(config):
    config.stash[SESSION_PROVENANCE] = {"editguard": "test", "torch": "0.0"}
    if hasattr(config, "workerinput") and config.option.report_dir:
        # Were a worker to write a report, it would land here, where the test can see it.
        config.option.report_dir = "worker-" + config.workerinput["workerid"]
"""

INNER_TESTS = """
import pytest
from editguard.verdicts.row import USER_PROPERTY, Row

CASES = [("memit", 10, 0.64), ("memit", 100, 0.62), ("rome", 10, 0.65), ("rome", 100, 0.30)]

@pytest.mark.parametrize(("method", "n_edits", "edited"), CASES)
def test_case(record_property, method, n_edits, edited):
    passed = 100 * (0.652 - edited) <= 2.0
    message = "" if passed else f"mmlu dropped [{method} {n_edits}]"
    rows = [
        Row("tiny", method, n_edits, "mmlu", "acc", "capability", 0.652, edited,
            "drop <= 2.0 pt", passed, message=message),
        Row("tiny", method, n_edits, "efficacy", "rewrite", "efficacy", None, 0.9, None, None),
    ]
    record_property(USER_PROPERTY, [r.to_dict() for r in rows])
    assert passed

def test_collapsed(record_property):
    row = Row("tiny", "ft", 1, "mmlu", "acc", "capability", 0.652, float("nan"), None, None,
              status="collapsed", message="collapsed: nan logits")
    record_property(USER_PROPERTY, [row.to_dict()])

def test_without_rows(record_property):
    record_property("unrelated", 1)
"""


@pytest.fixture
def project(pytester: pytest.Pytester) -> pytest.Pytester:
    """A throwaway project outside this checkout: it imports the installed ``editguard``."""
    pytester.makeconftest(INNER_CONFTEST)
    pytester.makepyfile(test_inner=INNER_TESTS)
    return pytester


def run(project: pytest.Pytester, *args: str) -> pytest.RunResult:
    # the report plugin loads by its pytest11 entry point; the suite plugin is not needed here
    return project.runpytest_subprocess("-p", "no:editguard", "-p", "no:cacheprovider", *args)


def test_table_is_printed(project: pytest.Pytester) -> None:
    result = run(project)
    result.assert_outcomes(passed=4, failed=2)
    result.stdout.fnmatch_lines(
        [
            "*= editguard degradation =*",
            "model*method*n_edits*efficacy.rewrite*mmlu.acc*",
            "tiny*baseline*0*0.652*",
            "tiny*ft*1*collapsed*",
            "tiny*memit*100*0.900*0.620 (-3.2) FAIL*",
            "tiny*rome*100*0.900*0.300 (-35.2) FAIL*",
            "5 (model, method, n_edits) lines: 2 passed, 3 failed",
            "mmlu dropped [memit 100]",
        ]
    )
    assert "editguard report written" not in result.stdout.str()
    assert not list(project.path.rglob("results.json"))


def test_no_degradation_table_hides_it(project: pytest.Pytester) -> None:
    result = run(project, "--no-degradation-table")
    result.assert_outcomes(passed=4, failed=2)
    assert "editguard degradation" not in result.stdout.str()
    assert "5 cases" not in result.stdout.str()


def read_report(directory: Path) -> dict:
    assert sorted(p.name for p in directory.iterdir()) == [
        "degradation.csv",
        "degradation.md",
        "report.html",
        "results.json",
    ]  # no temporary files left behind
    return json.loads((directory / "results.json").read_text(encoding="utf-8"))


def test_report_dir_writes_the_three_files(project: pytest.Pytester) -> None:
    result = run(project, "--report-dir", "out/report")
    directory = project.path / "out" / "report"
    result.stdout.fnmatch_lines([f"editguard report written to {directory}: degradation.md*"])
    document = read_report(directory)
    assert document["provenance"] == {"editguard": "test", "torch": "0.0"}
    results = document["results"]
    assert [(r["method"], r["n_edits"], r["benchmark"]) for r in results] == [
        ("ft", 1, "mmlu"),
        ("memit", 10, "efficacy"), ("memit", 10, "mmlu"),
        ("memit", 100, "efficacy"), ("memit", 100, "mmlu"),
        ("rome", 10, "efficacy"), ("rome", 10, "mmlu"),
        ("rome", 100, "efficacy"), ("rome", 100, "mmlu"),
    ]  # fmt: skip
    collapsed = results[0]
    assert collapsed["status"] == "collapsed" and collapsed["edited"] is None
    assert results[4]["passed"] is False and results[4]["delta"] == pytest.approx(-0.032)

    markdown = (directory / "degradation.md").read_text(encoding="utf-8")
    assert "| tiny    | memit    | 100       | 0.900" in markdown
    assert markdown.rstrip().endswith("5 (model, method, n_edits) lines: 2 passed, 3 failed")

    table = list(csv.DictReader(io.StringIO((directory / "degradation.csv").read_text())))
    assert len(table) == len(results)
    assert [r["edited"] for r in table][1:3] == ["0.9", "0.64"]


def junit_properties(path: Path) -> dict[str, dict[str, str]]:
    """test name -> its JUnit XML properties."""
    import xml.etree.ElementTree as ElementTree

    out = {}
    for case in ElementTree.parse(path).iter("testcase"):
        out[case.get("name", "")] = {p.get("name", ""): p.get("value", "")
                                     for p in case.iter("property")}
    return out


def test_xdist_gives_the_same_results(project: pytest.Pytester) -> None:
    serial = run(project, "-n", "0", "--report-dir", "serial", "--junitxml", "serial.xml")
    parallel = run(project, "-n", "2", "--report-dir", "parallel", "--junitxml", "parallel.xml")
    # --junitxml carries each case's numbers as flat properties, not the shipped rows
    junit = junit_properties(project.path / "serial.xml")
    assert junit == junit_properties(project.path / "parallel.xml")
    rome = junit["test_case[rome-100-0.3]"]
    assert rome["editguard.mmlu.acc.baseline"] == "0.652"
    assert rome["editguard.mmlu.acc.edited"] == "0.3"
    assert rome["editguard.mmlu.acc.delta_pt"] == "-35.2"
    assert rome["editguard.mmlu.acc.verdict"] == "fail"
    assert rome["editguard.mmlu.acc.case"] == "tiny | rome | n=100"
    assert rome["editguard.efficacy.rewrite.verdict"] == "none"
    assert not any(name == "editguard_rows" for props in junit.values() for name in props)
    assert junit["test_collapsed"]["editguard.mmlu.acc.verdict"] == "collapsed"
    assert "created: 2/2 workers" in parallel.stdout.str()
    parallel.assert_outcomes(passed=4, failed=2)
    parallel.stdout.fnmatch_lines(["*= editguard degradation =*",
                                   "5 (model, method, n_edits) lines: 2 passed, 3 failed"])
    serial_doc = read_report(project.path / "serial")
    parallel_doc = read_report(project.path / "parallel")
    assert parallel_doc["results"] == serial_doc["results"]
    assert len(parallel_doc["results"]) == 9
    assert parallel_doc["provenance"] == serial_doc["provenance"]
    assert not list(project.path.glob("worker-*")), "an xdist worker wrote a report"
    assert serial.ret == parallel.ret == pytest.ExitCode.TESTS_FAILED


def test_malformed_rows_are_reported_not_fatal(project: pytest.Pytester) -> None:
    project.makepyfile(
        test_bad="""
        def test_bad(record_property):
            record_property("editguard_rows", [{"model": "x"}])
        """
    )
    result = run(project, "test_bad.py")
    result.assert_outcomes(passed=1)
    result.stdout.fnmatch_lines(["test_bad.py::test_bad: ignored a malformed 'editguard_rows'*"])


SLOW_SECOND = """
import pathlib, time
from editguard.verdicts.row import USER_PROPERTY, Row

def test_a_finished(record_property):
    row = Row("tiny", "rome", 1, "facts", "acc", "capability", 0.8, 0.7, "drop <= 20.0 pt", True)
    record_property(USER_PROPERTY, [row.to_dict()])

def test_b_hangs():
    pathlib.Path("started").write_text("")
    time.sleep(120)
"""


@pytest.mark.parametrize("stop", [signal.SIGTERM, signal.SIGINT], ids=["sigterm", "sigint"])
@pytest.mark.parametrize("xdist", [[], ["-n", "1"]], ids=["n0", "n1"])
def test_a_stopped_run_keeps_the_finished_rows(project: pytest.Pytester, xdist: list[str],
                                               stop: signal.Signals) -> None:
    """SIGTERM is what a CI job timeout sends, SIGINT what Ctrl-C does: either way the run
    stops, and the rows finished so far are written."""
    project.makepyfile(test_slow=SLOW_SECOND)
    args = [sys.executable, "-m", "pytest", "-p", "no:editguard", "-p", "no:cacheprovider",
            "test_slow.py", "--report-dir", "out", *xdist]
    # a shell's background job (`cmd &`) starts with SIGINT ignored, and a child inherits that:
    # give it the default back, so that Ctrl-C is what reaches pytest however the tests run
    with subprocess.Popen(args, cwd=project.path, stdout=subprocess.PIPE,
                          stderr=subprocess.STDOUT, text=True,
                          preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL)) as proc:
        deadline = time.monotonic() + 120
        while not (project.path / "started").exists():
            assert proc.poll() is None and time.monotonic() < deadline, proc.stdout
            time.sleep(0.2)
        proc.send_signal(stop)
        output, _ = proc.communicate(timeout=120)  # writing the report under a loaded CI machine
    assert proc.returncode == pytest.ExitCode.INTERRUPTED, output
    assert "editguard report written to" in output, output
    (row,) = json.loads((project.path / "out" / "results.json").read_text())["results"]
    assert (row["method"], row["edited"]) == ("rome", 0.7)


def test_unwritable_report_dir_fails_the_run(project: pytest.Pytester) -> None:
    (project.path / "taken").write_text("a file, not a directory")
    result = run(project, "--report-dir", "taken", "-k", "collapsed")
    result.stdout.fnmatch_lines(["editguard: could not write the report to *taken*"])
    assert result.ret == pytest.ExitCode.INTERNAL_ERROR


def test_write_report_directly(tmp_path: Path) -> None:
    from editguard.reports.storage import write_report
    from editguard.verdicts.row import Row

    rows = [
        Row("m", "rome", 10, "mmlu", "acc", "capability", 0.5, 0.4, None, None),
        Row("m", "rome", 1, "mmlu", "acc", "capability", 0.5, float("nan"), None, None),
    ]
    paths = write_report(tmp_path / "a" / "b", rows, {"seed": 0})
    assert [p.name for p in paths] == ["degradation.md", "degradation.csv", "results.json",
                                       "report.html"]
    document = read_report(tmp_path / "a" / "b")
    assert [r["n_edits"] for r in document["results"]] == [1, 10]  # sorted like the table
    assert document["results"][0]["edited"] is None  # NaN is not JSON
    umask = os.umask(0)
    os.umask(umask)
    assert paths[2].stat().st_mode & 0o777 == 0o666 & ~umask  # not the temp file's 0600


def test_write_report_refuses_nan_provenance_and_writes_nothing(tmp_path: Path) -> None:
    from editguard.reports.storage import write_report

    with pytest.raises(ValueError, match="not JSON compliant"):
        write_report(tmp_path / "out", [], {"loss": float("nan")})
    assert not (tmp_path / "out").exists()

"""pytest plugin: keep a run's rows under a name (``--save``) and compare a run with a saved one
(``--compare``, gated by ``--compare-max-drop``), in the manner of pytest-benchmark.

Everything is checked at configure time on the controller, before any test runs: the names,
the limit, and the saved run itself (it is loaded then, so a missing or corrupt one stops the
run before anything is computed). The rows are saved and compared at the end of the session on
the controller, where the report plugin has every worker's rows; xdist workers do nothing.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

from editguard.data.paths import editguard_home
from editguard.reports.plugin import SESSION_PROVENANCE, collected_rows

if TYPE_CHECKING:  # saved imports tabulate: only when the feature is on
    from editguard.reports.saved import Comparison, SavedRun


def _section_title(name: str) -> str:
    return f"editguard comparison against {name}"


class SavedRuns:
    """Registered on the controller only when ``--save`` or ``--compare`` is given."""

    def __init__(self, cache_dir: Path, save_as: str | None, against: "SavedRun | None",
                 max_drop_pt: float | None) -> None:
        self.cache_dir = cache_dir
        self.save_as = save_as
        self.against = against
        self.max_drop_pt = max_drop_pt
        self.comparison: Comparison | None = None
        self.saved_to: Path | None = None
        self.saved_rows = 0
        self.notes: list[str] = []  # yellow: nothing was saved, and why
        self.save_error: str | None = None

    def pytest_sessionfinish(self, session: pytest.Session, exitstatus: int) -> None:
        from editguard.reports import saved

        config = session.config
        rows = collected_rows(config) or []
        if self.against is not None:
            self.comparison = saved.compare(rows, self.against.rows, self.max_drop_pt,
                                            saved_name=self.against.name)
            # a gate that compared nothing must not pass in silence (a renamed model, say)
            empty_gate = self.max_drop_pt is not None and not self.comparison.changes
            if empty_gate:
                self.notes.append(f"editguard: --compare-max-drop had no row in common with "
                                  f"saved run {self.against.name} to gate on; the run fails")
            if ((self.comparison.regressions or empty_gate)
                    and session.exitstatus == pytest.ExitCode.OK):
                session.exitstatus = pytest.ExitCode.TESTS_FAILED
        if self.save_as is None:
            return
        stopped = (session.exitstatus == pytest.ExitCode.INTERRUPTED
                   or bool(session.shouldstop) or bool(session.shouldfail))  # -x, --maxfail
        if not rows or stopped:
            kept = (f"the saved run {self.save_as} is kept as it was"
                    if self.save_as in saved.names(self.cache_dir) else "nothing was saved")
            why = "was stopped before it finished" if stopped else "recorded no rows"
            self.notes.append(f"editguard: this run {why}, so it was not saved as "
                              f"{self.save_as}; {kept}")
            return
        provenance = config.stash.get(SESSION_PROVENANCE, {})
        try:
            self.saved_to = saved.save(self.cache_dir, self.save_as, rows, provenance)
            self.saved_rows = len(rows)
        except (OSError, TypeError, ValueError) as exc:
            self.save_error = (f"editguard: could not save this run as {self.save_as} under "
                               f"{saved.runs_dir(self.cache_dir)}: {exc}")
            if session.exitstatus == pytest.ExitCode.OK:
                session.exitstatus = pytest.ExitCode.INTERNAL_ERROR

    @pytest.hookimpl(trylast=True)  # after the degradation table
    def pytest_terminal_summary(self, terminalreporter: pytest.TerminalReporter,
                                exitstatus: int, config: pytest.Config) -> None:
        comparison = self.comparison
        if comparison is not None:
            terminalreporter.section(_section_title(comparison.saved_name))
            regressions = set(comparison.regression_lines())
            for line in comparison.render():
                terminalreporter.write_line(line, red=line in regressions)
        for note in self.notes:
            terminalreporter.write_line(note, yellow=True)
        if self.saved_to is not None:
            terminalreporter.write_line(
                f"editguard run saved as {self.save_as}: {self.saved_to} ({self.saved_rows} rows)")
        if self.save_error:
            terminalreporter.write_line(self.save_error, red=True)


_PLUGIN = pytest.StashKey[SavedRuns]()


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("editguard saved runs")
    group.addoption("--save", dest="editguard_save", metavar="NAME", default=None,
                    help="keep this run's rows under the cache as NAME (replacing a saved run "
                         "of that name), to --compare later runs against")
    group.addoption("--compare", dest="editguard_compare", metavar="NAME", default=None,
                    help="print the change of every row this run shares with saved run NAME")
    group.addoption("--compare-max-drop", dest="editguard_compare_max_drop", metavar="POINTS",
                    default=None,
                    help="fail the run when a shared row's edited score dropped more than POINTS "
                         "below the saved run's, or collapsed; requires --compare")


def _max_drop(raw: str | None) -> float | None:
    if raw is None:
        return None
    try:
        value = float(raw)
    except ValueError:
        value = math.nan
    if not math.isfinite(value) or value < 0:
        raise pytest.UsageError(f"--compare-max-drop {raw!r} is not a number of points >= 0; "
                                "pass e.g. --compare-max-drop 2 (fail on a drop of more than "
                                "2 points)")
    return value


def _cache_dir(config: pytest.Config) -> Path:
    # --editguard-cache belongs to the suite plugin (editguard.fixtures.plugin), which may be off
    raw = config.getoption("editguard_cache", default=None)
    if not raw:
        return editguard_home()
    return config.invocation_params.dir / Path(raw).expanduser()


def pytest_configure(config: pytest.Config) -> None:
    if hasattr(config, "workerinput"):
        return
    save_as = config.getoption("editguard_save")
    against_name = config.getoption("editguard_compare")
    max_drop_pt = _max_drop(config.getoption("editguard_compare_max_drop"))
    if max_drop_pt is not None and against_name is None:
        raise pytest.UsageError("--compare-max-drop needs --compare NAME: the saved run to "
                                "measure drops against")
    if save_as is None and against_name is None:
        return
    from editguard.reports import saved

    cache_dir = _cache_dir(config)
    against = None
    try:
        if save_as is not None:
            option = "--save"
            saved.check_name(save_as)
        if against_name is not None:
            option = "--compare"
            against = saved.load(cache_dir, against_name)
    except saved.SavedRunError as exc:
        raise pytest.UsageError(f"{option}: {exc}") from None
    plugin = SavedRuns(cache_dir, save_as, against, max_drop_pt)
    config.stash[_PLUGIN] = plugin
    config.pluginmanager.register(plugin, "editguard-saved-runs")


def pytest_unconfigure(config: pytest.Config) -> None:
    plugin = config.stash.get(_PLUGIN, None)
    if plugin is not None:
        config.pluginmanager.unregister(plugin)

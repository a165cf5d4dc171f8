"""pytest plugin: gathers the rows tests attach to ``user_properties`` and reports them.

Rows are read on the xdist controller (or the only process without xdist), where xdist
delivers every worker's reports; workers print and write nothing. SIGTERM (what a CI job's
timeout sends) is turned into the interrupt Ctrl-C gives, so the rows finished so far are still
printed and written.
"""

from __future__ import annotations

import signal
import threading
from pathlib import Path
from types import FrameType
from typing import Any

import pytest

from editguard.verdicts.row import USER_PROPERTY, Row

# Other plugins put run-wide provenance here (versions, configuration) for results.json.
SESSION_PROVENANCE = pytest.StashKey[dict[str, Any]]()

SECTION_TITLE = "editguard degradation"


class RowCollector:
    """Keeps the rows of each test, from its latest report (teardown holds them all)."""

    def __init__(self) -> None:
        self._by_node: dict[str, list[Row]] = {}
        self.problems: dict[str, str] = {}  # nodeid -> why its rows were ignored
        self.written: list[Path] = []
        self.write_error: str | None = None

    @property
    def rows(self) -> list[Row]:
        return [row for rows in self._by_node.values() for row in rows]

    def replace(self, rows: list[Row]) -> None:
        """Put ``rows`` (the same rows in the same order, some re-judged) in place of ours."""
        flat = iter(rows)
        self._by_node = {node: [next(flat) for _ in kept] for node, kept in self._by_node.items()}

    @pytest.hookimpl(tryfirst=True)  # before --junitxml reads the properties
    def pytest_runtest_logreport(self, report: pytest.TestReport) -> None:
        rows: list[Row] = []
        properties = report.user_properties
        # the rows travel whole (with provenance); what JUnit XML gets is their numbers, flat
        report.user_properties = [(n, v) for n, v in properties if n != USER_PROPERTY]
        for name, value in properties:
            if name != USER_PROPERTY:
                continue
            try:
                if not isinstance(value, list):
                    raise TypeError(f"expected a list of Row.to_dict() records, got {value!r}")
                rows.extend(Row.from_dict(record) for record in value)
            except (TypeError, ValueError) as exc:
                self.problems[report.nodeid] = (
                    f"{report.nodeid}: ignored a malformed {USER_PROPERTY!r} property ({exc}); "
                    f"attach [Row(...).to_dict(), ...]"
                )
        if rows:
            self._by_node[report.nodeid] = rows
            report.user_properties += junit_properties(rows)


def junit_properties(rows: list[Row]) -> list[tuple[str, str]]:
    """``editguard.<benchmark>.<metric>.<field>`` = value for each row: what a CI system reads
    from ``--junitxml`` (scores in score units, changes and intervals in points)."""
    out: list[tuple[str, str]] = []
    for row in rows:
        prefix = f"editguard.{row.benchmark}.{row.metric}"
        verdict = ("none" if row.passed is None else "pass" if row.passed else "fail") \
            if row.status == "ok" else row.status
        values: dict[str, object] = {
            "case": f"{row.model} | {row.method} | n={row.n_edits}", "baseline": row.baseline,
            "edited": row.edited,
            "delta_pt": None if row.delta is None else round(100.0 * row.delta, 4),
            "interval_pt": None if row.interval is None else
            ",".join(f"{100.0 * b:.4f}" for b in row.interval),
            "p_value": row.p_value, "n_items": row.n_items, "threshold": row.threshold,
            "mode": row.mode, "verdict": verdict}
        out += [(f"{prefix}.{name}", str(value)) for name, value in values.items()
                if value is not None]
    return out


_COLLECTOR = pytest.StashKey[RowCollector]()
_PREVIOUS_SIGTERM = pytest.StashKey[Any]()


def collected_rows(config: pytest.Config) -> list[Row] | None:
    """Every row the run's tests shipped so far, on the controller; None on an xdist worker."""
    collector = config.stash.get(_COLLECTOR, None)
    return None if collector is None else collector.rows


def replace_rows(config: pytest.Config, rows: list[Row]) -> None:
    """Re-judged rows for the table and report files (``collected_rows``' order, one for one)."""
    collector = config.stash.get(_COLLECTOR, None)
    if collector is not None:
        collector.replace(rows)


def _interrupt(signum: int, frame: FrameType | None) -> None:
    raise KeyboardInterrupt(f"stopped by signal {signal.Signals(signum).name}")


def _is_worker(config: pytest.Config) -> bool:
    return hasattr(config, "workerinput")


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("editguard report")
    group.addoption(
        "--report-dir",
        metavar="DIR",
        default=None,
        help="write degradation.md, degradation.csv, results.json and report.html into DIR",
    )
    group.addoption(
        "--no-degradation-table",
        action="store_true",
        default=False,
        help="do not print the editguard degradation table at the end of the run",
    )


def pytest_configure(config: pytest.Config) -> None:
    if _is_worker(config):
        return
    collector = RowCollector()
    config.stash[_COLLECTOR] = collector
    config.pluginmanager.register(collector, "editguard-row-collector")
    # only where nobody else handles SIGTERM (the default would kill us without a report)
    if (threading.current_thread() is threading.main_thread()
            and signal.getsignal(signal.SIGTERM) is signal.SIG_DFL):
        config.stash[_PREVIOUS_SIGTERM] = signal.signal(signal.SIGTERM, _interrupt)


def pytest_unconfigure(config: pytest.Config) -> None:
    collector = config.stash.get(_COLLECTOR, None)
    if collector is not None:
        config.pluginmanager.unregister(collector)
    previous = config.stash.get(_PREVIOUS_SIGTERM, None)
    if previous is not None:
        signal.signal(signal.SIGTERM, previous)


def _report_dir(config: pytest.Config) -> Path | None:
    option = config.getoption("report_dir")
    if not option:
        return None
    return config.invocation_params.dir / Path(option).expanduser()


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    config = session.config
    collector = config.stash.get(_COLLECTOR, None)
    directory = _report_dir(config)
    if collector is None or directory is None:
        return
    from editguard.reports import storage  # imports pandas: only on the controller, when needed

    provenance = config.stash.get(SESSION_PROVENANCE, {})
    try:
        collector.written = storage.write_report(directory, collector.rows, provenance)
    except Exception as exc:  # noqa: BLE001 - a report failure must not hide the test results
        collector.write_error = (f"editguard: could not write the report to {directory}: "
                                 f"{type(exc).__name__}: {exc}")
        if session.exitstatus == pytest.ExitCode.OK:
            session.exitstatus = pytest.ExitCode.INTERNAL_ERROR


def pytest_terminal_summary(
    terminalreporter: pytest.TerminalReporter, exitstatus: int, config: pytest.Config
) -> None:
    # Runs after pytest_sessionfinish (the terminal reporter calls it once sessionfinish is done).
    collector = config.stash.get(_COLLECTOR, None)
    if collector is None:
        return
    rows = collector.rows
    if rows and not config.getoption("no_degradation_table"):
        from editguard.reports import table  # imports pandas: only when there is a table to print

        terminalreporter.section(SECTION_TITLE)
        for line in table.render_text(rows).splitlines():
            terminalreporter.write_line(line)
    if rows:
        from editguard.reports import timings

        spent = timings.describe(rows)
        if spent:
            terminalreporter.write_line(spent)
    for problem in collector.problems.values():
        terminalreporter.write_line(problem, yellow=True)
    if collector.written:
        names = ", ".join(path.name for path in collector.written)
        terminalreporter.write_line(
            f"editguard report written to {collector.written[0].parent}: {names}"
        )
    if collector.write_error:
        terminalreporter.write_line(collector.write_error, red=True)

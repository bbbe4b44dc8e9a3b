"""The short run summary: counts, time to the first test, and what failed or skipped."""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any


class RunSummary:
    """A pytest plugin that records outcomes for the summary file."""

    def __init__(self, started: float):
        self.started = started
        self.first_test_after: float | None = None
        self.outcomes: dict[str, list[str]] = {"passed": [], "failed": [], "skipped": [],
                                               "error": []}
        self.reasons: dict[str, str] = {}
        # Tests under way (several with pytest-xdist), named if the run stops inside them.
        self.running: list[str] = []
        # Tests whose setup finished; the first test's setup brings up the cluster.
        self.set_up: list[str] = []

    def pytest_runtest_logstart(self, nodeid: str, location: Any) -> None:
        self.running.append(nodeid)

    def pytest_runtest_logfinish(self, nodeid: str, location: Any) -> None:
        if nodeid in self.running:
            self.running.remove(nodeid)

    def pytest_runtest_logreport(self, report: Any) -> None:
        if report.when == "setup":
            self.set_up.append(report.nodeid)
        # The first call starts once the cluster is up: the wait a user feels. Reports
        # carry durations, so this also works when pytest-xdist workers run the tests.
        if report.when == "call" and self.first_test_after is None:
            self.first_test_after = time.monotonic() - self.started - report.duration
        if report.when == "call" or (report.when == "setup" and not report.passed):
            outcome = report.outcome
            if report.when == "setup" and report.failed:
                outcome = "error"
            self.outcomes[outcome].append(report.nodeid)
            if report.skipped and isinstance(report.longrepr, tuple):
                self.reasons[report.nodeid] = str(report.longrepr[2])
            elif report.failed:
                self.reasons[report.nodeid] = (report.longreprtext.strip().splitlines() or [""]
                                               )[-1][:300]


def write_summary(results: Path, summary: RunSummary, code: int, seconds: float) -> str:
    """Write summary.txt into the results directory and return its text."""
    counts = {k: len(v) for k, v in summary.outcomes.items()}
    if summary.first_test_after is not None:
        first = f"first test after {summary.first_test_after:.1f} s"
    elif summary.running:
        first = "stopped before the first test finished"
    else:
        first = "no test started"
    lines = [
        f"draconf run: {counts['passed']} passed, {counts['failed']} failed, "
        f"{counts['error']} errors, {counts['skipped']} skipped in {seconds:.1f} s "
        f"({first}; exit code {code})",
    ]
    for outcome in ("failed", "error", "skipped"):
        for nodeid in summary.outcomes[outcome]:
            lines.append(f"  {outcome.upper()} {nodeid}: {summary.reasons.get(nodeid, '')}")
    for nodeid in summary.running:
        if any(nodeid in tests for tests in summary.outcomes.values()):
            lines.append(f"  INTERRUPTED {nodeid}: the run was stopped in its teardown (the "
                         "last test's teardown also stops the cluster)")
        elif nodeid in summary.set_up:
            lines.append(f"  INTERRUPTED {nodeid}: the run was stopped while this test ran")
        elif summary.first_test_after is None:
            lines.append(f"  INTERRUPTED {nodeid}: the run was stopped in its setup, while the "
                         "cluster was coming up")
        else:
            lines.append(f"  INTERRUPTED {nodeid}: the run was stopped in its setup")
    bring_up = results / "bring-up-error.txt"
    if bring_up.exists():
        lines.append(f"  the cluster could not be brought up: {bring_up.read_text().strip()}")
    junit = results / "junit.xml"
    lines.append(f"JUnit XML: {junit}" if junit.exists() else
                 "JUnit XML: not written (pytest stopped before it ran any test)")
    if (results / "summary.html").exists():
        lines.append(f"HTML summary: {results / 'summary.html'}; gating: "
                     f"{results / 'gating.json'}; Allure results: {results / 'allure'}")
    defects = results / "documentation-defects.json"
    if defects.exists():
        lines.append(f"documentation defects: {len(json.loads(defects.read_text()))} "
                     f"(see {defects})")
    text = "\n".join(lines)
    (results / "summary.txt").write_text(text + "\n")
    return text

"""Per-requirement results of a run: collected by the plugin, saved, and rendered.

Each test states its requirement in the first line of its docstring as
``ID: requirement`` (for example ``GKE-DOCS-GPU-2: one T4 allocated ...``).
The results file ``results.json`` holds one entry per test; ``gating.json``
and ``summary.html`` are derived from it, also later by ``draconf report``.
"""

from __future__ import annotations

import html
import json
import re
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

REQUIREMENT = re.compile(r"^\s*([A-Z][A-Z0-9-]*-\d+[a-z]?):\s*(.+)$")


@dataclass
class TestResult:
    __test__ = False  # a record, not a pytest test class

    nodeid: str
    requirement_id: str
    requirement: str
    outcome: str  # passed, failed, skipped, error
    reason: str = ""
    duration: float = 0.0
    markers: list[str] = field(default_factory=list)
    pictures: list[str] = field(default_factory=list)


def requirement_of(docstring: str | None, nodeid: str) -> tuple[str, str]:
    """Return (id, requirement) from a docstring's first line; the test name otherwise."""
    first = (docstring or "").strip().splitlines()[0] if (docstring or "").strip() else ""
    match = REQUIREMENT.match(first)
    if match:
        return match.group(1), match.group(2).strip()
    return nodeid.split("::")[-1], first or "(no requirement stated)"


def save(results: list[TestResult], directory: Path) -> Path:
    directory.mkdir(parents=True, exist_ok=True)
    path = directory / "results.json"
    path.write_text(json.dumps([asdict(r) for r in results], indent=1))
    return path


def load(directory: Path) -> list[TestResult]:
    path = directory / "results.json"
    try:
        data = json.loads(path.read_text())
        return [TestResult(**entry) for entry in data]
    except FileNotFoundError:
        raise ReportError(f"{directory} has no results.json (not found); point draconf report at the "
                          "--results-dir of a run") from None
    except (ValueError, TypeError) as error:
        raise ReportError(f"{path} is not a draconf results file: {error}") from None


def _natural(text: str) -> tuple:
    return tuple(int(part) if part.isdigit() else part for part in re.split(r"(\d+)", text))


class ReportError(Exception):
    pass


def gating(results: list[TestResult]) -> dict[str, Any]:
    """Return the CI gating document: per requirement, its verdict and why."""
    requirements: dict[str, dict[str, Any]] = {}
    order = {"failed": 3, "error": 3, "passed": 1, "skipped": 0}
    for result in results:
        entry = requirements.setdefault(result.requirement_id, {
            "requirement": result.requirement, "status": "skipped", "tests": []})
        entry["tests"].append({"test": result.nodeid, "outcome": result.outcome,
                               "reason": result.reason})
        if order[result.outcome] > order.get(entry["status"], 0) or entry["status"] == \
                "skipped" and result.outcome == "passed":
            entry["status"] = "failed" if result.outcome == "error" else result.outcome
    counts = {status: sum(1 for r in requirements.values() if r["status"] == status)
              for status in ("passed", "failed", "skipped")}
    tests = {status: sum(1 for r in results if r.outcome == status)
             for status in ("passed", "failed", "skipped", "error")}
    return {"passed": counts["failed"] == 0, "requirement_counts": counts,
            "test_counts": tests, "requirements": requirements}


def write_reports(results: list[TestResult], directory: Path) -> tuple[Path, Path]:
    gate = gating(results)
    json_path = directory / "gating.json"
    json_path.write_text(json.dumps(gate, indent=1))
    html_path = directory / "summary.html"
    html_path.write_text(render_html(results, gate, directory))
    return json_path, html_path


def render_html(results: list[TestResult], gate: dict[str, Any], directory: Path) -> str:
    """Return a self-contained page: counts, one row per requirement, allocation maps inline."""
    colours = {"passed": "#1a7f37", "failed": "#cf222e", "skipped": "#9a6700"}
    rows = []
    for requirement_id, entry in sorted(gate["requirements"].items(),
                                        key=lambda item: _natural(item[0])):
        reasons = "<br>".join(html.escape(t["reason"]) for t in entry["tests"] if t["reason"])
        rows.append(
            f"<tr><td><code>{html.escape(requirement_id)}</code></td>"
            f"<td>{html.escape(entry['requirement'])}</td>"
            f"<td style='color:{colours[entry['status']]};font-weight:bold'>"
            f"{entry['status']}</td><td class='why'>{reasons}</td></tr>")
    pictures = []
    for result in results:
        for picture in result.pictures:
            path = directory / picture
            if path.exists():
                pictures.append(f"<figure><figcaption>{html.escape(result.requirement_id)}: "
                                f"allocation map</figcaption>{path.read_text()}</figure>")
    counts = gate["requirement_counts"]
    verdict = "PASSED" if gate["passed"] else "FAILED"
    return f"""<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><title>draconf conformance summary</title>
<style>
body {{ font-family: system-ui, sans-serif; margin: 2em; color: #1f2328; }}
table {{ border-collapse: collapse; width: 100%; }}
td, th {{ border-bottom: 1px solid #d0d7de; padding: 6px 8px; text-align: left;
          vertical-align: top; }}
td.why {{ font-size: 0.85em; color: #57606a; }}
figure {{ display: inline-block; margin: 1em 1em 0 0; }}
</style></head><body>
<h1>draconf conformance summary: {verdict}</h1>
<p>{counts['passed']} requirement(s) passed, {counts['failed']} failed,
{counts['skipped']} skipped ({len(results)} tests).</p>
<table><tr><th>id</th><th>requirement</th><th>status</th><th>why</th></tr>
{''.join(rows)}
</table>
<h2>Allocation maps</h2>
{''.join(pictures) or '<p>No allocation map was drawn in this run.</p>'}
</body></html>
"""

"""Reports: requirement ids, the gating document, the HTML page, the allocation map."""

from __future__ import annotations

import json

from fixtures.cli import main
from reports.allocation_map import FREE, render
from reports.results import TestResult, gating, render_html, requirement_of, save


def test_requirement_from_docstring():
    assert requirement_of("GKE-DOCS-GPU-2: one T4 allocated.\n\nMore.", "x::t") == \
        ("GKE-DOCS-GPU-2", "one T4 allocated.")


def test_requirement_without_id_uses_test_name():
    assert requirement_of("Checks a thing.", "suites/a.py::test_thing") == \
        ("test_thing", "Checks a thing.")


def results() -> list[TestResult]:
    return [TestResult("a::one", "REQ-1", "first", "passed"),
            TestResult("a::two[x]", "REQ-2", "second", "passed"),
            TestResult("a::two[y]", "REQ-2", "second", "failed", "AssertionError: boom"),
            TestResult("a::three", "REQ-3", "third", "skipped", "needs a TPU node")]


def test_gating_failed_test_fails_requirement():
    gate = gating(results())

    assert gate["passed"] is False
    assert gate["requirements"]["REQ-1"]["status"] == "passed"
    assert gate["requirements"]["REQ-2"]["status"] == "failed"
    assert gate["requirements"]["REQ-3"]["status"] == "skipped"
    assert gate["requirement_counts"] == {"passed": 1, "failed": 1, "skipped": 1}
    assert gate["test_counts"] == {"passed": 2, "failed": 1, "skipped": 1, "error": 0}


def test_html_lists_requirements_and_reasons(tmp_path):
    page = render_html(results(), gating(results()), tmp_path)

    assert "draconf conformance summary: FAILED" in page
    assert "<code>REQ-2</code>" in page
    assert "AssertionError: boom" in page
    assert "needs a TPU node" in page


SLICE = {"spec": {"driver": "gpu.nvidia.com", "nodeName": "node-a",
                  "pool": {"name": "node-a"}, "devices": [{"name": "gpu-0"}, {"name": "gpu-1"}]}}
CLAIM = {"metadata": {"namespace": "ns", "name": "held"},
         "status": {"allocation": {"devices": {"results": [
             {"driver": "gpu.nvidia.com", "pool": "node-a", "device": "gpu-1",
              "request": "r"}]}}}}


def test_map_colours_held_devices():
    svg = render([SLICE], [CLAIM], "test map")

    assert svg.startswith("<svg")
    assert "gpu-1: ns/held" in svg
    assert "gpu-0: free" in svg
    assert svg.count(f'fill="{FREE}"') == 2, "one free device and the legend's free swatch"


def test_html_embeds_maps(tmp_path):
    (tmp_path / "maps").mkdir()
    (tmp_path / "maps" / "m.svg").write_text(render([SLICE], [CLAIM], "flow map"))
    entries = [TestResult("a::one", "REQ-1", "first", "passed", pictures=["maps/m.svg"])]

    page = render_html(entries, gating(entries), tmp_path)

    assert "flow map" in page
    assert "<svg" in page


def test_report_command_regenerates(tmp_path, capsys):
    save(results(), tmp_path)

    code = main(["report", str(tmp_path)])

    assert code == 1, "a failed requirement makes the report command fail"
    assert json.loads((tmp_path / "gating.json").read_text())["passed"] is False
    assert (tmp_path / "summary.html").exists()
    assert "1 requirement(s) passed, 1 failed, 1 skipped" in capsys.readouterr().out

"""Cases recorded from kube-scheduler in differential runs, replayed against the allocator.

Each file in tests/data/differential holds a generated case and whether the
real scheduler could allocate it. A disagreement found by the differential
suite is saved in the same form and belongs here.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from allocator.allocate import allocate
from suites.differential import cases as c

DATA = Path(__file__).resolve().parent / "data" / "differential"
CASES = sorted(DATA.glob("*.json"))


def test_cases_present():
    assert len(CASES) >= 4, f"expected recorded cases in {DATA}"


@pytest.mark.parametrize("path", CASES, ids=[p.stem for p in CASES])
def test_allocator_matches_recorded_verdict(path):
    record = json.loads(path.read_text())
    case = record["case"]
    claim = c.claim(case, "replayed")
    claim["metadata"]["namespace"] = "default"
    nodes = list(case["nodes"])

    outcome = allocate(claim, c.slices(case, {}), [c.device_class({})], [], nodes)

    assert outcome.allocated == record["scheduler_allocated"], (
        f"{path.name}: kube-scheduler {'allocated' if record['scheduler_allocated'] else 'refused'}"
        f" this case; the allocator says {getattr(outcome, 'reason', 'it can allocate')}")

"""Fixtures of the fault-detection suite."""

from __future__ import annotations

import json

import pytest


@pytest.fixture
def record_detection(request):
    """Append what a fault test saw to <results>/fault-matrix.jsonl for draconf faults."""
    def record(fault: str, check: str, message: str) -> None:
        path = request.config.getoption("--results-dir").resolve() / "fault-matrix.jsonl"
        path.parent.mkdir(parents=True, exist_ok=True)
        with open(path, "a") as out:
            out.write(json.dumps({"fault": fault, "test": request.node.nodeid, "check": check,
                                  "message": message}) + "\n")
    return record

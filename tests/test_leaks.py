"""After a failed run, or one stopped by a time limit, nothing of it remains."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from fixtures.processes import processes_referencing

ROOT = Path(__file__).resolve().parent.parent

FAILING_SUITE = '''
import os
import time


def test_fails_after_creating_objects(draconf_env, namespace):
    """LEAK-1: a test that creates a pod and then fails."""
    draconf_env.kube.create({"apiVersion": "v1", "kind": "Pod",
                             "metadata": {"name": "left", "namespace": namespace},
                             "spec": {"containers": [{"name": "c", "image": "none",
                                                      "command": ["sleep", "600"]}]}})
    if os.environ.get("LEAK_SLEEP"):
        time.sleep(600)  # the signal lands here
    assert False, "this test fails on purpose"
'''


@pytest.mark.parametrize("ending", ["test-failed", "time-limit", "signals-during-stop"])
def test_run_leaves_nothing(binaries, tmp_path, state_root, ending):
    suite = tmp_path / "test_leak_suite.py"
    suite.write_text(FAILING_SUITE)
    env = dict(os.environ, PYTHONPATH=str(ROOT), PYTHONUNBUFFERED="1",
               LEAK_SLEEP="1" if ending == "time-limit" else "")
    process = subprocess.Popen(
        [sys.executable, "-m", "fixtures.cli", "run", "--results-dir", str(tmp_path / "results"),
         "--", str(suite)],
        env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, cwd=tmp_path)
    assert process.stdout is not None
    lines = []
    if ending == "time-limit":
        # What `timeout` or a CI job limit does: SIGTERM while the test runs.
        for line in process.stdout:
            lines.append(line)
            if "admin kubeconfig:" in line:
                break
        time.sleep(2)
        process.send_signal(signal.SIGTERM)
    if ending == "signals-during-stop":
        # A CI limit's SIGTERM just as the run ends, then an impatient Ctrl-C.
        for line in process.stdout:
            lines.append(line)
            if "stopping the local cluster" in line:
                break
        process.send_signal(signal.SIGTERM)
        time.sleep(0.3)
        process.send_signal(signal.SIGINT)
    rest, _ = process.communicate(timeout=300)
    output = "".join(lines) + rest

    assert process.returncode != 0
    assert not list(state_root.iterdir()), output[-3000:]
    assert not processes_referencing(state_root), output[-3000:]
    assert "Traceback" not in output.split("FAILURES")[0]
    if ending == "signals-during-stop":
        assert "draconf: still " in output, output[-3000:]
        gate = json.loads((tmp_path / "results" / "gating.json").read_text())
        assert gate["exit_code"] == process.returncode == 2
        assert gate["passed"] is False
    if ending == "test-failed":
        assert "this test fails on purpose" in output
        evidence = list((tmp_path / "results" / "evidence").iterdir())
        assert evidence, "a failed test leaves its evidence"
        allure_results = [p.read_text() for p in (tmp_path / "results" / "allure").glob(
            "*-result.json")]
        with_events = [text for text in allure_results if '"events.txt"' in text]
        assert with_events, "Allure results carry the evidence"
        assert '"claims.yaml"' in with_events[0]

"""On a cluster that outlives the run, no run leaves an object, process or temporary file.

A cluster from `draconf cluster up` is used through the existing backend.
The suite below creates what tests create (a namespace, a claim and a pod
that uses a GPU, a second namespace outside the namespace fixture, a
cluster-scoped ResourceSlice that no fixture removes) and then ends in one of five
ways: it passes, it fails, a wait runs out, Ctrl-C, or SIGTERM (a CI time
limit). Afterwards nothing labelled with the run's id may remain, the GPU
must be free again, and the run's temporary directory must be empty.
"""

from __future__ import annotations

import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from fixtures.kube import CORE, RUN_ID_LABEL, Kube, dra
from fixtures.processes import processes_referencing

ROOT = Path(__file__).resolve().parent.parent

LEAK_SUITE = '''
import os
import time
from pathlib import Path

from fixtures.kube import CORE, label_objects
from fixtures.waits import wait_for

ENDING = os.environ["LEAK_ENDING"]


def test_leaves_objects(draconf_env, namespace):
    """LEAK-2: a test that uses a GPU and leaves objects outside its namespace."""
    kube, run_id = draconf_env.kube, draconf_env.run_id
    claim, pod, other, lone_slice = label_objects([
        {"apiVersion": "resource.k8s.io/v1", "kind": "ResourceClaim",
         "metadata": {"name": "held", "namespace": namespace},
         "spec": {"devices": {"requests": [{"name": "gpu", "exactly": {
             "deviceClassName": "gpu.nvidia.com"}}]}}},
        {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "holder", "namespace": namespace},
         "spec": {"tolerations": [{"key": "nvidia.com/gpu", "operator": "Exists"}],
                  "resourceClaims": [{"name": "gpu", "resourceClaimName": "held"}],
                  "containers": [{"name": "c", "image": "none", "command": ["sleep", "600"],
                                  "resources": {"claims": [{"name": "gpu"}]}}]}},
        {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": f"outside-{run_id}"}},
        {"apiVersion": "resource.k8s.io/v1", "kind": "ResourceSlice",
         "metadata": {"name": f"lone-{run_id}"},
         "spec": {"driver": "leak.draconf.dev", "allNodes": True,
                  "pool": {"name": "lone", "generation": 1, "resourceSliceCount": 1},
                  "devices": [{"name": "thing-0"}]}},
    ], run_id)
    for obj in (claim, pod, other, lone_slice):
        kube.create(obj)
    wait_for("the holder pod to run", 60, lambda: (
        (kube.get(CORE["Pod"], "holder", namespace).get("status") or {}).get("phase") == "Running",
        None))
    Path(os.environ["LEAK_MARKER"]).write_text("holding\\n")
    if ENDING == "failed":
        assert False, "this test fails on purpose"
    if ENDING == "wait-timeout":
        wait_for("a condition that never holds", 2, lambda: (False, "never"))
    if ENDING in ("ctrl-c", "sigterm"):
        time.sleep(600)
'''

ENDINGS = {
    "passed": (None, 0),
    "failed": (None, 1),
    "wait-timeout": (None, 1),
    "ctrl-c": (signal.SIGINT, None),
    "sigterm": (signal.SIGTERM, None),
}

KINDS = [CORE["Namespace"], CORE["Pod"], CORE["Deployment"], dra("ResourceClaim"),
         dra("ResourceClaimTemplate"), dra("ResourceSlice"), dra("DeviceClass")]


@pytest.mark.parametrize("ending", list(ENDINGS))
def test_run_on_existing_cluster_leaves_nothing(kept_cluster, tmp_path, ending):
    env, info = kept_cluster
    suite = tmp_path / "test_leak_existing.py"
    suite.write_text(LEAK_SUITE)
    marker = tmp_path / "holding"
    run_tmp = tmp_path / "run-tmp"
    run_tmp.mkdir()
    run_id = f"leak{ending.replace('-', '')}"
    process = subprocess.Popen(
        [sys.executable, "-m", "fixtures.cli", "run", "--cluster", "existing",
         "--kubeconfig", info["kubeconfig"], "--results-dir", str(tmp_path / "results"),
         "--", str(suite), f"--run-id={run_id}"],
        env=dict(env, LEAK_ENDING=ending, LEAK_MARKER=str(marker), TMPDIR=str(run_tmp),
                 PYTHONUNBUFFERED="1"),
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, cwd=tmp_path)
    stop_signal, expected_code = ENDINGS[ending]
    if stop_signal is not None:
        deadline = time.monotonic() + 120
        while not marker.exists() and time.monotonic() < deadline and process.poll() is None:
            time.sleep(0.2)
        assert marker.exists(), "the test never reached its holding point"
        process.send_signal(stop_signal)
    output, _ = process.communicate(timeout=300)

    if expected_code is None:
        assert process.returncode not in (0, 5), output[-3000:]
    else:
        assert process.returncode == expected_code, output[-3000:]
    assert "Traceback" not in output.split("= FAILURES =")[0], output[-3000:]
    kube = Kube(info["kubeconfig"])
    try:
        left = {resource.plural: [item["metadata"]["name"] for item in kube.list(
            resource, label_selector=f"{RUN_ID_LABEL}={run_id}")] for resource in KINDS}
        assert not any(left.values()), f"{left}\n{output[-3000:]}"
        allocated_claims = [c["metadata"]["name"] for c in kube.list(dra("ResourceClaim"))
                            if (c.get("status") or {}).get("allocation")]
        assert not allocated_claims, f"claims still holding devices: {allocated_claims}"
    finally:
        kube.close()
    assert not processes_referencing(tmp_path), output[-3000:]
    assert not list(run_tmp.iterdir()), f"temporary files left: {list(run_tmp.iterdir())}"
    if ending == "wait-timeout":
        assert "a condition that never holds: not reached within 2 s" in output
    if stop_signal is not None:
        assert "INTERRUPTED " in output, output[-2000:]
        assert "test_leaves_objects" in output, output[-2000:]

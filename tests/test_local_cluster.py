"""Bring-up failures of the local backend: each one explained, nothing left running."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

from fixtures import local_cluster
from fixtures.binaries import Binaries
from fixtures.local_cluster import ClusterStartError, LocalCluster, clean_stale_state
from fixtures.processes import processes_referencing
from fixtures.timeouts import Timeouts

ROOT = Path(__file__).resolve().parent.parent


def with_fake(binaries: Binaries, tmp_path: Path, name: str, script: str) -> Binaries:
    fake = tmp_path / name
    fake.write_text(f"#!/bin/sh\n{script}\n")
    fake.chmod(0o755)
    return Binaries(binaries.kubernetes_version, binaries.etcd_version,
                    {**binaries.paths, name: fake})


def test_apiserver_never_ready(binaries, tmp_path, state_root):
    fake = with_fake(binaries, tmp_path, "kube-apiserver",
                     'echo "pretending to start"; exec sleep 300')
    cluster = LocalCluster("neverready", fake, tmp_path / "logs",
                           Timeouts(component_start=3), progress=lambda m: None)

    with pytest.raises(ClusterStartError) as raised:
        cluster.start()

    message = str(raised.value)
    assert "kube-apiserver did not become healthy within 3 s" in message
    assert "pretending to start" in message, "the message quotes the component's log"
    assert "--timeout-scale" in message, "the message says what to do"
    assert not cluster.state_dir.exists(), "the state directory (with keys) is removed"
    assert not any(p.running() for p in cluster.components)


def test_component_that_exits(binaries, tmp_path, state_root):
    fake = with_fake(binaries, tmp_path, "kube-apiserver", 'echo "bad flag --foo" >&2; exit 3')
    cluster = LocalCluster("exits", fake, tmp_path / "logs", Timeouts(component_start=10),
                           progress=lambda m: None)

    with pytest.raises(ClusterStartError) as raised:
        cluster.start()

    assert "kube-apiserver exited with code 3" in str(raised.value)
    assert "bad flag --foo" in str(raised.value)


def test_port_taken_is_retried(binaries, tmp_path, state_root, monkeypatch):
    """A port taken between probing and binding: the start retries with new ports."""
    blocker = socket.socket()
    blocker.bind(("127.0.0.1", 0))
    blocker.listen()
    taken = blocker.getsockname()[1]
    real_pick = local_cluster.Ports.pick
    calls = []

    def pick() -> local_cluster.Ports:
        ports = real_pick()
        if not calls:
            ports.etcd_client = taken
        calls.append(ports)
        return ports

    monkeypatch.setattr(local_cluster.Ports, "pick", staticmethod(pick))
    messages: list[str] = []
    cluster = LocalCluster("porttaken", binaries, tmp_path / "logs", Timeouts(),
                           progress=messages.append)
    try:
        cluster.start()
        assert cluster.kube().server_version()["gitVersion"] == f"v{binaries.kubernetes_version}"
    finally:
        cluster.stop()
        blocker.close()

    assert len(calls) == 2
    assert any("retrying with new ports" in m for m in messages), messages


def test_stale_run_directory_is_cleaned(state_root):
    stale = state_root / "deadrun"
    stale.mkdir(parents=True)
    dead = subprocess.Popen(["true"])
    dead.wait()
    (stale / local_cluster.OWNER_FILE).write_text(str(dead.pid))
    leftover = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(300)",
                                 str(stale / "marker")], start_new_session=True)
    # Until the child has exec'd, its command line is still the parent's.
    deadline = time.monotonic() + 10
    while leftover.pid not in processes_referencing(stale) and time.monotonic() < deadline:
        time.sleep(0.05)
    live = state_root / "liverun"
    live.mkdir()
    (live / local_cluster.OWNER_FILE).write_text(str(os.getpid()))
    messages: list[str] = []

    clean_stale_state(messages.append)

    assert leftover.wait(timeout=10) is not None
    assert not stale.exists()
    assert live.exists(), "a directory whose owner is alive is left alone"
    removed = [m for m in messages if "removed stale run directory" in m]
    assert removed, messages
    assert "stopped 1 leftover" in removed[0]


# Lines after which the interrupt lands: during control-plane start, between the
# control plane and the nodes, after the driver is ready, and inside the first test.
INTERRUPT_POINTS = {
    "control-plane-starting": "starting etcd",
    "control-plane-ready": "is ready at https://",
    "driver-ready": "fake driver ready",
    "before-first-test": "admin kubeconfig:",
    "during-test": "test_tpu_flow.py::test_documented_tpu_template_is_rejected",
}


@pytest.mark.parametrize("point", list(INTERRUPT_POINTS))
def test_interrupted_run_leaves_nothing(binaries, tmp_path, state_root, point):
    """Ctrl-C at any point: the cluster and every helper process stop, no traceback."""
    env = dict(os.environ, PYTHONPATH=str(ROOT), PYTHONUNBUFFERED="1")
    process = subprocess.Popen(
        [sys.executable, "-m", "fixtures.cli", "run", "--results-dir", str(tmp_path / "results"),
         "--", str(ROOT / "suites" / "gke_docs" / "test_tpu_flow.py"), "-v"],
        env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, cwd=tmp_path)
    marker = INTERRUPT_POINTS[point]
    lines = []
    deadline = time.monotonic() + 180
    assert process.stdout is not None
    for line in process.stdout:
        lines.append(line)
        if marker in line or time.monotonic() > deadline:
            break
    assert any(marker in line for line in lines), "".join(lines[-20:])
    state_dirs = list(state_root.iterdir())

    process.send_signal(signal.SIGINT)
    output, _ = process.communicate(timeout=120)

    assert process.returncode != 0
    for directory in state_dirs:
        assert not directory.exists(), "".join(lines) + output
        assert not processes_referencing(directory)
    assert not list(state_root.iterdir())
    assert "Traceback" not in output

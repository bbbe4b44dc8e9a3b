"""Shared fixtures of the harness's own tests."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Iterator

import pytest

ROOT = Path(__file__).resolve().parent.parent

from fixtures import local_cluster
from fixtures.binaries import BinaryError, Binaries, ensure_binaries
from fixtures.processes import kill_all, processes_referencing


@pytest.fixture(scope="session")
def binaries() -> Binaries:
    """The real upstream binaries (built on first use, as the suites do)."""
    try:
        return ensure_binaries()
    except BinaryError as error:
        pytest.fail(f"the upstream binaries are needed for this test: {error}")


@pytest.fixture
def state_root(monkeypatch) -> Iterator[Path]:
    """A private state root for local clusters, checked for leftover processes afterwards."""
    # A short path of its own keeps these tests away from real runs' directories
    # and keeps socket paths under the 108-byte limit.
    root = Path(tempfile.mkdtemp(prefix="draconf-test-", dir="/tmp"))
    monkeypatch.setenv(local_cluster.STATE_ROOT_ENV, str(root))
    yield root
    leftovers = processes_referencing(root)
    kill_all(leftovers)
    shutil.rmtree(root, ignore_errors=True)
    assert not leftovers, f"processes left running under {root}: {leftovers}"


def run_draconf(*args: str, env: dict[str, str], timeout: float = 900
                ) -> subprocess.CompletedProcess:
    """Run the draconf command line from this checkout, with its output captured."""
    return subprocess.run([sys.executable, "-m", "fixtures.cli", *args], env=env, cwd=ROOT,
                          capture_output=True, text=True, timeout=timeout)


@pytest.fixture(scope="module")
def kept_cluster(tmp_path_factory, binaries):
    """A cluster made by `draconf cluster up`, for the existing backend; down afterwards."""
    state = tmp_path_factory.mktemp("state")
    env = dict(os.environ, XDG_STATE_HOME=str(state), PYTHONPATH=str(ROOT))
    started = run_draconf("cluster", "up", "--name", "guard", env=env)
    assert started.returncode == 0, started.stdout + started.stderr
    info = json.loads((state / "draconf" / "clusters" / "guard.json").read_text())
    yield env, info
    stopped = run_draconf("cluster", "down", "--name", "guard", env=env)
    assert stopped.returncode == 0, stopped.stderr
    assert not processes_referencing(Path(info["kubeconfig"]).parent)


@pytest.fixture
def draconf():
    """The draconf command line, as run_draconf."""
    return run_draconf

"""Shared fixtures of the harness's own tests."""

from __future__ import annotations

import shutil
import tempfile
from pathlib import Path
from typing import Iterator

import pytest

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

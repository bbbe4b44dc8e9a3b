"""Shared fixtures of the harness's own tests."""

from __future__ import annotations

import pytest

from fixtures.binaries import BinaryError, Binaries, ensure_binaries


@pytest.fixture(scope="session")
def binaries() -> Binaries:
    """The real upstream binaries (built on first use, as the suites do)."""
    try:
        return ensure_binaries()
    except BinaryError as error:
        pytest.fail(f"the upstream binaries are needed for this test: {error}")

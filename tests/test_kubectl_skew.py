"""kubectl version skew is reported against the server's version."""

from __future__ import annotations

import json

import pytest

from fixtures.existing import kubectl_skew


def fake_kubectl(tmp_path, version: str):
    path = tmp_path / "kubectl"
    path.write_text("#!/bin/sh\necho '" + json.dumps({"clientVersion": {"gitVersion": version}})
                    + "'\n")
    path.chmod(0o755)
    return path


@pytest.mark.parametrize("client, server, skewed", [
    ("v1.37.2", "v1.37.2", False), ("v1.36.1", "v1.37.2", False),
    ("v1.32.4-dispatcher", "v1.37.2", True), ("v1.37.2", "v1.34.0-gke.100", True),
], ids=["same", "one-minor", "five-minors", "newer-client"])
def test_skew(tmp_path, client, server, skewed):
    message = kubectl_skew(fake_kubectl(tmp_path, client), server)

    assert (message is not None) is skewed, message
    if skewed:
        assert client in message
        assert server in message


def test_unreadable_version(tmp_path):
    broken = tmp_path / "kubectl"
    broken.write_text("#!/bin/sh\necho not json\n")
    broken.chmod(0o755)

    assert "could not be read" in kubectl_skew(broken, "v1.37.2")

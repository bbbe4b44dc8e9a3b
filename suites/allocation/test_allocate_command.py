"""draconf allocate against a live cluster: what-if and the watch mode's oracle checks."""

from __future__ import annotations

import pytest

from fixtures.cli import main
from fixtures.kube import dra
from fixtures.workloads import create_objects
from suites.allocation import helpers as h

pytestmark = [pytest.mark.e2e]

WHAT_IF = """
apiVersion: resource.k8s.io/v1
kind: ResourceClaim
metadata: {name: what-if}
spec:
  devices:
    requests:
    - name: chips
      exactly: {deviceClassName: tpu.google.com, allocationMode: All}
"""


def test_what_if_on_live_cluster(draconf_env, tmp_path, capsys):
    """ALLOC-CMD-1: the what-if reads the cluster's inventory and writes nothing."""
    claim = tmp_path / "claim.yaml"
    claim.write_text(WHAT_IF)
    node = draconf_env.node_for("gke-tpu-v6e-8")

    code = main(["allocate", "--kubeconfig", str(draconf_env.kubeconfig), str(claim)])

    out = capsys.readouterr().out
    assert code == 0, out
    assert node in out
    names = [c["metadata"]["name"] for c in draconf_env.kube.list(dra("ResourceClaim"))]
    assert "what-if" not in names, "the what-if must not create the claim"


def test_watch_checks_allocations(draconf_env, namespace, capsys):
    """ALLOC-CMD-2: --watch checks each allocation with the oracle and reports none broken."""
    claim = h.claim("watched", [{"name": "gpu", "exactly": h.exactly(
        "gpu.nvidia.com", 1, selectors=[h.T4])}])
    create_objects(draconf_env, namespace, [claim, h.pod("user-0", {"devices": "watched"})])
    h.wait_allocated(draconf_env, namespace, "watched")

    code = main(["allocate", "--watch", "--kubeconfig", str(draconf_env.kubeconfig),
                 "--interval", "0.5", "--duration", "1"])

    out = capsys.readouterr().out
    assert code == 0, out
    assert f"ok {namespace}/watched" in out
    assert "0 violation(s)" in out

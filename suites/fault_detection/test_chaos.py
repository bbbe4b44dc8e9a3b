"""Chaos on the local backend: control-plane components restarted in the middle of work."""

from __future__ import annotations

import pytest

from fixtures.kube import dra
from fixtures.workloads import create_objects, wait_for_running_pods
from suites.allocation import helpers as h
from suites.gke_docs import flow

pytestmark = [pytest.mark.e2e]


@pytest.fixture
def local(draconf_env):
    if draconf_env.local is None:
        pytest.skip("restarting components needs the local backend")
    if "gke-l4-8" not in draconf_env.nodes:
        pytest.skip("needs a node of profile gke-l4-8; add it to --nodes")
    return draconf_env


@pytest.mark.parametrize("component", ["kube-apiserver", "kube-scheduler",
                                       "kube-controller-manager"])
def test_flow_survives_restart(local, namespace, component):
    """CHAOS-1: a component restarted mid-flow; the flow finishes and new claims allocate."""
    state = flow.run_documented_flow(local, namespace, "gpu-claim-template.yaml",
                                     "gpu-deployment.yaml")

    seconds = local.local.restart_component(component)

    assert seconds < local.timeouts.component_start
    claim = local.kube.get(dra("ResourceClaim"), state.claim["metadata"]["name"], namespace)
    assert (claim.get("status") or {}).get("allocation"), "the allocation survived the restart"
    second = h.claim("after-restart", [{"name": "gpu", "exactly": h.exactly(
        "gpu.nvidia.com", 1, selectors=[h.L4])}])
    create_objects(local, namespace, [second, h.pod("after", {"devices": "after-restart"})])
    wait_for_running_pods(local, namespace, "app=after", 1)
    logs = flow.kubectl_logs(local, namespace, state.deployment)
    assert "GPU 0: Tesla T4" in logs

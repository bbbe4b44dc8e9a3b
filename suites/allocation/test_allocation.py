"""Allocation semantics on a real kube-scheduler, each result checked by the oracle.

For every claim the project's allocator is asked first; the scheduler's verdict
(allocated or not) must agree with it.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from fixtures.environment import wait_for_driver
from fixtures.kube import CORE, KubeError, delete_owned, dra, is_owned
from fixtures.waits import hold_for, wait_for
from fixtures.workloads import create_objects, load_manifests, wait_for_running_pods
from suites.allocation import helpers as h

pytestmark = [pytest.mark.e2e, pytest.mark.gpu]

L4_PROFILE = "gke-l4-8"
DATA = Path(__file__).resolve().parent / "data"


@pytest.fixture
def l4_node(draconf_env) -> str:
    if L4_PROFILE not in draconf_env.nodes:
        pytest.skip(f"needs a node of profile {L4_PROFILE}; add it to --nodes")
    return draconf_env.node_for(L4_PROFILE)


def allocate_and_check(env, namespace, claim_obj, pods=1, containers=1):
    """Create the claim and pods using it; return the allocated claim, checked twice."""
    predicted = h.predict(env, claim_obj, namespace)
    objects = [claim_obj] + [h.pod(f"user-{i}", {"devices": claim_obj["metadata"]["name"]},
                                   containers) for i in range(pods)]
    create_objects(env, namespace, objects)
    allocated = h.wait_allocated(env, namespace, claim_obj["metadata"]["name"])
    violations = h.oracle_violations(env, allocated)
    assert predicted.allocated, (
        f"the scheduler allocated claim {namespace}/{claim_obj['metadata']['name']} but the "
        f"allocator said it could not: {getattr(predicted, 'reason', '')}")
    assert not violations, violations
    return allocated, predicted


def test_exact_count(draconf_env, namespace, l4_node):
    """ALLOC-1: ExactCount 3 gives three distinct devices of one node."""
    claim = h.claim("three", [{"name": "gpus", "exactly": h.exactly(
        "gpu.nvidia.com", 3, selectors=[h.L4])}])

    allocated, predicted = allocate_and_check(draconf_env, namespace, claim)

    got = h.results(allocated)
    assert len(got) == 3
    assert len({device for _, _, device in got}) == 3
    assert {pool for _, pool, _ in got} == {l4_node}
    assert predicted.node == l4_node


def test_all_mode_takes_every_match(draconf_env, namespace, l4_node):
    """ALLOC-2: allocationMode All gives every matching device of the node."""
    claim = h.claim("all", [{"name": "gpus", "exactly": h.exactly(
        "gpu.nvidia.com", mode="All", selectors=[h.L4])}])

    allocated, _ = allocate_and_check(draconf_env, namespace, claim)

    assert h.results(allocated) == sorted(("gpus", l4_node, f"gpu-{i}") for i in range(8))


@pytest.mark.parametrize("selector", [
    'device.attributes["gpu.nvidia.com"].cudaComputeCapability.isGreaterThan(semver("8.0.0"))',
    'device.capacity["gpu.nvidia.com"].memory.compareTo(quantity("20Gi")) >= 0',
], ids=["semver-attribute", "capacity-quantity"])
def test_selector_picks_l4(draconf_env, namespace, l4_node, selector):
    """ALLOC-3: selectors on version attributes and on capacity exclude the T4."""
    claim = h.claim("picky", [{"name": "gpu", "exactly": h.exactly(
        "gpu.nvidia.com", 1, selectors=[selector])}])

    allocated, _ = allocate_and_check(draconf_env, namespace, claim)

    assert [pool for _, pool, _ in h.results(allocated)] == [l4_node]


def test_match_and_distinct_attribute(draconf_env, namespace, l4_node):
    """ALLOC-4: matchAttribute and distinctAttribute hold across two requests."""
    claim = h.claim("pair", [
        {"name": "a", "exactly": h.exactly("gpu.nvidia.com", 1)},
        {"name": "b", "exactly": h.exactly("gpu.nvidia.com", 1)},
    ], constraints=[
        {"requests": ["a", "b"], "matchAttribute": "gpu.nvidia.com/productName"},
        {"requests": ["a", "b"], "distinctAttribute": "gpu.nvidia.com/uuid"},
    ])

    allocated, _ = allocate_and_check(draconf_env, namespace, claim)

    # The T4 node has one GPU, so both must come from the L4 node.
    assert {pool for _, pool, _ in h.results(allocated)} == {l4_node}
    assert len({device for _, _, device in h.results(allocated)}) == 2


def test_first_available(draconf_env, namespace, l4_node):
    """ALLOC-5: firstAvailable falls back to the second sub-request, named main/sub."""
    claim = h.claim("fallback", [{"name": "gpus", "firstAvailable": [
        {"name": "nine", **h.exactly("gpu.nvidia.com", 9, selectors=[h.L4])},
        {"name": "two", **h.exactly("gpu.nvidia.com", 2, selectors=[h.L4])},
    ]}])

    allocated, _ = allocate_and_check(draconf_env, namespace, claim)

    assert {request for request, _, _ in h.results(allocated)} == {"gpus/two"}
    assert len(h.results(allocated)) == 2


def test_shared_by_two_containers_and_pods(draconf_env, namespace, l4_node):
    """ALLOC-6: one claim used by two containers of each of two pods is reserved for both."""
    claim = h.claim("shared", [{"name": "gpu", "exactly": h.exactly(
        "gpu.nvidia.com", 1, selectors=[h.L4])}])

    allocate_and_check(draconf_env, namespace, claim, pods=2, containers=2)
    wait_for_running_pods(draconf_env, namespace, "app in (user-0,user-1)", 2)
    current = draconf_env.kube.get(dra("ResourceClaim"), "shared", namespace)

    assert sorted(r["name"] for r in current["status"]["reservedFor"]) == ["user-0", "user-1"]
    for name in ("user-0", "user-1"):
        for container in ("ctr0", "ctr1"):
            logs = wait_for(f"env output of {name}/{container}", draconf_env.timeouts.log_line,
                            lambda n=name, c=container: (lambda t: ("NVIDIA_VISIBLE_DEVICES=" in t,
                                                                     t))(
                                draconf_env.kube.pod_logs(namespace, n, c)))
            assert "NVIDIA_VISIBLE_DEVICES=GPU-" in logs


def test_more_pods_than_devices(draconf_env, namespace):
    """ALLOC-7: with one T4 and two claims for it, the second pod stays Pending, with reason."""
    first = h.claim("first", [{"name": "gpu", "exactly": h.exactly(
        "gpu.nvidia.com", 1, selectors=[h.T4])}])
    second = h.claim("second", [{"name": "gpu", "exactly": h.exactly(
        "gpu.nvidia.com", 1, selectors=[h.T4])}])
    create_objects(draconf_env, namespace, [first, h.pod("user-0", {"devices": "first"})])
    h.wait_allocated(draconf_env, namespace, "first")
    predicted = h.predict(draconf_env, second, namespace)

    create_objects(draconf_env, namespace, [second, h.pod("user-1", {"devices": "second"})])
    reason = h.wait_unschedulable(draconf_env, namespace, "user-1")

    assert "cannot allocate all claims" in reason, reason
    assert not predicted.allocated, "the allocator thought the second T4 claim would fit"
    assert "first" in predicted.reason, predicted.reason
    claim = draconf_env.kube.get(dra("ResourceClaim"), "second", namespace)
    assert not (claim.get("status") or {}).get("allocation")


ADMIN_LABEL = {"resource.kubernetes.io/admin-access": "true"}


@pytest.mark.parametrize("namespace", [ADMIN_LABEL], indirect=True, ids=["admin-namespace"])
def test_admin_access_shares_held_devices(draconf_env, namespace, l4_node):
    """ALLOC-8: adminAccess gets devices other claims hold, in a namespace labelled for it."""
    holder = h.claim("holder", [{"name": "gpu", "exactly": h.exactly(
        "gpu.nvidia.com", 1, selectors=[h.L4])}])
    create_objects(draconf_env, namespace, [holder, h.pod("holder", {"devices": "holder"})])
    held = h.wait_allocated(draconf_env, namespace, "holder")
    admin = h.claim("admin", [{"name": "all", "exactly": h.exactly(
        "gpu.nvidia.com", mode="All", selectors=[h.L4], admin_access=True)}])

    allocated, _ = allocate_and_check(draconf_env, namespace, admin)

    devices = {device for _, _, device in h.results(allocated)}
    assert h.results(held)[0][2] in devices
    assert len(devices) == 8
    assert all(r.get("adminAccess") for r in
               allocated["status"]["allocation"]["devices"]["results"])


def test_admin_access_needs_namespace_label(draconf_env, namespace, l4_node):
    """ALLOC-9: adminAccess in a namespace without the label is rejected with the API's reason."""
    admin = h.claim("admin", [{"name": "all", "exactly": h.exactly(
        "gpu.nvidia.com", mode="All", selectors=[h.L4], admin_access=True)}])

    with pytest.raises(KubeError) as raised:
        create_objects(draconf_env, namespace, [admin])

    assert "resource.kubernetes.io/admin-access" in str(raised.value), str(raised.value)
    predicted = h.predict(draconf_env, admin, namespace)
    assert not predicted.allocated
    assert "admin-access" in predicted.reason, predicted.reason


@pytest.fixture
def tpu_driver_stopped(draconf_env):
    """Stop the TPU node's fake driver and remove its slices; start it again afterwards."""
    node = next((n for n in draconf_env.local_nodes if n.profile == "gke-tpu-v6e-8"), None)
    if node is None:
        pytest.skip("needs the fake TPU driver on the local backend")
    try:
        if node.driver is not None:
            node.driver.stop()
            draconf_env.local.components.remove(node.driver)
            node.driver = None
        # The driver removes its slices when it stops; remove any it left (it may have
        # been killed) so the test starts with no TPU pool at all.
        for item in draconf_env.kube.list(dra("ResourceSlice")):
            if item["spec"]["driver"] == "tpu.google.com" and is_owned(item, draconf_env.run_id):
                delete_owned(draconf_env.kube, item, draconf_env.run_id)
        wait_for("the TPU pool to disappear", draconf_env.timeouts.driver_ready,
                 lambda: (not [s for s in draconf_env.kube.list(dra("ResourceSlice"))
                               if s["spec"]["driver"] == "tpu.google.com"], None))
        yield node
    finally:
        if node.driver is None or not node.driver.running():
            draconf_env.restart_driver("gke-tpu-v6e-8")
        wait_for_driver(draconf_env, lambda m: None)


def test_all_mode_without_slices(draconf_env, namespace, tpu_driver_stopped):
    """ALLOC-10: an All claim with no published devices stays unallocated until they appear."""
    [template] = load_manifests(DATA / "all-mode-without-slices.yaml")
    deployment = {
        "apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "every-chip"},
        "spec": {"replicas": 1, "selector": {"matchLabels": {"app": "every-chip"}},
                 "template": {"metadata": {"labels": {"app": "every-chip"}}, "spec": {
                     "tolerations": [{"key": "google.com/tpu", "operator": "Exists",
                                      "effect": "NoSchedule"}],
                     "resourceClaims": [{"name": "chips",
                                         "resourceClaimTemplateName": "every-chip"}],
                     "containers": [{"name": "ctr", "image": "ubuntu:22.04",
                                     "command": ["sh", "-c", "env; sleep infinity"],
                                     "resources": {"claims": [{"name": "chips"}]}}]}}}}
    create_objects(draconf_env, namespace, [template, deployment])
    env = draconf_env

    def pod_pending_and_claim_unallocated():
        pods = env.kube.list(CORE["Pod"], namespace, label_selector="app=every-chip")
        claims = env.kube.list(dra("ResourceClaim"), namespace)
        ok = len(pods) == 1 and not pods[0]["spec"].get("nodeName") and all(
            not (c.get("status") or {}).get("allocation") for c in claims)
        return ok, {"pods": [p["spec"].get("nodeName") for p in pods],
                    "claims": [c.get("status") for c in claims]}

    wait_for("the pod and its generated claim", env.timeouts.claim_generated,
             lambda: (len(env.kube.list(dra("ResourceClaim"), namespace)) == 1, None))
    hold_for("the pod stays unscheduled and its All claim unallocated",
             env.timeouts.must_not_window, pod_pending_and_claim_unallocated)
    [pending] = env.kube.list(CORE["Pod"], namespace, label_selector="app=every-chip")
    [claim] = env.kube.list(dra("ResourceClaim"), namespace)
    predicted = h.predict(env, claim, namespace)
    assert not predicted.allocated
    assert "no device" in predicted.reason.lower(), predicted.reason

    env.restart_driver("gke-tpu-v6e-8")
    [running] = wait_for_running_pods(env, namespace, "app=every-chip", 1)

    assert running["metadata"]["uid"] == pending["metadata"]["uid"], "the pod was recreated"
    allocated = env.kube.get(dra("ResourceClaim"), claim["metadata"]["name"], namespace)
    assert len(allocated["status"]["allocation"]["devices"]["results"]) == 8
    assert not h.oracle_violations(env, allocated)

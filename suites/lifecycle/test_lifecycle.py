"""Claim lifecycle: preparation before containers, unpreparation before the pod goes."""

from __future__ import annotations

import pytest

from fixtures.kube import CORE, dra
from fixtures.waits import wait_for
from fixtures.workloads import create_objects, wait_for_running_pods
from suites.allocation import helpers as h

pytestmark = [pytest.mark.e2e, pytest.mark.gpu]

PROFILE = "gke-t4-1"


@pytest.fixture
def driver(draconf_env):
    if draconf_env.local is None:
        pytest.skip("needs the fake driver's control surface on the local backend")
    return draconf_env.fake_driver(PROFILE)


def t4_claim(name: str) -> dict:
    return h.claim(name, [{"name": "gpu", "exactly": h.exactly("gpu.nvidia.com", 1,
                                                               selectors=[h.T4])}])


def prepared_uids(driver) -> list[str]:
    return [c["uid"] for c in driver.state()["prepared"]]


def test_unprepared_before_pod_is_gone(draconf_env, namespace, driver):
    """LIFECYCLE-1: when the pod object disappears, its claim is already unprepared."""
    create_objects(draconf_env, namespace, [t4_claim("gpu"), h.pod("user", {"devices": "gpu"})])
    wait_for_running_pods(draconf_env, namespace, "app=user", 1)
    uid = draconf_env.kube.get(dra("ResourceClaim"), "gpu", namespace)["metadata"]["uid"]
    assert uid in prepared_uids(driver)

    draconf_env.kube.delete(CORE["Pod"], "user", namespace)
    wait_for("pod user to be gone", draconf_env.timeouts.deletion,
             lambda: (draconf_env.kube.get_or_none(CORE["Pod"], "user", namespace) is None,
                      None), 0.05)

    assert uid not in prepared_uids(driver), "the pod was removed before NodeUnprepareResources"


def test_claim_deallocated_after_pod(draconf_env, namespace, driver):
    """LIFECYCLE-2: after its pod is deleted a ResourceClaim is unreserved and deallocated."""
    create_objects(draconf_env, namespace, [t4_claim("gpu"), h.pod("user", {"devices": "gpu"})])
    wait_for_running_pods(draconf_env, namespace, "app=user", 1)

    draconf_env.kube.delete(CORE["Pod"], "user", namespace)
    claim = wait_for("claim gpu to be unreserved and deallocated", draconf_env.timeouts.deletion,
                     lambda: (lambda c: (not (c.get("status") or {}).get("reservedFor") and
                                         not (c.get("status") or {}).get("allocation"), c))(
                         draconf_env.kube.get(dra("ResourceClaim"), "gpu", namespace)))

    assert claim["metadata"]["name"] == "gpu", "a ResourceClaim outlives its pod"


def test_force_deleted_pod_still_unprepared(draconf_env, namespace, driver):
    """LIFECYCLE-3: a pod deleted with grace period 0 is still unprepared on the node."""
    create_objects(draconf_env, namespace, [t4_claim("gpu"), h.pod("user", {"devices": "gpu"})])
    wait_for_running_pods(draconf_env, namespace, "app=user", 1)
    uid = draconf_env.kube.get(dra("ResourceClaim"), "gpu", namespace)["metadata"]["uid"]

    draconf_env.kube.delete(CORE["Pod"], "user", namespace, grace_period=0)

    wait_for(f"the driver to unprepare claim {uid}", draconf_env.timeouts.deletion,
             lambda: (uid not in prepared_uids(driver), driver.state()["prepared"]))


def test_init_container_gets_devices(draconf_env, namespace, driver):
    """LIFECYCLE-4: an init container that uses the claim runs with its devices first."""
    pod = h.pod("user", {"devices": "gpu"})
    pod["spec"]["initContainers"] = [{
        "name": "init", "image": "ubuntu:22.04",
        "command": ["sh", "-c", "nvidia-smi -L && test -n \"$NVIDIA_VISIBLE_DEVICES\""],
        "resources": {"claims": [{"name": "devices"}]}}]
    create_objects(draconf_env, namespace, [t4_claim("gpu"), pod])

    [running] = wait_for_running_pods(draconf_env, namespace, "app=user", 1)

    [init] = running["status"]["initContainerStatuses"]
    assert init["state"]["terminated"]["exitCode"] == 0, init
    logs = draconf_env.kube.pod_logs(namespace, "user", "init")
    assert "GPU 0: Tesla T4" in logs

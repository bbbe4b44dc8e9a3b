"""The driver contract, checked against the drivers of the cluster under test."""

from __future__ import annotations

import pytest

from fake_devices import cdi
from fake_devices.profiles import get_profile
from fixtures.kube import CORE, dra
from fixtures.waits import wait_for
from fixtures.workloads import create_objects, wait_for_running_pods
from suites.driver_contract.contract import ExpectedPool, pool_findings

pytestmark = [pytest.mark.e2e]

PREPARE = "/k8s.io.kubelet.pkg.apis.dra.v1.DRAPlugin/NodePrepareResources"
UNPREPARE = "/k8s.io.kubelet.pkg.apis.dra.v1.DRAPlugin/NodeUnprepareResources"


def expected_pools(env) -> list[ExpectedPool]:
    return [ExpectedPool(node, get_profile(profile))
            for profile, nodes in env.nodes.items() for node in nodes]


def test_pools_match_profiles(draconf_env):
    """DRIVER-1: every node has one consistent, non-empty pool with its profile's devices."""
    findings = pool_findings(draconf_env.kube, expected_pools(draconf_env))

    assert not findings, "driver contract broken:\n" + "\n".join(f"- {f}" for f in findings)


def claim_and_pod(profile: str, node_class: str, command: list[str]) -> list[dict]:
    kind = get_profile(profile).kind
    taint = "nvidia.com/gpu" if kind == "gpu" else "google.com/tpu"
    request = {"name": "devices", "exactly": {"deviceClassName": node_class,
                                              "allocationMode": "ExactCount", "count": 1}}
    return [
        {"apiVersion": "resource.k8s.io/v1", "kind": "ResourceClaim",
         "metadata": {"name": "contract-claim"},
         "spec": {"devices": {"requests": [request]}}},
        {"apiVersion": "v1", "kind": "Pod",
         "metadata": {"name": "contract-pod", "labels": {"app": "contract"}},
         "spec": {"restartPolicy": "Always",
                  "containers": [{"name": "ctr", "image": "ubuntu:22.04", "command": command,
                                  "resources": {"claims": [{"name": "devices"}]}}],
                  "resourceClaims": [{"name": "devices",
                                      "resourceClaimName": "contract-claim"}],
                  "tolerations": [{"key": taint, "operator": "Exists",
                                   "effect": "NoSchedule"}]}},
    ]


PROFILES = [("gke-t4-1", "gpu.nvidia.com"), ("gke-tpu-v6e-8", "tpu.google.com")]


@pytest.mark.parametrize(("profile", "device_class"), PROFILES, ids=["gpu", "tpu"])
def test_prepare_and_unprepare_once(draconf_env, namespace, profile, device_class):
    """DRIVER-2: prepare and unprepare each run once per claim; CDI ids resolve; env arrives."""
    if draconf_env.local is None:
        pytest.skip("call counts come from the fake driver's control surface")
    if profile not in draconf_env.nodes:
        pytest.skip(f"needs a node of profile {profile}; add it to --nodes")
    driver = draconf_env.fake_driver(profile)
    before = driver.state()["calls"]
    create_objects(draconf_env, namespace,
                   claim_and_pod(profile, device_class, ["sh", "-c", "env; sleep infinity"]))
    wait_for_running_pods(draconf_env, namespace, "app=contract", 1)
    claim = draconf_env.kube.get(dra("ResourceClaim"), "contract-claim", namespace)
    uid = claim["metadata"]["uid"]
    running = driver.state()

    assert running["calls"].get(PREPARE, 0) - before.get(PREPARE, 0) == 1, running["calls"]
    assert [c["uid"] for c in running["prepared"]] == [uid], running["prepared"]
    node = next(n for n in draconf_env.local_nodes if n.profile == profile)
    device = claim["status"]["allocation"]["devices"]["results"][0]["device"]
    edits = cdi.Registry([node.cdi_dir]).resolve([f"k8s.{device_class}/claim={uid}-{device}"])
    assert edits.env, f"the CDI spec of claim {namespace}/contract-claim carries no env"
    logs = wait_for("the pod's env output", draconf_env.timeouts.log_line,
                    lambda: (lambda text: ("=" in text, text))(
                        draconf_env.kube.pod_logs(namespace, "contract-pod", "ctr")))
    for variable in edits.env:
        assert variable in logs.splitlines(), f"{variable} did not reach the container:\n{logs}"

    draconf_env.kube.delete(CORE["Pod"], "contract-pod", namespace)
    wait_for("pod contract-pod to be deleted", draconf_env.timeouts.deletion,
             lambda: (draconf_env.kube.get_or_none(CORE["Pod"], "contract-pod", namespace)
                      is None, None))
    after = driver.state()

    assert after["calls"].get(UNPREPARE, 0) - before.get(UNPREPARE, 0) == 1, after["calls"]
    assert after["calls"].get(PREPARE, 0) - before.get(PREPARE, 0) == 1, after["calls"]
    assert after["prepared"] == []

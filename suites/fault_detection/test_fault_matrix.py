"""Every fault mode of the fake driver is caught, with a message that names the symptom."""

from __future__ import annotations

from dataclasses import replace

import pytest

from fake_devices.profiles import get_profile
from fixtures.waits import WaitTimeout
from suites.driver_contract.contract import ExpectedPool, pool_findings, restart_findings
from suites.gke_docs import flow

pytestmark = [pytest.mark.e2e]

# fault -> (how it is caught, text the user sees)
SLICE_FAULTS = {
    "empty-slice": "has no devices, while the node's profile gke-t4-1 has 1 GPU(s)",
    "duplicate-device-names": "device gpu-0 is listed 2 times in pool",
    "stale-pool-generation": "older than the pool's generation",
}
WORKLOAD_FAULTS = {
    "prepare-error": "injected fault prepare-error: the device could not be configured",
    "cdi-wrong-dir": "is not defined by any spec in",
    "no-registration": "DRA driver gpu.nvidia.com is not registered on node",
    "slow-prepare": "DEADLINE_EXCEEDED",
}
POD_WAIT_SECONDS = {"slow-prepare": 45.0}


@pytest.mark.parametrize("fault", list(SLICE_FAULTS))
def test_slice_fault_caught_by_contract(draconf_env, driver_fault, record_detection, fault):
    """FAULTS-1: the driver contract names each broken pool."""
    driver_fault(flow.GPU_PROFILE, fault)
    node = draconf_env.node_for(flow.GPU_PROFILE)

    findings = pool_findings(draconf_env.kube,
                             [ExpectedPool(node, get_profile(flow.GPU_PROFILE))])

    caught = [finding for finding in findings if SLICE_FAULTS[fault] in finding]
    record_detection(fault, "driver contract: pool_findings", caught[0] if caught else "")
    assert caught, findings


@pytest.mark.parametrize("fault", list(WORKLOAD_FAULTS))
def test_workload_fault_caught_by_gpu_flow(draconf_env, namespace, driver_fault,
                                          record_detection, fault):
    """FAULTS-2: the GPU flow stops at the pod and shows the event that explains why."""
    driver_fault(flow.GPU_PROFILE, fault, 40.0 if fault == "slow-prepare" else None)
    timeouts = replace(draconf_env.timeouts,
                       pod_running=POD_WAIT_SECONDS.get(fault, 15.0))

    with pytest.raises(WaitTimeout) as raised:
        flow.gpu_flow(replace(draconf_env, timeouts=timeouts), namespace)

    line = next((line.strip(" -'") for line in str(raised.value).splitlines()
                 if WORKLOAD_FAULTS[fault] in line), "")
    record_detection(fault, "GKE GPU flow: pod never Running, event quoted", line)
    assert WORKLOAD_FAULTS[fault] in str(raised.value), str(raised.value)


def test_crash_during_prepare_caught(draconf_env, namespace, driver_fault, record_detection):
    """FAULTS-3: a driver that crashed mid-prepare is reported even when the pod recovers."""
    driver_fault(flow.GPU_PROFILE, "crash-during-prepare")

    flow.gpu_flow(draconf_env, namespace)
    findings = restart_findings([draconf_env.fake_driver(flow.GPU_PROFILE).state()])

    record_detection("crash-during-prepare", "driver contract: restart_findings",
                     findings[0] if findings else "")
    assert len(findings) == 1, findings
    assert "crashed and was restarted 1 time(s)" in findings[0]

"""Reported driver faults, injected into the fake driver: the suites must catch each one."""

from __future__ import annotations

import re
from dataclasses import replace

import pytest

from fake_devices.profiles import get_profile
from fixtures.kube import dra
from fixtures.waits import WaitTimeout
from fixtures.workloads import claim_state
from suites.driver_contract.contract import ExpectedPool, pool_findings
from suites.gke_docs import flow

pytestmark = [pytest.mark.e2e]


def test_empty_slice_fails_contract(draconf_env, driver_fault):
    """CASE-EMPTY-SLICE-1: an empty pool is named with driver, node, pool, slice and counts."""
    driver_fault(flow.GPU_PROFILE, "empty-slice")
    node = draconf_env.node_for(flow.GPU_PROFILE)

    findings = pool_findings(draconf_env.kube,
                             [ExpectedPool(node, get_profile(flow.GPU_PROFILE))])

    assert len(findings) == 1, findings
    message = findings[0]
    assert "driver gpu.nvidia.com" in message
    assert f"node {node}" in message
    assert f"pool {node}" in message
    assert f"ResourceSlice {node}-gpu-nvidia-com" in message
    assert "has no devices" in message
    assert "has 1 GPU(s)" in message


def test_empty_slice_gpu_flow_shows_state(draconf_env, namespace, driver_fault):
    """CASE-EMPTY-SLICE-2: the GPU flow fails with the claim's real state, not a bare timeout."""
    driver_fault(flow.GPU_PROFILE, "empty-slice")
    short = replace(draconf_env, timeouts=replace(draconf_env.timeouts, pod_running=15))

    with pytest.raises(WaitTimeout) as raised:
        flow.gpu_flow(short, namespace)

    message = str(raised.value)
    assert "not reached within 15 s" in message
    assert "state: pending" in message, message
    assert "FailedScheduling" in message, message
    assert re.search(r"cannot allocate all claims|unschedulable", message), message


def test_missing_env_fails_tpu_flow(draconf_env, namespace, driver_fault, record_detection):
    """CASE-MISSING-ENV-1: the TPU flow fails on the environment, listing expected and seen."""
    driver_fault(flow.TPU_PROFILE, "missing-env")

    with pytest.raises(AssertionError) as raised:
        flow.tpu_flow(draconf_env, namespace, teardown=False)

    message = str(raised.value)
    lines = [line.strip() for line in message.splitlines()]
    start = next((i for i, line in enumerate(lines)
                  if line.startswith("seen: the container had:")), None)
    record_detection("missing-env", "GKE TPU flow: environment check",
                     "; ".join(lines[start:start + 2]).removeprefix("seen: ")
                     if start is not None else message[:200])
    assert "1 of" in message, f"only the environment check may fail:\n{message}"
    assert "every TPU variable reached the container" in message
    assert "TPU_ACCELERATOR_TYPE=v6e-8" in message
    assert "TPU_TOPOLOGY=2x4" in message
    assert "the container had: no TPU_ variables at all" in message
    claims = draconf_env.kube.list(dra("ResourceClaim"), namespace)
    assert [claim_state(c) for c in claims] == ["allocated,reserved"], \
        "the pod ran with an allocated, reserved claim, which alone proves nothing"

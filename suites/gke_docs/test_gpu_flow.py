"""The GKE GPU flow: a one-GPU claim template and a Deployment that runs nvidia-smi."""

from __future__ import annotations

import re

import pytest

from fixtures.kube import dra
from fixtures.workloads import Expectations
from suites.gke_docs import flow

pytestmark = [pytest.mark.e2e, pytest.mark.gpu]

GPU_PROFILE = "gke-t4-1"


def test_documented_gpu_template_is_rejected(draconf_env, namespace, documentation_defect):
    """GKE-DOCS-GPU-1: the template as documented is rejected, naming each misplaced field."""
    template = flow.documented("gpu-claim-template.yaml")

    rejection = flow.try_documented_template(draconf_env, namespace, template)

    flow.check_rejection(rejection, template)
    documentation_defect(flow.PAGE, *flow.defect_summary(template, rejection))


def test_gpu_flow(draconf_env, namespace):
    """GKE-DOCS-GPU-2: one T4 allocated, reserved, prepared and visible to nvidia-smi."""
    state = flow.run_documented_flow(draconf_env, namespace, "gpu-claim-template.yaml",
                                     "gpu-deployment.yaml")
    node = draconf_env.node_for(GPU_PROFILE)
    expect = Expectations(f"GPU flow in namespace {namespace}")

    flow.check_generated_claim(draconf_env, state, expect)
    expect.equal("pod runs on the GPU node", state.node, node)
    expect.equal("allocation results",
                 [(r["request"], r["driver"], r["pool"], r["device"])
                  for r in flow.results_of(state.claim)],
                 [("single-gpu", "gpu.nvidia.com", node, "gpu-0")])

    gpu = next(d for s in state.slices if s["spec"]["pool"]["name"] == node
               for d in s["spec"]["devices"] if d["name"] == "gpu-0")
    uuid = gpu["attributes"]["uuid"]["string"]
    product = gpu["attributes"]["productName"]["string"]
    line = f"[pod/{state.pod_name}/ctr] GPU 0: {product} (UUID: {uuid})"
    logs = flow.wait_for_log(draconf_env, namespace, state.deployment, re.escape(line))
    expect.check(f"logs show {line!r}", line in logs, logs)
    expect.check("logs never show 'Waiting...'", "Waiting..." not in logs, logs)
    flow.check_teardown(draconf_env, namespace, state, expect)
    expect.verify()

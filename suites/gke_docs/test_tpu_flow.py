"""The GKE TPU flow: a claim for every chip of a v6e 2x4 node and a pod printing its env."""

from __future__ import annotations

import pytest

from fake_devices.profiles import get_profile, tpu_environment
from fixtures.workloads import Expectations
from suites.gke_docs import flow

pytestmark = [pytest.mark.e2e, pytest.mark.tpu]

TPU_PROFILE = "gke-tpu-v6e-8"
# Values the GKE page shows for a v6e node with a 2x4 topology.
DOCUMENTED_ENV = {
    "TPU_ACCELERATOR_TYPE": "v6e-8",
    "TPU_TOPOLOGY": "2x4",
    "TPU_CHIPS_PER_HOST_BOUNDS": "2,4,1",
    "TPU_HOST_BOUNDS": "1,1,1",
    "TPU_TOPOLOGY_WRAP": "false,false,false",
    "TPU_TOPOLOGY_ALT": "false",
    "TPU_SKIP_MDS_QUERY": "true",
    "TPU_WORKER_ID": "0",
    "TPU_WORKER_HOSTNAMES": "localhost",
    "TPU_RUNTIME_METRICS_PORTS": "8431,8432,8433,8434,8435,8436,8437,8438",
}


def test_documented_tpu_template_is_rejected(draconf_env, namespace, documentation_defect):
    """GKE-DOCS-TPU-1: the template as documented is rejected, naming each misplaced field."""
    template = flow.documented("tpu-claim-template.yaml")

    rejection = flow.try_documented_template(draconf_env, namespace, template)

    flow.check_rejection(rejection, template)
    documentation_defect(flow.PAGE, *flow.defect_summary(template, rejection))


def test_tpu_environment_matches_page():
    """GKE-DOCS-TPU-0: the fake driver's rules give the page's values for v6e 2x4."""
    assert tpu_environment(get_profile(TPU_PROFILE)) == DOCUMENTED_ENV


def test_tpu_flow(draconf_env, namespace):
    """GKE-DOCS-TPU-2: all eight chips of one node allocated and their variables injected."""
    state = flow.run_documented_flow(draconf_env, namespace, "tpu-claim-template.yaml",
                                     "tpu-deployment.yaml")
    node = draconf_env.node_for(TPU_PROFILE)
    expect = Expectations(f"TPU flow in namespace {namespace}")

    flow.check_generated_claim(draconf_env, state, expect)
    expect.equal("pod runs on the TPU node", state.node, node)
    results = flow.results_of(state.claim)
    expect.equal("allocation results: chips 0..7 of the node's pool",
                 sorted(((r["request"], r["driver"], r["pool"], r["device"]) for r in results),
                        key=lambda r: int(r[3])),
                 [("all-tpus", "tpu.google.com", node, str(chip)) for chip in range(8)])

    prefix = f"[pod/{state.pod_name}/ctr] "
    logs = flow.wait_for_log(draconf_env, namespace, state.deployment,
                             r"Sleeping indefinitely")
    expect.check("logs start with 'Environment Variables:'",
                 f"{prefix}Environment Variables:" in logs, logs)
    seen = {}
    for line in logs.splitlines():
        key, sep, value = line.removeprefix(prefix).partition("=")
        if sep:
            seen[key] = value
    expected = dict(DOCUMENTED_ENV)
    claim_uid = state.claim["metadata"]["uid"]
    expected.update({f"TPU_DEVICE_{chip}_RESOURCE_CLAIM": claim_uid for chip in range(8)})
    missing = {k: v for k, v in expected.items() if seen.get(k) != v}
    expect.check(
        "every TPU variable reached the container with its documented value",
        not missing,
        {"expected but missing or different": missing,
         "TPU variables the container had": {k: v for k, v in seen.items()
                                             if k.startswith("TPU_")}})
    flow.check_teardown(draconf_env, namespace, state, expect)
    expect.verify()

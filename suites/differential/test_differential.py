"""Differential runs: the real kube-scheduler and the project's allocator on random cases.

Hypothesis generates small inventories and claims. The scheduler's verdict
(claim allocated, or pod unschedulable because claims cannot be allocated)
must equal the allocator's, and the oracle must accept every allocation the
scheduler makes. Every example is recorded in
``<results>/differential/examples.jsonl``; a disagreement is shrunk by
Hypothesis and saved as ``disagreement-*.json``, to be copied into
``tests/data/differential/`` as a regression test.
"""

from __future__ import annotations

import itertools
import json
import os
import time
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings

from allocator.allocate import allocate
from allocator.oracle import check_claim
from fixtures.kube import CORE, dra, label_objects, owned_labels
from fixtures.waits import wait_for
from fixtures.workloads import create_namespace, delete_namespace, namespace_name
from suites.differential import cases as c

pytestmark = [pytest.mark.e2e]

EXAMPLES = int(os.environ.get("DRACONF_DIFFERENTIAL_EXAMPLES", "40"))
VERDICT_SECONDS = 30.0
_counter = itertools.count()


@pytest.fixture(scope="module")
def differential(draconf_env, request):
    """Nodes without agents, the test DeviceClass and a namespace, for the whole module."""
    env = draconf_env
    if env.local is None:
        pytest.skip("differential runs create Nodes, which draconf does only on its own local "
                    "cluster")
    labels = owned_labels(env.run_id)
    nodes = [f"{c.NODE_PREFIX}-{i}" for i in range(3)]
    for name in nodes:
        env.kube.create({"apiVersion": "v1", "kind": "Node",
                         "metadata": {"name": name, "labels": dict(labels)},
                         "spec": {"taints": [{"key": "draconf.dev/differential",
                                              "value": "true", "effect": "NoSchedule"}]}})
        env.kube.patch(CORE["Node"], name, {"status": {
            "capacity": {"cpu": "8", "memory": "32Gi", "pods": "110"},
            "allocatable": {"cpu": "8", "memory": "32Gi", "pods": "110"},
            "conditions": [{"type": "Ready", "status": "True", "reason": "Differential"}]}},
            subresource="status")
    env.kube.create(c.device_class(labels))
    namespace = namespace_name("differential")
    create_namespace(env, namespace)
    results = request.config.getoption("--results-dir").resolve() / "differential"
    results.mkdir(parents=True, exist_ok=True)
    yield {"namespace": namespace, "nodes": nodes, "results": results}
    delete_namespace(env, namespace)
    env.kube.delete(dra("DeviceClass"), c.DEVICE_CLASS)
    for name in nodes:
        env.kube.delete(CORE["Node"], name)


def scheduler_verdict(env, namespace: str, claim_name: str, pod_name: str
                      ) -> tuple[bool, Any]:
    def probe() -> tuple[bool, Any]:
        claim = env.kube.get(dra("ResourceClaim"), claim_name, namespace)
        if (claim.get("status") or {}).get("allocation"):
            return True, (True, claim)
        pod = env.kube.get(CORE["Pod"], pod_name, namespace)
        for condition in (pod.get("status") or {}).get("conditions") or []:
            if condition["type"] != "PodScheduled":
                continue
            message = condition.get("message", "")
            # kube-scheduler 1.37 reports some unsatisfiable constraints as a
            # SchedulerError of its DynamicResources plugin, not as Unschedulable.
            if (condition.get("reason") == "Unschedulable"
                    and "cannot allocate all claims" in message) or (
                    condition.get("reason") == "SchedulerError"
                    and "DynamicResources" in message):
                return True, (False, f"{condition['reason']}: {message}")
        return False, {"claim status": claim.get("status"), "pod status": pod.get("status")}

    return wait_for(f"the scheduler's verdict on claim {namespace}/{claim_name}",
                    VERDICT_SECONDS, probe, 0.2)


def pod_for(name: str, claim_name: str) -> dict[str, Any]:
    return {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": name},
            "spec": {"tolerations": [{"operator": "Exists"}],
                     "resourceClaims": [{"name": "devices", "resourceClaimName": claim_name}],
                     "containers": [{"name": "ctr", "image": "none", "command": ["true"],
                                     "resources": {"claims": [{"name": "devices"}]}}]}}


def clean_up(env, namespace: str, names: tuple[str, str], slices: list[dict[str, Any]]) -> None:
    claim_name, pod_name = names
    env.kube.delete(CORE["Pod"], pod_name, namespace, grace_period=0)
    env.kube.delete(dra("ResourceClaim"), claim_name, namespace)
    for item in slices:
        env.kube.delete(dra("ResourceSlice"), item["metadata"]["name"])
    wait_for(f"claim {namespace}/{claim_name} and the case's slices to be deleted",
             env.timeouts.deletion,
             lambda: (env.kube.get_or_none(dra("ResourceClaim"), claim_name, namespace) is None
                      and not [s for s in env.kube.list(dra("ResourceSlice"))
                               if s["spec"]["driver"] == c.DRIVER], None))


@settings(max_examples=EXAMPLES, deadline=None, derandomize=True, database=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
@given(case=c.cases)
def test_allocator_agrees_with_scheduler(draconf_env, differential, case):
    """DIFF-1: feasibility agrees, and the oracle accepts every scheduler allocation."""
    env = draconf_env
    namespace = differential["namespace"]
    number = next(_counter)
    claim_name, pod_name = f"claim-{number}", f"pod-{number}"
    slices = label_objects(c.slices(case, {}), env.run_id)
    claim = c.claim(case, claim_name)
    predicted = allocate({**claim, "metadata": {"name": claim_name, "namespace": namespace}},
                         slices, [c.device_class({})], [], differential["nodes"])
    for item in slices:
        env.kube.create(item)
    time.sleep(0.3)  # let the scheduler's informers see the slices before the pod
    try:
        [created_claim] = label_objects([claim], env.run_id)
        created_claim["metadata"]["namespace"] = namespace
        env.kube.create(created_claim)
        pod = label_objects([pod_for(pod_name, claim_name)], env.run_id)[0]
        pod["metadata"]["namespace"] = namespace
        env.kube.create(pod)
        allocated, detail = scheduler_verdict(env, namespace, claim_name, pod_name)
        record = {"case": case, "scheduler_allocated": allocated,
                  "allocator_allocated": predicted.allocated,
                  "allocator_reason": getattr(predicted, "reason", "")}
        with open(differential["results"] / "examples.jsonl", "a") as out:
            out.write(json.dumps(record) + "\n")
        if allocated != predicted.allocated:
            path = differential["results"] / f"disagreement-{number}.json"
            path.write_text(json.dumps(record, indent=2))
        assert allocated == predicted.allocated, (
            f"scheduler {'allocated' if allocated else 'could not allocate'} claim "
            f"{claim_name}, the allocator said "
            f"{'it can' if predicted.allocated else 'it cannot: ' + predicted.reason}; "
            f"scheduler detail: {detail if not allocated else 'allocated'}; case saved")
        if allocated:
            classes = {c.DEVICE_CLASS: c.device_class({})}
            violations = check_claim(detail, slices, classes, [])
            assert not violations, [str(v) for v in violations]
    finally:
        clean_up(env, namespace, (claim_name, pod_name), slices)

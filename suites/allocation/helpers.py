"""Building blocks of the allocation suite: claims, pods, and two verdicts to compare.

Every allocation the scheduler makes is checked by the oracle, and the
project's allocator must agree with the scheduler on whether it was possible.
"""

from __future__ import annotations

from typing import Any

from allocator.allocate import Outcome, allocate
from allocator.oracle import check_claim
from fixtures.environment import DEDICATED_TAINT, Environment
from fixtures.kube import CORE, dra
from fixtures.waits import wait_for
from fixtures.workloads import claim_summary, pod_phase_summary, recent_events

TOLERATE_ALL_ACCELERATORS = [
    {"key": "nvidia.com/gpu", "operator": "Exists", "effect": "NoSchedule"},
    {"key": "google.com/tpu", "operator": "Exists", "effect": "NoSchedule"},
    {"key": DEDICATED_TAINT["key"], "operator": "Exists", "effect": "NoSchedule"},
]
L4 = 'device.attributes["gpu.nvidia.com"].productName == "NVIDIA L4"'
T4 = 'device.attributes["gpu.nvidia.com"].productName == "Tesla T4"'


def exactly(device_class: str, count: int | None = 1, mode: str = "ExactCount",
            selectors: list[str] = (), admin_access: bool = False) -> dict[str, Any]:
    spec: dict[str, Any] = {"deviceClassName": device_class, "allocationMode": mode}
    if mode == "ExactCount":
        spec["count"] = count
    if selectors:
        spec["selectors"] = [{"cel": {"expression": e}} for e in selectors]
    if admin_access:
        spec["adminAccess"] = True
    return spec


def claim(name: str, requests: list[dict[str, Any]],
          constraints: list[dict[str, Any]] | None = None) -> dict[str, Any]:
    devices: dict[str, Any] = {"requests": requests}
    if constraints:
        devices["constraints"] = constraints
    return {"apiVersion": "resource.k8s.io/v1", "kind": "ResourceClaim",
            "metadata": {"name": name}, "spec": {"devices": devices}}


def pod(name: str, claims: dict[str, str], containers: int = 1) -> dict[str, Any]:
    """Return a pod whose containers all use every listed claim (pod claim name -> claim name)."""
    return {
        "apiVersion": "v1", "kind": "Pod",
        "metadata": {"name": name, "labels": {"app": name}},
        "spec": {
            "restartPolicy": "Always",
            "tolerations": TOLERATE_ALL_ACCELERATORS,
            "resourceClaims": [{"name": k, "resourceClaimName": v} for k, v in claims.items()],
            "containers": [{"name": f"ctr{i}", "image": "ubuntu:22.04",
                            "command": ["sh", "-c", "env; sleep infinity"],
                            "resources": {"claims": [{"name": k} for k in claims]}}
                           for i in range(containers)],
        },
    }


def predict(env: Environment, claim_obj: dict[str, Any], namespace: str) -> Outcome:
    """Ask the project's allocator about a claim, given the cluster as it is now."""
    namespace_obj = env.kube.get(CORE["Namespace"], namespace)
    others = [c for c in env.kube.list(dra("ResourceClaim"))
              if (c.get("status") or {}).get("allocation")]
    return allocate({**claim_obj, "metadata": {**claim_obj["metadata"], "namespace": namespace}},
                    env.kube.list(dra("ResourceSlice")), env.kube.list(dra("DeviceClass")),
                    others, env.kube.list(CORE["Node"]),
                    namespace_obj["metadata"].get("labels") or {})


def wait_allocated(env: Environment, namespace: str, name: str) -> dict[str, Any]:
    def probe() -> tuple[bool, Any]:
        current = env.kube.get(dra("ResourceClaim"), name, namespace)
        if (current.get("status") or {}).get("allocation"):
            return True, current
        return False, {"claim": claim_summary(current),
                       "pods": [pod_phase_summary(p) for p in env.kube.list(CORE["Pod"], namespace)],
                       "events": recent_events(env, namespace)}

    return wait_for(f"claim {namespace}/{name} to be allocated", env.timeouts.claim_allocated,
                    probe, env.timeouts.poll_interval)


def wait_unschedulable(env: Environment, namespace: str, pod_name: str,
                       reasons: tuple[str, ...] = ("Unschedulable",)) -> str:
    """Wait for the scheduler to give up on a pod; return its reason."""
    def probe() -> tuple[bool, Any]:
        current = env.kube.get(CORE["Pod"], pod_name, namespace)
        for condition in (current.get("status") or {}).get("conditions") or []:
            if condition["type"] == "PodScheduled" and condition.get("reason") in reasons:
                return True, condition.get("message", "")
        return False, {"pod": pod_phase_summary(current), "events": recent_events(env, namespace)}

    return wait_for(f"pod {namespace}/{pod_name} to be reported unschedulable",
                    env.timeouts.claim_allocated, probe, env.timeouts.poll_interval)


def wait_unschedulable_or_error(env: Environment, namespace: str, pod_name: str) -> str:
    """Like wait_unschedulable, also accepting the scheduler's SchedulerError (CEL failures)."""
    return wait_unschedulable(env, namespace, pod_name, ("Unschedulable", "SchedulerError"))


def oracle_violations(env: Environment, allocated: dict[str, Any]) -> list[str]:
    classes = {c["metadata"]["name"]: c for c in env.kube.list(dra("DeviceClass"))}
    return [str(v) for v in check_claim(allocated, env.kube.list(dra("ResourceSlice")), classes,
                                        env.kube.list(dra("ResourceClaim")))]


def results(allocated: dict[str, Any]) -> list[tuple[str, str, str]]:
    return sorted((r["request"], r["pool"], r["device"])
                  for r in allocated["status"]["allocation"]["devices"]["results"])

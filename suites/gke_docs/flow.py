"""Steps shared by the GKE GPU and TPU flows."""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

import pytest

from allocator.oracle import check_claim
from fixtures.environment import Environment
from fixtures.kube import CORE, KubeError, dra
from fixtures.manifest_versions import misplaced_request_fields, to_nested_layout
from fixtures.waits import wait_for
from fixtures.workloads import MANIFEST_DIR, Expectations, claim_state, claim_summary, \
    create_objects, generated_claim, load_manifests, pod_phase_summary, wait_for_running_pods

PAGE = "GKE: Deploy DRA workloads (deploy-dra-workloads)"
DOCS = MANIFEST_DIR / "gke_docs"
CLAIM_NAME_SUFFIX = r"-[a-z0-9]{5}"


@dataclass
class Rejection:
    status: int
    message: str
    misplaced: list[str]


def documented(name: str) -> dict[str, Any]:
    [obj] = load_manifests(DOCS / name)
    return obj


def try_documented_template(env: Environment, namespace: str, template: dict[str, Any]
                            ) -> Rejection | None:
    """Create the template exactly as documented; return the server's rejection, if any."""
    try:
        created = create_objects(env, namespace, [template])
    except KubeError as error:
        # The server's own words; draconf's layout explanation is in `misplaced`.
        message = getattr(error, "server_message", str(error))
        return Rejection(error.status, message, misplaced_request_fields(template))
    env.kube.delete(dra("ResourceClaimTemplate", "v1"), created[0]["metadata"]["name"],
                    namespace)
    return None


def check_rejection(rejection: Rejection | None, template: dict[str, Any]) -> None:
    """The documented form must be rejected, naming every misplaced field."""
    name = template["metadata"]["name"]
    assert rejection is not None, (
        f"ResourceClaimTemplate {name} as documented (apiVersion "
        f"{template['apiVersion']}, v1beta1 request layout) was accepted; a server that "
        "serves v1beta2 must reject it under strict field validation")
    assert rejection.status in (400, 422), f"unexpected HTTP status: {rejection.message}"
    for path in rejection.misplaced:
        field_name = path.rsplit(".", 1)[1]
        assert field_name in rejection.message, (
            f"the server's rejection of {name} does not name the misplaced field {path}:\n"
            f"{rejection.message}")


def defect_summary(template: dict[str, Any], rejection: Rejection) -> tuple[str, str]:
    name = template["metadata"]["name"]
    summary = (f"{name} is written as {template['apiVersion']} with the v1beta1 request layout; "
               f"the server rejects it (HTTP {rejection.status})")
    detail = (f"misplaced: {', '.join(rejection.misplaced)}; in v1beta2 and v1 these belong "
              f"under 'exactly:'. Server message: {rejection.message}")
    return summary, detail


def run_documented_flow(env: Environment, namespace: str, template_file: str,
                        deployment_file: str) -> "FlowState":
    """Apply the template in an accepted layout and the Deployment unchanged; wait for it."""
    template = documented(template_file)
    accepted = to_nested_layout(template)
    create_objects(env, namespace, [accepted])
    deployment = documented(deployment_file)
    create_objects(env, namespace, [deployment])
    selector = ",".join(f"{k}={v}" for k, v in
                        deployment["spec"]["selector"]["matchLabels"].items())
    [pod] = wait_for_running_pods(env, namespace, selector, deployment["spec"]["replicas"])
    pod_claim = pod["spec"]["resourceClaims"][0]["name"]
    claim = generated_claim(env, namespace, pod, pod_claim)
    claim = wait_for(f"claim {namespace}/{claim['metadata']['name']} to be allocated,reserved",
                     env.timeouts.claim_allocated,
                     lambda: _allocated(env, namespace, claim["metadata"]["name"]),
                     env.timeouts.poll_interval)
    stored_template = env.kube.get(dra("ResourceClaimTemplate"), template["metadata"]["name"],
                                   namespace)
    slices = env.kube.list(dra("ResourceSlice"))
    return FlowState(deployment["metadata"]["name"], pod, pod_claim, claim, stored_template,
                     slices)


def _allocated(env: Environment, namespace: str, name: str) -> tuple[bool, dict[str, Any]]:
    claim = env.kube.get(dra("ResourceClaim"), name, namespace)
    return claim_state(claim) == "allocated,reserved", claim


@dataclass
class FlowState:
    deployment: str
    pod: dict[str, Any]
    pod_claim: str
    claim: dict[str, Any]
    template: dict[str, Any]
    slices: list[dict[str, Any]]

    @property
    def pod_name(self) -> str:
        return self.pod["metadata"]["name"]

    @property
    def node(self) -> str:
        return self.pod["spec"]["nodeName"]


def check_generated_claim(env: Environment, state: FlowState, expect: Expectations) -> None:
    """The expectations every generated claim of the documented flows must meet."""
    claim, pod = state.claim, state.pod
    meta = claim["metadata"]
    status = claim.get("status") or {}
    pattern = re.escape(f"{state.pod_name}-{state.pod_claim}") + CLAIM_NAME_SUFFIX
    expect.check(f"claim name matches <pod>-<pod claim name>-<5 random> ({pattern})",
                 re.fullmatch(pattern, meta["name"]) is not None, meta["name"])
    expect.equal("claim state", claim_state(claim), "allocated,reserved")
    expect.equal("annotation resource.kubernetes.io/pod-claim-name",
                 (meta.get("annotations") or {}).get("resource.kubernetes.io/pod-claim-name"),
                 state.pod_claim)
    expect.check("finalizer resource.kubernetes.io/delete-protection",
                 "resource.kubernetes.io/delete-protection" in (meta.get("finalizers") or []),
                 meta.get("finalizers"))
    owners = [o for o in meta.get("ownerReferences") or [] if o.get("controller")]
    expect.equal("controlling owner", [(o["kind"], o["name"], o["uid"]) for o in owners],
                 [("Pod", state.pod_name, pod["metadata"]["uid"])])
    expect.equal("claim spec copied from the template", claim["spec"],
                 state.template["spec"]["spec"])
    selector = (status.get("allocation") or {}).get("nodeSelector") or {}
    expect.equal("allocation nodeSelector selects the node by metadata.name",
                 selector.get("nodeSelectorTerms"),
                 [{"matchFields": [{"key": "metadata.name", "operator": "In",
                                    "values": [state.node]}]}])
    expect.equal("reservedFor is the pod", status.get("reservedFor"),
                 [{"resource": "pods", "name": state.pod_name, "uid": pod["metadata"]["uid"]}])
    classes = {c["metadata"]["name"]: c for c in env.kube.list(dra("DeviceClass"))}
    others = env.kube.list(dra("ResourceClaim"))
    violations = check_claim(claim, state.slices, classes, others)
    expect.check("the oracle accepts the allocation", not violations,
                 [str(v) for v in violations])


def results_of(claim: dict[str, Any]) -> list[dict[str, Any]]:
    return ((claim.get("status") or {}).get("allocation") or {}).get("devices", {}).get(
        "results") or []


def kubectl_logs(env: Environment, namespace: str, deployment: str) -> str:
    """Read logs the documented way: kubectl logs deployment/... --all-pods=true."""
    result = env.kubectl_run("logs", f"deployment/{deployment}", "--all-pods=true",
                             "-n", namespace)
    if result.returncode != 0:
        raise AssertionError(f"kubectl logs deployment/{deployment} failed (exit "
                             f"{result.returncode}): {result.stderr.strip()}")
    return result.stdout


def wait_for_log(env: Environment, namespace: str, deployment: str, pattern: str) -> str:
    """Wait until the Deployment's logs contain a line matching ``pattern``."""
    compiled = re.compile(pattern, re.MULTILINE)
    return wait_for(f"a log line matching {pattern!r} from deployment {namespace}/{deployment}",
                    env.timeouts.log_line,
                    lambda: (lambda text: (compiled.search(text) is not None, text))(
                        kubectl_logs(env, namespace, deployment)),
                    1.0, tolerate=(AssertionError,))


def check_teardown(env: Environment, namespace: str, state: FlowState,
                   expect: Expectations) -> None:
    """Delete the Deployment: the pod goes, the claim goes, and the driver unprepared it."""
    env.kube.delete(CORE["Deployment"], state.deployment, namespace)
    claim_name = state.claim["metadata"]["name"]

    def gone() -> tuple[bool, Any]:
        pod = env.kube.get_or_none(CORE["Pod"], state.pod_name, namespace)
        claim = env.kube.get_or_none(dra("ResourceClaim"), claim_name, namespace)
        return pod is None and claim is None, {
            "pod": pod and pod_phase_summary(pod), "claim": claim and claim_summary(claim)}

    wait_for(f"pod {state.pod_name} and claim {claim_name} to be deleted with the Deployment",
             env.timeouts.deletion, gone, env.timeouts.poll_interval)
    expect.check("pod and generated claim removed after the Deployment is deleted", True)
    uid = state.claim["metadata"]["uid"]
    for node in env.local_nodes:
        if node.name != state.node:
            continue
        specs = [p.name for p in node.cdi_dir.glob(f"*{uid}*")]
        expect.check("the driver removed the claim's CDI spec (NodeUnprepareResources ran)",
                     not specs, specs)
        records = [p.name for p in (node.directory / "driver" / "prepared").glob(f"{uid}*")]
        expect.check("the driver holds no prepared record of the claim", not records, records)


GPU_PROFILE = "gke-t4-1"
TPU_PROFILE = "gke-tpu-v6e-8"
# Values the GKE page shows for a v6e node with a 2x4 topology.
DOCUMENTED_TPU_ENV = {
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


def require_profile(env: Environment, profile: str) -> None:
    if profile not in env.nodes:
        pytest.skip(f"the documented flow needs a node of profile {profile}; add it to --nodes")


def gpu_flow(env: Environment, namespace: str, teardown: bool = True,
             draw: Any = None) -> FlowState:
    """Run the documented GPU flow and check every expectation; raise listing each failure."""
    require_profile(env, GPU_PROFILE)
    state = run_documented_flow(env, namespace, "gpu-claim-template.yaml",
                                "gpu-deployment.yaml")
    node = env.node_for(GPU_PROFILE)
    expect = Expectations(f"GPU flow in namespace {namespace}")
    if draw is not None:
        draw(f"GPU flow, namespace {namespace}")

    check_generated_claim(env, state, expect)
    expect.equal("pod runs on the GPU node", state.node, node)
    expect.equal("allocation results",
                 [(r["request"], r["driver"], r["pool"], r["device"])
                  for r in results_of(state.claim)],
                 [("single-gpu", "gpu.nvidia.com", node, "gpu-0")])

    gpu = next(d for s in state.slices if s["spec"]["pool"]["name"] == node
               for d in s["spec"].get("devices") or [] if d["name"] == "gpu-0")
    uuid = gpu["attributes"]["uuid"]["string"]
    product = gpu["attributes"]["productName"]["string"]
    line = f"[pod/{state.pod_name}/ctr] GPU 0: {product} (UUID: {uuid})"
    logs = wait_for_log(env, namespace, state.deployment, re.escape(line))
    expect.check(f"logs show {line!r}", line in logs, logs)
    expect.check("logs never show 'Waiting...'", "Waiting..." not in logs, logs)
    if teardown:
        check_teardown(env, namespace, state, expect)
    expect.verify()
    return state


def tpu_flow(env: Environment, namespace: str, teardown: bool = True,
             claim_uid_variables: bool = True, draw: Any = None) -> FlowState:
    """Run the documented TPU flow and check every expectation; raise listing each failure.

    ``TPU_DEVICE_<n>_RESOURCE_CLAIM`` is checked only with ``claim_uid_variables``:
    the page shows it, but real GKE drivers may omit it.
    """
    require_profile(env, TPU_PROFILE)
    state = run_documented_flow(env, namespace, "tpu-claim-template.yaml",
                                "tpu-deployment.yaml")
    node = env.node_for(TPU_PROFILE)
    expect = Expectations(f"TPU flow in namespace {namespace}")
    if draw is not None:
        draw(f"TPU flow, namespace {namespace}")

    check_generated_claim(env, state, expect)
    expect.equal("pod runs on the TPU node", state.node, node)
    results = results_of(state.claim)
    expect.equal("allocation results: chips 0..7 of the node's pool",
                 sorted(((r["request"], r["driver"], r["pool"], r["device"]) for r in results),
                        key=lambda r: int(r[3])),
                 [("all-tpus", "tpu.google.com", node, str(chip)) for chip in range(8)])

    prefix = f"[pod/{state.pod_name}/ctr] "
    logs = wait_for_log(env, namespace, state.deployment, r"Sleeping indefinitely")
    expect.check("logs start with 'Environment Variables:'",
                 f"{prefix}Environment Variables:" in logs, logs)
    expected = dict(DOCUMENTED_TPU_ENV)
    if claim_uid_variables:
        claim_uid = state.claim["metadata"]["uid"]
        expected.update({f"TPU_DEVICE_{chip}_RESOURCE_CLAIM": claim_uid for chip in range(8)})
    problem = environment_problem(logs, prefix, expected)
    expect.check("every TPU variable reached the container with its documented value "
                 "(a Running pod and an allocated, reserved claim do not prove it)",
                 problem is None, problem)
    if teardown:
        check_teardown(env, namespace, state, expect)
    expect.verify()
    return state


def environment_problem(logs: str, prefix: str, expected: dict[str, str]) -> str | None:
    """Compare ``env`` output in the logs with the expected variables; describe differences."""
    seen = {}
    for line in logs.splitlines():
        key, sep, value = line.removeprefix(prefix).partition("=")
        if sep:
            seen[key] = value
    wrong = {k: v for k, v in expected.items() if seen.get(k) != v}
    if not wrong:
        return None
    had = sorted(f"{k}={v}" for k, v in seen.items() if k.startswith("TPU_"))
    return ("the container had: " + (", ".join(had) or "no TPU_ variables at all")
            + "\nexpected: " + ", ".join(f"{k}={v}" for k, v in wrong.items()))

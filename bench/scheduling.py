"""Pods with claims per second: node agents and drivers in the loop, against the scheduler alone.

Usage: python bench/scheduling.py [--nodes 100] [--pods 200] [--rounds 1]

Each round runs three fresh local control planes, side by side in one run:
- scheduler alone, twice: once with upstream's client request rates for the
  controller-manager and scheduler, once with the rate draconf sets. There are
  --nodes bare Nodes of profile gke-l4-8, with the labels and taints a node
  agent would set but no agent and no driver process; the driver's
  SlicePublisher publishes their pools once. Timed from creating the first pod
  until every pod is bound to a node with its claim allocated.
- in the loop: the full local backend with --nodes node agents and fake
  drivers. Timed from creating the first pod until every pod is Running: its
  claim prepared over the kubelet plugin gRPC protocol, its CDI edits applied,
  its container started and reported.
Each pod has its own claim from a one-GPU ResourceClaimTemplate. The bench
prints both rates, their ratio, where the in-the-loop time went (bound, then
Running), the CPU each kind of component used, and what an idle cluster of
that size costs, so that the harness's share shows.
"""

from __future__ import annotations

import argparse
import os
import re
import statistics
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from fake_devices.install import install_cluster_objects  # noqa: E402
from fake_devices.profiles import get_profile  # noqa: E402
from fake_devices.slices import SlicePublisher  # noqa: E402
from fixtures.binaries import ensure_binaries  # noqa: E402
from fixtures.environment import NodePool, Options, start_local  # noqa: E402
from fixtures.kube import CORE, Kube, dra, owned_labels  # noqa: E402
from fixtures.local_cluster import CLIENT_QPS, LocalCluster  # noqa: E402
from fixtures.timeouts import Timeouts  # noqa: E402
from fixtures.waits import wait_for  # noqa: E402

PROFILE = "gke-l4-8"
NAMESPACE = "bench"
WORKLOAD_TIMEOUT = 600.0  # seconds for every pod of one round to be bound or Running
SAMPLE_SECONDS = 0.2
IDLE_SECONDS = 10.0  # CPU of an idle cluster is sampled over this window after bring-up


def _process_table() -> dict[int, tuple[int, float]]:
    """Map pid -> (parent pid, CPU seconds of it and its reaped children)."""
    tick = os.sysconf("SC_CLK_TCK")
    table = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        table[int(entry.name)] = (int(fields[1]), sum(int(f) for f in fields[11:15]) / tick)
    return table


def cpu_by_component(components) -> dict[str, float]:
    """CPU seconds so far of each kind of component, with every process below it."""
    table = _process_table()
    children: dict[int, list[int]] = {}
    for pid, (parent, _) in table.items():
        children.setdefault(parent, []).append(pid)
    totals: dict[str, float] = {}
    for component in components:
        kind = re.sub(r"-gke-.*|-gpu-nvidia-com.*", "", component.name)
        stack, seconds = [component.pid], 0.0
        while stack:
            pid = stack.pop()
            seconds += table.get(pid, (0, 0.0))[1]
            stack.extend(children.get(pid, []))
        totals[kind] = totals.get(kind, 0.0) + seconds
    return totals


def cpu_delta(before: dict[str, float], after: dict[str, float]) -> dict[str, float]:
    return {kind: round(after[kind] - before.get(kind, 0.0), 1) for kind in after}


def prepare_namespace(kube: Kube, run_id: str) -> None:
    kube.create({"apiVersion": "v1", "kind": "Namespace",
                 "metadata": {"name": NAMESPACE, "labels": owned_labels(run_id)}})
    wait_for("the bench namespace's default service account", 30, lambda: (
        kube.get_or_none(CORE["ServiceAccount"], "default", NAMESPACE) is not None,
        "no default service account yet"))
    version = kube.newest_resource_version()
    kube.create({"apiVersion": f"resource.k8s.io/{version}", "kind": "ResourceClaimTemplate",
                 "metadata": {"name": "one-gpu", "namespace": NAMESPACE},
                 "spec": {"spec": {"devices": {"requests": [
                     {"name": "gpu", "exactly": {"deviceClassName": "gpu.nvidia.com"}}]}}}})


def pod(index: int) -> dict:
    return {"apiVersion": "v1", "kind": "Pod",
            "metadata": {"name": f"bench-{index:04d}", "namespace": NAMESPACE},
            "spec": {"terminationGracePeriodSeconds": 0,
                     "tolerations": [{"key": "nvidia.com/gpu", "operator": "Exists",
                                      "effect": "NoSchedule"}],
                     "resourceClaims": [{"name": "gpu", "resourceClaimTemplateName": "one-gpu"}],
                     "containers": [{"name": "c", "image": "none", "command": ["sleep", "600"],
                                     "resources": {"claims": [{"name": "gpu"}]}}]}}


def run_pods(kube: Kube, pods: int, until_running: bool) -> dict:
    """Create the pods; return seconds until all are bound (and Running, if asked)."""
    started = time.perf_counter()
    with ThreadPoolExecutor(max_workers=4) as pool:
        list(pool.map(lambda i: kube.create(pod(i)), range(pods)))
    created = time.perf_counter() - started
    marks: dict[str, float] = {"created": created}

    def probe() -> tuple[bool, str]:
        items = kube.list(CORE["Pod"], NAMESPACE)
        bound = sum(1 for p in items if p["spec"].get("nodeName"))
        running = sum(1 for p in items if (p.get("status") or {}).get("phase") == "Running")
        if bound == pods and "bound" not in marks:
            marks["bound"] = time.perf_counter() - started
        done = bound == pods and (not until_running or running == pods)
        return done, f"{bound} of {pods} bound, {running} Running"

    wait_for(f"{pods} pods to be {'Running' if until_running else 'bound'}", WORKLOAD_TIMEOUT,
             probe, SAMPLE_SECONDS)
    if until_running:
        marks["running"] = time.perf_counter() - started
    allocated = sum(1 for c in kube.list(dra("ResourceClaim"), NAMESPACE)
                    if (c.get("status") or {}).get("allocation"))
    if allocated != pods:
        raise SystemExit(f"{allocated} of {pods} claims allocated after every pod was bound")
    return marks


def scheduler_alone(binaries, scratch: Path, nodes: int, pods: int, index: int,
                    client_qps: float | None) -> dict:
    run_id = f"bench-sched-{index}-{'upstream' if client_qps is None else 'draconf'}"
    cluster = LocalCluster(run_id, binaries, scratch / f"logs-{run_id}", Timeouts(),
                           progress=lambda m: None, client_qps=client_qps)
    cluster.start()
    try:
        kube = cluster.kube()
        install_cluster_objects(kube, run_id)
        profile = get_profile(PROFILE)
        names = [profile.node_name(i) for i in range(nodes)]
        capacity = {"cpu": "8", "memory": "32Gi", "pods": "110"}

        def add_node(name: str) -> None:
            kube.create({"apiVersion": "v1", "kind": "Node",
                         "metadata": {"name": name,
                                      "labels": {**profile.labels(name), **owned_labels(run_id)}},
                         "spec": {"taints": profile.taints()}})
            kube.patch(CORE["Node"], name, {"status": {
                "allocatable": capacity, "capacity": capacity,
                "conditions": [{"type": "Ready", "status": "True", "reason": "Bench"}]}},
                subresource="status")
            SlicePublisher(kube, name, profile, run_id).publish()

        with ThreadPoolExecutor(max_workers=8) as pool:
            list(pool.map(add_node, names))
        prepare_namespace(kube, run_id)
        time.sleep(1)  # let the scheduler's informers see the slices
        cpu_before = cpu_by_component(cluster.components)
        marks = run_pods(kube, pods, until_running=False)
        marks["cpu"] = cpu_delta(cpu_before, cpu_by_component(cluster.components))
        return marks
    finally:
        cluster.stop()


def in_the_loop(scratch: Path, nodes: int, pods: int, index: int) -> dict[str, float]:
    run_id = f"bench-loop-{index}"
    options = Options(results_dir=scratch / run_id, run_id=run_id,
                      node_pools=(NodePool(PROFILE, nodes),),
                      timeouts=Timeouts(driver_ready=300.0))
    started = time.perf_counter()
    environment = start_local(options, lambda m: None)
    bring_up = time.perf_counter() - started
    try:
        components = environment.local.components
        cpu_before = cpu_by_component(components)
        time.sleep(IDLE_SECONDS)
        idle = cpu_delta(cpu_before, cpu_by_component(components))
        prepare_namespace(environment.kube, run_id)
        cpu_before = cpu_by_component(components)
        marks = run_pods(environment.kube, pods, until_running=True)
        marks["cpu"] = cpu_delta(cpu_before, cpu_by_component(components))
        marks["bring_up"] = bring_up
        marks["idle_cpu_share"] = {kind: round(seconds / IDLE_SECONDS, 3)
                                   for kind, seconds in idle.items()}
        print(f"round {index}: in the loop: {marks}", flush=True)
    finally:
        started = time.perf_counter()
        environment.stop()
        teardown = time.perf_counter() - started
    marks["teardown"] = teardown
    return marks


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--nodes", type=int, default=100)
    parser.add_argument("--pods", type=int, default=200)
    parser.add_argument("--rounds", type=int, default=1)
    args = parser.parse_args()
    gpus = get_profile(PROFILE).device_count
    if args.pods > args.nodes * gpus:
        parser.error(f"{args.pods} pods do not fit on {args.nodes} nodes of {gpus} GPUs")

    binaries = ensure_binaries(source="cache")
    upstream, alone, loop = [], [], []
    with tempfile.TemporaryDirectory(prefix="draconf-bench-", dir="/tmp") as scratch:
        for index in range(args.rounds):
            upstream.append(scheduler_alone(binaries, Path(scratch), args.nodes, args.pods,
                                            index, None))
            print(f"round {index}: scheduler alone, upstream client rates: {upstream[-1]}",
                  flush=True)
            alone.append(scheduler_alone(binaries, Path(scratch), args.nodes, args.pods, index,
                                         CLIENT_QPS))
            print(f"round {index}: scheduler alone: {alone[-1]}", flush=True)
            loop.append(in_the_loop(Path(scratch), args.nodes, args.pods, index))

    bound_upstream = statistics.median(m["bound"] for m in upstream)
    bound_alone = statistics.median(m["bound"] for m in alone)
    bound_loop = statistics.median(m["bound"] for m in loop)
    running = statistics.median(m["running"] for m in loop)

    print(f"{args.pods} pods with one-GPU claims on {args.nodes} nodes of {PROFILE}, "
          f"{args.rounds} round(s), medians:")
    print(f"  scheduler alone, upstream client rates (20/s controller-manager, 50/s "
          f"scheduler): {bound_upstream:.2f} s, {args.pods / bound_upstream:.1f} pods/s")
    print(f"  scheduler alone, draconf's client rate ({CLIENT_QPS:g}/s): {bound_alone:.2f} s, "
          f"{args.pods / bound_alone:.1f} pods/s ({bound_upstream / bound_alone:.2f}x)")
    print(f"  in the loop, bound and allocated:     {bound_loop:.2f} s, "
          f"{args.pods / bound_loop:.1f} pods/s")
    print(f"  in the loop, Running:                 {running:.2f} s, "
          f"{args.pods / running:.1f} pods/s")
    print(f"  in-the-loop Running rate / scheduler-alone rate: {bound_alone / running:.2f}x")

    idle = loop[-1]["idle_cpu_share"]
    print(f"  idle cluster, share of one core: {', '.join(f'{k} {v:.2f}' for k, v in idle.items())}"
          f" (total {sum(idle.values()):.2f}; last round)")
    print(f"  {args.nodes} node agents and drivers: bring-up "
          f"{statistics.median(m['bring_up'] for m in loop):.1f} s, teardown with the pods "
          f"{statistics.median(m['teardown'] for m in loop):.1f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""Fake driver costs on a real API server: slice publishing and prepare latency.

Usage: python bench/driver.py [--nodes 100] [--claims 200]

Starts the local control plane (no node agents), then
1. creates --nodes Nodes of profile gke-l4-8 (8 GPUs each) and publishes one
   ResourceSlice per node with the fake driver's SlicePublisher, once one node
   after another and once with 8 publishers in parallel (as 8 drivers would);
2. creates --claims ResourceClaims whose status names one GPU each, and calls
   NodePrepareResources and NodeUnprepareResources for each over the real gRPC
   protocol on a Unix socket, reporting p50 and p99 latencies.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from fake_devices.kubelet_plugin import FakeDriverPlugin  # noqa: E402
from fake_devices.profiles import get_profile  # noqa: E402
from fake_devices.slices import SlicePublisher  # noqa: E402
from fixtures.binaries import ensure_binaries  # noqa: E402
from fixtures.kube import CORE, dra  # noqa: E402
from fixtures.waits import wait_for  # noqa: E402
from fixtures.local_cluster import LocalCluster  # noqa: E402
from fixtures.node_agent import PluginWatcher  # noqa: E402
from fixtures.timeouts import Timeouts  # noqa: E402

PROFILE = "gke-l4-8"


def percentile(values: list[float], share: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(round(share * (len(ordered) - 1))))]


def create_nodes(kube, names: list[str]) -> None:
    profile = get_profile(PROFILE)
    for name in names:
        kube.create({"apiVersion": "v1", "kind": "Node",
                     "metadata": {"name": name, "labels": profile.labels(name)}})


def publish_all(kube, names: list[str], workers: int, run_id: str) -> float:
    profile = get_profile(PROFILE)
    started = time.perf_counter()
    with ThreadPoolExecutor(max_workers=workers) as pool:
        list(pool.map(lambda n: SlicePublisher(kube, n, profile, run_id).publish(), names))
    return time.perf_counter() - started


def remove_all(kube, names: list[str], run_id: str) -> None:
    profile = get_profile(PROFILE)
    for name in names:
        SlicePublisher(kube, name, profile, run_id).remove()


def bench_prepare(kube, node: str, claims: int, scratch: Path) -> tuple[list[float], list[float]]:
    profile = get_profile(PROFILE)
    kube.create({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "bench"}})
    # The resourceclaim controller drops reservations for pods that do not exist,
    # so every claim is reserved for one real (never scheduled) pod.
    wait_for("the default service account of namespace bench", 30,
             lambda: (kube.get_or_none(CORE["ServiceAccount"], "default", "bench") is not None,
                      None))
    pod = kube.create({"apiVersion": "v1", "kind": "Pod",
                       "metadata": {"name": "bench-pod", "namespace": "bench"},
                       "spec": {"nodeSelector": {"draconf.dev/never": "true"},
                                "containers": [{"name": "c", "image": "none",
                                                "command": ["true"]}]}})
    kubelet_dir = scratch / "kubelet"
    plugin = FakeDriverPlugin(kube, node, profile, kubelet_dir, scratch / "cdi",
                              scratch / "driver")
    plugin.start()
    watcher = PluginWatcher(kubelet_dir / "plugins_registry")
    watcher.scan()
    client = watcher.get(profile.driver)
    assert client is not None, "the plugin did not register"
    refs = []
    for index in range(claims):
        name = f"claim-{index}"
        claim = kube.create({
            "apiVersion": "resource.k8s.io/v1", "kind": "ResourceClaim",
            "metadata": {"name": name, "namespace": "bench"},
            "spec": {"devices": {"requests": [{"name": "gpu", "exactly": {
                "deviceClassName": "gpu.nvidia.com"}}]}}})
        claim["status"] = {
            "allocation": {"devices": {"results": [{
                "request": "gpu", "driver": profile.driver, "pool": node,
                "device": f"gpu-{index % profile.device_count}"}]}},
            "reservedFor": [{"resource": "pods", "name": "bench-pod",
                             "uid": pod["metadata"]["uid"]}]}
        kube.replace(claim, subresource="status")
        refs.append(("bench", claim["metadata"]["uid"], name))
    prepare, unprepare = [], []
    for ref in refs:
        started = time.perf_counter()
        response = client.call("NodePrepareResources", [ref])
        prepare.append(time.perf_counter() - started)
        assert not response.claims[ref[1]].error, response.claims[ref[1]].error
    for ref in refs:
        started = time.perf_counter()
        client.call("NodeUnprepareResources", [ref])
        unprepare.append(time.perf_counter() - started)
    watcher.close()
    plugin.stop()
    return prepare, unprepare


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--nodes", type=int, default=100)
    parser.add_argument("--claims", type=int, default=200)
    args = parser.parse_args()
    binaries = ensure_binaries(source="cache")
    with tempfile.TemporaryDirectory(prefix="draconf-bench-", dir="/tmp") as scratch:
        cluster = LocalCluster("bench-driver", binaries, Path(scratch) / "logs", Timeouts(),
                               progress=lambda m: None)
        cluster.start()
        try:
            kube = cluster.kube()
            profile = get_profile(PROFILE)
            names = [profile.node_name(i) for i in range(args.nodes)]
            create_nodes(kube, names)
            sequential = publish_all(kube, names, 1, "bench")
            slices = kube.list(dra("ResourceSlice"))
            devices = sum(len(s["spec"].get("devices") or []) for s in slices)
            remove_all(kube, names, "bench")
            parallel = publish_all(kube, names, 8, "bench")
            print(f"publish {args.nodes} slices x {profile.device_count} GPUs "
                  f"({devices} devices): one publisher {sequential:.2f} s "
                  f"({args.nodes / sequential:.0f} slices/s); 8 publishers {parallel:.2f} s "
                  f"({args.nodes / parallel:.0f} slices/s); ratio {sequential / parallel:.2f}x")
            prepare, unprepare = bench_prepare(kube, names[0], args.claims, Path(scratch))
            print(f"NodePrepareResources over gRPC ({args.claims} claims, one GPU each): "
                  f"p50 {percentile(prepare, 0.5) * 1000:.1f} ms, "
                  f"p99 {percentile(prepare, 0.99) * 1000:.1f} ms, "
                  f"mean {statistics.mean(prepare) * 1000:.1f} ms")
            print(f"NodeUnprepareResources: p50 {percentile(unprepare, 0.5) * 1000:.1f} ms, "
                  f"p99 {percentile(unprepare, 0.99) * 1000:.1f} ms; prepare/unprepare p50 "
                  f"ratio {percentile(prepare, 0.5) / percentile(unprepare, 0.5):.1f}x")
        finally:
            cluster.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""The project's allocator against the real kube-scheduler on the same inventories.

Usage: python bench/allocator.py [--nodes 100 1000] [--claims 200]

For each node count: start the local control plane, create the nodes (no
agents) and one ResourceSlice of 8 devices per node, then
- scheduler: create --claims pods, each with its own one-device claim, and
  time until every claim is allocated (claims per second);
- allocator: allocate the same claims in-process, each seeing the ones before
  it as in use (claims per second);
and report the ratio. Then time the oracle on one allocated claim against all
slices (at 1,000 nodes: 8,000 devices).
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from allocator.allocate import MatchCache, allocate  # noqa: E402
from allocator.model import build_inventory  # noqa: E402
from allocator.oracle import check_claim  # noqa: E402
from fixtures.binaries import ensure_binaries  # noqa: E402
from fixtures.kube import CORE, dra  # noqa: E402
from fixtures.local_cluster import LocalCluster  # noqa: E402
from fixtures.timeouts import Timeouts  # noqa: E402
from fixtures.waits import wait_for  # noqa: E402

DRIVER = "bench.draconf.dev"
CLASS = {"apiVersion": "resource.k8s.io/v1", "kind": "DeviceClass",
         "metadata": {"name": DRIVER},
         "spec": {"selectors": [{"cel": {"expression": f'device.driver == "{DRIVER}"'}}]}}


def inventory(nodes: int) -> tuple[list[str], list[dict]]:
    names = [f"bench-node-{i:04d}" for i in range(nodes)]
    slices = [{"apiVersion": "resource.k8s.io/v1", "kind": "ResourceSlice",
               "metadata": {"name": f"{name}-bench"},
               "spec": {"driver": DRIVER, "nodeName": name,
                        "pool": {"name": name, "generation": 1, "resourceSliceCount": 1},
                        "devices": [{"name": f"dev-{d}",
                                     "attributes": {"model": {"string": "x"}},
                                     "capacity": {"memory": {"value": "16Gi"}}}
                                    for d in range(8)]}} for name in names]
    return names, slices


def claim(index: int) -> dict:
    return {"apiVersion": "resource.k8s.io/v1", "kind": "ResourceClaim",
            "metadata": {"name": f"claim-{index}", "namespace": "bench"},
            "spec": {"devices": {"requests": [{"name": "one", "exactly": {
                "deviceClassName": DRIVER, "selectors": [{"cel": {"expression":
                    f'device.capacity["{DRIVER}"].memory.compareTo(quantity("8Gi")) >= 0'}}]}}]}}}


def pod(index: int) -> dict:
    return {"apiVersion": "v1", "kind": "Pod",
            "metadata": {"name": f"pod-{index}", "namespace": "bench"},
            "spec": {"tolerations": [{"operator": "Exists"}],
                     "resourceClaims": [{"name": "d", "resourceClaimName": f"claim-{index}"}],
                     "containers": [{"name": "c", "image": "none", "command": ["true"],
                                     "resources": {"claims": [{"name": "d"}]}}]}}


def scheduler_rate(kube, claims: int) -> float:
    for index in range(claims):
        kube.create(claim(index))
    started = time.perf_counter()
    for index in range(claims):
        kube.create(pod(index))

    def all_allocated():
        done = sum(1 for c in kube.list(dra("ResourceClaim"), "bench")
                   if (c.get("status") or {}).get("allocation"))
        return done == claims, f"{done} of {claims} allocated"

    wait_for("every claim to be allocated", 600, all_allocated, 0.2)
    return claims / (time.perf_counter() - started)


def allocator_rate(names: list[str], slices: list[dict], claims: int) -> tuple[float, dict]:
    cache = MatchCache()
    allocated: list[dict] = []
    started = time.perf_counter()
    inventory = build_inventory(slices)  # built once, as a long-running allocator would
    for index in range(claims):
        current = claim(index)
        outcome = allocate(current, inventory, [CLASS], allocated, names, cache=cache)
        assert outcome.allocated, outcome
        allocated.append({**current, "metadata": {**current["metadata"], "uid": str(index)},
                          "status": {"allocation": outcome.to_api()}})
    return claims / (time.perf_counter() - started), allocated[-1]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--nodes", type=int, nargs="+", default=[100, 1000])
    parser.add_argument("--claims", type=int, default=200)
    args = parser.parse_args()
    binaries = ensure_binaries(source="cache")
    for nodes in args.nodes:
        names, slices = inventory(nodes)
        with tempfile.TemporaryDirectory(prefix="draconf-bench-", dir="/tmp") as scratch:
            cluster = LocalCluster(f"bench-alloc-{nodes}", binaries, Path(scratch) / "logs",
                                   Timeouts(), progress=lambda m: None)
            cluster.start()
            try:
                kube = cluster.kube()
                for name in names:
                    kube.create({"apiVersion": "v1", "kind": "Node", "metadata": {"name": name}})
                    kube.patch(CORE["Node"], name, {"status": {
                        "allocatable": {"cpu": "8", "memory": "32Gi", "pods": "110"},
                        "capacity": {"cpu": "8", "memory": "32Gi", "pods": "110"},
                        "conditions": [{"type": "Ready", "status": "True",
                                        "reason": "Bench"}]}}, subresource="status")
                for item in slices:
                    kube.create(item)
                kube.create(CLASS)
                kube.create({"apiVersion": "v1", "kind": "Namespace",
                             "metadata": {"name": "bench"}})
                wait_for("the bench service account", 30, lambda: (
                    kube.get_or_none(CORE["ServiceAccount"], "default", "bench") is not None,
                    None))
                time.sleep(1)  # let the scheduler's informers list the slices
                scheduler = scheduler_rate(kube, args.claims)
            finally:
                cluster.stop()
        allocator, last = allocator_rate(names, slices, args.claims)
        print(f"{nodes} nodes x 8 devices, {args.claims} one-device claims: "
              f"kube-scheduler {scheduler:.1f} claims/s, allocator {allocator:.1f} claims/s, "
              f"allocator/scheduler {allocator / scheduler:.2f}x")
        started = time.perf_counter()
        rounds = 20
        for _ in range(rounds):
            violations = check_claim(last, slices, {DRIVER: CLASS}, [])
        assert not violations, violations
        print(f"oracle on one claim against {nodes * 8} devices: "
              f"{(time.perf_counter() - started) / rounds * 1000:.1f} ms per claim")
    return 0


if __name__ == "__main__":
    sys.exit(main())

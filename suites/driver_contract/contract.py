"""The driver contract: what every DRA driver's published pools must satisfy."""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass
from typing import Any

from fake_devices.profiles import Profile
from fixtures.kube import Kube, dra


@dataclass(frozen=True)
class ExpectedPool:
    node: str
    profile: Profile

    @property
    def unit(self) -> str:
        return "GPU(s)" if self.profile.kind == "gpu" else "TPU chip(s)"


def pool_findings(kube: Kube, expected: list[ExpectedPool]) -> list[str]:
    """Return one message per broken rule; an empty list when every pool is sound."""
    findings: list[str] = []
    slices = kube.list(dra("ResourceSlice"))
    for pool in expected:
        driver = pool.profile.driver
        mine = [s for s in slices
                if s["spec"].get("driver") == driver and s["spec"].get("nodeName") == pool.node]
        if not mine:
            findings.append(f"driver {driver} published no ResourceSlice for node {pool.node} "
                            f"(its profile {pool.profile.name} has {pool.profile.device_count} "
                            f"{pool.unit})")
            continue
        findings += _pool_name_findings(driver, pool, mine)
        findings += _generation_findings(driver, pool, mine)
        findings += _device_findings(driver, pool, mine)
    return findings


def _pool_name_findings(driver: str, pool: ExpectedPool, mine: list[dict[str, Any]]) -> list[str]:
    return [f"driver {driver}: ResourceSlice {s['metadata']['name']} of node {pool.node} names "
            f"pool {s['spec']['pool']['name']!r}; the pool of a node-local driver is named "
            f"after its node" for s in mine if s["spec"]["pool"]["name"] != pool.node]


def _newest(mine: list[dict[str, Any]]) -> tuple[int, list[dict[str, Any]]]:
    newest = max(s["spec"]["pool"].get("generation", 0) for s in mine)
    return newest, [s for s in mine if s["spec"]["pool"].get("generation", 0) == newest]


def _generation_findings(driver: str, pool: ExpectedPool, mine: list[dict[str, Any]]
                         ) -> list[str]:
    findings = []
    newest, current = _newest(mine)
    for stale in (s for s in mine if s not in current):
        findings.append(
            f"driver {driver} on node {pool.node}: ResourceSlice {stale['metadata']['name']} of "
            f"pool {pool.node} is at generation {stale['spec']['pool'].get('generation', 0)}, "
            f"older than the pool's generation {newest}; a driver must remove slices of old "
            "generations")
    counts = {s["spec"]["pool"].get("resourceSliceCount", 1) for s in current}
    if counts != {len(current)}:
        findings.append(
            f"driver {driver} on node {pool.node}: pool {pool.node} generation {newest} has "
            f"{len(current)} slice(s) ({', '.join(s['metadata']['name'] for s in current)}) but "
            f"resourceSliceCount says {sorted(counts)}")
    return findings


def _device_findings(driver: str, pool: ExpectedPool, mine: list[dict[str, Any]]) -> list[str]:
    findings = []
    _, current = _newest(mine)
    owners: dict[str, list[str]] = defaultdict(list)
    for item in current:
        for device in item["spec"].get("devices") or []:
            owners[device["name"]].append(item["metadata"]["name"])
    names = ", ".join(s["metadata"]["name"] for s in current)
    expected = pool.profile.device_count
    if not owners:
        findings.append(
            f"driver {driver} on node {pool.node}: pool {pool.node} (ResourceSlice {names}) has "
            f"no devices, while the node's profile {pool.profile.name} has {expected} "
            f"{pool.unit}")
        return findings
    for device, slices in sorted(owners.items()):
        if len(slices) > 1:
            findings.append(f"driver {driver} on node {pool.node}: device {device} is listed "
                            f"{len(slices)} times in pool {pool.node} "
                            f"(ResourceSlices {', '.join(slices)})")
    if len(owners) != expected:
        findings.append(f"driver {driver} on node {pool.node}: pool {pool.node} has "
                        f"{len(owners)} distinct device(s), while the node's profile "
                        f"{pool.profile.name} has {expected} {pool.unit}")
    return findings


def restart_findings(states: list[dict[str, Any]]) -> list[str]:
    """Name each fake driver instance that crashed and was restarted."""
    return [f"driver {s['driver']} on node {s['node']} crashed and was restarted "
            f"{s['restarts_after_crash']} time(s); claims it was preparing may be half done"
            for s in states if s.get("restarts_after_crash")]

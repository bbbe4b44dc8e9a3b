"""ResourceSlice publishing: one pool per node, named after the node."""

from __future__ import annotations

import copy
import logging
from typing import Any

from fake_devices.profiles import Profile
from fixtures.kube import CORE, Kube, NotFound, dra, owned_labels

log = logging.getLogger("draconf.slices")


def slice_name(node: str, driver: str) -> str:
    return f"{node}-{driver.replace('.', '-')}"


def devices_for_version(devices: list[dict[str, Any]], version: str) -> list[dict[str, Any]]:
    """Lay out v1 Device objects for ``version``: v1beta1 nests them under ``basic``."""
    if version != "v1beta1":
        return copy.deepcopy(devices)
    converted = []
    for device in devices:
        basic = {key: value for key, value in device.items() if key != "name"}
        converted.append({"name": device["name"], "basic": copy.deepcopy(basic)})
    return converted


def build_slice(node: str, node_uid: str, profile: Profile, version: str, generation: int,
                run_id: str, devices: list[dict[str, Any]] | None = None) -> dict[str, Any]:
    if devices is None:
        devices = profile.devices(node)
    return {
        "apiVersion": f"resource.k8s.io/{version}",
        "kind": "ResourceSlice",
        "metadata": {
            "name": slice_name(node, profile.driver),
            "labels": owned_labels(run_id),
            "ownerReferences": [{"apiVersion": "v1", "kind": "Node", "name": node,
                                 "uid": node_uid, "controller": True}],
        },
        "spec": {
            "driver": profile.driver,
            "nodeName": node,
            "pool": {"name": node, "generation": generation, "resourceSliceCount": 1},
            "devices": devices_for_version(devices, version),
        },
    }


class SlicePublisher:
    """Keeps the node's ResourceSlices in line with its inventory (and the active fault)."""

    def __init__(self, kube: Kube, node: str, profile: Profile, run_id: str):
        self.kube = kube
        self.node = node
        self.profile = profile
        self.run_id = run_id
        self.version = kube.newest_resource_version()
        self.resource = dra("ResourceSlice", self.version)

    def _mine(self) -> list[dict[str, Any]]:
        return self.kube.list(self.resource, field_selector=(
            f"spec.nodeName={self.node},spec.driver={self.profile.driver}"))

    def publish(self, fault: str = "none") -> list[dict[str, Any]]:
        """Publish the pool; bump its generation whenever the published devices change."""
        node = self.kube.get(CORE["Node"], self.node)
        uid = node["metadata"]["uid"]
        existing = {s["metadata"]["name"]: s for s in self._mine()}
        generation = max((s["spec"]["pool"].get("generation", 0) for s in existing.values()),
                         default=0)
        wanted = self._wanted(uid, fault, generation)
        if self._same_devices(existing, wanted):
            return list(existing.values())
        current = max(generation + 1, 2 if fault == "stale-pool-generation" else 1)
        for obj in wanted:
            stale = obj["metadata"]["name"].endswith("-stale")
            obj["spec"]["pool"]["generation"] = current - 1 if stale else current
        published = []
        for obj in wanted:
            stored = existing.pop(obj["metadata"]["name"], None)
            if stored is None:
                published.append(self.kube.create(obj))
            else:
                obj["metadata"]["resourceVersion"] = stored["metadata"]["resourceVersion"]
                published.append(self.kube.replace(obj))
        for leftover in existing:
            self.kube.delete(self.resource, leftover)
        log.info("published %d ResourceSlice(s) for pool %s, generation %d, %d device(s) "
                 "(%s, fault %s)", len(published), self.node, current,
                 sum(len(p["spec"].get("devices") or []) for p in published), self.version,
                 fault)
        return published

    @staticmethod
    def _same_devices(existing: dict[str, dict[str, Any]], wanted: list[dict[str, Any]]) -> bool:
        if sorted(existing) != sorted(w["metadata"]["name"] for w in wanted):
            return False
        return all(existing[w["metadata"]["name"]]["spec"].get("devices", []) ==
                   w["spec"]["devices"] and
                   existing[w["metadata"]["name"]]["spec"]["pool"].get("resourceSliceCount") ==
                   w["spec"]["pool"]["resourceSliceCount"] for w in wanted)

    def _wanted(self, node_uid: str, fault: str, generation: int) -> list[dict[str, Any]]:
        name = slice_name(self.node, self.profile.driver)
        devices = [] if fault == "empty-slice" else None
        main = build_slice(self.node, node_uid, self.profile, self.version, generation,
                           self.run_id, devices)
        if fault == "duplicate-device-names":
            second = build_slice(self.node, node_uid, self.profile, self.version, generation,
                                 self.run_id)
            second["metadata"]["name"] = f"{name}-b"
            for obj in (main, second):
                obj["spec"]["pool"]["resourceSliceCount"] = 2
            return [main, second]
        if fault == "stale-pool-generation":
            stale = build_slice(self.node, node_uid, self.profile, self.version,
                                max(generation, 1), self.run_id)
            stale["metadata"]["name"] = f"{name}-stale"
            return [main, stale]
        return [main]

    def remove(self) -> None:
        for item in self._mine():
            try:
                self.kube.delete(self.resource, item["metadata"]["name"])
                log.info("removed ResourceSlice %s", item["metadata"]["name"])
            except NotFound:
                pass

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
    """Keeps the node's ResourceSlice in line with its inventory."""

    def __init__(self, kube: Kube, node: str, profile: Profile, run_id: str):
        self.kube = kube
        self.node = node
        self.profile = profile
        self.run_id = run_id
        self.version = kube.newest_resource_version()
        self.resource = dra("ResourceSlice", self.version)

    def publish(self, devices: list[dict[str, Any]] | None = None) -> dict[str, Any]:
        """Create or update the slice; bump the pool generation when devices change."""
        node = self.kube.get(CORE["Node"], self.node)
        name = slice_name(self.node, self.profile.driver)
        existing = self.kube.get_or_none(self.resource, name)
        wanted = build_slice(self.node, node["metadata"]["uid"], self.profile, self.version,
                             1, self.run_id, devices)
        if existing is None:
            created = self.kube.create(wanted)
            log.info("published ResourceSlice %s (%d devices, pool %s, generation 1, %s)",
                     name, len(wanted["spec"]["devices"]), self.node, self.version)
            return created
        generation = existing["spec"]["pool"].get("generation", 0)
        if existing["spec"].get("devices", []) == wanted["spec"]["devices"]:
            return existing
        wanted["spec"]["pool"]["generation"] = generation + 1
        wanted["metadata"]["resourceVersion"] = existing["metadata"]["resourceVersion"]
        updated = self.kube.replace(wanted)
        log.info("updated ResourceSlice %s to pool generation %d", name, generation + 1)
        return updated

    def remove(self) -> None:
        try:
            self.kube.delete(self.resource, slice_name(self.node, self.profile.driver))
            log.info("removed ResourceSlice %s", slice_name(self.node, self.profile.driver))
        except NotFound:
            pass

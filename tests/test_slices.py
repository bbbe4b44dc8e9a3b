"""Unit tests of ResourceSlice publishing and of picking the resource.k8s.io version.

SlicePublisher talks to SliceKube, an in-memory stand-in for
fixtures.kube.Kube that stores ResourceSlices by name, filters lists by field
selector and checks resourceVersion on replace, as the API server does.
"""

from __future__ import annotations

import copy
import logging
from typing import Any

import pytest

from fake_devices.profiles import get_profile
from fake_devices.slices import SlicePublisher
from fixtures.kube import CORE, Conflict, Kube, KubeError, NotFound, Resource, dra

PROFILE = get_profile("gke-t4-1")
NODE = PROFILE.node_name(0)
NODE_UID = "uid-of-the-node"
RUN_ID = "run-1234"
SLICE = f"{NODE}-gpu-nvidia-com"


class SliceKube:
    """In-memory stand-in for fixtures.kube.Kube that stores one Node and ResourceSlices."""

    def __init__(self, version: str = "v1"):
        self.version = version
        self.nodes = {NODE: {"apiVersion": "v1", "kind": "Node",
                             "metadata": {"name": NODE, "uid": NODE_UID}}}
        self.slices: dict[str, dict[str, Any]] = {}
        self.writes: list[tuple[str, str]] = []
        self.listed: list[Resource] = []
        self._resource_version = 0

    def newest_resource_version(self) -> str:
        return self.version

    def get(self, resource: Resource, name: str, namespace: str | None = None
            ) -> dict[str, Any]:
        assert resource == CORE["Node"], f"unexpected get of {resource}"
        if name not in self.nodes:
            raise NotFound(f"nodes {name} not found", status=404)
        return copy.deepcopy(self.nodes[name])

    def list(self, resource: Resource, namespace: str | None = None,
             label_selector: str | None = None, field_selector: str | None = None
             ) -> list[dict[str, Any]]:
        self.listed.append(resource)
        selected = dict(term.split("=", 1) for term in (field_selector or "").split(",") if term)
        items = []
        for obj in self.slices.values():
            fields = {"spec.nodeName": obj["spec"].get("nodeName"),
                      "spec.driver": obj["spec"].get("driver")}
            if all(fields[key] == value for key, value in selected.items()):
                items.append(copy.deepcopy(obj))
        return items

    def _store(self, obj: dict[str, Any]) -> dict[str, Any]:
        self._resource_version += 1
        stored = copy.deepcopy(obj)
        stored["metadata"]["resourceVersion"] = str(self._resource_version)
        self.slices[stored["metadata"]["name"]] = stored
        return copy.deepcopy(stored)

    def create(self, obj: dict[str, Any]) -> dict[str, Any]:
        name = obj["metadata"]["name"]
        if name in self.slices:
            raise Conflict(f"resourceslices {name} already exists", status=409)
        self.writes.append(("create", name))
        return self._store(obj)

    def replace(self, obj: dict[str, Any]) -> dict[str, Any]:
        name = obj["metadata"]["name"]
        if name not in self.slices:
            raise NotFound(f"resourceslices {name} not found", status=404)
        stored_version = self.slices[name]["metadata"]["resourceVersion"]
        if obj["metadata"].get("resourceVersion") != stored_version:
            raise Conflict(f"resourceslices {name}: resourceVersion "
                           f"{obj['metadata'].get('resourceVersion')} is not {stored_version}",
                           status=409)
        self.writes.append(("replace", name))
        return self._store(obj)

    def delete(self, resource: Resource, name: str, namespace: str | None = None) -> None:
        # Like fixtures.kube.Kube.delete, a missing object is not an error.
        self.writes.append(("delete", name))
        self.slices.pop(name, None)

    def add_foreign(self, name: str, node: str, driver: str) -> None:
        """Store a slice that another node or driver published."""
        self._store({"apiVersion": f"resource.k8s.io/{self.version}", "kind": "ResourceSlice",
                     "metadata": {"name": name},
                     "spec": {"driver": driver, "nodeName": node,
                              "pool": {"name": node, "generation": 7,
                                       "resourceSliceCount": 1},
                              "devices": []}})

    def node_slices(self) -> dict[str, dict[str, Any]]:
        return {name: obj for name, obj in self.slices.items()
                if obj["spec"]["nodeName"] == NODE and obj["spec"]["driver"] == PROFILE.driver}


@pytest.fixture
def kube() -> SliceKube:
    return SliceKube()


@pytest.fixture
def publisher(kube: SliceKube) -> SlicePublisher:
    return SlicePublisher(kube, NODE, PROFILE, RUN_ID)


def generation(obj: dict[str, Any]) -> int:
    return obj["spec"]["pool"]["generation"]


def device_names(obj: dict[str, Any]) -> list[str]:
    return [device["name"] for device in obj["spec"]["devices"]]


# First publish.

def test_publish_first_one_slice(publisher: SlicePublisher, kube: SliceKube):
    publisher.publish()

    assert list(kube.slices) == [SLICE]
    assert kube.writes == [("create", SLICE)]


def test_publish_first_pool(publisher: SlicePublisher, kube: SliceKube):
    publisher.publish()

    assert kube.slices[SLICE]["spec"]["pool"] == {
        "name": NODE, "generation": 1, "resourceSliceCount": 1}


def test_publish_first_node_and_driver(publisher: SlicePublisher, kube: SliceKube):
    publisher.publish()

    spec = kube.slices[SLICE]["spec"]
    assert spec["nodeName"] == NODE
    assert spec["driver"] == "gpu.nvidia.com"


def test_publish_first_owner_reference(publisher: SlicePublisher, kube: SliceKube):
    publisher.publish()

    assert kube.slices[SLICE]["metadata"]["ownerReferences"] == [
        {"apiVersion": "v1", "kind": "Node", "name": NODE, "uid": NODE_UID,
         "controller": True}]


def test_publish_first_ownership_labels(publisher: SlicePublisher, kube: SliceKube):
    publisher.publish()

    labels = kube.slices[SLICE]["metadata"]["labels"]
    assert labels["app.kubernetes.io/managed-by"] == "draconf"
    assert labels["draconf.dev/run-id"] == RUN_ID


def test_publish_first_devices(publisher: SlicePublisher, kube: SliceKube):
    publisher.publish()

    assert kube.slices[SLICE]["spec"]["devices"] == PROFILE.devices(NODE)
    assert device_names(kube.slices[SLICE]) == ["gpu-0"]


def test_publish_first_logs_generation(publisher: SlicePublisher,
                                       caplog: pytest.LogCaptureFixture):
    caplog.set_level(logging.INFO, logger="draconf.slices")

    publisher.publish()

    assert caplog.messages == [
        f"published 1 ResourceSlice(s) for pool {NODE}, generation 1, 1 device(s) "
        "(v1, fault none)"]


def test_publish_change_logs_generation(publisher: SlicePublisher,
                                        caplog: pytest.LogCaptureFixture):
    publisher.publish()
    caplog.set_level(logging.INFO, logger="draconf.slices")

    publisher.publish("empty-slice")

    assert caplog.messages == [
        f"published 1 ResourceSlice(s) for pool {NODE}, generation 2, 0 device(s) "
        "(v1, fault empty-slice)"]


# Republishing.

def test_publish_unchanged_keeps_generation(publisher: SlicePublisher, kube: SliceKube):
    publisher.publish()

    returned = publisher.publish()

    assert generation(kube.slices[SLICE]) == 1
    assert kube.writes == [("create", SLICE)]
    assert [obj["metadata"]["name"] for obj in returned] == [SLICE]


def test_publish_empty_slice(publisher: SlicePublisher, kube: SliceKube):
    publisher.publish()

    publisher.publish("empty-slice")

    assert list(kube.slices) == [SLICE]
    assert generation(kube.slices[SLICE]) == 2
    assert kube.slices[SLICE]["spec"]["devices"] == []
    assert kube.writes[-1] == ("replace", SLICE)


def test_publish_duplicate_device_names(publisher: SlicePublisher, kube: SliceKube):
    publisher.publish()

    publisher.publish("duplicate-device-names")

    slices = kube.node_slices()
    assert sorted(slices) == [SLICE, f"{SLICE}-b"]
    for name, obj in slices.items():
        assert obj["spec"]["pool"]["name"] == NODE, name
        assert obj["spec"]["pool"]["resourceSliceCount"] == 2, name
        assert generation(obj) == 2, name
        assert device_names(obj) == ["gpu-0"], name


@pytest.mark.parametrize("before", [[], ["none"]], ids=["first-publish", "after-none"])
def test_publish_stale_pool_generation(publisher: SlicePublisher, kube: SliceKube,
                                       before: list[str]):
    for fault in before:
        publisher.publish(fault)

    publisher.publish("stale-pool-generation")

    slices = kube.node_slices()
    assert sorted(slices) == [SLICE, f"{SLICE}-stale"]
    assert generation(slices[f"{SLICE}-stale"]) == generation(slices[SLICE]) - 1
    assert generation(slices[SLICE]) == 2
    assert device_names(slices[f"{SLICE}-stale"]) == ["gpu-0"]


@pytest.mark.parametrize("fault", ["duplicate-device-names", "stale-pool-generation",
                                   "empty-slice"])
def test_publish_back_to_none(publisher: SlicePublisher, kube: SliceKube, fault: str):
    publisher.publish(fault)
    faulty_generation = max(generation(obj) for obj in kube.node_slices().values())

    publisher.publish("none")

    assert list(kube.node_slices()) == [SLICE]
    assert kube.slices[SLICE]["spec"]["pool"]["resourceSliceCount"] == 1
    assert generation(kube.slices[SLICE]) == faulty_generation + 1
    assert device_names(kube.slices[SLICE]) == ["gpu-0"]


def test_publish_leaves_foreign_slices(publisher: SlicePublisher, kube: SliceKube):
    kube.add_foreign("other-node-slice", "gke-other-node", PROFILE.driver)
    kube.add_foreign("other-driver-slice", NODE, "tpu.google.com")

    publisher.publish("duplicate-device-names")
    publisher.publish("none")

    assert sorted(kube.slices) == sorted(["other-driver-slice", "other-node-slice", SLICE])
    assert kube.listed == [dra("ResourceSlice", "v1")] * 2


# Removal.

def test_remove_deletes_node_slices(publisher: SlicePublisher, kube: SliceKube):
    kube.add_foreign("other-node-slice", "gke-other-node", PROFILE.driver)
    publisher.publish("duplicate-device-names")

    publisher.remove()

    assert kube.node_slices() == {}
    assert list(kube.slices) == ["other-node-slice"]


def test_remove_nothing_published(publisher: SlicePublisher, kube: SliceKube):
    publisher.remove()

    assert kube.writes == []


# API versions.

@pytest.mark.parametrize("version", ["v1", "v1beta2", "v1beta1"])
def test_publish_api_version(version: str):
    kube = SliceKube(version)

    SlicePublisher(kube, NODE, PROFILE, RUN_ID).publish()

    assert kube.slices[SLICE]["apiVersion"] == f"resource.k8s.io/{version}"
    assert kube.listed == [dra("ResourceSlice", version)]


def test_publish_v1beta1_nests_basic():
    kube = SliceKube("v1beta1")

    SlicePublisher(kube, NODE, PROFILE, RUN_ID).publish()

    expected = PROFILE.devices(NODE)[0]
    device = kube.slices[SLICE]["spec"]["devices"][0]
    assert device["name"] == "gpu-0"
    assert device["basic"]["attributes"] == expected["attributes"]
    assert device["basic"]["capacity"] == expected["capacity"]
    assert sorted(device) == ["basic", "name"]


def test_publish_v1beta1_unchanged_keeps_generation():
    kube = SliceKube("v1beta1")
    publisher = SlicePublisher(kube, NODE, PROFILE, RUN_ID)
    publisher.publish()

    publisher.publish()

    assert generation(kube.slices[SLICE]) == 1
    assert kube.writes == [("create", SLICE)]


# fixtures.kube.Kube.newest_resource_version, without a server.

SERVER = "https://apiserver.invalid"


def offline_kube(served: list[str]) -> Kube:
    """Build a Kube whose discovery response is already cached, so it sends no request."""
    kube = Kube.__new__(Kube)
    kube.server = SERVER
    kube._served = {"resource.k8s.io": served}
    return kube


NEWEST = {
    "all-three": (["v1beta1", "v1beta2", "v1"], "v1"),
    "betas": (["v1beta1", "v1beta2"], "v1beta2"),
    "v1beta1-only": (["v1beta1"], "v1beta1"),
    "with-alpha": (["v1alpha3", "v1beta1"], "v1beta1"),
}


@pytest.mark.parametrize("case", list(NEWEST))
def test_newest_resource_version(case: str):
    served, expected = NEWEST[case]

    assert offline_kube(served).newest_resource_version() == expected


def test_newest_resource_version_unsupported():
    with pytest.raises(KubeError) as raised:
        offline_kube(["v1alpha3"]).newest_resource_version()

    message = str(raised.value)
    assert "v1alpha3" in message
    assert SERVER in message
    assert "v1, v1beta2, v1beta1" in message


def test_newest_resource_version_none_served():
    with pytest.raises(KubeError, match="it serves none"):
        offline_kube([]).newest_resource_version()

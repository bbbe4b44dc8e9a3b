"""Unit tests of allocator/model.py: pools, generations and where devices are available."""

from __future__ import annotations

from typing import Any

import pytest

from allocator.model import InventoryError, Node, build_inventory, node_selector_matches
from fake_devices.profiles import GPU_DRIVER, get_profile
from fake_devices.slices import devices_for_version

NODE = "node-a"


def make_slice(name: str = "s1", *, generation: int = 1, count: int = 1,
               devices: list[dict[str, Any]] | None = None, version: str = "v1",
               **placement: Any) -> dict[str, Any]:
    devices = get_profile("gke-t4-2").devices(NODE) if devices is None else devices
    spec: dict[str, Any] = {"driver": GPU_DRIVER,
                            "pool": {"name": "pool", "generation": generation,
                                     "resourceSliceCount": count},
                            "devices": devices_for_version(devices, version)}
    spec.update(placement or {"nodeName": NODE})
    return {"metadata": {"name": name}, "spec": spec}


def test_device_fields():
    inventory = build_inventory([make_slice()])

    device = inventory.devices()[0]

    assert (device.driver, device.pool, device.name) == (GPU_DRIVER, "pool", "gpu-0")
    assert device.node == NODE
    assert device.slice_name == "s1"
    assert device.attributes["productName"] == {"string": "Tesla T4"}
    assert device.capacity["memory"] == {"value": "16Gi"}
    assert device.attribute("gpu.nvidia.com/productName") == ("string", "Tesla T4")
    assert device.attribute("resource.kubernetes.io/pcieRoot") == ("string", "pci0000:00")
    assert device.attribute("other.example.com/productName") is None


def test_v1beta1_devices_read():
    device = build_inventory([make_slice(version="v1beta1")]).devices()[0]

    assert device.capacity["memory"] == {"value": "16Gi"}
    assert device.attribute("gpu.nvidia.com/cudaComputeCapability") == ("version", "7.5.0")


def test_newest_generation_only():
    old = make_slice("old", generation=1)
    new = make_slice("new", generation=2, devices=get_profile("gke-t4-1").devices(NODE))

    inventory = build_inventory([new, old])

    assert [d.name for d in inventory.devices()] == ["gpu-0"]
    assert inventory.pools[(GPU_DRIVER, "pool")].slice_names == ["new"]


def test_incomplete_pool():
    inventory = build_inventory([make_slice(count=2)])

    pool = inventory.pools[(GPU_DRIVER, "pool")]

    assert pool.incomplete and not pool.allocatable
    assert pool.problem.startswith("pool gpu.nvidia.com/pool is incomplete: 1 ResourceSlice(s) "
                                   "of generation 1 are published but resourceSliceCount is 2")
    assert inventory.devices() == []
    assert len(inventory.devices(allocatable_only=False)) == 2


def test_complete_pool_of_two_slices():
    first = make_slice("a", count=2, devices=get_profile("gke-t4-1").devices(NODE))
    second_devices = get_profile("gke-t4-2").devices(NODE)[1:]
    second = make_slice("b", count=2, devices=second_devices)

    inventory = build_inventory([first, second])

    assert [d.name for d in inventory.devices()] == ["gpu-0", "gpu-1"]


def test_invalid_pool_repeated_name():
    inventory = build_inventory([make_slice("a", count=2), make_slice("b", count=2)])

    pool = inventory.pools[(GPU_DRIVER, "pool")]

    assert pool.invalid and not pool.allocatable
    assert "device names repeat: gpu-0 (in a and b), gpu-1 (in a and b)" in pool.problem
    assert inventory.devices() == []


def test_all_nodes_available_everywhere():
    device = build_inventory([make_slice(allNodes=True)]).devices()[0]

    assert device.node is None
    assert device.available_on(Node("anything"))
    assert device.available_on(Node("other", {"a": "b"}))


def test_node_local_only_on_its_node():
    device = build_inventory([make_slice()]).devices()[0]

    assert device.available_on(Node(NODE))
    assert not device.available_on(Node("node-b"))


def test_node_selector_pool():
    selector = {"nodeSelectorTerms": [{"matchExpressions": [
        {"key": "pool", "operator": "In", "values": ["gpu"]}]}]}

    device = build_inventory([make_slice(nodeSelector=selector)]).devices()[0]

    assert device.node is None
    assert device.available_on(Node("x", {"pool": "gpu"}))
    assert not device.available_on(Node("y", {"pool": "cpu"}))


def test_per_device_node_selection():
    devices = get_profile("gke-t4-2").devices(NODE)
    devices[0]["nodeName"] = "node-b"
    devices[1]["allNodes"] = True

    found = build_inventory([make_slice(devices=devices, perDeviceNodeSelection=True)]).devices()

    assert [(d.name, d.node, d.all_nodes) for d in found] == [("gpu-0", "node-b", False),
                                                            ("gpu-1", None, True)]


@pytest.mark.parametrize("requirement, labels, expected", [
    ({"key": "a", "operator": "In", "values": ["1"]}, {"a": "1"}, True),
    ({"key": "a", "operator": "In", "values": ["1"]}, {"a": "2"}, False),
    ({"key": "a", "operator": "NotIn", "values": ["1"]}, {}, True),
    ({"key": "a", "operator": "NotIn", "values": ["1"]}, {"a": "1"}, False),
    ({"key": "a", "operator": "Exists"}, {"a": ""}, True),
    ({"key": "a", "operator": "DoesNotExist"}, {"a": ""}, False),
    ({"key": "a", "operator": "Gt", "values": ["3"]}, {"a": "4"}, True),
    ({"key": "a", "operator": "Lt", "values": ["3"]}, {"a": "4"}, False),
    ({"key": "a", "operator": "Gt", "values": ["3"]}, {"a": "x"}, False),
])
def test_node_selector_operators(requirement: dict[str, Any], labels: dict[str, str],
                                 expected: bool):
    selector = {"nodeSelectorTerms": [{"matchExpressions": [requirement]}]}

    assert node_selector_matches(selector, Node("n", labels)) is expected


def test_node_selector_match_fields_and_terms():
    by_name = {"nodeSelectorTerms": [
        {"matchFields": [{"key": "metadata.name", "operator": "In", "values": ["x"]}]},
        {"matchExpressions": [{"key": "zone", "operator": "In", "values": ["b"]}]}]}

    assert node_selector_matches(by_name, Node("x"))
    assert node_selector_matches(by_name, Node("y", {"zone": "b"}))
    assert not node_selector_matches(by_name, Node("y", {"zone": "c"}))
    assert not node_selector_matches({"nodeSelectorTerms": [{}]}, Node("x"))


@pytest.mark.parametrize("change, message", [
    (lambda s: s["spec"].pop("driver"), "has no spec.driver"),
    (lambda s: s["spec"]["pool"].pop("name"), "has no spec.pool.name"),
    (lambda s: s["spec"].pop("nodeName"), "exactly one of spec.nodeName"),
    (lambda s: s["spec"].update(allNodes=True), "exactly one of spec.nodeName"),
    (lambda s: s["spec"]["devices"][0].pop("name"), "has no name"),
    (lambda s: s.pop("spec"), "has no spec"),
])
def test_malformed_slice(change: Any, message: str):
    slice_ = make_slice()
    change(slice_)

    with pytest.raises(InventoryError, match=message):
        build_inventory([slice_])


def test_node_from_api():
    node = Node.from_api({"metadata": {"name": "n", "labels": {"a": "b"}}})

    assert node == Node("n", {"a": "b"})
    assert Node.from_api("bare") == Node("bare")
    with pytest.raises(InventoryError, match="has no metadata.name"):
        Node.from_api({"metadata": {}})

"""Unit tests of allocator/allocate.py on the fake driver's real device shapes.

Each rule has a case that must allocate and one that must not; the failing
cases check the reason text. Every allocation is also checked by the oracle.
"""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

import pytest
import yaml

from allocator import allocate as allocate_module
from allocator.allocate import (ADMIN_ACCESS_LABEL, Allocation, MatchCache, Unallocatable,
                                allocate)
from allocator.oracle import check_claim
from fake_devices.profiles import get_profile
from fake_devices.slices import devices_for_version

CLASSES_FILE = Path(__file__).resolve().parents[1] / "fake_devices/deploy/deviceclasses.yaml"
CLASSES = {item["metadata"]["name"]: item for item in yaml.safe_load_all(CLASSES_FILE.read_text())}
GPU = "gpu.nvidia.com"
TPU = "tpu.google.com"
PCIE_ROOT = "resource.kubernetes.io/pcieRoot"
ADMIN_LABELS = {ADMIN_ACCESS_LABEL: "true"}


def node_name(profile: str, index: int = 0) -> str:
    return get_profile(profile).node_name(index)


def make_slice(profile: str, index: int = 0, *, version: str = "v1", generation: int = 1,
               node: str | None = None, devices: list[dict[str, Any]] | None = None,
               pool: str | None = None, slice_count: int = 1, suffix: str = ""
               ) -> dict[str, Any]:
    """Build the ResourceSlice the fake driver publishes for one node of a profile."""
    shape = get_profile(profile)
    node = node or shape.node_name(index)
    devices = shape.devices(node) if devices is None else devices
    return {
        "apiVersion": f"resource.k8s.io/{version}",
        "kind": "ResourceSlice",
        "metadata": {"name": f"{node}-{shape.driver.replace('.', '-')}{suffix}"},
        "spec": {"driver": shape.driver, "nodeName": node,
                 "pool": {"name": pool or node, "generation": generation,
                          "resourceSliceCount": slice_count},
                 "devices": devices_for_version(devices, version)},
    }


def make_node(profile: str, index: int = 0) -> dict[str, Any]:
    shape = get_profile(profile)
    name = shape.node_name(index)
    return {"apiVersion": "v1", "kind": "Node",
            "metadata": {"name": name, "labels": shape.labels(name)}}


def request(name: str, device_class: str = GPU, *, count: int | None = None,
            mode: str | None = None, selectors: tuple[str, ...] = (),
            admin: bool = False) -> dict[str, Any]:
    """Build a resource.k8s.io/v1 request, with its fields under "exactly"."""
    exactly: dict[str, Any] = {"deviceClassName": device_class}
    if count is not None:
        exactly["count"] = count
    if mode is not None:
        exactly["allocationMode"] = mode
    if selectors:
        exactly["selectors"] = [{"cel": {"expression": e}} for e in selectors]
    if admin:
        exactly["adminAccess"] = True
    return {"name": name, "exactly": exactly}


def first_available(name: str, *subrequests: dict[str, Any]) -> dict[str, Any]:
    return {"name": name, "firstAvailable": [
        {"name": sub["name"], **sub["exactly"]} for sub in subrequests]}


def make_claim(name: str, *requests: dict[str, Any],
               constraints: list[dict[str, Any]] | None = None) -> dict[str, Any]:
    devices: dict[str, Any] = {"requests": list(requests)}
    if constraints:
        devices["constraints"] = constraints
    return {"apiVersion": "resource.k8s.io/v1", "kind": "ResourceClaim",
            "metadata": {"name": name, "namespace": "default", "uid": f"uid-{name}"},
            "spec": {"devices": devices}}


def holder(name: str, slice_: dict[str, Any], devices: list[str],
           admin: bool = False) -> dict[str, Any]:
    """Build another claim that is allocated the given devices of a slice."""
    other = make_claim(name, request("gpus", count=len(devices)))
    spec = slice_["spec"]
    results = [{"request": "gpus", "driver": spec["driver"], "pool": spec["pool"]["name"],
                "device": device} for device in devices]
    if admin:
        for result in results:
            result["adminAccess"] = True
    other["status"] = {"allocation": {"devices": {"results": results}}}
    return other


def devices_of(outcome: Any) -> list[tuple[str, str]]:
    assert isinstance(outcome, Allocation), getattr(outcome, "reason", outcome)
    return [(result.request, result.device) for result in outcome.results]


def reason_of(outcome: Any) -> str:
    assert isinstance(outcome, Unallocatable), f"expected no allocation, got {outcome}"
    return outcome.reason


def assert_sound(claim: dict[str, Any], outcome: Allocation, slices: list[dict[str, Any]],
                 others: list[dict[str, Any]] = ()) -> None:
    """Check the allocation with the oracle, as the harness checks the scheduler's."""
    allocated = copy.deepcopy(claim)
    allocated["status"] = {"allocation": outcome.to_api()}
    assert check_claim(allocated, slices, CLASSES, list(others)) == []


def node_selector(node: str) -> dict[str, Any]:
    return {"nodeSelectorTerms": [{"matchFields": [
        {"key": "metadata.name", "operator": "In", "values": [node]}]}]}


T4 = make_slice("gke-t4-1")
L4 = make_slice("gke-l4-8")
H100 = make_slice("gke-h100-8")
TPU_V6E = make_slice("gke-tpu-v6e-8")
NODES = [make_node("gke-t4-1"), make_node("gke-l4-8"), make_node("gke-h100-8"),
         make_node("gke-tpu-v6e-8")]


# Selectors of the DeviceClass and of the request.

def test_selectors_allocate_matching_device():
    claim = make_claim("big", request("gpu", selectors=(
        'device.capacity["gpu.nvidia.com"].memory.compareTo(quantity("40Gi")) >= 0',)))
    slices = [T4, L4, H100]

    outcome = allocate(claim, slices, CLASSES, [], NODES)

    assert devices_of(outcome) == [("gpu", "gpu-0")]
    assert outcome.node == node_name("gke-h100-8")
    assert outcome.node_selector == node_selector(node_name("gke-h100-8"))
    assert_sound(claim, outcome, slices)


def test_selectors_request_rejects_all():
    claim = make_claim("huge", request("gpu", selectors=(
        'device.capacity["gpu.nvidia.com"].memory.compareTo(quantity("200Gi")) >= 0',)))

    reason = reason_of(allocate(claim, [T4, L4], CLASSES, [], NODES))

    assert reason == ("request gpu: no device of class gpu.nvidia.com matches on any node: "
                      "4 node(s) checked, 9 devices match the class selectors, 0 of them also "
                      "the request selectors")


def test_class_selectors_match_nothing():
    claim = make_claim("single", request("single-gpu"))
    nodes = [make_node("gke-tpu-v6e-8"), make_node("gke-tpu-v6e-8", 1)]
    slices = [TPU_V6E, make_slice("gke-tpu-v6e-8", 1)]

    reason = reason_of(allocate(claim, slices, CLASSES, [], nodes))

    assert reason == ("request single-gpu: no device of class gpu.nvidia.com matches on any "
                      "node: 2 node(s) checked, 0 devices match the class selectors")


def test_class_and_request_selectors_both_apply():
    by_product = 'device.attributes["gpu.nvidia.com"].productName == "NVIDIA L4"'
    claim = make_claim("l4", request("gpu", selectors=(by_product,)))
    classes = copy.deepcopy(CLASSES)
    classes[GPU]["spec"]["selectors"].append(
        {"cel": {"expression": 'device.attributes["gpu.nvidia.com"].architecture == "Turing"'}})

    reason = reason_of(allocate(claim, [T4, L4], classes, [], NODES))

    assert "1 device matches the class selectors, 0 of them also the request selectors" in reason
    assert devices_of(allocate(claim, [T4, L4], CLASSES, [], NODES)) == [("gpu", "gpu-0")]


def test_selector_runtime_error_reported():
    claim = make_claim("typo", request("gpu", selectors=(
        'device.attributes["gpu.nvidia.com"].prodName == "x"',)))

    reason = reason_of(allocate(claim, [T4], CLASSES, [], NODES))

    assert reason.startswith("request gpu: selector of request gpu failed on device "
                             f"{GPU}/{node_name('gke-t4-1')}/gpu-0: runtime error: no such key: "
                             "prodName")


def test_selector_compile_error_reported():
    claim = make_claim("broken", request("gpu", selectors=("device.driver ==",)))

    reason = reason_of(allocate(claim, [T4], CLASSES, [], NODES))

    assert reason.startswith("request gpu: selector #0: CEL selector 'device.driver ==': "
                             "compilation failed")


# DeviceClass lookup.

def test_known_device_class_allocates():
    claim = make_claim("tpu", request("tpu", TPU))

    assert devices_of(allocate(claim, [TPU_V6E], list(CLASSES.values()), [], NODES)) == [
        ("tpu", "0")]


def test_unknown_device_class():
    claim = make_claim("missing", request("gpu", "gpu.example.com"))

    reason = reason_of(allocate(claim, [T4], CLASSES, [], NODES))

    assert reason == ("request gpu: DeviceClass gpu.example.com not found; known "
                      "DeviceClasses: gpu.nvidia.com, tpu.google.com")


# ExactCount.

def test_exact_count_default_one():
    claim = make_claim("one", request("gpu"))

    outcome = allocate(claim, [L4], CLASSES, [], NODES)

    assert devices_of(outcome) == [("gpu", "gpu-0")]
    assert_sound(claim, outcome, [L4])


def test_exact_count_several():
    claim = make_claim("four", request("gpus", count=4))

    assert devices_of(allocate(claim, [L4], CLASSES, [], NODES)) == [
        ("gpus", "gpu-0"), ("gpus", "gpu-1"), ("gpus", "gpu-2"), ("gpus", "gpu-3")]


def test_exact_count_too_many():
    claim = make_claim("nine", request("gpus", count=9))

    reason = reason_of(allocate(claim, [L4], CLASSES, [], [make_node("gke-l4-8")]))

    assert reason == ("no node can satisfy the claim: 1 node(s) checked\n"
                      f"  - node {node_name('gke-l4-8')}: request gpus needs 9 device(s), 8 of "
                      "the 8 matching device(s) are free")


def test_exact_count_must_be_positive():
    claim = make_claim("zero", request("gpus", count=0))

    assert "count must be a positive integer, got 0" in reason_of(
        allocate(claim, [L4], CLASSES, [], NODES))


# allocationMode All.

def test_all_takes_every_device():
    claim = make_claim("all-tpus", request("tpus", TPU, mode="All"))
    slices = [T4, TPU_V6E]

    outcome = allocate(claim, slices, CLASSES, [], NODES)

    assert devices_of(outcome) == [("tpus", str(index)) for index in range(8)]
    assert outcome.node == node_name("gke-tpu-v6e-8")
    assert_sound(claim, outcome, slices)


def test_all_with_no_slices():
    claim = make_claim("all-tpus", request("tpus", TPU, mode="All"))

    reason = reason_of(allocate(claim, [], CLASSES, [], [make_node("gke-tpu-v6e-8")]))

    assert reason == ("request tpus: no device of class tpu.google.com matches on any node: "
                      "1 node(s) checked, 0 devices match the class selectors")


def test_all_fails_when_one_held():
    claim = make_claim("all-tpus", request("tpus", TPU, mode="All"))
    other = holder("training", TPU_V6E, ["3"])

    reason = reason_of(allocate(claim, [TPU_V6E], CLASSES, [other], NODES))

    assert (f"node {node_name('gke-tpu-v6e-8')}: request tpus asks for all 8 matching "
            "device(s), but 3 is allocated to claim default/training") in reason


def test_all_fails_on_incomplete_pool():
    claim = make_claim("all-gpus", request("gpus", mode="All"))
    complete = make_slice("gke-l4-8")
    incomplete = make_slice("gke-t4-1", node=node_name("gke-l4-8"), pool="extra", slice_count=2)

    outcome = allocate(claim, [complete], CLASSES, [], NODES)
    reason = reason_of(allocate(claim, [complete, incomplete], CLASSES, [], NODES))

    assert len(devices_of(outcome)) == 8
    assert "request gpus asks for all devices, but pool gpu.nvidia.com/extra is incomplete" in reason


def test_all_respects_request_selectors():
    claim = make_claim("root-one", request("gpus", mode="All", selectors=(
        'device.attributes["resource.kubernetes.io"].pcieRoot == "pci0000:01"',)))

    assert devices_of(allocate(claim, [L4], CLASSES, [], NODES)) == [
        ("gpus", f"gpu-{index}") for index in range(4, 8)]


# firstAvailable.

def test_first_available_falls_back():
    claim = make_claim("prefer-h100", first_available(
        "gpu",
        request("h100", selectors=('device.attributes["gpu.nvidia.com"].architecture == "Hopper"',)),
        request("l4", count=2, selectors=('device.attributes["gpu.nvidia.com"].productName == "NVIDIA L4"',))))
    slices = [T4, L4]

    outcome = allocate(claim, slices, CLASSES, [], NODES)

    assert devices_of(outcome) == [("gpu/l4", "gpu-0"), ("gpu/l4", "gpu-1")]
    assert_sound(claim, outcome, slices)


def test_first_available_prefers_first():
    claim = make_claim("prefer-h100", first_available(
        "gpu", request("big", selectors=(
            'device.capacity["gpu.nvidia.com"].memory.compareTo(quantity("80Gi")) >= 0',)),
        request("any")))

    outcome = allocate(claim, [L4, H100], CLASSES, [], NODES)

    assert devices_of(outcome) == [("gpu/big", "gpu-0")]
    assert outcome.node == node_name("gke-h100-8")


def test_first_available_first_node_wins():
    claim = make_claim("prefer-h100", first_available(
        "gpu", request("big", selectors=(
            'device.capacity["gpu.nvidia.com"].memory.compareTo(quantity("80Gi")) >= 0',)),
        request("any")))

    outcome = allocate(claim, [T4, H100], CLASSES, [], NODES)

    # Nodes are tried by name and the T4 node comes first; nodes are not scored.
    assert devices_of(outcome) == [("gpu/any", "gpu-0")]
    assert outcome.node == node_name("gke-t4-1")


def test_first_available_none_fits():
    claim = make_claim("exotic", first_available(
        "gpu", request("h200", selectors=('device.attributes["gpu.nvidia.com"].productName == "NVIDIA H200"',)),
        request("tpu", TPU)))

    reason = reason_of(allocate(claim, [T4], CLASSES, [], NODES))

    assert reason.startswith("request gpu: none of its 2 subrequests matches a device on any "
                             "node:\n  - subrequest gpu/h200: no device of class gpu.nvidia.com")
    assert "  - subrequest gpu/tpu: no device of class tpu.google.com" in reason


# matchAttribute.

def test_match_attribute_backtracks():
    claim = make_claim("same-root", request("a"), request("b", count=2), constraints=[
        {"requests": ["a", "b"], "matchAttribute": PCIE_ROOT}])
    others = [holder("busy", L4, ["gpu-0", "gpu-1", "gpu-2"])]

    outcome = allocate(claim, [L4], CLASSES, others, NODES)

    # a takes gpu-3 first, but root pci0000:00 has no two more free devices.
    assert devices_of(outcome) == [("a", "gpu-4"), ("b", "gpu-5"), ("b", "gpu-6")]
    assert_sound(claim, outcome, [L4], others)


def test_match_attribute_unsatisfiable():
    claim = make_claim("too-wide", request("gpus", count=5), constraints=[
        {"matchAttribute": PCIE_ROOT}])

    reason = reason_of(allocate(claim, [L4], CLASSES, [], [make_node("gke-l4-8")]))

    assert ("each request has free devices, but no combination of them meets the constraints: "
            f"matchAttribute {PCIE_ROOT} over all requests: request gpus offers pci0000:00 (4), "
            "pci0000:01 (4)") in reason


def test_match_attribute_missing_fails():
    claim = make_claim("tpu-root", request("tpus", TPU, count=2), constraints=[
        {"matchAttribute": PCIE_ROOT}])

    reason = reason_of(allocate(claim, [TPU_V6E], CLASSES, [], NODES))

    assert "request tpus offers no such attribute (8)" in reason


def test_match_attribute_unprefixed_driver_domain():
    claim = make_claim("same-product", request("gpus", count=2), constraints=[
        {"matchAttribute": "gpu.nvidia.com/productName"}])

    assert devices_of(allocate(claim, [L4], CLASSES, [], NODES)) == [
        ("gpus", "gpu-0"), ("gpus", "gpu-1")]


def test_match_attribute_other_request_unaffected():
    claim = make_claim("partial", request("a", count=2), request("b", count=3), constraints=[
        {"requests": ["a"], "matchAttribute": PCIE_ROOT}])

    assert devices_of(allocate(claim, [L4], CLASSES, [], NODES)) == [
        ("a", "gpu-0"), ("a", "gpu-1"), ("b", "gpu-2"), ("b", "gpu-3"), ("b", "gpu-4")]


def test_constraint_needs_qualified_name():
    claim = make_claim("bare", request("gpus"), constraints=[{"matchAttribute": "pcieRoot"}])

    assert "must be fully qualified" in reason_of(allocate(claim, [L4], CLASSES, [], NODES))


# distinctAttribute.

def test_distinct_attribute_spreads():
    claim = make_claim("spread", request("gpus", count=2), constraints=[
        {"distinctAttribute": PCIE_ROOT}])

    outcome = allocate(claim, [L4], CLASSES, [], NODES)

    assert devices_of(outcome) == [("gpus", "gpu-0"), ("gpus", "gpu-4")]
    assert_sound(claim, outcome, [L4])


def test_distinct_attribute_unsatisfiable():
    claim = make_claim("spread3", request("gpus", count=3), constraints=[
        {"distinctAttribute": PCIE_ROOT}])

    reason = reason_of(allocate(claim, [L4], CLASSES, [], [make_node("gke-l4-8")]))

    assert (f"distinctAttribute {PCIE_ROOT} over all requests: request gpus offers "
            "pci0000:00 (4), pci0000:01 (4)") in reason


# adminAccess.

def test_admin_access_uses_held_device():
    claim = make_claim("monitor", request("gpu", admin=True))
    others = [holder("training", T4, ["gpu-0"])]

    outcome = allocate(claim, [T4], CLASSES, others, NODES, namespace_labels=ADMIN_LABELS)

    assert devices_of(outcome) == [("gpu", "gpu-0")]
    assert outcome.results[0].admin_access is True
    assert outcome.to_api()["devices"]["results"][0]["adminAccess"] is True
    assert_sound(claim, outcome, [T4], others)


def test_admin_access_needs_namespace_label():
    claim = make_claim("monitor", request("gpu", admin=True))

    reason = reason_of(allocate(claim, [T4], CLASSES, [], NODES, namespace_labels={}))

    assert reason == ("request gpu asks for adminAccess, but namespace default lacks the "
                      f"label {ADMIN_ACCESS_LABEL}=\"true\"")


def test_admin_access_without_labels():
    claim = make_claim("monitor", request("gpu", admin=True))

    assert "the namespace labels were not given" in reason_of(
        allocate(claim, [T4], CLASSES, [], NODES))


def test_admin_results_do_not_hold():
    claim = make_claim("user", request("gpu"))
    others = [holder("monitor", T4, ["gpu-0"], admin=True)]

    assert devices_of(allocate(claim, [T4], CLASSES, others, NODES)) == [("gpu", "gpu-0")]


# Devices held by other claims.

def test_held_device_skipped():
    claim = make_claim("second", request("gpu"))
    second_node = make_slice("gke-t4-1", 1)
    others = [holder("first", T4, ["gpu-0"])]
    slices = [T4, second_node]

    outcome = allocate(claim, slices, CLASSES, others,
                       [make_node("gke-t4-1"), make_node("gke-t4-1", 1)])

    assert devices_of(outcome) == [("gpu", "gpu-0")]
    assert outcome.node == node_name("gke-t4-1", 1)
    assert_sound(claim, outcome, slices, others)


def test_held_device_names_holder():
    claim = make_claim("second", request("gpu"))
    others = [holder("first", T4, ["gpu-0"])]

    reason = reason_of(allocate(claim, [T4], CLASSES, others, [make_node("gke-t4-1")]))

    assert reason == ("no node can satisfy the claim: 1 node(s) checked\n"
                      f"  - node {node_name('gke-t4-1')}: request gpu needs 1 device(s), 0 of "
                      "the 1 matching device(s) are free; gpu-0 is allocated to claim default/first")


def test_own_allocation_not_held():
    claim = make_claim("again", request("gpu"))
    itself = holder("again", T4, ["gpu-0"])

    assert devices_of(allocate(claim, [T4], CLASSES, [itself], NODES)) == [("gpu", "gpu-0")]


def test_requests_do_not_share_device():
    claim = make_claim("two", request("a"), request("b"))

    reason = reason_of(allocate(claim, [T4], CLASSES, [], [make_node("gke-t4-1")]))

    assert "the requests together need more distinct free devices than match them" in reason


# At most 32 results.

def many_devices(count: int) -> list[dict[str, Any]]:
    template = get_profile("gke-l4-8").devices("node-x")[0]
    return [dict(copy.deepcopy(template), name=f"gpu-{index}") for index in range(count)]


def test_results_limit_allows_32():
    big = make_slice("gke-l4-8", devices=many_devices(40))
    claim = make_claim("max", request("gpus", count=32))

    assert len(devices_of(allocate(claim, [big], CLASSES, [], NODES))) == 32


def test_results_limit_count():
    claim = make_claim("over", request("a", count=30), request("b", count=3))

    reason = reason_of(allocate(claim, [L4], CLASSES, [], NODES))

    assert reason == ("the claim asks for at least 33 devices, more than the limit of 32 results "
                      "per claim; split it into several claims")


def test_results_limit_all():
    big = make_slice("gke-l4-8", devices=many_devices(33))
    claim = make_claim("all", request("gpus", mode="All"))

    reason = reason_of(allocate(claim, [big], CLASSES, [], [make_node("gke-l4-8")]))

    assert "the 33 matching devices exceed the limit of 32 results per claim" in reason


# One node for all results.

def test_one_node_for_all_results():
    claim = make_claim("mixed", request("gpu"), request("tpu", TPU))
    node = node_name("gke-t4-1")
    tpu_here = make_slice("gke-tpu-v6e-8", node=node, pool=f"{node}-tpu")
    slices = [T4, tpu_here]

    outcome = allocate(claim, slices, CLASSES, [], NODES)

    assert devices_of(outcome) == [("gpu", "gpu-0"), ("tpu", "0")]
    assert outcome.node_selector == node_selector(node)
    assert_sound(claim, outcome, slices)


def test_one_node_split_fails():
    claim = make_claim("mixed", request("gpu"), request("tpu", TPU))

    reason = reason_of(allocate(claim, [T4, TPU_V6E], CLASSES, [],
                                [make_node("gke-t4-1"), make_node("gke-tpu-v6e-8")]))

    assert reason == (
        "no node can satisfy the claim: 2 node(s) checked\n"
        f"  - node {node_name('gke-t4-1')}: request tpu: no device of class tpu.google.com on "
        "this node\n"
        f"  - node {node_name('gke-tpu-v6e-8')}: request gpu: no device of class gpu.nvidia.com "
        "on this node")


# Where devices are available: all nodes or a NodeSelector.

def network_slice(placement: dict[str, Any]) -> dict[str, Any]:
    shape = get_profile("gke-t4-1")
    slice_ = make_slice("gke-t4-1", pool="network", devices=shape.devices("fabric"))
    del slice_["spec"]["nodeName"]
    slice_["spec"].update(placement)
    return slice_


def test_all_nodes_pool_has_no_node_selector():
    claim = make_claim("anywhere", request("gpu"))

    outcome = allocate(claim, [network_slice({"allNodes": True})], CLASSES, [], NODES)

    assert devices_of(outcome) == [("gpu", "gpu-0")]
    assert outcome.node == NODES[0]["metadata"]["name"]
    assert outcome.node_selector is None
    assert "nodeSelector" not in outcome.to_api()


def test_all_nodes_pool_without_nodes():
    claim = make_claim("anywhere", request("gpu"))

    reason = reason_of(allocate(claim, [network_slice({"allNodes": True})], CLASSES, [], []))

    assert "0 node(s) checked" in reason
    assert "no nodes were given and no ResourceSlice names a node" in reason


def test_node_selector_pool():
    selector = {"nodeSelectorTerms": [{"matchExpressions": [
        {"key": "cloud.google.com/gke-nodepool", "operator": "In", "values": ["h100-pool"]}]}]}
    claim = make_claim("fabric", request("gpu"))

    outcome = allocate(claim, [network_slice({"nodeSelector": selector})], CLASSES, [], NODES)

    assert devices_of(outcome) == [("gpu", "gpu-0")]
    assert outcome.node == node_name("gke-h100-8")
    assert outcome.node_selector == selector


def test_node_selector_pool_no_node():
    selector = {"nodeSelectorTerms": [{"matchExpressions": [
        {"key": "cloud.google.com/gke-nodepool", "operator": "In", "values": ["absent"]}]}]}
    claim = make_claim("fabric", request("gpu"))

    reason = reason_of(allocate(claim, [network_slice({"nodeSelector": selector})], CLASSES, [],
                                NODES))

    assert reason.endswith("the matching device(s) are not available on the checked nodes but "
                           "on nodes selected by a NodeSelector")


def test_node_local_device_pins_claim():
    claim = make_claim("both", request("a"), request("b", selectors=(
        'device.attributes["gpu.nvidia.com"].productName == "Tesla T4"',)))
    slices = [network_slice({"allNodes": True}), make_slice("gke-h100-8")]

    outcome = allocate(claim, slices, CLASSES, [], [make_node("gke-h100-8")])

    assert devices_of(outcome) == [("a", "gpu-0"), ("b", "gpu-0")]
    assert [r.pool for r in outcome.results] == [node_name("gke-h100-8"), "network"]
    assert outcome.node_selector == node_selector(node_name("gke-h100-8"))


# Search order and inputs.

def test_nodes_tried_by_name():
    claim = make_claim("first", request("gpu"))
    slices = [make_slice("gke-t4-1", 2), make_slice("gke-t4-1", 1)]
    nodes = [make_node("gke-t4-1", 2), make_node("gke-t4-1", 1)]

    assert allocate(claim, slices, CLASSES, [], nodes).node == node_name("gke-t4-1", 1)


def test_nodes_from_slices_when_not_given():
    claim = make_claim("first", request("gpu"))

    outcome = allocate(claim, [L4], CLASSES, [], None)

    assert outcome.node == node_name("gke-l4-8")


def test_device_names_sorted_naturally():
    devices = many_devices(12)
    claim = make_claim("two", request("gpus", count=2), constraints=[
        {"distinctAttribute": "gpu.nvidia.com/uuid"}])
    for index, device in enumerate(devices):
        device["attributes"]["uuid"] = {"string": f"GPU-{index}"}

    outcome = allocate(claim, [make_slice("gke-l4-8", devices=list(reversed(devices)))],
                       CLASSES, [], NODES)

    assert devices_of(outcome) == [("gpus", "gpu-0"), ("gpus", "gpu-1")]


def test_v1beta1_slice_and_claim():
    slice_ = make_slice("gke-l4-8", version="v1beta1")
    claim = make_claim("old", {"name": "gpus", "deviceClassName": GPU, "count": 2, "selectors": [
        {"cel": {"expression": 'device.capacity["gpu.nvidia.com"].memory.isGreaterThan(quantity("20Gi"))'}}]})
    claim["apiVersion"] = "resource.k8s.io/v1beta1"

    outcome = allocate(claim, [slice_], CLASSES, [], NODES)

    assert devices_of(outcome) == [("gpus", "gpu-0"), ("gpus", "gpu-1")]
    assert_sound(claim, outcome, [slice_])


def test_newest_generation_only():
    old = make_slice("gke-l4-8", generation=1)
    new = make_slice("gke-l4-8", generation=2, devices=get_profile("gke-l4-8").devices(
        node_name("gke-l4-8"))[5:], suffix="-2")
    claim = make_claim("one", request("gpu"))

    assert devices_of(allocate(claim, [old, new], CLASSES, [], NODES)) == [("gpu", "gpu-5")]


def test_incomplete_pool_not_allocatable():
    claim = make_claim("one", request("gpu"))
    partial = make_slice("gke-t4-1", slice_count=2)

    reason = reason_of(allocate(claim, [partial], CLASSES, [], NODES))

    assert reason.startswith("request gpu: no device of class gpu.nvidia.com matches on any "
                             "node: 4 node(s) checked, 0 devices match the class selectors; "
                             f"pool gpu.nvidia.com/{node_name('gke-t4-1')} is incomplete")


def test_invalid_pool_not_allocatable():
    claim = make_claim("one", request("gpu"))
    first = make_slice("gke-t4-1", slice_count=2)
    second = make_slice("gke-t4-1", slice_count=2, suffix="-b")

    reason = reason_of(allocate(claim, [first, second], CLASSES, [], NODES))

    assert "is invalid because device names repeat: gpu-0" in reason


def test_match_results_cached(monkeypatch: pytest.MonkeyPatch):
    calls: list[str] = []
    original = allocate_module.compile_selector

    def counting(expression: str) -> Any:
        selector = original(expression)

        class Counting:
            def matches(self, device: Any) -> bool:
                calls.append(device.name)
                return selector.matches(device)
        return Counting()

    monkeypatch.setattr(allocate_module, "compile_selector", counting)
    cache = MatchCache()
    claim = make_claim("cached", request("a"), request("b", count=9))

    allocate(claim, [L4], CLASSES, [], NODES, cache=cache)
    allocate(claim, [L4], CLASSES, [], NODES, cache=cache)

    assert len(calls) == 8  # one class selector, eight devices, evaluated once
    assert len(set(calls)) == 8

"""Unit tests of the oracle's selector and constraint rules on the fake driver's device shapes."""

from __future__ import annotations

import copy
from typing import Any

import pytest

from allocator.oracle import check_claim
from fake_devices.profiles import GPU_DRIVER, TPU_DRIVER, get_profile

NODE = "node-a"
PCIE_ROOT = "resource.kubernetes.io/pcieRoot"
CLASSES = {
    "gpu.nvidia.com": {"metadata": {"name": "gpu.nvidia.com"}, "spec": {"selectors": [
        {"cel": {"expression": 'device.driver == "gpu.nvidia.com" && '
                               'device.attributes["gpu.nvidia.com"].type == "gpu"'}}]}},
    "l4.nvidia.com": {"metadata": {"name": "l4.nvidia.com"}, "spec": {"selectors": [
        {"cel": {"expression": 'device.driver == "gpu.nvidia.com"'}},
        {"cel": {"expression": 'device.attributes["gpu.nvidia.com"].productName == "NVIDIA L4"'}}]}},
    "tpu.google.com": {"metadata": {"name": "tpu.google.com"}, "spec": {"selectors": [
        {"cel": {"expression": 'device.driver == "tpu.google.com"'}}]}},
}
BIG_MEMORY = 'device.capacity["gpu.nvidia.com"].memory.compareTo(quantity("40Gi")) >= 0'


def make_slice(profile: str, node: str = NODE) -> dict[str, Any]:
    shape = get_profile(profile)
    return {"metadata": {"name": f"{node}-{profile}"},
            "spec": {"driver": shape.driver, "nodeName": node,
                     "pool": {"name": node, "generation": 1, "resourceSliceCount": 1},
                     "devices": shape.devices(node)}}


def make_claim(requests: list[dict[str, Any]], results: list[tuple[str, str]],
               constraints: list[dict[str, Any]] | None = None,
               driver: str = GPU_DRIVER) -> dict[str, Any]:
    """Build an allocated claim; results are (request, device) on NODE's pool."""
    devices: dict[str, Any] = {"requests": requests}
    if constraints:
        devices["constraints"] = constraints
    return {
        "metadata": {"name": "claim", "namespace": "default", "uid": "uid-claim"},
        "spec": {"devices": devices},
        "status": {"allocation": {
            "devices": {"results": [{"request": name, "driver": driver, "pool": NODE,
                                     "device": device} for name, device in results]},
            "nodeSelector": {"nodeSelectorTerms": [{"matchFields": [
                {"key": "metadata.name", "operator": "In", "values": [NODE]}]}]},
        }},
    }


def request(name: str, device_class: str = "gpu.nvidia.com", count: int = 1,
            selectors: tuple[str, ...] = (), mode: str = "ExactCount") -> dict[str, Any]:
    exactly: dict[str, Any] = {"deviceClassName": device_class, "allocationMode": mode,
                               "selectors": [{"cel": {"expression": e}} for e in selectors]}
    if mode == "ExactCount":
        exactly["count"] = count
    return {"name": name, "exactly": exactly}


def violations(claim: dict[str, Any], profile: str = "gke-l4-8") -> list[tuple[str, str]]:
    return [(v.rule, v.message) for v in check_claim(claim, [make_slice(profile)], CLASSES, [])]


def rules(claim: dict[str, Any], profile: str = "gke-l4-8") -> list[str]:
    return [rule for rule, _ in violations(claim, profile)]


# Selectors.

def test_selectors_matched():
    claim = make_claim([request("gpu", "l4.nvidia.com", selectors=('device.attributes["gpu.nvidia.com"].architecture == "Ada Lovelace"',))],
                       [("gpu", "gpu-0")])

    assert violations(claim) == []


def test_class_selector_not_matched():
    claim = make_claim([request("gpu", "l4.nvidia.com")], [("gpu", "gpu-0")])

    found = violations(claim, "gke-t4-1")

    assert [rule for rule, _ in found] == ["selector not matched"]
    assert found[0][1] == (
        f"claim default/claim: device {GPU_DRIVER}/{NODE}/gpu-0 (result gpu) does not match the "
        "selector of DeviceClass l4.nvidia.com: "
        "'device.attributes[\"gpu.nvidia.com\"].productName == \"NVIDIA L4\"' returns false")


def test_request_selector_not_matched():
    claim = make_claim([request("gpu", selectors=(BIG_MEMORY,))], [("gpu", "gpu-0")])

    found = violations(claim, "gke-t4-1")

    assert [rule for rule, _ in found] == ["selector not matched"]
    assert "the selector of the request" in found[0][1]
    assert BIG_MEMORY in found[0][1]


def test_request_selector_matched_on_big_gpu():
    claim = make_claim([request("gpu", selectors=(BIG_MEMORY,))], [("gpu", "gpu-0")])

    assert rules(claim, "gke-h100-8") == []


def test_selector_runtime_error_reported():
    claim = make_claim([request("gpu", selectors=('device.attributes["gpu.nvidia.com"].nope == 1',))],
                       [("gpu", "gpu-0")])

    found = violations(claim)

    assert [rule for rule, _ in found] == ["selector not matched"]
    assert found[0][1].endswith("fails: runtime error: no such key: nope")


def test_selector_each_result_checked():
    second_root = 'device.attributes["resource.kubernetes.io"].pcieRoot == "pci0000:01"'
    claim = make_claim([request("gpus", count=2, selectors=(second_root,))],
                       [("gpus", "gpu-3"), ("gpus", "gpu-4")])

    found = violations(claim)

    assert [rule for rule, _ in found] == ["selector not matched"]
    assert "gpu-3" in found[0][1]


def test_subrequest_selectors_used():
    claim = make_claim([{"name": "gpu", "firstAvailable": [
        {"name": "big", "deviceClassName": "gpu.nvidia.com", "selectors": [
            {"cel": {"expression": BIG_MEMORY}}]},
        {"name": "two", "deviceClassName": "gpu.nvidia.com", "count": 2}]}],
        [("gpu/two", "gpu-0"), ("gpu/two", "gpu-1")])

    assert rules(claim, "gke-t4-2") == []

    claim["status"]["allocation"]["devices"]["results"] = [
        {"request": "gpu/big", "driver": GPU_DRIVER, "pool": NODE, "device": "gpu-0"}]

    assert rules(claim, "gke-t4-2") == ["selector not matched"]


def test_subrequests_mixed_wrong_count():
    claim = make_claim([{"name": "gpu", "firstAvailable": [
        {"name": "one", "deviceClassName": "gpu.nvidia.com"},
        {"name": "two", "deviceClassName": "gpu.nvidia.com", "count": 2}]}],
        [("gpu/one", "gpu-0"), ("gpu/two", "gpu-1")])

    assert rules(claim, "gke-t4-2") == ["wrong count"]


def test_all_mode_ignores_unselected_devices():
    second_root = 'device.attributes["resource.kubernetes.io"].pcieRoot == "pci0000:01"'
    claim = make_claim([request("gpus", selectors=(second_root,), mode="All")],
                       [("gpus", f"gpu-{index}") for index in range(4, 8)])

    assert rules(claim) == []

    claim["status"]["allocation"]["devices"]["results"].pop()

    assert rules(claim) == ["All not covering every matching device"]


def test_wrong_driver_not_also_selector():
    claim = make_claim([request("gpu")], [("gpu", "0")], driver=TPU_DRIVER)

    assert rules(claim, "gke-tpu-v6e-8") == ["wrong driver or pool"]


# Constraints.

def test_match_attribute_kept():
    claim = make_claim([request("gpus", count=2)], [("gpus", "gpu-4"), ("gpus", "gpu-5")],
                       constraints=[{"matchAttribute": PCIE_ROOT}])

    assert violations(claim) == []


def test_match_attribute_broken():
    claim = make_claim([request("gpus", count=2)], [("gpus", "gpu-3"), ("gpus", "gpu-4")],
                       constraints=[{"matchAttribute": PCIE_ROOT}])

    found = violations(claim)

    assert found == [("constraint broken", (
        f"claim default/claim: matchAttribute {PCIE_ROOT}: values differ: "
        f"{GPU_DRIVER}/{NODE}/gpu-3=pci0000:00, {GPU_DRIVER}/{NODE}/gpu-4=pci0000:01"))]


def test_match_attribute_missing():
    claim = make_claim([request("tpus", "tpu.google.com", count=2)], [("tpus", "0"), ("tpus", "1")],
                       constraints=[{"matchAttribute": PCIE_ROOT}], driver=TPU_DRIVER)

    found = violations(claim, "gke-tpu-v6e-8")

    assert [rule for rule, _ in found] == ["constraint broken"]
    assert "lack(s) the attribute" in found[0][1]


def test_match_attribute_driver_domain_unprefixed():
    claim = make_claim([request("gpus", count=2)], [("gpus", "gpu-0"), ("gpus", "gpu-1")],
                       constraints=[{"matchAttribute": "gpu.nvidia.com/productName"}])

    assert violations(claim) == []


def test_match_attribute_only_listed_requests():
    claim = make_claim([request("a"), request("b")], [("a", "gpu-0"), ("b", "gpu-7")],
                       constraints=[{"requests": ["a"], "matchAttribute": PCIE_ROOT}])

    assert violations(claim) == []

    claim["spec"]["devices"]["constraints"][0]["requests"] = ["a", "b"]

    assert rules(claim) == ["constraint broken"]


def test_distinct_attribute_kept():
    claim = make_claim([request("gpus", count=2)], [("gpus", "gpu-0"), ("gpus", "gpu-4")],
                       constraints=[{"distinctAttribute": PCIE_ROOT}])

    assert violations(claim) == []


def test_distinct_attribute_broken():
    claim = make_claim([request("gpus", count=2)], [("gpus", "gpu-0"), ("gpus", "gpu-1")],
                       constraints=[{"distinctAttribute": PCIE_ROOT}])

    found = violations(claim)

    assert [rule for rule, _ in found] == ["constraint broken"]
    assert "distinctAttribute resource.kubernetes.io/pcieRoot: values repeat" in found[0][1]


@pytest.mark.parametrize("layout", ["v1", "v1beta1"])
def test_selector_on_both_layouts(layout: str):
    slice_ = make_slice("gke-t4-1")
    if layout == "v1beta1":
        slice_ = copy.deepcopy(slice_)
        slice_["spec"]["devices"] = [
            {"name": d["name"], "basic": {k: v for k, v in d.items() if k != "name"}}
            for d in slice_["spec"]["devices"]]
    claim = make_claim([request("gpu", selectors=(BIG_MEMORY,))], [("gpu", "gpu-0")])

    found = check_claim(claim, [slice_], CLASSES, [])

    assert [v.rule for v in found] == ["selector not matched"]

"""Unit tests of allocator/oracle.py on hand-built ResourceSlices, claims and DeviceClasses.

Each violation test starts from a sound allocation and breaks one thing, then
checks that exactly the expected rule fires.
"""

from __future__ import annotations

from typing import Any

import pytest

from allocator.oracle import check_claim

GPU = "gpu.nvidia.com"
TPU = "tpu.google.com"
NODE = "node-a"
OTHER_NODE = "node-b"

CLASSES = {
    GPU: {"metadata": {"name": GPU},
          "spec": {"selectors": [{"cel": {"expression": f'device.driver == "{GPU}"'}}]}},
    TPU: {"metadata": {"name": TPU},
          "spec": {"selectors": [{"cel": {"expression": f'device.driver == "{TPU}"'}}]}},
}


def make_slice(node: str, devices: list[str], driver: str = GPU, generation: int = 1
               ) -> dict[str, Any]:
    return {
        "apiVersion": "resource.k8s.io/v1",
        "kind": "ResourceSlice",
        "metadata": {"name": f"{node}-{driver}-{generation}"},
        "spec": {"driver": driver, "nodeName": node,
                 "pool": {"name": node, "generation": generation, "resourceSliceCount": 1},
                 "devices": [{"name": device} for device in devices]},
    }


def node_selector(node: str) -> dict[str, Any]:
    return {"nodeSelectorTerms": [{"matchFields": [
        {"key": "metadata.name", "operator": "In", "values": [node]}]}]}


def make_claim(name: str, devices: list[str], mode: str = "ExactCount", count: int = 1,
               device_class: str = GPU, driver: str = GPU, pool: str = NODE,
               node: str = NODE) -> dict[str, Any]:
    """Build a v1 claim with one request "gpus" that is allocated the given devices."""
    exactly: dict[str, Any] = {"deviceClassName": device_class, "allocationMode": mode}
    if mode == "ExactCount":
        exactly["count"] = count
    return {
        "metadata": {"name": name, "namespace": "default", "uid": f"uid-{name}"},
        "spec": {"devices": {"requests": [{"name": "gpus", "exactly": exactly}]}},
        "status": {"allocation": {
            "devices": {"results": [{"request": "gpus", "driver": driver, "pool": pool,
                                     "device": device} for device in devices]},
            "nodeSelector": node_selector(node),
        }},
    }


def rules(claim: dict[str, Any], slices: list[dict[str, Any]],
          other_claims: list[dict[str, Any]] | None = None) -> list[str]:
    return [violation.rule for violation in check_claim(claim, slices, CLASSES,
                                                        other_claims or [])]


SLICES = [make_slice(NODE, ["gpu-0", "gpu-1"]), make_slice(OTHER_NODE, ["gpu-0", "gpu-1"])]


# Sound allocations.

def test_sound_gpu_claim():
    claim = make_claim("one", ["gpu-0"])

    assert check_claim(claim, SLICES, CLASSES, [claim]) == []


def test_sound_exact_count_two():
    assert rules(make_claim("two", ["gpu-0", "gpu-1"], count=2), SLICES) == []


def test_sound_all_mode():
    assert rules(make_claim("all", ["gpu-0", "gpu-1"], mode="All"), SLICES) == []


def test_sound_v1beta1_layout():
    claim = make_claim("flat", ["gpu-0"])
    request = claim["spec"]["devices"]["requests"][0]
    request.update(request.pop("exactly"))

    assert rules(claim, SLICES) == []


def test_sound_admin_access_shared():
    claim = make_claim("admin", ["gpu-0"])
    claim["status"]["allocation"]["devices"]["results"][0]["adminAccess"] = True
    other = make_claim("user", ["gpu-0"])

    assert rules(claim, SLICES, [other]) == []


# One violation at a time.

def test_unknown_device():
    assert rules(make_claim("one", ["gpu-9"]), SLICES) == ["unknown device"]


def test_wrong_pool():
    claim = make_claim("one", ["gpu-0"], pool="node-c")

    assert rules(claim, SLICES) == ["wrong driver or pool"]


def test_wrong_driver_for_class():
    slices = SLICES + [make_slice(NODE, ["tpu-0"], driver=TPU)]
    claim = make_claim("one", ["tpu-0"], driver=TPU)

    assert rules(claim, slices) == ["wrong driver or pool"]


@pytest.mark.parametrize("count, devices", [(2, ["gpu-0"]), (1, ["gpu-0", "gpu-1"])],
                         ids=["too-few", "too-many"])
def test_wrong_count_exact(count: int, devices: list[str]):
    claim = make_claim("one", devices, count=count)

    assert rules(claim, SLICES) == ["wrong count"]


def test_wrong_count_all_none():
    assert rules(make_claim("all", [], mode="All"), SLICES) == ["wrong count"]


def test_all_not_covering():
    claim = make_claim("all", ["gpu-0"], mode="All")

    violations = check_claim(claim, SLICES, CLASSES, [])

    assert [v.rule for v in violations] == ["All not covering every matching device"]
    assert "gpu-1" in violations[0].message


def test_device_held_by_two_claims():
    claim = make_claim("one", ["gpu-0"])
    other = make_claim("other", ["gpu-0"])

    violations = check_claim(claim, SLICES, CLASSES, [claim, other])

    assert [v.rule for v in violations] == ["device held by two claims"]
    assert "default/other" in violations[0].message


def test_other_claim_other_device_fine():
    claim = make_claim("one", ["gpu-0"])
    other = make_claim("other", ["gpu-1"])

    assert rules(claim, SLICES, [other]) == []


def test_node_selector_other_node():
    claim = make_claim("one", ["gpu-0"], node=OTHER_NODE)

    assert rules(claim, SLICES) == ["nodeSelector not matching the device's node"]


def test_node_selector_missing():
    claim = make_claim("one", ["gpu-0"])
    del claim["status"]["allocation"]["nodeSelector"]

    assert rules(claim, SLICES) == ["nodeSelector not matching the device's node"]


@pytest.mark.parametrize("status", [None, {}, {"allocation": None}],
                         ids=["no-status", "empty-status", "null-allocation"])
def test_not_allocated(status: dict[str, Any] | None):
    claim = make_claim("one", ["gpu-0"])
    claim["status"] = status

    assert rules(claim, SLICES) == ["not allocated"]


# Pool generations.

def test_old_generation_device_unknown():
    slices = [make_slice(NODE, ["gpu-0", "gpu-1"], generation=1),
              make_slice(NODE, ["gpu-0"], generation=2)]

    assert rules(make_claim("one", ["gpu-1"]), slices) == ["unknown device"]


def test_old_generation_not_needed_for_all():
    slices = [make_slice(NODE, ["gpu-0", "gpu-1"], generation=1),
              make_slice(NODE, ["gpu-0"], generation=2)]

    assert rules(make_claim("all", ["gpu-0"], mode="All"), slices) == []

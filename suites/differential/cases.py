"""Random inventories and claims for differential runs, as plain data.

A case is JSON-serialisable so a disagreement can be saved and replayed:
``{"nodes": {node: [device, ...]}, "requests": [...], "constraint": bool}``
where a device is ``{"model": "a"|"b", "memory": "8Gi"|..., "index": int}``
and a request is ``{"mode": "ExactCount"|"All", "count": int, "selector": key|None}``.
"""

from __future__ import annotations

from typing import Any

from hypothesis import strategies as st

DRIVER = "diff.draconf.dev"
DEVICE_CLASS = "diff.draconf.dev"
NODE_PREFIX = "draconf-diff-node"
SELECTORS = {
    "model-a": f'device.attributes["{DRIVER}"].model == "a"',
    "memory-16": f'device.capacity["{DRIVER}"].memory.compareTo(quantity("16Gi")) >= 0',
    "low-index": f'device.attributes["{DRIVER}"].index < 2',
}

devices = st.lists(st.fixed_dictionaries({
    "model": st.sampled_from(["a", "b"]),
    "memory": st.sampled_from(["8Gi", "16Gi", "32Gi"]),
}), min_size=0, max_size=4)
requests = st.lists(st.fixed_dictionaries({
    "mode": st.sampled_from(["ExactCount", "ExactCount", "All"]),
    "count": st.integers(min_value=1, max_value=4),
    "selector": st.sampled_from([None, *SELECTORS]),
}), min_size=1, max_size=2)
cases = st.fixed_dictionaries({
    "nodes": st.lists(devices, min_size=1, max_size=3).map(
        lambda per_node: {f"{NODE_PREFIX}-{i}": d for i, d in enumerate(per_node)}),
    "requests": requests,
    "constraint": st.booleans(),
})


def slices(case: dict[str, Any], run_labels: dict[str, str]) -> list[dict[str, Any]]:
    """Return one ResourceSlice per node that has devices."""
    result = []
    for node, node_devices in case["nodes"].items():
        if not node_devices:
            continue
        result.append({
            "apiVersion": "resource.k8s.io/v1", "kind": "ResourceSlice",
            "metadata": {"name": f"{node}-diff", "labels": dict(run_labels)},
            "spec": {"driver": DRIVER, "nodeName": node,
                     "pool": {"name": node, "generation": 1, "resourceSliceCount": 1},
                     "devices": [{"name": f"dev-{i}",
                                  "attributes": {"model": {"string": d["model"]},
                                                 "index": {"int": i}},
                                  "capacity": {"memory": {"value": d["memory"]}}}
                                 for i, d in enumerate(node_devices)]},
        })
    return result


def claim(case: dict[str, Any], name: str) -> dict[str, Any]:
    request_objects = []
    for index, request in enumerate(case["requests"]):
        exactly: dict[str, Any] = {"deviceClassName": DEVICE_CLASS,
                                   "allocationMode": request["mode"]}
        if request["mode"] == "ExactCount":
            exactly["count"] = request["count"]
        if request["selector"]:
            exactly["selectors"] = [{"cel": {"expression": SELECTORS[request["selector"]]}}]
        request_objects.append({"name": f"r{index}", "exactly": exactly})
    devices_spec: dict[str, Any] = {"requests": request_objects}
    if case["constraint"] and len(request_objects) > 1:
        devices_spec["constraints"] = [{"requests": [r["name"] for r in request_objects],
                                        "matchAttribute": f"{DRIVER}/model"}]
    return {"apiVersion": "resource.k8s.io/v1", "kind": "ResourceClaim",
            "metadata": {"name": name}, "spec": {"devices": devices_spec}}


def device_class(run_labels: dict[str, str]) -> dict[str, Any]:
    return {"apiVersion": "resource.k8s.io/v1", "kind": "DeviceClass",
            "metadata": {"name": DEVICE_CLASS, "labels": dict(run_labels)},
            "spec": {"selectors": [{"cel": {"expression": f'device.driver == "{DRIVER}"'}}]}}

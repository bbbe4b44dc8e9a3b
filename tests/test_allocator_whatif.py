"""Unit tests of allocator/whatif.py: reading YAML inputs and presenting outcomes."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
import yaml

from allocator.allocate import Allocation, DeviceResult, Unallocatable, allocate
from allocator.whatif import WhatIfError, explain, load_yaml_objects, to_json
from fake_devices.profiles import get_profile

REPO = Path(__file__).resolve().parents[1]
CLASSES_FILE = REPO / "fake_devices/deploy/deviceclasses.yaml"
TEMPLATE_FILE = REPO / "tests/data/v1beta2-flat-request.yaml"


def cluster_documents(profile: str = "gke-l4-8") -> list[dict[str, Any]]:
    shape = get_profile(profile)
    node = shape.node_name(0)
    return [
        {"apiVersion": "v1", "kind": "Node", "metadata": {"name": node,
                                                           "labels": shape.labels(node)}},
        {"apiVersion": "resource.k8s.io/v1", "kind": "ResourceSlice",
         "metadata": {"name": f"{node}-gpu"},
         "spec": {"driver": shape.driver, "nodeName": node,
                  "pool": {"name": node, "generation": 1, "resourceSliceCount": 1},
                  "devices": shape.devices(node)}},
    ]


def write(tmp_path: Path, name: str, documents: list[Any]) -> Path:
    path = tmp_path / name
    path.write_text(yaml.safe_dump_all(documents))
    return path


def test_load_and_allocate(tmp_path: Path):
    cluster = write(tmp_path, "cluster.yaml", cluster_documents())

    slices, classes, claims, nodes = load_yaml_objects([cluster, CLASSES_FILE, TEMPLATE_FILE])
    outcome = allocate(claims[0], slices, classes, [], nodes)

    assert len(slices) == 1
    assert sorted(classes) == ["gpu.nvidia.com", "tpu.google.com"]
    assert [c["metadata"]["name"] for c in claims] == ["two-gpus"]
    assert claims[0]["kind"] == "ResourceClaim"
    assert len(nodes) == 1
    assert isinstance(outcome, Allocation)
    assert [(r.request, r.device) for r in outcome.results] == [("pair", "gpu-0"),
                                                                ("pair", "gpu-1")]


def test_template_becomes_claim():
    _, _, claims, _ = load_yaml_objects([TEMPLATE_FILE])

    assert claims[0]["spec"]["devices"]["requests"][0]["name"] == "pair"


def test_list_kind_read(tmp_path: Path):
    listed = write(tmp_path, "list.yaml", [{"apiVersion": "v1", "kind": "List",
                                           "items": cluster_documents()}])

    slices, _, _, nodes = load_yaml_objects([listed])

    assert len(slices) == 1
    assert len(nodes) == 1


def test_empty_documents_skipped(tmp_path: Path):
    path = tmp_path / "sparse.yaml"
    path.write_text("---\n---\n" + yaml.safe_dump(cluster_documents()[0]))

    assert len(load_yaml_objects([path])[3]) == 1


@pytest.mark.parametrize("documents, message", [
    ([{"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "p"}}],
     "document 1: unsupported kind 'Pod'"),
    ([{"kind": "Node", "apiVersion": "v1", "metadata": {"name": "a"}}, ["not", "a", "map"]],
     "document 2: expected a Kubernetes object"),
    ([{"apiVersion": "v1", "kind": "ResourceSlice", "metadata": {"name": "s"}}],
     "ResourceSlice needs apiVersion resource.k8s.io/v1"),
    ([{"apiVersion": "resource.k8s.io/v1", "kind": "DeviceClass", "metadata": {}}],
     "DeviceClass has no metadata.name"),
    ([{"apiVersion": "resource.k8s.io/v1", "kind": "ResourceSlice", "metadata": {"name": "s"},
       "spec": {"driver": "d"}}],
     r"document 1 \(ResourceSlice s\): spec.pool is missing"),
    ([{"apiVersion": "resource.k8s.io/v1", "kind": "ResourceClaim", "metadata": {"name": "c"},
       "spec": {}}],
     "spec.devices is missing"),
    ([{"apiVersion": "resource.k8s.io/v1", "kind": "ResourceClaimTemplate",
       "metadata": {"name": "t"}, "spec": {"devices": {}}}],
     "spec.spec is missing"),
    ([{"apiVersion": "resource.k8s.io/v1", "kind": "DeviceClass", "metadata": {"name": "x"}}] * 2,
     "document 2 \\(DeviceClass x\\): DeviceClass x is defined twice"),
    ([{"apiVersion": "v1", "kind": "List", "items": [{"kind": "Secret"}]}],
     "document 1, item 1: unsupported kind 'Secret'"),
])
def test_malformed_input(tmp_path: Path, documents: list[Any], message: str):
    path = write(tmp_path, "bad.yaml", documents)

    with pytest.raises(WhatIfError, match=message) as caught:
        load_yaml_objects([path])

    assert str(path) in str(caught.value)


def test_invalid_yaml_names_line(tmp_path: Path):
    path = tmp_path / "broken.yaml"
    path.write_text("kind: Node\nmetadata: {name: a\n")

    with pytest.raises(WhatIfError, match=r"broken.yaml: invalid YAML at line \d+"):
        load_yaml_objects([path])


def test_missing_file(tmp_path: Path):
    with pytest.raises(WhatIfError, match="cannot read .*absent.yaml"):
        load_yaml_objects([tmp_path / "absent.yaml"])


ALLOCATION = Allocation(
    "default/pair", "node-a",
    (DeviceResult("gpus", "gpu.nvidia.com", "node-a", "gpu-0"),
     DeviceResult("gpus", "gpu.nvidia.com", "node-a", "gpu-1", admin_access=True)),
    {"nodeSelectorTerms": [{"matchFields": [
        {"key": "metadata.name", "operator": "In", "values": ["node-a"]}]}]})


def test_explain_allocation():
    assert explain(ALLOCATION) == (
        "claim default/pair can be allocated on node node-a:\n"
        "  - request gpus: device gpu-0 of pool node-a, driver gpu.nvidia.com\n"
        "  - request gpus: device gpu-1 of pool node-a, driver gpu.nvidia.com (admin access)\n"
        "  nodeSelector: metadata.name In ['node-a']")


def test_explain_all_nodes():
    outcome = Allocation("default/net", "node-a",
                         (DeviceResult("nic", "net.example.com", "fabric", "nic-0"),), None)

    assert explain(outcome).endswith("available on every node, so the allocation has no "
                                     "nodeSelector")


def test_explain_unallocatable():
    outcome = Unallocatable("default/pair", "no node can satisfy the claim\n  - node a: full")

    assert explain(outcome) == ("claim default/pair cannot be allocated:\n"
                                "  no node can satisfy the claim\n"
                                "    - node a: full")


def test_to_json_allocation():
    data = to_json(ALLOCATION)

    assert data["allocated"] is True
    assert data["node"] == "node-a"
    assert data["allocation"]["devices"]["results"][1] == {
        "request": "gpus", "driver": "gpu.nvidia.com", "pool": "node-a", "device": "gpu-1",
        "adminAccess": True}
    assert data["allocation"]["nodeSelector"] == ALLOCATION.node_selector
    assert json.loads(json.dumps(data)) == data


def test_to_json_unallocatable():
    assert to_json(Unallocatable("default/x", "why")) == {
        "claim": "default/x", "allocated": False, "reason": "why"}

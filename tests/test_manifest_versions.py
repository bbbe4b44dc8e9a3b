"""Unit tests of fixtures/manifest_versions.py: finding and moving v1beta1-style request fields.

The input tests/data/v1beta2-flat-request.yaml is a v1beta2 ResourceClaimTemplate
written in the v1beta1 layout, with the request fields directly on the request
instead of under ``exactly``.
"""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

import pytest
import yaml

from fixtures.manifest_versions import misplaced_request_fields, to_nested_layout

DATA = Path(__file__).parent / "data"
SELECTOR = {"cel": {"expression": 'device.capacity["gpu.nvidia.com"].memory.compareTo('
                                  'quantity("16Gi")) >= 0'}}
MISPLACED = ("deviceClassName", "allocationMode", "count", "selectors")


@pytest.fixture
def template() -> dict[str, Any]:
    return yaml.safe_load((DATA / "v1beta2-flat-request.yaml").read_text())


def as_claim(template: dict[str, Any], version: str = "v1beta2") -> dict[str, Any]:
    """Turn the template into a ResourceClaim with the same requests."""
    return {"apiVersion": f"resource.k8s.io/{version}", "kind": "ResourceClaim",
            "metadata": {"name": "two-gpus", "namespace": "default"},
            "spec": copy.deepcopy(template["spec"]["spec"])}


@pytest.mark.parametrize("field", MISPLACED)
def test_misplaced_template_names_field(template: dict[str, Any], field: str):
    assert f"spec.spec.devices.requests[0].{field}" in misplaced_request_fields(template)


def test_misplaced_template_only_four(template: dict[str, Any]):
    assert len(misplaced_request_fields(template)) == 4


def test_misplaced_claim_uses_spec_path(template: dict[str, Any]):
    found = misplaced_request_fields(as_claim(template))

    assert found == [f"spec.devices.requests[0].{field}" for field in MISPLACED]


@pytest.mark.parametrize("kind", ["ResourceClaimTemplate", "ResourceClaim"])
def test_misplaced_v1beta1_reports_nothing(template: dict[str, Any], kind: str):
    if kind == "ResourceClaim":
        obj = as_claim(template, "v1beta1")
    else:
        obj = dict(template, apiVersion="resource.k8s.io/v1beta1")

    assert misplaced_request_fields(obj) == []


def test_misplaced_v1_reported(template: dict[str, Any]):
    obj = dict(template, apiVersion="resource.k8s.io/v1")

    assert len(misplaced_request_fields(obj)) == 4


def test_nested_layout_keeps_meaning(template: dict[str, Any]):
    converted = to_nested_layout(template)

    request = converted["spec"]["spec"]["devices"]["requests"][0]
    assert request["name"] == "pair"
    assert request["exactly"]["deviceClassName"] == "gpu.nvidia.com"
    assert request["exactly"]["allocationMode"] == "ExactCount"
    assert request["exactly"]["count"] == 2
    assert request["exactly"]["selectors"] == [SELECTOR]
    assert sorted(request) == ["exactly", "name"]


def test_nested_layout_nothing_misplaced(template: dict[str, Any]):
    assert misplaced_request_fields(to_nested_layout(template)) == []


def test_nested_layout_input_unchanged(template: dict[str, Any]):
    before = copy.deepcopy(template)

    to_nested_layout(template)

    assert template == before


def test_nested_layout_claim(template: dict[str, Any]):
    converted = to_nested_layout(as_claim(template))

    request = converted["spec"]["devices"]["requests"][0]
    assert request["exactly"]["count"] == 2
    assert misplaced_request_fields(converted) == []


def test_nested_layout_already_nested_unchanged(template: dict[str, Any]):
    nested = to_nested_layout(template)

    assert to_nested_layout(nested) == nested

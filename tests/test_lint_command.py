"""draconf lint and convert on manifests, including the reported v1beta2-flat-request case."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from fixtures.cli import main
from fixtures.dra_lint import check, convert

DATA = Path(__file__).resolve().parent / "data"
CASE = DATA / "v1beta2-flat-request.yaml"
SELECTOR = 'device.capacity["gpu.nvidia.com"].memory.compareTo(quantity("16Gi")) >= 0'


def test_lint_names_each_misplaced_field(capsys):
    code = main(["lint", str(CASE)])

    out = capsys.readouterr().out
    assert code == 1
    assert "follows the v1beta1 layout" in out
    for field in ("deviceClassName", "allocationMode", "count", "selectors"):
        assert f"misplaced field spec.spec.devices.requests[0].{field}" in out


def test_lint_prints_the_right_layout(capsys):
    main(["lint", str(CASE)])

    out = capsys.readouterr().out
    layout = out.split("the same object in the v1beta2 layout:")[1]
    assert "exactly:" in layout
    assert SELECTOR in layout


@pytest.mark.parametrize("version", ["v1beta2", "v1"])
def test_convert_keeps_meaning(capsys, version):
    code = main(["convert", "--to", version, str(CASE)])

    [converted] = list(yaml.safe_load_all(capsys.readouterr().out))
    request = converted["spec"]["spec"]["devices"]["requests"][0]
    assert code == 0
    assert converted["apiVersion"] == f"resource.k8s.io/{version}"
    assert request["exactly"]["deviceClassName"] == "gpu.nvidia.com"
    assert request["exactly"]["allocationMode"] == "ExactCount"
    assert request["exactly"]["count"] == 2
    assert request["exactly"]["selectors"] == [{"cel": {"expression": SELECTOR}}]
    assert check(converted).ok


def test_convert_round_trip_of_slice():
    slice_v1beta1 = {"apiVersion": "resource.k8s.io/v1beta1", "kind": "ResourceSlice",
                     "metadata": {"name": "s"},
                     "spec": {"driver": "d", "pool": {"name": "p", "generation": 1,
                                                      "resourceSliceCount": 1},
                              "nodeName": "n", "devices": [{"name": "gpu-0", "basic": {
                                  "attributes": {"type": {"string": "gpu"}}}}]}}

    flat = convert(slice_v1beta1, "v1")
    back = convert(flat, "v1beta1")

    assert flat["spec"]["devices"][0] == {"name": "gpu-0",
                                          "attributes": {"type": {"string": "gpu"}}}
    assert check(flat).ok
    assert back == slice_v1beta1


def test_unknown_field_named(tmp_path, capsys):
    path = tmp_path / "typo.yaml"
    path.write_text(yaml.safe_dump({"apiVersion": "resource.k8s.io/v1", "kind": "DeviceClass",
                                    "metadata": {"name": "x"},
                                    "spec": {"selector": [{"cel": {"expression": "true"}}]}}))

    code = main(["lint", str(path)])

    assert code == 1
    assert "unknown field spec.selector" in capsys.readouterr().out


@pytest.mark.parametrize("content, message", [
    (None, "cannot read"),
    ("kind: [unclosed", "is not valid YAML"),
    ("- just\n- a list\n", "is not a Kubernetes object"),
    ("", "contain no Kubernetes object"),
], ids=["missing", "invalid-yaml", "not-an-object", "empty"])
def test_bad_input_exits_two(tmp_path, capsys, content, message):
    path = tmp_path / "input.yaml"
    if content is not None:
        path.write_text(content)

    code = main(["lint", str(path)])

    err = capsys.readouterr().err
    assert code == 2
    assert message in err
    assert "Traceback" not in err

"""The draconf allocate command in file mode: output for people and scripts, and errors."""

from __future__ import annotations

import json

import pytest
import yaml

from fake_devices.install import deploy_objects
from fake_devices.profiles import get_profile
from fake_devices.slices import build_slice
from fixtures.cli import main

TEMPLATE = """
apiVersion: resource.k8s.io/v1
kind: ResourceClaimTemplate
metadata: {name: gpus}
spec:
  spec:
    devices:
      requests:
      - name: pair
        exactly: {deviceClassName: gpu.nvidia.com, count: COUNT}
"""


@pytest.fixture
def inventory(tmp_path):
    profile = get_profile("gke-l4-8")
    node = profile.node_name(0)
    objects = [build_slice(node, "uid-1", profile, "v1", 1, "test")]
    objects += deploy_objects("deviceclasses.yaml")
    objects.append({"apiVersion": "v1", "kind": "Node", "metadata": {"name": node}})
    path = tmp_path / "inventory.yaml"
    path.write_text(yaml.safe_dump_all(objects))
    return path, node


def claim_file(tmp_path, count: int):
    path = tmp_path / f"claim-{count}.yaml"
    path.write_text(TEMPLATE.replace("COUNT", str(count)))
    return path


def test_text_output_names_devices(inventory, tmp_path, capsys):
    path, node = inventory

    code = main(["allocate", str(path), str(claim_file(tmp_path, 2))])

    out = capsys.readouterr().out
    assert code == 0
    assert node in out
    assert "gpu-0" in out
    assert "gpu-1" in out


def test_json_output_for_scripts(inventory, tmp_path, capsys):
    path, node = inventory

    code = main(["allocate", "--output", "json", str(path), str(claim_file(tmp_path, 2))])

    [outcome] = json.loads(capsys.readouterr().out)
    assert code == 0
    assert outcome["allocated"] is True
    assert outcome["node"] == node
    assert len(outcome["allocation"]["devices"]["results"]) == 2


def test_unallocatable_exits_one_with_reason(inventory, tmp_path, capsys):
    path, _ = inventory

    code = main(["allocate", str(path), str(claim_file(tmp_path, 9))])

    out = capsys.readouterr().out
    assert code == 1
    assert "cannot be allocated" in out
    assert "pair" in out


@pytest.mark.parametrize("arguments, message", [
    ([], "give at least one YAML file"),
    (["/nonexistent/claims.yaml"], "cannot read /nonexistent/claims.yaml"),
    (["--watch"], "--watch needs --kubeconfig"),
    (["--kubeconfig", "/nonexistent/kubeconfig", "CLAIM"], "does not exist"),
], ids=["no-files", "missing-file", "watch-without-cluster", "missing-kubeconfig"])
def test_bad_input_exits_two(tmp_path, capsys, arguments, message):
    arguments = [str(claim_file(tmp_path, 1)) if a == "CLAIM" else a for a in arguments]

    code = main(["allocate", *arguments])

    err = capsys.readouterr().err
    assert code == 2
    assert message in err
    assert "Traceback" not in err


def test_malformed_yaml_exits_two(tmp_path, capsys):
    bad = tmp_path / "bad.yaml"
    bad.write_text("kind: ResourceClaim\n  metadata: [unclosed\n")

    code = main(["allocate", str(bad)])

    assert code == 2
    assert "bad.yaml" in capsys.readouterr().err

"""Unit tests of fake_devices/cdi.py: writing, validating and resolving CDI spec files."""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any

import pytest

from fake_devices import cdi
from fake_devices.cdi import CdiError, ContainerEdits, Registry

KIND = "example.com/gpu"


def valid_spec() -> dict[str, Any]:
    return {
        "cdiVersion": "0.6.0",
        "kind": KIND,
        "devices": [
            {"name": "gpu0", "containerEdits": {"env": ["DEVICE=gpu0"]}},
            {"name": "gpu1", "containerEdits": {"env": ["DEVICE=gpu1"]}},
        ],
        "containerEdits": {"env": ["VENDOR=example"],
                           "mounts": [{"hostPath": "/opt/tool", "containerPath": "/usr/bin/tool"}]},
    }


def write_json(path: Path, data: Any) -> Path:
    path.write_text(json.dumps(data))
    return path


# write_spec.

def test_write_spec_valid_output(tmp_path: Path):
    devices = {"gpu0": ContainerEdits(env=["DEVICE=gpu0"])}
    common = ContainerEdits(env=["VENDOR=example"])

    path = cdi.write_spec(tmp_path / "cdi", "example.json", KIND, devices, common)

    assert path == tmp_path / "cdi" / "example.json"
    spec = json.loads(path.read_text())
    cdi.validate_spec(spec, path.name)
    assert spec["cdiVersion"] == cdi.CDI_VERSION
    assert spec["kind"] == KIND
    assert spec["devices"] == [{"name": "gpu0", "containerEdits": {"env": ["DEVICE=gpu0"]}}]
    assert spec["containerEdits"] == {"env": ["VENDOR=example"]}


def test_write_spec_no_temporary_file_left(tmp_path: Path):
    cdi.write_spec(tmp_path, "example.json", KIND, {"gpu0": ContainerEdits(env=["A=1"])})

    assert sorted(p.name for p in tmp_path.iterdir()) == ["example.json"]


def test_write_spec_empty_common_edits_omitted(tmp_path: Path):
    path = cdi.write_spec(tmp_path, "example.json", KIND,
                          {"gpu0": ContainerEdits(env=["A=1"])}, ContainerEdits())

    assert "containerEdits" not in json.loads(path.read_text())


def test_write_spec_replaces_existing(tmp_path: Path):
    cdi.write_spec(tmp_path, "example.json", KIND, {"gpu0": ContainerEdits(env=["A=1"])})

    path = cdi.write_spec(tmp_path, "example.json", KIND, {"gpu1": ContainerEdits(env=["A=2"])})

    assert [d["name"] for d in json.loads(path.read_text())["devices"]] == ["gpu1"]


def test_write_spec_invalid_keeps_old_file(tmp_path: Path):
    path = cdi.write_spec(tmp_path, "example.json", KIND, {"gpu0": ContainerEdits(env=["A=1"])})
    before = path.read_text()

    with pytest.raises(CdiError, match="example.json"):
        cdi.write_spec(tmp_path, "example.json", "no-slash", {"gpu0": ContainerEdits()})

    assert path.read_text() == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["example.json"]


# validate_spec.

def test_validate_spec_accepts_valid():
    cdi.validate_spec(valid_spec())


def _set(key: str, value: Any):
    def change(spec: dict[str, Any]) -> None:
        spec[key] = value
    return change


def _duplicate_device(spec: dict[str, Any]) -> None:
    spec["devices"][1]["name"] = spec["devices"][0]["name"]


def _no_edits(spec: dict[str, Any]) -> None:
    del spec["devices"][0]["containerEdits"]


INVALID_SPECS = {
    "cdiVersion-missing": (_set("cdiVersion", None), "cdiVersion"),
    "cdiVersion-not-semver": (_set("cdiVersion", "0.6"), "cdiVersion"),
    "cdiVersion-number": (_set("cdiVersion", 0.6), "cdiVersion"),
    "kind-without-class": (_set("kind", "example.com"), "vendor/class"),
    "kind-uppercase-vendor": (_set("kind", "Example.com/gpu"), "vendor/class"),
    "kind-empty-class": (_set("kind", "example.com/"), "vendor/class"),
    "duplicate-device-name": (_duplicate_device, "appears twice"),
    "devices-empty": (_set("devices", []), "at least one device"),
    "devices-missing": (_set("devices", None), "at least one device"),
    "device-name-invalid": (lambda s: s["devices"][0].update(name="-gpu"), "is invalid"),
    "device-without-edits": (_no_edits, "no containerEdits"),
}


@pytest.mark.parametrize("case", list(INVALID_SPECS))
def test_validate_spec_rejects(case: str):
    change, expected_text = INVALID_SPECS[case]
    spec = copy.deepcopy(valid_spec())
    change(spec)

    with pytest.raises(CdiError, match=expected_text) as raised:
        cdi.validate_spec(spec, "broken.json")

    assert str(raised.value).startswith("broken.json: ")


# Registry.resolve.

def test_resolve_unknown_id_names_id_and_dirs(tmp_path: Path):
    first, second = tmp_path / "etc-cdi", tmp_path / "run-cdi"
    first.mkdir()
    write_json(first / "example.json", valid_spec())

    with pytest.raises(CdiError) as raised:
        Registry([first, second]).resolve([f"{KIND}=gpu9"])

    message = str(raised.value)
    assert f"{KIND}=gpu9" in message
    assert str(first) in message
    assert str(second) in message


def test_resolve_missing_dir_is_empty(tmp_path: Path):
    registry = Registry([tmp_path / "absent"])

    assert registry.resolve([]).to_json() == {}


def test_resolve_common_edits_applied_once(tmp_path: Path):
    write_json(tmp_path / "example.json", valid_spec())

    edits = Registry([tmp_path]).resolve([f"{KIND}=gpu0", f"{KIND}=gpu1"])

    assert edits.env == ["VENDOR=example", "DEVICE=gpu0", "DEVICE=gpu1"]
    assert edits.mounts == [{"hostPath": "/opt/tool", "containerPath": "/usr/bin/tool"}]


def test_resolve_common_edits_per_spec(tmp_path: Path):
    write_json(tmp_path / "a.json", valid_spec())
    other = valid_spec()
    other["kind"] = "example.com/tpu"
    other["containerEdits"] = {"env": ["OTHER=1"]}
    write_json(tmp_path / "b.json", other)

    edits = Registry([tmp_path]).resolve([f"{KIND}=gpu0", "example.com/tpu=gpu0"])

    assert edits.env == ["VENDOR=example", "DEVICE=gpu0", "OTHER=1", "DEVICE=gpu0"]


def test_resolve_reads_yaml(tmp_path: Path):
    (tmp_path / "example.yaml").write_text(
        "cdiVersion: 0.6.0\nkind: example.com/gpu\n"
        "devices:\n- name: gpu0\n  containerEdits:\n    env: [DEVICE=gpu0]\n")

    edits = Registry([tmp_path]).resolve([f"{KIND}=gpu0"])

    assert edits.env == ["DEVICE=gpu0"]


def test_resolve_skips_hidden_and_other_files(tmp_path: Path):
    write_json(tmp_path / "example.json", valid_spec())
    (tmp_path / ".example.json.tmp").write_text("{half a spec")
    (tmp_path / "notes.txt").write_text("not a spec")

    edits = Registry([tmp_path]).resolve([f"{KIND}=gpu0"])

    assert "DEVICE=gpu0" in edits.env


INVALID_FILES = {
    "malformed-yaml": b"cdiVersion: [0.6.0\n",
    "empty": b"",
    "list-not-mapping": b"- cdiVersion: 0.6.0\n",
    "bad-kind": json.dumps({**valid_spec(), "kind": "gpu"}).encode(),
    "not-utf8": b"\xff\xfe\x00garbage",
}


@pytest.mark.parametrize("case", list(INVALID_FILES))
def test_resolve_invalid_file_named(tmp_path: Path, case: str):
    write_json(tmp_path / "a-good.json", valid_spec())
    (tmp_path / "broken.json").write_bytes(INVALID_FILES[case])

    with pytest.raises(CdiError, match="broken.json"):
        Registry([tmp_path]).resolve([f"{KIND}=gpu0"])


# ContainerEdits.

def test_edits_environment_later_wins():
    edits = ContainerEdits(env=["A=1", "B=x=y", "A=2"])

    assert edits.environment() == {"A": "2", "B": "x=y"}


def test_edits_json_round_trip():
    edits = ContainerEdits(env=["A=1"], mounts=[{"hostPath": "/a", "containerPath": "/b"}],
                           device_nodes=[{"path": "/dev/x"}], hooks=[{"hookName": "h"}])

    assert ContainerEdits.from_json(edits.to_json()) == edits

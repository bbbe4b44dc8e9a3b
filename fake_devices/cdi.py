"""Container Device Interface (CDI) spec files: writing, reading, resolving ids.

A spec is JSON (a subset of YAML, so runtimes read it either way) with
``cdiVersion``, ``kind`` ("vendor/class"), ``devices`` each with
``containerEdits``, and top-level ``containerEdits`` applied whenever any
device of the spec is injected. A fully qualified device id is
``vendor/class=name``.
"""

from __future__ import annotations

import json
import os
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

CDI_VERSION = "0.6.0"
_KIND = re.compile(r"^[a-z0-9]([a-z0-9.-]*[a-z0-9])?/[a-zA-Z0-9]([a-zA-Z0-9_.-]*[a-zA-Z0-9])?$")
_DEVICE_NAME = re.compile(r"^[a-zA-Z0-9]([a-zA-Z0-9_.:-]*[a-zA-Z0-9])?$")


class CdiError(ValueError):
    """An invalid spec or an id that no spec defines."""


@dataclass
class ContainerEdits:
    """Container edits a runtime applies for a device: env, mounts, device nodes."""

    env: list[str] = field(default_factory=list)
    mounts: list[dict[str, Any]] = field(default_factory=list)
    device_nodes: list[dict[str, Any]] = field(default_factory=list)
    hooks: list[dict[str, Any]] = field(default_factory=list)

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {}
        if self.env:
            out["env"] = self.env
        if self.mounts:
            out["mounts"] = self.mounts
        if self.device_nodes:
            out["deviceNodes"] = self.device_nodes
        if self.hooks:
            out["hooks"] = self.hooks
        return out

    @classmethod
    def from_json(cls, data: dict[str, Any] | None) -> "ContainerEdits":
        data = data or {}
        return cls(list(data.get("env") or []), list(data.get("mounts") or []),
                   list(data.get("deviceNodes") or []), list(data.get("hooks") or []))

    def extend(self, other: "ContainerEdits") -> None:
        self.env += other.env
        self.mounts += other.mounts
        self.device_nodes += other.device_nodes
        self.hooks += other.hooks

    def environment(self) -> dict[str, str]:
        """Return env edits as a mapping; a later entry wins, as in runtimes."""
        result = {}
        for entry in self.env:
            key, _, value = entry.partition("=")
            result[key] = value
        return result


def qualified_name(kind: str, device: str) -> str:
    return f"{kind}={device}"


def validate_spec(spec: dict[str, Any], origin: str = "spec") -> None:
    """Raise CdiError naming the first problem a runtime would reject the spec for."""
    version = spec.get("cdiVersion")
    if not isinstance(version, str) or not re.fullmatch(r"\d+\.\d+\.\d+", version):
        raise CdiError(f"{origin}: cdiVersion {version!r} is not a version like 0.6.0")
    kind = spec.get("kind")
    if not isinstance(kind, str) or not _KIND.match(kind):
        raise CdiError(f"{origin}: kind {kind!r} is not of the form vendor/class")
    devices = spec.get("devices")
    if not isinstance(devices, list) or not devices:
        raise CdiError(f"{origin}: a spec needs at least one device")
    seen = set()
    for device in devices:
        name = device.get("name") if isinstance(device, dict) else None
        if not isinstance(name, str) or not _DEVICE_NAME.match(name):
            raise CdiError(f"{origin}: device name {name!r} is invalid")
        if name in seen:
            raise CdiError(f"{origin}: device name {name!r} appears twice")
        seen.add(name)
        if not isinstance(device.get("containerEdits"), dict):
            raise CdiError(f"{origin}: device {name} has no containerEdits")


def write_spec(directory: Path, file_name: str, kind: str,
               devices: dict[str, ContainerEdits], common: ContainerEdits | None = None) -> Path:
    """Write a spec atomically (temporary file, then rename) and return its path."""
    spec: dict[str, Any] = {
        "cdiVersion": CDI_VERSION,
        "kind": kind,
        "devices": [{"name": name, "containerEdits": edits.to_json()}
                    for name, edits in devices.items()],
    }
    if common is not None and common.to_json():
        spec["containerEdits"] = common.to_json()
    validate_spec(spec, file_name)
    directory.mkdir(parents=True, exist_ok=True)
    path = directory / file_name
    temporary = directory / f".{file_name}.tmp"
    with open(temporary, "w") as handle:
        json.dump(spec, handle, indent=2)
        handle.flush()
        os.fsync(handle.fileno())
    os.replace(temporary, path)
    return path


class Registry:
    """A loaded set of CDI spec directories, read as a runtime reads them."""

    def __init__(self, directories: list[Path]):
        self.directories = directories

    def _specs(self) -> list[tuple[Path, dict[str, Any]]]:
        specs = []
        for directory in self.directories:
            if not directory.is_dir():
                continue
            for path in sorted(directory.iterdir()):
                if path.name.startswith(".") or path.suffix not in (".json", ".yaml", ".yml"):
                    continue
                try:
                    spec = yaml.safe_load(path.read_text())
                    validate_spec(spec, str(path.name))
                except (OSError, UnicodeDecodeError, yaml.YAMLError, CdiError,
                        AttributeError) as error:
                    raise CdiError(f"CDI spec {path.name} is invalid: {error}") from None
                specs.append((path, spec))
        return specs

    def resolve(self, device_ids: list[str]) -> ContainerEdits:
        """Return the combined edits for fully qualified ids; unknown ids raise."""
        index: dict[str, tuple[ContainerEdits, ContainerEdits]] = {}
        for _, spec in self._specs():
            common = ContainerEdits.from_json(spec.get("containerEdits"))
            for device in spec["devices"]:
                index[qualified_name(spec["kind"], device["name"])] = (
                    ContainerEdits.from_json(device["containerEdits"]), common)
        result = ContainerEdits()
        applied_common: list[int] = []
        for device_id in device_ids:
            if device_id not in index:
                raise CdiError(f"CDI device {device_id} is not defined by any spec in "
                               f"{', '.join(str(d) for d in self.directories)}")
            edits, common = index[device_id]
            if id(common) not in applied_common:
                applied_common.append(id(common))
                result.extend(common)
            result.extend(edits)
        return result

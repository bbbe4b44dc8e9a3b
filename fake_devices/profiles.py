"""Node inventories (profiles) of the fake driver, modelled on GKE node pools.

A profile names the node's GKE labels and taints and the devices the fake
driver publishes for it. Device attributes and TPU variables follow the
driver contracts of ``gpu.nvidia.com`` and ``tpu.google.com``.
"""

from __future__ import annotations

import math
import uuid
from pathlib import Path
from dataclasses import dataclass, field
from typing import Any

import yaml

GPU_DRIVER = "gpu.nvidia.com"
TPU_DRIVER = "tpu.google.com"
GPU_TAINT = {"key": "nvidia.com/gpu", "value": "present", "effect": "NoSchedule"}
TPU_TAINT = {"key": "google.com/tpu", "value": "present", "effect": "NoSchedule"}
FIRST_TPU_METRICS_PORT = 8431
_UUID_NAMESPACE = uuid.UUID("6f1d2c4e-5a3b-4c8d-9e0f-1a2b3c4d5e6f")


class ProfileError(ValueError):
    """An unknown or inconsistent profile."""


@dataclass(frozen=True)
class GpuModel:
    product_name: str
    accelerator_label: str
    architecture: str
    compute_capability: str
    memory: str


# tpuGen attribute and GKE accelerator label per TPU generation; the core
# count is twice the chip count on v4 and v5p (two TensorCores per chip).
TPU_GENERATIONS = {
    "v4": ("tpu-v4-podslice", 2),
    "v5litepod": ("tpu-v5-lite-podslice", 1),
    "v5p": ("tpu-v5p-slice", 2),
    "v6e": ("tpu-v6e-slice", 1),
}
CHIPS_PER_HOST_BOUNDS = {1: (1, 1, 1), 2: (1, 2, 1), 4: (2, 2, 1), 8: (2, 4, 1)}


@dataclass(frozen=True)
class Profile:
    """One node shape: labels, taints and the devices of one driver."""

    name: str
    driver: str
    node_pool: str
    machine_type: str
    device_count: int
    gpu: GpuModel | None = None
    tpu_generation: str = ""
    topology: str = ""
    extra_labels: dict[str, str] = field(default_factory=dict)

    @property
    def kind(self) -> str:
        return "gpu" if self.driver == GPU_DRIVER else "tpu"

    def node_name(self, index: int = 0) -> str:
        """Name simulated nodes the way GKE names pool members."""
        return f"gke-draconf-{self.node_pool}-{_pool_hash(self.node_pool)}-{index:04x}"

    def labels(self, node_name: str) -> dict[str, str]:
        labels = {
            "kubernetes.io/hostname": node_name,
            "kubernetes.io/os": "linux",
            "kubernetes.io/arch": "amd64",
            "node.kubernetes.io/instance-type": self.machine_type,
            "cloud.google.com/gce-machine-type": self.machine_type,
            "cloud.google.com/gke-nodepool": self.node_pool,
        }
        if self.gpu is not None:
            labels["cloud.google.com/gke-accelerator"] = self.gpu.accelerator_label
            labels["cloud.google.com/gke-accelerator-count"] = str(self.device_count)
        else:
            labels["cloud.google.com/gke-tpu-accelerator"] = TPU_GENERATIONS[self.tpu_generation][0]
            labels["cloud.google.com/gke-tpu-topology"] = self.topology
            labels["cloud.google.com/gke-accelerator-count"] = str(self.device_count)
        labels.update(self.extra_labels)
        return labels

    def taints(self) -> list[dict[str, str]]:
        return [dict(GPU_TAINT if self.gpu is not None else TPU_TAINT)]

    def devices(self, node_name: str) -> list[dict[str, Any]]:
        """Return the devices of one node as resource.k8s.io/v1 Device objects."""
        if self.gpu is not None:
            return [self._gpu_device(node_name, index) for index in range(self.device_count)]
        return [self._tpu_device(node_name, index) for index in range(self.device_count)]

    def device_uuid(self, node_name: str, index: int) -> str:
        stable = uuid.uuid5(_UUID_NAMESPACE, f"{self.driver}/{node_name}/{index}")
        return f"GPU-{stable}" if self.gpu is not None else f"TPU-{stable}"

    def _gpu_device(self, node_name: str, index: int) -> dict[str, Any]:
        assert self.gpu is not None
        bus = 0x04 + index
        return {
            "name": f"gpu-{index}",
            "attributes": {
                "type": {"string": "gpu"},
                "uuid": {"string": self.device_uuid(node_name, index)},
                "productName": {"string": self.gpu.product_name},
                "brand": {"string": "Nvidia"},
                "architecture": {"string": self.gpu.architecture},
                "cudaComputeCapability": {"version": self.gpu.compute_capability},
                "driverVersion": {"version": "570.133.20"},
                "cudaDriverVersion": {"version": "12.8.0"},
                "resource.kubernetes.io/pciBusID": {"string": f"0000:{bus:02x}:00.0"},
                "resource.kubernetes.io/pcieRoot": {"string": f"pci0000:{index // 4:02x}"},
            },
            "capacity": {"memory": {"value": self.gpu.memory}},
        }

    def _tpu_device(self, node_name: str, index: int) -> dict[str, Any]:
        return {
            "name": str(index),
            "attributes": {
                "index": {"int": index},
                "uuid": {"string": self.device_uuid(node_name, index)},
                "tpuGen": {"string": self.tpu_generation},
                "accelerator": {"string": TPU_GENERATIONS[self.tpu_generation][0]},
                "chipCount": {"int": self.device_count},
                "topology": {"string": self.topology},
            },
        }


def tpu_environment(profile: Profile) -> dict[str, str]:
    """Compute the TPU runtime variables a container on this node receives.

    The values derive from the node's generation and topology labels, the
    way GKE's TPU stack fills them in for a single-host slice.
    """
    if profile.gpu is not None:
        raise ProfileError(f"profile {profile.name} is not a TPU profile")
    dims = [int(part) for part in profile.topology.split("x")]
    padded = (dims + [1, 1])[:3]
    chip_count = profile.device_count
    per_host = CHIPS_PER_HOST_BOUNDS.get(chip_count)
    if per_host is None:
        raise ProfileError(f"profile {profile.name}: no chips-per-host bounds for {chip_count} chips")
    if math.prod(padded) != chip_count:
        raise ProfileError(f"profile {profile.name}: topology {profile.topology} does not hold "
                           f"{chip_count} chips on one host; multi-host slices are not simulated")
    host_bounds = [max(1, total // host) for total, host in zip(padded, per_host)]
    cores_per_chip = TPU_GENERATIONS[profile.tpu_generation][1]
    if profile.tpu_generation in ("v4", "v5p"):
        wrap = all(dim >= 4 for dim in padded)
        wrap_flags = [wrap, wrap, wrap]
    else:
        wrap_flags = [dim == 16 for dim in padded]
    env = {
        "TPU_ACCELERATOR_TYPE": f"{profile.tpu_generation}-{chip_count * cores_per_chip}",
        "TPU_TOPOLOGY": profile.topology,
        "TPU_CHIPS_PER_HOST_BOUNDS": ",".join(str(value) for value in per_host),
        "TPU_HOST_BOUNDS": ",".join(str(value) for value in host_bounds),
        "TPU_TOPOLOGY_WRAP": ",".join("true" if flag else "false" for flag in wrap_flags),
        "TPU_TOPOLOGY_ALT": "false",
        "TPU_SKIP_MDS_QUERY": "true",
        "TPU_WORKER_ID": "0",
        "TPU_WORKER_HOSTNAMES": "localhost",
        "TPU_RUNTIME_METRICS_PORTS": ",".join(
            str(FIRST_TPU_METRICS_PORT + index) for index in range(chip_count)),
    }
    return env


def _pool_hash(pool: str) -> str:
    return uuid.uuid5(_UUID_NAMESPACE, pool).hex[:8]


PROFILES_FILE = Path(__file__).resolve().parent / "profiles.yaml"


def load_profiles(path: Path = PROFILES_FILE) -> dict[str, Profile]:
    """Read the profiles data file; raise ProfileError naming what is wrong."""
    try:
        data = yaml.safe_load(path.read_text())
    except (OSError, yaml.YAMLError) as error:
        raise ProfileError(f"cannot read profiles from {path}: {error}") from None
    profiles: dict[str, Profile] = {}
    try:
        models = {name: GpuModel(m["productName"], m["accelerator"], m["architecture"],
                                 str(m["cudaComputeCapability"]), str(m["memory"]))
                  for name, m in data["gpu_models"].items()}
        for name, (model, count, machine, pool) in data["gpu_profiles"].items():
            if model not in models:
                raise ProfileError(f"{path}: profile {name} names unknown GPU model {model!r}")
            profiles[name] = Profile(name, GPU_DRIVER, pool, machine, int(count),
                                     gpu=models[model])
        for name, (generation, topology, machine, pool) in data["tpu_profiles"].items():
            if generation not in TPU_GENERATIONS:
                raise ProfileError(f"{path}: profile {name} names unknown TPU generation "
                                   f"{generation!r}; known: {', '.join(TPU_GENERATIONS)}")
            chips = math.prod(int(d) for d in str(topology).split("x"))
            profiles[name] = Profile(name, TPU_DRIVER, pool, machine, chips,
                                     tpu_generation=generation, topology=str(topology))
    except (KeyError, TypeError, ValueError) as error:
        if isinstance(error, ProfileError):
            raise
        raise ProfileError(f"{path} is malformed: {type(error).__name__}: {error}") from None
    for profile in profiles.values():
        if profile.kind == "tpu":
            tpu_environment(profile)  # rejects topologies the rules cannot describe
    return profiles


PROFILES: dict[str, Profile] = load_profiles()


def get_profile(name: str) -> Profile:
    try:
        return PROFILES[name]
    except KeyError:
        raise ProfileError(
            f"unknown profile {name!r}; known profiles: {', '.join(sorted(PROFILES))}") from None


def profile_for_labels(labels: dict[str, str]) -> Profile | None:
    """Return the profile whose GKE labels a node carries, if any.

    A GPU node matches on accelerator type and count, a TPU node on
    accelerator type and topology, so a real GKE pool maps to its profile.
    """
    for profile in PROFILES.values():
        wanted = profile.labels("x")
        keys = (["cloud.google.com/gke-accelerator", "cloud.google.com/gke-accelerator-count"]
                if profile.kind == "gpu" else
                ["cloud.google.com/gke-tpu-accelerator", "cloud.google.com/gke-tpu-topology"])
        if all(labels.get(key) == wanted[key] for key in keys):
            return profile
    return None

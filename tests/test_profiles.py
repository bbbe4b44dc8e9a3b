"""Unit tests of the fake driver's node profiles and of the ResourceSlice device layout."""

from __future__ import annotations

import copy

import pytest

from fake_devices import slices
from fake_devices.profiles import PROFILES, ProfileError, get_profile, tpu_environment

T4 = get_profile("gke-t4-1")
T4_NODE = T4.node_name(0)


# TPU runtime variables.

TPU_CASES = {
    "v6e-2x4": ("gke-tpu-v6e-8", {
        "TPU_ACCELERATOR_TYPE": "v6e-8",
        "TPU_TOPOLOGY": "2x4",
        "TPU_CHIPS_PER_HOST_BOUNDS": "2,4,1",
        "TPU_HOST_BOUNDS": "1,1,1",
        "TPU_TOPOLOGY_WRAP": "false,false,false",
        "TPU_RUNTIME_METRICS_PORTS": "8431,8432,8433,8434,8435,8436,8437,8438",
    }),
    "v5e-2x2": ("gke-tpu-v5e-4", {
        "TPU_ACCELERATOR_TYPE": "v5litepod-4",
        "TPU_TOPOLOGY": "2x2",
        "TPU_CHIPS_PER_HOST_BOUNDS": "2,2,1",
        "TPU_HOST_BOUNDS": "1,1,1",
        "TPU_TOPOLOGY_WRAP": "false,false,false",
        "TPU_RUNTIME_METRICS_PORTS": "8431,8432,8433,8434",
    }),
    "v5p-2x2x1": ("gke-tpu-v5p-4", {
        "TPU_ACCELERATOR_TYPE": "v5p-8",
        "TPU_TOPOLOGY": "2x2x1",
        "TPU_CHIPS_PER_HOST_BOUNDS": "2,2,1",
        "TPU_HOST_BOUNDS": "1,1,1",
        "TPU_TOPOLOGY_WRAP": "false,false,false",
        "TPU_RUNTIME_METRICS_PORTS": "8431,8432,8433,8434",
    }),
}


@pytest.mark.parametrize("case", list(TPU_CASES))
def test_tpu_environment_values(case: str):
    profile_name, expected = TPU_CASES[case]

    env = tpu_environment(get_profile(profile_name))

    for key, value in expected.items():
        assert env[key] == value, key


def test_tpu_environment_single_host():
    env = tpu_environment(get_profile("gke-tpu-v6e-8"))

    assert env["TPU_WORKER_ID"] == "0"
    assert env["TPU_WORKER_HOSTNAMES"] == "localhost"
    assert env["TPU_SKIP_MDS_QUERY"] == "true"


def test_tpu_environment_gpu_profile_rejected():
    with pytest.raises(ProfileError, match="gke-t4-1 is not a TPU profile"):
        tpu_environment(T4)


def test_get_profile_unknown_lists_known():
    with pytest.raises(ProfileError) as raised:
        get_profile("gke-a100-99")

    message = str(raised.value)
    assert "'gke-a100-99'" in message
    for name in PROFILES:
        assert name in message, name


# GPU devices.

def test_gpu_device_attributes():
    devices = T4.devices(T4_NODE)

    assert [device["name"] for device in devices] == ["gpu-0"]
    attributes = devices[0]["attributes"]
    assert attributes["productName"] == {"string": "Tesla T4"}
    assert attributes["cudaComputeCapability"] == {"version": "7.5.0"}
    assert devices[0]["capacity"]["memory"] == {"value": "16Gi"}


def test_gpu_uuid_stable_across_calls():
    first = T4.devices(T4_NODE)[0]["attributes"]["uuid"]["string"]
    second = T4.devices(T4_NODE)[0]["attributes"]["uuid"]["string"]

    assert first.startswith("GPU-")
    assert second == first


def test_gpu_uuid_differs_per_node():
    first = T4.devices(T4.node_name(0))[0]["attributes"]["uuid"]["string"]
    second = T4.devices(T4.node_name(1))[0]["attributes"]["uuid"]["string"]

    assert second != first


def test_gpu_node_labels_and_taint():
    labels = T4.labels(T4_NODE)

    assert labels["cloud.google.com/gke-accelerator"] == "nvidia-tesla-t4"
    assert labels["cloud.google.com/gke-accelerator-count"] == "1"
    assert labels["kubernetes.io/hostname"] == T4_NODE
    assert {"key": "nvidia.com/gpu", "value": "present", "effect": "NoSchedule"} in T4.taints()


def test_tpu_node_labels_and_taint():
    profile = get_profile("gke-tpu-v6e-8")

    labels = profile.labels(profile.node_name(0))

    assert labels["cloud.google.com/gke-tpu-accelerator"] == "tpu-v6e-slice"
    assert labels["cloud.google.com/gke-tpu-topology"] == "2x4"
    assert [taint["key"] for taint in profile.taints()] == ["google.com/tpu"]


# Device layout per resource.k8s.io version.

def test_devices_for_v1beta1_nested_under_basic():
    devices = T4.devices(T4_NODE)

    converted = slices.devices_for_version(devices, "v1beta1")

    assert converted == [{"name": "gpu-0", "basic": {
        "attributes": devices[0]["attributes"], "capacity": devices[0]["capacity"]}}]


@pytest.mark.parametrize("version", ["v1", "v1beta2"])
def test_devices_for_flat_versions(version: str):
    devices = T4.devices(T4_NODE)

    converted = slices.devices_for_version(devices, version)

    assert converted == devices
    assert "basic" not in converted[0]


@pytest.mark.parametrize("version", ["v1", "v1beta2", "v1beta1"])
def test_devices_for_version_copies(version: str):
    devices = T4.devices(T4_NODE)
    before = copy.deepcopy(devices)

    converted = slices.devices_for_version(devices, version)
    layout = converted[0].get("basic", converted[0])
    layout["attributes"]["productName"]["string"] = "changed"

    assert devices == before

"""Component tests of the fake driver's kubelet plugin over real gRPC on Unix sockets.

Each test starts a FakeDriverPlugin in temporary directories and plays the
kubelet with the node agent's PluginWatcher, which finds the registration
socket and registers the plugin. The tests then call NodePrepareResources and
NodeUnprepareResources over the v1 and v1beta1 DRA services. The plugin reads
claims from FakeKube, an in-memory stand-in for fixtures.kube.Kube, so no API
server is needed.
"""

from __future__ import annotations

import copy
import dataclasses
import json
import shutil
import subprocess
import tempfile
import threading
from pathlib import Path
from typing import Any

import grpc
import pytest

from fake_devices import cdi, protocol
from fake_devices.kubelet_plugin import (
    FakeDriverPlugin,
    dra_socket,
    registration_socket,
)
from fake_devices.profiles import get_profile, tpu_environment
from fixtures.kube import NotFound, Resource, dra
from fixtures.node_agent import DraPlugin, PluginWatcher

NAMESPACE = "default"
GPU_PROFILE = get_profile("gke-t4-1")
TPU_PROFILE = get_profile("gke-tpu-v6e-8")
VERSIONS = list(protocol.DRA_PACKAGES)
PREPARE = "NodePrepareResources"
UNPREPARE = "NodeUnprepareResources"


class FakeKube:
    """In-memory stand-in for fixtures.kube.Kube that serves ResourceClaims from a dict."""

    def __init__(self) -> None:
        self.claims: dict[tuple[str, str], dict[str, Any]] = {}
        self.requested: list[Resource] = []

    def add(self, claim: dict[str, Any]) -> None:
        meta = claim["metadata"]
        self.claims[(meta["namespace"], meta["name"])] = claim

    def get(self, resource: Resource, name: str, namespace: str | None = None
            ) -> dict[str, Any]:
        self.requested.append(resource)
        try:
            return copy.deepcopy(self.claims[(namespace, name)])
        except KeyError:
            raise NotFound(f"resourceclaims {namespace}/{name} not found", status=404) from None

    def newest_resource_version(self) -> str:
        return "v1"


def make_claim(name: str, uid: str, driver: str, pool: str, devices: list[str],
               request: str = "devices") -> dict[str, Any]:
    """Build a v1 ResourceClaim that is allocated the given devices and reserved for a pod."""
    return {
        "apiVersion": "resource.k8s.io/v1",
        "kind": "ResourceClaim",
        "metadata": {"name": name, "namespace": NAMESPACE, "uid": uid},
        "spec": {"devices": {"requests": [{"name": request, "exactly": {
            "deviceClassName": driver, "allocationMode": "ExactCount",
            "count": len(devices)}}]}},
        "status": {
            "allocation": {"devices": {"results": [
                {"request": request, "driver": driver, "pool": pool, "device": device}
                for device in devices]}},
            "reservedFor": [{"resource": "pods", "name": f"{name}-pod", "uid": f"pod-{uid}"}],
        },
    }


class Harness:
    """One started plugin, the kubelet-side watcher and the directories they use."""

    def __init__(self, profile_name: str, tmp_path: Path):
        self.profile = get_profile(profile_name)
        self.node = self.profile.node_name(0)
        self.kube = FakeKube()
        # A Unix socket path must fit in 108 bytes, and pytest's tmp_path can be longer.
        self.kubelet_dir = Path(tempfile.mkdtemp(prefix="dra", dir="/tmp"))
        self.cdi_dir = tmp_path / "cdi"
        self.state_dir = tmp_path / "state"
        self.plugin = FakeDriverPlugin(self.kube, self.node, self.profile, self.kubelet_dir,
                                       self.cdi_dir, self.state_dir)
        self.watcher = PluginWatcher(self.kubelet_dir / "plugins_registry")

    def start(self) -> None:
        self.plugin.start()
        self.watcher.scan()

    def close(self) -> None:
        self.watcher.close()
        self.plugin.stop()
        shutil.rmtree(self.kubelet_dir, ignore_errors=True)

    def client(self, version: str = "v1") -> DraPlugin:
        """Return the registered plugin, speaking the given DRA version."""
        registered = self.watcher.get(self.profile.driver)
        assert registered is not None, f"the watcher did not register {self.profile.driver}"
        return dataclasses.replace(registered, version=version)

    def add_claim(self, name: str, uid: str, devices: list[str]) -> dict[str, Any]:
        """Store an allocated, reserved claim of this node's devices and return it for edits."""
        claim = make_claim(name, uid, self.profile.driver, self.node, devices)
        self.kube.add(claim)
        return claim

    def prepare(self, claims: list[tuple[str, str]], version: str = "v1") -> Any:
        """Call NodePrepareResources for (name, uid) pairs in the test namespace."""
        return self.client(version).call(PREPARE, [(NAMESPACE, uid, name)
                                                   for name, uid in claims])

    def unprepare(self, claims: list[tuple[str, str]], version: str = "v1") -> Any:
        return self.client(version).call(UNPREPARE, [(NAMESPACE, uid, name)
                                                     for name, uid in claims])

    def spec_files(self) -> list[Path]:
        if not self.cdi_dir.exists():
            return []
        return sorted(self.cdi_dir.iterdir())


@pytest.fixture
def gpu(tmp_path: Path):
    harness = Harness("gke-t4-1", tmp_path)
    harness.start()
    yield harness
    harness.close()


@pytest.fixture
def tpu(tmp_path: Path):
    harness = Harness("gke-tpu-v6e-8", tmp_path)
    harness.start()
    yield harness
    harness.close()


def method_path(version: str, name: str) -> str:
    return protocol.DRA[version][name].path


def call_get_info(harness: Harness) -> Any:
    """Call GetInfo on the plugin's registration socket directly."""
    get_info = protocol.REGISTRATION["GetInfo"]
    socket = registration_socket(harness.kubelet_dir, harness.profile.driver)
    with grpc.insecure_channel(f"unix:{socket}") as channel:
        stub = channel.unary_unary(get_info.path,
                                   request_serializer=get_info.request.SerializeToString,
                                   response_deserializer=get_info.response.FromString)
        return stub(get_info.request(), timeout=5)


def lay_out_root(root: Path, edits: cdi.ContainerEdits) -> None:
    """Link each CDI mount under root, the way the node agent builds a container's root."""
    for mount in edits.mounts:
        target = root / mount["containerPath"].lstrip("/")
        target.parent.mkdir(parents=True, exist_ok=True)
        target.symlink_to(mount["hostPath"])


# Registration.

def test_registration_get_info(gpu: Harness):
    info = call_get_info(gpu)

    assert info.type == "DRAPlugin"
    assert info.name == "gpu.nvidia.com"
    assert info.endpoint == str(dra_socket(gpu.kubelet_dir, "gpu.nvidia.com"))
    assert list(info.supported_versions) == ["v1.DRAPlugin", "v1beta1.DRAPlugin"]


def test_registration_by_watcher(gpu: Harness):
    registered = gpu.watcher.get("gpu.nvidia.com")

    assert registered is not None
    assert registered.endpoint == str(dra_socket(gpu.kubelet_dir, "gpu.nvidia.com"))
    assert registered.version == "v1"
    assert gpu.plugin.state.registered is True
    assert gpu.plugin.state.registration_error == ""
    assert gpu.plugin.state.calls["/pluginregistration.Registration/GetInfo"] == 1
    assert gpu.plugin.state.calls[
        "/pluginregistration.Registration/NotifyRegistrationStatus"] == 1


def test_registration_scan_again_keeps_plugin(gpu: Harness):
    first = gpu.watcher.get("gpu.nvidia.com")

    gpu.watcher.scan()

    assert gpu.watcher.get("gpu.nvidia.com") is first
    assert gpu.plugin.state.calls["/pluginregistration.Registration/GetInfo"] == 1


# Prepare of a GPU claim.

@pytest.mark.parametrize("version", VERSIONS)
def test_prepare_gpu_device(gpu: Harness, version: str):
    gpu.add_claim("one-gpu", "uid-gpu", ["gpu-0"])

    response = gpu.prepare([("one-gpu", "uid-gpu")], version)

    entry = response.claims["uid-gpu"]
    assert entry.error == ""
    assert len(entry.devices) == 1
    device = entry.devices[0]
    assert device.device_name == "gpu-0"
    assert device.pool_name == gpu.node
    assert list(device.request_names) == ["devices"]
    assert list(device.cdi_device_ids) == ["k8s.gpu.nvidia.com/claim=uid-gpu-gpu-0"]
    assert gpu.kube.requested == [dra("ResourceClaim", "v1")]


def test_prepare_gpu_cdi_spec(gpu: Harness):
    gpu.add_claim("one-gpu", "uid-gpu", ["gpu-0"])

    gpu.prepare([("one-gpu", "uid-gpu")])

    spec_path = gpu.cdi_dir / "gpu.nvidia.com-uid-gpu.json"
    assert gpu.spec_files() == [spec_path]
    cdi.validate_spec(json.loads(spec_path.read_text()), spec_path.name)


def test_prepare_gpu_cdi_edits(gpu: Harness):
    gpu.add_claim("one-gpu", "uid-gpu", ["gpu-0"])
    response = gpu.prepare([("one-gpu", "uid-gpu")])
    ids = list(response.claims["uid-gpu"].devices[0].cdi_device_ids)

    edits = cdi.Registry([gpu.cdi_dir]).resolve(ids)

    uuid = GPU_PROFILE.device_uuid(gpu.node, 0)
    assert edits.environment()["NVIDIA_VISIBLE_DEVICES"] == uuid
    mounts = {mount["containerPath"]: mount["hostPath"] for mount in edits.mounts}
    assert "/usr/bin/nvidia-smi" in mounts
    assert Path(mounts["/usr/bin/nvidia-smi"]).is_file()
    assert "/run/fake-nvidia/gpus/gpu-0" in mounts


def test_prepare_gpu_nvidia_smi_lists_gpu(gpu: Harness, tmp_path: Path):
    gpu.add_claim("one-gpu", "uid-gpu", ["gpu-0"])
    response = gpu.prepare([("one-gpu", "uid-gpu")])
    edits = cdi.Registry([gpu.cdi_dir]).resolve(
        list(response.claims["uid-gpu"].devices[0].cdi_device_ids))
    root = tmp_path / "container-root"
    lay_out_root(root, edits)

    result = subprocess.run([str(root / "usr/bin/nvidia-smi"), "-L"], capture_output=True,
                            text=True, timeout=10)

    uuid = GPU_PROFILE.device_uuid(gpu.node, 0)
    assert result.returncode == 0, result.stderr
    assert result.stdout == f"GPU 0: Tesla T4 (UUID: {uuid})\n"


# Prepare of a TPU claim.

TPU_CHIPS = [str(index) for index in range(8)]


@pytest.mark.parametrize("version", VERSIONS)
def test_prepare_tpu_all_chips(tpu: Harness, version: str):
    tpu.add_claim("all-chips", "uid-tpu", TPU_CHIPS)

    response = tpu.prepare([("all-chips", "uid-tpu")], version)

    entry = response.claims["uid-tpu"]
    assert entry.error == ""
    assert [device.device_name for device in entry.devices] == TPU_CHIPS
    assert {device.pool_name for device in entry.devices} == {tpu.node}
    assert [list(device.cdi_device_ids) for device in entry.devices] == [
        [f"k8s.tpu.google.com/claim=uid-tpu-{chip}"] for chip in TPU_CHIPS]


def test_prepare_tpu_environment(tpu: Harness):
    tpu.add_claim("all-chips", "uid-tpu", TPU_CHIPS)
    response = tpu.prepare([("all-chips", "uid-tpu")])
    ids = [i for device in response.claims["uid-tpu"].devices for i in device.cdi_device_ids]

    env = cdi.Registry([tpu.cdi_dir]).resolve(ids).environment()

    assert env["TPU_ACCELERATOR_TYPE"] == "v6e-8"
    assert env["TPU_TOPOLOGY"] == "2x4"
    assert env["TPU_CHIPS_PER_HOST_BOUNDS"] == "2,4,1"
    assert env["TPU_RUNTIME_METRICS_PORTS"] == ",".join(str(p) for p in range(8431, 8439))
    for key, value in tpu_environment(TPU_PROFILE).items():
        assert env[key] == value, key
    for chip in TPU_CHIPS:
        assert env[f"TPU_DEVICE_{chip}_RESOURCE_CLAIM"] == "uid-tpu", chip


# Idempotence and call counting.

def test_prepare_twice_same_devices(gpu: Harness):
    gpu.add_claim("one-gpu", "uid-gpu", ["gpu-0"])

    first = gpu.prepare([("one-gpu", "uid-gpu")])
    second = gpu.prepare([("one-gpu", "uid-gpu")])
    over_v1beta1 = gpu.prepare([("one-gpu", "uid-gpu")], "v1beta1")

    first_devices = [d.SerializeToString() for d in first.claims["uid-gpu"].devices]
    assert [d.SerializeToString() for d in second.claims["uid-gpu"].devices] == first_devices
    assert [d.device_name for d in over_v1beta1.claims["uid-gpu"].devices] == ["gpu-0"]
    assert list(over_v1beta1.claims["uid-gpu"].devices[0].cdi_device_ids) == list(
        first.claims["uid-gpu"].devices[0].cdi_device_ids)
    assert len(gpu.spec_files()) == 1


def test_prepare_counts_calls_by_path(gpu: Harness):
    gpu.add_claim("one-gpu", "uid-gpu", ["gpu-0"])

    gpu.prepare([("one-gpu", "uid-gpu")])
    gpu.prepare([("one-gpu", "uid-gpu")])
    gpu.prepare([("one-gpu", "uid-gpu")], "v1beta1")
    gpu.unprepare([("one-gpu", "uid-gpu")], "v1beta1")

    calls = gpu.plugin.state.calls
    assert calls["/k8s.io.kubelet.pkg.apis.dra.v1.DRAPlugin/NodePrepareResources"] == 2
    assert calls["/k8s.io.kubelet.pkg.apis.dra.v1beta1.DRAPlugin/NodePrepareResources"] == 1
    assert calls["/k8s.io.kubelet.pkg.apis.dra.v1beta1.DRAPlugin/NodeUnprepareResources"] == 1
    assert calls[method_path("v1", UNPREPARE)] == 0


# Prepare errors: each comes back in the claim's error field, and no spec is written.

def _not_allocated(claim: dict[str, Any]) -> None:
    del claim["status"]["allocation"]


def _not_reserved(claim: dict[str, Any]) -> None:
    claim["status"]["reservedFor"] = []


def _other_node_pool(claim: dict[str, Any]) -> None:
    claim["status"]["allocation"]["devices"]["results"][0]["pool"] = "gke-other-node"


def _unknown_device(claim: dict[str, Any]) -> None:
    claim["status"]["allocation"]["devices"]["results"][0]["device"] = "gpu-7"


PREPARE_ERRORS = {
    "not-allocated": (_not_allocated, "is not allocated"),
    "not-reserved": (_not_reserved, "is not reserved"),
    "pool-of-other-node": (_other_node_pool, "gke-other-node"),
    "unknown-device": (_unknown_device, "gpu-7"),
}


@pytest.mark.parametrize("version", VERSIONS)
@pytest.mark.parametrize("case", list(PREPARE_ERRORS))
def test_prepare_error_broken_claim(gpu: Harness, case: str, version: str):
    break_claim, expected_text = PREPARE_ERRORS[case]
    claim = gpu.add_claim("broken", "uid-broken", ["gpu-0"])
    break_claim(claim)

    response = gpu.prepare([("broken", "uid-broken")], version)

    entry = response.claims["uid-broken"]
    assert "default/broken" in entry.error
    assert expected_text in entry.error
    assert len(entry.devices) == 0
    assert gpu.spec_files() == []
    assert gpu.plugin.prepared_claims() == []


@pytest.mark.parametrize("version", VERSIONS)
def test_prepare_error_wrong_uid(gpu: Harness, version: str):
    gpu.add_claim("recreated", "uid-new", ["gpu-0"])

    response = gpu.prepare([("recreated", "uid-old")], version)

    entry = response.claims["uid-old"]
    assert "default/recreated" in entry.error
    assert "uid-new" in entry.error
    assert len(entry.devices) == 0
    assert gpu.spec_files() == []


@pytest.mark.parametrize("version", VERSIONS)
def test_prepare_error_claim_missing(gpu: Harness, version: str):
    response = gpu.prepare([("missing", "uid-missing")], version)

    entry = response.claims["uid-missing"]
    assert "default/missing" in entry.error
    assert "does not exist" in entry.error
    assert len(entry.devices) == 0
    assert gpu.spec_files() == []


def test_prepare_error_other_claim_unaffected(gpu: Harness):
    gpu.add_claim("good", "uid-good", ["gpu-0"])

    response = gpu.prepare([("missing", "uid-missing"), ("good", "uid-good")])

    assert response.claims["uid-missing"].error != ""
    assert response.claims["uid-good"].error == ""
    assert [d.device_name for d in response.claims["uid-good"].devices] == ["gpu-0"]
    assert gpu.spec_files() == [gpu.cdi_dir / "gpu.nvidia.com-uid-good.json"]


# Unprepare.

@pytest.mark.parametrize("version", VERSIONS)
def test_unprepare_removes_spec(gpu: Harness, version: str):
    gpu.add_claim("one-gpu", "uid-gpu", ["gpu-0"])
    gpu.prepare([("one-gpu", "uid-gpu")])

    response = gpu.unprepare([("one-gpu", "uid-gpu")], version)

    assert response.claims["uid-gpu"].error == ""
    assert gpu.spec_files() == []
    assert gpu.plugin.prepared_claims() == []
    assert not (gpu.state_dir / "claims" / "uid-gpu").exists()


def test_unprepare_twice_no_error(gpu: Harness):
    gpu.add_claim("one-gpu", "uid-gpu", ["gpu-0"])
    gpu.prepare([("one-gpu", "uid-gpu")])
    gpu.unprepare([("one-gpu", "uid-gpu")])

    response = gpu.unprepare([("one-gpu", "uid-gpu")])

    assert response.claims["uid-gpu"].error == ""


def test_unprepare_unknown_uid_no_error(gpu: Harness):
    response = gpu.unprepare([("never-prepared", "uid-unknown")])

    assert response.claims["uid-unknown"].error == ""


def test_unprepare_then_prepare_again(gpu: Harness):
    gpu.add_claim("one-gpu", "uid-gpu", ["gpu-0"])
    gpu.prepare([("one-gpu", "uid-gpu")])
    gpu.unprepare([("one-gpu", "uid-gpu")])

    response = gpu.prepare([("one-gpu", "uid-gpu")])

    assert response.claims["uid-gpu"].error == ""
    assert gpu.spec_files() == [gpu.cdi_dir / "gpu.nvidia.com-uid-gpu.json"]


# Concurrency.

def test_prepare_concurrent_same_claim(gpu: Harness):
    gpu.add_claim("one-gpu", "uid-gpu", ["gpu-0"])
    client = gpu.client("v1")
    responses: list[Any] = []
    errors: list[BaseException] = []
    start = threading.Barrier(8)

    def prepare() -> None:
        start.wait()
        try:
            responses.append(client.call(PREPARE, [(NAMESPACE, "uid-gpu", "one-gpu")]))
        except grpc.RpcError as error:
            errors.append(error)

    threads = [threading.Thread(target=prepare) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=30)

    assert errors == []
    assert len(responses) == 8
    assert [r.claims["uid-gpu"].error for r in responses] == [""] * 8
    assert {tuple(r.claims["uid-gpu"].devices[0].cdi_device_ids) for r in responses} == {
        ("k8s.gpu.nvidia.com/claim=uid-gpu-gpu-0",)}
    assert gpu.spec_files() == [gpu.cdi_dir / "gpu.nvidia.com-uid-gpu.json"]
    cdi.Registry([gpu.cdi_dir]).resolve(["k8s.gpu.nvidia.com/claim=uid-gpu-gpu-0"])


# Stop.

def test_stop_removes_sockets(gpu: Harness):
    gpu.plugin.stop()

    assert not registration_socket(gpu.kubelet_dir, "gpu.nvidia.com").exists()
    assert not dra_socket(gpu.kubelet_dir, "gpu.nvidia.com").exists()


def test_stop_watcher_drops_plugin(gpu: Harness):
    gpu.plugin.stop()

    gpu.watcher.scan()

    assert gpu.watcher.get("gpu.nvidia.com") is None

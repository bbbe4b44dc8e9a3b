"""Component tests of the fake driver's prepare-time fault modes over real gRPC.

Each test starts a FakeDriverPlugin with one fault in temporary directories,
registers it with the node agent's PluginWatcher (playing the kubelet) and
calls NodePrepareResources and NodeUnprepareResources on its DRA socket.
Claims come from FakeKube, an in-memory stand-in for fixtures.kube.Kube.
The crash-during-prepare fault ends the process with os._exit, so that test
runs the plugin in a child Python process.
"""

from __future__ import annotations

import copy
import json
import os
import select
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import grpc
import pytest

from fake_devices import cdi
from fake_devices.faults import FAULTS, FaultError, check_fault
from fake_devices.kubelet_plugin import FakeDriverPlugin, dra_socket, registration_socket
from fake_devices.profiles import get_profile
from fixtures.kube import NotFound, Resource
from fixtures.node_agent import PluginWatcher

REPO = Path(__file__).resolve().parents[1]
NAMESPACE = "default"
TPU_CHIPS = [str(index) for index in range(8)]
PREPARE = "NodePrepareResources"
UNPREPARE = "NodeUnprepareResources"
CHILD_START_SECONDS = 30
CHILD_EXIT_SECONDS = 15


class FakeKube:
    """In-memory stand-in for fixtures.kube.Kube that serves ResourceClaims from a dict."""

    def __init__(self) -> None:
        self.claims: dict[tuple[str, str], dict[str, Any]] = {}

    def add(self, claim: dict[str, Any]) -> None:
        meta = claim["metadata"]
        self.claims[(meta["namespace"], meta["name"])] = claim

    def get(self, resource: Resource, name: str, namespace: str | None = None
            ) -> dict[str, Any]:
        try:
            return copy.deepcopy(self.claims[(namespace, name)])
        except KeyError:
            raise NotFound(f"resourceclaims {namespace}/{name} not found", status=404) from None

    def newest_resource_version(self) -> str:
        return "v1"


class OfflineKube:
    """Stand-in for fixtures.kube.Kube that fails the test if the plugin reads any object."""

    def __init__(self) -> None:
        self.reads: list[str] = []

    def get(self, resource: Resource, name: str, namespace: str | None = None
            ) -> dict[str, Any]:
        self.reads.append(f"{resource.plural} {namespace}/{name}")
        raise AssertionError(f"the plugin read {resource.plural} {namespace}/{name} from the "
                             "API server, but the claim was already prepared")

    def newest_resource_version(self) -> str:
        return "v1"


def make_claim(name: str, uid: str, driver: str, pool: str, devices: list[str]
               ) -> dict[str, Any]:
    """Build a v1 ResourceClaim that is allocated the given devices and reserved for a pod."""
    return {
        "apiVersion": "resource.k8s.io/v1",
        "kind": "ResourceClaim",
        "metadata": {"name": name, "namespace": NAMESPACE, "uid": uid},
        "spec": {"devices": {"requests": [{"name": "devices", "exactly": {
            "deviceClassName": driver, "allocationMode": "ExactCount",
            "count": len(devices)}}]}},
        "status": {
            "allocation": {"devices": {"results": [
                {"request": "devices", "driver": driver, "pool": pool, "device": device}
                for device in devices]}},
            "reservedFor": [{"resource": "pods", "name": f"{name}-pod", "uid": f"pod-{uid}"}],
        },
    }


class Node:
    """The directories of one simulated node and the kubelet-side watcher of its plugins."""

    def __init__(self, profile_name: str, tmp_path: Path):
        self.profile = get_profile(profile_name)
        self.driver = self.profile.driver
        self.name = self.profile.node_name(0)
        self.kube = FakeKube()
        # A Unix socket path must fit in 108 bytes, and pytest's tmp_path can be longer.
        self.kubelet_dir = Path(tempfile.mkdtemp(prefix="dra", dir="/tmp"))
        self.cdi_dir = tmp_path / "cdi"
        self.unread_dir = tmp_path / "cdi-unread"
        self.state_dir = tmp_path / "state"
        self.plugins: list[FakeDriverPlugin] = []
        self.watchers: list[PluginWatcher] = []

    def plugin(self, fault: str = "none", fault_delay: float = 20.0,
               kube: Any = None) -> FakeDriverPlugin:
        plugin = FakeDriverPlugin(kube or self.kube, self.name, self.profile, self.kubelet_dir,
                                  self.cdi_dir, self.state_dir, fault, fault_delay)
        self.plugins.append(plugin)
        return plugin

    def start(self, fault: str = "none", fault_delay: float = 20.0,
              kube: Any = None) -> FakeDriverPlugin:
        """Start a plugin and register it with a new watcher."""
        plugin = self.plugin(fault, fault_delay, kube)
        plugin.start()
        self.register()
        return plugin

    def register(self) -> None:
        """Let a new watcher find the registration socket, as a restarted kubelet would."""
        watcher = PluginWatcher(self.kubelet_dir / "plugins_registry")
        watcher.scan()
        self.watchers.append(watcher)

    def add_claim(self, name: str, uid: str, devices: list[str]) -> None:
        self.kube.add(make_claim(name, uid, self.driver, self.name, devices))

    def call(self, method: str, name: str, uid: str) -> Any:
        """Call a DRA method for one claim through the newest watcher's registered plugin."""
        registered = self.watchers[-1].get(self.driver)
        assert registered is not None, f"the watcher did not register {self.driver}"
        return registered.call(method, [(NAMESPACE, uid, name)]).claims[uid]

    def spec_files(self, directory: Path | None = None) -> list[Path]:
        directory = directory or self.cdi_dir
        if not directory.exists():
            return []
        return sorted(directory.iterdir())

    def close(self) -> None:
        for watcher in self.watchers:
            watcher.close()
        for plugin in self.plugins:
            plugin.stop()
        shutil.rmtree(self.kubelet_dir, ignore_errors=True)


@pytest.fixture
def gpu_node(tmp_path: Path):
    node = Node("gke-t4-1", tmp_path)
    yield node
    node.close()


@pytest.fixture
def tpu_node(tmp_path: Path):
    node = Node("gke-tpu-v6e-8", tmp_path)
    yield node
    node.close()


def cdi_ids(entry: Any) -> list[str]:
    return [device_id for device in entry.devices for device_id in device.cdi_device_ids]


# Fault names.

@pytest.mark.parametrize("name", list(FAULTS))
def test_check_fault_known(name: str):
    assert check_fault(name) == name


def test_check_fault_unknown_lists_known():
    with pytest.raises(FaultError) as raised:
        check_fault("bogus")

    message = str(raised.value)
    assert "'bogus'" in message
    for name in FAULTS:
        assert name in message, name


def test_plugin_unknown_fault_rejected(gpu_node: Node):
    with pytest.raises(FaultError, match="unknown fault 'bogus'"):
        gpu_node.plugin("bogus")

    assert not gpu_node.state_dir.exists()


# prepare-error

def test_prepare_error_claim_error(gpu_node: Node):
    gpu_node.start("prepare-error")
    gpu_node.add_claim("one-gpu", "uid-gpu", ["gpu-0"])

    entry = gpu_node.call(PREPARE, "one-gpu", "uid-gpu")

    assert "injected fault prepare-error" in entry.error
    assert len(entry.devices) == 0
    assert gpu_node.spec_files() == []
    assert gpu_node.spec_files(gpu_node.unread_dir) == []
    assert gpu_node.plugins[0].prepared_claims() == []


# slow-prepare

def test_slow_prepare_waits_then_succeeds(gpu_node: Node):
    gpu_node.start("slow-prepare", fault_delay=0.3)
    gpu_node.add_claim("one-gpu", "uid-gpu", ["gpu-0"])

    started = time.monotonic()
    entry = gpu_node.call(PREPARE, "one-gpu", "uid-gpu")
    elapsed = time.monotonic() - started

    assert elapsed >= 0.3
    assert entry.error == ""
    assert [device.device_name for device in entry.devices] == ["gpu-0"]
    assert gpu_node.spec_files() == [gpu_node.cdi_dir / "gpu.nvidia.com-uid-gpu.json"]


# missing-env

def test_missing_env_gpu_keeps_mounts(gpu_node: Node):
    gpu_node.start("missing-env")
    gpu_node.add_claim("one-gpu", "uid-gpu", ["gpu-0"])
    entry = gpu_node.call(PREPARE, "one-gpu", "uid-gpu")

    edits = cdi.Registry([gpu_node.cdi_dir]).resolve(cdi_ids(entry))

    assert entry.error == ""
    assert edits.env == []
    container_paths = [mount["containerPath"] for mount in edits.mounts]
    assert "/usr/bin/nvidia-smi" in container_paths
    assert "/run/fake-nvidia/gpus/gpu-0" in container_paths


def test_missing_env_tpu_no_env(tpu_node: Node):
    tpu_node.start("missing-env")
    tpu_node.add_claim("all-chips", "uid-tpu", TPU_CHIPS)
    entry = tpu_node.call(PREPARE, "all-chips", "uid-tpu")

    edits = cdi.Registry([tpu_node.cdi_dir]).resolve(cdi_ids(entry))

    assert entry.error == ""
    assert [device.device_name for device in entry.devices] == TPU_CHIPS
    assert edits.env == []


# cdi-wrong-dir

def test_cdi_wrong_dir_spec_unread(gpu_node: Node):
    gpu_node.start("cdi-wrong-dir")
    gpu_node.add_claim("one-gpu", "uid-gpu", ["gpu-0"])

    entry = gpu_node.call(PREPARE, "one-gpu", "uid-gpu")

    assert entry.error == ""
    assert gpu_node.spec_files() == []
    assert gpu_node.spec_files(gpu_node.unread_dir) == [
        gpu_node.unread_dir / "gpu.nvidia.com-uid-gpu.json"]
    ids = cdi_ids(entry)
    assert ids == ["k8s.gpu.nvidia.com/claim=uid-gpu-gpu-0"]
    with pytest.raises(cdi.CdiError, match="k8s.gpu.nvidia.com/claim=uid-gpu-gpu-0"):
        cdi.Registry([gpu_node.cdi_dir]).resolve(ids)
    # The spec itself is valid, but the runtime does not read its directory.
    cdi.Registry([gpu_node.unread_dir]).resolve(ids)


def test_cdi_wrong_dir_unprepare_removes(gpu_node: Node):
    gpu_node.start("cdi-wrong-dir")
    gpu_node.add_claim("one-gpu", "uid-gpu", ["gpu-0"])
    gpu_node.call(PREPARE, "one-gpu", "uid-gpu")

    entry = gpu_node.call(UNPREPARE, "one-gpu", "uid-gpu")

    assert entry.error == ""
    assert gpu_node.spec_files(gpu_node.unread_dir) == []
    assert gpu_node.plugins[0].prepared_claims() == []


# no-registration

def test_no_registration_dra_socket_only(gpu_node: Node):
    plugin = gpu_node.plugin("no-registration")

    plugin.start(register=False)
    gpu_node.register()

    assert dra_socket(gpu_node.kubelet_dir, "gpu.nvidia.com").is_socket()
    assert not registration_socket(gpu_node.kubelet_dir, "gpu.nvidia.com").exists()
    assert gpu_node.watchers[0].plugins == {}


# Restart: prepared claims are kept in the state directory.

def test_restart_keeps_prepared_claim(gpu_node: Node):
    first = gpu_node.start()
    gpu_node.add_claim("one-gpu", "uid-gpu", ["gpu-0"])
    before = gpu_node.call(PREPARE, "one-gpu", "uid-gpu")
    first.stop()
    offline = OfflineKube()

    gpu_node.start(kube=offline)
    after = gpu_node.call(PREPARE, "one-gpu", "uid-gpu")

    assert before.error == ""
    assert after.error == ""
    assert [device.SerializeToString() for device in after.devices] == [
        device.SerializeToString() for device in before.devices]
    assert offline.reads == []


def test_restart_unprepare_removes_spec(gpu_node: Node):
    first = gpu_node.start()
    gpu_node.add_claim("one-gpu", "uid-gpu", ["gpu-0"])
    gpu_node.call(PREPARE, "one-gpu", "uid-gpu")
    first.stop()
    second = gpu_node.start(kube=OfflineKube())

    entry = gpu_node.call(UNPREPARE, "one-gpu", "uid-gpu")

    assert entry.error == ""
    assert gpu_node.spec_files() == []
    assert second.prepared_claims() == []


# crash-during-prepare, with the plugin in a child process.

# The child serves the claim stored in a JSON file, prints "serving" once its
# sockets exist, and stops cleanly when its standard input is closed.
CHILD_PLUGIN = """
import json
import sys
from pathlib import Path

from fake_devices.kubelet_plugin import FakeDriverPlugin
from fake_devices.profiles import get_profile
from fixtures.kube import NotFound


class FileKube:
    def __init__(self, path):
        self.claim = json.loads(Path(path).read_text())

    def get(self, resource, name, namespace=None):
        meta = self.claim["metadata"]
        if (meta["namespace"], meta["name"]) != (namespace, name):
            raise NotFound(f"resourceclaims {namespace}/{name} not found", status=404)
        return self.claim

    def newest_resource_version(self):
        return "v1"


claim_file, profile_name, kubelet_dir, cdi_dir, state_dir, fault = sys.argv[1:]
profile = get_profile(profile_name)
plugin = FakeDriverPlugin(FileKube(claim_file), profile.node_name(0), profile,
                          Path(kubelet_dir), Path(cdi_dir), Path(state_dir), fault)
plugin.start()
print("serving", flush=True)
sys.stdin.read()
plugin.stop()
"""


class ChildPlugin:
    """A FakeDriverPlugin running in a child Python process on the node's directories."""

    def __init__(self, node: Node, claim_file: Path, fault: str, log_path: Path):
        self.log_path = log_path
        self.log = open(log_path, "wb")
        env = {**os.environ, "PYTHONPATH": os.pathsep.join(
            [str(REPO), *filter(None, [os.environ.get("PYTHONPATH")])])}
        self.process = subprocess.Popen(
            [sys.executable, "-c", CHILD_PLUGIN, str(claim_file), node.profile.name,
             str(node.kubelet_dir), str(node.cdi_dir), str(node.state_dir), fault],
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=self.log, cwd=REPO, env=env)

    def output(self) -> str:
        return self.log_path.read_text(errors="replace")

    def wait_serving(self) -> None:
        assert self.process.stdout is not None
        ready, _, _ = select.select([self.process.stdout], [], [], CHILD_START_SECONDS)
        line = self.process.stdout.readline() if ready else b""
        assert line == b"serving\n", f"the child plugin did not start:\n{self.output()}"

    def wait(self) -> int:
        return self.process.wait(timeout=CHILD_EXIT_SECONDS)

    def stop(self) -> int:
        """Close the child's standard input so it stops its servers, and return its exit code."""
        assert self.process.stdin is not None
        if not self.process.stdin.closed:
            self.process.stdin.close()
        return self.wait()

    def close(self) -> None:
        if self.process.poll() is None:
            self.process.kill()
            self.process.wait()
        for stream in (self.process.stdin, self.process.stdout):
            if stream is not None:
                stream.close()
        self.log.close()


@pytest.fixture
def start_child(gpu_node: Node, tmp_path: Path):
    """Yield a function that starts a child plugin on gpu_node's directories and claim.

    Teardown kills any child that is still running.
    """
    started: list[ChildPlugin] = []
    claim_file = tmp_path / "claim.json"
    claim_file.write_text(json.dumps(make_claim("one-gpu", "uid-gpu", gpu_node.driver,
                                                gpu_node.name, ["gpu-0"])))

    def start(fault: str) -> ChildPlugin:
        child = ChildPlugin(gpu_node, claim_file, fault,
                            tmp_path / f"child-{len(started)}.log")
        started.append(child)
        child.wait_serving()
        gpu_node.register()
        return child

    yield start
    for child in started:
        child.close()


def test_crash_during_prepare_exits_70(gpu_node: Node, start_child):
    child = start_child("crash-during-prepare")

    with pytest.raises(grpc.RpcError) as raised:
        gpu_node.call(PREPARE, "one-gpu", "uid-gpu")

    assert raised.value.code() == grpc.StatusCode.UNAVAILABLE
    assert child.wait() == 70, child.output()
    assert "injected fault crash-during-prepare" in child.output()
    marker = gpu_node.state_dir / "crashed-during-prepare"
    assert marker.read_text() == "uid-gpu"


def test_crash_during_prepare_restart_succeeds(gpu_node: Node, start_child):
    crashed = start_child("crash-during-prepare")
    with pytest.raises(grpc.RpcError):
        gpu_node.call(PREPARE, "one-gpu", "uid-gpu")
    assert crashed.wait() == 70, crashed.output()
    restarted = start_child("crash-during-prepare")

    entry = gpu_node.call(PREPARE, "one-gpu", "uid-gpu")

    assert entry.error == ""
    assert [device.device_name for device in entry.devices] == ["gpu-0"]
    assert restarted.process.poll() is None, restarted.output()
    assert cdi.Registry([gpu_node.cdi_dir]).resolve(cdi_ids(entry)).mounts != []
    assert restarted.stop() == 0, restarted.output()

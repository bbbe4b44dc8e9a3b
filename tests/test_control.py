"""Component tests of the fake driver's test-control surface on a Unix socket.

ControlServer and ControlClient run in the test process on a socket in a
short temporary directory. The server's callbacks are recording stand-ins,
except in the last test, where they belong to a FakeDriverPlugin that has
prepared one claim over real gRPC.
"""

from __future__ import annotations

import copy
import json
import shutil
import stat
import tempfile
from pathlib import Path
from typing import Any, Callable

import pytest

from fake_devices.control import SOCKET_NAME, ControlClient, ControlError, ControlServer
from fake_devices.control import _UnixConnection
from fake_devices.faults import check_fault
from fake_devices.kubelet_plugin import FakeDriverPlugin
from fake_devices.profiles import get_profile
from fixtures.kube import NotFound, Resource
from fixtures.node_agent import PluginWatcher

STATE = {"driver": "gpu.nvidia.com", "fault": "none", "calls": {"/a/B": 2}, "prepared": []}


class Recorder:
    """Callbacks for ControlServer that return STATE and record each fault change."""

    def __init__(self) -> None:
        self.changes: list[tuple[str, float | None]] = []
        self.check: Callable[[str], object] | None = None
        self.error: Exception | None = None

    def reset(self) -> None:
        self.changes.clear()
        self.check = None
        self.error = None

    def state(self) -> dict[str, Any]:
        return copy.deepcopy(STATE)

    def set_fault(self, fault: str, delay: float | None) -> None:
        """Record the change, then call check (if set) and raise error (if set)."""
        self.changes.append((fault, delay))
        if self.check is not None:
            self.check(fault)
        if self.error is not None:
            raise self.error


def make_short_dir(prefix: str) -> Path:
    # A Unix socket path must fit in 108 bytes, and pytest's tmp_path can be longer.
    return Path(tempfile.mkdtemp(prefix=prefix, dir="/tmp"))


@pytest.fixture
def short_dir():
    directory = make_short_dir("ctl")
    yield directory
    shutil.rmtree(directory, ignore_errors=True)


# ControlServer.stop() waits up to 0.5 s (socketserver's default poll_interval) for the
# serve loop to notice the shutdown, so the tests share one server and reset its recorder.
@pytest.fixture(scope="module")
def shared_server():
    directory = make_short_dir("ctl")
    recorder = Recorder()
    control = ControlServer(directory / "state" / SOCKET_NAME, recorder.state,
                            recorder.set_fault)
    control.start()
    yield control, recorder
    control.stop()
    shutil.rmtree(directory, ignore_errors=True)


@pytest.fixture
def server(shared_server: tuple[ControlServer, Recorder]) -> ControlServer:
    return shared_server[0]


@pytest.fixture
def recorder(shared_server: tuple[ControlServer, Recorder]) -> Recorder:
    shared_server[1].reset()
    return shared_server[1]


@pytest.fixture
def client(server: ControlServer) -> ControlClient:
    return ControlClient(server.path, timeout=5)


def send_raw(path: Path, method: str, url: str, body: bytes) -> tuple[int, dict[str, Any]]:
    """Send a request with a body that ControlClient cannot build, and return the status and
    the decoded JSON body."""
    connection = _UnixConnection(path, timeout=5)
    try:
        connection.request(method, url, body=body,
                           headers={"Content-Type": "application/json"})
        response = connection.getresponse()
        return response.status, json.loads(response.read())
    finally:
        connection.close()


# Socket.

def test_socket_mode_0600(server: ControlServer):
    assert stat.S_ISSOCK(server.path.stat().st_mode)
    assert stat.S_IMODE(server.path.stat().st_mode) == 0o600


def test_socket_directory_mode_0700(server: ControlServer):
    assert stat.S_IMODE(server.path.parent.stat().st_mode) == 0o700


def test_stop_removes_socket(short_dir: Path):
    recorder = Recorder()
    control = ControlServer(short_dir / SOCKET_NAME, recorder.state, recorder.set_fault)
    control.start()

    control.stop()

    assert not control.path.exists()
    with pytest.raises(ControlError, match="cannot be reached"):
        ControlClient(control.path, timeout=5).state()


# GET /state

def test_state_returns_callback_value(client: ControlClient):
    assert client.state() == STATE


def test_get_unknown_path_error(client: ControlClient):
    with pytest.raises(ControlError, match="no such path /nope; use /state"):
        client._request("GET", "/nope")


# PUT /fault

def test_set_fault_calls_setter(client: ControlClient, recorder: Recorder):
    returned = client.set_fault("x", 1.5)

    assert recorder.changes == [("x", 1.5)]
    assert returned == STATE


def test_set_fault_without_delay(client: ControlClient, recorder: Recorder):
    client.set_fault("x")

    assert recorder.changes == [("x", None)]


def test_set_fault_setter_error(client: ControlClient, recorder: Recorder):
    recorder.error = ValueError("no-registration can only be chosen when the driver starts")

    with pytest.raises(ControlError) as raised:
        client.set_fault("no-registration")

    assert "PUT /fault" in str(raised.value)
    assert "no-registration can only be chosen when the driver starts" in str(raised.value)


def test_set_fault_unknown_name_error(client: ControlClient, recorder: Recorder):
    # check_fault raises FaultError, a ValueError, as the driver's setter does.
    recorder.check = check_fault

    with pytest.raises(ControlError, match="unknown fault 'bogus'"):
        client.set_fault("bogus")


def test_put_without_fault_key_error(client: ControlClient, recorder: Recorder):
    with pytest.raises(ControlError, match="PUT /fault"):
        client._request("PUT", "/fault", {"delay": 1.0})

    assert recorder.changes == []


def test_put_unknown_path_error(client: ControlClient, recorder: Recorder):
    with pytest.raises(ControlError, match="no such path /faults; use /fault"):
        client._request("PUT", "/faults", {"fault": "none"})

    assert recorder.changes == []


MALFORMED_BODIES = {
    "not-json": b"{fault",
    "json-list": b'["none"]',
    "json-string": b'"none"',
    "no-fault-key": b'{"delay": 1}',
}


@pytest.mark.parametrize("case", list(MALFORMED_BODIES))
def test_put_malformed_body_400(server: ControlServer, recorder: Recorder, case: str):
    status, body = send_raw(server.path, "PUT", "/fault", MALFORMED_BODIES[case])

    assert status == 400
    assert body["error"] != ""
    assert recorder.changes == []


# Client errors.

def test_client_missing_socket(short_dir: Path):
    missing = short_dir / "absent" / SOCKET_NAME

    with pytest.raises(ControlError) as raised:
        ControlClient(missing, timeout=5).state()

    assert str(missing) in str(raised.value)
    assert "cannot be reached" in str(raised.value)


# End to end: the state of a FakeDriverPlugin after one prepare.

class ClaimKube:
    """Stand-in for fixtures.kube.Kube that serves one allocated, reserved GPU claim."""

    def __init__(self, node: str):
        self.claim = {
            "apiVersion": "resource.k8s.io/v1",
            "kind": "ResourceClaim",
            "metadata": {"name": "one-gpu", "namespace": "default", "uid": "uid-gpu"},
            "status": {
                "allocation": {"devices": {"results": [
                    {"request": "gpu", "driver": "gpu.nvidia.com", "pool": node,
                     "device": "gpu-0"}]}},
                "reservedFor": [{"resource": "pods", "name": "pod", "uid": "uid-pod"}],
            },
        }

    def get(self, resource: Resource, name: str, namespace: str | None = None
            ) -> dict[str, Any]:
        meta = self.claim["metadata"]
        if (meta["namespace"], meta["name"]) != (namespace, name):
            raise NotFound(f"resourceclaims {namespace}/{name} not found", status=404)
        return copy.deepcopy(self.claim)

    def newest_resource_version(self) -> str:
        return "v1"


def test_plugin_state_after_prepare(short_dir: Path, tmp_path: Path):
    profile = get_profile("gke-t4-1")
    node = profile.node_name(0)
    plugin = FakeDriverPlugin(ClaimKube(node), node, profile, short_dir / "kubelet",
                              tmp_path / "cdi", tmp_path / "state")
    plugin.start()
    watcher = PluginWatcher(short_dir / "kubelet" / "plugins_registry")
    control = ControlServer(short_dir / "control" / SOCKET_NAME, plugin.control_state,
                            lambda fault, delay: None)
    control.start()
    try:
        watcher.scan()
        registered = watcher.get("gpu.nvidia.com")
        assert registered is not None
        registered.call("NodePrepareResources", [("default", "uid-gpu", "one-gpu")])

        state = ControlClient(control.path, timeout=5).state()
    finally:
        control.stop()
        watcher.close()
        plugin.stop()

    assert state["driver"] == "gpu.nvidia.com"
    assert state["node"] == node
    assert state["fault"] == "none"
    assert state["registered"] is True
    assert state["calls"]["/k8s.io.kubelet.pkg.apis.dra.v1.DRAPlugin/NodePrepareResources"] == 1
    assert state["prepared"] == [{"uid": "uid-gpu", "namespace": "default", "name": "one-gpu",
                                  "devices": ["gpu-0"]}]

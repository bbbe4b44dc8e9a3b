"""The fake driver's kubelet plugin: registration and DRA services over Unix sockets.

The kubelet (or draconf's node agent) finds ``<driver>-reg.sock`` in its
``plugins_registry`` directory, asks it for the DRA endpoint and the supported
versions, then calls NodePrepareResources before a pod's containers start and
NodeUnprepareResources once they are gone.
"""

from __future__ import annotations

import json
import logging
import os
import shutil
import threading
import time
from collections import Counter
from concurrent import futures
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

import grpc

from fake_devices import cdi, protocol
from fake_devices.faults import check_fault
from fake_devices.profiles import Profile, tpu_environment
from fixtures.kube import Kube, KubeError, NotFound, dra

log = logging.getLogger("draconf.plugin")

NVIDIA_SMI = Path(__file__).resolve().parent / "bin" / "nvidia-smi"
NVIDIA_SMI_CONTAINER_PATH = "/usr/bin/nvidia-smi"
GPU_INFO_CONTAINER_DIR = "/run/fake-nvidia/gpus"


class PrepareError(Exception):
    """A claim this driver cannot prepare on this node; returned to the kubelet as text."""


def registration_socket(kubelet_dir: Path, driver: str) -> Path:
    return kubelet_dir / "plugins_registry" / f"{driver}-reg.sock"


def dra_socket(kubelet_dir: Path, driver: str) -> Path:
    return kubelet_dir / "plugins" / driver / "dra.sock"


@dataclass
class PluginState:
    """Call counters, registration state and the active fault, for the test-control surface."""

    calls: Counter = field(default_factory=Counter)
    registered: bool | None = None
    registration_error: str = ""
    fault: str = "none"
    fault_delay: float = 20.0


class FakeDriverPlugin:
    """Prepares and unprepares claims of one driver on one node."""

    def __init__(self, kube: Kube, node: str, profile: Profile, kubelet_dir: Path,
                 cdi_dir: Path, state_dir: Path, fault: str = "none", fault_delay: float = 20.0):
        self.kube = kube
        self.node = node
        self.profile = profile
        self.driver = profile.driver
        self.kubelet_dir = kubelet_dir
        self.cdi_dir = cdi_dir
        self.state_dir = state_dir
        self.cdi_kind = f"k8s.{self.driver}/claim"
        self.state = PluginState(fault=check_fault(fault), fault_delay=fault_delay)
        self._lock = threading.Lock()
        self._servers: list[grpc.Server] = []
        self._claims_version = kube.newest_resource_version()
        (state_dir / "prepared").mkdir(parents=True, exist_ok=True)
        self.nvidia_smi = state_dir / "bin" / "nvidia-smi"
        if profile.kind == "gpu":
            self.nvidia_smi.parent.mkdir(parents=True, exist_ok=True)
            shutil.copy(NVIDIA_SMI, self.nvidia_smi)
            self.nvidia_smi.chmod(0o755)

    # gRPC plumbing.

    def _handler(self, method: protocol.Method, function: Callable[[Any], Any]
                 ) -> grpc.RpcMethodHandler:
        def call(request: Any, context: grpc.ServicerContext) -> Any:
            with self._lock:
                self.state.calls[method.path] += 1
            return function(request)

        return grpc.unary_unary_rpc_method_handler(
            call, request_deserializer=method.request.FromString,
            response_serializer=method.response.SerializeToString)

    def _serve(self, socket_path: Path,
               services: dict[str, dict[str, tuple[protocol.Method, Callable[[Any], Any]]]]
               ) -> None:
        socket_path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
        socket_path.unlink(missing_ok=True)
        server = grpc.server(futures.ThreadPoolExecutor(max_workers=4))
        for service, methods in services.items():
            handlers = {name: self._handler(method, function)
                        for name, (method, function) in methods.items()}
            server.add_generic_rpc_handlers(
                (grpc.method_handlers_generic_handler(service, handlers),))
        server.add_insecure_port(f"unix:{socket_path}")
        server.start()
        os.chmod(socket_path, 0o600)
        self._servers.append(server)

    def start(self, register: bool = True) -> None:
        """Serve the DRA services, then the registration socket the kubelet watches."""
        endpoint = dra_socket(self.kubelet_dir, self.driver)
        services = {}
        for version, package in protocol.DRA_PACKAGES.items():
            methods = protocol.DRA[version]
            services[f"{package}.DRAPlugin"] = {
                "NodePrepareResources": (methods["NodePrepareResources"],
                                         self._prepare_handler(methods["NodePrepareResources"])),
                "NodeUnprepareResources": (methods["NodeUnprepareResources"],
                                           self._unprepare_handler(
                                               methods["NodeUnprepareResources"])),
            }
        self._serve(endpoint, services)
        if register:
            self._serve(registration_socket(self.kubelet_dir, self.driver), {
                protocol.REGISTRATION_SERVICE: {
                    "GetInfo": (protocol.REGISTRATION["GetInfo"], self._get_info),
                    "NotifyRegistrationStatus": (protocol.REGISTRATION["NotifyRegistrationStatus"],
                                                 self._notify_registration),
                }})
        log.info("kubelet plugin of %s serving on %s (registration %s)", self.driver, endpoint,
                 "on" if register else "off")

    # Registration.

    def _get_info(self, request: Any) -> Any:
        return protocol.REGISTRATION["GetInfo"].response(
            type=protocol.PLUGIN_TYPE, name=self.driver,
            endpoint=str(dra_socket(self.kubelet_dir, self.driver)),
            supported_versions=protocol.SUPPORTED_VERSIONS)

    def _notify_registration(self, request: Any) -> Any:
        self.state.registered = request.plugin_registered
        self.state.registration_error = request.error
        if request.plugin_registered:
            log.info("registered with the kubelet of node %s", self.node)
        else:
            log.error("the kubelet rejected the registration: %s", request.error)
        return protocol.REGISTRATION["NotifyRegistrationStatus"].response()

    # Prepare and unprepare.

    def _prepare_handler(self, method: protocol.Method) -> Callable[[Any], Any]:
        def prepare(request: Any) -> Any:
            response = method.response()
            for claim in request.claims:
                entry = response.claims[claim.uid]
                try:
                    for device in self.prepare_claim(claim.namespace, claim.name, claim.uid):
                        entry.devices.add(**device)
                except PrepareError as error:
                    log.error("prepare of claim %s/%s failed: %s", claim.namespace, claim.name,
                              error)
                    entry.error = str(error)
            return response

        return prepare

    def _unprepare_handler(self, method: protocol.Method) -> Callable[[Any], Any]:
        def unprepare(request: Any) -> Any:
            response = method.response()
            for claim in request.claims:
                entry = response.claims[claim.uid]
                try:
                    self.unprepare_claim(claim.uid)
                except OSError as error:
                    entry.error = f"unprepare of claim {claim.uid} failed: {error}"
            return response

        return unprepare

    def _record(self, uid: str) -> Path:
        return self.state_dir / "prepared" / f"{uid}.json"

    def prepared_claims(self) -> list[dict[str, Any]]:
        claims = []
        for path in sorted((self.state_dir / "prepared").glob("*.json")):
            record = json.loads(path.read_text())
            claims.append({"uid": path.stem, "namespace": record["namespace"],
                           "name": record["name"],
                           "devices": [d["device_name"] for d in record["devices"]]})
        return claims

    def control_state(self) -> dict[str, Any]:
        """Return what the test-control surface reports."""
        with self._lock:
            calls = dict(self.state.calls)
        return {"driver": self.driver, "node": self.node, "profile": self.profile.name,
                "fault": self.state.fault, "fault_delay": self.state.fault_delay,
                "registered": self.state.registered, "calls": calls,
                "prepared": self.prepared_claims()}

    def prepare_claim(self, namespace: str, name: str, uid: str) -> list[dict[str, Any]]:
        """Prepare one claim; calling it again for a prepared claim returns the same devices."""
        with self._lock:
            record = self._record(uid)
            if record.exists():
                return json.loads(record.read_text())["devices"]
        fault = self.state.fault
        if fault == "prepare-error":
            raise PrepareError("injected fault prepare-error: the device could not be configured")
        if fault == "slow-prepare":
            time.sleep(self.state.fault_delay)
        claim = self._read_claim(namespace, name, uid)
        results = self._results_for_this_node(claim)
        devices, spec_devices, common = self._cdi_edits(uid, results)
        if fault == "missing-env":
            common.env.clear()
            for edits in spec_devices.values():
                edits.env.clear()
        spec_dir = self.cdi_dir
        if fault == "cdi-wrong-dir":
            spec_dir = self.cdi_dir.parent / f"{self.cdi_dir.name}-unread"
        with self._lock:
            cdi.write_spec(spec_dir, self._spec_file(uid), self.cdi_kind, spec_devices, common)
            if fault == "crash-during-prepare" and not self._crash_marker.exists():
                self._crash_marker.write_text(uid)
                log.error("injected fault crash-during-prepare: exiting in the middle of "
                          "preparing claim %s/%s", namespace, name)
                os._exit(70)
            record.write_text(json.dumps({"namespace": namespace, "name": name,
                                          "devices": devices}))
        log.info("prepared claim %s/%s (%s): %s", namespace, name, uid,
                 ", ".join(d["device_name"] for d in devices))
        return devices

    @property
    def _crash_marker(self) -> Path:
        return self.state_dir / "crashed-during-prepare"

    def unprepare_claim(self, uid: str) -> None:
        """Remove what prepare made; unpreparing an unknown claim is not an error."""
        with self._lock:
            (self.cdi_dir / self._spec_file(uid)).unlink(missing_ok=True)
            (self.cdi_dir.parent / f"{self.cdi_dir.name}-unread" / self._spec_file(uid)).unlink(
                missing_ok=True)
            shutil.rmtree(self.state_dir / "claims" / uid, ignore_errors=True)
            existed = self._record(uid).exists()
            self._record(uid).unlink(missing_ok=True)
        if existed:
            log.info("unprepared claim %s", uid)

    def _spec_file(self, uid: str) -> str:
        return f"{self.driver}-{uid}.json"

    def _read_claim(self, namespace: str, name: str, uid: str) -> dict[str, Any]:
        try:
            claim = self.kube.get(dra("ResourceClaim", self._claims_version), name, namespace)
        except NotFound:
            raise PrepareError(f"claim {namespace}/{name} does not exist") from None
        except KubeError as error:
            raise PrepareError(f"reading claim {namespace}/{name} failed: {error}") from None
        if claim["metadata"]["uid"] != uid:
            raise PrepareError(f"claim {namespace}/{name} has uid {claim['metadata']['uid']}, "
                               f"not {uid}; it was deleted and recreated")
        status = claim.get("status") or {}
        if not status.get("allocation"):
            raise PrepareError(f"claim {namespace}/{name} is not allocated")
        if not status.get("reservedFor"):
            raise PrepareError(f"claim {namespace}/{name} is not reserved for any pod")
        return claim

    def _results_for_this_node(self, claim: dict[str, Any]) -> list[dict[str, Any]]:
        meta = claim["metadata"]
        results = [r for r in claim["status"]["allocation"].get("devices", {}).get("results", [])
                   if r.get("driver") == self.driver]
        if not results:
            raise PrepareError(f"claim {meta['namespace']}/{meta['name']} has no devices of "
                               f"driver {self.driver}")
        foreign = [r for r in results if r.get("pool") != self.node]
        if foreign:
            raise PrepareError(
                f"claim {meta['namespace']}/{meta['name']} is allocated devices of pool "
                f"{foreign[0].get('pool')}, which is not node {self.node}; refusing to prepare "
                "another node's devices")
        known = {device["name"] for device in self.profile.devices(self.node)}
        unknown = [r["device"] for r in results if r.get("device") not in known]
        if unknown:
            raise PrepareError(f"claim {meta['namespace']}/{meta['name']} names devices "
                               f"{', '.join(unknown)} that node {self.node} does not have")
        return results

    def _cdi_edits(self, uid: str, results: list[dict[str, Any]]
                   ) -> tuple[list[dict[str, Any]], dict[str, cdi.ContainerEdits],
                              cdi.ContainerEdits]:
        by_name = {device["name"]: device for device in self.profile.devices(self.node)}
        devices: list[dict[str, Any]] = []
        spec_devices: dict[str, cdi.ContainerEdits] = {}
        common = cdi.ContainerEdits()
        for result in results:
            cdi_name = f"{uid}-{result['device']}"
            spec_devices[cdi_name] = self._device_edits(uid, by_name[result["device"]])
            devices.append({"request_names": [result["request"]], "pool_name": result["pool"],
                            "device_name": result["device"],
                            "cdi_device_ids": [cdi.qualified_name(self.cdi_kind, cdi_name)]})
        if self.profile.kind == "gpu":
            uuids = [by_name[r["device"]]["attributes"]["uuid"]["string"] for r in results]
            common.env.append(f"NVIDIA_VISIBLE_DEVICES={','.join(uuids)}")
            common.mounts.append({"hostPath": str(self.nvidia_smi),
                                  "containerPath": NVIDIA_SMI_CONTAINER_PATH,
                                  "options": ["ro", "nosuid", "nodev", "bind"]})
        else:
            common.env += [f"{key}={value}"
                           for key, value in tpu_environment(self.profile).items()]
        return devices, spec_devices, common

    def _device_edits(self, uid: str, device: dict[str, Any]) -> cdi.ContainerEdits:
        edits = cdi.ContainerEdits()
        if self.profile.kind == "gpu":
            info = self.state_dir / "claims" / uid / "gpus" / device["name"]
            info.parent.mkdir(parents=True, exist_ok=True)
            attributes = device["attributes"]
            info.write_text(f"{attributes['productName']['string']}|"
                            f"{attributes['uuid']['string']}\n")
            edits.mounts.append({"hostPath": str(info),
                                 "containerPath": f"{GPU_INFO_CONTAINER_DIR}/{device['name']}",
                                 "options": ["ro", "bind"]})
        else:
            edits.env.append(f"TPU_DEVICE_{device['name']}_RESOURCE_CLAIM={uid}")
        return edits

    def stop(self) -> None:
        for server in self._servers:
            server.stop(grace=2).wait()
        self._servers.clear()
        registration_socket(self.kubelet_dir, self.driver).unlink(missing_ok=True)
        dra_socket(self.kubelet_dir, self.driver).unlink(missing_ok=True)

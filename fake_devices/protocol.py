"""Protobuf messages of the kubelet plugin protocols, built at import time.

The kubelet talks to a DRA driver over two gRPC services on Unix sockets:
``pluginregistration.Registration`` (plugin discovery) and ``DRAPlugin`` in
the packages ``k8s.io.kubelet.pkg.apis.dra.v1`` and ``...v1beta1``. Field
numbers follow ``k8s.io/kubelet/pkg/apis/{pluginregistration,dra}`` (checked
against k8s.io/kubelet v0.37.2). The descriptors are built in code instead of
generated ``_pb2`` files so the module works with any protobuf runtime.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from google.protobuf import descriptor_pb2, descriptor_pool, message_factory

REGISTRATION_SERVICE = "pluginregistration.Registration"
DRA_PACKAGES = {
    "v1": "k8s.io.kubelet.pkg.apis.dra.v1",
    "v1beta1": "k8s.io.kubelet.pkg.apis.dra.v1beta1",
}
PLUGIN_TYPE = "DRAPlugin"

_F = descriptor_pb2.FieldDescriptorProto
_STRING, _BOOL, _MESSAGE = _F.TYPE_STRING, _F.TYPE_BOOL, _F.TYPE_MESSAGE
_OPTIONAL, _REPEATED = _F.LABEL_OPTIONAL, _F.LABEL_REPEATED


def _message(file: descriptor_pb2.FileDescriptorProto, name: str,
             fields: list[tuple]) -> descriptor_pb2.DescriptorProto:
    message = file.message_type.add(name=name)
    for field in fields:
        field_name, number, kind, label, *type_name = field
        added = message.field.add(name=field_name, number=number, type=kind, label=label)
        if type_name:
            added.type_name = type_name[0]
    return message


def _map_entry(parent: descriptor_pb2.DescriptorProto, field_name: str, number: int,
               value_type: str) -> None:
    entry_name = "".join(part.capitalize() for part in field_name.split("_")) + "Entry"
    entry = parent.nested_type.add(name=entry_name)
    entry.options.map_entry = True
    entry.field.add(name="key", number=1, type=_STRING, label=_OPTIONAL)
    entry.field.add(name="value", number=2, type=_MESSAGE, label=_OPTIONAL, type_name=value_type)
    parent.field.add(name=field_name, number=number, type=_MESSAGE, label=_REPEATED,
                     type_name=f"{parent.name}.{entry_name}")


def _service(file: descriptor_pb2.FileDescriptorProto, name: str,
             methods: list[tuple[str, str, str]]) -> None:
    service = file.service.add(name=name)
    for method, request, response in methods:
        service.method.add(name=method, input_type=f".{file.package}.{request}",
                           output_type=f".{file.package}.{response}")


def _registration_file() -> descriptor_pb2.FileDescriptorProto:
    file = descriptor_pb2.FileDescriptorProto(
        name="draconf/pluginregistration.proto", package="pluginregistration", syntax="proto3")
    _message(file, "PluginInfo", [
        ("type", 1, _STRING, _OPTIONAL),
        ("name", 2, _STRING, _OPTIONAL),
        ("endpoint", 3, _STRING, _OPTIONAL),
        ("supported_versions", 4, _STRING, _REPEATED),
    ])
    _message(file, "RegistrationStatus", [
        ("plugin_registered", 1, _BOOL, _OPTIONAL),
        ("error", 2, _STRING, _OPTIONAL),
    ])
    _message(file, "RegistrationStatusResponse", [])
    _message(file, "InfoRequest", [])
    _service(file, "Registration", [
        ("GetInfo", "InfoRequest", "PluginInfo"),
        ("NotifyRegistrationStatus", "RegistrationStatus", "RegistrationStatusResponse"),
    ])
    return file


def _dra_file(version: str) -> descriptor_pb2.FileDescriptorProto:
    package = DRA_PACKAGES[version]
    file = descriptor_pb2.FileDescriptorProto(
        name=f"draconf/dra_{version}.proto", package=package, syntax="proto3")
    claim = f".{package}.Claim"
    _message(file, "Claim", [
        ("namespace", 1, _STRING, _OPTIONAL),
        ("uid", 2, _STRING, _OPTIONAL),
        ("name", 3, _STRING, _OPTIONAL),
    ])
    device_fields = [
        ("request_names", 1, _STRING, _REPEATED),
        ("pool_name", 2, _STRING, _OPTIONAL),
        ("device_name", 3, _STRING, _OPTIONAL),
        ("cdi_device_ids", 4, _STRING, _REPEATED),
    ]
    device = _message(file, "Device", device_fields)
    if version == "v1":
        # share_id is a proto3 `optional` field, which needs a synthetic oneof.
        device.oneof_decl.add(name="_share_id")
        device.field.add(name="share_id", number=5, type=_STRING, label=_OPTIONAL,
                         oneof_index=0, proto3_optional=True)
    _message(file, "NodePrepareResourcesRequest", [("claims", 1, _MESSAGE, _REPEATED, claim)])
    _message(file, "NodePrepareResourceResponse", [
        ("devices", 1, _MESSAGE, _REPEATED, f".{package}.Device"),
        ("error", 2, _STRING, _OPTIONAL),
    ])
    prepare_response = _message(file, "NodePrepareResourcesResponse", [])
    _map_entry(prepare_response, "claims", 1, f".{package}.NodePrepareResourceResponse")
    _message(file, "NodeUnprepareResourcesRequest", [("claims", 1, _MESSAGE, _REPEATED, claim)])
    _message(file, "NodeUnprepareResourceResponse", [("error", 1, _STRING, _OPTIONAL)])
    unprepare_response = _message(file, "NodeUnprepareResourcesResponse", [])
    _map_entry(unprepare_response, "claims", 1, f".{package}.NodeUnprepareResourceResponse")
    _service(file, "DRAPlugin", [
        ("NodePrepareResources", "NodePrepareResourcesRequest", "NodePrepareResourcesResponse"),
        ("NodeUnprepareResources", "NodeUnprepareResourcesRequest", "NodeUnprepareResourcesResponse"),
    ])
    return file


_POOL = descriptor_pool.DescriptorPool()
for _file in (_registration_file(), _dra_file("v1"), _dra_file("v1beta1")):
    _POOL.Add(_file)


def message_class(full_name: str) -> Any:
    """Return the generated message class for a fully qualified message name."""
    return message_factory.GetMessageClass(_POOL.FindMessageTypeByName(full_name))


@dataclass(frozen=True)
class Method:
    """One unary gRPC method: its path on the wire and its message classes."""

    service: str
    name: str
    request: Any
    response: Any

    @property
    def path(self) -> str:
        return f"/{self.service}/{self.name}"


def _methods(service: str) -> dict[str, Method]:
    descriptor = _POOL.FindServiceByName(service)
    return {
        method.name: Method(
            service=service,
            name=method.name,
            request=message_factory.GetMessageClass(method.input_type),
            response=message_factory.GetMessageClass(method.output_type),
        )
        for method in descriptor.methods
    }


REGISTRATION = _methods(REGISTRATION_SERVICE)
DRA = {version: _methods(f"{package}.DRAPlugin") for version, package in DRA_PACKAGES.items()}
SUPPORTED_VERSIONS = [f"{version}.DRAPlugin" for version in DRA_PACKAGES]

"""The device inventory that ResourceSlices publish, read the way the scheduler reads it.

Slices group into pools by (driver, pool name). Only the newest generation of
a pool counts. A pool is incomplete while fewer slices of that generation
exist than its ``resourceSliceCount``, and invalid when a device name
repeats within it. The devices of incomplete and invalid pools are listed but
not allocatable, and the pool carries the reason.

Both layouts of the API are read: resource.k8s.io/v1 devices carry
``attributes`` and ``capacity`` directly, v1beta1 devices nest them under
``basic``.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any, Iterable, Mapping

from allocator.cel import DeviceInput


class InventoryError(ValueError):
    """A ResourceSlice or Node that lacks a field the inventory needs."""


@dataclass(frozen=True)
class Node:
    """A node as allocation uses it: its name and labels."""

    name: str
    labels: Mapping[str, str] = field(default_factory=dict)

    @classmethod
    def from_api(cls, node: Mapping[str, Any] | str) -> Node:
        """Build from a Node object, or from a bare node name."""
        if isinstance(node, str):
            return cls(node)
        metadata = node.get("metadata") if isinstance(node, Mapping) else None
        if not isinstance(metadata, Mapping) or not metadata.get("name"):
            raise InventoryError(f"node {node!r} has no metadata.name")
        return cls(str(metadata["name"]), dict(metadata.get("labels") or {}))


@dataclass(frozen=True, eq=False)
class Device:
    """One published device and where it is available."""

    driver: str
    pool: str
    name: str
    slice_name: str
    generation: int
    # Exactly one of these sets where the device is available: on one node,
    # on every node, or on the nodes a NodeSelector selects.
    node: str | None
    all_nodes: bool
    node_selector: Mapping[str, Any] | None
    attributes: Mapping[str, Any]
    capacity: Mapping[str, Any]
    cel_input: DeviceInput = field(repr=False)

    @property
    def key(self) -> tuple[str, str, str]:
        return (self.driver, self.pool, self.name)

    @property
    def label(self) -> str:
        """The device's name as results write it: driver/pool/device."""
        return "/".join(self.key)

    def available_on(self, node: Node) -> bool:
        if self.node is not None:
            return self.node == node.name
        if self.all_nodes:
            return True
        return self.node_selector is not None and node_selector_matches(self.node_selector, node)

    def attribute(self, qualified_name: str) -> tuple[str, Any] | None:
        """Look up an attribute by fully qualified name, as constraints do.

        Return (kind, value) such as ("string", "pci0000:00"), or None when
        the device lacks the attribute. Attributes of the driver's own domain
        may be published without the domain prefix.
        """
        attribute = self.attributes.get(qualified_name)
        if attribute is None:
            domain, _, short = qualified_name.partition("/")
            if domain == self.driver and short:
                attribute = self.attributes.get(short)
        if not isinstance(attribute, Mapping):
            return None
        for kind in ("string", "int", "bool", "version"):
            if kind in attribute:
                return (kind, attribute[kind])
        return None


@dataclass
class Pool:
    """The newest generation of one pool of one driver."""

    driver: str
    name: str
    generation: int
    resource_slice_count: int
    slice_names: list[str] = field(default_factory=list)
    devices: list[Device] = field(default_factory=list)
    incomplete: bool = False
    invalid: bool = False
    # Why the pool's devices are not allocatable, or empty when they are.
    problem: str = ""

    @property
    def allocatable(self) -> bool:
        return not self.problem

    @property
    def label(self) -> str:
        return f"{self.driver}/{self.name}"


@dataclass
class Inventory:
    """All pools, keyed by (driver, pool name)."""

    pools: dict[tuple[str, str], Pool]
    _sorted: dict[bool, list[Device]] = field(default_factory=dict, repr=False, compare=False)

    def devices(self, allocatable_only: bool = True) -> list[Device]:
        """Return devices sorted by pool, then device name, then driver.

        The sorted lists are computed once: an Inventory is not changed after
        build_inventory, so one Inventory can serve many allocate calls.
        """
        cached = self._sorted.get(allocatable_only)
        if cached is None:
            found = [device for pool in self.pools.values()
                     if pool.allocatable or not allocatable_only for device in pool.devices]
            cached = sorted(found, key=lambda d: (natural_key(d.pool), natural_key(d.name),
                                                  d.driver))
            self._sorted[allocatable_only] = cached
        return list(cached)

    def unallocatable_pools(self) -> list[Pool]:
        return [pool for pool in self.pools.values() if not pool.allocatable]

    def node_names(self) -> list[str]:
        """Return the nodes that node-local pools name, sorted."""
        names = {device.node for pool in self.pools.values() for device in pool.devices
                 if device.node}
        return sorted(names, key=natural_key)


def natural_key(text: str) -> tuple[Any, ...]:
    """Sort "gpu-2" before "gpu-10" by comparing digit runs as numbers."""
    return tuple(int(part) if part.isdigit() else part for part in re.split(r"(\d+)", text))


def build_inventory(slices: Iterable[Mapping[str, Any]]) -> Inventory:
    """Read ResourceSlices into pools, raising InventoryError for a slice missing a field."""
    newest: dict[tuple[str, str], list[Mapping[str, Any]]] = {}
    for item in slices:
        spec = _slice_spec(item)
        key = (spec["driver"], spec["pool"]["name"])
        generation = _generation(spec)
        current = newest.get(key)
        if current is None or generation > _generation(current[0]["spec"]):
            newest[key] = [item]
        elif generation == _generation(current[0]["spec"]):
            current.append(item)
    pools = {}
    for key in sorted(newest, key=lambda k: (natural_key(k[1]), k[0])):
        pools[key] = _build_pool(newest[key])
    return Inventory(pools)


def _slice_name(item: Mapping[str, Any]) -> str:
    metadata = item.get("metadata") if isinstance(item, Mapping) else None
    return str((metadata or {}).get("name") or "<unnamed>")


def _slice_spec(item: Mapping[str, Any]) -> Mapping[str, Any]:
    name = _slice_name(item)
    spec = item.get("spec") if isinstance(item, Mapping) else None
    if not isinstance(spec, Mapping):
        raise InventoryError(f"ResourceSlice {name} has no spec")
    if not spec.get("driver"):
        raise InventoryError(f"ResourceSlice {name} has no spec.driver")
    pool = spec.get("pool")
    if not isinstance(pool, Mapping) or not pool.get("name"):
        raise InventoryError(f"ResourceSlice {name} has no spec.pool.name")
    devices = spec.get("devices")
    if devices is not None and not isinstance(devices, list):
        raise InventoryError(f"ResourceSlice {name}: spec.devices must be a list")
    placements = [key for key in ("nodeName", "allNodes", "nodeSelector", "perDeviceNodeSelection")
                  if spec.get(key)]
    if len(placements) != 1:
        raise InventoryError(f"ResourceSlice {name}: exactly one of spec.nodeName, "
                             "spec.allNodes, spec.nodeSelector and spec.perDeviceNodeSelection "
                             f"must be set, found {placements or 'none'}")
    return spec


def _generation(spec: Mapping[str, Any]) -> int:
    return int(spec["pool"].get("generation") or 0)


def _build_pool(items: list[Mapping[str, Any]]) -> Pool:
    first = items[0]["spec"]
    expected = int(first["pool"].get("resourceSliceCount") or 1)
    pool = Pool(first["driver"], first["pool"]["name"], _generation(first), expected)
    seen: dict[str, str] = {}
    duplicates: list[str] = []

    for item in sorted(items, key=lambda i: natural_key(_slice_name(i))):
        slice_name = _slice_name(item)
        pool.slice_names.append(slice_name)
        spec = item["spec"]
        for raw in spec.get("devices") or []:
            device = _build_device(spec, slice_name, raw)
            if device.name in seen:
                duplicates.append(f"{device.name} (in {seen[device.name]} and {slice_name})")
            seen.setdefault(device.name, slice_name)
            pool.devices.append(device)

    problems = []
    # Kubernetes also counts a pool with more slices than announced as incomplete.
    if len(items) != expected:
        pool.incomplete = True
        problems.append(f"pool {pool.label} is incomplete: {len(items)} ResourceSlice(s) of "
                        f"generation {pool.generation} are published but resourceSliceCount is "
                        f"{expected}, so its devices are not allocatable until the driver "
                        "publishes the whole pool")
    if duplicates:
        pool.invalid = True
        problems.append(f"pool {pool.label} is invalid because device names repeat: "
                        f"{', '.join(duplicates)}, so its devices are not allocatable until the "
                        "driver publishes unique names")
    pool.problem = "; ".join(problems)
    return pool


def _build_device(spec: Mapping[str, Any], slice_name: str, raw: Any) -> Device:
    if not isinstance(raw, Mapping) or not raw.get("name"):
        raise InventoryError(f"ResourceSlice {slice_name}: device {raw!r} has no name")
    fields = raw["basic"] if isinstance(raw.get("basic"), Mapping) else raw
    attributes = fields.get("attributes") or {}
    capacity = fields.get("capacity") or {}
    if not isinstance(attributes, Mapping) or not isinstance(capacity, Mapping):
        raise InventoryError(f"ResourceSlice {slice_name}: device {raw['name']}: attributes "
                             "and capacity must be maps")
    placement = raw if spec.get("perDeviceNodeSelection") else spec
    driver = str(spec["driver"])
    name = str(raw["name"])
    return Device(
        driver=driver, pool=str(spec["pool"]["name"]), name=name, slice_name=slice_name,
        generation=_generation(spec), node=placement.get("nodeName") or None,
        all_nodes=bool(placement.get("allNodes")),
        node_selector=placement.get("nodeSelector") or None,
        attributes=attributes, capacity=capacity,
        cel_input=DeviceInput(driver, attributes, capacity, f"{driver}/{spec['pool']['name']}/{name}"))


def node_selector_matches(selector: Mapping[str, Any], node: Node) -> bool:
    """Apply a core/v1 NodeSelector: any term may match, all requirements of a term must."""
    return any(_term_matches(term, node) for term in selector.get("nodeSelectorTerms") or [])


def _term_matches(term: Mapping[str, Any], node: Node) -> bool:
    expressions = term.get("matchExpressions") or []
    fields = term.get("matchFields") or []
    if not expressions and not fields:
        return False  # an empty term selects no node
    return (all(_requirement_matches(r, node.labels) for r in expressions)
            and all(_requirement_matches(r, {"metadata.name": node.name}) for r in fields))


def _requirement_matches(requirement: Mapping[str, Any], values: Mapping[str, str]) -> bool:
    key = requirement.get("key", "")
    operator = requirement.get("operator", "")
    wanted = [str(v) for v in requirement.get("values") or []]
    present = key in values
    value = values.get(key, "")
    if operator == "In":
        return present and value in wanted
    if operator == "NotIn":
        return not present or value not in wanted
    if operator == "Exists":
        return present
    if operator == "DoesNotExist":
        return not present
    if operator in ("Gt", "Lt") and present and len(wanted) == 1:
        try:
            number, bound = int(value), int(wanted[0])
        except ValueError:
            return False
        return number > bound if operator == "Gt" else number < bound
    return False

"""Structured-parameters allocation of one ResourceClaim, following the kube-scheduler's rules.

``allocate`` picks devices for a claim from the devices that ResourceSlices
publish, or returns a reason that a person can act on. The rules:

- A device fits a request when every CEL selector of the request's
  DeviceClass and every selector of the request return true.
- ``ExactCount`` requests take ``count`` devices (default 1). ``All``
  requests take every fitting device available on the node, need at least
  one, and fail when another claim uses any of them or when a pool on
  the node is incomplete or invalid.
- A ``firstAvailable`` request tries its subrequests in order, and results
  name the chosen one as ``request/subrequest``.
- Constraints: ``matchAttribute`` wants one value of the attribute across
  the devices of the listed requests, ``distinctAttribute`` wants pairwise
  different values. Devices that lack the attribute break either.
- ``adminAccess`` needs the namespace label
  ``resource.kubernetes.io/admin-access: "true"``. Such requests may take
  devices allocated to other claims, and their results keep no device in use.
- Devices in the results of other allocated claims are in use, except for
  results with adminAccess. A claim never gets the same device twice.
- A claim gets at most 32 results, and all of them must be available on
  one node.

The search tries nodes by name and devices by pool, then name, and
backtracks, so a constraint can still be met when the first choice fails.
The first node that fits wins: nodes are not scored, so a firstAvailable
request may get a later subrequest on an earlier node although a later node
could serve the first one.

Not modelled: device taints and tolerations, partitionable devices
(shared counters), consumable capacity and binding conditions.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass
from typing import Any, ClassVar, Iterable, Mapping, Sequence, Union

from allocator.cel import SelectorError, compile_selector
from allocator.model import Device, Inventory, InventoryError, Node, Pool, build_inventory, \
    natural_key

MAX_RESULTS = 32
ADMIN_ACCESS_LABEL = "resource.kubernetes.io/admin-access"
# NOTE: the scheduler has no step limit (it stops at its filter timeout). This
# bound keeps a pathological constraint search from running for minutes. A
# node that hits it is reported as such, not as unsatisfiable.
MAX_SEARCH_STEPS = 200_000
# How many nodes a reason lists before summarizing the rest.
MAX_NODES_IN_REASON = 10


@dataclass(frozen=True)
class DeviceResult:
    """One allocated device, as ``status.allocation.devices.results`` lists it."""

    request: str
    driver: str
    pool: str
    device: str
    admin_access: bool = False

    def to_api(self) -> dict[str, Any]:
        result: dict[str, Any] = {"request": self.request, "driver": self.driver,
                                  "pool": self.pool, "device": self.device}
        if self.admin_access:
            result["adminAccess"] = True
        return result


@dataclass(frozen=True)
class Allocation:
    """A successful outcome: the devices for the claim and the node they serve."""

    claim: str
    node: str
    results: tuple[DeviceResult, ...]
    # None when every device is available on all nodes.
    node_selector: dict[str, Any] | None
    allocated: ClassVar[bool] = True

    def to_api(self) -> dict[str, Any]:
        """Return the claim's ``status.allocation`` as the scheduler would write it."""
        allocation: dict[str, Any] = {
            "devices": {"results": [result.to_api() for result in self.results]}}
        if self.node_selector is not None:
            allocation["nodeSelector"] = self.node_selector
        return allocation


@dataclass(frozen=True)
class Unallocatable:
    """A failed outcome with the reason, worded for a person to act on."""

    claim: str
    reason: str
    allocated: ClassVar[bool] = False


Outcome = Union[Allocation, Unallocatable]


class MatchCache:
    """Results of CEL selectors per (expression, driver, pool, generation, device).

    One cache may serve several ``allocate`` calls only while the slices keep
    the API's promise that a driver bumps the pool generation whenever it
    changes a device. Evaluation errors are cached too.
    """

    def __init__(self, max_entries: int = 500_000):
        self.max_entries = max_entries
        self._results: dict[tuple[str, str, str, int, str], bool | SelectorError] = {}

    def matches(self, expression: str, device: Device) -> bool:
        """Evaluate a selector on a device, raising SelectorError as the selector does."""
        key = (expression, device.driver, device.pool, device.generation, device.name)
        result = self._results.get(key)
        if result is None:
            try:
                result = compile_selector(expression).matches(device.cel_input)
            except SelectorError as error:
                result = error
            if len(self._results) >= self.max_entries:
                self._results.clear()
            self._results[key] = result
        if isinstance(result, SelectorError):
            raise result
        return result


class _Rejected(Exception):
    """Internal: the claim cannot be allocated, for the given reason."""


@dataclass(frozen=True)
class _Spec:
    """One request, or one subrequest of a firstAvailable request."""

    name: str                # as results name it: "request" or "request/subrequest"
    parent: str
    device_class: str
    class_selectors: tuple[str, ...]
    selectors: tuple[str, ...]
    all_devices: bool
    count: int
    admin_access: bool

    @property
    def min_results(self) -> int:
        return 1 if self.all_devices else self.count

    def describe(self) -> str:
        kind = "subrequest" if "/" in self.name else "request"
        return f"{kind} {self.name}"


@dataclass(frozen=True)
class _Request:
    name: str
    alternatives: tuple[_Spec, ...]


@dataclass(frozen=True)
class _Constraint:
    kind: str                # "matchAttribute" or "distinctAttribute"
    attribute: str
    requests: tuple[str, ...]  # empty means every request

    def applies(self, spec: _Spec) -> bool:
        return not self.requests or spec.parent in self.requests or spec.name in self.requests

    def describe(self) -> str:
        scope = f"requests {', '.join(self.requests)}" if self.requests else "all requests"
        return f"{self.kind} {self.attribute} over {scope}"


def allocate(claim: Mapping[str, Any], slices: Iterable[Mapping[str, Any]] | Inventory,
             classes: Mapping[str, Mapping[str, Any]] | Iterable[Mapping[str, Any]],
             allocated_claims: Iterable[Mapping[str, Any]],
             nodes: Iterable[Mapping[str, Any] | str] | None,
             namespace_labels: Mapping[str, str] | None = None,
             cache: MatchCache | None = None) -> Outcome:
    """Allocate devices for one claim, or explain why that is not possible.

    ``classes`` maps DeviceClass names to objects, or lists the objects.
    ``allocated_claims`` are the other claims, whose allocated devices are
    in use. ``nodes`` are Node objects or names. When there are none, the
    nodes that node-local slices name are used. ``namespace_labels`` are the
    labels of the claim's namespace, needed for adminAccess. A ``cache`` may
    be shared across calls (see MatchCache). Raise InventoryError for a
    malformed slice.
    """
    reference = claim_reference(claim)
    # A prebuilt Inventory saves rebuilding it for every claim of a batch.
    inventory = slices if isinstance(slices, Inventory) else build_inventory(slices)
    cache = cache or MatchCache()
    try:
        requests, constraints = _parse_claim(claim, _index_classes(classes), namespace_labels)
        node_list = _node_list(nodes, inventory)
        in_use = _devices_in_use(claim, allocated_claims)
        matched = _match_devices(requests, inventory, cache)
        _reject_requests_without_devices(requests, matched, node_list, inventory, cache)
        return _allocate_on_nodes(reference, requests, constraints, matched, node_list, in_use,
                                  inventory)
    except _Rejected as rejection:
        return Unallocatable(reference, str(rejection))


def claim_reference(claim: Mapping[str, Any]) -> str:
    """Name a claim as namespace/name."""
    metadata = claim.get("metadata") or {}
    return f"{metadata.get('namespace') or 'default'}/{metadata.get('name') or '<unnamed>'}"


# Reading the claim.

def _index_classes(classes: Mapping[str, Mapping[str, Any]] | Iterable[Mapping[str, Any]]
                   ) -> dict[str, Mapping[str, Any]]:
    if isinstance(classes, Mapping):
        return dict(classes)
    return {str((item.get("metadata") or {}).get("name")): item for item in classes}


def _parse_claim(claim: Mapping[str, Any], classes: Mapping[str, Mapping[str, Any]],
                 namespace_labels: Mapping[str, str] | None
                 ) -> tuple[list[_Request], list[_Constraint]]:
    devices = (claim.get("spec") or {}).get("devices")
    if not isinstance(devices, Mapping):
        raise _Rejected("invalid claim: spec.devices is missing")
    raw_requests = devices.get("requests") or []
    if not isinstance(raw_requests, list):
        raise _Rejected("invalid claim: spec.devices.requests must be a list")
    requests = []
    seen: set[str] = set()
    for index, raw in enumerate(raw_requests):
        name = raw.get("name") if isinstance(raw, Mapping) else None
        if not name:
            raise _Rejected(f"invalid claim: request #{index} has no name")
        if name in seen:
            raise _Rejected(f"invalid claim: request name {name} repeats")
        seen.add(name)
        requests.append(_parse_request(name, raw, classes))
    minimum = sum(min(spec.min_results for spec in r.alternatives) for r in requests)
    if minimum > MAX_RESULTS:
        raise _Rejected(f"the claim asks for at least {minimum} devices, more than the limit of "
                        f"{MAX_RESULTS} results per claim; split it into several claims")
    _check_admin_access(claim, requests, namespace_labels)
    constraints = _parse_constraints(devices.get("constraints") or [], requests)
    return requests, constraints


def _parse_request(name: str, raw: Mapping[str, Any],
                   classes: Mapping[str, Mapping[str, Any]]) -> _Request:
    if raw.get("firstAvailable"):
        alternatives = []
        for index, sub in enumerate(raw["firstAvailable"]):
            sub_name = sub.get("name") if isinstance(sub, Mapping) else None
            if not sub_name:
                raise _Rejected(f"invalid claim: request {name}: subrequest #{index} has no name")
            alternatives.append(_parse_spec(f"{name}/{sub_name}", name, sub, classes))
        return _Request(name, tuple(alternatives))
    # resource.k8s.io/v1 nests the fields under "exactly", v1beta1 has them inline.
    fields = raw.get("exactly") if isinstance(raw.get("exactly"), Mapping) else raw
    return _Request(name, (_parse_spec(name, name, fields, classes),))


def _parse_spec(name: str, parent: str, fields: Mapping[str, Any],
                classes: Mapping[str, Mapping[str, Any]]) -> _Spec:
    kind = "subrequest" if "/" in name else "request"
    class_name = fields.get("deviceClassName")
    if not class_name:
        raise _Rejected(f"invalid claim: {kind} {name} has no deviceClassName")
    device_class = classes.get(class_name)
    if device_class is None:
        known = ", ".join(sorted(classes)) or "none were given"
        raise _Rejected(f"{kind} {name}: DeviceClass {class_name} not found; "
                        f"known DeviceClasses: {known}")
    class_selectors = _selector_expressions(
        (device_class.get("spec") or {}).get("selectors"), f"DeviceClass {class_name}")
    selectors = _selector_expressions(fields.get("selectors"), f"{kind} {name}")
    mode = fields.get("allocationMode") or "ExactCount"
    if mode not in ("ExactCount", "All"):
        raise _Rejected(f"invalid claim: {kind} {name}: unknown allocationMode {mode!r}; "
                        "use ExactCount or All")
    count = fields.get("count", 1) if mode == "ExactCount" else 0
    if mode == "ExactCount" and (not isinstance(count, int) or isinstance(count, bool)
                                 or count < 1):
        raise _Rejected(f"invalid claim: {kind} {name}: count must be a positive integer, "
                        f"got {count!r}")
    if count > MAX_RESULTS:
        raise _Rejected(f"{kind} {name} asks for {count} devices, more than the limit of "
                        f"{MAX_RESULTS} results per claim")
    return _Spec(name, parent, class_name, class_selectors, selectors, mode == "All", count,
                 bool(fields.get("adminAccess")))


def _selector_expressions(selectors: Any, owner: str) -> tuple[str, ...]:
    expressions = []
    for index, selector in enumerate(selectors or []):
        expression = ((selector or {}).get("cel") or {}).get("expression")
        if not expression:
            raise _Rejected(f"{owner}: selector #{index} has no cel.expression, the only "
                            "selector type this allocator supports")
        try:
            compile_selector(expression)
        except SelectorError as error:
            raise _Rejected(f"{owner}: selector #{index}: {error}") from None
        expressions.append(expression)
    return tuple(expressions)


def _check_admin_access(claim: Mapping[str, Any], requests: list[_Request],
                        namespace_labels: Mapping[str, str] | None) -> None:
    admin = [spec.name for request in requests for spec in request.alternatives
             if spec.admin_access]
    if not admin:
        return
    namespace = (claim.get("metadata") or {}).get("namespace") or "default"
    if namespace_labels is None:
        raise _Rejected(f"request {', '.join(admin)} asks for adminAccess, which needs the "
                        f"label {ADMIN_ACCESS_LABEL}=\"true\" on namespace {namespace}, but the "
                        "namespace labels were not given")
    if namespace_labels.get(ADMIN_ACCESS_LABEL) != "true":
        raise _Rejected(f"request {', '.join(admin)} asks for adminAccess, but namespace "
                        f"{namespace} lacks the label {ADMIN_ACCESS_LABEL}=\"true\"")


def _parse_constraints(raw_constraints: Any, requests: list[_Request]) -> list[_Constraint]:
    if not isinstance(raw_constraints, list):
        raise _Rejected("invalid claim: spec.devices.constraints must be a list")
    names = {r.name for r in requests} | {s.name for r in requests for s in r.alternatives}
    constraints = []
    for index, raw in enumerate(raw_constraints):
        kinds = [k for k in ("matchAttribute", "distinctAttribute") if (raw or {}).get(k)]
        if len(kinds) != 1:
            raise _Rejected(f"invalid claim: constraint #{index} must set exactly one of "
                            "matchAttribute and distinctAttribute")
        attribute = str(raw[kinds[0]])
        if "/" not in attribute:
            raise _Rejected(f"invalid claim: constraint #{index}: {kinds[0]} {attribute!r} must "
                            "be fully qualified, such as gpu.nvidia.com/productName")
        listed = tuple(raw.get("requests") or ())
        unknown = [name for name in listed if name not in names]
        if unknown:
            raise _Rejected(f"invalid claim: constraint #{index} names unknown request(s) "
                            f"{', '.join(unknown)}")
        constraints.append(_Constraint(kinds[0], attribute, listed))
    return constraints


# Inputs from the cluster.

def _node_list(nodes: Iterable[Mapping[str, Any] | str] | None,
               inventory: Inventory) -> list[Node]:
    try:
        listed = [Node.from_api(node) for node in nodes or []]
    except InventoryError as error:
        raise _Rejected(str(error)) from None
    if not listed:
        listed = [Node(name) for name in inventory.node_names()]
    unique = {node.name: node for node in listed}
    return [unique[name] for name in sorted(unique, key=natural_key)]


def _devices_in_use(claim: Mapping[str, Any], allocated_claims: Iterable[Mapping[str, Any]]
                  ) -> dict[tuple[str, str, str], list[str]]:
    """Map each device allocated to another claim to the names of those claims."""
    own_uid = (claim.get("metadata") or {}).get("uid")
    own_reference = claim_reference(claim)
    in_use: dict[tuple[str, str, str], list[str]] = defaultdict(list)
    for other in allocated_claims:
        uid = (other.get("metadata") or {}).get("uid")
        reference = claim_reference(other)
        if (own_uid and uid == own_uid) or (not (own_uid and uid) and reference == own_reference):
            continue
        allocation = (other.get("status") or {}).get("allocation") or {}
        for result in (allocation.get("devices") or {}).get("results") or []:
            if result.get("adminAccess"):
                continue
            key = (result.get("driver"), result.get("pool"), result.get("device"))
            in_use[key].append(reference)
    return in_use


# Matching devices to requests.

def _spec_matches(spec: _Spec, device: Device, cache: MatchCache) -> bool:
    """Apply the class selectors, then the request's, raising _Rejected on a CEL error."""
    for owner, expressions in ((f"DeviceClass {spec.device_class}", spec.class_selectors),
                               (spec.describe(), spec.selectors)):
        for expression in expressions:
            try:
                if not cache.matches(expression, device):
                    return False
            except SelectorError as error:
                raise _Rejected(f"{spec.describe()}: selector of {owner} failed on device "
                                f"{device.label}: {error.detail}; expression: "
                                f"{expression}") from None
    return True


def _match_devices(requests: list[_Request], inventory: Inventory, cache: MatchCache
                   ) -> dict[str, list[Device]]:
    """Return the allocatable devices that fit each request and subrequest, in search order."""
    devices = inventory.devices()
    return {spec.name: [device for device in devices if _spec_matches(spec, device, cache)]
            for request in requests for spec in request.alternatives}


def _reject_requests_without_devices(requests: list[_Request], matched: dict[str, list[Device]],
                                     nodes: list[Node], inventory: Inventory,
                                     cache: MatchCache) -> None:
    """Reject the claim when a request has no fitting device on any node."""
    node_names = {node.name for node in nodes}

    def reachable(device: Device) -> bool:
        # Node-local devices (the common case) are a set lookup, not a scan of all nodes.
        if device.node is not None:
            return device.node in node_names
        return any(device.available_on(node) for node in nodes)

    for request in requests:
        problems = []
        for spec in request.alternatives:
            if any(reachable(device) for device in matched[spec.name]):
                break
            problems.append(_no_device_problem(spec, matched[spec.name], nodes, inventory, cache))
        else:
            if len(problems) == 1:
                raise _Rejected(problems[0])
            raise _Rejected(f"request {request.name}: none of its {len(problems)} subrequests "
                            "matches a device on any node:\n" +
                            "\n".join(f"  - {problem}" for problem in problems))


def _no_device_problem(spec: _Spec, matched: list[Device], nodes: list[Node],
                       inventory: Inventory, cache: MatchCache) -> str:
    devices = inventory.devices()
    class_matched = [d for d in devices if _class_matches(spec, d, cache)]
    text = (f"{spec.describe()}: no device of class {spec.device_class} matches on any node: "
            f"{len(nodes)} node(s) checked, {_devices_match(len(class_matched))} the class "
            "selectors")
    if spec.selectors and class_matched:
        text += f", {len(matched)} of them also the request selectors"
    if matched:
        places = sorted({d.node or ("every node" if d.all_nodes else
                                    "nodes selected by a NodeSelector") for d in matched})
        text += (f"; the matching device(s) are not available on the checked nodes but on "
                 f"{_short_list(places)}")
    if not nodes:
        text += "; no nodes were given and no ResourceSlice names a node"
    for pool in _unallocatable_pools_with_matches(spec, inventory, cache):
        text += f"; {pool.problem}"
    return text


def _devices_match(count: int) -> str:
    return "1 device matches" if count == 1 else f"{count} devices match"


def _class_matches(spec: _Spec, device: Device, cache: MatchCache) -> bool:
    try:
        return all(cache.matches(expression, device) for expression in spec.class_selectors)
    except SelectorError:
        return False  # only counted for the reason, because allocation reports such errors


def _unallocatable_pools_with_matches(spec: _Spec, inventory: Inventory,
                                      cache: MatchCache) -> list[Pool]:
    """Return incomplete or invalid pools that have a device fitting the request."""
    found = []
    for pool in inventory.unallocatable_pools():
        for device in pool.devices:
            try:
                fits = _spec_matches(spec, device, cache)
            except _Rejected:
                fits = False  # only a hint: errors on unallocatable devices do not count
            if fits:
                found.append(pool)
                break
    return found


# Searching one node.

class _SearchLimitReached(Exception):
    pass


class _NodeSearch:
    """Backtracking search for devices on one node."""

    def __init__(self, node: Node, requests: list[_Request], constraints: list[_Constraint],
                 matched: dict[str, list[Device]],
                 in_use: Mapping[tuple[str, str, str], list[str]], inventory: Inventory):
        self.node = node
        self.requests = requests
        self.constraints = constraints
        self.in_use = in_use
        self.candidates = {name: [d for d in devices if d.available_on(node)]
                           for name, devices in matched.items()}
        self.blocking_pools = [pool for pool in inventory.unallocatable_pools()
                               if any(d.available_on(node) for d in pool.devices)]
        self.chosen: list[tuple[_Spec, Device]] = []
        self.used: set[tuple[str, str, str]] = set()
        self.steps = 0
        self.limit_blocked = False

    def run(self) -> list[tuple[_Spec, Device]] | None:
        """Return the chosen (request, device) pairs, or None when nothing fits."""
        return list(self.chosen) if self._allocate_request(0) else None

    def free(self, spec: _Spec) -> list[Device]:
        return [d for d in self.candidates[spec.name]
                if spec.admin_access or d.key not in self.in_use]

    def _allocate_request(self, index: int) -> bool:
        if index == len(self.requests):
            return True
        for spec in self.requests[index].alternatives:
            if spec.all_devices:
                if self._allocate_all(spec, index):
                    return True
            elif len(self.chosen) + spec.count > MAX_RESULTS:
                self.limit_blocked = True
            elif self._pick(spec, index, self.free(spec), 0, spec.count):
                return True
        return False

    def _allocate_all(self, spec: _Spec, index: int) -> bool:
        devices = self.candidates[spec.name]
        if not devices or self.blocking_pools:
            return False
        if len(self.chosen) + len(devices) > MAX_RESULTS:
            self.limit_blocked = True
            return False
        added = 0
        for device in devices:
            if not self._usable(spec, device):
                break
            self._push(spec, device)
            added += 1
        else:
            if self._allocate_request(index + 1):
                return True
        for _ in range(added):
            self._pop()
        return False

    def _pick(self, spec: _Spec, index: int, devices: list[Device], start: int,
              remaining: int) -> bool:
        """Choose ``remaining`` more devices from ``devices[start:]``, in order."""
        if remaining == 0:
            return self._allocate_request(index + 1)
        for position in range(start, len(devices) - remaining + 1):
            self.steps += 1
            if self.steps > MAX_SEARCH_STEPS:
                raise _SearchLimitReached()
            device = devices[position]
            if not self._usable(spec, device):
                continue
            self._push(spec, device)
            if self._pick(spec, index, devices, position + 1, remaining - 1):
                return True
            self._pop()
        return False

    def _usable(self, spec: _Spec, device: Device) -> bool:
        if device.key in self.used:
            return False
        if not spec.admin_access and device.key in self.in_use:
            return False
        return all(self._constraint_allows(constraint, spec, device)
                   for constraint in self.constraints if constraint.applies(spec))

    def _constraint_allows(self, constraint: _Constraint, spec: _Spec, device: Device) -> bool:
        value = device.attribute(constraint.attribute)
        if value is None:
            return False
        others = [d.attribute(constraint.attribute) for s, d in self.chosen
                  if constraint.applies(s)]
        if constraint.kind == "matchAttribute":
            return not others or others[0] == value
        return value not in others

    def _push(self, spec: _Spec, device: Device) -> None:
        self.chosen.append((spec, device))
        self.used.add(device.key)

    def _pop(self) -> None:
        _, device = self.chosen.pop()
        self.used.discard(device.key)


def _allocate_on_nodes(reference: str, requests: list[_Request],
                       constraints: list[_Constraint], matched: dict[str, list[Device]],
                       nodes: list[Node], in_use: Mapping[tuple[str, str, str], list[str]],
                       inventory: Inventory) -> Outcome:
    failures: list[tuple[Node, str, bool]] = []
    for node in nodes:
        search = _NodeSearch(node, requests, constraints, matched, in_use, inventory)
        try:
            chosen = search.run()
        except _SearchLimitReached:
            failures.append((node, f"the search stopped after {MAX_SEARCH_STEPS} steps without "
                             "finding devices that meet the constraints; the claim may still "
                             "fit here", True))
            continue
        if chosen is not None:
            return _allocation(reference, node, chosen)
        problem, has_candidates = _explain_node(search)
        failures.append((node, problem, has_candidates))
    raise _Rejected(_summarize_failures(failures))


def _allocation(reference: str, node: Node, chosen: list[tuple[_Spec, Device]]) -> Allocation:
    results = tuple(DeviceResult(spec.name, device.driver, device.pool, device.name,
                                 spec.admin_access) for spec, device in chosen)
    return Allocation(reference, node.name, results, _node_selector([d for _, d in chosen]))


def _node_selector(devices: list[Device]) -> dict[str, Any] | None:
    """Write the allocation's NodeSelector the way the scheduler does.

    A node-local device pins the claim to its node. Otherwise the single
    terms of the devices' NodeSelectors merge into one term, and devices
    available on all nodes add nothing.
    """
    for device in devices:
        if device.node:
            return {"nodeSelectorTerms": [{"matchFields": [
                {"key": "metadata.name", "operator": "In", "values": [device.node]}]}]}
    merged: dict[str, list[Any]] = {"matchFields": [], "matchExpressions": []}
    for device in devices:
        terms = (device.node_selector or {}).get("nodeSelectorTerms") or []
        if not terms:
            continue
        for field_name in merged:
            for requirement in terms[0].get(field_name) or []:
                if requirement not in merged[field_name]:
                    merged[field_name].append(requirement)
    term = {name: values for name, values in merged.items() if values}
    return {"nodeSelectorTerms": [term]} if term else None


# Explaining a failure.

def _explain_node(search: _NodeSearch) -> tuple[str, bool]:
    """Say why a node cannot serve the claim, and whether any request had devices there."""
    problems = []
    has_candidates = False
    for request in search.requests:
        alternatives = []
        for spec in request.alternatives:
            if search.candidates[spec.name]:
                has_candidates = True
            problem = _spec_problem(search, spec)
            if problem is None:
                break
            alternatives.append(problem)
        else:
            problems.extend(alternatives)
    if problems:
        return "; ".join(problems), has_candidates
    if search.limit_blocked:
        return (f"together the requests need more than {MAX_RESULTS} devices, the limit of "
                "results per claim", True)
    if search.constraints:
        hints = [_constraint_hint(search, constraint) for constraint in search.constraints]
        return ("each request has free devices, but no combination of them meets the "
                "constraints: " + "; ".join(hints), True)
    return ("each request has free devices alone, but the requests together need more distinct "
            "free devices than match them", True)


def _spec_problem(search: _NodeSearch, spec: _Spec) -> str | None:
    """Say why one request cannot be met on the node even alone, or return None."""
    candidates = search.candidates[spec.name]
    free = search.free(spec)
    busy = [d for d in candidates if d not in free]
    if not candidates:
        if spec.selectors:
            return (f"{spec.describe()}: no device on this node matches both DeviceClass "
                    f"{spec.device_class} and the request's selectors")
        return f"{spec.describe()}: no device of class {spec.device_class} on this node"
    if spec.all_devices:
        if search.blocking_pools:
            return (f"{spec.describe()} asks for all devices, but "
                    f"{'; '.join(p.problem for p in search.blocking_pools)}")
        if busy:
            return (f"{spec.describe()} asks for all {len(candidates)} matching device(s), but "
                    f"{_in_use_text(busy, search.in_use)}")
        if len(candidates) > MAX_RESULTS:
            return (f"{spec.describe()} asks for all devices, and the {len(candidates)} matching "
                    f"devices exceed the limit of {MAX_RESULTS} results per claim")
        return None
    if len(free) < spec.count:
        text = (f"{spec.describe()} needs {spec.count} device(s), {len(free)} of the "
                f"{len(candidates)} matching device(s) are free")
        if busy:
            text += f"; {_in_use_text(busy, search.in_use)}"
        return text
    return None


def _in_use_text(devices: list[Device], in_use: Mapping[tuple[str, str, str], list[str]]) -> str:
    parts = [f"{d.name} is allocated to claim {', '.join(in_use[d.key])}" for d in devices]
    return _short_list(parts, 8)


def _constraint_hint(search: _NodeSearch, constraint: _Constraint) -> str:
    """Show which values of the constraint's attribute the free devices of each request offer."""
    offers = []
    for request in search.requests:
        for spec in request.alternatives:
            if not constraint.applies(spec):
                continue
            values: dict[str, int] = defaultdict(int)
            for device in search.free(spec):
                value = device.attribute(constraint.attribute)
                values["no such attribute" if value is None else str(value[1])] += 1
            listed = ", ".join(f"{value} ({count})" for value, count in sorted(values.items()))
            offers.append(f"{spec.describe()} offers {listed or 'no free device'}")
    return f"{constraint.describe()}: {'; '.join(offers)}"


def _summarize_failures(failures: list[tuple[Node, str, bool]]) -> str:
    if not failures:
        return "no node to allocate on: no nodes were given and no ResourceSlice names a node"
    grouped: dict[str, list[str]] = defaultdict(list)
    informative: dict[str, bool] = {}
    for node, problem, has_candidates in failures:
        grouped[problem].append(node.name)
        informative[problem] = has_candidates
    ordered = sorted(grouped, key=lambda problem: not informative[problem])
    lines = [f"no node can satisfy the claim: {len(failures)} node(s) checked"]
    for problem in ordered[:MAX_NODES_IN_REASON]:
        lines.append(f"  - node {_short_list(grouped[problem], 3)}: {problem}")
    if len(ordered) > MAX_NODES_IN_REASON:
        rest = sum(len(grouped[problem]) for problem in ordered[MAX_NODES_IN_REASON:])
        lines.append(f"  - and {rest} more node(s) with other problems")
    return "\n".join(lines)


def _short_list(items: Sequence[str], limit: int = 5) -> str:
    if len(items) <= limit:
        return ", ".join(items)
    return f"{', '.join(items[:limit])} and {len(items) - limit} more"

"""The oracle: checks an allocated claim against the cluster's devices and claims.

Each violation has a name, so a report names the rule that broke. DeviceClass
and request selectors are evaluated with the allocator's CEL evaluator.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from allocator.cel import DeviceInput, SelectorError, compile_selector


@dataclass(frozen=True)
class Violation:
    rule: str
    message: str

    def __str__(self) -> str:
        return f"{self.rule}: {self.message}"


def _devices_by_key(slices: list[dict[str, Any]]) -> dict[tuple[str, str, str], dict[str, Any]]:
    """Index the newest generation of each pool by (driver, pool, device)."""
    newest: dict[tuple[str, str], int] = {}
    for item in slices:
        spec = item["spec"]
        key = (spec["driver"], spec["pool"]["name"])
        newest[key] = max(newest.get(key, 0), spec["pool"].get("generation", 0))
    index = {}
    for item in slices:
        spec = item["spec"]
        if spec["pool"].get("generation", 0) != newest[(spec["driver"], spec["pool"]["name"])]:
            continue
        for device in spec.get("devices") or []:
            index[(spec["driver"], spec["pool"]["name"], device["name"])] = {
                "node": spec.get("nodeName"), "device": device, "driver": spec["driver"]}
    return index


def _request_specs(claim: dict[str, Any]) -> dict[str, dict[str, Any]]:
    requests = {}
    for request in claim["spec"]["devices"].get("requests") or []:
        requests[request["name"]] = request.get("exactly") or request
    return requests


def _result_spec(claim: dict[str, Any], request_name: str) -> dict[str, Any] | None:
    """Return the request fields a result names: a request, or "request/subrequest"."""
    parent, _, sub = request_name.partition("/")
    request = _request_specs(claim).get(parent)
    if request is None or not sub:
        return request
    for candidate in request.get("firstAvailable") or []:
        if candidate.get("name") == sub:
            return candidate
    return None


def check_claim(claim: dict[str, Any], slices: list[dict[str, Any]],
                classes: dict[str, dict[str, Any]],
                other_claims: list[dict[str, Any]]) -> list[Violation]:
    """Return every rule the claim's allocation breaks (an empty list when sound)."""
    meta = claim["metadata"]
    ref = f"{meta.get('namespace')}/{meta['name']}"
    allocation = (claim.get("status") or {}).get("allocation")
    if not allocation:
        return [Violation("not allocated", f"claim {ref} has no allocation")]
    results = allocation.get("devices", {}).get("results") or []
    devices = _devices_by_key(slices)
    violations: list[Violation] = []
    nodes = set()
    for result in results:
        key = (result["driver"], result["pool"], result["device"])
        if key not in devices:
            same_name = [k for k in devices if k[2] == result["device"]]
            rule = "wrong driver or pool" if same_name else "unknown device"
            violations.append(Violation(rule, f"claim {ref}: result {result['request']} names "
                                        f"{'/'.join(key)}, which no ResourceSlice publishes"))
            continue
        nodes.add(devices[key]["node"])
        request = _result_spec(claim, result["request"])
        device_class = classes.get((request or {}).get("deviceClassName", ""))
        expected_driver = _class_driver(device_class)
        if expected_driver and expected_driver != result["driver"]:
            violations.append(Violation("wrong driver or pool",
                                        f"claim {ref}: device {'/'.join(key)} is of driver "
                                        f"{result['driver']}, class wants {expected_driver}"))
    violations += _selector_violations(ref, claim, results, devices, classes)
    violations += _constraint_violations(ref, claim, results, devices)
    violations += _count_violations(ref, claim, results, devices, classes)
    violations += _sharing_violations(ref, claim, results, other_claims)
    violations += _node_selector_violations(ref, allocation, nodes)
    return violations


def _selector_expressions(request: dict[str, Any] | None,
                          classes: dict[str, dict[str, Any]]) -> list[tuple[str, str]]:
    """Return (owner, expression) for the class selectors, then the request's own."""
    if not request:
        return []
    class_name = request.get("deviceClassName", "")
    device_class = classes.get(class_name) or {}
    found = []
    for owner, selectors in ((f"DeviceClass {class_name}",
                              device_class.get("spec", {}).get("selectors")),
                             ("the request", request.get("selectors"))):
        for selector in selectors or []:
            expression = (selector.get("cel") or {}).get("expression")
            if expression:
                found.append((owner, expression))
    return found


def _selector_failure(expression: str, entry: dict[str, Any]) -> str | None:
    """Return why a device fails a selector, or None when it matches."""
    try:
        if compile_selector(expression).matches(DeviceInput.from_api(entry["driver"],
                                                                      entry["device"])):
            return None
        return "returns false"
    except SelectorError as error:
        return f"fails: {error.detail}"


def _selector_violations(ref: str, claim: dict[str, Any], results: list[dict[str, Any]],
                         devices: dict[tuple[str, str, str], dict[str, Any]],
                         classes: dict[str, dict[str, Any]]) -> list[Violation]:
    violations = []
    for result in results:
        key = (result["driver"], result["pool"], result["device"])
        if key not in devices:
            continue
        request = _result_spec(claim, result["request"])
        expected_driver = _class_driver(classes.get((request or {}).get("deviceClassName", "")))
        if expected_driver and expected_driver != result["driver"]:
            continue  # reported as "wrong driver or pool", and its selectors cannot fit either
        for owner, expression in _selector_expressions(request, classes):
            failure = _selector_failure(expression, devices[key])
            if failure:
                violations.append(Violation(
                    "selector not matched",
                    f"claim {ref}: device {'/'.join(key)} (result {result['request']}) does not "
                    f"match the selector of {owner}: {expression!r} {failure}"))
    return violations


def _attribute(entry: dict[str, Any], qualified_name: str) -> tuple[str, Any] | None:
    """Look up a fully qualified attribute as constraints do, or None when the device lacks it."""
    device = entry["device"]
    attributes = (device.get("basic") or device).get("attributes") or {}
    attribute = attributes.get(qualified_name)
    domain, _, short = qualified_name.partition("/")
    if attribute is None and domain == entry["driver"]:
        attribute = attributes.get(short)
    for kind in ("string", "int", "bool", "version"):
        if isinstance(attribute, dict) and kind in attribute:
            return (kind, attribute[kind])
    return None


def _constraint_violations(ref: str, claim: dict[str, Any], results: list[dict[str, Any]],
                           devices: dict[tuple[str, str, str], dict[str, Any]]
                           ) -> list[Violation]:
    violations = []
    for constraint in claim["spec"]["devices"].get("constraints") or []:
        kind = "matchAttribute" if constraint.get("matchAttribute") else "distinctAttribute"
        name = constraint.get(kind)
        if not name:
            continue
        listed = set(constraint.get("requests") or [])
        values: dict[str, tuple[str, Any] | None] = {}
        for result in results:
            key = (result["driver"], result["pool"], result["device"])
            parent = result["request"].split("/")[0]
            if key in devices and (not listed or parent in listed or result["request"] in listed):
                values["/".join(key)] = _attribute(devices[key], name)
        missing = sorted(device for device, value in values.items() if value is None)
        present = {device: value for device, value in values.items() if value is not None}
        distinct = {value for value in present.values()}
        if missing:
            problem = f"{', '.join(missing)} lack(s) the attribute"
        elif kind == "matchAttribute" and len(distinct) > 1:
            problem = "values differ: " + ", ".join(f"{device}={value[1]}"
                                                    for device, value in sorted(present.items()))
        elif kind == "distinctAttribute" and len(distinct) < len(present):
            problem = "values repeat: " + ", ".join(f"{device}={value[1]}"
                                                    for device, value in sorted(present.items()))
        else:
            continue
        violations.append(Violation("constraint broken",
                                    f"claim {ref}: {kind} {name}: {problem}"))
    return violations


def _class_driver(device_class: dict[str, Any] | None) -> str:
    """Read the driver a class pins with a ``device.driver == "x"`` selector."""
    if not device_class:
        return ""
    for selector in device_class.get("spec", {}).get("selectors") or []:
        expression = selector.get("cel", {}).get("expression", "")
        marker = 'device.driver == "'
        if marker in expression:
            return expression.split(marker, 1)[1].split('"', 1)[0]
    return ""


def _count_violations(ref: str, claim: dict[str, Any], results: list[dict[str, Any]],
                      devices: dict[tuple[str, str, str], dict[str, Any]],
                      classes: dict[str, dict[str, Any]]) -> list[Violation]:
    violations = []
    for name, request in _request_specs(claim).items():
        got = [r for r in results if r["request"].split("/")[0] == name]
        if request.get("firstAvailable"):
            chosen = sorted({r["request"] for r in got})
            if len(chosen) > 1:
                violations.append(Violation("wrong count", f"claim {ref}: request {name} got "
                                            f"devices for several subrequests: "
                                            f"{', '.join(chosen)}"))
                continue
            request = (_result_spec(claim, chosen[0]) if chosen else None) or {}
        mode = request.get("allocationMode", "ExactCount")
        if mode == "ExactCount":
            wanted = request.get("count", 1)
            if len(got) != wanted:
                violations.append(Violation("wrong count", f"claim {ref}: request {name} wants "
                                            f"{wanted} device(s), got {len(got)}"))
        elif mode == "All":
            if not got:
                violations.append(Violation("wrong count", f"claim {ref}: request {name} "
                                            "(All) got no device"))
                continue
            pool = {(r["driver"], r["pool"]) for r in got}
            selectors = _selector_expressions(request, classes)
            everything = {k for k in devices if (k[0], k[1]) in pool and not any(
                _selector_failure(expression, devices[k]) for _, expression in selectors)}
            missing = everything - {(r["driver"], r["pool"], r["device"]) for r in got}
            if missing:
                violations.append(Violation(
                    "All not covering every matching device",
                    f"claim {ref}: request {name} (All) lacks "
                    f"{', '.join(sorted(k[2] for k in missing))} of the same pool"))
    return violations


def _sharing_violations(ref: str, claim: dict[str, Any], results: list[dict[str, Any]],
                        other_claims: list[dict[str, Any]]) -> list[Violation]:
    mine = {(r["driver"], r["pool"], r["device"]) for r in results if not r.get("adminAccess")}
    violations = []
    for other in other_claims:
        if other["metadata"].get("uid") == claim["metadata"].get("uid"):
            continue
        other_results = (((other.get("status") or {}).get("allocation") or {}).get(
            "devices") or {}).get("results") or []
        shared = mine & {(r["driver"], r["pool"], r["device"]) for r in other_results
                         if not r.get("adminAccess")}
        for key in sorted(shared):
            violations.append(Violation(
                "device held by two claims",
                f"device {'/'.join(key)} is allocated to claim {ref} and to claim "
                f"{other['metadata'].get('namespace')}/{other['metadata']['name']}"))
    return violations


def _node_selector_violations(ref: str, allocation: dict[str, Any],
                              nodes: set[str | None]) -> list[Violation]:
    selector = allocation.get("nodeSelector")
    local_nodes = {n for n in nodes if n}
    if not local_nodes:
        return []
    if selector is None:
        return [Violation("nodeSelector not matching the device's node",
                          f"claim {ref}: node-local devices but no nodeSelector")]
    violations = []
    for node in local_nodes:
        if not any(_term_matches_name(term, node)
                   for term in selector.get("nodeSelectorTerms") or []):
            violations.append(Violation("nodeSelector not matching the device's node",
                                        f"claim {ref}: nodeSelector does not select node "
                                        f"{node}, where the devices are"))
    return violations


def _term_matches_name(term: dict[str, Any], node: str) -> bool:
    fields = term.get("matchFields") or []
    if not fields or term.get("matchExpressions"):
        return False
    return all(f.get("key") == "metadata.name" and f.get("operator") == "In"
               and node in (f.get("values") or []) for f in fields)

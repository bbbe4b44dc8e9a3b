"""What-if allocation: read cluster objects from YAML files and explain an outcome.

``load_yaml_objects`` reads ResourceSlices, DeviceClasses, ResourceClaims,
ResourceClaimTemplates and Nodes, from files of one or more documents or
from ``kind: List`` documents as ``kubectl get -o yaml`` writes them.
``explain`` and ``to_json`` present the Outcome of ``allocate``.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Iterable, Iterator

import yaml

from allocator.allocate import Allocation, Outcome, Unallocatable

DRA_GROUP = "resource.k8s.io"
DRA_KINDS = ("ResourceSlice", "DeviceClass", "ResourceClaim", "ResourceClaimTemplate")
SUPPORTED_KINDS = (*DRA_KINDS, "Node", "List")


class WhatIfError(ValueError):
    """Input that cannot be read, naming the file and the document."""


def load_yaml_objects(paths: Iterable[str | Path]
                      ) -> tuple[list[dict[str, Any]], dict[str, dict[str, Any]],
                                 list[dict[str, Any]], list[dict[str, Any]]]:
    """Read (slices, classes by name, claims, nodes) from YAML files.

    A ResourceClaimTemplate becomes a claim named after the template whose
    spec is the template's ``spec.spec``. Raise WhatIfError for unreadable
    files, invalid YAML, unsupported kinds, missing fields and DeviceClass
    names that repeat.
    """
    slices: list[dict[str, Any]] = []
    classes: dict[str, dict[str, Any]] = {}
    claims: list[dict[str, Any]] = []
    nodes: list[dict[str, Any]] = []
    for where, obj in _documents(paths):
        kind = obj["kind"]
        if kind == "ResourceSlice":
            _require(obj, where, "spec", "driver")
            _require(obj, where, "spec", "pool", "name")
            slices.append(obj)
        elif kind == "DeviceClass":
            name = obj["metadata"]["name"]
            if name in classes:
                raise WhatIfError(f"{where}: DeviceClass {name} is defined twice")
            classes[name] = obj
        elif kind == "ResourceClaim":
            _require(obj, where, "spec", "devices")
            claims.append(obj)
        elif kind == "ResourceClaimTemplate":
            _require(obj, where, "spec", "spec", "devices")
            claims.append({"apiVersion": obj["apiVersion"], "kind": "ResourceClaim",
                           "metadata": dict(obj["metadata"]), "spec": obj["spec"]["spec"]})
        else:
            nodes.append(obj)
    return slices, classes, claims, nodes


def _documents(paths: Iterable[str | Path]) -> Iterator[tuple[str, dict[str, Any]]]:
    """Yield (description of the document, object) for every object in the files."""
    for raw_path in paths:
        path = Path(raw_path)
        try:
            text = path.read_text()
        except OSError as error:
            raise WhatIfError(f"cannot read {path}: {error.strerror or error}") from None
        try:
            documents = list(yaml.safe_load_all(text))
        except yaml.YAMLError as error:
            mark = getattr(error, "problem_mark", None)
            line = f" at line {mark.line + 1}" if mark is not None else ""
            problem = getattr(error, "problem", None) or str(error)
            raise WhatIfError(f"{path}: invalid YAML{line}: {problem}") from None
        for index, document in enumerate(documents, start=1):
            if document is None:
                continue
            where = f"{path}, document {index}"
            yield from _objects(where, document)


def _objects(where: str, document: Any) -> Iterator[tuple[str, dict[str, Any]]]:
    if not isinstance(document, dict):
        raise WhatIfError(f"{where}: expected a Kubernetes object (a map), got "
                          f"{type(document).__name__}")
    kind = document.get("kind")
    if kind not in SUPPORTED_KINDS:
        raise WhatIfError(f"{where}: unsupported kind {kind!r}; expected one of "
                          f"{', '.join(SUPPORTED_KINDS)}")
    if kind == "List":
        items = document.get("items")
        if not isinstance(items, list):
            raise WhatIfError(f"{where}: a List needs an items list")
        for number, item in enumerate(items, start=1):
            yield from _objects(f"{where}, item {number}", item)
        return
    api_version = str(document.get("apiVersion") or "")
    if kind in DRA_KINDS and not api_version.startswith(f"{DRA_GROUP}/"):
        raise WhatIfError(f"{where}: {kind} needs apiVersion {DRA_GROUP}/v1 (or v1beta1, "
                          f"v1beta2), got {api_version or 'none'}")
    if kind == "Node" and api_version != "v1":
        raise WhatIfError(f"{where}: Node needs apiVersion v1, got {api_version or 'none'}")
    metadata = document.get("metadata")
    if not isinstance(metadata, dict) or not metadata.get("name"):
        raise WhatIfError(f"{where}: {kind} has no metadata.name")
    yield f"{where} ({kind} {metadata['name']})", document


def _require(obj: dict[str, Any], where: str, *keys: str) -> None:
    value: Any = obj
    for depth, key in enumerate(keys):
        if not isinstance(value, dict) or value.get(key) in (None, ""):
            raise WhatIfError(f"{where}: {'.'.join(keys[:depth + 1])} is missing")
        value = value[key]


def explain(outcome: Outcome) -> str:
    """Describe an outcome for a person: the devices and their node, or why not."""
    if isinstance(outcome, Unallocatable):
        return f"claim {outcome.claim} cannot be allocated:\n{_indent(outcome.reason)}"
    lines = [f"claim {outcome.claim} can be allocated on node {outcome.node}:"]
    for result in outcome.results:
        admin = " (admin access)" if result.admin_access else ""
        lines.append(f"  - request {result.request}: device {result.device} of pool "
                     f"{result.pool}, driver {result.driver}{admin}")
    if not outcome.results:
        lines.append("  - the claim requests no devices")
    if outcome.node_selector is None:
        lines.append("  the devices are available on every node, so the allocation has no "
                     "nodeSelector")
    else:
        lines.append(f"  nodeSelector: {_describe_selector(outcome.node_selector)}")
    return "\n".join(lines)


def _indent(text: str) -> str:
    return "\n".join(f"  {line}" for line in text.splitlines())


def _describe_selector(selector: dict[str, Any]) -> str:
    terms = []
    for term in selector.get("nodeSelectorTerms") or []:
        requirements = [f"{r['key']} {r['operator']} {r.get('values') or []}"
                        for name in ("matchFields", "matchExpressions")
                        for r in term.get(name) or []]
        terms.append(" and ".join(requirements))
    return " or ".join(terms)


def to_json(outcome: Outcome) -> dict[str, Any]:
    """Return the outcome as JSON-ready data, with ``status.allocation`` for an allocation."""
    if isinstance(outcome, Allocation):
        return {"claim": outcome.claim, "allocated": True, "node": outcome.node,
                "allocation": outcome.to_api()}
    return {"claim": outcome.claim, "allocated": False, "reason": outcome.reason}

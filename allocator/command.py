"""``draconf allocate``: what-if allocation from files or a live cluster, and a watch mode.

File mode reads slices, classes, claims (or templates) and nodes from YAML and
says, per claim, which devices on which node it would get, or why not. With
``--kubeconfig`` the inventory comes from the cluster and only the claims in
the files are tried (nothing is written to the cluster). ``--watch`` checks
every allocation on the cluster with the oracle as it appears; it only reads.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path
from typing import Any, Callable

from allocator.allocate import allocate
from allocator.oracle import check_claim
from allocator.whatif import WhatIfError, explain, load_yaml_objects, to_json
from fixtures.kube import CORE, Kube, KubeconfigError, KubeError, dra

WATCH_INTERVAL_SECONDS = 5.0


def add_parser(commands: Any) -> None:
    parser = commands.add_parser(
        "allocate", help="what-if allocation, or check live allocations with --watch",
        description=__doc__.replace("``", ""), formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("files", nargs="*", type=Path,
                        help="YAML files with ResourceClaims or ResourceClaimTemplates (and, "
                             "without --kubeconfig, the ResourceSlices, DeviceClasses and Nodes)")
    parser.add_argument("--kubeconfig", type=Path,
                        help="read the inventory from this cluster instead of the files")
    parser.add_argument("--context", help="kubeconfig context to use")
    parser.add_argument("--namespace", default="default",
                        help="namespace the claims would be created in (default: default); its "
                             "labels decide adminAccess")
    parser.add_argument("--output", choices=("text", "json"), default="text",
                        help="text for people (default), json for scripts")
    parser.add_argument("--watch", action="store_true",
                        help="check every allocation on the cluster with the oracle as it "
                             "appears (needs --kubeconfig)")
    parser.add_argument("--interval", type=float, default=WATCH_INTERVAL_SECONDS,
                        help=f"seconds between checks in --watch (default "
                             f"{WATCH_INTERVAL_SECONDS:g})")
    parser.add_argument("--duration", type=float, default=0,
                        help="stop watching after this many seconds (default: until Ctrl-C)")


class CommandError(Exception):
    """Invalid input or an unreachable cluster. The message names the next step."""


def run(args: argparse.Namespace, out: Callable[[str], None] = print) -> int:
    """Run the command; return 0, 1 when a claim cannot be allocated or a violation is found."""
    try:
        if args.watch:
            return watch(args, out)
        return what_if(args, out)
    except (WhatIfError, KubeconfigError, CommandError) as error:
        print(f"draconf allocate: error: {error}", file=sys.stderr)
        return 2
    except KubeError as error:
        print(f"draconf allocate: error: the cluster request failed: {error}", file=sys.stderr)
        return 2


def _cluster(args: argparse.Namespace) -> Kube:
    return Kube(args.kubeconfig, args.context)


def what_if(args: argparse.Namespace, out: Callable[[str], None]) -> int:
    if not args.files:
        raise CommandError("give at least one YAML file with a claim or claim template")
    slices, classes, claims, nodes = load_yaml_objects(args.files)
    namespace_labels: dict[str, str] = {}
    others: list[dict[str, Any]] = []
    if args.kubeconfig:
        kube = _cluster(args)
        try:
            slices = kube.list(dra("ResourceSlice", kube.newest_resource_version()))
            classes = {c["metadata"]["name"]: c for c in
                       kube.list(dra("DeviceClass", kube.newest_resource_version()))}
            nodes = kube.list(CORE["Node"])
            others = [c for c in kube.list(dra("ResourceClaim", kube.newest_resource_version()))
                      if (c.get("status") or {}).get("allocation")]
            namespace = kube.get_or_none(CORE["Namespace"], args.namespace)
            namespace_labels = ((namespace or {}).get("metadata") or {}).get("labels") or {}
        finally:
            kube.close()
    else:
        others = [c for c in claims if (c.get("status") or {}).get("allocation")]
    pending = [c for c in claims if not (c.get("status") or {}).get("allocation")]
    if not pending:
        raise CommandError("the files contain no unallocated ResourceClaim or "
                           "ResourceClaimTemplate to try")
    outcomes = []
    for claim in pending:
        claim = {**claim, "metadata": {**claim.get("metadata", {}),
                                       "namespace": claim.get("metadata", {}).get(
                                           "namespace", args.namespace)}}
        outcomes.append(allocate(claim, slices, classes, others, nodes or None,
                                 namespace_labels))
    if args.output == "json":
        out(json.dumps([to_json(o) for o in outcomes], indent=2))
    else:
        out("\n\n".join(explain(o) for o in outcomes))
    return 0 if all(o.allocated for o in outcomes) else 1


def watch(args: argparse.Namespace, out: Callable[[str], None]) -> int:
    if not args.kubeconfig:
        raise CommandError("--watch needs --kubeconfig: it checks a live cluster")
    if args.interval <= 0:
        raise CommandError("--interval must be a positive number of seconds")
    kube = _cluster(args)
    checked: set[tuple[str, str]] = set()
    violations_found = 0
    deadline = time.monotonic() + args.duration if args.duration > 0 else None
    version = kube.newest_resource_version()
    out(f"watching allocations on {kube.server} (every {args.interval:g} s"
        + (f", for {args.duration:g} s)" if deadline else "; Ctrl-C to stop)"))
    try:
        while True:
            claims = kube.list(dra("ResourceClaim", version))
            slices = kube.list(dra("ResourceSlice", version))
            classes = {c["metadata"]["name"]: c for c in kube.list(dra("DeviceClass", version))}
            for claim in claims:
                if not (claim.get("status") or {}).get("allocation"):
                    continue
                key = (claim["metadata"]["uid"], claim["metadata"]["resourceVersion"])
                if key in checked:
                    continue
                checked.add(key)
                found = check_claim(claim, slices, classes, claims)
                name = f"{claim['metadata']['namespace']}/{claim['metadata']['name']}"
                if found:
                    violations_found += len(found)
                    for violation in found:
                        out(f"VIOLATION {name}: {violation}")
                else:
                    out(f"ok {name}")
            if deadline is not None and time.monotonic() >= deadline:
                break
            time.sleep(args.interval)
    except KeyboardInterrupt:
        pass
    finally:
        kube.close()
    out(f"checked {len(checked)} allocation(s); {violations_found} violation(s)")
    return 1 if violations_found else 0

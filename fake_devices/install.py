"""Cluster-wide objects of the fake driver: DeviceClasses and the driver's RBAC."""

from __future__ import annotations

import json
import logging
from pathlib import Path
from typing import Any, Callable

import yaml

from fake_devices.profiles import get_profile
from fixtures.kube import CORE, RUN_ID_LABEL, Kube, KubeError, delete_owned, dra, is_owned, \
    label_objects, object_ref, resource_for
from fixtures.waits import wait_for

log = logging.getLogger("draconf.install")

DEPLOY_DIR = Path(__file__).resolve().parent / "deploy"
DRIVER_GROUP = "draconf:fake-dra-drivers"
DEPLOY_FILES = ("namespace.yaml", "rbac.yaml", "deviceclasses.yaml", "daemonset.yaml")


def deploy_objects(name: str) -> list[dict[str, Any]]:
    return [d for d in yaml.safe_load_all((DEPLOY_DIR / name).read_text()) if d]


def driver_cluster_role() -> dict[str, Any]:
    """Return the ClusterRole of the deploy files: the only rights the driver gets."""
    return next(obj for obj in deploy_objects("rbac.yaml") if obj["kind"] == "ClusterRole")


def device_classes(version: str) -> list[dict[str, Any]]:
    classes = deploy_objects("deviceclasses.yaml")
    for device_class in classes:
        device_class["apiVersion"] = f"resource.k8s.io/{version}"
    return classes


def install_cluster_objects(kube: Kube, run_id: str) -> None:
    """Create the DeviceClasses and the driver's ClusterRole with a binding for local drivers.

    A DeviceClass of the same name that draconf did not create is left alone
    (another driver owns it) and reported.
    """
    version = kube.newest_resource_version()
    for device_class in label_objects(device_classes(version), run_id):
        name = device_class["metadata"]["name"]
        existing = kube.get_or_none(dra("DeviceClass", version), name)
        if existing is not None:
            if not is_owned(existing):
                log.warning("DeviceClass %s exists and was not created by draconf; using it as "
                            "it is", name)
            continue
        kube.create(device_class)
    # Local drivers authenticate with client certificates in DRIVER_GROUP instead of
    # the deploy files' ServiceAccount; the ClusterRole is the deploy files' own.
    role = driver_cluster_role()
    binding = {"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "ClusterRoleBinding",
               "metadata": {"name": f"{role['metadata']['name']}-local"},
               "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole",
                           "name": role["metadata"]["name"]},
               "subjects": [{"apiGroup": "rbac.authorization.k8s.io", "kind": "Group",
                             "name": DRIVER_GROUP}]}
    for obj in label_objects([role, binding], run_id):
        try:
            kube.create(obj)
        except KubeError as error:
            if error.status != 409:
                raise
            log.info("%s already exists", object_ref(obj))


def install_fake_driver(kube: Kube, run_id: str, pools: dict[str, dict[str, str] | None],
                        progress: Callable[[str], None], timeout: float) -> None:
    """Apply the deploy files to a cluster with containers, labelled for this run.

    ``pools`` maps a profile to the nodeSelector of its nodes (None: every node);
    each profile gets its own DaemonSet. The image must be available to the
    nodes (``kind load`` on kind). Wait until each selected node publishes a pool.
    """
    version = kube.newest_resource_version()
    objects = []
    for name in DEPLOY_FILES:
        for obj in deploy_objects(name):
            if obj["apiVersion"].startswith("resource.k8s.io/"):
                obj["apiVersion"] = f"resource.k8s.io/{version}"
            if obj["kind"] == "DaemonSet":
                objects += [_daemonset_for(obj, profile, selector, run_id)
                            for profile, selector in pools.items()]
            else:
                objects.append(obj)
    for obj in label_objects(objects, run_id):
        try:
            kube.create(obj)
        except KubeError as error:
            if error.status != 409:
                raise
            progress(f"{object_ref(obj)} already exists; leaving it as it is")
    progress(f"installed the fake driver ({', '.join(pools)}); waiting for its pools "
             f"(up to {timeout:g} s)")

    def published() -> tuple[bool, Any]:
        drivers = {get_profile(profile).driver for profile in pools}
        with_pool = {s["spec"].get("nodeName") for s in kube.list(dra("ResourceSlice", version))
                     if s["spec"].get("driver") in drivers and s["spec"].get("devices")}
        missing = []
        for selector in pools.values():
            query = ",".join(f"{k}={v}" for k, v in (selector or {}).items()) or None
            for node in kube.list(CORE["Node"], label_selector=query):
                if node["metadata"]["name"] not in with_pool and not any(
                        t.get("key") == "node-role.kubernetes.io/control-plane"
                        for t in node.get("spec", {}).get("taints") or []):
                    missing.append(node["metadata"]["name"])
        return not missing, {"nodes without a pool of the fake driver": missing}

    wait_for("the fake driver to publish a pool on every selected node", timeout, published, 1.0)


def _daemonset_for(template: dict[str, Any], profile: str, selector: dict[str, str] | None,
                   run_id: str) -> dict[str, Any]:
    daemonset = json.loads(json.dumps(template))
    daemonset["metadata"]["name"] = f"fake-dra-driver-{profile}"
    labels = {"app.kubernetes.io/name": "fake-dra-driver", "draconf.dev/profile": profile}
    daemonset["spec"]["selector"]["matchLabels"] = labels
    pod = daemonset["spec"]["template"]
    pod["metadata"]["labels"] = labels
    if selector:
        pod["spec"]["nodeSelector"] = selector
    container = pod["spec"]["containers"][0]
    for variable in container["env"]:
        if variable["name"] == "DRACONF_PROFILE":
            variable["value"] = profile
    container["env"].append({"name": "DRACONF_RUN_ID", "value": run_id})
    return daemonset


def uninstall_fake_driver(kube: Kube, run_id: str) -> None:
    """Delete what install_fake_driver created for this run, and nothing else."""
    version = kube.newest_resource_version()
    daemonsets = kube.list(CORE["DaemonSet"], "draconf-fake-driver",
                           label_selector=f"{RUN_ID_LABEL}={run_id}")
    for daemonset in daemonsets:
        delete_owned(kube, daemonset, run_id)
    for name in reversed(DEPLOY_FILES):
        for obj in reversed(deploy_objects(name)):
            if obj["kind"] == "DaemonSet":
                continue
            if obj["apiVersion"].startswith("resource.k8s.io/"):
                obj["apiVersion"] = f"resource.k8s.io/{version}"
            resource = resource_for(obj["apiVersion"], obj["kind"])
            current = kube.get_or_none(resource, obj["metadata"]["name"],
                                       obj["metadata"].get("namespace"))
            if current is not None and is_owned(current, run_id):
                delete_owned(kube, current, run_id)

"""Cluster-wide objects of the fake driver: DeviceClasses and the driver's RBAC."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any, Callable

import yaml

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


def install_fake_driver(kube: Kube, run_id: str, profile: str, progress: Callable[[str], None],
                        timeout: float) -> None:
    """Apply the deploy files to a cluster with containers, labelled for this run.

    The DaemonSet's image must be available to the nodes (``kind load`` on kind).
    Wait until every schedulable node publishes a pool of the driver.
    """
    version = kube.newest_resource_version()
    objects = []
    for name in DEPLOY_FILES:
        for obj in deploy_objects(name):
            if obj["apiVersion"].startswith("resource.k8s.io/"):
                obj["apiVersion"] = f"resource.k8s.io/{version}"
            if obj["kind"] == "DaemonSet":
                container = obj["spec"]["template"]["spec"]["containers"][0]
                for variable in container["env"]:
                    if variable["name"] == "DRACONF_PROFILE":
                        variable["value"] = profile
                container["env"].append({"name": "DRACONF_RUN_ID", "value": run_id})
            objects.append(obj)
    for obj in label_objects(objects, run_id):
        try:
            kube.create(obj)
        except KubeError as error:
            if error.status != 409:
                raise
            progress(f"{object_ref(obj)} already exists; leaving it as it is")
    progress(f"installed the fake driver (profile {profile}); waiting for its pools "
             f"(up to {timeout:g} s)")

    def pools() -> tuple[bool, Any]:
        nodes = [n["metadata"]["name"] for n in kube.list(CORE["Node"])
                 if not n.get("spec", {}).get("unschedulable")]
        published = {s["spec"].get("nodeName") for s in kube.list(dra("ResourceSlice", version))
                     if s["metadata"].get("labels", {}).get(RUN_ID_LABEL) == run_id}
        missing = [n for n in nodes if n not in published]
        return not missing, {"nodes without a pool of the fake driver": missing}

    wait_for("the fake driver to publish a pool on every node", timeout, pools, 1.0)


def uninstall_fake_driver(kube: Kube, run_id: str) -> None:
    """Delete what install_fake_driver created for this run, and nothing else."""
    version = kube.newest_resource_version()
    for name in reversed(DEPLOY_FILES):
        for obj in reversed(deploy_objects(name)):
            if obj["apiVersion"].startswith("resource.k8s.io/"):
                obj["apiVersion"] = f"resource.k8s.io/{version}"
            resource = resource_for(obj["apiVersion"], obj["kind"])
            current = kube.get_or_none(resource, obj["metadata"]["name"],
                                       obj["metadata"].get("namespace"))
            if current is not None and is_owned(current, run_id):
                delete_owned(kube, current, run_id)

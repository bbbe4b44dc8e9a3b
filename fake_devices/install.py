"""Cluster-wide objects of the fake driver: DeviceClasses and the driver's RBAC."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import yaml

from fixtures.kube import Kube, KubeError, dra, is_owned, label_objects, object_ref

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

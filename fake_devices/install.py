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
DRIVER_ROLE = "draconf:fake-dra-driver"

# Least privilege for the fake driver: publish slices, read claims and nodes.
DRIVER_RULES = [
    {"apiGroups": ["resource.k8s.io"], "resources": ["resourceslices"],
     "verbs": ["get", "list", "watch", "create", "update", "patch", "delete"]},
    {"apiGroups": ["resource.k8s.io"], "resources": ["resourceclaims"],
     "verbs": ["get", "list", "watch"]},
    {"apiGroups": [""], "resources": ["nodes"], "verbs": ["get", "list", "watch"]},
]


def device_classes(version: str) -> list[dict[str, Any]]:
    classes = list(yaml.safe_load_all((DEPLOY_DIR / "deviceclasses.yaml").read_text()))
    for device_class in classes:
        device_class["apiVersion"] = f"resource.k8s.io/{version}"
    return classes


def install_cluster_objects(kube: Kube, run_id: str) -> None:
    """Create the DeviceClasses and the driver's ClusterRole and binding.

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
    role = {"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "ClusterRole",
            "metadata": {"name": DRIVER_ROLE}, "rules": DRIVER_RULES}
    binding = {"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "ClusterRoleBinding",
               "metadata": {"name": DRIVER_ROLE},
               "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole",
                           "name": DRIVER_ROLE},
               "subjects": [{"apiGroup": "rbac.authorization.k8s.io", "kind": "Group",
                             "name": DRIVER_GROUP}]}
    for obj in label_objects([role, binding], run_id):
        try:
            kube.create(obj)
        except KubeError as error:
            if error.status != 409:
                raise
            log.info("%s already exists", object_ref(obj))

"""The fake driver's deploy files and rights, checked against a real API server."""

from __future__ import annotations

import pytest

from fake_devices.install import DEPLOY_FILES, deploy_objects, driver_cluster_role
from fixtures.kube import CORE, Kube, KubeError, label_objects, resource_for

pytestmark = [pytest.mark.e2e]


@pytest.fixture
def local_only(draconf_env):
    if draconf_env.local is None:
        pytest.skip("needs the local backend, where draconf runs the fake driver itself")
    return draconf_env


def test_deploy_files_pass_server_dry_run(local_only):
    """PACKAGING-1: every deploy file is accepted by the API server (server-side dry run)."""
    env = local_only
    [namespace] = deploy_objects("namespace.yaml")
    created_namespace = env.kube.get_or_none(CORE["Namespace"], namespace["metadata"]["name"])
    if created_namespace is None:
        env.kube.create(label_objects([namespace], env.run_id)[0])
    try:
        for name in DEPLOY_FILES[1:]:
            for obj in deploy_objects(name):
                if obj["apiVersion"].startswith("resource.k8s.io/"):
                    obj["apiVersion"] = f"resource.k8s.io/{env.kube.newest_resource_version()}"
                try:
                    env.kube.create(obj, dry_run=True)
                except KubeError as error:
                    # AlreadyExists is decided after validation: the object is valid, and
                    # draconf installed one of that name for this run.
                    assert error.status == 409, f"{name}: {obj['kind']} rejected: {error}"
    finally:
        if created_namespace is None:
            env.kube.delete(CORE["Namespace"], namespace["metadata"]["name"])


def test_installed_role_is_the_deploy_files_role(local_only):
    """PACKAGING-2: the local drivers run with exactly the ClusterRole of the deploy files."""
    role = driver_cluster_role()

    installed = local_only.kube.get(resource_for("rbac.authorization.k8s.io/v1", "ClusterRole"),
                                    role["metadata"]["name"])

    assert installed["rules"] == role["rules"]


ALLOWED = [("create", "resource.k8s.io", "resourceslices"),
           ("delete", "resource.k8s.io", "resourceslices"),
           ("get", "resource.k8s.io", "resourceclaims"),
           ("get", "", "nodes")]
DENIED = [("list", "", "pods"), ("get", "", "secrets"), ("create", "resource.k8s.io",
                                                           "resourceclaims"),
          ("update", "resource.k8s.io", "resourceclaims"), ("delete", "", "nodes"),
          ("create", "resource.k8s.io", "deviceclasses")]


@pytest.mark.parametrize(("verb", "group", "resource", "allowed"),
                         [(*a, True) for a in ALLOWED] + [(*d, False) for d in DENIED],
                         ids=[f"{v}-{r}" for v, _, r in ALLOWED + DENIED])
def test_driver_rights(local_only, verb, group, resource, allowed):
    """PACKAGING-3: the driver's identity may do what it needs and nothing more."""
    kubeconfig = next(local_only.local.state_dir.glob("driver-*.kubeconfig"))
    driver = Kube(kubeconfig)
    review = {"apiVersion": "authorization.k8s.io/v1", "kind": "SelfSubjectAccessReview",
              "spec": {"resourceAttributes": {"verb": verb, "group": group,
                                              "resource": resource}}}
    try:
        answer = driver.request("POST", "/apis/authorization.k8s.io/v1/selfsubjectaccessreviews",
                                body=review)
    finally:
        driver.close()

    assert answer["status"]["allowed"] is allowed, answer["status"]

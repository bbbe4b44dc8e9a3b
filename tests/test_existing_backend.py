"""The existing backend against a cluster made by draconf cluster up, with foreign objects.

Objects draconf did not create (a namespace, a claim, a slice, a DeviceClass)
are planted before the run; none of them may change.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from fixtures.existing import discover
from fixtures.kube import CORE, ForeignObjectError, Kube, delete_owned, dra

ROOT = Path(__file__).resolve().parent.parent

FOREIGN = [
    {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "foreign-team"}},
    {"apiVersion": "resource.k8s.io/v1", "kind": "DeviceClass",
     "metadata": {"name": "foreign.example.com"},
     "spec": {"selectors": [{"cel": {"expression": 'device.driver == "foreign.example.com"'}}]}},
    {"apiVersion": "resource.k8s.io/v1", "kind": "ResourceSlice",
     "metadata": {"name": "foreign-slice"},
     "spec": {"driver": "foreign.example.com", "allNodes": True,
              "pool": {"name": "foreign-pool", "generation": 1, "resourceSliceCount": 1},
              "devices": [{"name": "thing-0"}]}},
    {"apiVersion": "resource.k8s.io/v1", "kind": "ResourceClaim",
     "metadata": {"name": "foreign-claim", "namespace": "foreign-team"},
     "spec": {"devices": {"requests": [{"name": "thing", "exactly": {
         "deviceClassName": "foreign.example.com"}}]}}},
]


def test_discovery_finds_gke_pools(kept_cluster):
    _, info = kept_cluster
    kube = Kube(info["kubeconfig"])
    try:
        found = discover(kube)
    finally:
        kube.close()

    assert found.nodes == info["nodes"]
    assert found.resource_versions[0] == "v1"
    assert {"gpu.nvidia.com", "tpu.google.com"} <= set(found.device_classes)


def test_existing_backend_spares_foreign_objects(kept_cluster, tmp_path, draconf):
    env, info = kept_cluster
    kube = Kube(info["kubeconfig"])
    try:
        before = {}
        for obj in FOREIGN:
            created = kube.create(obj)
            before[(obj["kind"], obj["metadata"]["name"])] = created["metadata"]["resourceVersion"]

        run = draconf("run", "--cluster", "existing", "--kubeconfig", info["kubeconfig"],
                      "--results-dir", str(tmp_path / "results"), "--",
                      str(ROOT / "suites" / "gke_docs"), env=env)

        assert run.returncode == 0, run.stdout[-4000:] + run.stderr[-2000:]
        summary = re.search(r"draconf run: (\d+) passed, 0 failed, 0 errors, (\d+) skipped",
                            run.stdout)
        assert summary, run.stdout[-3000:]
        assert int(summary.group(1)) >= 5, summary.group(0)
        assert summary.group(2) == "0", summary.group(0)
        for obj in FOREIGN:
            resource_version = before[(obj["kind"], obj["metadata"]["name"])]
            current = kube.get(
                CORE["Namespace"] if obj["kind"] == "Namespace" else dra(obj["kind"]),
                obj["metadata"]["name"], obj["metadata"].get("namespace"))
            assert current["metadata"]["resourceVersion"] == resource_version, \
                f"{obj['kind']} {obj['metadata']['name']} was changed by the run"
        run_id = re.search(r"run id (\w+)", run.stdout).group(1)
        leftovers = kube.list(CORE["Namespace"], label_selector=f"draconf.dev/run-id={run_id}")
        assert [n for n in leftovers if not n["metadata"].get("deletionTimestamp")] == []
    finally:
        kube.close()


def test_guard_rejects_foreign_delete(kept_cluster):
    _, info = kept_cluster
    kube = Kube(info["kubeconfig"])
    try:
        foreign = kube.create({"apiVersion": "v1", "kind": "Namespace",
                               "metadata": {"name": "foreign-guarded"}})
        with pytest.raises(ForeignObjectError) as raised:
            delete_owned(kube, foreign, info["run_id"])
        assert "refusing to delete Namespace foreign-guarded" in str(raised.value)
        assert kube.get_or_none(CORE["Namespace"], "foreign-guarded") is not None
    finally:
        kube.close()

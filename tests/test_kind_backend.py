"""The kind backend's commands and config, checked against recording stand-ins for kind and docker."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from fixtures import kind_backend
from fixtures.existing import UnsupportedCluster

ROOT = Path(__file__).resolve().parent.parent

KIND = """#!/bin/sh
echo "kind $*" >> "$RECORD"
case "$1 $2" in
  "get clusters") cat "$KIND_CLUSTERS" 2>/dev/null ;;
  "create cluster")
    for arg in "$@"; do case "$arg" in --kubeconfig=*) echo "apiVersion: v1" > "${arg#--kubeconfig=}" ;; esac; done ;;
esac
exit 0
"""
DOCKER = """#!/bin/sh
echo "docker $*" >> "$RECORD"
if [ "$1" = info ] && [ -n "$DOCKER_ENGINE_DOWN" ]; then
  echo "Cannot connect to the Docker daemon" >&2; exit 1
fi
[ "$1" = info ] && echo 28.2.2
exit 0
"""


@pytest.fixture
def stand_ins(tmp_path, monkeypatch):
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    for name, text in (("kind", KIND), ("docker", DOCKER)):
        (bin_dir / name).write_text(text)
        (bin_dir / name).chmod(0o755)
    record = tmp_path / "record.txt"
    monkeypatch.setenv("PATH", f"{bin_dir}:/usr/bin:/bin")
    monkeypatch.setenv("RECORD", str(record))
    monkeypatch.setenv("KIND_CLUSTERS", str(tmp_path / "clusters.txt"))
    monkeypatch.chdir(tmp_path)
    return record


def commands(record: Path) -> list[str]:
    return record.read_text().splitlines()


POOLS = [("gke-t4-1", 1), ("gke-tpu-v6e-8", 1)]


def test_commands_in_order(stand_ins, tmp_path):
    cluster = kind_backend.prepare_cluster("draconf-test", POOLS, tmp_path / "work", lambda m: None)

    seen = commands(stand_ins)
    config = tmp_path / "work" / "kind-config.yaml"
    assert seen[0] == "docker info --format {{.ServerVersion}}"
    assert seen[1] == (f"docker build -f {ROOT}/fake_devices/Dockerfile -t "
                       f"{kind_backend.DRIVER_IMAGE} {ROOT}")
    assert seen[2] == "kind get clusters"
    assert seen[3] == (f"kind create cluster --name=draconf-test "
                       f"--kubeconfig={cluster.kubeconfig_path} "
                       f"--image={kind_backend.KIND_NODE_IMAGE} --config {config}")
    assert seen[4] == f"kind load docker-image --name=draconf-test {kind_backend.DRIVER_IMAGE}"
    assert len(seen) == 5


def test_config_enables_cdi_and_betas(stand_ins, tmp_path):
    kind_backend.prepare_cluster("draconf-test", POOLS, tmp_path / "work", lambda m: None)
    config = yaml.safe_load((tmp_path / "work" / "kind-config.yaml").read_text())

    assert config["runtimeConfig"] == {"resource.k8s.io/v1beta1": "true",
                                       "resource.k8s.io/v1beta2": "true"}
    assert "enable_cdi = true" in config["containerdConfigPatches"][0]
    workers = [n for n in config["nodes"] if n["role"] == "worker"]
    assert len(workers) == 2
    assert workers[0]["labels"]["cloud.google.com/gke-accelerator"] == "nvidia-tesla-t4"
    assert workers[1]["labels"]["cloud.google.com/gke-tpu-topology"] == "2x4"
    assert "nvidia.com/gpu=present:NoSchedule" in workers[0]["kubeadmConfigPatches"][0]
    assert "google.com/tpu=present:NoSchedule" in workers[1]["kubeadmConfigPatches"][0]


def test_kept_cluster_is_reused(stand_ins, tmp_path):
    first = kind_backend.prepare_cluster("draconf-test", POOLS, tmp_path / "work", lambda m: None)
    (tmp_path / "clusters.txt").write_text("draconf-test\n")
    stand_ins.write_text("")
    messages: list[str] = []

    kind_backend.prepare_cluster("draconf-test", POOLS, tmp_path / "work", messages.append)

    assert first.kubeconfig_path.exists()
    assert not [c for c in commands(stand_ins) if c.startswith("kind create")]
    assert "reusing the kind cluster draconf-test" in messages


def test_missing_kind_is_a_skip_reason(stand_ins, tmp_path):
    (tmp_path / "bin" / "kind").unlink()

    with pytest.raises(UnsupportedCluster) as raised:
        kind_backend.prepare_cluster("draconf-test", POOLS, tmp_path / "work", lambda m: None)

    assert "needs kind on PATH" in str(raised.value)
    assert "does not download" in str(raised.value)


def test_docker_engine_down_is_a_skip_reason(stand_ins, tmp_path, monkeypatch):
    monkeypatch.setenv("DOCKER_ENGINE_DOWN", "1")

    with pytest.raises(UnsupportedCluster) as raised:
        kind_backend.prepare_cluster("draconf-test", POOLS, tmp_path / "work", lambda m: None)

    assert "Docker's engine does not answer" in str(raised.value)
    assert not [c for c in commands(stand_ins) if c.startswith("kind")]


def test_run_on_kind_skips_with_reason(stand_ins, tmp_path):
    env = dict(os.environ, PYTHONPATH=str(ROOT), DOCKER_ENGINE_DOWN="1")

    result = subprocess.run(
        [sys.executable, "-m", "fixtures.cli", "run", "--cluster", "kind", "--results-dir",
         str(tmp_path / "results"), "--", str(ROOT / "suites" / "gke_docs" / "test_gpu_flow.py")],
        env=env, capture_output=True, text=True, timeout=120, cwd=tmp_path)

    assert "2 skipped" in result.stdout, result.stdout[-3000:]
    assert "Docker's engine does not answer" in result.stdout
    assert "Traceback" not in result.stdout + result.stderr

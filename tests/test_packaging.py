"""The fake driver's image and DaemonSet, checked without a container runtime."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

from fake_devices import driver
from fake_devices.install import deploy_objects

ROOT = Path(__file__).resolve().parent.parent


def entrypoint() -> list[str]:
    text = (ROOT / "fake_devices" / "Dockerfile").read_text()
    match = re.search(r"^ENTRYPOINT\s+(\[.*\])\s*$", text, re.MULTILINE)
    assert match, "the Dockerfile has no exec-form ENTRYPOINT"
    return json.loads(match.group(1))


def test_image_entrypoint_runs():
    command = entrypoint()
    assert command[0] == "python"

    result = subprocess.run([sys.executable, *command[1:], "--help"], capture_output=True,
                            text=True, timeout=60, cwd=ROOT)

    assert result.returncode == 0, result.stderr
    assert "fake-dra-driver" in result.stdout
    assert "crash-during-prepare" in result.stdout, "--help documents the fault modes"


def test_daemonset_arguments_parse(monkeypatch):
    [daemonset] = deploy_objects("daemonset.yaml")
    container = daemonset["spec"]["template"]["spec"]["containers"][0]
    env = {e["name"]: e.get("value", "") for e in container["env"]}
    monkeypatch.setenv("NODE_NAME", "kind-worker")
    monkeypatch.setenv("DRACONF_PROFILE", env["DRACONF_PROFILE"])
    monkeypatch.setenv("DRACONF_FAKE_FAULT", env["DRACONF_FAKE_FAULT"])

    args = driver.parse_args(container["args"])

    assert args.node == "kind-worker"
    assert args.profile == "gke-t4-1"
    assert args.kubeconfig is None, "in a pod the driver uses its service account"
    assert str(args.state_dir) in [m["mountPath"] for m in container["volumeMounts"]]


def test_daemonset_mounts_are_host_paths():
    [daemonset] = deploy_objects("daemonset.yaml")
    volumes = {v["name"]: v for v in daemonset["spec"]["template"]["spec"]["volumes"]}

    for name in ("plugins", "plugins-registry", "cdi", "state"):
        assert "hostPath" in volumes[name], f"volume {name} must be a host path"


def test_daemonset_uses_deploy_service_account():
    [daemonset] = deploy_objects("daemonset.yaml")
    accounts = [o for o in deploy_objects("rbac.yaml") if o["kind"] == "ServiceAccount"]

    assert daemonset["spec"]["template"]["spec"]["serviceAccountName"] == \
        accounts[0]["metadata"]["name"]
    assert daemonset["metadata"]["namespace"] == accounts[0]["metadata"]["namespace"]

"""Bad input to every command: a clear message, a non-zero exit, never a traceback.

Every case runs the real command line in a subprocess. Cases that need a
server point only at a closed port on 127.0.0.1.
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
from pathlib import Path

import pytest

from fake_devices.profiles import ProfileError, load_profiles

ROOT = Path(__file__).resolve().parent.parent


def closed_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    base = tmp_path_factory.mktemp("bad")
    made = {
        "empty-dir": base / "empty-bin",
        "malformed": base / "malformed.yaml",
        "no-contexts": base / "no-contexts.yaml",
        "unreachable": base / "unreachable.kubeconfig",
        "list": base / "list.yaml",
        "typo": base / "typo.yaml",
        "corrupt-results": base / "results",
    }
    made["empty-dir"].mkdir()
    made["malformed"].write_text("apiVersion: v1\nclusters: [unclosed\n")
    made["no-contexts"].write_text("apiVersion: v1\nkind: Config\nclusters: []\n")
    made["unreachable"].write_text(
        "apiVersion: v1\nkind: Config\n"
        f"clusters:\n- name: c\n  cluster:\n    server: https://127.0.0.1:{closed_port()}\n"
        "    insecure-skip-tls-verify: true\n"
        "users:\n- name: u\n  user:\n    token: not-a-real-token\n"
        "contexts:\n- name: c\n  context:\n    cluster: c\n    user: u\ncurrent-context: c\n")
    made["list"].write_text("- just\n- a list\n")
    made["typo"].write_text(json.dumps({"apiVersion": "resource.k8s.io/v1",
                                        "kind": "DeviceClass", "metadata": {"name": "x"},
                                        "spec": {"selektors": []}}))
    made["corrupt-results"].mkdir()
    (made["corrupt-results"] / "results.json").write_text("{not json")
    return {k: str(v) for k, v in made.items()}


# (arguments, expected exit codes, text the message must contain)
CASES = {
    "unknown-backend": (["run", "--cluster", "nonsense"], {2}, "invalid choice"),
    "timeout-scale-zero": (["run", "--timeout-scale", "0"], {2}, "must be a positive number"),
    "timeout-scale-negative": (["run", "--timeout-scale", "-1"], {2}, "positive number"),
    "timeout-scale-text": (["run", "--timeout-scale", "abc"], {2}, "invalid float value"),
    "nodes-unknown-profile": (["run", "--nodes", "nonsense"], {4}, "unknown profile 'nonsense'"),
    "nodes-zero": (["run", "--nodes", "gke-l4-8:0"], {4}, "between 1 and 100"),
    "nodes-too-many": (["run", "--nodes", "gke-l4-8:60,gke-t4-1:60"], {4},
                       "120 nodes in all; at most 100 are supported"),
    "nodes-not-number": (["run", "--nodes", "gke-l4-8:x"], {4}, "is not a number"),
    "nodes-unknown-flag": (["run", "--nodes", "gke-l4-8:1:weird"], {4}, "unknown pool flag"),
    "nodes-repeated": (["run", "--nodes", "gke-t4-1,gke-t4-1"], {4}, "listed twice"),
    "bin-dir-missing": (["run", "--kube-bin-dir", "/nonexistent/bin"], {2}, "is not a directory"),
    "bin-dir-empty": (["run", "--kube-bin-dir", "{empty-dir}"], {3}, "lacks executable"),
    "binary-source-unknown": (["run", "--binary-source", "bogus"], {2}, "invalid choice"),
    "version-not-cached": (["run", "--kubernetes-version", "1.99.0", "--binary-source", "cache"],
                           {3}, "forbids building or downloading"),
    "existing-without-kubeconfig": (["run", "--cluster", "existing"], {4}, "needs --kubeconfig"),
    "kubeconfig-missing": (["run", "--cluster", "existing", "--kubeconfig", "/nonexistent/kc"],
                           {4}, "does not exist"),
    "kubeconfig-malformed": (["run", "--cluster", "existing", "--kubeconfig", "{malformed}"],
                             {4}, "cannot"),
    "kubeconfig-no-context": (["run", "--cluster", "existing", "--kubeconfig", "{no-contexts}"],
                              {4}, "cannot be used"),
    "kubeconfig-unknown-context": (["run", "--cluster", "existing", "--kubeconfig",
                                    "{unreachable}", "--context", "missing"], {4}, "missing"),
    "kubeconfig-unreachable": (["run", "--cluster", "existing", "--kubeconfig", "{unreachable}"],
                               {3}, "cannot be reached"),
    "kubeconfig-with-local": (["run", "--kubeconfig", "{unreachable}"], {4},
                              "only used with --cluster=existing"),
    "allocate-no-files": (["allocate"], {2}, "give at least one YAML file"),
    "allocate-missing-file": (["allocate", "/nonexistent/claim.yaml"], {2}, "cannot read"),
    "allocate-malformed": (["allocate", "{malformed}"], {2}, "malformed.yaml"),
    "allocate-watch-alone": (["allocate", "--watch"], {2}, "--watch needs --kubeconfig"),
    "allocate-bad-kubeconfig": (["allocate", "--watch", "--kubeconfig", "{malformed}"], {2},
                                "cannot"),
    "allocate-unreachable": (["allocate", "--watch", "--kubeconfig", "{unreachable}",
                              "--duration", "1"], {2}, "failed"),
    "lint-missing": (["lint", "/nonexistent/x.yaml"], {2}, "cannot read"),
    "lint-invalid-yaml": (["lint", "{malformed}"], {2}, "is not valid YAML"),
    "lint-not-object": (["lint", "{list}"], {2}, "is not a Kubernetes object"),
    "lint-unknown-field": (["lint", "{typo}"], {1}, "unknown field spec.selektors"),
    "convert-unknown-version": (["convert", "--to", "v2", "{typo}"], {2}, "invalid choice"),
    "convert-unknown-field": (["convert", "--to", "v1", "{typo}"], {1}, "unknown field"),
    "cluster-bad-name": (["cluster", "up", "--name", "Bad_Name"], {2}, "invalid --name"),
    "cluster-bad-nodes": (["cluster", "up", "--nodes", "nonsense"], {2}, "unknown profile"),
    "cluster-kind": (["cluster", "up", "--cluster", "kind"], {2}, "not available"),
    "report-missing": (["report", "/nonexistent/results"], {2}, "has no results.json (not found)"),
    "report-corrupt": (["report", "{corrupt-results}"], {2}, "is not a draconf results file"),
    "no-command": ([], {2}, "required"),
}


@pytest.mark.parametrize("name", list(CASES))
def test_bad_input(files, tmp_path, name):
    arguments, codes, text = CASES[name]
    arguments = [a.format(**files) if "{" in a else a for a in arguments]
    env = dict(os.environ, PYTHONPATH=str(ROOT), XDG_STATE_HOME=str(tmp_path / "state"))

    result = subprocess.run([sys.executable, "-m", "fixtures.cli", *arguments,
                             *(["--results-dir", str(tmp_path / "r")]
                               if arguments[:1] == ["run"] else [])],
                            env=env, capture_output=True, text=True, timeout=120, cwd=tmp_path)

    output = result.stdout + result.stderr
    assert result.returncode in codes, f"exit {result.returncode}:\n{output[-3000:]}"
    assert text in output, output[-3000:]
    assert "Traceback" not in output, output[-3000:]


@pytest.mark.parametrize("arguments, text", [
    (["--fault", "bogus", "--node", "n", "--profile", "gke-t4-1"], "unknown fault 'bogus'"),
    (["--profile", "gke-t4-1"], "missing --node"),
    (["--node", "n", "--profile", "gke-t4-1", "--fault-delay", "-1"], "must not be negative"),
], ids=["fault-unknown", "node-missing", "delay-negative"])
def test_driver_bad_input(arguments, text):
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    env.pop("NODE_NAME", None)

    result = subprocess.run([sys.executable, "-m", "fake_devices.driver", *arguments], env=env,
                            capture_output=True, text=True, timeout=60)

    assert result.returncode == 2
    assert text in result.stderr
    assert "Traceback" not in result.stderr


def test_node_agent_bad_taint():
    result = subprocess.run(
        [sys.executable, "-m", "fixtures.node_agent", "--node", "n", "--profile", "gke-t4-1",
         "--kubeconfig", "k", "--kubelet-dir", "d", "--cdi-dir", "c", "--pods-dir", "p",
         "--port", "1", "--run-id", "r", "--tls-cert", "c", "--tls-key", "k", "--client-ca",
         "ca", "--taint", "no-effect"],
        env=dict(os.environ, PYTHONPATH=str(ROOT)), capture_output=True, text=True, timeout=60)

    assert result.returncode == 2
    assert "invalid --taint 'no-effect'" in result.stderr


@pytest.mark.parametrize("content, text", [
    ("gpu_models: [unclosed", "cannot read profiles"),
    ("gpu_models: {}\ngpu_profiles:\n  p: [nope, 1, m, pool]\ntpu_profiles: {}\n",
     "unknown GPU model 'nope'"),
    ("gpu_models: {}\ngpu_profiles: {}\ntpu_profiles:\n  t: [v9, 2x2, m, pool]\n",
     "unknown TPU generation 'v9'"),
    ("gpu_models: {}\ngpu_profiles: {}\ntpu_profiles:\n  t: [v6e, 4x4, m, pool]\n",
     "no chips-per-host bounds"),
    ("gpu_models: {}\n", "is malformed"),
], ids=["invalid-yaml", "unknown-gpu-model", "unknown-tpu-generation", "multi-host-topology",
        "missing-sections"])
def test_invalid_profiles(tmp_path, content, text):
    path = tmp_path / "profiles.yaml"
    path.write_text(content)

    with pytest.raises(ProfileError) as raised:
        load_profiles(path)

    assert text in str(raised.value)

"""A manifest in one version's layout under another version's name, applied for real."""

from __future__ import annotations

from pathlib import Path

import pytest

from fixtures.cli import main
from fixtures.kube import dra
from fixtures.workloads import ManifestLayoutError, create_objects, load_manifests

pytestmark = [pytest.mark.e2e]

CASE = Path(__file__).resolve().parent / "data" / "v1beta2-flat-request.yaml"


def test_applying_flat_request_explains_layout(draconf_env, namespace):
    """LAYOUT-1: the rejection names the misplaced fields and the layout, and leaves nothing."""
    [template] = load_manifests(CASE)

    with pytest.raises(ManifestLayoutError) as raised:
        create_objects(draconf_env, namespace, [template])

    message = str(raised.value)
    assert "follows the v1beta1 layout" in message
    assert "misplaced field spec.spec.devices.requests[0].count" in message
    assert "strict decoding error" in message, "the server's own message is kept"
    assert draconf_env.kube.list(dra("ResourceClaimTemplate"), namespace) == []


def test_lint_dry_run_on_cluster(draconf_env, capsys):
    """LAYOUT-2: draconf lint --kubeconfig quotes the server's strict dry-run verdict."""
    code = main(["lint", "--kubeconfig", str(draconf_env.kubeconfig), str(CASE)])

    out = capsys.readouterr().out
    assert code == 1
    assert "server-side dry run: rejected" in out
    assert 'unknown field "spec.spec.devices.requests[0].deviceClassName"' in out
    names = [t["metadata"]["name"] for t in
             draconf_env.kube.list(dra("ResourceClaimTemplate"))]
    assert "two-gpus" not in names, "a dry run must not create the template"

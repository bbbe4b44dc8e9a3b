"""The GKE pages replayed step by step with the real kubectl, outputs compared."""

from __future__ import annotations

import pytest

from fixtures.replay import replay
from fixtures.workloads import MANIFEST_DIR
from suites.gke_docs import flow

pytestmark = [pytest.mark.e2e]


@pytest.mark.parametrize("page, profile", [("gpu", flow.GPU_PROFILE), ("tpu", flow.TPU_PROFILE)],
                         ids=["gpu", "tpu"])
def test_page_replay(draconf_env, namespace, request, page, profile):
    """GKE-DOCS-REPLAY-1: every documented step runs with kubectl; only the template step fails."""
    flow.require_profile(draconf_env, profile)

    report = replay(MANIFEST_DIR / "gke_docs" / f"{page}.scenario.yaml", draconf_env.kubectl,
                    draconf_env.kubeconfig, namespace)

    results = request.config.getoption("--results-dir").resolve()
    (results / f"replay-{page}.md").write_text(report.markdown())
    verdicts = {step.name: step.status for step in report.steps}
    assert verdicts["create the ResourceClaimTemplate"] == \
        "failed as written; passed after the fix", report.markdown()
    others = {name: status for name, status in verdicts.items()
              if name != "create the ResourceClaimTemplate"}
    assert set(others.values()) == {"passed as written"}, report.markdown()

"""The GKE GPU flow: a one-GPU claim template and a Deployment that runs nvidia-smi."""

from __future__ import annotations

import pytest

from suites.gke_docs import flow

pytestmark = [pytest.mark.e2e, pytest.mark.gpu]


def test_documented_gpu_template_is_rejected(draconf_env, namespace, documentation_defect):
    """GKE-DOCS-GPU-1: the template as documented is rejected, naming each misplaced field."""
    template = flow.documented("gpu-claim-template.yaml")

    rejection = flow.try_documented_template(draconf_env, namespace, template)

    flow.check_rejection(rejection, template)
    documentation_defect(flow.PAGE, *flow.defect_summary(template, rejection))


def test_gpu_flow(draconf_env, namespace, allocation_map):
    """GKE-DOCS-GPU-2: one T4 allocated, reserved, prepared and visible to nvidia-smi."""
    flow.gpu_flow(draconf_env, namespace, draw=allocation_map)

"""The GKE TPU flow: a claim for every chip of a v6e 2x4 node and a pod printing its env."""

from __future__ import annotations

import pytest

from fake_devices.profiles import get_profile, tpu_environment
from suites.gke_docs import flow

pytestmark = [pytest.mark.e2e, pytest.mark.tpu]


def test_documented_tpu_template_is_rejected(draconf_env, namespace, documentation_defect):
    """GKE-DOCS-TPU-1: the template as documented is rejected, naming each misplaced field."""
    template = flow.documented("tpu-claim-template.yaml")

    rejection = flow.try_documented_template(draconf_env, namespace, template)

    flow.check_rejection(rejection, template)
    documentation_defect(flow.PAGE, *flow.defect_summary(template, rejection))


def test_tpu_environment_matches_page():
    """GKE-DOCS-TPU-0: the fake driver's rules give the page's values for v6e 2x4."""
    assert tpu_environment(get_profile(flow.TPU_PROFILE)) == flow.DOCUMENTED_TPU_ENV


def test_tpu_flow(draconf_env, namespace, allocation_map):
    """GKE-DOCS-TPU-2: all eight chips of one node allocated and their variables injected."""
    flow.tpu_flow(draconf_env, namespace, draw=allocation_map)

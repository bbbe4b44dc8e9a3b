"""Inputs that cannot work: the API's or the scheduler's message reaches the user."""

from __future__ import annotations

import pytest

from fixtures.kube import KubeError
from fixtures.workloads import create_objects
from suites.allocation import helpers as h

pytestmark = [pytest.mark.e2e]


def test_unknown_device_class(draconf_env, namespace):
    """NEGATIVE-1: a claim naming an unknown DeviceClass leaves the pod unschedulable, saying so."""
    claim = h.claim("ghost", [{"name": "x", "exactly": h.exactly("no-such-class.example.com")}])
    create_objects(draconf_env, namespace, [claim, h.pod("user", {"devices": "ghost"})])

    reason = h.wait_unschedulable(draconf_env, namespace, "user")

    assert "no-such-class.example.com" in reason, reason
    predicted = h.predict(draconf_env, claim, namespace)
    assert not predicted.allocated
    assert "no-such-class.example.com" in predicted.reason


def test_count_zero_defaulted(draconf_env, namespace):
    """NEGATIVE-2: count 0 is not an error: the API server defaults it to 1 (kube 1.37)."""
    claim = h.claim("none", [{"name": "x", "exactly": h.exactly("gpu.nvidia.com", 0)}])

    [created] = create_objects(draconf_env, namespace, [claim])

    assert created["spec"]["devices"]["requests"][0]["exactly"]["count"] == 1


def test_negative_count_rejected(draconf_env, namespace):
    """NEGATIVE-3: a negative count is rejected with the API server's validation message."""
    claim = h.claim("negative", [{"name": "x", "exactly": h.exactly("gpu.nvidia.com", -1)}])

    with pytest.raises(KubeError) as raised:
        create_objects(draconf_env, namespace, [claim])

    assert raised.value.status == 422
    assert "count" in str(raised.value)


def test_cel_runtime_error_surfaced(draconf_env, namespace):
    """NEGATIVE-4: a selector failing at run time is reported with the CEL error."""
    claim = h.claim("broken", [{"name": "x", "exactly": h.exactly(
        "gpu.nvidia.com", 1, selectors=['device.attributes["gpu.nvidia.com"].noSuchAttribute '
                                        '== "x"'])}])
    create_objects(draconf_env, namespace, [claim, h.pod("user", {"devices": "broken"})])

    reason = h.wait_unschedulable_or_error(draconf_env, namespace, "user")

    assert "noSuchAttribute" in reason, reason
    predicted = h.predict(draconf_env, claim, namespace)
    assert not predicted.allocated
    assert "noSuchAttribute" in predicted.reason, predicted.reason

"""Fault modes of the fake driver, each mimicking a bug reported against real drivers.

A fault is chosen with ``--fault NAME`` (or ``DRACONF_FAKE_FAULT``) when the
driver starts, or changed at run time through the control socket.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Fault:
    name: str
    mimics: str


FAULTS = {fault.name: fault for fault in (
    Fault("none", "a healthy driver"),
    Fault("prepare-error",
          "NodePrepareResources answers every claim with an error (a driver that cannot "
          "configure the device)"),
    Fault("slow-prepare",
          "NodePrepareResources takes --fault-delay seconds (default 20) before it answers "
          "(a driver stuck on device setup)"),
    Fault("empty-slice",
          "the node's pool is published with no devices (a GPU driver on GKE that started "
          "before the devices were visible)"),
    Fault("duplicate-device-names",
          "the pool is split over two slices that both list every device (a driver that "
          "republishes without removing its old slice)"),
    Fault("stale-pool-generation",
          "a slice of an older pool generation is left behind next to the current one"),
    Fault("cdi-wrong-dir",
          "CDI specs are written to a directory the container runtime does not read"),
    Fault("missing-env",
          "CDI specs carry no environment variables (as when the runtime drops CDI edits: the "
          "pod runs, the variables never arrive)"),
    Fault("no-registration",
          "the driver serves its DRA socket but never creates the registration socket"),
    Fault("crash-during-prepare",
          "the driver process exits in the middle of its first NodePrepareResources and is "
          "restarted"),
)}

SLICE_FAULTS = ("empty-slice", "duplicate-device-names", "stale-pool-generation")
# Faults that change how the driver starts, so switching to them means a restart.
START_ONLY_FAULTS = ("no-registration",)


class FaultError(ValueError):
    """An unknown fault name."""


def check_fault(name: str) -> str:
    if name not in FAULTS:
        raise FaultError(f"unknown fault {name!r}; known faults: {', '.join(FAULTS)}")
    return name

"""The fake DRA driver for one node: ResourceSlice publisher and kubelet plugin.

Run as ``python -m fake_devices.driver`` (a DaemonSet pod on kind, a local
process on the local backend). It stops on SIGTERM or SIGINT, removing its
sockets and its ResourceSlices. With ``--supervise`` a parent process
restarts it when it exits with an error, as the kubelet restarts a crashed
container.
"""

from __future__ import annotations

import argparse
import faulthandler
import logging
import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

from fake_devices.faults import FAULTS, SLICE_FAULTS, FaultError, check_fault
from fixtures.processes import StopRequest

log = logging.getLogger("draconf.driver")
NODE_WAIT_SECONDS = 60.0
STOP_DIAGNOSIS_SECONDS = 15  # all threads' stacks go to the log if stopping takes longer
MAX_RESTARTS = 5
STARTS_FILE = "starts"
RESTARTS_FILE = "restarts-after-crash"


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    faults = "\n".join(f"  {f.name}: {f.mimics}" for f in FAULTS.values())
    parser = argparse.ArgumentParser(prog="fake-dra-driver", description=__doc__,
                                     epilog=f"fault modes:\n{faults}",
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--node", default=os.environ.get("NODE_NAME"),
                        help="name of the Node this instance serves (default: $NODE_NAME)")
    parser.add_argument("--profile", default=os.environ.get("DRACONF_PROFILE"),
                        help="inventory profile, e.g. gke-t4-1 (default: $DRACONF_PROFILE)")
    parser.add_argument("--kubeconfig", default=None,
                        help="credentials of the driver (default: the pod's service account)")
    parser.add_argument("--kubelet-dir", type=Path, default=Path("/var/lib/kubelet"),
                        help="kubelet root holding plugins/ and plugins_registry/ "
                             "(default /var/lib/kubelet)")
    parser.add_argument("--cdi-dir", type=Path, default=Path("/var/run/cdi"),
                        help="directory the container runtime reads CDI specs from "
                             "(default /var/run/cdi)")
    parser.add_argument("--state-dir", type=Path, default=Path("/var/lib/draconf-fake-driver"),
                        help="the driver's own files: prepared claims, helper binaries, the "
                             "control socket")
    parser.add_argument("--run-id", default=os.environ.get("DRACONF_RUN_ID", "manual"),
                        help="run id label put on ResourceSlices")
    parser.add_argument("--fault", default=os.environ.get("DRACONF_FAKE_FAULT", "none"),
                        help="fault mode to start in (default none; listed below)")
    parser.add_argument("--fault-delay", type=float, default=20.0,
                        help="seconds slow-prepare waits (default 20)")
    parser.add_argument("--keep-slices", action="store_true",
                        help="leave the ResourceSlices in place on exit")
    parser.add_argument("--supervise", action="store_true",
                        help=f"restart the driver when it exits with an error (at most "
                             f"{MAX_RESTARTS} times)")
    args = parser.parse_args(argv)
    missing = [flag for flag, value in (("--node", args.node), ("--profile", args.profile))
               if not value]
    if missing:
        parser.error(f"missing {' and '.join(missing)}")
    try:
        check_fault(args.fault)
    except FaultError as error:
        parser.error(str(error))
    if args.fault_delay < 0:
        parser.error("--fault-delay must not be negative")
    return args


def supervise(argv: list[str]) -> int:
    """Run the driver as a child and restart it after a crash."""
    child_argv = [a for a in argv if a != "--supervise"]
    stopping = threading.Event()
    child: subprocess.Popen[bytes] | None = None

    def forward(signum: int, frame: object) -> None:
        stopping.set()
        if child is not None and child.poll() is None:
            child.send_signal(signum)

    for signum in (signal.SIGTERM, signal.SIGINT):
        signal.signal(signum, forward)
    state_dir = parse_args(child_argv).state_dir
    state_dir.mkdir(mode=0o700, parents=True, exist_ok=True)
    restarts = state_dir / RESTARTS_FILE
    restarts.write_text("0")
    for attempt in range(MAX_RESTARTS + 1):
        child = subprocess.Popen([sys.executable, "-m", "fake_devices.driver", *child_argv])
        code = child.wait()
        if stopping.is_set() or code == 0:
            return code
        log.error("the driver exited with code %d; restarting it (%d of %d)", code,
                  attempt + 1, MAX_RESTARTS)
        restarts.write_text(str(attempt + 1))
        time.sleep(1)
    log.error("the driver crashed %d times; giving up", MAX_RESTARTS + 1)
    return 1


def _count_start(state_dir: Path) -> int:
    state_dir.mkdir(mode=0o700, parents=True, exist_ok=True)
    path = state_dir / STARTS_FILE
    starts = int(path.read_text()) + 1 if path.exists() else 1
    path.write_text(str(starts))
    return starts


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    args = parse_args(argv)
    logging.basicConfig(level=logging.INFO, stream=sys.stderr,
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    if args.supervise:
        return supervise(argv)
    return run(args)


def run(args: argparse.Namespace) -> int:
    """Publish the pool, serve the kubelet plugin and the control socket until stopped."""
    # Imported here: the supervisor, one per node, needs none of them (grpc and the
    # Kubernetes client cost a quarter of a second and 40 MB per process).
    from fake_devices.control import SOCKET_NAME, ControlServer
    from fake_devices.kubelet_plugin import FakeDriverPlugin
    from fake_devices.profiles import ProfileError, get_profile
    from fake_devices.slices import SlicePublisher
    from fixtures.kube import CORE, Kube, KubeconfigError, KubeError
    from fixtures.waits import WaitTimeout, wait_for

    starts = _count_start(args.state_dir)
    try:
        profile = get_profile(args.profile)
        kube = Kube(args.kubeconfig) if args.kubeconfig else Kube.in_cluster()
        wait_for(f"node {args.node} to be registered", NODE_WAIT_SECONDS,
                 lambda: (kube.get_or_none(CORE["Node"], args.node) is not None, None),
                 interval=0.5, tolerate=(KubeError,))
        publisher = SlicePublisher(kube, args.node, profile, args.run_id)
        publisher.publish(args.fault)
        plugin = FakeDriverPlugin(kube, args.node, profile, args.kubelet_dir, args.cdi_dir,
                                  args.state_dir, args.fault, args.fault_delay)
        plugin.start(register=args.fault != "no-registration")
    except (ProfileError, KubeconfigError, KubeError, WaitTimeout, OSError) as error:
        log.error("the fake driver cannot start: %s", error)
        return 1

    def state() -> dict[str, object]:
        restarts = args.state_dir / RESTARTS_FILE
        return {**plugin.control_state(), "starts": starts,
                "restarts_after_crash": int(restarts.read_text()) if restarts.exists() else 0}

    def set_fault(fault: str, delay: float | None) -> None:
        check_fault(fault)
        if (fault == "no-registration") != (plugin.state.fault == "no-registration"):
            raise ValueError("no-registration can only be chosen when the driver starts")
        plugin.state.fault = fault
        if delay is not None:
            plugin.state.fault_delay = float(delay)
        if fault in SLICE_FAULTS or plugin.state.fault in SLICE_FAULTS or fault == "none":
            publisher.publish(fault)
        log.info("active fault is now %s", fault)

    control = ControlServer(args.state_dir / SOCKET_NAME, state, set_fault)
    control.start()
    stop_request = StopRequest().install()
    log.info("fake driver %s running on node %s with profile %s (fault %s, start %d)",
             profile.driver, args.node, profile.name, args.fault, starts)
    # SIGTERM may land on one of gRPC's threads; Python runs the handler when the main
    # thread next wakes, so it must not block without a timeout.
    stop_request.wait()

    log.info("stopping")
    # A stop takes a second or two. If this one hangs, every thread's stack goes to the log.
    faulthandler.dump_traceback_later(STOP_DIAGNOSIS_SECONDS, exit=False)
    control.stop()
    plugin.stop()
    if not args.keep_slices:
        try:
            publisher.remove()
        except KubeError as error:
            log.error("removing the ResourceSlices failed: %s", error)
    log.info("stopped")
    return 0


if __name__ == "__main__":
    sys.exit(main())

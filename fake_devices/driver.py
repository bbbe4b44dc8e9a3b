"""The fake DRA driver for one node: ResourceSlice publisher and kubelet plugin.

Run as ``python -m fake_devices.driver`` (a DaemonSet pod on kind, a local
process on the local backend). It stops on SIGTERM or SIGINT, removing its
sockets and its ResourceSlice.
"""

from __future__ import annotations

import argparse
import logging
import signal
import sys
import threading
from pathlib import Path

from fake_devices.kubelet_plugin import FakeDriverPlugin
from fake_devices.profiles import ProfileError, get_profile
from fake_devices.slices import SlicePublisher
from fixtures.kube import CORE, Kube, KubeconfigError, KubeError
from fixtures.waits import WaitTimeout, wait_for

log = logging.getLogger("draconf.driver")
NODE_WAIT_SECONDS = 60.0


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="fake-dra-driver", description=__doc__)
    parser.add_argument("--node", required=True, help="name of the Node this instance serves")
    parser.add_argument("--profile", required=True, help="inventory profile, e.g. gke-t4-1")
    parser.add_argument("--kubeconfig", required=True, help="credentials of the driver")
    parser.add_argument("--kubelet-dir", required=True, type=Path,
                        help="kubelet root holding plugins/ and plugins_registry/")
    parser.add_argument("--cdi-dir", required=True, type=Path,
                        help="directory the container runtime reads CDI specs from")
    parser.add_argument("--state-dir", required=True, type=Path,
                        help="the driver's own files: prepared claims, helper binaries")
    parser.add_argument("--run-id", default="manual", help="run id label put on ResourceSlices")
    parser.add_argument("--keep-slices", action="store_true",
                        help="leave the ResourceSlice in place on exit")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    logging.basicConfig(level=logging.INFO, stream=sys.stderr,
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    try:
        profile = get_profile(args.profile)
        kube = Kube(args.kubeconfig)
        wait_for(f"node {args.node} to be registered", NODE_WAIT_SECONDS,
                 lambda: (kube.get_or_none(CORE["Node"], args.node) is not None, None),
                 interval=0.5, tolerate=(KubeError,))
        publisher = SlicePublisher(kube, args.node, profile, args.run_id)
        publisher.publish()
        plugin = FakeDriverPlugin(kube, args.node, profile, args.kubelet_dir, args.cdi_dir,
                                  args.state_dir)
        plugin.start()
    except (ProfileError, KubeconfigError, KubeError, WaitTimeout, OSError) as error:
        log.error("the fake driver cannot start: %s", error)
        return 1

    stopping = threading.Event()
    for signum in (signal.SIGTERM, signal.SIGINT):
        signal.signal(signum, lambda *_: stopping.set())
    log.info("fake driver %s running on node %s with profile %s", profile.driver, args.node,
             profile.name)
    stopping.wait()

    log.info("stopping")
    plugin.stop()
    if not args.keep_slices:
        try:
            publisher.remove()
        except KubeError as error:
            log.error("removing the ResourceSlice failed: %s", error)
    return 0


if __name__ == "__main__":
    sys.exit(main())

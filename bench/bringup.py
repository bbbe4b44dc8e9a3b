"""Local bring-up with a warm binary cache: the full harness against bare etcd + apiserver.

Usage: python bench/bringup.py [--rounds 3]

Each round, measured side by side in one run:
- bare: etcd and kube-apiserver only, until /readyz answers;
- full: what draconf run does before the first test: etcd, apiserver,
  controller-manager, scheduler, DeviceClasses and RBAC, three node agents and
  fake drivers, until every node is Ready with its pool published and its plugin
  registered.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from fixtures.binaries import ensure_binaries  # noqa: E402
from fixtures.environment import Options, start_local  # noqa: E402
from fixtures.local_cluster import LocalCluster  # noqa: E402
from fixtures.timeouts import Timeouts  # noqa: E402


def bare(binaries, scratch: Path, round_index: int) -> float:
    cluster = LocalCluster(f"bench-bare-{round_index}", binaries, scratch / "bare-logs",
                           Timeouts(), progress=lambda m: None, apiserver_only=True)
    started = time.perf_counter()
    cluster.start()
    elapsed = time.perf_counter() - started
    cluster.stop()
    return elapsed


def full(scratch: Path, round_index: int) -> float:
    options = Options(results_dir=scratch / "full", run_id=f"bench-full-{round_index}")
    started = time.perf_counter()
    environment = start_local(options, lambda m: None)
    elapsed = time.perf_counter() - started
    environment.stop()
    return elapsed


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    binaries = ensure_binaries(source="cache")
    bare_times, full_times = [], []
    with tempfile.TemporaryDirectory(prefix="draconf-bench-", dir="/tmp") as scratch:
        for index in range(args.rounds):
            bare_times.append(bare(binaries, Path(scratch), index))
            full_times.append(full(Path(scratch), index))
    b, f = statistics.median(bare_times), statistics.median(full_times)
    print(f"bare etcd + kube-apiserver: median {b:.2f} s over {args.rounds} rounds "
          f"({', '.join(f'{t:.2f}' for t in bare_times)})")
    print(f"full local backend with 3 nodes and fake drivers: median {f:.2f} s "
          f"({', '.join(f'{t:.2f}' for t in full_times)}); full/bare {f / b:.2f}x")
    return 0


if __name__ == "__main__":
    sys.exit(main())

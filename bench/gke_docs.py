"""suites/gke_docs end to end, as a user runs it, with where the time goes.

Usage: python bench/gke_docs.py [--rounds 3]

Each round, side by side in one run:
- bare: etcd and kube-apiserver only, until /readyz answers (the floor of any
  local run);
- suite: `draconf run -- suites/gke_docs --durations=0` in a subprocess, timed
  from exec to exit; its output gives the time to the first test and
  pytest's setup, call and teardown time of every test.
The rest of the wall time is Python and pytest start, stopping the cluster and
writing the reports.
"""

from __future__ import annotations

import argparse
import os
import re
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.bringup import bare  # noqa: E402
from fixtures.binaries import ensure_binaries  # noqa: E402

SUITE_TIMEOUT = 900.0  # seconds for one whole `draconf run` of suites/gke_docs
DURATION_LINE = re.compile(r"^(\d+\.\d+)s (setup|call|teardown)\s+(\S+)", re.MULTILINE)


def suite(scratch: Path, index: int) -> dict:
    results = scratch / f"results-{index}"
    started = time.perf_counter()
    finished = subprocess.run(
        [sys.executable, "-m", "fixtures.cli", "run", "--results-dir", str(results), "--",
         str(ROOT / "suites" / "gke_docs"), "--durations=0", "-q"],
        cwd=scratch, env=dict(os.environ, PYTHONPATH=str(ROOT)), capture_output=True,
        text=True, timeout=SUITE_TIMEOUT)
    wall = time.perf_counter() - started
    if finished.returncode != 0:
        raise SystemExit(f"draconf run failed (exit {finished.returncode}):\n"
                         f"{finished.stdout[-3000:]}{finished.stderr[-2000:]}")
    first = re.search(r"first test after (\d+\.\d+) s", finished.stdout)
    counts = re.search(r"draconf run: (\d+) passed", finished.stdout)
    phases = {"setup": 0.0, "call": 0.0, "teardown": 0.0}
    slowest: dict[str, float] = {}
    for seconds, phase, test in DURATION_LINE.findall(finished.stdout):
        phases[phase] += float(seconds)
        slowest[test] = slowest.get(test, 0.0) + float(seconds)
    return {"wall": wall, "first_test": float(first.group(1)) if first else float("nan"),
            "tests": int(counts.group(1)) if counts else 0, **phases,
            "slowest": max(slowest.items(), key=lambda item: item[1]) if slowest else ("", 0)}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    binaries = ensure_binaries(source="cache")
    bares, suites = [], []
    with tempfile.TemporaryDirectory(prefix="draconf-bench-", dir="/tmp") as scratch:
        for index in range(args.rounds):
            bares.append(bare(binaries, Path(scratch), index))
            suites.append(suite(Path(scratch), index))
            print(f"round {index}: bare start {bares[-1]:.2f} s; suite {suites[-1]}", flush=True)

    def median(key: str) -> float:
        return statistics.median(s[key] for s in suites)

    wall, floor = median("wall"), statistics.median(bares)
    # The first test's setup includes bringing the cluster up.
    rest = wall - median("setup") - median("call") - median("teardown")
    print(f"suites/gke_docs end to end, {suites[0]['tests']} tests, medians of {args.rounds} "
          "round(s):")
    print(f"  bare etcd + kube-apiserver start: {floor:.2f} s")
    print(f"  whole `draconf run`: {wall:.1f} s ({wall / floor:.1f}x the bare start)")
    print(f"  to the first test: {median('first_test'):.1f} s; pytest phases: setup "
          f"{median('setup'):.1f} s (with the bring-up), call {median('call'):.1f} s, teardown "
          f"{median('teardown'):.1f} s; the rest (start, stop, reports): {rest:.1f} s")
    print(f"  slowest test (setup + call + teardown): {suites[0]['slowest'][0]} "
          f"{suites[0]['slowest'][1]:.1f} s in round 0")
    return 0


if __name__ == "__main__":
    sys.exit(main())

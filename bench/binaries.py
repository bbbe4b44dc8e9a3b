"""Time getting the upstream binaries: cold (empty caches) and warm, in one run.

Usage: python bench/binaries.py [--cold]

--cold builds into fresh Go and draconf caches under a temporary directory
(this takes tens of minutes on 2 cores); without it only the warm path is
timed against the user's cache.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent

SNIPPET = (
    "import time; from fixtures.binaries import ensure_binaries; "
    "t = time.monotonic(); ensure_binaries(progress=lambda m: print(m, flush=True)); "
    "print(f'SECONDS {time.monotonic() - t:.3f}')"
)


def timed(env: dict[str, str]) -> float:
    result = subprocess.run([sys.executable, "-c", SNIPPET], env=env, cwd=ROOT, text=True,
                            capture_output=True, check=True, timeout=7200)
    line = next(l for l in result.stdout.splitlines() if l.startswith("SECONDS "))
    return float(line.split()[1])


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--cold", action="store_true", help="also time a build from empty caches")
    args = parser.parse_args()
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    if args.cold:
        with tempfile.TemporaryDirectory(prefix="draconf-bench-") as scratch:
            cold_env = dict(env, XDG_CACHE_HOME=f"{scratch}/xdg", GOCACHE=f"{scratch}/gocache",
                            GOMODCACHE=f"{scratch}/gomod", GOFLAGS="-modcacherw")
            cold = timed(cold_env)
            warm_same = timed(cold_env)
            print(f"cold build (empty Go module and build caches): {cold:.1f} s")
            print(f"warm, same caches right after: {warm_same:.3f} s "
                  f"(ratio cold/warm {cold / warm_same:.0f}x)")
    print(f"warm, user cache: {timed(env):.3f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())

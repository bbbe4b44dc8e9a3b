"""Signals during cleanup: recorded without locks, held until the cleanup is done."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from fixtures.processes import signals_held

ROOT = Path(__file__).resolve().parent.parent


def test_held_signals_raise_after_cleanup():
    """Signals wait for the cleanup; the outermost hold names the first one."""
    messages = []
    finished = []
    before = signal.getsignal(signal.SIGINT)
    with pytest.raises(KeyboardInterrupt, match="received signal 15 while cleaning up"):
        with signals_held("cleaning up", messages.append):
            with signals_held("stopping the cluster", messages.append):
                os.kill(os.getpid(), signal.SIGTERM)
                os.kill(os.getpid(), signal.SIGINT)
                finished.append("inner")
            finished.append("outer")
    assert finished == ["inner", "outer"]
    assert messages == ["still cleaning up; it ends by itself within its time limits"]
    assert signal.getsignal(signal.SIGINT) is before


def test_no_signal_no_interrupt():
    before = signal.getsignal(signal.SIGINT)
    with signals_held("cleaning up", lambda message: None):
        pass
    assert signal.getsignal(signal.SIGINT) is before


def test_stop_request_ends_main_loop():
    """SIGTERM sent to a process whose main thread sleeps and whose other threads are busy."""
    script = textwrap.dedent("""
        import os, signal, threading, time
        from fixtures.processes import StopRequest
        request = StopRequest().install()
        done = threading.Event()
        workers = [threading.Thread(target=lambda: done.wait(), daemon=True) for _ in range(8)]
        for worker in workers:
            worker.start()
        threading.Timer(0.5, lambda: os.kill(os.getpid(), signal.SIGTERM)).start()
        request.wait(0.1)
        done.set()
        print("stopped by", request.signum)
    """)
    result = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True,
                            timeout=30, env=dict(os.environ, PYTHONPATH=str(ROOT)))
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == f"stopped by {int(signal.SIGTERM)}"

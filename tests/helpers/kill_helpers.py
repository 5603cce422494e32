"""Run ``gsseg ARGS`` in a subprocess that a test kills with SIGKILL mid-stage.

``python tests/helpers/kill_helpers.py ARGS...`` runs the CLI with every rename of an atomic write
(``gsseg.utils.atomic``) delayed by ``$GSSEG_TEST_RENAME_DELAY`` seconds, so a stage lasts long
enough to be killed, and the kill can land while a temporary file is written but not yet renamed.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[2]


def start(args: list[str], delay: float = 0.3) -> subprocess.Popen:
    """Start ``gsseg ARGS`` (slowed renames) in a new process; stdout/stderr are captured."""
    env = {**os.environ, "GSSEG_TEST_RENAME_DELAY": str(delay), "COLUMNS": "200"}
    return subprocess.Popen(
        [sys.executable, str(Path(__file__).resolve()), *map(str, args)],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        cwd=REPO_ROOT,
    )


def wait_for(proc: subprocess.Popen, condition, timeout: float = 90.0, what: str = "condition") -> None:
    """Poll ``condition()`` every 20 ms until true; AssertionError if the process ends first or time runs out."""
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        if condition():
            return
        if proc.poll() is not None:
            out, err = proc.communicate()
            raise AssertionError(f"process ended (rc {proc.returncode}) before {what}:\n{out}\n{err}")
        time.sleep(0.02)
    kill(proc)
    raise AssertionError(f"timed out waiting for {what}")


def kill(proc: subprocess.Popen) -> None:
    """SIGKILL the process (no cleanup handlers run) and reap it."""
    if proc.poll() is None:
        os.kill(proc.pid, signal.SIGKILL)
    proc.communicate()


def _main() -> None:
    delay = float(os.environ.get("GSSEG_TEST_RENAME_DELAY", "0"))
    real_replace = os.replace

    def slow_replace(src, dst, *a, **kw):
        time.sleep(delay)
        return real_replace(src, dst, *a, **kw)

    os.replace = slow_replace  # gsseg.utils.atomic calls os.replace at rename time
    from gsseg.cli.app import main

    main(sys.argv[1:])


if __name__ == "__main__":
    _main()

"""PlayCanvas splat-transform (npm), the reference reader of splat formats, for the export tests."""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pytest


def splat_transform() -> Path | None:
    """The installed tool (scripts/install_splat_transform.sh), or None."""
    cache = Path(os.environ.get("GSSEG_NPM_CACHE", Path.home() / ".cache" / "gsseg" / "npm"))
    tool = cache / "node_modules" / ".bin" / "splat-transform"
    return tool if tool.is_file() and shutil.which("node") else None


# Under CI the tool is required (scripts/setup.sh installs it), so these tests never skip there.
needs_splat_transform = pytest.mark.skipif(
    splat_transform() is None and not os.environ.get("CI"),
    reason="splat-transform not installed (scripts/install_splat_transform.sh installs it; CI always does)",
)


def convert(src: Path, dst: Path, *actions: str) -> None:
    """``splat-transform SRC [ACTIONS] DST``; fails the test on a non-zero exit."""
    tool = splat_transform()
    assert tool is not None, "CI must install @playcanvas/splat-transform (scripts/setup.sh)"
    proc = subprocess.run([str(tool), "-w", str(src), *actions, str(dst)], capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-2000:]

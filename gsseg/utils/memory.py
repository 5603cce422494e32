"""Memory budgets: how much RAM a run may use for caches, and human-readable sizes."""

from __future__ import annotations

import os
import re
import resource
import sys

from gsseg.errors import GssegError

AUTO_BUDGET_SHARE = 0.4  # of the memory available when a stage starts (leaves room for the rest of the process)
_SIZE = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([kmgt]?)i?b?\s*$", re.IGNORECASE)
_UNITS = {"": 2**20, "k": 2**10, "m": 2**20, "g": 2**30, "t": 2**40}  # a bare number is MiB


def available_bytes() -> int:
    """Memory the OS can give this process now: MemAvailable on Linux, else free physical pages."""
    try:
        with open("/proc/meminfo") as f:
            for line in f:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    try:
        return os.sysconf("SC_AVPHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
    except (ValueError, OSError, AttributeError):
        return 8 * 2**30


def auto_budget_bytes() -> int:
    """Default cache budget: AUTO_BUDGET_SHARE of the memory available now."""
    return int(available_bytes() * AUTO_BUDGET_SHARE)


def parse_size(text: str) -> int:
    """``"512M"``, ``"8G"``, ``"1.5GiB"``, ``"300"`` (MiB) -> bytes; GssegError otherwise."""
    m = _SIZE.match(str(text))
    if not m or float(m.group(1)) <= 0:
        raise GssegError(f"--memory-budget {text!r}: expected a size such as 512M, 8G or 300 (MiB)")
    return int(float(m.group(1)) * _UNITS[m.group(2).lower()])


def budget_bytes(megabytes: float) -> int:
    """A config's budget in MiB as bytes; 0 means :func:`auto_budget_bytes`."""
    return auto_budget_bytes() if megabytes <= 0 else int(megabytes * 2**20)


def peak_rss_bytes(children: bool = False) -> int:
    """Peak resident set size of this process (or of its finished children)."""
    usage = resource.getrusage(resource.RUSAGE_CHILDREN if children else resource.RUSAGE_SELF)
    return int(usage.ru_maxrss * (1 if sys.platform == "darwin" else 1024))

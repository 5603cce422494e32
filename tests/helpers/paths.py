"""Where the tests find the checkout and the optional shared reference data.

``REPO_ROOT`` is the checkout (``pyproject.toml``, ``gsseg/``, ``tests/``); ``SHARED`` is the folder
beside it (``../shared``) that holds real captures and the parity pack when present. Tests that read
``SHARED`` skip when it is absent.
"""

from __future__ import annotations

from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[2]
SHARED = REPO_ROOT.parent / "shared"
SHARED_REAL = SHARED / "real"
SHARED_PARITY = SHARED / "parity"
BENCHMARKS = REPO_ROOT / "benchmarks"

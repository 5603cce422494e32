"""Fixtures shared by the stage folders, and the ``cuda`` marker.

Helpers that are plain functions (synthetic datasets, tiny runs, the in-process CLI driver) live in
``tests.helpers``; this file holds what is a pytest fixture or hook:
- ``private_cache``: ``$GSSEG_CACHE`` in the test's own folder, so no test reads another's cache;
- ``shared_tiny_run``: one tiny run per kind (``embedding`` / ``logits``) for the whole session,
  shared by the segment and export tests (``tests.helpers.segment_fixtures.build_tiny_run``);
- tests marked ``@pytest.mark.cuda`` are skipped when no CUDA GPU is present.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest
import torch


@pytest.fixture
def private_cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A fresh ``$GSSEG_CACHE`` under ``tmp_path``; the loader's once-per-dataset warnings reset."""
    import gsseg.data.dataset as dataset_mod

    cache = tmp_path / "cache"
    monkeypatch.setenv("GSSEG_CACHE", str(cache))
    dataset_mod._warned.clear()
    return cache


@pytest.fixture(scope="session")
def shared_tiny_run(tmp_path_factory: pytest.TempPathFactory) -> Callable[[str], Path]:
    """``shared_tiny_run(kind)`` -> the session's tiny run of that kind (built on first use)."""
    from tests.helpers.segment_fixtures import build_tiny_run

    base = tmp_path_factory.getbasetemp() / "segment_shared"
    return lambda kind="embedding": build_tiny_run(base, kind)


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Skip every ``cuda``-marked test on a machine without a CUDA GPU."""
    if torch.cuda.is_available():
        return
    skip = pytest.mark.skip(reason="needs a CUDA GPU")
    for item in items:
        if item.get_closest_marker("cuda") is not None:
            item.add_marker(skip)

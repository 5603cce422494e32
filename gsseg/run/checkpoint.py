"""Atomic training checkpoints (``torch.save`` of plain dicts of tensors and numbers)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch

from gsseg.errors import file_error
from gsseg.utils.atomic import atomic_path


def save_checkpoint(path: str | Path, payload: dict[str, Any]) -> Path:
    """Write ``payload`` to ``path`` via a temporary file + rename (a kill never leaves half a file)."""
    path = Path(path)
    with atomic_path(path) as tmp:
        torch.save(payload, tmp)
    return path


def load_checkpoint(path: str | Path, map_location: str | torch.device = "cpu") -> dict[str, Any]:
    """Read a checkpoint; GssegError if it is missing or unreadable."""
    path = Path(path)
    if not path.is_file():
        raise file_error(path, "checkpoint not found")
    try:
        return torch.load(path, map_location=map_location, weights_only=True)
    except Exception as e:  # torch raises several types for corrupt archives
        raise file_error(
            path, f"unreadable checkpoint ({type(e).__name__}: {e}); delete it or pass --restart"
        ) from None

"""The one place a ``--device`` string becomes a ``torch.device``."""

from __future__ import annotations

import torch

from gsseg.errors import GssegError


def resolve_device(device: str) -> torch.device:
    """``"auto"`` is the GPU when CUDA is available, else the CPU; any other name is passed to
    ``torch.device`` (``cpu``, ``cuda``, ``cuda:1``, ...).

    GssegError for a name torch does not know and for a CUDA device on a machine without one.
    """
    if device == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        dev = torch.device(device)
    except RuntimeError:
        raise GssegError(f"unknown device {device!r}; use auto, cpu or cuda") from None
    if dev.type == "cuda" and not torch.cuda.is_available():
        raise GssegError(f"device {device!r} requested but CUDA is not available; use --device cpu or auto")
    return dev

"""Which backend renders: the pure-PyTorch reference, the C++ CPU kernel or CUDA."""

from __future__ import annotations

import torch

from gsseg.render.extensions import load_cpu_extension

BACKENDS = ("auto", "reference", "cpu", "cuda")


def resolve_backend(backend: str, device: torch.device) -> str:
    """The concrete backend for ``backend`` on ``device`` ("reference", "cpu" or "cuda")."""
    if backend not in BACKENDS:
        raise ValueError(f"unknown render backend {backend!r}; choose one of {', '.join(BACKENDS)}")
    if device.type == "cuda":
        if backend in ("auto", "cuda"):
            return "cuda"
        if backend == "cpu":
            raise ValueError("backend 'cpu' needs CPU tensors; move the scene to the CPU or use 'cuda'")
        return "reference"
    if backend == "cuda":
        raise ValueError("backend 'cuda' needs CUDA tensors")
    if backend == "reference":
        return "reference"
    return "cpu" if load_cpu_extension() is not None else "reference"

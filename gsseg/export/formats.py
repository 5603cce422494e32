"""Splat file formats an export can write, one writer per format.

| format           | file                    | encoder                                 | keeps                         |
|------------------|-------------------------|-----------------------------------------|-------------------------------|
| `ply`            | `<name>.ply`            | ours (plyfile), the INRIA layout        | everything, float32           |
| `ply-compressed` | `<name>.compressed.ply` | gsplat's exporter (PlayCanvas layout)   | 256-splat chunks, quantised * |
| `spz`            | `<name>.spz`            | ours, from Niantic's spec (`spz.py`)    | SH up to degree 3, quantised  |
| `splat`          | `<name>.splat`          | gsplat's exporter (antimatter15 layout) | no SH beyond the base colour  |

(*) Gaussians with opacity <= 1/255 are dropped.

gsplat's exporter is the maintained encoder of the compressed-PLY and .splat layouts (and a
dependency already); SPZ has no installable Python encoder (see ``spz.py``).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

from gsseg.errors import GssegError
from gsseg.export.spz import encode_spz
from gsseg.gaussians.ply import write_ply
from gsseg.gaussians.scene import GaussianScene
from gsseg.utils.atomic import atomic_path

SUFFIXES = {"ply": ".ply", "ply-compressed": ".compressed.ply", "spz": ".spz", "splat": ".splat"}
DEFAULT_FORMATS = ("ply",)
COMPRESSED_MIN_OPACITY = 1.0 / 255.0  # gsplat's compressed-PLY writer drops fainter Gaussians


def check_formats(formats: list[str] | tuple[str, ...] | None) -> list[str]:
    """The formats, de-duplicated in order (default ``["ply"]``); GssegError on an unknown name."""
    chosen = list(dict.fromkeys(formats or DEFAULT_FORMATS))
    unknown = [f for f in chosen if f not in SUFFIXES]
    if unknown:
        raise GssegError(f"--format {', '.join(unknown)}: unknown; choose from {', '.join(SUFFIXES)}")
    return chosen


def file_name(stem: str, fmt: str) -> str:
    return stem + SUFFIXES[fmt]


def kept_count(scene: GaussianScene, fmt: str) -> int:
    """How many Gaussians of ``scene`` a file of format ``fmt`` holds."""
    if fmt == "ply-compressed":
        return int((torch.sigmoid(scene.logit_opacities.detach()) > COMPRESSED_MIN_OPACITY).sum())
    return len(scene)


def write_splats(path: str | Path, scene: GaussianScene, fmt: str, extra: dict[str, np.ndarray] | None = None) -> int:
    """Write ``scene`` atomically as ``fmt`` at ``path``; returns the Gaussians written.

    Writes nothing and returns 0 when the file would hold no Gaussian (no empty files).
    extra: more vertex properties, ``ply`` only.
    """
    n = kept_count(scene, fmt)
    if n == 0:
        return 0
    if extra and fmt != "ply":
        raise ValueError(f"extra vertex properties are only written to ply, not {fmt}")
    if fmt == "ply":
        write_ply(path, scene, extra=extra)
        return n
    scene = scene.detach().to("cpu")
    if fmt == "spz":
        data = encode_spz(scene)
    else:
        from gsplat import export_splats

        data = export_splats(
            scene.means,
            scene.log_scales,
            scene.quats,
            scene.logit_opacities,
            scene.sh0,
            scene.shN,
            format="ply_compressed" if fmt == "ply-compressed" else "splat",
        )
    with atomic_path(path) as tmp:
        tmp.write_bytes(data)
    return n

"""Per-Gaussian display colours: scene colours or segment colours, selection tint, dimming,
isolating and hiding."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from gsseg.export.objects import segment_color
from gsseg.viewer.splats import pack_rgba

DISPLAY_MODES = ("highlight", "isolate selected", "hide selected")
UNASSIGNED_RGB = (0.55, 0.55, 0.55)


def id_colors(ids: np.ndarray) -> np.ndarray:
    """[K,3] float32 colours of segment / object ids [K] (> 0): the display colours ``gsseg export``
    records in segments.json, so the viewer and the manifest agree."""
    return np.array([segment_color(int(i)) for i in np.asarray(ids).reshape(-1)], np.float32).reshape(-1, 3) / 255.0


def segment_colors(labels: np.ndarray) -> np.ndarray:
    """[N,3] colours for per-Gaussian segment ``labels [N]`` (0 = unassigned, grey)."""
    labels = np.asarray(labels, np.int64)
    top = int(labels.max()) if labels.size else 0
    table = np.concatenate([np.array([UNASSIGNED_RGB], np.float32), id_colors(np.arange(1, top + 1))], axis=0)
    return table[labels]


@dataclass
class DisplayOptions:
    """mode: one of DISPLAY_MODES; tint: how much a selected Gaussian takes its object's colour;
    dim: brightness factor of unselected Gaussians while something is selected (highlight mode)."""

    mode: str = "highlight"
    tint: float = 0.6
    dim: float = 0.3

    def __post_init__(self) -> None:
        if self.mode not in DISPLAY_MODES:
            raise ValueError(f"display mode must be one of {DISPLAY_MODES}, got {self.mode!r}")


def compose_rgba(
    base_rgbs: np.ndarray,
    opacities: np.ndarray,
    owner: np.ndarray,
    object_colors: np.ndarray,
    options: DisplayOptions,
    anything_selected: bool | None = None,
) -> np.ndarray:
    """[N] uint32 packed RGBA for the browser.

    base_rgbs: [N,3] in [0,1]; opacities: [N]; owner: [N] int, the selected object owning each
    Gaussian or -1; object_colors: [K,3] colour of each object; anything_selected: whether the
    scene has a selection (default: whether ``owner`` has one; pass it when these N are a subset).
    """
    selected = owner >= 0
    if not (selected.any() if anything_selected is None else anything_selected):
        return pack_rgba(base_rgbs, opacities)
    rgbs = base_rgbs.copy()
    alpha = opacities.copy()
    if options.mode == "highlight":
        rgbs[~selected] *= options.dim
        tint = np.asarray(object_colors, np.float32)[owner[selected]]
        rgbs[selected] = (1.0 - options.tint) * rgbs[selected] + options.tint * tint
    elif options.mode == "isolate selected":
        alpha[~selected] = 0.0
    else:
        alpha[selected] = 0.0
    return pack_rgba(rgbs, alpha)

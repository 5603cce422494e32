"""The GT levels the official UFF scripts score.

UFF scores object ids and collection ids (label 0 never scored) and fg/bg = (collection > 0),
where both background and foreground are scored segments. gsseg applies the first rule to its
levels (part, object, group) and adds ``fgbg`` from the coarsest level (``group`` when present).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

FGBG = "fgbg"


@dataclass
class ScoredLevel:
    """One GT level of one view: ``labels [H,W]`` int and the ``background`` label that is never
    scored (None: every label is a segment, as for fg/bg)."""

    labels: np.ndarray
    background: int | None = 0


def fgbg_source(levels: list[str]) -> str | None:
    """The level whose non-zero pixels are the foreground: ``group`` if present, else the coarsest."""
    if not levels:
        return None
    return "group" if "group" in levels else levels[-1]


def official_levels(gts: dict[str, np.ndarray]) -> dict[str, ScoredLevel]:
    """{level: ScoredLevel} for the given GT maps (finest first) plus ``fgbg`` = (coarsest > 0)."""
    out = {name: ScoredLevel(np.asarray(gt), 0) for name, gt in gts.items()}
    src = fgbg_source(list(gts))
    if src is not None and FGBG not in out:
        out[FGBG] = ScoredLevel((np.asarray(gts[src]) > 0).astype(np.int64), None)
    return out

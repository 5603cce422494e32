"""The default click threshold, chosen from the distribution of a click's scores.

A click's per-Gaussian scores (:mod:`gsseg.segment.scores`) are high on what it touched and low
elsewhere, but where "high" ends depends on the features, the scene and the object: a constant
threshold selects the clicked part only on one scene and half the wall on another. The default
threshold is Otsu's (OpenCV, on the scores of the supervised Gaussians rescaled to 0..255),
taken again on the scores above it while the selection still holds more than
``MAX_OBJECT_SHARE`` of those Gaussians or lies in scattered pieces: the clicked object is the
high mode that stands apart from the rest of the scene, an object is never most of a scene (a
first split that keeps the floor or wall together with the object is refined until they fall
out), and it is one piece (specks on the wallpaper are not the fox).
"""

from __future__ import annotations

import numpy as np

MAX_OBJECT_SHARE = 0.5
MIN_CONNECTED_SHARE = 0.8
MAX_ROUNDS = 8
MIN_SPREAD = 1e-3


def otsu(values: np.ndarray) -> float | None:
    """Otsu's threshold of ``values [n]`` (cv2.THRESH_OTSU over their range in 256 levels), or
    None when they barely vary. A value >= the threshold is on the upper side."""
    import cv2

    lo, hi = float(values.min()), float(values.max())
    if hi - lo < MIN_SPREAD:
        return None
    q = np.round((values - lo) / (hi - lo) * 255.0).astype(np.uint8).reshape(1, -1)
    level, _ = cv2.threshold(q, 0, 255, cv2.THRESH_BINARY + cv2.THRESH_OTSU)
    # cv2 keeps q > level: the threshold lies between level and level + 1
    return lo + (float(level) + 0.5) / 255.0 * (hi - lo)


def connected_share(points: np.ndarray) -> float:
    """Share of ``points [n,3]`` in their largest spatial piece (the export's outlier rule)."""
    from gsseg.segment.outliers import object_inliers

    return float(object_inliers(points, keep_share=1.0).mean()) if len(points) else 1.0


def click_threshold(
    scores: np.ndarray, supervised: np.ndarray | None = None, means: np.ndarray | None = None
) -> float | None:
    """Default threshold for click ``scores [N]`` in [0,1] (see module doc); only the
    ``supervised [N] bool`` Gaussians count; with their centres ``means [N,3]`` a selection in
    scattered pieces (largest piece < ``MIN_CONNECTED_SHARE``) is refined too. None when the
    scores do not split (all alike)."""
    s = np.asarray(scores, np.float64)
    keep = np.ones(len(s), bool) if supervised is None else np.asarray(supervised, bool)
    s = s[keep]
    pts = None if means is None else np.asarray(means, np.float64)[keep]
    if s.size == 0:
        return None
    t = None
    pool = s
    for _ in range(MAX_ROUNDS):
        level = otsu(pool)
        if level is None:
            break
        t = level
        pool = pool[pool >= level]
        small = pool.size <= MAX_OBJECT_SHARE * s.size
        if small and (pts is None or connected_share(pts[s >= level]) >= MIN_CONNECTED_SHARE):
            break
    return t

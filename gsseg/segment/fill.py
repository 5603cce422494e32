"""Labels for the Gaussians the masks covered thinly, from their well-observed neighbours.

The scene hierarchy is built on the Gaussians the input masks supervised
(:func:`gsseg.features.coverage.supervised_gaussians`); the others (seen in the training views
but mostly where no mask lies, or too faintly) have untrained identity vectors. Left unassigned
they are lost to every cut and export, so each of them takes the label of a supervised
Gaussian next to it in space: among its ``k`` nearest supervised Gaussians (scipy ``cKDTree``
over the centres), the label of the finest cut with the largest inverse-distance vote wins, and
the nearest neighbour carrying it is its *donor*. Every cut copies the donor's label, so the
filled cuts stay nested. Gaussians no training view ever rendered (zero total weight) stay
unassigned: label 0 means "never seen".
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

FILL_NEIGHBOURS = 8


def seen_gaussians(coverage, num_gaussians: int) -> np.ndarray:
    """[N] bool: Gaussians some training view rendered (total weight > 0); all without a coverage record."""
    if coverage is None:
        return np.ones(num_gaussians, dtype=bool)
    cov = np.asarray(coverage.cpu() if hasattr(coverage, "cpu") else coverage, dtype=np.float64)
    return cov[:, 1] > 0


@dataclass
class Donors:
    """``targets [M]`` Gaussians to fill, each copying the label of Gaussian ``donors [M]``."""

    targets: np.ndarray
    donors: np.ndarray

    def __len__(self) -> int:
        return len(self.targets)

    def fill(self, labels: np.ndarray) -> np.ndarray:
        """Copy of ``labels [N]`` with every target given its donor's label."""
        out = np.asarray(labels, np.int32).copy()
        out[self.targets] = out[self.donors]
        return out


def choose_donors(means: np.ndarray, fine_labels: np.ndarray, fillable: np.ndarray, k: int = FILL_NEIGHBOURS) -> Donors:
    """Donors of the Gaussians ``fillable [N] bool`` that ``fine_labels [N]`` leaves at 0, among
    the labelled ones, with centres ``means [N,3]`` (see module doc)."""
    from scipy.spatial import cKDTree

    labels = np.asarray(fine_labels, np.int64)
    pool = np.flatnonzero(labels > 0)
    targets = np.flatnonzero((labels == 0) & np.asarray(fillable, bool))
    if len(pool) == 0 or len(targets) == 0:
        return Donors(np.zeros(0, np.int64), np.zeros(0, np.int64))
    pts = np.asarray(means, np.float64)
    k = min(k, len(pool))
    dist, near = cKDTree(pts[pool]).query(pts[targets], k=k)
    dist, near = dist.reshape(len(targets), k), near.reshape(len(targets), k)
    cand = labels[pool[near]]  # [M,k], nearest first
    weight = 1.0 / np.maximum(dist, 1e-12)
    # inverse-distance vote per (target, label): sum the weights of equal labels in each row
    votes = np.zeros_like(weight)
    for j in range(k):
        votes[:, j] = (weight * (cand == cand[:, j : j + 1])).sum(1)
    winner = votes.argmax(1)  # the first (nearest) column holding the winning label
    donors = pool[near[np.arange(len(targets)), winner]]
    return Donors(targets, donors)

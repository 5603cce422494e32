"""Small regions of a cut are merged, never left unassigned, and cuts stay nested."""

import numpy as np
import torch

from gsseg.segment.hierarchy import hierarchy_from_features


def _nested(fine: np.ndarray, coarse: np.ndarray) -> bool:
    """Every fine segment lies inside one coarse segment."""
    pairs = np.unique(np.stack([fine, coarse], 1), axis=0)
    return len(np.unique(pairs[:, 0])) == len(pairs)


def test_merge_assigns_every_gaussian_and_keeps_nesting():
    g = torch.Generator().manual_seed(0)
    n = 3000
    means = torch.rand(n, 3, generator=g)
    # noisy features: single linkage fragments them into many small regions at low thresholds
    centres = torch.nn.functional.normalize(torch.randn(6, 8, generator=g), dim=1)
    feats = centres[torch.randint(0, 6, (n,), generator=g)] + 0.6 * torch.randn(n, 8, generator=g)
    h = hierarchy_from_features(means, feats, "embedding", k=8, min_size=60, small="merge")
    dropped = hierarchy_from_features(means, feats, "embedding", k=8, min_size=60, small="drop")
    thresholds = [0.02, 0.05, 0.1, 0.2, 0.4]
    cuts = [h.cut_threshold(t) for t in thresholds]
    some_small = False
    for t, labels in zip(thresholds, cuts):
        assert (labels > 0).all(), f"unassigned Gaussians at threshold {t}"
        sizes = np.bincount(labels)[1:]
        assert sizes.min() > 0
        some_small |= bool((dropped.cut_threshold(t) == 0).any())
    assert some_small  # the scenario really has small regions to merge
    for fine, coarse in zip(cuts[:-1], cuts[1:]):
        assert _nested(fine, coarse)

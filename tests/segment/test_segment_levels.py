"""Cuts that span part -> object -> group: small segments merged into the spatial neighbour they
share the most boundary with (nested across cuts), a minimum size relative to the scene, and
automatic levels whose coarsest cut separates the main objects."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from gsseg.segment import SegmentRequest, SegmentsDir, segment_run
from gsseg.segment.hierarchy import SceneHierarchy, hierarchy_from_features
from gsseg.segment.merge import SpatialAdjacency, merge_small, renumber, segment_min_size
from tests.helpers.segment_fixtures import build_tiny_run


def grid(nx: int, ny: int) -> np.ndarray:
    x, y = np.meshgrid(np.arange(nx, dtype=float), np.arange(ny, dtype=float), indexing="ij")
    return np.stack([x.ravel(), y.ravel(), np.zeros(nx * ny)], 1)


def test_small_segment_joins_the_neighbour_with_the_longest_boundary():
    pts = grid(40, 20)
    x, y = pts[:, 0], pts[:, 1]
    labels = np.where(x < 20, 1, 2)
    labels[(x >= 20) & (x < 23) & (y < 3)] = 3  # 9 points, 3 rows touching 1, more touching 2
    labels[(x >= 38) & (y >= 18)] = 4  # a corner of 4 points inside 2
    out = merge_small(labels, SpatialAdjacency(pts), min_size=20)
    assert len(np.unique(out)) == 2
    assert (out[labels == 3] == out[labels == 2][0]).all() and (out[labels == 4] == out[labels == 2][0]).all()
    assert out[labels == 1][0] != out[labels == 2][0]
    # a detached clump with no graph edge to the rest joins the segment whose centre is nearest
    far = np.array([[100.0, 0, 0], [100.5, 0, 0], [101, 0, 0]])
    pts2 = np.concatenate([pts, far])
    adj = SpatialAdjacency(pts2, k=2)
    out2 = merge_small(np.concatenate([labels, [5, 5, 5]]), adj, min_size=6)
    assert out2[-1] == out2[np.flatnonzero(labels == 2)[0]]


def test_confetti_is_merged_within_the_coarser_segment():
    rng = np.random.default_rng(0)
    pts = rng.random((4000, 3))
    coarse = np.where(pts[:, 0] < 0.5, 1, 2)
    fine = rng.integers(1, 600, size=4000) + 1000 * coarse  # ~600 fragments of ~7 points per side
    merged_coarse = merge_small(coarse, SpatialAdjacency(pts), 40)
    out = merge_small(fine, SpatialAdjacency(pts), 40, parents=merged_coarse)
    sizes = np.bincount(out)[1:]
    assert sizes.min() >= 40 and len(sizes) <= 100
    for s in np.unique(out):  # nested: no merged segment crosses the coarse split
        assert len(np.unique(coarse[out == s])) == 1
    np.testing.assert_array_equal(renumber(np.array([0, 7, 7, 3])), [0, 1, 1, 2])
    assert segment_min_size(100) == 10 and segment_min_size(1_000_000) == 2000


def test_coarsest_auto_level_has_more_than_two_segments():
    """Four clusters: two merge early, a third later, so '2 segments' is the longest plateau."""
    rng = np.random.default_rng(1)
    lab = np.repeat([0, 1, 2, 3], 150)
    e = np.eye(8)[:4].copy()
    e[1] = np.cos(0.35) * e[0] + np.sin(0.35) * e[1]
    e[2] = np.cos(0.6) * e[0] + np.sin(0.6) * e[2]
    f = e[lab] + rng.normal(0, 0.01, (len(lab), 8))
    means = torch.tensor(rng.random((len(lab), 3)), dtype=torch.float32)
    h = hierarchy_from_features(means, torch.tensor(f, dtype=torch.float32), "embedding", min_size=10)
    assert isinstance(h, SceneHierarchy)
    plats = [p for p in h.plateaus() if p.regions >= 2]
    assert max(plats, key=lambda p: p.length).regions == 2  # what the old rule picked as the coarsest
    autos = h.auto_thresholds(levels=3)
    counts = [len(np.unique(h.cut_threshold(t))) for t in autos]
    assert counts[0] >= 3 and counts == sorted(counts)


@pytest.fixture(scope="module")
def levels_run(tmp_path_factory):
    run = build_tiny_run(tmp_path_factory.mktemp("levels"), "embedding")
    segment_run(run, SegmentRequest(auto=True, thresholds=[0.02], views="test", show_progress=False), device="cpu")
    return run


def test_auto_levels_span_group_object_part(levels_run):
    seg = SegmentsDir(levels_run)
    objects = np.load(levels_run / "gt_object.npy")
    n = len(objects)
    counts = [seg.entry(f"auto{i}")["segments"] for i in range(3)]
    assert counts[0] >= 3 and counts[0] < counts[1] < counts[2]
    min_size = seg.entry("auto0")["hierarchy"]["min_size"]
    assert min_size == segment_min_size(n)
    for name in ("auto0", "auto1", "auto2", "t0.020"):
        labels = seg.labels(name, n)
        assert np.bincount(labels)[1:].min() >= min_size, name  # no confetti
        assert (labels > 0).all()
    # the object level: every segment is one GT object, every big GT object is one segment
    mid = seg.labels("auto1", n)
    assert all(len(np.unique(objects[mid == s])) == 1 for s in np.unique(mid))
    for o in np.unique(objects):
        if (objects == o).sum() >= 2 * min_size:
            assert np.bincount(mid[objects == o]).max() >= 0.9 * (objects == o).sum()
    # the raw fine cut at 0.02 has fragments below the minimum; the written one has none
    fine = seg.labels("t0.020", n)
    assert seg.entry("t0.020")["parent"] == "auto2" and len(np.unique(fine)) <= n // min_size

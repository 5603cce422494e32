"""A click's default threshold comes from its score distribution (recursive Otsu), not a constant."""

from __future__ import annotations

import numpy as np
import pytest

from gsseg.segment import SegmentRequest, SegmentsDir, load_context, segment_run
from gsseg.segment.threshold import click_threshold, otsu
from tests.helpers.segment_fixtures import build_tiny_run, center_click


def test_otsu_splits_two_modes():
    rng = np.random.default_rng(0)
    v = np.concatenate([rng.normal(0.3, 0.02, 500), rng.normal(0.8, 0.02, 100)])
    t = otsu(v)
    assert (v[500:] >= t).all() and (v[:500] >= t).mean() < 0.01
    assert otsu(np.full(10, 0.5)) is None


def test_threshold_refines_until_the_object_stands_alone():
    rng = np.random.default_rng(1)
    # object (10 %) at 0.95, the wall it sits on (60 %) at 0.7, the rest at 0.4: the first split
    # keeps object + wall (70 % of the scene), the second the object alone
    s = np.concatenate([rng.normal(0.95, 0.01, 100), rng.normal(0.7, 0.02, 600), rng.normal(0.4, 0.03, 300)])
    t = click_threshold(s)
    assert 0.75 < t < 0.93
    # unsupervised Gaussians do not count
    sup = np.ones(len(s), bool)
    sup[100:700] = False
    assert click_threshold(s, sup) < 0.7
    # specks far away that score like the object's surroundings: the selection is refined to one piece
    pts = np.concatenate([rng.normal(0, 0.05, (100, 3)), rng.uniform(-20, 20, (900, 3))])
    s2 = np.concatenate([rng.normal(0.95, 0.01, 100), rng.normal(0.8, 0.01, 150), rng.normal(0.3, 0.03, 750)])
    assert click_threshold(s2) < 0.8  # scores alone: object + specks (25 %) pass
    assert 0.82 < click_threshold(s2, means=pts) < 0.94
    assert click_threshold(np.full(20, 0.7)) is None


@pytest.fixture(scope="module")
def click_run(tmp_path_factory):
    return build_tiny_run(tmp_path_factory.mktemp("clickthr"), "embedding")


@pytest.mark.parametrize("part", [1, 17])
def test_one_click_gives_the_object(click_run, part):
    """On the nested GT scene a click inside a part selects its whole object (GT object IoU)."""
    ctx = load_context(click_run, "cpu")
    click, _ = center_click(ctx.dataset, "test_001", part)
    summary = segment_run(click_run, SegmentRequest(clicks=[click], views="test", show_progress=False), device="cpu")
    cut = summary["cuts"][0]
    assert cut["name"] == "click" and cut["threshold"] is None and cut["value"] != 0.85
    objects, parts = np.load(click_run / "gt_object.npy"), np.load(click_run / "gt_part.npy")
    obj = np.bincount(objects[parts == part]).argmax()
    sel = SegmentsDir(click_run).labels("click", len(objects)) > 0
    iou = (sel & (objects == obj)).sum() / (sel | (objects == obj)).sum()
    assert iou >= 0.95

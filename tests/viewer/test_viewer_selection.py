"""Viewer selection state and display colours (no server, no browser)."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from gsseg.errors import GssegError
from gsseg.viewer.display import DisplayOptions, compose_rgba, segment_colors
from gsseg.viewer.selection import ClickRecord, FeatureScorer, SegmentScorer, Selection
from gsseg.viewer.splats import SplatData, pack_rgba, with_rgba


def rgba_bytes(packed: np.ndarray) -> np.ndarray:
    return packed.view(np.uint8).reshape(-1, 4)


def test_objects_threshold_negative_undo_clear():
    n = 6
    a = np.array([0.9, 0.8, 0.3, 0.1, 0.0, 0.95], np.float32)
    b = np.array([0.1, 0.2, 0.9, 0.95, 0.1, 0.0], np.float32)
    neg = np.array([0.0, 0.99, 0.0, 0.0, 0.0, 0.0], np.float32)
    sel = Selection(n, threshold=0.7)
    with pytest.raises(GssegError, match="negative click"):
        sel.add_click(ClickRecord(0, False, neg))
    sel.add_click(ClickRecord(0, True, a))
    assert sel.owner().tolist() == [0, 0, -1, -1, -1, 0]
    sel.add_click(ClickRecord(1, False, neg))  # removes Gaussian 1 (closer to the negative)
    assert sel.owner().tolist() == [0, -1, -1, -1, -1, 0]
    assert sel.new_object() is True
    assert sel.new_object() is False  # the new object is still empty
    sel.add_click(ClickRecord(3, True, b))
    assert sel.owner().tolist() == [0, -1, 1, 1, -1, 0]
    assert sel.counts() == [2, 2]
    assert not np.allclose(sel.colors()[0], sel.colors()[1])
    sel.set_threshold(0.85)
    assert sel.owner().tolist() == [0, -1, 1, 1, -1, 0]
    sel.set_threshold(0.92)
    assert sel.owner().tolist() == [-1, -1, -1, 1, -1, 0]
    sel.set_threshold(0.7)
    assert sel.undo() and sel.counts() == [2, 0]  # the click on b is gone, its object is empty
    assert sel.undo() and len(sel.objects) == 1  # the new object is gone
    assert sel.undo() and sel.owner().tolist() == [0, 0, -1, -1, -1, 0]  # the negative click is gone
    assert sel.clear() and not sel.selected().any()
    assert sel.undo() and sel.selected().sum() == 3  # clear is undoable
    assert sel.undo() and sel.undo() is False and not sel.objects


def test_overlapping_objects_go_to_the_higher_score():
    sel = Selection(3, threshold=0.5)
    sel.add_click(ClickRecord(0, True, np.array([0.9, 0.6, 0.0], np.float32)))
    sel.new_object()
    sel.add_click(ClickRecord(2, True, np.array([0.0, 0.8, 0.9], np.float32)))
    assert sel.owner().tolist() == [0, 1, 1]


def test_feature_scorer_matches_segment_scores():
    from gsseg.segment.scores import feature_space, similarity

    g = torch.Generator().manual_seed(0)
    feats = torch.randn(50, 4, generator=g)
    ids, w = np.array([3, 7]), np.array([0.6, 0.2], np.float32)
    emb = FeatureScorer(feats, "embedding")
    q = torch.nn.functional.normalize(0.75 * feats[3] + 0.25 * feats[7], dim=0)
    np.testing.assert_allclose(
        emb.scores(ids, w), similarity(feature_space(feats, "embedding"), q, "embedding").numpy(), atol=1e-6
    )
    logits = FeatureScorer(feats, "logits")
    probs = torch.softmax(feats, dim=1)
    cls = int(torch.argmax(0.75 * feats[3] + 0.25 * feats[7]))
    np.testing.assert_allclose(logits.scores(ids, w), probs[:, cls].numpy(), atol=1e-6)
    seg = SegmentScorer(np.array([0, 2, 2, 1]))
    assert seg.scores(1).tolist() == [0, 1, 1, 0] and seg.scores(0).tolist() == [0, 0, 0, 0]


def test_compose_rgba_highlight_isolate_hide():
    base = np.array([[0.2, 0.4, 0.6], [1.0, 1.0, 1.0], [0.5, 0.5, 0.5]], np.float32)
    op = np.array([0.8, 0.9, 1.0], np.float32)
    owner = np.array([0, -1, -1])
    colors = np.array([[1.0, 0.0, 0.0]], np.float32)
    none = rgba_bytes(compose_rgba(base, op, np.full(3, -1), colors, DisplayOptions()))
    np.testing.assert_array_equal(none, rgba_bytes(pack_rgba(base, op)))
    hl = rgba_bytes(compose_rgba(base, op, owner, colors, DisplayOptions("highlight", tint=0.5, dim=0.3)))
    np.testing.assert_array_equal(hl[0], [153, 51, 77, 204])  # half way to red
    np.testing.assert_array_equal(hl[1], [77, 77, 77, 230])  # dimmed
    iso = rgba_bytes(compose_rgba(base, op, owner, colors, DisplayOptions("isolate selected")))
    assert iso[:, 3].tolist() == [204, 0, 0]
    hide = rgba_bytes(compose_rgba(base, op, owner, colors, DisplayOptions("hide selected")))
    assert hide[:, 3].tolist() == [0, 230, 255]
    with pytest.raises(ValueError):
        DisplayOptions("sparkle")


def test_segment_colours_are_per_segment_and_grey_for_unassigned():
    c = segment_colors(np.array([0, 1, 2, 1, 0]))
    np.testing.assert_allclose(c[0], c[4])
    np.testing.assert_allclose(c[1], c[3])
    assert not np.allclose(c[1], c[2]) and not np.allclose(c[0], c[1])
    assert np.allclose(c[0], c[0].mean())


def test_splat_buffer_round_trips_through_viser_layout():
    from gsseg.gaussians.scene import GaussianScene

    g = torch.Generator().manual_seed(1)
    n = 20
    scene = GaussianScene(
        torch.randn(n, 3, generator=g),
        torch.randn(n, 3, generator=g) * 0.3 - 2,
        torch.randn(n, 4, generator=g),
        torch.randn(n, generator=g),
        torch.randn(n, 1, 3, generator=g),
        torch.zeros(n, 0, 3),
    )
    data = SplatData.from_scene(scene)
    buf = data.base_buffer()
    np.testing.assert_array_equal(buf[:, 0:3].view(np.float32), data.centers)
    tri = buf[:, 4:7].view(np.float16).astype(np.float32)
    np.testing.assert_allclose(tri[:, [0, 3, 5]], data.covariances[:, [0, 1, 2], [0, 1, 2]], rtol=2e-3)
    np.testing.assert_allclose(rgba_bytes(buf[:, 7].copy())[:, 3] / 255.0, data.opacities, atol=1 / 255)
    assert np.all(np.linalg.eigvalsh(data.covariances.astype(np.float64)) > 0)
    new = with_rgba(buf, np.zeros(n, np.uint32))
    assert (new[:, 7] == 0).all() and (buf[:, 7] != 0).any() and (new[:, :7] == buf[:, :7]).all()


def test_feature_scorer_leaves_unsupervised_gaussians_out():
    feats = torch.tensor([[1.0, 0.0], [1.0, 0.0], [0.0, 1.0], [1.0, 0.0]])
    sup = np.array([True, True, True, False])
    scorer = FeatureScorer(feats, "embedding", sup)
    # the ray hits an unsupervised Gaussian (3) in front of a supervised one (2): 2 makes the query
    s = scorer.scores(np.array([3, 2]), np.array([0.7, 0.3], np.float32))
    assert s[2] == pytest.approx(1.0) and s[0] == pytest.approx(0.5) and s[3] == 0.0
    # a ray of unsupervised Gaussians only still makes a query (from them)
    s = scorer.scores(np.array([3]), np.array([1.0], np.float32))
    assert s[0] == pytest.approx(1.0) and s[3] == 0.0

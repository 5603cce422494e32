"""Segment metrics against hand-computed values on tiny label maps."""

import numpy as np
import pytest

from gsseg.eval.metrics import (
    ObjectScore,
    best_threshold_iou,
    consistency_per_segment,
    covering_from_masks,
    covering_per_segment,
    depth_warp,
    hierarchical_query,
    interior_pixel,
    masks_score_map,
    mean_object_scores,
    normalized_covering,
    object_score,
    panoptic_quality_scene,
    query_pairs,
    segmentation_injectivity,
    view_consistency,
)

# 4x4: label 1 on the left half (8 px), label 2 on the right half (8 px)
GT = np.array([[1, 1, 2, 2]] * 4)
MERGE = np.full((4, 4), 5)
SPLIT = np.array([[1, 1, 2, 2]] * 2 + [[3, 3, 2, 2]] * 2)  # label 1 cut into two halves of 4 px
KW = dict(min_size=1, background=None)


# --- normalized covering ------------------------------------------------------------------


def test_nc_perfect_prediction_is_one_with_other_ids():
    assert normalized_covering(GT, GT + 10, **KW) == 1.0
    assert normalized_covering(GT, GT + 10, dense=True, **KW) == 1.0


def test_nc_merge_and_split_values():
    assert normalized_covering(GT, MERGE, **KW) == pytest.approx(0.5)  # IoU 8/16 for both
    per = covering_per_segment(GT, SPLIT, **KW)
    assert per == {1: pytest.approx(0.5), 2: pytest.approx(1.0)}
    assert normalized_covering(GT, SPLIT, dense=True, **KW) == pytest.approx(0.75)


def test_nc_takes_the_best_cut_per_sample():
    assert normalized_covering(GT, np.stack([SPLIT, GT]), **KW) == 1.0
    assert normalized_covering(GT, np.stack([MERGE, SPLIT]), **KW) == pytest.approx(0.75)


def test_nc_sampled_differs_from_dense_when_a_segment_is_split_unevenly():
    pred = np.array([[1, 1, 2, 2]] * 3 + [[3, 3, 2, 2]])  # label 1: 6 px + 2 px
    # sampled: 3/4 of the samples land in IoU 6/8, 1/4 in IoU 2/8 -> expectation 0.625
    sampled = covering_per_segment(GT, pred, samples=20000, seed=3, **KW)[1]
    assert sampled == pytest.approx(0.625, abs=0.01)
    assert covering_per_segment(GT, pred, dense=True, **KW)[1] == pytest.approx(0.75)
    again = covering_per_segment(GT, pred, samples=20000, seed=3, **KW)[1]
    assert again == sampled


def test_nc_unassigned_counted_or_excluded():
    pred = np.where(GT == 1, 0, 7)  # segment 1 exactly covered by the unassigned label
    assert normalized_covering(GT, pred, unassigned=0, count_unassigned=True, **KW) == 1.0
    assert normalized_covering(GT, pred, unassigned=0, count_unassigned=False, **KW) == pytest.approx(0.5)


def test_nc_skips_background_and_small_segments():
    gt = GT.copy()
    gt[0, 0] = 0
    gt[3, 3] = 9  # a 1-pixel segment
    per = covering_per_segment(gt, gt, min_size=2, background=0)
    assert sorted(per) == [1, 2]
    assert np.isnan(normalized_covering(np.zeros((4, 4), int), GT))


def test_nc_rejects_wrong_size():
    with pytest.raises(ValueError):
        normalized_covering(GT, np.zeros((3, 4), int), **KW)


def test_covering_from_overlapping_masks():
    patch_index = GT.copy() - 1  # patch 0 = left, patch 1 = right
    membership = np.array([[True, False], [True, True]])  # mask A = left half, mask B = whole image
    per = covering_from_masks(GT, patch_index, membership, **KW)
    assert per == {1: pytest.approx(1.0), 2: pytest.approx(0.5)}
    # no mask on the right half: the uncovered region is a segment (as coded) or scores 0
    only_a = np.array([[True, False]])
    assert covering_from_masks(GT, patch_index, only_a, **KW)[2] == pytest.approx(1.0)
    assert covering_from_masks(GT, patch_index, only_a, count_unassigned=False, **KW)[2] == 0.0


# --- segmentation injectivity -------------------------------------------------------------


def test_si_perfect_and_merge_are_one():
    assert segmentation_injectivity(GT, GT, **KW) == 1.0
    assert segmentation_injectivity(GT, MERGE, **KW) == 1.0  # merging never splits an object


def test_si_split_scores_the_chance_of_a_same_half_pair():
    si = segmentation_injectivity(GT, SPLIT, samples=20000, seed=1, **KW)
    assert si == pytest.approx((0.5 + 1.0) / 2, abs=0.01)
    assert segmentation_injectivity(GT, np.stack([SPLIT, GT]), **KW) == 1.0  # the best cut is used


# --- view consistency ---------------------------------------------------------------------


def _shifted_pair():
    """Two cameras over a plane at z = 2 whose warp is an exact shift of 2 pixels to the left."""
    K = np.array([[10.0, 0, 4.0], [0, 10.0, 2.0], [0, 0, 1]])
    v1 = np.eye(4)
    v2 = np.eye(4)
    v2[0, 3] = -0.4  # camera moved +0.4 in x: u' = u - 10 * 0.4 / 2
    depth = np.full((4, 8), 2.0)
    return K, v1, v2, depth


def test_depth_warp_shift_and_occlusion():
    K, v1, v2, depth = _shifted_pair()
    warp = depth_warp(depth, K, v1, depth, K, v2)
    cols = np.arange(8)
    expected_row0 = np.where(cols >= 2, cols - 2, -1)
    np.testing.assert_array_equal(warp[0], expected_row0)
    np.testing.assert_array_equal(warp[3, 2:], 3 * 8 + cols[2:] - 2)
    occluded = depth.copy()
    occluded[:, 0] = 1.0  # something closer in front of view-2 column 0
    assert (depth_warp(depth, K, v1, occluded, K, v2)[:, 2] == -1).all()
    assert (depth_warp(depth, K, v1, depth, K, np.eye(4)) == np.arange(32).reshape(4, 8)).all()


def test_vc_of_ground_truth_is_one_and_merge_is_not():
    K, v1, v2, depth = _shifted_pair()
    gt1 = np.array([[1] * 4 + [2] * 4] * 4)
    gt2 = np.array([[1] * 2 + [2] * 4 + [3] * 2] * 4)  # what view 2 sees (columns 6-7 unseen in view 1)
    warp = depth_warp(depth, K, v1, depth, K, v2)
    assert view_consistency(gt1, gt1, gt2, warp, **KW) == 1.0
    assert view_consistency(gt1, gt1, gt2 + 40, warp, **KW) == 1.0  # ids need not agree across views
    merged2 = np.where(gt2 < 3, 9, 3)
    # V = view-1 columns 2..7; seg 1: |A1| = 8, A2 = all of V (24) -> 1/3; seg 2: 16/24
    assert view_consistency(gt1, gt1, merged2, warp, **KW) == pytest.approx((1 / 3 + 2 / 3) / 2)


def test_vc_skips_unassigned_partner_labels():
    K, v1, v2, depth = _shifted_pair()
    gt1 = np.array([[1] * 4 + [2] * 4] * 4)
    warp = depth_warp(depth, K, v1, depth, K, v2)
    partner = np.array([[0] * 2 + [2] * 4 + [3] * 2] * 4)  # segment 1 unassigned in view 2
    per = consistency_per_segment(gt1, gt1, partner, warp, **KW)
    assert per == {2: 1.0}


# --- point query --------------------------------------------------------------------------


def test_best_threshold_iou_exact():
    mask = np.zeros((4, 4), bool)
    mask[:2, :2] = True
    assert best_threshold_iou(mask.astype(float), mask)[0] == 1.0
    score = mask * 0.9
    score[3, 3] = 0.95  # one wrong pixel scores higher than the mask
    iou, thr = best_threshold_iou(score, mask)
    assert iou == pytest.approx(4 / 5) and thr == pytest.approx(0.9)
    assert best_threshold_iou(np.ones((4, 4)), mask)[0] == pytest.approx(4 / 16)  # one threshold only
    assert best_threshold_iou(score, np.zeros((4, 4), bool))[0] == 0.0


def test_hierarchical_query_two_levels():
    part = np.zeros((6, 6), bool)
    part[1:3, 1:3] = True
    obj = np.zeros((6, 6), bool)
    obj[1:5, 1:5] = True
    score = np.where(part, 0.9, np.where(obj, 0.6, 0.1))
    assert hierarchical_query(score, part, obj) == (1.0, 1.0)
    flat = np.where(obj, 0.8, 0.1)  # the part cannot be separated from its object
    l1, l2 = hierarchical_query(flat, part, obj)
    assert l1 == pytest.approx(4 / 16) and l2 == 1.0


def test_query_pairs_and_interior_pixel():
    part = np.zeros((8, 8), int)
    obj = np.zeros((8, 8), int)
    obj[0:5, 0:8] = 1
    part[0:5, 0:4] = 1
    part[0:5, 4:8] = 2
    obj[6:8, 0:8] = 2
    part[6:8, 0:8] = 3  # single-part object: both levels equal -> no pair
    pairs = query_pairs(part, obj, min_size=4)
    assert [(p.part, p.obj) for p in pairs] == [(1, 1), (2, 1)]
    assert part[pairs[0].y, pairs[0].x] == 1 and part[pairs[1].y, pairs[1].x] == 2
    block = np.zeros((5, 5), bool)
    block[1:4, 1:4] = True
    assert interior_pixel(block) == (2, 2)


def test_masks_score_map_nested():
    patch_index = np.array([[0, 1, 2, 2]])
    membership = np.array([[True, False, False], [True, True, False]])  # small ⊂ big
    s = masks_score_map(patch_index, membership, 0, 0)
    np.testing.assert_allclose(s, [[1.0, 0.5, 0.0, 0.0]])
    assert (masks_score_map(patch_index, membership, 0, 3) == 0).all()


# --- prompted objects ---------------------------------------------------------------------


def test_prompted_micro_iou_and_accuracy():
    gt1 = np.zeros((4, 4), bool)
    gt1[:2, :2] = True
    gt2 = gt1.copy()
    pred2 = gt1.copy()
    pred2[2:, 2:] = True  # 4 false positives in view 2
    s = object_score([gt1, pred2], [gt1, gt2])
    assert (s.intersection, s.union) == (8, 12)
    assert s.iou == pytest.approx(8 / 12)  # micro: not the mean of 1 and 0.5
    assert s.acc == pytest.approx(28 / 32)
    perfect = object_score([gt1], [gt1])
    assert mean_object_scores([s, perfect]) == (pytest.approx((8 / 12 + 1) / 2), pytest.approx((28 / 32 + 1) / 2))
    assert ObjectScore().iou == 1.0


# --- panoptic -----------------------------------------------------------------------------


def test_pq_perfect_merge_split():
    r = panoptic_quality_scene([GT], [GT + 3], void=None)
    assert (r.pq, r.sq, r.rq, r.miou) == (1.0, 1.0, 1.0, 1.0)
    r = panoptic_quality_scene([GT], [MERGE], void=None)
    assert (r.tp, r.fp, r.fn, r.pq) == (0, 1, 2, 0.0)
    assert r.miou == pytest.approx(0.25)
    uneven = np.array([[1, 1, 2, 2]] * 3 + [[3, 3, 2, 2]])
    r = panoptic_quality_scene([GT], [uneven], void=None)
    assert (r.tp, r.fp, r.fn) == (2, 1, 0)
    assert r.pq == pytest.approx((0.75 + 1.0) / 2.5)
    assert r.rq == pytest.approx(2 / 2.5) and r.sq == pytest.approx(0.875)


def test_pq_scene_unions_views_and_handles_void():
    gt_a = np.array([[1, 1, 0, 0]])
    gt_b = np.array([[0, 0, 1, 1]])
    # one identity seen in two views; the prediction spills onto one void pixel in view b
    pred_a = np.array([[4, 4, 0, 0]])
    pred_b = np.array([[4, 4, 4, 4]])
    r = panoptic_quality_scene([gt_a, gt_b], [pred_a, pred_b], void=0)
    assert r.tp == 1 and r.fp == 0 and r.fn == 0
    assert r.pq == pytest.approx(4 / 4)  # void pixels are removed from the predicted segment
    on_void = np.array([[4, 4, 8, 8]])  # segment 8 lies only on void: no false positive
    r = panoptic_quality_scene([gt_a, gt_a], [pred_a, on_void], void=0)
    assert (r.tp, r.fp) == (1, 0)
    # per-view ids that are not consistent across views break the scene-level segment
    r = panoptic_quality_scene([gt_a, gt_b], [pred_a, np.array([[0, 0, 5, 5]])], void=0)
    assert r.tp == 0 and r.fp == 2 and r.fn == 1


def test_pixel_cuts_of_a_feature_map():
    from gsseg.eval.pixel_cuts import pixel_cut_stack

    f = np.zeros((4, 6, 2))
    f[:, :3, 0] = 1.0  # left: direction (1, 0); right: (0.1, 1) -> distance 1.3 after normalising
    f[:, 3:, 1] = 1.0
    f[:, 3:, 0] = 0.1
    alpha = np.ones((4, 6))
    alpha[0, 0] = 0.2
    fine, coarse = pixel_cut_stack(f, alpha, thresholds=(0.05, 1.5))
    assert fine[0, 0] == 0  # low alpha: unassigned
    assert len(np.unique(fine[:, :3][fine[:, :3] > 0])) == 1 and len(np.unique(fine[:, 3:])) == 1
    assert fine[1, 0] != fine[1, 5]
    assert set(np.unique(coarse)) == {0, 1}
    capped = pixel_cut_stack(f, alpha, thresholds=(0.05,), max_segments=1)[0]
    assert set(np.unique(capped)) == {0, 1} and (capped[:, :3] == 0).all()  # the smaller segment loses its id

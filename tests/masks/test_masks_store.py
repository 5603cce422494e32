"""Mask store round trip and derived quantities against brute-force definitions."""

from __future__ import annotations

import numpy as np
import pytest

from gsseg.errors import GssegError
from gsseg.masks import MaskStore, ViewMasks, summarize
from gsseg.masks.derive import correlation, inclusion_tree, nest_masks, patch_counts
from gsseg.masks.patches import compact_patches, patches_from_label_maps, patches_from_masks


def random_masks(rng: np.random.Generator, m: int = 24, h: int = 40, w: int = 56) -> np.ndarray:
    """Rectangles, near-copies (a few pixels removed) and unions: many (near-)inclusions."""
    masks = []
    while len(masks) < m:
        kind = rng.integers(3) if masks else 0
        if kind == 0:
            y0, x0 = rng.integers(0, h - 4), rng.integers(0, w - 4)
            mask = np.zeros((h, w), dtype=bool)
            mask[y0 : y0 + rng.integers(2, h), x0 : x0 + rng.integers(2, w)] = True
        elif kind == 1:
            mask = masks[rng.integers(len(masks))].copy()
            ys, xs = np.nonzero(mask)
            drop = rng.choice(len(ys), size=min(len(ys) - 1, rng.integers(1, 8)), replace=False)
            mask[ys[drop], xs[drop]] = False
        else:
            a, b = rng.choice(len(masks), size=2)
            mask = masks[a] | masks[b]
        masks.append(mask)
    return np.stack(masks)


def brute_inside(masks: np.ndarray, p_in: float = 0.95, p_iou: float = 0.9) -> np.ndarray:
    m = len(masks)
    inside = np.zeros((m, m), dtype=bool)
    for i in range(m):
        for j in range(m):
            if i == j:
                continue
            inter = np.logical_and(masks[i], masks[j]).sum()
            union = np.logical_or(masks[i], masks[j]).sum()
            area = masks[i].sum()
            inside[i, j] = area > 0 and inter / area > p_in and inter / union < p_iou
    return inside


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_round_trip_is_bit_exact(tmp_path, seed):
    rng = np.random.default_rng(seed)
    masks = random_masks(rng, m=70)  # > 64 masks: several membership bytes per patch
    scores = rng.random(len(masks)).astype(np.float32)
    vm = ViewMasks.from_masks(masks, scores, "test", info={"k": seed})
    assert np.array_equal(vm.masks(), masks)
    assert np.array_equal(vm.areas, masks.sum(axis=(1, 2)))
    store = MaskStore(tmp_path / "masks")
    store.save("view_a", vm)
    back = store.load("view_a")
    assert np.array_equal(back.masks(), masks)
    assert np.array_equal(back.patch_index, vm.patch_index) and back.patch_index.dtype == np.int32
    assert np.array_equal(back.membership, vm.membership)
    assert np.array_equal(back.scores, scores)
    assert np.array_equal(back.areas, vm.areas)
    assert back.source == "test" and back.info == {"k": seed}
    assert back.no_mask_patch == vm.no_mask_patch
    assert back.image_size == (40, 56)
    assert store.views() == ["view_a"]


def test_no_mask_patch_is_explicit():
    full = np.ones((1, 6, 7), dtype=bool)
    full_vm = ViewMasks.from_masks(np.concatenate([full, full[:, :, :]]))
    assert full_vm.no_mask_patch is None  # every pixel is covered: patch 0 is a real patch
    part = np.zeros((2, 6, 7), dtype=bool)
    part[0, :3] = True
    part[1, :, :2] = True
    vm = ViewMasks.from_masks(part)
    assert vm.no_mask_patch is not None
    assert not vm.membership[:, vm.no_mask_patch].any()
    assert np.array_equal(vm.patch_index == vm.no_mask_patch, ~part.any(axis=0))


def test_empty_view_round_trips(tmp_path):
    vm = ViewMasks.from_masks(np.zeros((0, 5, 4), dtype=bool), source="none")
    vm.save(tmp_path / "e.npz")
    back = ViewMasks.load(tmp_path / "e.npz")
    assert back.n_masks == 0 and back.masks().shape == (0, 5, 4) and back.no_mask_patch == 0


def test_many_patches_and_counts_are_not_capped():
    h, w = 20, 30
    rng = np.random.default_rng(3)
    masks = rng.random((300, h, w)) < 0.5  # ~600 distinct patches, 300 masks over some pixels
    masks[:, 0, 0] = True
    vm = ViewMasks.from_masks(masks)
    assert vm.n_patches > 255
    c = vm.correlation()
    p00 = vm.patch_index[0, 0]
    assert c.dtype == np.int32 and c[p00, p00] == 300


def test_patches_from_label_maps_matches_dense():
    rng = np.random.default_rng(5)
    maps = rng.integers(0, 4, size=(3, 12, 9))
    maps[1] *= 1000  # large label values
    patch_index, membership, labels = patches_from_label_maps(maps)
    expected = [maps[level] == value for level, value in labels]
    assert np.array_equal(membership[:, patch_index], np.stack(expected))
    counts = [len(np.unique(m[m != 0])) for m in maps]
    assert len(labels) == sum(counts)


def test_compact_patches_merges_equal_columns():
    masks = random_masks(np.random.default_rng(7), m=10)
    patch_index, membership = patches_from_masks(masks)
    keep = membership[[0, 3, 5]]
    new_index, new_membership = compact_patches(patch_index, keep)
    assert np.array_equal(new_membership[:, new_index], masks[[0, 3, 5]])
    assert len({tuple(col) for col in new_membership.T}) == new_membership.shape[1]


@pytest.mark.parametrize("seed", [0, 1, 2, 3])
def test_correlation_matches_brute_force(seed):
    masks = random_masks(np.random.default_rng(seed), m=15, h=20, w=24)
    vm = ViewMasks.from_masks(masks)
    c = vm.correlation()
    reps = [np.argwhere(vm.patch_index == p)[0] for p in range(vm.n_patches)]
    for p, (yp, xp) in enumerate(reps):
        for q, (yq, xq) in enumerate(reps):
            assert c[p, q] == np.sum(masks[:, yp, xp] & masks[:, yq, xq])


@pytest.mark.parametrize("seed", [0, 1, 2, 3, 4])
def test_inclusion_tree_matches_brute_force(seed):
    masks = random_masks(np.random.default_rng(seed), m=20)
    vm = ViewMasks.from_masks(masks)
    tree = vm.inclusion_tree()
    inside = brute_inside(masks)
    assert np.array_equal(tree.inside, inside)
    assert inside.any()
    areas = masks.sum(axis=(1, 2))
    for i in range(len(masks)):
        ancestors = np.flatnonzero(inside[i])
        if len(ancestors) == 0:
            assert tree.parent[i] == -1
        else:
            smallest = ancestors[np.lexsort((ancestors, areas[ancestors]))[0]]
            assert tree.parent[i] == smallest
            assert areas[smallest] > areas[i]
            assert tree.depth[i] == tree.depth[smallest] + 1


def test_inclusion_thresholds_are_configurable():
    masks = random_masks(np.random.default_rng(9), m=18)
    vm = ViewMasks.from_masks(masks)
    tree = vm.inclusion_tree(p_in=0.8, p_iou=0.85)
    assert np.array_equal(tree.inside, brute_inside(masks, 0.8, 0.85))


def brute_nest(masks: np.ndarray, threshold: float = 0.9) -> np.ndarray:
    order = np.argsort(masks.sum(axis=(1, 2)), kind="stable")
    cur = [masks[i].copy() for i in order]
    for a in range(len(cur)):
        for b in range(a + 1, len(cur)):
            if np.logical_and(cur[a], cur[b]).sum() > threshold * cur[a].sum():
                cur[b] = cur[b] | cur[a]
    out = np.empty_like(masks)
    out[order] = np.stack(cur)
    return out


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_nested_matches_brute_force(seed):
    masks = random_masks(np.random.default_rng(seed), m=16)
    vm = ViewMasks.from_masks(masks)
    nested = vm.nested()
    expected = brute_nest(masks)
    assert np.array_equal(nested.masks(), expected)
    assert not np.array_equal(expected, masks)  # something was absorbed
    assert np.array_equal(nested.areas, expected.sum(axis=(1, 2)))
    direct = nest_masks(vm.membership, patch_counts(vm.patch_index, vm.n_patches))
    assert np.array_equal(direct[:, vm.patch_index], expected)


@pytest.mark.parametrize("seed", [0, 1])
def test_label_maps_match_brute_force(seed):
    masks = random_masks(np.random.default_rng(seed), m=14)
    vm = ViewMasks.from_masks(masks)
    tree = vm.inclusion_tree()
    areas = masks.sum(axis=(1, 2))
    h, w = masks.shape[1:]
    finest, coarsest = vm.label_map("finest"), vm.label_map("coarsest")
    levels = [vm.label_map(k, tree) for k in range(tree.n_levels)]
    for y in range(0, h, 3):
        for x in range(0, w, 3):
            holding = np.flatnonzero(masks[:, y, x])
            if len(holding) == 0:
                assert finest[y, x] == 0 and coarsest[y, x] == 0
                continue
            assert finest[y, x] - 1 == holding[np.lexsort((holding, areas[holding]))[0]]
            assert coarsest[y, x] - 1 == holding[np.lexsort((holding, -areas[holding]))[0]]
            chain = vm.masks_at_pixel(y, x, tree)
            for k in range(tree.n_levels):
                allowed = holding[tree.depth[holding] <= k]
                if len(allowed) == 0:
                    assert levels[k][y, x] == 0 and chain[k] == -1
                    continue
                deepest = allowed[tree.depth[allowed] == tree.depth[allowed].max()]
                expected = deepest[np.lexsort((deepest, areas[deepest]))[0]]
                assert levels[k][y, x] - 1 == expected == chain[k]
    assert len(np.unique(levels[0])) <= len(np.unique(levels[-1]))


def test_correlation_on_label_maps_is_patch_level():
    maps = np.zeros((2, 4, 4), dtype=np.int64)
    maps[0, :, :2] = 1
    maps[0, :, 2:] = 2
    maps[1, :2, :] = 5
    vm, labels = ViewMasks.from_label_maps(maps)
    assert vm.n_masks == 3 and vm.n_patches == 4 and vm.no_mask_patch is None
    c = correlation(vm.membership)
    assert sorted(np.diag(c).tolist()) == [1, 1, 2, 2]


def test_inclusion_tree_of_nested_rectangles():
    masks = np.zeros((3, 20, 20), dtype=bool)
    masks[0] = True
    masks[1, 2:12, 2:12] = True
    masks[2, 4:8, 4:8] = True
    tree = inclusion_tree(*_parts(masks))
    assert tree.parent.tolist() == [-1, 0, 1] and tree.depth.tolist() == [0, 1, 2]
    assert tree.ancestors(2) == [1, 0] and tree.children(0).tolist() == [1]


def _parts(masks):
    patch_index, membership = patches_from_masks(masks)
    return membership, patch_counts(patch_index, membership.shape[1])


def test_resized_keeps_patch_ids():
    masks = random_masks(np.random.default_rng(4), m=6, h=10, w=12)
    vm = ViewMasks.from_masks(masks)
    big = vm.resized(20, 24)
    assert big.patch_index.shape == (20, 24)
    assert np.array_equal(big.patch_index[::2, ::2], vm.patch_index)
    assert np.array_equal(big.areas, vm.areas * 4)


def test_load_errors_name_the_file(tmp_path):
    with pytest.raises(GssegError, match="missing.npz"):
        ViewMasks.load(tmp_path / "missing.npz")
    bad = tmp_path / "bad.npz"
    bad.write_bytes(b"not a zip file")
    with pytest.raises(GssegError, match="bad.npz"):
        ViewMasks.load(bad)
    other = tmp_path / "other.npz"
    np.savez(other, x=np.zeros(3))
    with pytest.raises(GssegError, match="other.npz.*not a gsseg mask file"):
        ViewMasks.load(other)


def test_summarize_counts_per_view(tmp_path):
    store = MaskStore(tmp_path)
    rng = np.random.default_rng(0)
    for stem, m in [("a", 3), ("b", 5)]:
        store.save(stem, ViewMasks.from_masks(random_masks(rng, m=m), source="watershed"))
    (tmp_path / ".a.gsseg-abcd1234.tmp.npz").write_bytes(b"")  # left-over temporary file is ignored
    s = summarize(tmp_path)
    assert s["views"] == 2 and s["total_masks"] == 8
    assert s["per_view"]["a"]["masks"] == 3 and s["per_view"]["b"]["masks"] == 5
    assert s["sources"] == {"watershed": 2}
    assert summarize(tmp_path / "nothing")["views"] == 0


def test_deduplicated_matches_brute_force():
    rng = np.random.default_rng(11)
    masks = random_masks(rng, m=20)
    scores = rng.random(20).astype(np.float32)
    vm = ViewMasks.from_masks(masks, scores)
    out = vm.deduplicated(0.9)
    kept: list[int] = []
    for i in np.argsort(-scores, kind="stable"):
        ious = [np.logical_and(masks[i], masks[j]).sum() / np.logical_or(masks[i], masks[j]).sum() for j in kept]
        if all(v <= 0.9 for v in ious):
            kept.append(int(i))
    kept.sort()
    assert 0 < len(kept) < len(masks)
    assert np.array_equal(out.masks(), masks[kept]) and np.array_equal(out.scores, scores[kept])
    sub = vm.subset(np.arange(20) % 2 == 0)
    assert np.array_equal(sub.masks(), masks[::2]) and sub.n_patches <= vm.n_patches

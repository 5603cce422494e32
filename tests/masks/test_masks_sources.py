"""The weight-free mask sources: label import, watershed, simulated noise."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image
from scipy import ndimage

from gsseg.errors import GssegError
from gsseg.masks.sources.labels import import_label_maps, read_label_png
from gsseg.masks.sources.simulated import (
    NoiseModel,
    SimulatedSource,
    jitter_boundary,
    simulate_masks,
    split_along_line,
    view_rng,
)
from gsseg.masks.sources.watershed import WatershedSettings, WatershedSource, watershed_cuts


def nested_scene_image(h: int = 64, w: int = 80) -> np.ndarray:
    """Flat colour regions nested three deep, plus mild noise: [H,W,3] uint8."""
    img = np.zeros((h, w, 3), dtype=np.float64)
    img[:] = (30, 30, 30)
    img[8:56, 6:46] = (200, 40, 40)
    img[14:30, 12:26] = (40, 200, 40)
    img[34:50, 12:40] = (40, 40, 200)
    img[38:46, 16:24] = (240, 240, 60)
    img[10:40, 54:74] = (160, 90, 220)
    img += np.random.default_rng(0).normal(0, 3, img.shape)
    return np.clip(img, 0, 255).astype(np.uint8)


# labels ---------------------------------------------------------------------------------


def test_label_import_one_mask_per_distinct_value(tmp_path):
    h, w = 12, 16
    grey = np.zeros((h, w), dtype=np.uint8)
    grey[:6] = 3
    grey[6:, :8] = 7
    wide = np.zeros((h, w), dtype=np.uint16)
    wide[:, 4:] = 1000
    wide[2:5, 10:14] = 2
    rgb = np.zeros((h, w, 3), dtype=np.uint8)
    rgb[3:9, 3:9] = (255, 0, 0)
    rgb[0:2, :] = (0, 0, 1)
    Image.fromarray(grey).save(tmp_path / "0.png")
    Image.fromarray(wide).save(tmp_path / "1.png")
    Image.fromarray(rgb).save(tmp_path / "2.png")
    paths = sorted(tmp_path.glob("*.png"))
    vm = import_label_maps(paths, (h, w))
    maps = [read_label_png(p) for p in paths]
    expected = [m == v for m in maps for v in np.unique(m) if v != 0]
    assert vm.n_masks == 2 + 2 + 2 == len(expected)
    assert np.array_equal(vm.masks(), np.stack(expected))
    assert np.array_equal(read_label_png(paths[1]), wide.astype(np.int64))
    assert vm.source == "labels" and vm.info["files"] == ["0.png", "1.png", "2.png"]


def test_label_import_wrong_size_names_the_file(tmp_path):
    Image.fromarray(np.ones((10, 10), dtype=np.uint8)).save(tmp_path / "a.png")
    with pytest.raises(GssegError, match=r"a\.png: label image is 10x10 but the view's image is 16x12"):
        import_label_maps([tmp_path / "a.png"], (12, 16))


def test_label_import_unreadable_file_names_the_file(tmp_path):
    bad = tmp_path / "broken.png"
    bad.write_bytes(b"\x89PNG garbage")
    with pytest.raises(GssegError, match="broken.png: unreadable label image"):
        import_label_maps([bad], (4, 4))


# watershed ------------------------------------------------------------------------------


def test_watershed_cuts_have_the_asked_region_counts():
    img = nested_scene_image()
    maps, persistence = watershed_cuts(img, WatershedSettings(region_counts=[2, 4, 8]))
    assert maps.shape == (3, 64, 80)
    for labels, count, pers in zip(maps, [2, 4, 8], persistence):
        assert len(np.unique(labels)) == count == len(pers)
        assert np.all((pers >= 0) & (pers <= 1))
    # Coarser cuts are unions of finer regions (a hierarchy).
    for fine, coarse in zip(maps[1:], maps[:-1]):
        for r in np.unique(fine):
            assert len(np.unique(coarse[fine == r])) == 1


def test_watershed_gives_several_granularities():
    img = nested_scene_image()
    vm = WatershedSource(WatershedSettings(region_counts=[2, 3, 4, 6, 8], min_area_fraction=0.001)).masks_for_image(img)
    tree = vm.inclusion_tree()
    assert tree.n_levels >= 3
    coarse, fine = vm.label_map(0, tree), vm.label_map("finest")
    assert len(np.unique(coarse)) < len(np.unique(fine))
    # The innermost yellow square is one of the masks, and it sits under the red region.
    yellow = np.zeros(img.shape[:2], dtype=bool)
    yellow[38:46, 16:24] = True
    iou = [(m & yellow).sum() / (m | yellow).sum() for m in vm.masks()]
    best = int(np.argmax(iou))
    assert iou[best] > 0.9 and tree.depth[best] >= 1
    # No two masks are identical (repeats across cuts are kept once).
    assert len({m.tobytes() for m in vm.masks()}) == vm.n_masks
    assert vm.source == "watershed" and np.all(vm.areas >= 0.001 * img.shape[0] * img.shape[1])


def test_watershed_attributes_and_bad_settings():
    img = nested_scene_image(32, 40)
    for attribute in ("area", "volume", "dynamics"):
        vm = WatershedSource(WatershedSettings(attribute=attribute, region_counts=[3, 6])).masks_for_image(img)
        assert vm.n_masks >= 3
    with pytest.raises(ValueError):
        WatershedSettings(attribute="height")


# simulated ------------------------------------------------------------------------------


def toy_ground_truth(h: int = 72, w: int = 96) -> dict[str, np.ndarray]:
    part = np.zeros((h, w), dtype=np.int64)
    part[10:40, 8:30] = 1
    part[40:60, 8:30] = 2
    part[10:60, 30:44] = 3
    part[20:50, 55:70] = 4
    part[20:50, 70:88] = 5
    obj = np.select([np.isin(part, [1, 2, 3]), np.isin(part, [4, 5])], [10, 11], 0)
    group = np.where(part > 0, 20, 0)
    return {"part": part, "object": obj, "group": group}


def best_iou(masks: np.ndarray, target: np.ndarray) -> float:
    inter = (masks & target).sum(axis=(1, 2))
    union = (masks | target).sum(axis=(1, 2))
    return float((inter / union).max()) if len(masks) else 0.0


def test_simulated_is_deterministic_per_seed_and_view():
    gt, levels = toy_ground_truth(), ["part", "object", "group"]
    a = SimulatedSource("medium", seed=3).masks_for_gt(gt, levels, "train_000")
    b = SimulatedSource("medium", seed=3).masks_for_gt(gt, levels, "train_000")
    assert np.array_equal(a.masks(), b.masks()) and np.array_equal(a.scores, b.scores)
    others = [
        SimulatedSource("medium", seed=4).masks_for_gt(gt, levels, "train_000"),
        SimulatedSource("medium", seed=3).masks_for_gt(gt, levels, "train_001"),
    ]
    for other in others:
        assert other.masks().shape != a.masks().shape or not np.array_equal(other.masks(), a.masks())


def test_simulated_noise_levels_degrade_quality():
    gt, levels = toy_ground_truth(), ["part", "object", "group"]
    quality = {}
    for noise in ("easy", "hard"):
        scores = []
        for v in range(12):
            vm = SimulatedSource(noise, seed=0).masks_for_gt(gt, levels, f"view_{v}")
            masks = vm.masks()
            for level in levels:
                for i in np.unique(gt[level]):
                    if i:
                        scores.append(best_iou(masks, gt[level] == i))
        quality[noise] = float(np.mean(scores))
    assert quality["easy"] > 0.75
    assert quality["hard"] < quality["easy"]


def test_simulated_masks_are_valid_and_sam_like():
    gt, levels = toy_ground_truth(), ["part", "object", "group"]
    noise = NoiseModel.preset("hard")
    masks, scores = simulate_masks(gt, levels, noise, view_rng(1, "v"))
    assert masks.dtype == bool and masks.shape[1:] == gt["part"].shape
    assert np.all((scores >= 0.88) & (scores <= 1.0))
    assert np.all(masks.sum(axis=(1, 2)) >= noise.min_area_fraction * masks[0].size)


def test_jitter_moves_the_boundary_by_at_most_the_radius():
    mask = np.zeros((40, 40), dtype=bool)
    mask[10:30, 12:28] = True
    for radius in (1, 2):
        out = jitter_boundary(mask, radius, np.random.default_rng(radius))
        changed = out ^ mask
        band = ndimage.binary_dilation(mask, iterations=radius) & ~ndimage.binary_erosion(mask, iterations=radius)
        assert changed.any() and not (changed & ~band).any()


def test_split_along_line_partitions_the_mask():
    mask = np.zeros((30, 30), dtype=bool)
    mask[5:25, 5:25] = True
    a, b = split_along_line(mask, np.random.default_rng(0))
    assert a.any() and b.any() and not (a & b).any() and np.array_equal(a | b, mask)

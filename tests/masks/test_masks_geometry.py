"""The ``geometry`` mask source: shape edges from the rendered depth find what colour misses, and
`gsseg train` on a dataset without masks makes them between the RGB and the features stages."""

from __future__ import annotations

import json

import numpy as np
import pytest

from gsseg.masks.sources.geometry import GeometrySettings, GeometrySource, depth_normals, disparity_jumps
from gsseg.masks.sources.watershed import WatershedSource

H, W = 48, 64
K = np.array([[60.0, 0, W / 2], [0, 60.0, H / 2], [0, 0, 1]])


def best_iou(view, target: np.ndarray) -> float:
    masks = view.membership[:, view.patch_index.reshape(-1)]
    t = target.reshape(-1)
    return float(max((m & t).sum() / (m | t).sum() for m in masks))


def test_an_object_coloured_like_its_wall_is_found_by_its_silhouette():
    rng = np.random.default_rng(0)
    image = rng.integers(0, 255, size=(H, W, 3), dtype=np.uint8)  # the same busy texture everywhere
    box = np.zeros((H, W), bool)
    box[12:36, 20:44] = True
    depth = np.where(box, 2.0, 5.0)
    alpha = np.ones((H, W))
    geo = GeometrySource(settings=GeometrySettings()).masks_for(image, depth, alpha, K)
    colour = WatershedSource().masks_for_image(image)
    assert best_iou(geo, box) > 0.9
    assert best_iou(colour, box) < 0.6


def test_slanted_planes_have_no_depth_jump_but_occlusions_do():
    v, u = np.mgrid[0:H, 0:W].astype(float)
    # a floor seen at a grazing angle: 1/z affine in the pixel coordinates
    floor = 1.0 / (0.02 + 0.01 * v)
    import higra as hg

    src, dst = (np.asarray(a) for a in hg.get_4_adjacency_graph((H, W)).edge_list())
    assert disparity_jumps(floor, src, dst, W).max() < 1e-6
    step = np.where(u < 30, 2.0, 6.0)
    jumps = disparity_jumps(step, src, dst, W)
    crossing = (src % W == 29) & (dst == src + 1)
    assert (jumps[crossing] > 0.5).all() and jumps[~crossing].max() < 1e-9
    n = depth_normals(np.full((H, W), 3.0), K, sigma=0)
    np.testing.assert_allclose(np.abs(n[5:-5, 5:-5, 2]), 1.0, atol=1e-6)  # a fronto-parallel wall faces the camera


@pytest.mark.slow
def test_train_without_masks_runs_rgb_geometry_masks_then_features(tmp_path, capsys):
    from gsseg.cli.app import main
    from gsseg.masks.store import MaskStore
    from gsseg.synth import make_scene

    data = tmp_path / "data"
    make_scene(data, scene="tabletop", seed=0, width=48, height=36, views=4, test_views=1)
    run = tmp_path / "run"
    with pytest.raises(SystemExit) as e:
        main(["train", str(data), "--out", str(run), "--iters", "30", "--feature-iters", "10", "-q"])
    assert e.value.code == 0
    store = MaskStore(data / "masks")
    views = store.views()
    assert len(views) >= 4 and store.load(views[0]).n_masks > 0
    assert store.header(views[0])["source"] == "geometry"
    assert (run / "scene.ply").is_file() and (run / "features.pt").is_file()
    # without --run the source says what it needs
    with pytest.raises(SystemExit) as e:
        main(["masks", str(data), "--source", "geometry", "--force", "-q"])
    assert e.value.code == 1 and "--run" in capsys.readouterr().err
    assert json.loads((run / "config.json").read_text())["dataset"]

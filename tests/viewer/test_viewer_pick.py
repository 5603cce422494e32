"""Ray picking: closed-form ray/Gaussian alpha, front-to-back weights, and picks on a built-in scene."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from gsseg.gaussians.scene import GaussianScene
from gsseg.viewer.pick import RayPicker, precisions_from_scene
from tests.helpers.viewer_fixtures import make_viewer_run, shared_root


def scene_of(means, scales, opacities, quats=None) -> GaussianScene:
    means = torch.tensor(means, dtype=torch.float32)
    n = len(means)
    q = torch.tensor(quats, dtype=torch.float32) if quats is not None else torch.tensor([[1.0, 0, 0, 0]] * n)
    op = torch.tensor(opacities, dtype=torch.float32)
    return GaussianScene(
        means,
        torch.log(torch.tensor(scales, dtype=torch.float32)),
        q,
        torch.logit(op),
        torch.zeros(n, 1, 3),
        torch.zeros(n, 0, 3),
    )


def test_front_opaque_gaussian_is_picked():
    picker = RayPicker.from_scene(scene_of([[0, 0, 1], [0, 0, 2]], [[0.1] * 3] * 2, [0.9, 0.9]))
    pick = picker.pick([0, 0, 0], [0, 0, 1])
    assert pick.index == 0
    assert pick.t == pytest.approx(1.0, abs=1e-5)
    assert pick.weight == pytest.approx(0.9, abs=1e-4)
    ids, t, w = picker.ray_weights([0, 0, 0], [0, 0, 1])
    assert ids.tolist() == [0, 1]
    assert w[1] == pytest.approx(0.1 * 0.9, abs=1e-4)  # T·α behind the first one


def test_faint_front_gaussian_is_skipped_and_hidden_ones_are_not_pickable():
    picker = RayPicker.from_scene(scene_of([[0, 0, 1], [0, 0, 2]], [[0.1] * 3] * 2, [0.05, 0.9]))
    assert picker.pick([0, 0, 0], [0, 0, 1], min_weight=0.1).index == 1
    assert picker.pick([0, 0, 0], [0, 0, 1], min_weight=0.01).index == 0
    opaque = RayPicker.from_scene(scene_of([[0, 0, 1], [0, 0, 2]], [[0.1] * 3] * 2, [0.9, 0.9]))
    assert opaque.pick([0, 0, 0], [0, 0, 1], visible=np.array([False, True])).index == 1
    assert opaque.pick([0, 0, 0], [0, 0, -1]) is None  # behind the camera
    assert opaque.pick([5, 0, 0], [0, 0, 1]) is None  # misses


def test_ray_alpha_matches_sampled_density_for_anisotropic_gaussians():
    rng = np.random.default_rng(0)
    n = 40
    means = rng.normal(0, 0.3, (n, 3)) + [0, 0, 3]
    scales = np.exp(rng.uniform(-2.5, -0.8, (n, 3)))
    quats = rng.normal(size=(n, 4))
    scene = scene_of(means, scales, [0.8] * n, quats)
    picker = RayPicker.from_scene(scene)
    o, d = np.array([0.05, -0.02, 0.0]), np.array([0.02, 0.03, 1.0])
    ids, t, w = picker.ray_weights(o, d)
    assert len(ids) >= 3
    # brute force: peak density along densely sampled ray points
    prec = precisions_from_scene(scene).astype(np.float64)
    dn = d / np.linalg.norm(d)
    ts = np.linspace(0, 6, 60001)
    pts = o + ts[:, None] * dn
    alphas = []
    for i in ids:
        x = pts - means[i]
        q = np.einsum("si,ij,sj->s", x, prec[i], x)
        k = int(np.argmin(q))
        alphas.append(min(0.999, 0.8 * np.exp(-0.5 * q[k])))
        assert t[list(ids).index(i)] == pytest.approx(ts[k], abs=2e-4)
    alphas = np.array(alphas)
    trans = np.concatenate([[1.0], np.cumprod(1 - alphas)[:-1]])
    np.testing.assert_allclose(w, trans * alphas, rtol=1e-3, atol=1e-5)
    assert np.all(np.diff(t) >= 0)


@pytest.fixture(scope="module")
def built_run(tmp_path_factory):
    return make_viewer_run(shared_root(tmp_path_factory), kind="embedding", with_cut=False, run_name="run_pick")


def test_pick_returns_the_gaussian_of_the_clicked_surface(built_run):
    from gsseg.data import load_dataset
    from gsseg.features import load_run_scene

    scene, _ = load_run_scene(built_run.run)
    picker = RayPicker.from_scene(scene)
    ds = load_dataset(built_run.data)
    cams = ds.cameras("test")
    name = cams.names[0]  # a view none of the Gaussians was made from
    i = cams.index_of(name)
    gt = ds.gt(name, "object")
    depth = ds.depth(name).numpy()
    h, w = gt.shape
    # interior pixels: the 5x5 neighbourhood has one label (the depth-built splats overhang
    # silhouettes by about a pixel) and a surface
    pad = np.pad(gt, 2, mode="edge")
    same = np.ones_like(gt, bool)
    for dy in range(5):
        for dx in range(5):
            same &= pad[dy : dy + h, dx : dx + w] == gt
    ys, xs = np.nonzero(same & (depth > 0))
    c2w = torch.linalg.inv(cams.viewmats[i]).double().numpy()
    K = cams.Ks[i].double().numpy()
    origin = c2w[:3, 3]
    dirs = (
        np.stack([(xs + 0.5 - K[0, 2]) / K[0, 0], (ys + 0.5 - K[1, 2]) / K[1, 1], np.ones(len(xs))], 1) @ c2w[:3, :3].T
    )
    surface = origin + depth[ys, xs][:, None] * dirs
    # keep surface points the training views saw (a Gaussian within two pixel footprints)
    from scipy.spatial import cKDTree

    near, _ = cKDTree(scene.means.numpy()).query(surface)
    covered = np.flatnonzero(near < 2.0 * depth[ys, xs] / K[0, 0])
    assert len(covered) > 100
    rng = np.random.default_rng(0)
    labels = gt[ys[covered], xs[covered]]
    sel = np.concatenate([rng.permutation(covered[labels == v])[:60] for v in np.unique(labels)])
    hits, dist = [], []
    objects_seen = set()
    for j in sel:
        x, y = xs[j], ys[j]
        pick = picker.pick(origin, dirs[j])
        assert pick is not None, f"pixel {x},{y} hits a surface but nothing was picked"
        hits.append(built_run.objects[pick.index] == gt[y, x])
        dist.append(np.linalg.norm(np.asarray(pick.point) - surface[j]))
        objects_seen.add(int(gt[y, x]))
    assert len(objects_seen) >= 3
    assert np.mean(hits) >= 0.97, f"only {np.mean(hits):.2%} of clicks picked the right object"
    scene_size = float(np.linalg.norm(scene.means.numpy().max(0) - scene.means.numpy().min(0)))
    assert np.median(dist) < 0.01 * scene_size


def test_small_gaussians_far_from_the_camera_are_still_hit():
    # float32 |x|² − (x·d)² would cancel to noise at this distance/size ratio
    picker = RayPicker.from_scene(scene_of([[0.003, 0, 800], [0, 0, 801]], [[0.002] * 3] * 2, [0.9, 0.9]))
    pick = picker.pick([0, 0, 0], [0, 0, 1])
    assert pick is not None and pick.index == 0
    assert pick.t == pytest.approx(800.0, rel=1e-6)
    assert pick.weight == pytest.approx(0.9 * np.exp(-0.5 * 1.5**2), rel=1e-3)


def test_surface_keeps_the_picked_gaussians_depth_neighbours_only():
    picker = RayPicker.from_scene(scene_of([[0, 0, 1], [0.05, 0, 1.1], [0, 0, 3]], [[0.1] * 3] * 3, [0.6, 0.6, 0.9]))
    ids, t, w = picker.ray_weights([0, 0, 0], [0, 0, 1])
    pick = picker.choose([0, 0, 0], [0, 0, 1], ids, t, w)
    assert pick.index == 0
    assert ids[picker.surface(pick, ids, t)].tolist() == [0, 1]

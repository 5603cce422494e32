"""Camera convention: depth unprojected from one loaded view reprojects onto another view's depth.

The scene (a floor slab and a box) is ray cast with hand-built OpenCV cameras, written as a
transforms dataset with hand-converted OpenGL matrices, and checked through the loaded cameras.
"""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from gsseg.data import Cameras, load_dataset
from tests.helpers.data_fixtures import look_at_w2c, write_png

CV_TO_GL = np.diag([1.0, -1.0, -1.0, 1.0])


def _raycast_depth(scene, w2c: np.ndarray, K: np.ndarray, width: int, height: int) -> np.ndarray:
    """z-depth [H,W] float32 (0 = miss) for an OpenCV camera, via open3d ray casting."""
    import open3d as o3d

    u, v = np.meshgrid(np.arange(width) + 0.5, np.arange(height) + 0.5)
    d_cam = np.stack([(u - K[0, 2]) / K[0, 0], (v - K[1, 2]) / K[1, 1], np.ones_like(u)], -1)  # z = 1
    R, t = w2c[:3, :3], w2c[:3, 3]
    d_world = d_cam @ R  # R^T d per pixel
    origin = np.broadcast_to(-R.T @ t, d_world.shape)
    rays = np.concatenate([origin, d_world], -1).reshape(-1, 6).astype(np.float32)
    t_hit = scene.cast_rays(o3d.core.Tensor(rays))["t_hit"].numpy().reshape(height, width)
    return np.where(np.isfinite(t_hit), t_hit, 0.0).astype(np.float32)  # |d_cam.z| = 1, so t is z-depth


def _box_scene():
    import open3d as o3d

    scene = o3d.t.geometry.RaycastingScene()
    floor = o3d.geometry.TriangleMesh.create_box(6.0, 6.0, 0.1).translate((-3.0, -3.0, -0.1))
    box = o3d.geometry.TriangleMesh.create_box(1.0, 0.6, 0.8).translate((-0.6, -0.2, 0.0))
    post = o3d.geometry.TriangleMesh.create_box(0.3, 0.3, 1.4).translate((0.6, 0.4, 0.0))
    for mesh in (floor, box, post):
        scene.add_triangles(o3d.t.geometry.TriangleMesh.from_legacy(mesh))
    return scene


def reprojection_agreement(
    cams: Cameras, depth_a: torch.Tensor, depth_b: torch.Tensor, a: int, b: int, rel_tol: float = 0.03
):
    """Unproject view ``a``'s depth with ``cams`` and compare with view ``b``'s depth where it lands.

    Only pixels of ``a`` whose 3x3 neighbourhood is smooth (depth range < 15 %) are used, so depth
    edges, where a pixel's depth is ambiguous, do not count.
    Returns (agree, see_through, n): of the n points landing inside view ``b``, the fraction whose
    depth matches b's depth within ``rel_tol``, and the fraction where b sees *beyond* the point
    (or nothing), which is impossible for correct cameras; the rest are occluded in b.
    """
    H, W = depth_a.shape
    v, u = torch.meshgrid(torch.arange(H, dtype=torch.float64), torch.arange(W, dtype=torch.float64), indexing="ij")
    z = depth_a.double()
    z_max = F.max_pool2d(z[None, None], 3, 1, 1)[0, 0]
    z_min = -F.max_pool2d(-z[None, None], 3, 1, 1)[0, 0]
    hit = (z > 0) & (z_min > 0) & (z_max - z_min < 0.15 * z)
    Ka, Kb = cams.Ks[a].double(), cams.Ks[b].double()
    x_cam = torch.stack([(u + 0.5 - Ka[0, 2]) / Ka[0, 0] * z, (v + 0.5 - Ka[1, 2]) / Ka[1, 1] * z, z], -1)[hit]
    c2w_a = torch.linalg.inv(cams.viewmats[a].double())
    x_world = x_cam @ c2w_a[:3, :3].T + c2w_a[:3, 3]
    vm_b = cams.viewmats[b].double()
    x_b = x_world @ vm_b[:3, :3].T + vm_b[:3, 3]
    zb = x_b[:, 2]
    ub = torch.floor(Kb[0, 0] * x_b[:, 0] / zb + Kb[0, 2]).long()
    vb = torch.floor(Kb[1, 1] * x_b[:, 1] / zb + Kb[1, 2]).long()
    inside = (zb > 1e-6) & (ub >= 0) & (ub < depth_b.shape[1]) & (vb >= 0) & (vb < depth_b.shape[0])
    n = int(inside.sum())
    if n == 0:
        return 0.0, 0.0, 0
    seen, zb = depth_b.double()[vb[inside], ub[inside]], zb[inside]
    agree = (seen - zb).abs() < rel_tol * zb
    through = (seen == 0) | (seen > zb * (1 + rel_tol))
    return float(agree.double().mean()), float(through.double().mean()), n


def _write_raycast_dataset(root, width=64, height=48):
    scene = _box_scene()
    eyes = [(3.0, -2.0, 2.5), (2.2, 2.6, 2.0), (-1.0, -3.4, 1.6)]
    K = np.array([[52.0, 0, 31.0], [0, 50.0, 25.0], [0, 0, 1]])
    w2cs = [look_at_w2c(e, (0.0, 0.2, 0.4)) for e in eyes]
    names = [f"cam_{i}" for i in range(len(eyes))]
    (root / "depth").mkdir(parents=True)
    depths = []
    for i, name in enumerate(names):
        d = _raycast_depth(scene, w2cs[i], K, width, height)
        depths.append(d)
        np.save(root / "depth" / f"{name}.npy", d)
        write_png(root / "images" / f"{name}.png", width, height, seed=i)
    frames = [
        {"file_path": f"images/{n}.png", "transform_matrix": (np.linalg.inv(w2cs[i]) @ CV_TO_GL).tolist()}
        for i, n in enumerate(names)
    ]
    top = {"w": width, "h": height, "fl_x": K[0, 0], "fl_y": K[1, 1], "cx": K[0, 2], "cy": K[1, 2], "frames": frames}
    (root / "transforms_train.json").write_text(json.dumps(top))
    return depths


def test_raycast_scene_reprojects_between_views(tmp_path):
    depths = _write_raycast_dataset(tmp_path)
    assert all((d > 0).mean() > 0.5 for d in depths)
    ds = load_dataset(tmp_path)
    cams = ds.train
    loaded = [ds.depth(n) for n in ds.names()]
    for d, ref in zip(loaded, depths):
        np.testing.assert_array_equal(d.numpy(), ref)
    for a, b in [(0, 1), (1, 0), (0, 2), (2, 1)]:
        agree, through, n = reprojection_agreement(cams, loaded[a], loaded[b], a, b)
        assert n > 500, (a, b, n)
        assert agree > 0.45 and through < 0.03, (a, b, agree, through)

    # The check is sensitive to the convention: cameras left in OpenGL axes, or camera-to-world
    # matrices taken for world-to-camera, fail it.
    flipped = torch.from_numpy(CV_TO_GL).float() @ cams.viewmats
    for bad in (flipped, torch.linalg.inv(cams.viewmats)):
        wrong = Cameras(bad, cams.Ks, cams.widths, cams.heights, cams.names)
        agree, through, n = reprojection_agreement(wrong, loaded[0], loaded[1], 0, 1)
        assert not (n > 500 and agree > 0.45 and through < 0.03), (agree, through, n)


def test_raycast_scene_reprojects_after_downscale(tmp_path):
    _write_raycast_dataset(tmp_path)
    ds = load_dataset(tmp_path, downscale=2)
    d0 = ds.depth("cam_0")
    assert d0.shape == (24, 32)
    for b in (1, 2):
        agree, through, n = reprojection_agreement(ds.train, d0, ds.depth(f"cam_{b}"), 0, b, rel_tol=0.05)
        assert n > 150 and agree > 0.6 and through < 0.04, (b, agree, through, n)


def test_builtin_synthetic_scene_reprojects(tmp_path):
    synth = pytest.importorskip("gsseg.synth", reason="gsseg.synth not available")
    root = synth.make_scene(
        tmp_path / "scene", scene="tabletop", seed=0, width=64, height=48, views=6, test_views=1, show_progress=False
    )
    ds = load_dataset(root)
    assert len(ds.train) == 6 and ds.pairs
    cams = ds.cameras("all")
    # a training pair (occlusions allowed) and a test view with its partner rotated in place (none)
    for (a_name, b_name), min_agree in [((ds.train.names[0], ds.train.names[1]), 0.6), (ds.pairs[0], 0.9)]:
        a, b = cams.index_of(a_name), cams.index_of(b_name)
        agree, through, n = reprojection_agreement(cams, ds.depth(a_name), ds.depth(b_name), a, b)
        assert n > 200, (a_name, b_name, n)
        assert agree > min_agree and through < 0.03, (a_name, b_name, agree, through, n)

"""RGB-D initialisation: Gaussians unprojected from depth maps land on the surface other views see."""

import numpy as np
import pytest
import torch

from gsseg.data import load_dataset
from gsseg.errors import GssegError
from gsseg.gaussians.init import init_from_depth
from gsseg.synth import make_scene


def test_gaussians_reproject_onto_other_views_depth(tmp_path):
    ds = load_dataset(make_scene(tmp_path / "d", width=40, height=30, views=4, test_views=1, show_progress=False))
    a, b = ds.names("train")[:2]
    scene, src = init_from_depth(ds, [a], stride=2)
    assert len(scene) == int((ds.depth(a)[::2, ::2] > 0).sum()) and np.all(src.view == 0)
    # every Gaussian reprojects into its own pixel centre
    cam = ds.cameras("all")[ds.cameras("all").index_of(a)]
    p = scene.means.double() @ cam.viewmats[0, :3, :3].double().T + cam.viewmats[0, :3, 3].double()
    uv = p[:, :2] / p[:, 2:] @ cam.Ks[0, :2, :2].double().T + cam.Ks[0, :2, 2].double()
    assert torch.allclose(uv[:, 0], torch.from_numpy(src.xs).double() + 0.5, atol=1e-3)
    assert torch.allclose(uv[:, 1], torch.from_numpy(src.ys).double() + 0.5, atol=1e-3)
    # in view b: at b's depth where b sees the same surface, never in front of what b sees
    cb = ds.cameras("all")[ds.cameras("all").index_of(b)]
    q = scene.means.double() @ cb.viewmats[0, :3, :3].double().T + cb.viewmats[0, :3, 3].double()
    uvb = (q[:, :2] / q[:, 2:] @ cb.Ks[0, :2, :2].double().T + cb.Ks[0, :2, 2].double()).floor().long()
    inside = (uvb[:, 0] >= 0) & (uvb[:, 0] < 40) & (uvb[:, 1] >= 0) & (uvb[:, 1] < 30)
    db = ds.depth(b).double()[uvb[inside, 1], uvb[inside, 0]]
    rel = (q[inside, 2] - db) / db
    assert inside.sum() > 50
    assert float((rel.abs() < 0.03).float().mean()) > 0.4  # the surface b sees too (the rest is occluded in b)
    assert float((rel < -0.03).float().mean()) < 0.1  # few float in b's free space (silhouette pixels at 40x30)


def test_missing_depth_is_a_clear_error(tmp_path):
    data = make_scene(tmp_path / "d", width=32, height=24, views=3, test_views=1, show_progress=False)
    name = load_dataset(data).names("train")[0]
    (data / "depth" / f"{name}.npy").unlink()
    with pytest.raises(GssegError, match="no depth map"):
        init_from_depth(load_dataset(data), [name])

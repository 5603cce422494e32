"""INRIA PLY I/O: exact round trip and clear errors for bad files."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from plyfile import PlyData, PlyElement

from gsseg.errors import GssegError
from gsseg.gaussians import FeatureInfo, GaussianScene, read_ply, write_ply


def random_scene(n: int, sh_degree: int, feat_dim: int = 0, seed: int = 0) -> GaussianScene:
    g = torch.Generator().manual_seed(seed)
    r = lambda *s: torch.randn(*s, generator=g)  # noqa: E731
    k = (sh_degree + 1) ** 2
    feats = r(n, feat_dim) if feat_dim else None
    info = FeatureInfo("logits", "clustering", feat_dim) if feat_dim else None
    return GaussianScene(r(n, 3), r(n, 3), r(n, 4), r(n), r(n, 1, 3), r(n, k - 1, 3), feats, info)


def assert_bit_exact(a: torch.Tensor, b: torch.Tensor) -> None:
    assert a.dtype == b.dtype == torch.float32 and a.shape == b.shape
    assert torch.equal(a.view(torch.int32), b.view(torch.int32))


@pytest.mark.parametrize("sh_degree", [0, 1, 2, 3])
@pytest.mark.parametrize("feat_dim", [0, 5])
def test_round_trip_exact(tmp_path, sh_degree, feat_dim):
    scene = random_scene(57, sh_degree, feat_dim, seed=sh_degree)
    path = write_ply(tmp_path / "s.ply", scene, with_features=bool(feat_dim))
    back = read_ply(path)
    for name in ("means", "log_scales", "quats", "logit_opacities", "sh0", "shN"):
        assert_bit_exact(getattr(scene, name), getattr(back, name))
    assert back.sh_degree == sh_degree
    if feat_dim:
        assert_bit_exact(scene.features, back.features)
        assert back.feature_info == scene.feature_info
    else:
        assert back.features is None


def test_inria_layout_and_vanilla_default(tmp_path):
    scene = random_scene(4, 3, feat_dim=3)
    ply = PlyData.read(str(write_ply(tmp_path / "s.ply", scene)))
    names = [p.name for p in ply["vertex"].properties]
    expected = (
        ["x", "y", "z", "nx", "ny", "nz", "f_dc_0", "f_dc_1", "f_dc_2"]
        + [f"f_rest_{i}" for i in range(45)]
        + ["opacity", "scale_0", "scale_1", "scale_2", "rot_0", "rot_1", "rot_2", "rot_3"]
    )
    assert names == expected  # no f_id_* unless asked
    assert not ply.text and ply.byte_order == "<"
    assert all(p.val_dtype in ("f4", "float32") for p in ply["vertex"].properties)
    # channel-major f_rest: f_rest_0..14 are the red coefficients
    assert np.array_equal(ply["vertex"]["f_rest_1"], scene.shN[:, 1, 0].numpy())
    assert np.array_equal(ply["vertex"]["f_rest_15"], scene.shN[:, 0, 1].numpy())


def test_ascii_ply_is_read(tmp_path):
    scene = random_scene(6, 1)
    back = read_ply(write_ply(tmp_path / "a.ply", scene, text=True))
    assert torch.allclose(back.means, scene.means, atol=1e-6)
    assert back.sh_degree == 1


def _write_columns(path, cols: dict[str, np.ndarray]) -> None:
    arr = np.empty(len(next(iter(cols.values()))), dtype=[(k, "<f4") for k in cols])
    for k, v in cols.items():
        arr[k] = v
    PlyData([PlyElement.describe(arr, "vertex")]).write(str(path))


def _columns(scene):
    from gsseg.gaussians.ply import scene_to_arrays

    return scene_to_arrays(scene)


def test_missing_properties_are_named(tmp_path):
    cols = _columns(random_scene(3, 0))
    del cols["opacity"], cols["rot_2"]
    _write_columns(tmp_path / "m.ply", cols)
    with pytest.raises(GssegError, match=r"m\.ply.*missing properties opacity, rot_2"):
        read_ply(tmp_path / "m.ply")


def test_inconsistent_f_rest(tmp_path):
    cols = _columns(random_scene(3, 1))
    del cols["f_rest_8"]
    _write_columns(tmp_path / "r.ply", cols)
    with pytest.raises(GssegError, match="8 f_rest"):
        read_ply(tmp_path / "r.ply")


def test_truncated_and_garbage(tmp_path):
    path = write_ply(tmp_path / "t.ply", random_scene(100, 3))
    data = path.read_bytes()
    path.write_bytes(data[: len(data) - 500])
    with pytest.raises(GssegError, match=r"t\.ply.*(malformed|truncated)"):
        read_ply(path)
    (tmp_path / "g.ply").write_bytes(b"not a ply at all\n")
    with pytest.raises(GssegError, match=r"g\.ply"):
        read_ply(tmp_path / "g.ply")
    with pytest.raises(GssegError, match="not found"):
        read_ply(tmp_path / "absent.ply")


def test_no_vertex_element(tmp_path):
    arr = np.zeros(2, dtype=[("a", "<f4")])
    PlyData([PlyElement.describe(arr, "face_like")]).write(str(tmp_path / "f.ply"))
    with pytest.raises(GssegError, match="no 'vertex' element"):
        read_ply(tmp_path / "f.ply")


def test_nan_inf_reported_and_dropped(tmp_path):
    scene = random_scene(20, 2)
    scene.means[3, 1] = float("nan")
    scene.log_scales[7, 0] = float("inf")
    scene.shN[7, 2, 2] = float("-inf")
    path = write_ply(tmp_path / "n.ply", scene)
    with pytest.raises(
        GssegError,
        match=r"2 of 20 Gaussians have NaN/Inf values \(rows 3, 7; properties y, "
        r"f_rest_\d+, scale_0\).*drop-invalid",
    ) as e:
        read_ply(path)
    assert "\n" not in str(e.value)
    back = read_ply(path, drop_invalid=True)
    assert len(back) == 18
    keep = torch.ones(20, dtype=torch.bool)
    keep[[3, 7]] = False
    assert torch.equal(back.means, scene.means[keep])
    assert torch.equal(back.shN, scene.shN[keep])

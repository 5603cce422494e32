"""The pure-PyTorch reference rasterizer: gsplat conventions, compositing rules, gradcheck."""

from __future__ import annotations

import math

import pytest
import torch

from gsseg.data.cameras import Cameras, intrinsics
from gsseg.render import render
from gsseg.render.projection import covariances, project_reference
from gsseg.render.sh import view_colors
from gsseg.render.testing import flat_colors, orbit_cameras, random_scene

F64 = torch.float64


def _one_camera(width=16, height=16, focal=16.0, distance=2.0) -> Cameras:
    vm = torch.eye(4)[None]
    vm[0, 2, 3] = distance
    return Cameras(vm, intrinsics(focal, focal, width / 2, height / 2)[None], [width], [height], ["v"])


def _splat(means, scales, opacities, colors, cams, **kw):
    n = means.shape[0]
    quats = torch.tensor([[1.0, 0, 0, 0]], dtype=means.dtype).repeat(n, 1)
    return render(means, quats, scales, opacities, colors, cams, backend="reference", **kw)


def test_projection_and_sh_match_gsplat_torch_reference():
    from gsplat.cuda._torch_impl import _fully_fused_projection, _spherical_harmonics

    scene = random_scene(400, seed=2, extent=1.5, scale_range=(0.01, 0.3))
    scene.logit_opacities.fill_(math.inf)  # opacity 1: gsplat's torch version has no opacity-aware radius
    cams = orbit_cameras(2, 64, 48)
    proj = project_reference(scene.means, scene.quats, scene.scales, scene.opacities, cams.viewmats, cams.Ks, 64, 48)
    radii, means2d, depths, conics, _ = _fully_fused_projection(
        scene.means, covariances(scene.quats, scene.scales), cams.viewmats, cams.Ks, 64, 48
    )
    vis = proj.visible
    assert torch.equal(vis, (radii > 0).all(-1)) and vis.any() and not vis.all()
    torch.testing.assert_close(proj.means2d[vis], means2d[vis], atol=1e-4, rtol=1e-5)
    torch.testing.assert_close(proj.conics[vis], conics[vis], atol=1e-5, rtol=1e-4)
    torch.testing.assert_close(proj.depths[vis], depths[vis])
    assert (proj.radii[vis] - radii[vis]).abs().max() <= 1
    campos = cams.centers
    ours = view_colors(scene.colors, 3, scene.means, campos)
    dirs = scene.means[None] - campos[:, None]
    theirs = torch.clamp_min(_spherical_harmonics(3, dirs, scene.colors[None].expand(2, -1, -1, -1)) + 0.5, 0)
    torch.testing.assert_close(ours, theirs, atol=1e-5, rtol=1e-5)


def _on_pixel_centre(z_world: float, distance: float = 2.0, focal: float = 16.0) -> list[float]:
    """World point projecting onto the centre of pixel (8, 8) of ``_one_camera()``."""
    off = 0.5 * (z_world + distance) / focal
    return [off, off, z_world]


def test_single_gaussian_alpha_and_depth():
    cams = _one_camera()
    # centre exactly on pixel (8, 8)'s centre: mean2d = (8.5, 8.5) -> x = 0.5/16*2
    means = torch.tensor([[0.5 / 16 * 2, 0.5 / 16 * 2, 0.0]], dtype=F64)
    out = _splat(
        means,
        torch.full((1, 3), 0.05, dtype=F64),
        torch.tensor([0.5], dtype=F64),
        torch.tensor([[1.0, 0.5, 0.25]], dtype=F64),
        cams,
    )
    assert out.alpha[0, 8, 8, 0].item() == pytest.approx(0.5, abs=1e-12)
    torch.testing.assert_close(out.rgb[0, 8, 8], torch.tensor([0.5, 0.25, 0.125], dtype=F64))
    assert out.depth[0, 8, 8, 0].item() == pytest.approx(2.0)
    assert out.alpha[0, 0, 0, 0] == 0 and out.depth[0, 0, 0, 0] == 0  # empty pixel: depth 0, not NaN


def test_alpha_cap_and_transmittance_stop_rule():
    cams = _one_camera()
    means = torch.tensor([_on_pixel_centre(0.0), _on_pixel_centre(0.5)], dtype=F64)  # same pixel, two depths
    colors = torch.tensor([[1.0, 0, 0], [0, 1.0, 0]], dtype=F64)
    out = _splat(means, torch.full((2, 3), 0.05, dtype=F64), torch.tensor([1.0, 1.0], dtype=F64), colors, cams)
    # first: alpha capped at 0.999; second would leave T = 1e-6 <= 1e-4, so it is not composited
    assert out.alpha[0, 8, 8, 0].item() == pytest.approx(0.999, abs=1e-12)
    torch.testing.assert_close(out.rgb[0, 8, 8], torch.tensor([0.999, 0.0, 0.0], dtype=F64))
    bg = torch.tensor([[0.0, 0.0, 1.0]], dtype=F64)
    out_bg = _splat(
        means, torch.full((2, 3), 0.05, dtype=F64), torch.tensor([0.6, 0.6], dtype=F64), colors, cams, backgrounds=bg
    )
    # 0.6 in front, 0.6 * 0.4 behind, background gets the remaining 0.16
    torch.testing.assert_close(out_bg.rgb[0, 8, 8], torch.tensor([0.6, 0.24, 0.16], dtype=F64))


def test_front_to_back_order_is_by_depth_not_index():
    cams = _one_camera()
    means = torch.tensor([_on_pixel_centre(0.5), _on_pixel_centre(0.0)], dtype=F64)  # index 1 is in front
    colors = torch.tensor([[1.0, 0, 0], [0, 1.0, 0]], dtype=F64)
    out = _splat(means, torch.full((2, 3), 0.05, dtype=F64), torch.tensor([0.5, 0.5], dtype=F64), colors, cams)
    torch.testing.assert_close(out.rgb[0, 8, 8], torch.tensor([0.25, 0.5, 0.0], dtype=F64))


def test_gradcheck_float64_reference():
    scene = random_scene(3, feature_dim=2, seed=4, scale_range=(0.3, 0.6), opacity_range=(0.3, 0.8), dtype=F64)
    scene.means.mul_(0.5)
    cams = orbit_cameras(1, 8, 6)

    def fn(means, quats, scales, opacities, sh, features):
        out = render(
            means,
            quats,
            scales,
            opacities,
            sh,
            cams,
            features=features,
            sh_degree=1,
            backgrounds=torch.tensor([[0.3, 0.2, 0.1]], dtype=F64),
            backend="reference",
        )
        return out.rgb, out.alpha, out.depth, out.features

    inputs = [
        t.clone().requires_grad_(True)
        for t in (scene.means, scene.quats, scene.scales, scene.opacities, scene.colors[:, :4], scene.features)
    ]
    assert torch.autograd.gradcheck(fn, inputs, eps=1e-6, atol=1e-5, rtol=1e-4, fast_mode=True)


def test_bad_inputs_raise_clear_errors():
    scene = random_scene(5)
    cams = orbit_cameras(1, 8, 8)
    with pytest.raises(ValueError, match="colors must be"):
        render(scene.means, scene.quats, scene.scales, scene.opacities, scene.colors, cams, backend="reference")
    with pytest.raises(ValueError, match="needs 16 coefficients|K >= 16|coefficients"):
        render(
            scene.means,
            scene.quats,
            scene.scales,
            scene.opacities,
            scene.colors[:, :4],
            cams,
            sh_degree=3,
            backend="reference",
        )
    with pytest.raises(ValueError, match="unknown render backend"):
        render(scene.means, scene.quats, scene.scales, scene.opacities, flat_colors(scene), cams, backend="vulkan")
    with pytest.raises(ValueError, match="one image size"):
        two = Cameras(torch.eye(4).repeat(2, 1, 1), cams.Ks.repeat(2, 1, 1), [8, 9], [8, 8], ["a", "b"])
        render(scene.means, scene.quats, scene.scales, scene.opacities, flat_colors(scene), two, backend="reference")

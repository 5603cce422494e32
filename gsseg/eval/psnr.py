"""PSNR: of two images, and of a Gaussian scene on test views."""

from __future__ import annotations

import math

import torch
from torch import Tensor

from gsseg.gaussians.scene import GaussianScene


def mse_to_psnr(mse: float) -> float:
    """PSNR in dB for images in [0,1]; +inf for a perfect match."""
    return float("inf") if mse <= 0 else -10.0 * math.log10(mse)


@torch.no_grad()
def psnr(pred: Tensor, target: Tensor) -> float:
    """PSNR (dB) of ``pred`` against ``target`` (same shape, values in [0,1]; pred clamped)."""
    mse = torch.mean((pred.clamp(0.0, 1.0) - target) ** 2).item()
    return mse_to_psnr(mse)


@torch.no_grad()
def render_rgbd(
    scene: GaussianScene, camera, background: tuple[float, float, float] = (0.0, 0.0, 0.0), backend: str = "auto"
) -> tuple[Tensor, Tensor, Tensor]:
    """(rgb [H,W,3] clamped to [0,1], z-depth [H,W], alpha [H,W]) of ``scene`` from one camera (C = 1)."""
    from gsseg.render import render

    scene = scene.to(camera.device)
    bg = torch.tensor([background], dtype=torch.float32, device=camera.device)
    out = render(
        scene.means,
        scene.quats,
        scene.scales,
        scene.opacities,
        scene.colors,
        camera,
        sh_degree=scene.sh_degree,
        backgrounds=bg,
        backend=backend,
    )
    return out.rgb[0].clamp(0.0, 1.0), out.depth[0, ..., 0], out.alpha[0, ..., 0]


def render_view(
    scene: GaussianScene, camera, background: tuple[float, float, float] = (0.0, 0.0, 0.0), backend: str = "auto"
) -> Tensor:
    """RGB image [H,W,3] of ``scene`` seen from one camera (Cameras with C = 1), clamped to [0,1]."""
    return render_rgbd(scene, camera, background, backend)[0]


def psnr_per_view(
    scene: GaussianScene, ds, split: str = "test", background=(0.0, 0.0, 0.0), backend: str = "auto", progress=None
) -> dict[str, float]:
    """{view stem: PSNR in dB} over the views of ``split``."""
    cams = ds.cameras(split)
    result = {}
    task = progress.add_task("psnr", total=len(cams), info="", unit="view") if progress is not None else None
    for i in range(len(cams)):
        cam = cams[i]
        name = cam.names[0]
        pred = render_view(scene, cam, background, backend)
        result[name] = psnr(pred, ds.image(name).to(pred.device))
        if progress is not None:
            progress.update(task, advance=1, info=f"{name} {result[name]:.2f} dB")
    return result

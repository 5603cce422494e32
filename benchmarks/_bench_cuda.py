"""GPU benchmark: gsseg's CUDA feature kernel vs gsplat's N-D rasterizer (D = 16, fwd + bwd).

Both render the same per-Gaussian features from the same gsplat projection and tile
intersection (20k Gaussians), so only the feature rasterization is timed:

- joint: gradients for the features and the screen-space geometry (means2d, conics,
  opacities), the work gsplat's backward always does;
- frozen: features only, the papers' setting (geometry frozen); gsseg's kernel then skips the
  geometry reductions, gsplat cannot.

``measure()`` returns a dict; ``cuda_vs_gsplat_speedup`` is gsplat's time over ours in joint
mode at 128x128 (> 1 means gsseg is faster). Run: ``python benchmarks/_bench_cuda.py``.
"""

from __future__ import annotations

import json
import statistics

import torch

N_GAUSSIANS = 20_000
CHANNELS = 16
SIZES = (128, 512)
WARMUP = 5
ITERS = 25


def _scene(n: int, size: int, seed: int = 0):
    """Random Gaussians in a 4x4x4 box 3-7 units in front of a camera at the origin."""
    gen = torch.Generator().manual_seed(seed)
    means = torch.cat([torch.rand(n, 2, generator=gen) * 4 - 2, torch.rand(n, 1, generator=gen) * 4 + 3], 1)
    quats = torch.randn(n, 4, generator=gen)
    scales = torch.rand(n, 3, generator=gen) * 0.05 + 0.01
    opacities = torch.rand(n, generator=gen) * 0.9 + 0.05
    f = float(size)
    viewmats = torch.eye(4)[None]
    Ks = torch.tensor([[[f, 0.0, size / 2], [0.0, f, size / 2], [0.0, 0.0, 1.0]]])
    return [t.cuda() for t in (means, quats, scales, opacities, viewmats, Ks)]


def _time_ms(fn) -> float:
    """Median wall time of ``fn()`` in milliseconds, CUDA-synchronised."""
    for _ in range(WARMUP):
        fn()
    torch.cuda.synchronize()
    times = []
    for _ in range(ITERS):
        start, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
        start.record()
        fn()
        end.record()
        torch.cuda.synchronize()
        times.append(start.elapsed_time(end))
    return statistics.median(times)


def _fwd_bwd(raster, tiles, features, grad_out, geometry: bool):
    def run():
        geo = [t.detach().requires_grad_(geometry) for t in (tiles.means2d, tiles.conics, tiles.opacities)]
        feats = features.detach().requires_grad_(True)
        out, _ = raster(*geo, feats, tiles.isect_offsets, tiles.flatten_ids, tiles.width, tiles.height, tiles.tile_size)
        torch.autograd.backward(out, grad_out)

    return run


def measure() -> dict:
    """Timings (ms) and speedups of gsseg's feature kernel over gsplat's N-D path."""
    if not torch.cuda.is_available():
        return {"cuda_vs_gsplat_speedup": None, "cuda_skipped": "no CUDA GPU visible to torch"}
    from gsseg.render.cuda_backend import _rasterize_features_gsplat, gsplat_tiles, rasterize_features_cuda
    from gsseg.render.cuda_extension import load_cuda_extension

    if load_cuda_extension() is None:
        return {"cuda_vs_gsplat_speedup": None, "cuda_skipped": "gsseg CUDA kernels failed to build"}
    result: dict = {"device": torch.cuda.get_device_name(), "n_gaussians": N_GAUSSIANS, "channels": CHANNELS}
    for size in SIZES:
        means, quats, scales, opacities, viewmats, Ks = _scene(N_GAUSSIANS, size)
        with torch.no_grad():
            tiles = gsplat_tiles(means, quats, scales, opacities, viewmats, Ks, size, size)
        features = torch.randn(N_GAUSSIANS, CHANNELS, device="cuda")
        grad_out = torch.randn(1, size, size, CHANNELS, device="cuda")
        result[f"n_isects_{size}"] = int(tiles.flatten_ids.numel())
        for mode, geometry in (("joint", True), ("frozen", False)):
            ours = _time_ms(_fwd_bwd(rasterize_features_cuda, tiles, features, grad_out, geometry))
            ref = _time_ms(_fwd_bwd(_rasterize_features_gsplat, tiles, features, grad_out, geometry))
            result[f"gsseg_ms_{mode}_{size}"] = round(ours, 4)
            result[f"gsplat_ms_{mode}_{size}"] = round(ref, 4)
            result[f"speedup_{mode}_{size}"] = round(ref / ours, 3)
    result["cuda_vs_gsplat_speedup"] = result["speedup_joint_128"]
    result["cuda_vs_gsplat_speedup_frozen"] = result["speedup_frozen_128"]
    result["cuda_vs_gsplat_speedup_512"] = result["speedup_joint_512"]
    return result


if __name__ == "__main__":
    print(json.dumps(measure(), indent=2))

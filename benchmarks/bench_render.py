"""Rendering speed: C++ CPU kernel vs the PyTorch reference, table path vs full feature render.

    python benchmarks/bench_render.py --json

- ``cpu_vs_reference_speedup``: forward + backward (gradients for every Gaussian input), 20k
  Gaussians, 128x128, RGB + 16-D features, one camera.
- ``table_vs_full_speedup``: features of 4096 sampled pixels from a contribution table vs a
  full C++ feature render of the view (forward + backward w.r.t. the features; geometry frozen;
  the same loss, sum of squared features, on both sides).
- ``cuda_vs_gsplat_speedup`` (GPU only): gsseg's CUDA feature kernel vs gsplat's N-D path at
  D = 16, from ``benchmarks/_bench_cuda.py``.
Times are best-of-N wall times in milliseconds after a warm-up (the machine may be shared;
``--timer cpu`` measures the calling thread's CPU time instead: steadier on a busy machine, and
only meaningful with --threads 1, since it ignores OpenMP worker threads).
Every backend gets the same inputs, rebuilt as fresh leaves for every repetition.
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import os
import sys
import time
from pathlib import Path

import torch

N_GAUSSIANS = 20_000
SIZE = 128
FEATURE_DIM = 16
TABLE_PIXELS = 4096


def _scene(n: int, size: int, seed: int = 0):
    """Random Gaussians in a 4x4x4 box 3-7 units in front of one camera at the origin."""
    from gsseg.data.cameras import Cameras

    g = torch.Generator().manual_seed(seed)
    means = torch.cat([torch.rand(n, 2, generator=g) * 4 - 2, torch.rand(n, 1, generator=g) * 4 + 3], 1)
    quats = torch.randn(n, 4, generator=g)
    scales = torch.rand(n, 3, generator=g) * 0.05 + 0.01
    opacities = torch.rand(n, generator=g) * 0.9 + 0.05
    rgb = torch.rand(n, 3, generator=g)
    features = torch.randn(n, FEATURE_DIM, generator=g)
    K = torch.tensor([[[float(size), 0.0, size / 2], [0.0, float(size), size / 2], [0.0, 0.0, 1.0]]])
    cams = Cameras(torch.eye(4)[None], K, [size], [size], ["bench"])
    return (means, quats, scales, opacities, rgb, features), cams


TIMERS = {"wall": time.perf_counter, "cpu": time.thread_time}


def _best_ms(fn, repeats: int, warmup: int = 1, timer: str = "wall") -> float:
    """Best-of-``repeats`` time in ms after ``warmup`` untimed calls (robust to other processes
    sharing the CPU)."""
    clock = TIMERS[timer]
    for _ in range(warmup):
        fn()
    times = []
    for _ in range(repeats):
        start = clock()
        fn()
        times.append((clock() - start) * 1e3)
    return min(times)


def _full_step(params, cams, backend: str, grad_geometry: bool = True):
    """One render + backward. ``grad_geometry``: gradients for every input and a loss on RGB,
    depth and features; otherwise geometry frozen and the table step's loss (features only)."""
    from gsseg.render import render

    def run():
        leaves = [p.detach().requires_grad_(grad_geometry or i == 5) for i, p in enumerate(params)]
        means, quats, scales, opacities, rgb, features = leaves
        out = render(means, quats, scales, opacities, rgb, cams, features=features, backend=backend)
        assert out.meta["backend"] == backend
        loss = out.features.square().sum()
        if grad_geometry:
            loss = loss + out.rgb.square().sum() + out.depth.sum()
        loss.backward()

    return run


def _cuda_results() -> dict:
    path = Path(__file__).with_name("_bench_cuda.py")
    if not torch.cuda.is_available() or not path.exists():
        return {"cuda_vs_gsplat_speedup": None}
    spec = importlib.util.spec_from_file_location("_bench_cuda", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return {f"cuda_{k}" if not k.startswith("cuda") else k: v for k, v in module.measure().items()}


def measure(reference_repeats: int = 2, repeats: int = 7, timer: str = "wall") -> dict:
    from gsseg.render import build_contribution_table, render_features_from_table
    from gsseg.render.extensions import load_cpu_extension

    if load_cpu_extension() is None:
        raise SystemExit("the C++ CPU extension could not be built; nothing to compare")
    params, cams = _scene(N_GAUSSIANS, SIZE)
    result: dict = {
        "n_gaussians": N_GAUSSIANS,
        "image": f"{SIZE}x{SIZE}",
        "feature_dim": FEATURE_DIM,
        "torch_threads": torch.get_num_threads(),
        "load_average_1min": round(os.getloadavg()[0], 2) if hasattr(os, "getloadavg") else None,
        "timer": timer,
    }
    cpu_ms = _best_ms(_full_step(params, cams, "cpu"), repeats, timer=timer)
    ref_ms = _best_ms(_full_step(params, cams, "reference"), reference_repeats, timer=timer)
    result.update(
        cpu_fwd_bwd_ms=round(cpu_ms, 2),
        reference_fwd_bwd_ms=round(ref_ms, 1),
        cpu_vs_reference_speedup=round(ref_ms / cpu_ms, 1),
    )

    means, quats, scales, opacities, _, features = params
    table = build_contribution_table(means, quats, scales, opacities, cams, backend="cpu")
    build_ms = _best_ms(
        lambda: build_contribution_table(means, quats, scales, opacities, cams, backend="cpu"), 3, timer=timer
    )
    result["table_build_ms"] = round(build_ms, 2)
    result["table_nnz"] = table.nnz
    result["table_mbytes"] = round(table.nbytes / 2**20, 2)
    g = torch.Generator().manual_seed(1)
    pixels = torch.randint(0, SIZE * SIZE, (TABLE_PIXELS,), generator=g)

    def table_step():
        f = features.detach().requires_grad_(True)
        render_features_from_table(table, pixels, f).square().sum().backward()

    table_ms = _best_ms(table_step, repeats * 3, warmup=2, timer=timer)
    full_ms = _best_ms(_full_step(params, cams, "cpu", grad_geometry=False), repeats, timer=timer)
    result.update(
        table_fwd_bwd_ms=round(table_ms, 3),
        full_feature_fwd_bwd_ms=round(full_ms, 2),
        table_vs_full_speedup=round(full_ms / table_ms, 1),
    )
    result.update(_cuda_results())
    return result


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="gsseg rendering benchmark")
    parser.add_argument("--json", action="store_true", help="print one JSON object")
    parser.add_argument("--repeats", type=int, default=7, help="timed repetitions of the fast paths")
    parser.add_argument("--threads", type=int, default=0, help="torch / OpenMP threads (0 = torch's default)")
    parser.add_argument(
        "--timer",
        choices=sorted(TIMERS),
        default="wall",
        help="wall clock, or the calling thread's CPU time (use with --threads 1)",
    )
    args = parser.parse_args(argv)
    if args.threads > 0:
        torch.set_num_threads(args.threads)
    result = measure(repeats=args.repeats, timer=args.timer)
    if args.json:
        print(json.dumps(result))
    else:
        for key, value in result.items():
            print(f"{key:>28}: {value}")
    return 0


if __name__ == "__main__":
    sys.exit(main())

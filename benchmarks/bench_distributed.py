"""Data-parallel features stage: speed-up of ``torchrun --nproc-per-node N`` over one process.

A built-in scene (``gsseg synth``, masks ``simulated`` medium) with Gaussians unprojected from
its depth maps (``--init-ply``, so no RGB stage) trains the contrastive features for
``--feature-iters`` steps of ``--views-per-step V`` views, once in one process and once in N
processes (gloo, 127.0.0.1). Reported per V: seconds per 1000 steps of each, the speed-up, and
the largest feature difference between the two runs (they must agree to float tolerance).
Every process runs with one intra-op thread, so N processes use N cores.

    .venv/bin/python benchmarks/bench_distributed.py [--nproc 2] [--views-per-step 2 4]
        [--feature-iters 300] [--width 256 --height 192 --views 24 --gaussians 100000] [--json] [--no-write]
"""

from __future__ import annotations

import argparse
import json
import os
import socket
import subprocess
import sys
from pathlib import Path

import torch

REPO = Path(__file__).resolve().parents[1]
RESULTS = REPO / "benchmarks" / "RESULTS.md"
BEGIN, END = "<!-- distributed:begin -->", "<!-- distributed:end -->"
sys.path.insert(0, str(REPO / "benchmarks"))

from bench_scale import make_ply, write_results  # noqa: E402


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def train(data: Path, ply: Path, run: Path, nproc: int, views_per_step: int, steps: int) -> dict:
    """One features-stage run; its features.json summary."""
    args = [
        "train",
        str(data),
        "--out",
        str(run),
        "--init-ply",
        str(ply),
        "--objective",
        "contrastive",
        "--feature-iters",
        str(steps),
        "--views-per-step",
        str(views_per_step),
        "--seed",
        "1",
        "--restart",
        "-q",
    ]
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    if nproc == 1:
        cmd = [sys.executable, "-m", "gsseg", *args]
    else:
        cmd = [
            sys.executable,
            "-m",
            "torch.distributed.run",
            "--nproc-per-node",
            str(nproc),
            "--master-addr",
            "127.0.0.1",
            "--master-port",
            str(free_port()),
            "-m",
            "gsseg",
            *args,
        ]
    proc = subprocess.run(cmd, capture_output=True, text=True, env=env)
    if proc.returncode != 0:
        raise RuntimeError(f"{' '.join(cmd)} failed:\n{proc.stdout[-2000:]}{proc.stderr[-2000:]}")
    return json.loads((run / "features.json").read_text())


def features_of(run: Path) -> torch.Tensor:
    from gsseg.features import load_run_scene

    return load_run_scene(run)[1].features


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--nproc", type=int, default=2)
    p.add_argument("--views-per-step", type=int, nargs="+", default=[2, 4])
    p.add_argument("--feature-iters", type=int, default=300)
    p.add_argument("--width", type=int, default=256)
    p.add_argument("--height", type=int, default=192)
    p.add_argument("--views", type=int, default=24)
    p.add_argument("--gaussians", type=int, default=100_000)
    p.add_argument("--work", type=Path, default=Path("/tmp/gsseg-bench-distributed"))
    p.add_argument("--json", action="store_true")
    p.add_argument("--no-write", action="store_true")
    args = p.parse_args(argv)
    work = args.work
    data = work / f"data_{args.width}x{args.height}_v{args.views}"
    if not (data / "scene.json").is_file():
        for cmd in (
            [
                "synth",
                str(data),
                "--scene",
                "tabletop",
                "--width",
                str(args.width),
                "--height",
                str(args.height),
                "--views",
                str(args.views),
                "--test-views",
                "2",
                "--supersample",
                "1",
                "--force",
            ],
            ["masks", str(data), "--source", "simulated", "--noise", "medium", "-q"],
        ):
            subprocess.run([sys.executable, "-m", "gsseg", *cmd], check=True, capture_output=True)
    ply = work / f"n{args.gaussians}.ply"
    if not ply.is_file():
        make_ply(data, args.gaussians, ply)
    rows = []
    for v in args.views_per_step:
        one = train(data, ply, work / f"one_v{v}", 1, v, args.feature_iters)
        many = train(data, ply, work / f"many_v{v}", args.nproc, v, args.feature_iters)
        diff = float((features_of(work / f"one_v{v}") - features_of(work / f"many_v{v}")).abs().max())
        row = {
            "views_per_step": v,
            "one_s_per_1000": one["seconds"] / one["steps"] * 1000,
            "many_s_per_1000": many["seconds"] / many["steps"] * 1000,
            "max_feature_diff": diff,
            "processes": many["processes"],
        }
        row["speedup"] = row["one_s_per_1000"] / row["many_s_per_1000"]
        print(f"[bench_distributed] {json.dumps(row)}", file=sys.stderr, flush=True)
        rows.append(row)
    if not args.no_write:
        lines = [
            BEGIN,
            "## Data-parallel features stage (`python benchmarks/bench_distributed.py`)",
            "",
            f"tabletop {args.width}x{args.height}, {args.views} views, {args.gaussians:,} Gaussians, contrastive, "
            f"{args.feature_iters} steps, one thread per process, {os.cpu_count()} cores.",
            "",
            f"| views per step | 1 process s/1000 steps | {args.nproc} processes s/1000 steps | speed-up | "
            "max feature difference |",
            "|---|---|---|---|---|",
        ]
        lines += [
            f"| {r['views_per_step']} | {r['one_s_per_1000']:.1f} | {r['many_s_per_1000']:.1f} | "
            f"{r['speedup']:.2f}x | {r['max_feature_diff']:.1e} |"
            for r in rows
        ]
        lines.append(END)
        write_results("\n".join(lines) + "\n", BEGIN, END)
    if args.json:
        print(json.dumps({"benchmark": "distributed", "rows": rows}))
    return 0


if __name__ == "__main__":
    sys.exit(main())

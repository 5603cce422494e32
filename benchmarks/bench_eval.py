"""Time of the official protocols on a labels-only eval at real size (issue 27: <= 5 min).

Writes a synthetic dataset of V test views of W x H, each with a partner rotated 10 degrees
(so 2V label-map stacks are read and V pairs are scored for VC): a textured plane seen by
cameras that yaw a little from view to view, z-depth computed exactly, GT levels part / object /
group as nested world-space cells on the plane (scene-consistent ids, background outside a
disc), and C cuts per view as world-space cells of C sizes (from a few segments to ~2000), with
a seeded fraction of pixels relabelled per view so view and partner disagree a little. Then runs
``gsseg eval --data D --labels DIR --json`` in a subprocess (sampled, 100 draws) and with
``--exact``, and prints the wall times.

    .venv/bin/python benchmarks/bench_eval.py [--width 1024 --height 768 --views 100 --cuts 8]
        [--work DIR] [--json]
"""

from __future__ import annotations

import argparse
import json
import math
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
from PIL import Image

REPO = Path(__file__).resolve().parents[1]
PLANE_Z = 5.0


def yaw(deg: float) -> np.ndarray:
    """OpenCV camera-to-world rotation [3,3]: a turn about the camera's vertical (y) axis."""
    a = math.radians(deg)
    return np.array([[math.cos(a), 0, math.sin(a)], [0, 1, 0], [-math.sin(a), 0, math.cos(a)]])


def plane_hits(rot: np.ndarray, K: np.ndarray, w: int, h: int) -> tuple[np.ndarray, np.ndarray]:
    """(z-depth [H,W] float32, world (x, y) of every pixel centre [H,W,2]) for a camera at the origin."""
    row, col = np.mgrid[0:h, 0:w].astype(np.float64)
    ray = np.stack([(col + 0.5 - K[0, 2]) / K[0, 0], (row + 0.5 - K[1, 2]) / K[1, 1], np.ones_like(col)], -1)
    world = ray @ rot.T
    t = PLANE_Z / world[..., 2]  # the ray's z in camera coordinates is 1, so t is the z-depth
    return t.astype(np.float32), world[..., :2] * t[..., None]


def cells(xy: np.ndarray, size: float, inside: np.ndarray) -> np.ndarray:
    """Scene-consistent cell ids [H,W] uint16 of a square grid of ``size`` world units (0 outside)."""
    ij = np.floor(xy / size).astype(np.int64) + 500
    ids = (ij[..., 0] * 1000 + ij[..., 1]) % 65000 + 1
    return np.where(inside, ids, 0).astype(np.uint16)


def write_dataset(root: Path, width: int, height: int, views: int, n_cuts: int, seed: int = 0) -> tuple[Path, Path]:
    """The dataset and label folder described in the module doc; returns (data, labels)."""
    data, labels = root / "data", root / "labels"
    for d in ("images", "depth", "gt/part", "gt/object", "gt/group"):
        (data / d).mkdir(parents=True, exist_ok=True)
    f = 0.9 * width
    K = np.array([[f, 0, width / 2], [0, f, height / 2], [0, 0, 1]])
    rng = np.random.default_rng(seed)
    blank = Image.fromarray(np.zeros((height, width, 3), np.uint8))
    sizes = np.geomspace(0.04, 2.0, n_cuts)  # world units: ~2000 down to a few segments per view
    frames, pairs = [], []
    for v in range(views):
        base = -15.0 + 30.0 * v / max(views - 1, 1)
        for stem, deg in ((f"test_{v:03d}", base), (f"test_{v:03d}_rot10", base + 10.0)):
            rot = yaw(deg)
            depth, xy = plane_hits(rot, K, width, height)
            inside = np.hypot(xy[..., 0], xy[..., 1]) < 3.0
            np.save(data / "depth" / f"{stem}.npy", depth)
            blank.save(data / "images" / f"{stem}.png")
            for lv, size in (("part", 0.25), ("object", 0.5), ("group", 1.0)):
                Image.fromarray(cells(xy, size, inside)).save(data / "gt" / lv / f"{stem}.png")
            noise = rng.random((height, width)) < 0.02
            for t, size in enumerate(sizes):
                cut = cells(xy + 0.013 * t, float(size), inside)
                cut[noise] = rng.integers(1, 5, int(noise.sum()))
                (labels / f"c{t:02d}").mkdir(parents=True, exist_ok=True)
                Image.fromarray(cut).save(labels / f"c{t:02d}" / f"{stem}.png")
            c2w = np.eye(4)
            c2w[:3, :3] = rot
            c2w[:3, 1:3] *= -1.0  # OpenCV -> OpenGL axes
            frames.append({"file_path": f"images/{stem}.png", "transform_matrix": c2w.tolist()})
        pairs.append([f"test_{v:03d}", f"test_{v:03d}_rot10"])
    blank.save(data / "images" / "train_000.png")
    intr = {"camera_model": "OPENCV", "w": width, "h": height, "fl_x": f, "fl_y": f, "cx": width / 2, "cy": height / 2}
    train = [{**frames[0], "file_path": "images/train_000.png"}]
    (data / "transforms_train.json").write_text(json.dumps({**intr, "frames": train}))
    (data / "transforms_test.json").write_text(json.dumps({**intr, "frames": frames}))
    (data / "pairs.json").write_text(json.dumps(pairs))
    return data, labels


def timed_eval(data: Path, labels: Path, exact: bool) -> tuple[float, float, dict]:
    """(wall s, CPU s of the child process, its JSON) of one ``gsseg eval --labels`` run. The CPU
    time is what the wall time would be on an idle machine (the eval is single-threaded numpy)."""
    cmd = [str(REPO / ".venv" / "bin" / "gsseg"), "eval", "--data", str(data), "--labels", str(labels), "--json"]
    if exact:
        cmd.append("--exact")
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    t0 = time.perf_counter()
    out = subprocess.run(cmd, check=True, capture_output=True, text=True)
    wall = time.perf_counter() - t0
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    return wall, cpu, json.loads(out.stdout)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--width", type=int, default=1024)
    ap.add_argument("--height", type=int, default=768)
    ap.add_argument("--views", type=int, default=100, help="test views scored (each also has a partner)")
    ap.add_argument("--cuts", type=int, default=8)
    ap.add_argument("--work", type=Path, default=None, help="folder for the dataset (default: a temporary one)")
    ap.add_argument("--json", action="store_true")
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        root = args.work or Path(tmp)
        t0 = time.perf_counter()
        data, labels = write_dataset(root, args.width, args.height, args.views, args.cuts)
        made = time.perf_counter() - t0
        sampled_s, sampled_cpu, sampled = timed_eval(data, labels, exact=False)
        exact_s, exact_cpu, exact = timed_eval(data, labels, exact=True)
    result = {
        "size": f"{args.width}x{args.height}",
        "views": args.views,
        "label_maps_read": 2 * args.views * args.cuts,
        "cuts": args.cuts,
        "dataset_write_s": round(made, 1),
        "eval_sampled_s": round(sampled_s, 1),
        "eval_sampled_cpu_s": round(sampled_cpu, 1),
        "eval_exact_s": round(exact_s, 1),
        "eval_exact_cpu_s": round(exact_cpu, 1),
        "load_average_1min": round(os.getloadavg()[0], 1),
        "nc_part": sampled["nc_part"],
        "vc_part": sampled["vc_part"],
        "nc_part_exact": exact["nc_part"],
        "vc_part_exact": exact["vc_part"],
    }
    if args.json:
        print(json.dumps(result))
    else:
        for k, v in result.items():
            print(f"{k:>18}: {v}")
    sys.exit(0)


if __name__ == "__main__":
    main()

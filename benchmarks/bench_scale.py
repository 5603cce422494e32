"""How gsseg's cost grows with image size, views and Gaussians (issue: real-size scenes).

Each point is a scene made by ``gsseg synth`` (tabletop) at W x H with V training views, masks
``simulated`` (medium), and N Gaussians unprojected from the depth maps
(``init_from_depth``, subsampled to exactly N), written as a PLY and used through
``gsseg train --init-ply`` (so the RGB stage is skipped, as for a user's trained 3DGS). Every
command runs in its own process; per point the benchmark records

- features stage: seconds per 1000 steps (``--feature-iters`` steps, contrastive) and peak RSS,
- table build: seconds per view (mean over 3 views, this process),
- segment (``--auto``), export, eval: seconds and peak RSS,
- viewer load: seconds to load the run into the viewer app (no browser),

then fits growth exponents (log-log least squares) of the features-stage time against pixels
per view, views and Gaussians over the one-factor-at-a-time points, and writes a PNG plot and
a section of ``benchmarks/RESULTS.md`` (``<!-- scale:begin -->`` / ``<!-- scale:end -->``).

    .venv/bin/python benchmarks/bench_scale.py [--points quick|grid|target|all] [--feature-iters 200]
        [--work DIR] [--json] [--no-write]

``quick``: 3 small points (minutes); ``grid``: the one-factor-at-a-time grid around
512x384 / 100 views / 300k; ``target``: 1M Gaussians, 100 views of 1024x768, 2000 steps.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import re
import subprocess
import sys
import time
from dataclasses import asdict, dataclass
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
RESULTS = REPO / "benchmarks" / "RESULTS.md"
BEGIN, END = "<!-- scale:begin -->", "<!-- scale:end -->"
GIB = 2**30


@dataclass(frozen=True)
class Point:
    width: int
    height: int
    views: int
    gaussians: int
    steps: int

    @property
    def name(self) -> str:
        return f"{self.width}x{self.height}_v{self.views}_n{self.gaussians // 1000}k"

    @property
    def pixels(self) -> int:
        return self.width * self.height


def points(which: str, steps: int) -> list[Point]:
    quick = [Point(128, 96, 12, 20_000, steps), Point(256, 192, 12, 20_000, steps), Point(256, 192, 12, 80_000, steps)]
    base = dict(width=512, height=384, views=100, gaussians=300_000, steps=steps)
    grid = [Point(**base)]
    grid += [Point(**{**base, "width": w, "height": h}) for w, h in ((256, 192), (1024, 768))]
    grid += [Point(**{**base, "views": v}) for v in (50, 200)]
    grid += [Point(**{**base, "gaussians": n}) for n in (50_000, 1_000_000)]
    target = [Point(1024, 768, 100, 1_000_000, 2000)]
    return {"quick": quick, "grid": grid, "target": target, "all": grid + target}[which]


MEASURE = r"""
import json, resource, sys, time
from gsseg.cli.app import main
t0 = time.perf_counter()
try:
    main(sys.argv[1:])
    code = 0
except SystemExit as e:
    code = e.code or 0
print("@@measure " + json.dumps({"seconds": time.perf_counter() - t0, "code": code,
      "peak_rss": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024}), file=sys.stderr)
"""


def gsseg(*args: str, log: Path) -> dict:
    """Run ``gsseg ARGS`` in a fresh process; its wall time and peak RSS."""
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    proc = subprocess.run([sys.executable, "-c", MEASURE, *args], capture_output=True, text=True, env=env)
    with open(log, "a") as f:
        f.write(f"$ gsseg {' '.join(args)}\n{proc.stdout[-4000:]}{proc.stderr[-4000:]}\n")
    found = re.findall(r"@@measure (\{.*\})", proc.stderr)
    if proc.returncode != 0 or not found or json.loads(found[-1])["code"] != 0:
        raise RuntimeError(f"gsseg {' '.join(args)} failed (see {log}): {proc.stderr[-800:]}")
    return json.loads(found[-1])


def make_ply(data: Path, n: int, out: Path) -> int:
    """N Gaussians from the dataset's depth maps (a random subset), as a PLY; returns N written."""
    import numpy as np
    import torch

    from gsseg.data import load_dataset
    from gsseg.gaussians.init import init_from_depth
    from gsseg.gaussians.ply import write_ply

    ds = load_dataset(data)
    views = ds.names("train")
    total = sum(int((ds.depth(v) > 0).sum()) for v in views)
    stride = max(1, int(math.floor(math.sqrt(total / max(n, 1) / 1.2))))
    scene, _ = init_from_depth(ds, views, stride=stride, size=0.6)
    keep = np.random.default_rng(0).permutation(len(scene))[:n]
    write_ply(out, scene.subset(torch.from_numpy(np.sort(keep))))
    return int(min(n, len(scene)))


def table_build_seconds(run: Path) -> float:
    """Mean seconds to build one full-resolution contribution table (3 training views)."""
    import torch

    from gsseg.data import load_dataset
    from gsseg.gaussians.ply import read_ply
    from gsseg.render.tables import build_contribution_table
    from gsseg.run.run_dir import RunDir

    cfg = RunDir(run).read_config()
    ds = load_dataset(cfg.dataset)
    scene = read_ply(run / "scene.ply")
    cams = ds.cameras("train")
    torch.set_num_threads(1)  # as in the features stage
    times = []
    for i in range(min(3, len(cams))):
        t0 = time.perf_counter()
        build_contribution_table(scene.means, scene.quats, scene.scales, scene.opacities, cams[i])
        times.append(time.perf_counter() - t0)
    return sum(times) / len(times)


def viewer_load_seconds(run: Path) -> float:
    from gsseg.viewer.server import ViewerApp, ViewerConfig

    t0 = time.perf_counter()
    app = ViewerApp(run, ViewerConfig(port=0))
    app.start()
    seconds = time.perf_counter() - t0
    app.stop()
    return seconds


def measure(point: Point, work: Path) -> dict:
    work.mkdir(parents=True, exist_ok=True)
    log = work / f"{point.name}.log"
    data = work / f"data_{point.width}x{point.height}_v{point.views}"
    row: dict = {**asdict(point), "name": point.name}
    if not (data / "scene.json").is_file():
        t0 = time.perf_counter()
        gsseg(
            "synth",
            str(data),
            "--scene",
            "tabletop",
            "--width",
            str(point.width),
            "--height",
            str(point.height),
            "--views",
            str(point.views),
            "--test-views",
            "4",
            "--supersample",
            "1",
            "--force",
            log=log,
        )
        gsseg("masks", str(data), "--source", "simulated", "--noise", "medium", log=log)
        row["data_seconds"] = time.perf_counter() - t0
    ply = work / f"{point.name}.ply"
    if not ply.is_file():
        row["gaussians"] = make_ply(data, point.gaussians, ply)
    run = work / f"run_{point.name}"
    feat = gsseg(
        "train",
        str(data),
        "--out",
        str(run),
        "--init-ply",
        str(ply),
        "--objective",
        "contrastive",
        "--feature-iters",
        str(point.steps),
        "--restart",
        "--quiet",
        log=log,
    )
    summary = json.loads((run / "features.json").read_text())
    row["features_s_per_1000"] = summary["seconds"] / max(summary["steps"], 1) * 1000
    row["features_peak_rss_gib"] = feat["peak_rss"] / GIB
    row["table_build_s"] = table_build_seconds(run)
    for verb, args in (
        ("segment", ["segment", str(run), "--auto", "--quiet"]),
        ("export", ["export", str(run), "--out", str(work / f"export_{point.name}"), "--quiet"]),
        ("eval", ["eval", str(run), "--json"]),
    ):
        m = gsseg(*args, log=log)
        row[f"{verb}_s"], row[f"{verb}_peak_rss_gib"] = m["seconds"], m["peak_rss"] / GIB
    row["viewer_load_s"] = viewer_load_seconds(run)
    row["peak_rss_gib"] = max(v for k, v in row.items() if k.endswith("peak_rss_gib"))
    return row


SIZE_AXES = {
    "pixels": lambda r: r["width"] * r["height"],
    "views": lambda r: r["views"],
    "gaussians": lambda r: r["gaussians"],
}


def growth_exponents(rows: list[dict]) -> dict[str, float]:
    """Slope of log(features time) against log(x) over the largest set of rows that differ only in x."""
    import numpy as np

    out = {}
    for key, x in SIZE_AXES.items():
        groups: dict[tuple, list[dict]] = {}
        for r in rows:
            groups.setdefault(tuple(f(r) for k, f in SIZE_AXES.items() if k != key), []).append(r)
        best = max(groups.values(), key=len)
        if len({x(r) for r in best}) >= 2:
            fit = np.polyfit(np.log([x(r) for r in best]), np.log([r["features_s_per_1000"] for r in best]), 1)
            out[key] = float(fit[0])
    return out


def plot(rows: list[dict], path: Path) -> bool:
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        print("matplotlib is not installed (pip install matplotlib): no plot", file=sys.stderr)
        return False
    fig, axes = plt.subplots(1, 3, figsize=(13, 4))
    labels = {"pixels": "pixels per view", "views": "training views", "gaussians": "Gaussians"}
    for ax, (key, x) in zip(axes, SIZE_AXES.items()):
        label = labels[key]
        pts = sorted(rows, key=x)
        ax.loglog([x(r) for r in pts], [r["features_s_per_1000"] for r in pts], "o-", label="features s/1000 steps")
        ax.loglog([x(r) for r in pts], [r["table_build_s"] for r in pts], "s--", label="table build s/view")
        ax.loglog([x(r) for r in pts], [r["peak_rss_gib"] for r in pts], "^:", label="peak RSS GiB")
        ax.set_xlabel(label)
        ax.grid(True, which="both", alpha=0.3)
    axes[0].legend(fontsize=8)
    fig.suptitle("gsseg cost against scene size (2-core CPU)")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    return True


def markdown(rows: list[dict], exponents: dict[str, float], plotted: bool) -> str:
    lines = [
        BEGIN,
        "## Scale (`python benchmarks/bench_scale.py`)",
        "",
        "| point | Gaussians | features s/1000 steps | table build s/view | peak RSS GiB | segment s | "
        "export s | eval s | viewer load s |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for r in rows:
        lines.append(
            f"| {r['width']}x{r['height']}, {r['views']} views | {r['gaussians']:,} | "
            f"{r['features_s_per_1000']:.1f} | {r['table_build_s']:.2f} | {r['peak_rss_gib']:.2f} | "
            f"{r['segment_s']:.1f} | {r['export_s']:.1f} | {r['eval_s']:.1f} | {r['viewer_load_s']:.1f} |"
        )
    if exponents:
        lines += [
            "",
            "Growth exponents of the features-stage time (log-log fit): "
            + ", ".join(f"{k} {v:.2f}" for k, v in exponents.items())
            + ".",
        ]
    if plotted:
        lines += ["", "![cost against size](scale.png)"]
    lines.append(END)
    return "\n".join(lines) + "\n"


def write_results(section: str, begin: str = BEGIN, end: str = END) -> None:
    """Replace the ``begin``..``end`` section of RESULTS.md with ``section`` (appended if absent)."""
    text = RESULTS.read_text() if RESULTS.is_file() else "# Benchmark results\n"
    if begin in text and end in text:
        text = text[: text.index(begin)] + section + text[text.index(end) + len(end) + 1 :]
    else:
        text = text.rstrip("\n") + "\n\n" + section
    RESULTS.write_text(text)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--points", choices=("quick", "grid", "target", "all"), default="quick")
    p.add_argument("--feature-iters", type=int, default=200, help="features steps per grid point (target: 2000)")
    p.add_argument("--work", type=Path, default=Path("/tmp/gsseg-bench-scale"))
    p.add_argument("--json", action="store_true")
    p.add_argument("--no-write", action="store_true", help="do not touch RESULTS.md / scale.png")
    args = p.parse_args(argv)
    rows = []
    for point in points(args.points, args.feature_iters):
        print(f"[bench_scale] {point.name} ({point.steps} steps) ...", file=sys.stderr, flush=True)
        row = measure(point, args.work)
        print(
            f"[bench_scale] {point.name}: "
            + json.dumps({k: round(v, 3) if isinstance(v, float) else v for k, v in row.items()}),
            file=sys.stderr,
            flush=True,
        )
        rows.append(row)
    exponents = growth_exponents(rows)
    plotted = False
    if not args.no_write:
        plotted = plot(rows, REPO / "benchmarks" / "scale.png")
        write_results(markdown(rows, exponents, plotted))
    result = {"benchmark": "scale", "points": rows, "growth_exponents": exponents}
    if args.json:
        print(json.dumps(result))
    return 0


if __name__ == "__main__":
    sys.exit(main())

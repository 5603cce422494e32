"""Oracle ladder: the same lifting pipeline fed better and better inputs, so the stage that
loses quality shows.

Per scene (built-in, or any dataset with ``gt/<level>/`` and depth) the RGB geometry is made
once; then, per rung:

- rung 0 ``ceiling``: ground-truth labels put on the Gaussians and rendered (no features);
- ``gt-tree``: features made from those labels through the segmentation stage (hierarchy,
  cuts, label maps): what that stage alone loses;
- rung 1 ``gt``: the ground-truth masks as input masks (``gt/<level>`` as label maps, ids
  permuted at random per view: perfectly consistent segments, no shared ids);
- rungs 2-4 ``easy`` / ``medium`` / ``hard``: simulated SAM-like masks (built-in scenes);

and for every rung with masks: the input masks scored like a result, then each objective's
features scored (a) in UFF's 2D mode (per-view cuts of the rendered features) and (b) by the
3D hierarchy's cuts. Metrics: NC, SI, VC, point-query mIoU (L1/L2), best-segment object mIoU
and best-cut PQ^scene of the hierarchy; prompted and clustering objectives report their own
(object mIoU / accuracy, PQ^scene). With several seeds, masks and feature stage take the seed
and rows are means.

    .venv/bin/python benchmarks/ladder.py                              # 4 built-in scenes, contrastive + ultrametric
    .venv/bin/python benchmarks/ladder.py --scenes tabletop --rungs gt,medium --seeds 0,1,2
    .venv/bin/python benchmarks/ladder.py --data /path/to/dataset --rungs gt   # your data with gt/
    .venv/bin/python benchmarks/ladder.py --quick                      # one small scene, < 5 min

The table goes to ``benchmarks/RESULTS.md`` between ``<!-- ladder:begin -->`` and
``<!-- ladder:end -->`` (hand-written notes between ``<!-- ladder-notes:begin/end -->`` are kept).
"""

from __future__ import annotations

import argparse
import json
import shutil
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "benchmarks"))

import quality  # noqa: E402  (the quality suite's stages: synth, RGB, features, eval)

BEGIN, END = "<!-- ladder:begin -->", "<!-- ladder:end -->"
NOTES_BEGIN, NOTES_END = "<!-- ladder-notes:begin -->", "<!-- ladder-notes:end -->"
BUILTIN = ("tabletop", "livingroom", "toys", "random")
MASK_RUNGS = ("gt", "easy", "medium", "hard")
RUNG_NAMES = {"gt": "1 GT masks", "easy": "2 easy", "medium": "3 medium", "hard": "4 hard"}


@dataclass
class Ladder:
    scenes: list[str] = field(default_factory=lambda: list(BUILTIN))
    data: list[str] = field(default_factory=list)  # user datasets (with gt/ and depth)
    rungs: list[str] = field(default_factory=lambda: list(MASK_RUNGS))
    objectives: list[str] = field(default_factory=lambda: ["contrastive", "ultrametric"])
    seeds: list[int] = field(default_factory=lambda: [0])
    reuse_rgb: bool = False  # keep an RGB run already in the work folder
    suite: quality.Suite = field(default_factory=lambda: fixed_steps(quality.default_suite()))


def fixed_steps(suite: quality.Suite) -> quality.Suite:
    """The suite with no time cap on the RGB and feature stages: every run takes its full step
    count, so a rung's numbers do not depend on how busy the machine was."""
    suite.rgb_time_s = 0.0
    suite.feature_time_s = 0.0
    return suite


# --- inputs --------------------------------------------------------------------------------------


def mask_dataset(source: Path, work: Path, rung: str, seed: int) -> Path:
    """A dataset folder that shares ``source``'s files (symlinks) and holds its own masks for ``rung``."""
    from gsseg.data import load_dataset
    from gsseg.masks.runner import SourceOptions, make_source, run_source

    dst = work / f"{source.name}_{rung}_seed{seed}"
    if dst.exists():
        shutil.rmtree(dst)
    dst.mkdir(parents=True)
    for p in source.iterdir():
        if p.name not in ("masks", "label_masks"):
            (dst / p.name).symlink_to(p.resolve())
    ds = load_dataset(dst)
    if rung == "gt":
        write_permuted_gt(ds, dst, seed)
        source_name, options = "labels", SourceOptions()
    else:
        source_name, options = "simulated", SourceOptions(noise=rung, seed=seed)
    run_source(ds, make_source(source_name, options), split="train", force=True, show_progress=False)
    return dst


def write_permuted_gt(ds, dst: Path, seed: int) -> None:
    """``label_masks/<stem>/<level>.png``: every ground-truth level of every training view with its
    segment ids permuted at random per view (0 = background stays "no mask")."""
    from PIL import Image

    rng = np.random.default_rng(seed)
    for view in ds.names("train"):
        folder = dst / "label_masks" / view
        folder.mkdir(parents=True, exist_ok=True)
        for level in ds.gt_levels:
            gt = ds.gt(view, level).astype(np.int64)
            ids = np.unique(gt[gt > 0])
            lut = np.zeros(int(gt.max()) + 1, np.int64)
            lut[ids] = rng.permutation(len(ids)) + 1
            Image.fromarray(lut[gt].astype(np.uint16)).save(folder / f"{level}.png")


# --- runs ----------------------------------------------------------------------------------------


def numeric(result: dict) -> dict:
    return {k: v for k, v in result.items() if isinstance(v, (int, float)) and not isinstance(v, bool)}


LEVELS = ("part", "object", "group")
METRICS = (
    "nc_mean",
    "nc_part",
    "nc_object",
    "nc_group",
    "si",
    "vc",
    "hier_miou_l1",
    "hier_miou_l2",
    "hier_object_miou",
    "hier_pq_scene",
    "object_miou",
    "object_acc",
    "pq_scene",
)


def mode_rows(base: dict, result: dict) -> list[dict]:
    """The 3D and 2D rows of one evaluated run (2D: UFF's per-view cuts)."""
    rows = [{**base, "mode": "3D", **{k: result[k] for k in METRICS if k in result}}]
    if "nc_mean_2d" in result:
        rows.append(
            {**base, "mode": "2D", **{k: result.get(f"{k}_2d") for k in ("nc_mean", "si", "vc") if f"{k}_2d" in result}}
        )
    return rows


def run_scene(ladder: Ladder, name: str, data: Path, work: Path, log) -> list[dict]:
    from gsseg.data import load_dataset

    suite = ladder.suite
    ds = load_dataset(data)
    base_run = work / f"run_{name}_rgb"
    t0 = time.perf_counter()
    if not (ladder.reuse_rgb and (base_run / "scene.ply").is_file()):
        quality.train_rgb(suite, ds, base_run)
    ceil = numeric(quality.evaluate(suite, base_run, ["psnr", "oracle", "oracle_tree"]))
    log(
        f"{name}: RGB + ceilings {time.perf_counter() - t0:.0f} s, PSNR {ceil.get('psnr', float('nan')):.2f} dB, "
        f"ceiling NC {ceil.get('oracle_nc_mean', float('nan')):.3f}, GT-feature tree NC "
        f"{ceil.get('oracle_tree_nc_mean', float('nan')):.3f}"
    )
    rows = [
        {
            "scene": name,
            "rung": "0 ceiling",
            "objective": "GT-labelled Gaussians",
            "mode": "3D",
            "psnr": ceil.get("psnr"),
            **{k: ceil.get(f"oracle_{k}") for k in ("nc_mean", "si", "vc")},
            "object_miou": ceil.get("oracle_object_miou"),
            "pq_scene": ceil.get("oracle_pq_scene"),
        },
        {
            "scene": name,
            "rung": "0 ceiling",
            "objective": "GT features → hierarchy",
            "mode": "3D",
            **{k: ceil.get(f"oracle_tree_{k}") for k in ("nc_mean", "si", "vc", "hier_object_miou", "hier_pq_scene")},
        },
    ]
    if not ds.gt_levels:
        log(f"{name}: no gt/<level>/ label maps: only the RGB stage ran")
        return rows
    for rung in ladder.rungs:
        per_seed: dict[tuple[str, str], list[dict]] = {}
        for seed in ladder.seeds:
            mdata = mask_dataset(Path(ds.root), work / "data", rung, seed)
            mds = load_dataset(mdata)
            inputs = numeric(_evaluate_on(suite, base_run, mdata, ["input"]))
            per_seed.setdefault(("input masks", "masks"), []).append(
                {
                    "nc_mean": inputs.get("input_nc_mean"),
                    **{f"nc_{level}": inputs.get(f"input_nc_{level}") for level in LEVELS},
                    "hier_miou_l1": inputs.get("input_hier_miou_l1"),
                    "hier_miou_l2": inputs.get("input_hier_miou_l2"),
                }
            )
            for objective in ladder.objectives:
                t1 = time.perf_counter()
                root = work / f"run_{name}_{rung}_{objective}_s{seed}"
                quality.train_features(suite, mds, base_run, root, objective, seed)
                result = numeric(quality.evaluate(suite, root, ["hierarchy", "prompted", "panoptic"]))
                for row in mode_rows({}, result):
                    per_seed.setdefault((objective, row.pop("mode")), []).append(row)
                log(
                    f"  {RUNG_NAMES[rung]} seed {seed} {objective}: NC 3D {result.get('nc_mean', float('nan')):.3f} "
                    f"2D {result.get('nc_mean_2d', float('nan')):.3f} "
                    f"(input {inputs.get('input_nc_mean', float('nan')):.3f}) "
                    f"{time.perf_counter() - t1:.0f} s"
                )
        for (objective, mode), values in per_seed.items():
            rows.append(
                {
                    "scene": name,
                    "rung": RUNG_NAMES[rung],
                    "objective": objective,
                    "mode": mode,
                    **mean_rows(values),
                    "seeds": len(values),
                }
            )
    return rows


def _evaluate_on(suite: quality.Suite, run_root: Path, data: Path, metrics: list[str]) -> dict:
    """Evaluate ``run_root``'s geometry against dataset ``data`` (its masks: the input rows)."""
    from gsseg.eval.context import EvalSettings
    from gsseg.eval.run_eval import evaluate_run

    settings = EvalSettings(samples=suite.samples, seed=suite.seed, cuts="computed", max_cuts=suite.max_cuts)
    return evaluate_run(run_root, data=data, metrics=metrics, show_progress=False, settings=settings)


def mean_rows(values: list[dict]) -> dict:
    keys = {k for v in values for k in v if v[k] is not None}
    out = {}
    for k in keys:
        xs = [v[k] for v in values if v.get(k) is not None]
        out[k] = float(np.mean(xs))
        if len(xs) > 1:
            out[f"{k}_sd"] = float(np.std(xs, ddof=1))
    return out


def run_ladder(ladder: Ladder, work: Path, log=print) -> list[dict]:
    rows = []
    for scene in ladder.scenes:
        data = quality.make_data(ladder.suite, scene, work)
        rows += run_scene(ladder, scene, data, work, log)
    for d in ladder.data:
        path = Path(d).resolve()
        rows += run_scene(ladder, path.name, path, work, log)
    return rows


# --- table ---------------------------------------------------------------------------------------

COLUMNS = [
    ("scene", "scene"),
    ("rung", "rung"),
    ("objective", "objective"),
    ("mode", "mode"),
    ("seeds", "seeds"),
    ("nc_mean", "NC"),
    ("nc_part", "NC part"),
    ("nc_object", "NC object"),
    ("nc_group", "NC group"),
    ("si", "SI"),
    ("vc", "VC"),
    ("hier_miou_l1", "mIoU L1"),
    ("hier_miou_l2", "mIoU L2"),
    ("hier_object_miou", "obj mIoU (best seg.)"),
    ("hier_pq_scene", "PQ^scene (best cut)"),
    ("object_miou", "obj mIoU"),
    ("object_acc", "obj acc"),
    ("pq_scene", "PQ^scene"),
]


def _cell(row: dict, key: str) -> str:
    v = row.get(key)
    if v is None:
        return "–"
    if isinstance(v, float):
        sd = row.get(f"{key}_sd")
        return f"{v:.3f}" + (f" ± {sd:.3f}" if sd is not None else "")
    return str(v)


def render_markdown(rows: list[dict], ladder: Ladder, total_s: float, notes: str) -> str:
    s = ladder.suite
    lines = [
        BEGIN,
        "## Oracle ladder (`benchmarks/ladder.py`)",
        "",
        f"Scenes {', '.join(ladder.scenes + [Path(d).name for d in ladder.data])}; rungs "
        f"{', '.join(RUNG_NAMES[r] for r in ladder.rungs)}; objectives {', '.join(ladder.objectives)}; seeds "
        f"{', '.join(map(str, ladder.seeds))} (masks and features; ± is the sd over seeds); {s.width}×{s.height}, "
        f"{s.views} training + {s.test_views} test views; RGB {quality.cap(s.rgb_iters, s.rgb_time_s)}; "
        f"feature steps "
        + ", ".join(f"{o} {s.feature_iters.get(o, 0)}" for o in ladder.objectives)
        + (f" (≤ {s.feature_time_s:.0f} s)" if s.feature_time_s > 0 else " (no time cap)")
        + f". Total {total_s / 60:.1f} min.",
        "",
        "Rung 0: the ground truth on the Gaussians (rendered directly), and the same labels as features "
        "through the hierarchy / cut / label-map stage. Input-mask rows score the masks themselves on the "
        "training views (NC and point query); 3D rows the hierarchy's cuts rendered into the test views; "
        "2D rows UFF's per-view cuts of the rendered features. obj mIoU (best seg.): per ground-truth object "
        "the best scene-level IoU of any segment of any cut; PQ^scene (best cut): the best single cut.",
        "",
        "| " + " | ".join(h for _, h in COLUMNS) + " |",
        "|" + "---|" * len(COLUMNS),
    ]
    for r in rows:
        lines.append("| " + " | ".join(_cell(r, k) for k, _ in COLUMNS) + " |")
    lines += ["", notes or f"{NOTES_BEGIN}\nDiagnosis: (edit here; kept across runs)\n{NOTES_END}", END]
    return "\n".join(lines)


def merge_outputs(paths: list[Path], ladder: Ladder) -> tuple[list[dict], float]:
    """Rows and summed run time of several ``--json`` outputs; ``ladder.scenes`` becomes their scenes."""
    rows: list[dict] = []
    total = 0.0
    for path in paths:
        out = json.loads(path.read_text())
        rows += out["rows"]
        total += float(out["total_s"])
    ladder.scenes = list(dict.fromkeys(r["scene"] for r in rows))
    return rows, total


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--scenes", help="comma-separated built-in scenes (default: all four; 'none' for --data only)")
    p.add_argument("--data", action="append", default=[], help="a dataset with gt/<level>/ and depth/ (repeatable)")
    p.add_argument("--rungs", help="comma-separated of gt, easy, medium, hard (default: all)")
    p.add_argument("--objectives", help="comma-separated objectives (default: contrastive,ultrametric)")
    p.add_argument("--seeds", help="comma-separated seeds of masks and features (default: 0)")
    p.add_argument("--quick", action="store_true", help="one small scene, rungs gt and medium, contrastive")
    p.add_argument("--work", type=Path, help="keep data and runs here (default: a temporary folder)")
    p.add_argument("--results", type=Path, default=ROOT / "benchmarks" / "RESULTS.md")
    p.add_argument("--reuse-rgb", action="store_true", help="with --work: keep RGB runs already there")
    p.add_argument("--no-write", action="store_true", help="do not touch RESULTS.md")
    p.add_argument("--json", action="store_true", help="print the rows as JSON on stdout")
    p.add_argument("--threads", type=int, default=1, help="torch CPU threads (0 = torch's default)")
    p.add_argument(
        "--merge",
        type=Path,
        nargs="+",
        help="write the table from the --json outputs of earlier runs (e.g. one process per scene) instead of running",
    )
    args = p.parse_args(argv)
    if args.threads > 0:
        import torch

        torch.set_num_threads(args.threads)
    ladder = Ladder()
    if args.quick:
        ladder = Ladder(
            scenes=["tabletop"],
            rungs=["gt", "medium"],
            objectives=["contrastive"],
            suite=fixed_steps(quality.quick_suite()),
        )
    if args.scenes:
        ladder.scenes = [] if args.scenes == "none" else args.scenes.split(",")
    ladder.data = list(args.data)
    ladder.reuse_rgb = bool(args.reuse_rgb and args.work)
    if args.rungs:
        ladder.rungs = args.rungs.split(",")
    if args.objectives:
        ladder.objectives = args.objectives.split(",")
    if args.seeds:
        ladder.seeds = [int(v) for v in args.seeds.split(",")]
    bad = [r for r in ladder.rungs if r not in MASK_RUNGS]
    if bad:
        p.error(f"unknown rung(s) {', '.join(bad)}; use {', '.join(MASK_RUNGS)}")
    log = (lambda msg: print(msg, file=sys.stderr, flush=True)) if args.json else (lambda msg: print(msg, flush=True))
    t0 = time.perf_counter()
    if args.merge:
        rows, total = merge_outputs(args.merge, ladder)
        t0 -= total
    elif args.work:
        args.work.mkdir(parents=True, exist_ok=True)
        rows = run_ladder(ladder, args.work, log)
    else:
        with tempfile.TemporaryDirectory(prefix="gsseg-ladder-") as tmp:
            rows = run_ladder(ladder, Path(tmp), log)
    total = time.perf_counter() - t0
    notes = ""
    if args.results.is_file():
        text = args.results.read_text()
        if NOTES_BEGIN in text and NOTES_END in text:
            notes = NOTES_BEGIN + text.split(NOTES_BEGIN, 1)[1].split(NOTES_END, 1)[0] + NOTES_END
    markdown = render_markdown(rows, ladder, total, notes)
    if not args.no_write:
        quality.write_section(markdown, args.results, BEGIN, END)
        log(f"wrote {args.results} ({total / 60:.1f} min)")
    print(json.dumps({"rows": rows, "total_s": total}) if args.json else markdown)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

"""One click, the object (issue 31): object mIoU / accuracy of a single click per object.

Per scene (built-in recipe or any dataset with ``gt/object/`` and depth): synthetic data, the RGB
stage once (kept in ``--work`` and reused), masks (simulated SAM-like noise, or ``--import-labels``:
the same noisy masks written as ``label_masks/`` PNGs and imported with the ``labels`` source, so
nothing from ``gt/`` reaches the pipeline); then for every ground-truth object **one run with one
click** on it (its interior pixel in the training view where it is largest, as
``benchmarks/quality.py`` clicks), for ``vote`` and ``object-field``, scored with SANeRF-HQ's
official object IoU / accuracy on the test views (``gsseg eval``'s ``prompted`` metric). The mean
over objects is the one-click object mIoU / mAcc. ``prop_iou`` is the IoU of the propagated
training-view masks with the ground-truth object (what the objectives are taught) and ``grown`` how
many times larger than the object they are.

    .venv/bin/python benchmarks/one_click.py --scenes livingroom --objectives vote
    .venv/bin/python benchmarks/one_click.py --scenes tabletop,livingroom,toys,random,nested \\
        --objectives vote,object-field --work /tmp/one_click
    .venv/bin/python benchmarks/one_click.py --scenes random --seed 5 --noise hard --import-labels

Runs use one torch thread and fixed step counts (RGB 3000, object-field 300), so numbers do not
depend on the machine's load.
"""

from __future__ import annotations

import argparse
import json
import shutil
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "benchmarks"))

import quality  # noqa: E402  (synth, RGB stage, clicks and eval of the quality suite)


def write_label_masks(ds, noise: str, seed: int) -> None:
    """``label_masks/<stem>/<k>.png`` of the simulated masks of every training view: the masks
    packed greedily into as few non-overlapping label maps as they need (ids in random order)."""
    from PIL import Image

    from gsseg.masks.sources.simulated import NoiseModel, simulate_masks, view_rng

    model = NoiseModel.preset(noise)
    root = Path(ds.root)
    if (root / "label_masks").exists():
        shutil.rmtree(root / "label_masks")
    for view in ds.names("train"):
        levels = [lv for lv in ds.gt_levels if ds.gt(view, lv) is not None]
        gt = {lv: np.asarray(ds.gt(view, lv)) for lv in levels}
        rng = view_rng(seed, view)
        masks, _ = simulate_masks(gt, levels, model, rng)
        layers: list[np.ndarray] = []
        for m in rng.permutation(len(masks)):
            mask = masks[m]
            for layer in layers:
                if not (layer[mask] > 0).any():
                    layer[mask] = int(layer.max()) + 1
                    break
            else:
                layer = np.zeros(mask.shape, np.uint16)
                layer[mask] = 1
                layers.append(layer)
        folder = root / "label_masks" / view
        folder.mkdir(parents=True, exist_ok=True)
        for k, layer in enumerate(layers):
            Image.fromarray(layer).save(folder / f"{k}.png")


def make_masks(ds, noise: str, seed: int, import_labels: bool) -> None:
    from gsseg.masks.runner import SourceOptions, make_source, run_source

    if import_labels:
        write_label_masks(ds, noise, seed)
        source = make_source("labels", SourceOptions())
    else:
        source = make_source("simulated", SourceOptions(noise=noise, seed=seed))
    run_source(ds, source, split="train", force=True, show_progress=False)


def propagated(ds, base_run: Path, click: str, level: str | None) -> dict[str, np.ndarray]:
    """The prompts stage alone: view -> [H,W] labels (-1 ignore, 0 background, 1 the object) of
    one click propagated over the training views at the dataset's size."""
    from gsseg.masks.store import MaskStore
    from gsseg.objectives.base import FeatureContext
    from gsseg.prompts.run import load_run_geometry, propagate_for_run
    from gsseg.prompts.spec import PromptOptions

    cams = ds.cameras("train")
    ctx = FeatureContext(
        dataset=ds,
        store=MaskStore(ds.masks_dir),
        views=list(cams.names),
        height=int(cams.heights[0]),
        width=int(cams.widths[0]),
    )
    options = PromptOptions(clicks=[click], **({"level": level} if level else {}))
    return propagate_for_run(ctx, options, scene=load_run_geometry(base_run)).labels


def propagation_scores(labels: dict[str, np.ndarray], ds, gt_id: int) -> tuple[float, float]:
    """(IoU, size ratio) of the propagated object masks against the ground-truth object ``gt_id``,
    pooled over the training views that got labels."""
    inter = union = pred_n = gt_n = 0
    for view, lab in labels.items():
        gt = np.asarray(ds.gt(view, "object"))
        p, g = lab == 1, gt == gt_id
        inter += int((p & g).sum())
        union += int((p | g).sum())
        pred_n += int(p.sum())
        gt_n += int(g.sum())
    return (inter / union if union else float("nan")), (pred_n / gt_n if gt_n else float("nan"))


def run_scene(args, scene: str, data_root: Path | None, log) -> list[dict]:
    from gsseg.data import load_dataset
    from gsseg.eval.context import EvalSettings
    from gsseg.eval.run_eval import evaluate_run

    suite = quality.default_suite()
    suite.rgb_time_s = suite.feature_time_s = 0.0
    suite.seed = args.seed
    work = args.work / f"{scene}_s{args.seed}"
    work.mkdir(parents=True, exist_ok=True)
    if data_root is None:
        data = work / "data"
        if not (data / "transforms_train.json").is_file():
            quality.make_data(suite, scene, work)
            (work / f"data_{scene}").rename(data)
    else:
        data = data_root
    ds = load_dataset(data)
    base_run = work / "run_rgb"
    if not (base_run / "scene.ply").is_file():
        t0 = time.perf_counter()
        quality.train_rgb(suite, ds, base_run)
        log(f"{scene}: RGB stage {time.perf_counter() - t0:.0f} s")
    make_masks(ds, args.noise, args.seed, args.import_labels)
    ds = load_dataset(data)
    clicks = quality.object_clicks(ds)
    hierarchy = Path(ds.root) / "hierarchy.json"
    names = (
        {int(k): o["name"] for k, o in json.loads(hierarchy.read_text())["objects"].items()}
        if hierarchy.is_file()
        else {}
    )
    rows = []
    for click in clicks:
        body = click.rpartition("@")[0]
        view, _, xy = body.rpartition(":")
        x, y = (int(float(v)) for v in xy.split(","))
        gt_id = int(ds.gt(view, "object")[y, x])
        if args.objects and names.get(gt_id) not in args.objects:
            continue
        t0 = time.perf_counter()
        prop_iou, grown = propagation_scores(propagated(ds, base_run, body, args.level), ds, gt_id)
        log(
            f"  {scene} {names.get(gt_id, gt_id)}: propagated IoU {prop_iou:.3f}, {grown:.2f}x the object "
            f"({time.perf_counter() - t0:.0f} s)"
        )
        rows.append(
            {
                "scene": scene,
                "object": gt_id,
                "name": names.get(gt_id, str(gt_id)),
                "objective": "propagation",
                "miou": prop_iou,
                "acc": float("nan"),
                "prop_iou": prop_iou,
                "grown": grown,
            }
        )
        for objective in args.objectives:
            settings: dict = {"clicks": [body]}
            if args.level:
                settings["level"] = args.level
            root = work / f"run_{objective}_{gt_id}"
            t0 = time.perf_counter()
            try:
                quality.train_features(suite, ds, base_run, root, objective, args.seed, settings)
            except Exception as e:  # one failing click must not lose the table
                log(f"  object {gt_id} {objective}: FAILED {type(e).__name__}: {e}")
                rows.append({"scene": scene, "object": gt_id, "objective": objective, "error": str(e)})
                continue
            es = EvalSettings(samples=suite.samples, seed=suite.seed)
            result = evaluate_run(root, metrics=["prompted"], show_progress=False, settings=es)
            row = {
                "scene": scene,
                "object": gt_id,
                "name": names.get(gt_id, str(gt_id)),
                "click": body,
                "objective": objective,
                "miou": result.get("object_miou", float("nan")),
                "acc": result.get("object_acc", float("nan")),
                "prop_iou": prop_iou,
                "grown": grown,
                "seconds": time.perf_counter() - t0,
            }
            rows.append(row)
            log(
                f"  {scene} {names.get(gt_id, gt_id)} {objective}: IoU {row['miou']:.3f} acc {row['acc']:.4f} "
                f"(propagated IoU {prop_iou:.3f}, {grown:.2f}x the object) {row['seconds']:.0f} s"
            )
            if not args.keep_runs:
                shutil.rmtree(root, ignore_errors=True)
    return rows


def summary(rows: list[dict]) -> list[dict]:
    out = []
    keys = sorted({(r["scene"], r["objective"]) for r in rows})
    for scene, objective in keys:
        sel = [r for r in rows if r["scene"] == scene and r["objective"] == objective and "miou" in r]
        out.append(
            {
                "scene": scene,
                "objective": objective,
                "objects": len(sel),
                "miou": float(np.nanmean([r["miou"] for r in sel])) if sel else float("nan"),
                "acc": float(np.nanmean([r["acc"] for r in sel])) if sel else float("nan"),
                "prop_iou": float(np.nanmean([r["prop_iou"] for r in sel])) if sel else float("nan"),
                "min_iou": float(np.nanmin([r["miou"] for r in sel])) if sel else float("nan"),
            }
        )
    return out


def markdown(rows: list[dict]) -> str:
    lines = [
        "| scene | objective | objects | one-click object mIoU | mAcc | worst object IoU | propagated IoU |",
        "|---|---|---|---|---|---|---|",
    ]
    for s in summary(rows):
        lines.append(
            f"| {s['scene']} | {s['objective']} | {s['objects']} | {s['miou']:.3f} | {s['acc']:.4f} | "
            f"{s['min_iou']:.3f} | {s['prop_iou']:.3f} |"
        )
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--scenes", default="tabletop,livingroom,toys,random", help="built-in recipes")
    p.add_argument("--data", action="append", default=[], help="a dataset folder with gt/object/ (repeatable)")
    p.add_argument("--objectives", default="vote,object-field")
    p.add_argument("--noise", default="medium", choices=["easy", "medium", "hard"])
    p.add_argument("--seed", type=int, default=0, help="scene, mask and feature seed")
    p.add_argument("--level", choices=["part", "object", "group"], help="the clicks' --level (default: the run's)")
    p.add_argument("--import-labels", action="store_true", help="masks imported from label_masks/ PNGs")
    p.add_argument("--work", type=Path, default=Path("/tmp/gsseg-one-click"))
    p.add_argument("--objects", help="only these ground-truth objects (names from hierarchy.json, comma-separated)")
    p.add_argument("--keep-runs", action="store_true")
    p.add_argument("--json", type=Path, help="write the per-object rows here")
    args = p.parse_args(argv)
    args.objectives = [o for o in args.objectives.split(",") if o]
    args.objects = [o for o in (args.objects or "").split(",") if o]
    import torch

    torch.set_num_threads(1)
    rows: list[dict] = []
    for scene in [s for s in args.scenes.split(",") if s]:
        rows += run_scene(args, scene, None, print)
    for folder in args.data:
        rows += run_scene(args, Path(folder).name, Path(folder), print)
    print(markdown(rows))
    if args.json:
        args.json.write_text(json.dumps(rows, indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

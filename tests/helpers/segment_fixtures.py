"""A tiny run directory for the segmentation and export tests, built in seconds.

Geometry: instead of an RGB stage, every second pixel of every training view with a surface is
back-projected from the synthetic scene's ground-truth depth into one small, nearly opaque
isotropic Gaussian coloured like the pixel (a "quick fit" that renders the views closely).

Identity features are GT-consistent by construction, standing in for a trained feature
stage: each Gaussian takes the ground-truth part id of the pixel it came from, and
 - embeddings (D=32): ``normalize(e_group + e_object + e_part + noise)`` with random unit
   vectors per group / object / part id, so cosine distances rise part < object < group
   and the hierarchy has the scene's three levels;
 - logits: ``5 * one_hot(object id)`` over background + objects.
The GT ids are saved beside the run (``gt_part.npy``, ``gt_object.npy``) for the assertions.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

from gsseg.config.train import TrainConfig
from gsseg.data import load_dataset
from gsseg.features import FeatureRecord, save_features
from gsseg.gaussians.init import init_from_depth
from gsseg.gaussians.ply import write_ply
from gsseg.gaussians.scene import FeatureInfo, GaussianScene
from gsseg.run.run_dir import RunDir

WIDTH, HEIGHT, VIEWS, TEST_VIEWS = 64, 48, 8, 2
STRIDE = 2


def center_click(ds, view: str, part: int | None = None):
    """A Click deep inside the largest GT part of ``view`` (or inside ``part``), and that part id."""
    from scipy import ndimage

    from gsseg.segment.clicks import Click

    gt = ds.gt(view, "part")
    if part is None:
        ids, counts = np.unique(gt[gt > 0], return_counts=True)
        part = int(ids[counts.argmax()])
    dist = ndimage.distance_transform_edt(gt == part)
    y, x = np.unravel_index(dist.argmax(), dist.shape)
    return Click(view=view, x=float(x), y=float(y)), part


def make_data(base: Path) -> Path:
    from gsseg.synth import make_scene

    data = base / "data"
    if not (data / "transforms_test.json").is_file():
        make_scene(data, scene="tabletop", seed=0, width=WIDTH, height=HEIGHT, views=VIEWS, test_views=TEST_VIEWS)
    return data


def backproject(ds) -> tuple[GaussianScene, np.ndarray]:
    """Gaussians from GT depth of the training views, and the GT part id [N] of each."""
    views = ds.names("train")
    scene, src = init_from_depth(
        ds, views, stride=STRIDE, size=0.6, opacity=float(torch.sigmoid(torch.tensor(3.0))), sh_degree=1
    )
    parts = np.empty(len(scene), dtype=np.int64)
    for vi, name in enumerate(views):
        sel = src.view == vi
        parts[sel] = ds.gt(name, "part")[src.ys[sel], src.xs[sel]]
    return scene, parts


def gt_features(parts: np.ndarray, hierarchy: dict, kind: str, seed: int = 0) -> tuple[torch.Tensor, np.ndarray]:
    """GT-consistent features [N,D] of ``kind`` and the GT object id [N] (see module doc)."""
    table = {int(k): (int(v["object"]), int(v["group"])) for k, v in hierarchy["parts"].items()}
    objects = np.array([table.get(int(p), (0, 0))[0] for p in parts])
    groups = np.array([table.get(int(p), (0, 0))[1] for p in parts])
    rng = np.random.default_rng(seed)
    if kind == "logits":
        k = int(objects.max()) + 1
        return torch.tensor(5.0 * np.eye(k)[objects], dtype=torch.float32), objects
    d = 32

    def unit(count: int) -> np.ndarray:
        v = rng.normal(size=(count, d))
        return v / np.linalg.norm(v, axis=1, keepdims=True)

    f = unit(groups.max() + 1)[groups] + unit(objects.max() + 1)[objects] + unit(parts.max() + 1)[parts]
    f = f + rng.normal(scale=0.03, size=f.shape)
    f /= np.linalg.norm(f, axis=1, keepdims=True)
    return torch.tensor(f, dtype=torch.float32), objects


def build_tiny_run(base: Path, kind: str = "embedding") -> Path:
    """RUN directory (config.json, scene.ply, features.pt, gt_part.npy, gt_object.npy); reused if built."""
    base = Path(base)
    run = base / f"run_{kind}"
    if (run / "features.pt").is_file():
        return run
    data = make_data(base)
    ds = load_dataset(data)
    scene, parts = backproject(ds)
    features, objects = gt_features(parts, ds.hierarchy, kind)
    rd = RunDir(run)
    run.mkdir(parents=True, exist_ok=True)
    rd.write_config(TrainConfig(dataset=str(data.resolve())))
    write_ply(rd.scene_ply, scene)
    np.save(run / "gt_part.npy", parts)
    np.save(run / "gt_object.npy", objects)
    save_features(rd.features_pt, FeatureRecord(features, FeatureInfo(kind, "gt-test", features.shape[1])))
    return run

"""A tiny viewer run built in seconds: a built-in synthetic scene, Gaussians placed directly on
its depth maps (no RGB training, see ``feature_stage_fixtures.depth_splat_scene``) and identity
features made from ground truth (no feature training): every Gaussian takes the object id of
the pixel it came from, and its features are that object's embedding (or one-hot logits).

Used by the viewer tests and by the browser test's subprocess run.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from tests.helpers.feature_stage_fixtures import depth_splat_scene

OBJECTIVES = {"embedding": "contrastive", "logits": "clustering"}


@dataclass
class ViewerRun:
    """run: the run directory; data: its dataset; objects / parts: [N] ground-truth ids per Gaussian."""

    run: Path
    data: Path
    objects: np.ndarray
    parts: np.ndarray


def gaussian_gt(ds, views: list[str], stride: int, level: str) -> np.ndarray:
    """[N] ground-truth ids of the Gaussians ``depth_splat_scene`` makes (same pixel order)."""
    out = []
    for name in views:
        depth = ds.depth(name).numpy()
        gt = ds.gt(name, level)
        sub_d, sub_g = depth[::stride, ::stride], gt[::stride, ::stride]
        out.append(sub_g[sub_d > 0])
    return np.concatenate(out).astype(np.int64)


def gt_features(objects: np.ndarray, kind: str, dim: int = 8, seed: int = 0) -> torch.Tensor:
    """[N,D] features that identify ``objects [N]``: a random unit embedding per id (embedding) or
    one-hot logits scaled by 6 (logits)."""
    ids = objects.astype(np.int64)
    if kind == "logits":
        k = int(ids.max()) + 1
        f = torch.zeros(len(ids), k)
        f[torch.arange(len(ids)), torch.as_tensor(ids)] = 6.0
        return f
    g = torch.Generator().manual_seed(seed)
    table = torch.nn.functional.normalize(torch.randn(int(ids.max()) + 1, dim, generator=g), dim=1)
    return table[torch.as_tensor(ids)]


def shared_root(tmp_path_factory) -> Path:
    """One folder per test session whose synthetic dataset every viewer test module reuses."""
    root = tmp_path_factory.getbasetemp() / "viewer_shared"
    root.mkdir(exist_ok=True)
    return root


def make_viewer_run(
    root: Path,
    kind: str | None = "embedding",
    width: int = 80,
    height: int = 60,
    views: int = 3,
    stride: int = 1,
    with_cut: bool = True,
    run_name: str = "run",
) -> ViewerRun:
    """Synth dataset in ``root/data`` (reused when present) and a run in ``root/<run_name>``
    (scene.ply, config.json, and unless ``kind`` is None features.pt; ``with_cut`` also writes a
    ground-truth object cut ``gt_object``)."""
    from gsseg.config.train import TrainConfig
    from gsseg.data import load_dataset
    from gsseg.features import FeatureRecord, save_features
    from gsseg.gaussians.ply import write_ply
    from gsseg.gaussians.scene import FeatureInfo
    from gsseg.run.run_dir import RunDir
    from gsseg.synth import make_scene

    data, run = root / "data", root / run_name
    if not (data / "transforms_train.json").is_file():
        make_scene(
            data, scene="tabletop", seed=0, width=width, height=height, views=views, test_views=1, show_progress=False
        )
    ds = load_dataset(data)
    names = ds.names("train")
    scene = depth_splat_scene(ds, names, stride=stride, opacity=0.95, size=0.6)
    objects = gaussian_gt(ds, names, stride, "object")
    parts = gaussian_gt(ds, names, stride, "part")
    assert len(objects) == len(scene)
    run.mkdir(parents=True, exist_ok=True)
    write_ply(run / "scene.ply", scene)
    RunDir(run).write_config(TrainConfig(dataset=str(data.resolve())))
    if kind is not None:
        feats = gt_features(objects, kind)
        save_features(
            run / "features.pt", FeatureRecord(feats, FeatureInfo(kind, OBJECTIVES[kind], feats.shape[1]), step=1)
        )
    if with_cut:
        write_gt_cut(run, objects)
    return ViewerRun(run, data, objects, parts)


def ray_to_object(vr: ViewerRun, picker, obj: int, view: str | None = None) -> tuple[np.ndarray, np.ndarray]:
    """(origin, direction) of a ray from a training camera that picks a Gaussian of object ``obj``."""
    from gsseg.data import load_dataset

    ds = load_dataset(vr.data)
    cams = ds.cameras("train")
    origin = cams.centers[cams.index_of(view or cams.names[0])].double().numpy()
    members = np.flatnonzero(vr.objects == obj)
    means = picker.means[members].astype(np.float64)
    order = np.argsort(np.linalg.norm(means - np.median(means, axis=0), axis=1))
    for g in members[order][:200]:
        d = picker.means[g] - origin
        pick = picker.pick(origin, d)
        if pick is not None and vr.objects[pick.index] == obj:
            return origin, d
    raise AssertionError(f"no ray from {view} picks object {obj}")


def write_gt_cut(run: Path, objects: np.ndarray, name: str = "gt_object") -> None:
    """A cut whose segments are the ground-truth objects, written with ``gsseg.segment.cuts``."""
    from gsseg.segment.cuts import Cut, SegmentsDir, cut_entry, replace_dir, write_cut_files

    cut = Cut(name=name, kind="argmax", value=0.0, labels=objects.astype(np.int32))
    segs = SegmentsDir(run)
    with replace_dir(segs.cut_dir(name)) as tmp:
        write_cut_files(tmp, cut, [], {})
    segs.update_index([cut_entry(cut, [])])


if __name__ == "__main__":  # build a run by hand: python -m tests.helpers.viewer_fixtures OUT [embedding|logits|none]
    import sys

    k = sys.argv[2] if len(sys.argv) > 2 else "embedding"
    r = make_viewer_run(Path(sys.argv[1]), None if k == "none" else k)
    print(r.run)

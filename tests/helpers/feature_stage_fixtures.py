"""Tiny feature-stage fixtures: a synthetic dataset with label masks and a Gaussian scene built
directly from its depth maps (no RGB training), so feature tests run in seconds."""

from __future__ import annotations

from pathlib import Path

import torch

from gsseg.gaussians.init import init_from_depth
from gsseg.gaussians.scene import GaussianScene


def depth_splat_scene(
    ds, views: list[str] | None = None, stride: int = 1, opacity: float = 0.95, size: float = 0.5
) -> GaussianScene:
    """Isotropic Gaussians on every ``stride``-th pixel with depth of the given views (see
    ``gsseg.gaussians.init.init_from_depth``), in the views' pixel order."""
    return init_from_depth(ds, views, stride=stride, size=size, opacity=opacity)[0]


def make_labelled_dataset(root: Path, views: int = 6, width: int = 48, height: int = 36, scene: str = "tabletop"):
    """A synthetic dataset with `labels` masks from its ground truth (perfectly consistent)."""
    import numpy as np

    from gsseg.data import load_dataset
    from gsseg.masks.store import MaskStore, ViewMasks
    from gsseg.synth import make_scene

    make_scene(root, scene=scene, seed=0, width=width, height=height, views=views, test_views=1, show_progress=False)
    ds = load_dataset(root)
    store = MaskStore(ds.masks_dir)
    for name in ds.names("train"):
        maps = np.stack([ds.gt(name, level) for level in ds.gt_levels])
        store.save(name, ViewMasks.from_label_maps(maps, source="labels")[0])
    return ds


def make_run(run_root: Path, ds, scene: GaussianScene) -> None:
    """A run directory whose RGB stage is 'done': config.json and scene.ply."""
    from gsseg.config.train import TrainConfig
    from gsseg.gaussians.ply import write_ply
    from gsseg.run.run_dir import RunDir

    run = RunDir(run_root)
    run.root.mkdir(parents=True, exist_ok=True)
    run.write_config(TrainConfig(dataset=str(Path(ds.root).resolve())))
    write_ply(run.scene_ply, scene)


def nearest_prototype_accuracy(
    ds, scene: GaussianScene, features: torch.Tensor, level: str, views: list[str] | None = None, interior: bool = True
) -> float:
    """Fraction of labelled pixels whose rendered feature is nearest (cosine) to the prototype of
    its own ground-truth segment at ``level``; prototypes = mean unit feature of each segment over
    ``views``. ``interior`` skips pixels next to a label boundary (their footprint mixes segments)."""
    import numpy as np
    import torch.nn.functional as F

    from gsseg.render.tables import build_contribution_table, render_features_from_table

    cams = ds.cameras("train")
    feats, labels = [], []
    for name in views or list(cams.names):
        table = build_contribution_table(
            scene.means, scene.quats, scene.scales, scene.opacities, cams[cams.index_of(name)]
        )
        f = render_features_from_table(table, torch.arange(table.width * table.height), features.float())
        gt = ds.gt(name, level)
        keep = gt > 0
        if interior:
            pad = np.pad(gt, 1, mode="edge")
            for dy in (-1, 0, 1):
                for dx in (-1, 0, 1):
                    keep &= pad[1 + dy : 1 + dy + gt.shape[0], 1 + dx : 1 + dx + gt.shape[1]] == gt
        keep = torch.from_numpy(keep.reshape(-1))
        feats.append(F.normalize(f[keep], dim=1))
        labels.append(torch.from_numpy(gt.reshape(-1))[keep])
    f, lab = torch.cat(feats), torch.cat(labels)
    ids = lab.unique()
    protos = F.normalize(torch.stack([f[lab == i].mean(0) for i in ids]), dim=1)
    return float((ids[(f @ protos.T).argmax(1)] == lab).float().mean())

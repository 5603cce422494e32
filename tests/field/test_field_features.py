"""NeRF backend, features stage: the same Objective code trained through a frozen radiance field
separates the segments of a tiny scene with consistent masks, and resumes bit-equal."""

from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from gsseg.config.train import FeatureStageConfig
from gsseg.field.features import FieldFeatureTrainer
from gsseg.field.io import field_path, save_field
from gsseg.field.render import render_image
from gsseg.field.rgb import FieldRGBTrainer
from gsseg.objectives import make_objective
from gsseg.run.run_dir import RunDir
from tests.helpers.feature_stage_fixtures import make_labelled_dataset
from tests.helpers.field_fixtures import tiny_cfg


@pytest.fixture(scope="module")
def field_run(tmp_path_factory):
    """A labelled tiny tabletop and a run whose field RGB stage is done (150 steps)."""
    root = tmp_path_factory.mktemp("field_features")
    ds = make_labelled_dataset(root / "data", views=6, width=32, height=24)
    run = RunDir(root / "run")
    torch.manual_seed(0)
    cfg = tiny_cfg(iters=150, rays=512, lr=3e-2, lr_mlp=5e-3, feature_resolutions=(16, 32), channels=4)
    trainer = FieldRGBTrainer(ds, cfg, run, show_progress=False)
    trainer.start()
    trainer.train()
    save_field(field_path(run.root), trainer.field, trainer.grid, trainer.background())
    return ds, run


def feature_cfg(**kw) -> FeatureStageConfig:
    base = dict(
        objective="contrastive",
        objective_settings={"dim": 8, "pixels": 384, "norm_loss": "pixel"},
        iters=120,
        lr=1e-2,
        checkpoint_every=40,
        device="cpu",
    )
    base.update(kw)
    return FeatureStageConfig(**base)


def prototype_accuracy(trainer: FieldFeatureTrainer, ds, level: str = "object") -> float:
    """Fraction of labelled, opaque pixels whose rendered unit feature is nearest (cosine) to the mean
    feature of its own ground-truth segment (prototypes over all training views)."""
    feats, labels = [], []
    for i, view in enumerate(trainer.views):
        out = render_image(trainer.field, trainer.grid, trainer.cameras, i, features=True)
        gt = torch.from_numpy(ds.gt(view, level).astype(np.int64)).reshape(-1)
        keep = (gt > 0) & (out["alpha"].reshape(-1) > 0.5)
        feats.append(F.normalize(out["features"].reshape(gt.numel(), -1)[keep], dim=1))
        labels.append(gt[keep])
    f, lab = torch.cat(feats), torch.cat(labels)
    ids = lab.unique()
    protos = F.normalize(torch.stack([f[lab == k].mean(0) for k in ids]), dim=1)
    nearest = ids[(f @ protos.T).argmax(1)]
    return float((nearest == lab).float().mean())


def test_contrastive_through_the_field_learns_with_geometry_frozen(field_run):
    """The objective's loss reaches the feature head through the field's renders: object separation
    (nearest-prototype accuracy) rises while the geometry stays bit-equal. (Parity with the
    Gaussian backend, NC >= 0.9 of its value, is not reached yet: 0.26 -> 0.35 here.)"""
    ds, run = field_run
    objective = make_objective("contrastive", dim=8, pixels=384, norm_loss="pixel")
    trainer = FieldFeatureTrainer(ds, feature_cfg(), run, objective, show_progress=False)
    trainer.start()
    before = prototype_accuracy(trainer, ds)
    geometry = {k: v.clone() for k, v in trainer.field.state_dict().items() if not k.startswith("feature_")}
    trainer.train()
    after = prototype_accuracy(trainer, ds)
    assert after > before + 0.05, (before, after)
    for k, v in trainer.field.state_dict().items():  # geometry frozen
        if not k.startswith("feature_"):
            assert torch.equal(v, geometry[k]), k


class Kill(Exception):
    pass


def test_field_features_resume_equals_uninterrupted(field_run, tmp_path):
    import shutil

    ds, run = field_run
    runs = []
    for name in ("full", "killed"):
        r = RunDir(tmp_path / name)
        r.root.mkdir()
        shutil.copy(field_path(run.root), field_path(r.root))
        runs.append(r)
    cfg = feature_cfg(iters=12, checkpoint_every=5)
    full = FieldFeatureTrainer(ds, cfg, runs[0], make_objective("contrastive", dim=8, pixels=384), show_progress=False)
    full.start()
    full.train()

    def kill(step):
        if step == 7:
            raise Kill

    first = FieldFeatureTrainer(
        ds, cfg, runs[1], make_objective("contrastive", dim=8, pixels=384), callbacks=[kill], show_progress=False
    )
    first.start()
    with pytest.raises(Kill):
        first.train()
    second = FieldFeatureTrainer(
        ds, cfg, runs[1], make_objective("contrastive", dim=8, pixels=384), show_progress=False
    )
    assert second.resume() and second.step == 5
    second.train()
    a, b = full.head_state(), second.head_state()
    assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)

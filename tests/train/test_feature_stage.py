"""The features stage: training on a frozen scene, resume, CLI, joint mode, and quality on a toy
scene with perfectly consistent (ground-truth) masks."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
import torch

from gsseg.errors import GssegError
from gsseg.features import load_run_scene
from gsseg.gaussians.ply import read_ply
from gsseg.run.run_dir import RunDir
from gsseg.train.pipeline import StageOptions, run_training
from tests.helpers.cli_fixtures import cli_exit_code
from tests.helpers.feature_stage_fixtures import (
    depth_splat_scene,
    make_labelled_dataset,
    make_run,
    nearest_prototype_accuracy,
)


@pytest.fixture(scope="module")
def toy(tmp_path_factory):
    """(dataset, scene): 'toys' at 64×48, 4 views, GT label masks, Gaussians splatted from depth."""
    root = tmp_path_factory.mktemp("feature_stage")
    ds = make_labelled_dataset(root / "data", views=4, width=64, height=48, scene="toys")
    return ds, depth_splat_scene(ds)


def _train(run_root: Path, ds, scene, objective: str, iters: int, settings: dict, callbacks=(), resume=True, **stage):
    if not (run_root / "scene.ply").is_file():
        make_run(run_root, ds, scene)
    run = RunDir(run_root)
    cfg = run.read_config()
    cfg.stages = ["features"]
    cfg.features.objective, cfg.features.iters, cfg.features.objective_settings = objective, iters, settings
    for k, v in stage.items():
        setattr(cfg.features, k, v)
    return run_training(cfg, run, StageOptions(resume=resume, show_progress=False, callbacks=list(callbacks)), ds=ds)[0]


def test_contrastive_separates_gt_segments(toy, tmp_path):
    ds, scene = toy
    summary = _train(tmp_path / "run", ds, scene, "contrastive", 250, {"pixels": 2048, "min_pixnum": 3})
    assert summary["steps"] == 250 and summary["updates"] == 250
    sc, rec = load_run_scene(tmp_path / "run")
    assert rec.info.objective == "contrastive" and rec.info.kind == "embedding" and rec.info.dim == 16
    assert rec.settings["pixels"] == 2048 and rec.settings["stage"]["iters"] == 250
    for level in ("part", "object", "group"):
        assert nearest_prototype_accuracy(ds, sc, rec.features, level) > 0.95, level
    untrained = torch.nn.functional.normalize(
        torch.randn(len(sc), 16, generator=torch.Generator().manual_seed(0)), dim=1
    )
    assert nearest_prototype_accuracy(ds, sc, untrained, "object") < 0.9  # the metric can fail


def test_ultrametric_separates_gt_segments(toy, tmp_path):
    ds, scene = toy
    terms = []
    _train(
        tmp_path / "run", ds, scene, "ultrametric", 200, {"pixels": 2048}, callbacks=[lambda r: terms.append(r.terms)]
    )
    assert {"ultra", "euclid", "norm", "pairs"} <= set(terms[-1]) and "depth" not in terms[-1]
    assert sum(t["ultra"] for t in terms[-20:]) < sum(t["ultra"] for t in terms[:20])
    sc, rec = load_run_scene(tmp_path / "run")
    assert rec.info.objective == "ultrametric"
    for level in ("object", "group"):
        assert nearest_prototype_accuracy(ds, sc, rec.features, level) > 0.95, level


class _Kill(Exception):
    pass


def test_resume_continues_exactly(toy, tmp_path):
    ds, scene = toy
    settings = {"pixels": 256, "min_pixnum": 3}
    _train(tmp_path / "straight", ds, scene, "contrastive", 24, settings, checkpoint_every=8)
    straight = torch.load(tmp_path / "straight" / "features.pt")["features"]

    def kill(report):
        if report.step == 13:
            raise _Kill

    with pytest.raises(_Kill):
        _train(tmp_path / "killed", ds, scene, "contrastive", 24, settings, callbacks=[kill], checkpoint_every=8)
    run = RunDir(tmp_path / "killed")
    assert [s for s, _ in run.list_checkpoints("features")] == [8] and not run.features_pt.exists()
    summary = _train(tmp_path / "killed", ds, scene, "contrastive", 24, settings, checkpoint_every=8)
    assert summary["resumed_from"] == 8 and summary["updates"] == 16
    assert torch.allclose(torch.load(run.features_pt)["features"], straight, atol=1e-6)

    with pytest.raises(GssegError, match="restart"):  # another objective cannot resume these checkpoints
        _train(tmp_path / "killed", ds, scene, "contrastive-flat", 30, settings)


def test_changed_scene_is_not_resumed(toy, tmp_path):
    ds, scene = toy
    _train(tmp_path / "run", ds, scene, "contrastive", 4, {"pixels": 128}, checkpoint_every=2)
    from gsseg.gaussians.ply import write_ply

    moved = read_ply(tmp_path / "run" / "scene.ply")
    moved.means[:, 0] += 0.01
    write_ply(tmp_path / "run" / "scene.ply", moved)
    with pytest.raises(GssegError, match="another scene"):
        _train(tmp_path / "run", ds, scene, "contrastive", 8, {"pixels": 128})


def test_joint_mode_trains_geometry_with_depth_continuity(toy, tmp_path):
    ds, scene = toy
    small = scene.subset(torch.arange(0, len(scene), 3))
    terms = []
    summary = _train(
        tmp_path / "run",
        ds,
        small,
        "ultrametric",
        4,
        {"pixels": 512, "depth_start": 0.0, "dim": 8},
        callbacks=[lambda r: terms.append(r.terms)],
        joint=True,
    )
    assert summary["joint"] and summary["steps"] == 4
    assert len(terms) == 4 and all("depth" in t and "rgb_l1" in t for t in terms)
    after = read_ply(tmp_path / "run" / "scene.ply")
    assert len(after) == len(small)
    assert not torch.allclose(after.means, small.means)  # geometry moved
    sc, rec = load_run_scene(tmp_path / "run")
    assert rec.features.shape == (len(small), 8) and rec.settings["stage"]["joint"]


def test_missing_masks_and_scene_are_user_errors(toy, tmp_path):
    ds, scene = toy
    bare = tmp_path / "bare"
    shutil.copytree(ds.root, bare, ignore=shutil.ignore_patterns("masks"))
    from gsseg.data import load_dataset

    bare_ds = load_dataset(bare)
    with pytest.raises(GssegError, match="gsseg masks"):
        _train(tmp_path / "run", bare_ds, scene, "contrastive", 3, {})
    empty = RunDir(tmp_path / "empty")
    make_run(empty.root, ds, scene)
    empty.scene_ply.unlink()
    cfg = empty.read_config()
    cfg.stages = ["features"]
    with pytest.raises(GssegError, match="RGB stage"):
        run_training(cfg, empty, StageOptions(show_progress=False), ds=ds)


def test_cli_features_stage(toy, tmp_path):
    ds, scene = toy
    run = tmp_path / "run"
    make_run(run, ds, scene)
    data = str(ds.root)
    args = ["train", data, "--out", str(run), "--stage", "features", "--quiet", "--feature-iters", "5"]
    assert (
        cli_exit_code(
            [
                *args,
                "--objective",
                "contrastive-flat",
                "--feature-dim",
                "6",
                "--set",
                "pixels=256",
                "--set",
                "level_decay=0.2",
            ]
        )
        == 0
    )
    sc, rec = load_run_scene(run)
    assert rec.info.objective == "contrastive-flat" and rec.features.shape[1] == 6
    assert rec.settings["level_decay"] == 0.2 and rec.settings["pixels"] == 256
    config = RunDir(run).read_config()
    assert config.features.objective == "contrastive-flat" and config.features.objective_settings["dim"] == 6
    # a new objective on the same run starts its stage fresh instead of failing on old checkpoints
    assert cli_exit_code([*args, "--objective", "ultrametric", "--set", "pixels=256"]) == 0
    assert load_run_scene(run)[1].info.objective == "ultrametric"
    assert cli_exit_code([*args, "--objective", "contrastive", "--set", "colour=3"]) == 1
    assert cli_exit_code([*args, "--objective", "no-such"]) == 1
    assert cli_exit_code([*args, "--set", "novalue"]) == 1
    assert cli_exit_code([*args, "--table-scale", "2"]) == 1
    assert cli_exit_code(["train", data, "--out", str(tmp_path / "fresh"), "--stage", "features", "--quiet"]) == 1


def test_memory_budget_bounds_the_table_cache(toy, tmp_path):
    """--memory-budget: recorded in the run, bounds the cached tables, and the result is the same."""
    ds, scene = toy
    data = str(ds.root)
    features = []
    for name, budget in (("roomy", None), ("tight", "1k")):
        run = tmp_path / name
        make_run(run, ds, scene)
        args = [
            "train",
            data,
            "--out",
            str(run),
            "--stage",
            "features",
            "--quiet",
            "--feature-iters",
            "8",
            "--set",
            "pixels=256",
            "--table-scale",
            "1",
        ] + (["--memory-budget", budget] if budget else [])
        assert cli_exit_code(args) == 0
        features.append(load_run_scene(run)[1].features)
    assert RunDir(tmp_path / "tight").read_config().features.table_memory_mb == 1 / 1024
    torch.testing.assert_close(features[0], features[1])  # evicting tables changes the speed, not the result
    assert (
        cli_exit_code(
            [
                "train",
                data,
                "--out",
                str(tmp_path / "tight"),
                "--stage",
                "features",
                "--quiet",
                "--memory-budget",
                "lots",
            ]
        )
        == 1
    )


def test_trainer_keeps_tables_within_the_byte_budget(toy, tmp_path):
    from gsseg.objectives import make_objective
    from gsseg.train.features import FeatureTrainer

    ds, scene = toy
    make_run(tmp_path / "run", ds, scene)
    run = RunDir(tmp_path / "run")
    cfg = run.read_config().features
    cfg.iters, cfg.table_memory_mb, cfg.table_scale = 6, 1 / 1024, 1.0
    trainer = FeatureTrainer(ds, scene, cfg, run, make_objective("contrastive", pixels=256), show_progress=False)
    trainer.start()
    trainer.train()
    assert len(trainer.tables) == 1 and trainer.tables.builds >= 4  # every view change rebuilt its table
    cfg.table_memory_mb = 0  # automatic: every view fits
    roomy = FeatureTrainer(ds, scene, cfg, run, make_objective("contrastive", pixels=256), show_progress=False)
    roomy.start()
    roomy.train()
    assert len(roomy.tables) == roomy.tables.builds == len(roomy.views)


def test_automatic_table_scale_fits_every_view_in_the_budget(toy, tmp_path):
    from gsseg.objectives import make_objective
    from gsseg.train.features import FeatureTrainer

    ds, scene = toy
    make_run(tmp_path / "run", ds, scene)
    run = RunDir(tmp_path / "run")
    cfg = run.read_config().features
    assert cfg.table_scale == 0  # the default: automatic
    cfg.iters = 8
    full = FeatureTrainer(ds, scene, cfg, run, make_objective("contrastive", pixels=256), show_progress=False)
    assert full.table_scale == 1.0 and (full.width, full.height) == tuple(int(x) for x in ds.size(full.views[0]))
    full.start()
    full.train()
    all_bytes = full.tables.nbytes
    cfg.table_memory_mb = all_bytes / 4 / 2**20  # a quarter of what full-size tables of every view take
    small = FeatureTrainer(ds, scene, cfg, run, make_objective("contrastive", pixels=256), show_progress=False)
    assert 0.2 < small.table_scale < 0.55 and small.width < full.width
    small.start()
    small.train()
    assert small.tables.nbytes <= cfg.table_memory_mb * 2**20
    assert small.tables.builds == len(small.tables) == len(small.views)  # all fit: none rebuilt
    budget = f"{int(cfg.table_memory_mb * 1024)}k"
    assert (
        cli_exit_code(
            [
                "train",
                str(ds.root),
                "--out",
                str(run.root),
                "--stage",
                "features",
                "--quiet",
                "--restart",
                "--feature-iters",
                "8",
                "--set",
                "pixels=256",
                "--memory-budget",
                budget,
            ]
        )
        == 0
    )
    summary = json.loads((run.root / "features.json").read_text())
    assert summary["table_scale"] == small.table_scale and summary["table_builds"] == len(small.views)
    assert summary["table_size"] == [small.width, small.height]

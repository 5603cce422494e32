"""RGB stage: densification, resume after a kill, PSNR improvement, CLI train/eval."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from gsseg.config.train import DensifyConfig, RGBConfig
from gsseg.data import load_dataset
from gsseg.eval.psnr import psnr_per_view
from gsseg.gaussians import init_from_points, read_ply
from gsseg.run.run_dir import RunDir
from gsseg.train.rgb import RGBTrainer, StepReport
from tests.helpers.cli_fixtures import cli_exit_code


@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    from gsseg.synth import make_scene

    out = tmp_path_factory.mktemp("data") / "tiny"
    make_scene(out, scene="tabletop", seed=0, width=48, height=36, views=8, test_views=2)
    return load_dataset(out)


def small_init(ds, n: int = 400, seed: int = 0):
    """A subsample of the dataset's sparse points, to keep the tests fast."""
    pts, cols = ds.points
    idx = np.random.default_rng(seed).choice(len(pts), size=min(n, len(pts)), replace=False)
    return init_from_points(pts[idx], cols[idx], sh_degree=1)


def cfg_for_test(**kw) -> RGBConfig:
    base = dict(
        iters=40,
        sh_degree=1,
        sh_degree_every=20,
        checkpoint_every=10,
        device="cpu",
        densify=DensifyConfig(refine_start=5, refine_every=10, refine_stop=35, reset_every=30, grow_grad2d=5e-5),
    )
    base.update(kw)
    return RGBConfig(**base)


class Kill(Exception):
    pass


def recording(fn, log: list):
    """Wrap a strategy method so each call's return value is appended to ``log``."""

    def wrapped(*args):
        result = fn(*args)
        log.append(result)
        return result

    return wrapped


def test_densification_grows_and_prunes(tiny, tmp_path):
    cfg = cfg_for_test(
        iters=22,
        densify=DensifyConfig(
            refine_start=5, refine_every=10, refine_stop=100, reset_every=1000, grow_grad2d=1e-9, prune_opa=0.095
        ),
    )
    trainer = RGBTrainer(tiny, cfg, RunDir(tmp_path / "run"), show_progress=False)
    trainer.start(small_init(tiny, 150))
    grown, pruned = [], []
    trainer.strategy._grow_gs = recording(trainer.strategy._grow_gs, grown)
    trainer.strategy._prune_gs = recording(trainer.strategy._prune_gs, pruned)
    counts = []
    trainer.callbacks.append(lambda r: counts.append(r.n_gaussians))
    trainer.train()
    assert len(grown) == 2 and len(pruned) == 2  # refine at steps 10 and 20
    n_grown = sum(d + sp for d, sp in grown)  # a split replaces one Gaussian by two
    assert n_grown > 0 and sum(pruned) > 0
    assert max(counts) > 150 and counts[-1] == 150 + n_grown - sum(pruned)
    # optimiser state follows the new parameter tensors
    for k, opt in trainer.optimizers.items():
        assert opt.param_groups[0]["params"][0] is trainer.params[k]
        assert opt.state[trainer.params[k]]["exp_avg"].shape == trainer.params[k].shape


def test_opacity_reset(tiny, tmp_path):
    cfg = cfg_for_test(
        iters=12,
        densify=DensifyConfig(refine_start=100, refine_every=100, refine_stop=100, reset_every=10, prune_opa=0.005),
    )
    trainer = RGBTrainer(tiny, cfg, RunDir(tmp_path / "run"), show_progress=False)
    trainer.start(small_init(tiny, 200))
    max_opacity = {}
    trainer.callbacks.append(
        lambda r: max_opacity.__setitem__(r.step, torch.sigmoid(trainer.params["opacities"]).max().item())
    )
    trainer.train()
    assert max_opacity[10] > 0.05  # before the reset (after step index 9)
    assert max_opacity[11] <= 0.01 + 1e-6  # reset to 2 × prune_opa at step index 10


def test_resume_after_kill(tiny, tmp_path):
    cfg = cfg_for_test(
        iters=30,
        densify=DensifyConfig(refine_start=3, refine_every=5, refine_stop=28, reset_every=15, grow_grad2d=1e-4),
    )
    full = RGBTrainer(tiny, cfg, RunDir(tmp_path / "full"), show_progress=False)
    full.start(small_init(tiny, 200))
    full_result = full.train()

    run = RunDir(tmp_path / "killed")
    seen: dict[int, int] = {}

    def kill_at_25(r: StepReport) -> None:
        seen[r.step] = r.n_gaussians
        if r.step == 25:
            raise Kill

    killed = RGBTrainer(tiny, cfg, run, callbacks=[kill_at_25], show_progress=False)
    killed.start(small_init(tiny, 200))
    with pytest.raises(Kill):
        killed.train()
    assert [s for s, _ in run.list_checkpoints("rgb")] == [10, 20]  # keep_checkpoints=2, none at the kill
    assert seen[20] != 200  # densification changed the count before the checkpoint

    resumed = RGBTrainer(tiny, cfg, run, show_progress=False)
    assert resumed.resume()
    assert resumed.step == 20 and resumed.n_gaussians == seen[20]
    result = resumed.train()
    assert result.steps == 30 and result.resumed_from == 20
    assert len(result.scene) == len(full_result.scene)
    assert torch.allclose(result.scene.means, full_result.scene.means, atol=1e-4)
    assert result.background == pytest.approx(full_result.background, abs=1e-5)


def test_training_improves_test_psnr(tiny, tmp_path):
    init = small_init(tiny, 600)
    cfg = cfg_for_test(
        iters=150,
        sh_degree=0,
        checkpoint_every=1000,
        densify=DensifyConfig(refine_start=30, refine_every=30, refine_stop=120, reset_every=0),
    )
    before = np.mean(list(psnr_per_view(init.with_sh_degree(0), tiny, "test").values()))
    trainer = RGBTrainer(tiny, cfg, RunDir(tmp_path / "run"), show_progress=False)
    trainer.start(init)
    result = trainer.train()
    after = np.mean(list(psnr_per_view(result.scene, tiny, "test", result.background).values()))
    assert after > before + 5.0, (before, after)


def test_cli_train_resume_eval_and_init_ply(tiny, tmp_path, capsys):
    data, run = str(tiny.root), tmp_path / "run"
    # --stage rgb: without masks, train would go on to geometry masks and the features stage
    common = ["--sh-degree", "0", "--checkpoint-every", "5", "--quiet", "--stage", "rgb"]
    assert cli_exit_code(["train", data, "--out", str(run), "--iters", "10", *common]) == 0
    cfg = json.loads((run / "config.json").read_text())
    assert cfg["dataset"] == str(tiny.root.resolve()) and cfg["rgb"]["iters"] == 10
    learned = json.loads((run / "rgb.json").read_text())["background"]
    assert len(learned) == 3 and learned != [0.5, 0.5, 0.5]  # learned background moved from its start
    first = read_ply(run / "scene.ply")
    # re-running continues from the last checkpoint with more steps
    assert cli_exit_code(["train", data, "--out", str(run), "--iters", "15", *common]) == 0
    assert "resumed from step 10" in capsys.readouterr().err
    assert [s for s, _ in RunDir(run).list_checkpoints("rgb")] == [10, 15]
    capsys.readouterr()
    assert cli_exit_code(["eval", str(run), "--json"]) == 0
    result = json.loads(capsys.readouterr().out)
    assert set(result["psnr_per_view"]) == set(tiny.names("test")) and 5 < result["psnr"] < 60

    # a pretrained PLY skips RGB training: scene.ply is the input, bit for bit
    run2 = tmp_path / "run2"
    assert (
        cli_exit_code(
            ["train", data, "--out", str(run2), "--init-ply", str(run / "scene.ply"), "--quiet", "--stage", "rgb"]
        )
        == 0
    )
    again = read_ply(run2 / "scene.ply")
    assert torch.equal(again.means, read_ply(run / "scene.ply").means) and len(again) >= len(first) // 2

    # user mistakes: one line, exit 1
    assert cli_exit_code(["train", data, "--out", str(tmp_path / "r3"), "--stage", "bogus"]) == 1
    assert "bogus" in capsys.readouterr().err
    assert cli_exit_code(["train", str(tmp_path / "nope"), "--out", str(tmp_path / "r4")]) == 1
    assert cli_exit_code(["eval", str(tmp_path / "nope")]) == 1
    assert cli_exit_code(["train", data, "--out", str(tmp_path / "r6"), "--background", "2,0,0"]) == 1
    assert "bad --background" in capsys.readouterr().err
    (tmp_path / "bad.ply").write_bytes(b"ply\nformat ascii 1.0\nelement vertex 1\nproperty float x\nend_header\n1\n")
    assert cli_exit_code(["train", data, "--out", str(tmp_path / "r5"), "--init-ply", str(tmp_path / "bad.ply")]) == 1
    assert "missing properties" in capsys.readouterr().err


def test_bad_checkpoint_is_a_clear_error(tiny, tmp_path):
    from gsseg.errors import GssegError
    from gsseg.run.checkpoint import save_checkpoint

    run = RunDir(tmp_path / "run")
    run.checkpoints.mkdir(parents=True)
    run.checkpoint_path("rgb", 10).write_bytes(b"garbage")
    with pytest.raises(GssegError, match=r"rgb_0000010\.pt: unreadable checkpoint"):
        RGBTrainer(tiny, cfg_for_test(), run, show_progress=False).resume()
    save_checkpoint(run.checkpoint_path("rgb", 20), {"step": 20})
    with pytest.raises(GssegError, match=r"rgb_0000020\.pt: not a usable RGB checkpoint"):
        RGBTrainer(tiny, cfg_for_test(), run, show_progress=False).resume()


class FakeClock:
    """Stands in for the ``time`` module in gsseg.train.rgb: every reading advances 1 ms."""

    def __init__(self):
        self.now = 0.0

    def perf_counter(self):
        self.now += 1e-3
        return self.now


def _run_with_clock(ds, tmp_path, name, monkeypatch, slow_start_s: float):
    import gsseg.train.rgb as rgb_module

    clock = FakeClock()
    monkeypatch.setattr(rgb_module, "time", clock)

    def slow_first_step(r: StepReport) -> None:
        if r.step == 1:
            clock.now += slow_start_s  # e.g. the extension build / first allocations

    cfg = cfg_for_test(iters=30, time_limit_s=60.0)
    trainer = RGBTrainer(ds, cfg, RunDir(tmp_path / name), callbacks=[slow_first_step], show_progress=False)
    trainer.start(small_init(ds, 150))
    return trainer.train().scene.means


def test_time_limit_moves_the_schedule_only_for_runs_behind_it(tiny, tmp_path, monkeypatch):
    from gsseg.train.rgb import time_progress

    assert time_progress(2.9, 60.0) == 0.0  # within the 5 % grace
    assert time_progress(60.0, 60.0) == pytest.approx(1.0)
    assert time_progress(31.5, 60.0) == pytest.approx(0.5)
    # one thread: two-thread training is not bit-reproducible (OpenMP gradient sums)
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        _check_grace(tiny, tmp_path, monkeypatch)
    finally:
        torch.set_num_threads(threads)


def _check_grace(tiny, tmp_path, monkeypatch):
    # a 3 s start-up (the old schedule: progress 0.05 at step 2 of 30) leaves a run on pace unchanged
    fast = _run_with_clock(tiny, tmp_path, "fast", monkeypatch, 0.0)
    slow = _run_with_clock(tiny, tmp_path, "slow", monkeypatch, 2.9)
    assert torch.equal(fast, slow)
    # without the grace the same start-up changes the early learning rates, hence the scene
    monkeypatch.setattr("gsseg.train.rgb.time_progress.__defaults__", (0.0,))  # grace = 0
    ungraced = _run_with_clock(tiny, tmp_path, "ungraced", monkeypatch, 2.9)
    assert not torch.equal(fast, ungraced)

"""Objectives with state between steps (object-field's error maps, clustering's cross-view label
memory): for every trained objective a resumed run equals an uninterrupted one, and two ranks
give the features one process gives. ``vote`` has no training (``solve()`` in one pass, no steps,
no checkpoints) and so has neither property to test."""

from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from gsseg.errors import GssegError
from gsseg.objectives import make_objective
from gsseg.run.run_dir import RunDir
from tests.helpers.feature_stage_fixtures import depth_splat_scene, make_labelled_dataset, make_run
from tests.helpers.objective_runs import train_objective_runs
from tests.helpers.paths import REPO_ROOT

TRAINED = ("contrastive", "ultrametric", "object-field", "clustering")


@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    """(dataset, scene, settings per objective): 'toys' at 32x24, 4 views, ground-truth masks and
    label maps, Gaussians splatted from depth; the settings make every objective's state matter
    within 12 steps (object-field's pair phase from step 3, clustering's cross-view memory)."""
    root = tmp_path_factory.mktemp("objective_state")
    ds = make_labelled_dataset(root / "data", views=4, width=32, height=24, scene="toys")
    labels = root / "labels"
    labels.mkdir()
    for v in ds.names("train"):
        Image.fromarray(ds.gt(v, "object").astype(np.uint16)).save(labels / f"{v}.png")
    view = ds.names("train")[0]
    obj = ds.gt(view, "object")
    ys, xs = np.nonzero(obj == np.bincount(obj[obj > 0]).argmax())
    clicks = [f"{view}:{xs[i]},{ys[i]}" for i in (len(xs) // 3, len(xs) // 2)]
    settings = {
        "contrastive": {"pixels": 128},
        "ultrametric": {"pixels": 128},
        "object-field": {"clicks": clicks, "rays": 200, "pair_start": 0.25, "patch_size": 4, "references": 4},
        "clustering": {"dim": 16, "label_pixels": 64, "random_pixels": 32, "labels_dir": str(labels)},
    }
    return ds, depth_splat_scene(ds), settings


class _Kill(Exception):
    pass


def _train(root: Path, ds, scene, objective: str, settings: dict, callbacks=()) -> dict:
    if not (root / "scene.ply").is_file():
        make_run(root, ds, scene)
    spec = {
        "out": str(root.parent),
        "iters": 12,
        "views_per_step": 2,
        "seed": 5,
        "runs": {root.name: [objective, settings]},
    }
    return train_objective_runs(spec, ds=ds, callbacks=callbacks, checkpoint_every=4)[0]


@pytest.mark.parametrize("objective", TRAINED)
def test_resume_equals_the_uninterrupted_run(tiny, tmp_path, objective):
    """Stopped after step 6 (checkpoint at 4), resumed to 12: the same losses from step 5 on and
    the same features, bit for bit, as one run from 0 to 12."""
    ds, scene, settings = tiny
    straight: dict[int, float] = {}
    _train(
        tmp_path / "straight", ds, scene, objective, settings[objective], [lambda r: straight.update({r.step: r.loss})]
    )

    def kill(report):
        if report.step == 6:
            raise _Kill

    with pytest.raises(_Kill):
        _train(tmp_path / "killed", ds, scene, objective, settings[objective], [kill])
    run = RunDir(tmp_path / "killed")
    assert [s for s, _ in run.list_checkpoints("features")] == [4]
    resumed: dict[int, float] = {}
    summary = _train(
        tmp_path / "killed", ds, scene, objective, settings[objective], [lambda r: resumed.update({r.step: r.loss})]
    )
    assert summary["resumed_from"] == 4 and sorted(resumed) == list(range(5, 13))
    # NaN: a step without a batch (object-field's views without a prompted object)
    np.testing.assert_array_equal([resumed[s] for s in range(5, 13)], [straight[s] for s in range(5, 13)])
    a = torch.load(run.features_pt, weights_only=False)["features"]
    b = torch.load(tmp_path / "straight" / "features.pt", weights_only=False)["features"]
    assert torch.equal(a, b)


def test_the_checkpoint_holds_the_objective_state(tiny, tmp_path):
    ds, scene, settings = tiny
    _train(tmp_path / "of", ds, scene, "object-field", settings["object-field"])
    _train(tmp_path / "cl", ds, scene, "clustering", settings["clustering"])
    _train(tmp_path / "co", ds, scene, "contrastive", settings["contrastive"])
    of = torch.load(RunDir(tmp_path / "of").latest_checkpoint("features"), weights_only=True)["objective_state"]
    assert of["error_maps"] and set(of["error_maps"]) <= set(ds.names("train")) and of["refreshed"]
    assert any(bool((m < 1).any()) for m in of["error_maps"].values())  # the maps learnt something
    cl = torch.load(RunDir(tmp_path / "cl").latest_checkpoint("features"), weights_only=True)["objective_state"]
    assert len(cl["labels"]) > 1 and cl["centres"].shape == (len(cl["labels"]), 16)
    assert set(cl["views"]) <= set(ds.names("train"))
    co = torch.load(RunDir(tmp_path / "co").latest_checkpoint("features"), weights_only=True)["objective_state"]
    assert co == {}
    # a state that does not fit the objective is one clear error naming the checkpoint
    path = RunDir(tmp_path / "cl").latest_checkpoint("features")
    ck = torch.load(path, weights_only=True)
    ck["objective_state"] = {"error_maps": {}}
    torch.save(ck, path)
    with pytest.raises(GssegError, match="state does not fit"):
        _train(tmp_path / "cl", ds, scene, "clustering", settings["clustering"])


def test_state_round_trips_through_state_dict():
    """load_state_dict(state_dict()) gives an objective that continues identically."""
    h, w = 12, 16
    labels = np.zeros((h, w), np.int64)
    labels[3:9, 4:10] = 1
    g = torch.Generator().manual_seed(0)
    a = make_objective("object-field", clicks=["v:1,1"], rays=40, patches=1, patch_size=4, error_cells=8)
    a.set_labels({"v": labels, "u": labels}, h, w)
    a.begin_step(80, 100)
    batch = a.sample("v", None, g)
    a.update_state([a.observe(batch, {"features": torch.randn(len(batch.pixel_ids), 2, generator=g)})])
    b = make_objective("object-field", clicks=["v:1,1"], rays=40, patches=1, patch_size=4, error_cells=8)
    b.set_labels({"v": labels, "u": labels}, h, w)
    b.load_state_dict(a.state_dict())
    assert b.refreshed == {"v"} and all(torch.equal(a.error_maps[v], b.error_maps[v]) for v in "uv")
    b.begin_step(80, 100)
    ga, gb = torch.Generator().manual_seed(1), torch.Generator().manual_seed(1)
    assert torch.equal(a.sample("v", None, ga).pixel_ids, b.sample("v", None, gb).pixel_ids)
    with pytest.raises(ValueError, match="other views"):
        b.load_state_dict({"error_maps": {"v": a.error_maps["v"]}, "refreshed": []})
    with pytest.raises(ValueError, match="has no state"):
        make_objective("contrastive").load_state_dict({"memory": 1})
    make_objective("contrastive").load_state_dict({})  # a stateless objective's (empty) state


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.mark.slow
def test_two_ranks_equal_one_process_for_every_trained_objective(tiny, tmp_path):
    """One torchrun job of 2 ranks (gloo) trains every objective; each gives the features the
    single process gives (2 views per step, one per rank)."""
    ds, scene, settings = tiny
    spec = {
        "data": str(ds.root),
        "iters": 12,
        "views_per_step": 2,
        "seed": 5,
        "runs": {name.replace("-", "_"): [name, settings[name]] for name in TRAINED},
    }
    for out in ("one", "two"):
        for name in spec["runs"]:
            make_run(tmp_path / out / name, ds, scene)
    train_objective_runs({**spec, "out": str(tmp_path / "one")}, ds=ds)
    spec_path = tmp_path / "spec.json"
    spec_path.write_text(json.dumps({**spec, "out": str(tmp_path / "two")}))
    cmd = [
        sys.executable,
        "-m",
        "torch.distributed.run",
        "--nproc-per-node",
        "2",
        "--master-addr",
        "127.0.0.1",
        "--master-port",
        str(_free_port()),
        "-m",
        "tests.helpers.objective_runs",
        str(spec_path),
    ]
    proc = subprocess.run(
        cmd, capture_output=True, text=True, timeout=600, cwd=REPO_ROOT, env={**os.environ, "OMP_NUM_THREADS": "1"}
    )
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    for name in spec["runs"]:
        one = torch.load(tmp_path / "one" / name / "features.pt", weights_only=False)["features"]
        two = torch.load(tmp_path / "two" / name / "features.pt", weights_only=False)["features"]
        summary = json.loads((tmp_path / "two" / name / "features.json").read_text())
        assert summary["processes"] == 2 and summary["steps"] == 12, name
        torch.testing.assert_close(two, one, rtol=0, atol=1e-6, msg=name)
    shutil.rmtree(tmp_path / "two", ignore_errors=True)


def test_prepare_takes_what_the_trainer_hands_over(tmp_path):
    """The prompted and depth-reading objectives read ``ctx.prompts`` / ``ctx.surface``, never the
    run directory: without them prepare() is one clear error, with them no run is needed."""
    from types import SimpleNamespace

    from gsseg.objectives import FeatureContext
    from gsseg.prompts.run import RunPrompts

    h, w = 6, 8
    lab = np.zeros((h, w), np.int64)
    lab[2:4, 2:5] = 1
    ds = SimpleNamespace(masks_dir=tmp_path / "masks")
    ctx = FeatureContext(dataset=ds, store=None, views=["a", "b"], height=h, width=w)
    of = make_objective("object-field", clicks=["a:3,3"])
    assert of.prompt_options() is of.cfg.prompt and make_objective("contrastive").prompt_options() is None
    with pytest.raises(GssegError, match="ctx.prompts"):
        of.prepare(ctx)
    spec = of.cfg.prompt.spec()  # one prompted object, from the click
    ctx.prompts = RunPrompts(spec, np.zeros((0, 3)), np.zeros(0, np.int64), {"a": lab}, {"b": "not seen"})
    of.prepare(ctx)
    assert set(of.labels) == {"a"} and torch.equal(of.labels["a"], torch.from_numpy(lab.reshape(-1)))
    assert of.extras()["prompts"]["skipped"] == {"b": "not seen"}
    vote = make_objective("vote", clicks=["a:3,3"])
    vote.prepare(ctx)
    assert vote.source == "prompts" and (vote.view_channels("a") == lab).all()

"""Data-parallel features stage: ``torchrun --nproc-per-node 2 -m gsseg train ...`` (gloo, on
127.0.0.1) gives the features one process gives with the same seed and views per step; rank 0
alone writes the run; views are shared between the ranks."""

from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from gsseg.features import load_run_scene
from gsseg.train.distributed import ProcessGroup
from tests.helpers.feature_stage_fixtures import depth_splat_scene, make_labelled_dataset, make_run


@pytest.fixture(scope="module")
def toy(tmp_path_factory):
    root = tmp_path_factory.mktemp("distributed")
    ds = make_labelled_dataset(root / "data", views=4, width=48, height=36, scene="toys")
    return ds, depth_splat_scene(ds)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def train_args(ds, run: Path) -> list[str]:
    return [
        "train",
        str(ds.root),
        "--out",
        str(run),
        "--stage",
        "features",
        "--quiet",
        "--objective",
        "contrastive",
        "--feature-iters",
        "12",
        "--views-per-step",
        "2",
        "--seed",
        "3",
        "--set",
        "pixels=256",
    ]


def run_gsseg(args: list[str], nproc: int) -> subprocess.CompletedProcess:
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    if nproc == 1:
        cmd = [sys.executable, "-m", "gsseg", *args]
    else:
        cmd = [
            sys.executable,
            "-m",
            "torch.distributed.run",
            "--nproc-per-node",
            str(nproc),
            "--master-addr",
            "127.0.0.1",
            "--master-port",
            str(free_port()),
            "-m",
            "gsseg",
            *args,
        ]
    return subprocess.run(cmd, capture_output=True, text=True, timeout=600, env=env)


def test_view_slots_are_shared_between_ranks():
    groups = [ProcessGroup(rank=r, world_size=3) for r in range(3)]
    owners = [[g.rank for g in groups if g.owns(j)] for j in range(7)]
    assert owners == [[0], [1], [2], [0], [1], [2], [0]]
    single = ProcessGroup()
    assert all(single.owns(j) for j in range(5)) and not single.distributed and single.is_main


@pytest.mark.slow
def test_two_processes_match_one_process(toy, tmp_path):
    ds, scene = toy
    one, two = tmp_path / "one", tmp_path / "two"
    make_run(one, ds, scene)
    shutil.copytree(one, two)
    single = run_gsseg(train_args(ds, one), 1)
    assert single.returncode == 0, single.stderr[-3000:]
    double = run_gsseg(train_args(ds, two), 2)
    assert double.returncode == 0, double.stdout[-3000:] + double.stderr[-3000:]

    f1, f2 = load_run_scene(one)[1].features, load_run_scene(two)[1].features
    assert f1.shape == f2.shape and not torch.allclose(f2, load_run_scene(one)[1].features * 0)
    torch.testing.assert_close(f2, f1, rtol=1e-5, atol=1e-6)
    start = torch.load(sorted((two / "checkpoints").glob("features_*.pt"))[-1], weights_only=True)
    assert start["step"] == 12
    summary = json.loads((two / "features.json").read_text())
    assert summary["processes"] == 2 and summary["views_per_step"] == 2 and summary["steps"] == 12
    # one writer: one set of checkpoints, no per-rank copies, and a sensible one-line report
    assert sorted(p.name for p in (two / "checkpoints").iterdir()) == sorted(
        p.name for p in (one / "checkpoints").iterdir()
    )
    assert double.stderr.count("features: 12 steps") == 1


def test_views_per_step_one_is_the_single_view_loop(toy, tmp_path):
    """--views-per-step 1 (the default) keeps the one-view-per-step sampling of earlier runs."""
    from gsseg.run.run_dir import RunDir
    from gsseg.train.pipeline import StageOptions, run_training

    ds, scene = toy
    results = []
    for name, per_step in (("a", None), ("b", 1)):
        make_run(tmp_path / name, ds, scene)
        run = RunDir(tmp_path / name)
        cfg = run.read_config()
        cfg.stages = ["features"]
        cfg.features.iters, cfg.features.objective_settings = 6, {"pixels": 256}
        if per_step is not None:
            cfg.features.views_per_step = per_step
        run_training(cfg, run, StageOptions(show_progress=False), ds=ds)
        results.append(load_run_scene(run.root)[1].features)
    assert torch.equal(results[0], results[1])
    with pytest.raises(Exception, match="views per step must be >= 1"):
        cfg.features.views_per_step = 0
        cfg.features.validate()

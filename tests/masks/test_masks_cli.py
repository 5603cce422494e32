"""``gsseg masks`` on a tiny built-in scene: every source, skip/--force, clear errors."""

from __future__ import annotations

import json
import shutil
import sys

import numpy as np
import pytest
import torch
from PIL import Image

from gsseg.cli.app import main
from gsseg.data import load_dataset
from gsseg.masks import MaskStore, summarize
from gsseg.synth import make_scene


@pytest.fixture(scope="module")
def scene(tmp_path_factory):
    root = tmp_path_factory.mktemp("scene") / "tabletop"
    make_scene(root, scene="tabletop", seed=0, width=64, height=48, views=3, test_views=1)
    return root


@pytest.fixture
def data(scene, tmp_path):
    """A fresh copy of the scene without masks."""
    root = tmp_path / "data"
    shutil.copytree(scene, root)
    return root


def run_cli(args: list[str]) -> int:
    with pytest.raises(SystemExit) as exc:
        main(["masks", *args, "--quiet"])
    return int(exc.value.code or 0)


def test_simulated_masks_skip_and_force(data, capsys):
    assert run_cli([str(data), "--source", "simulated", "--noise", "hard", "--json"]) == 0
    summary = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    ds = load_dataset(data)
    store = MaskStore(ds.masks_dir)
    assert store.views() == sorted(ds.names("all"))
    assert summary["written"] == len(ds.names("all")) and summary["existing"] == 0
    first = {n: store.load(n) for n in store.views()}
    assert all(vm.source == "simulated" and vm.info["noise"] == "hard" for vm in first.values())
    assert sum(vm.n_masks for vm in first.values()) == summary["masks_written"] > 0

    mtimes = {n: store.path(n).stat().st_mtime_ns for n in store.views()}
    assert run_cli([str(data), "--source", "simulated", "--json"]) == 0
    summary = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert summary["written"] == 0 and summary["existing"] == len(mtimes)
    assert {n: store.path(n).stat().st_mtime_ns for n in store.views()} == mtimes

    assert run_cli([str(data), "--source", "simulated", "--noise", "hard", "--force", "--json"]) == 0
    again = {n: store.load(n) for n in store.views()}
    for n, vm in again.items():  # same seed and view: the same masks
        assert np.array_equal(vm.masks(), first[n].masks())
    s = summarize(ds.masks_dir)
    assert s["views"] == len(mtimes) and s["sources"] == {"simulated": len(mtimes)}


def test_watershed_masks_for_train_split(data):
    assert run_cli([str(data), "--source", "watershed", "--split", "train", "--levels", "3,6,12"]) == 0
    ds = load_dataset(data)
    store = MaskStore(ds.masks_dir)
    assert store.views() == sorted(ds.names("train"))
    vm = store.load(ds.names("train")[0])
    assert vm.source == "watershed" and vm.info["region_counts"] == [3, 6, 12]
    assert vm.patch_index.shape == (48, 64) and vm.inclusion_tree().n_levels >= 2


def test_label_masks_import_and_errors(data, capsys):
    ds = load_dataset(data)
    name = ds.names("train")[0]
    folder = data / "label_masks" / name
    folder.mkdir(parents=True)
    coarse = np.zeros((48, 64), dtype=np.uint16)
    coarse[:, 32:] = 9
    fine = np.zeros((48, 64), dtype=np.uint8)
    fine[:24, :32], fine[24:, :32], fine[10:20, 40:60] = 1, 2, 3
    Image.fromarray(coarse).save(folder / "coarse.png")
    Image.fromarray(fine).save(folder / "fine.png")
    assert run_cli([str(data), "--source", "labels"]) == 0
    store = MaskStore(ds.masks_dir)
    assert store.views() == [name]  # views without label maps are skipped
    vm = store.load(name)
    assert vm.n_masks == 4 and vm.source == "labels"
    assert "without input" in capsys.readouterr().err

    Image.fromarray(np.zeros((10, 10), dtype=np.uint8)).save(folder / "small.png")
    assert run_cli([str(data), "--source", "labels", "--force"]) == 1
    err = capsys.readouterr().err
    assert "small.png" in err and "label image is 10x10" in err and "Traceback" not in err
    (folder / "small.png").write_bytes(b"broken")
    assert run_cli([str(data), "--source", "labels", "--force"]) == 1
    assert "small.png: unreadable label image" in capsys.readouterr().err


def test_sources_without_input_and_bad_options(data, capsys):
    assert run_cli([str(data), "--source", "labels"]) == 1
    assert "found no input for any view" in capsys.readouterr().err
    assert run_cli([str(data), "--source", "magic"]) == 1
    assert "unknown mask source" in capsys.readouterr().err
    assert run_cli([str(data), "--source", "sam", "--checkpoint", str(data / "sam_vit_h.pth")]) == 1
    assert "sam_vit_h.pth: SAM checkpoint not found" in capsys.readouterr().err
    assert run_cli([str(data / "nothing"), "--source", "watershed"]) == 1
    assert run_cli([str(data), "--source", "simulated", "--noise", "extreme"]) == 1
    assert "unknown noise level" in capsys.readouterr().err


def test_sam_source_through_the_cli(data, tmp_path):
    from gsseg.masks.sources.sam_model import SamArchitecture, build_sam, save_sam_checkpoint

    modules_before = {k: v for k, v in sys.modules.items() if k.startswith("torchvision")}
    try:
        arch = SamArchitecture(
            image_size=64,
            patch_size=16,
            encoder_embed_dim=32,
            encoder_depth=1,
            encoder_num_heads=2,
            encoder_global_attn_indexes=[0],
            window_size=2,
            prompt_embed_dim=32,
            mask_in_chans=4,
            decoder_mlp_dim=64,
            decoder_num_heads=2,
            iou_head_hidden_dim=32,
        )
        torch.manual_seed(1)
        ckpt = tmp_path / "tiny.pt"
        save_sam_checkpoint(ckpt, build_sam(arch), arch)
        args = [
            str(data),
            "--source",
            "sam",
            "--checkpoint",
            str(ckpt),
            "--split",
            "test",
            "--points-per-side",
            "4",
            "--pred-iou",
            "-10",
            "--stability",
            "0",
            "--min-region-area",
            "4",
            "--sam-max-size",
            "32",
        ]
        assert run_cli(args) == 0
        ds = load_dataset(data)
        store = MaskStore(ds.masks_dir)
        assert store.views() == sorted(ds.names("test"))
        for name in store.views():
            vm = store.load(name)
            assert vm.source == "sam" and vm.n_masks >= 1
            assert vm.patch_index.shape == (24, 32) and vm.image_size == (48, 64)
    finally:
        for k in [k for k in sys.modules if k.startswith("torchvision")]:
            del sys.modules[k]
        sys.modules.update(modules_before)

"""``gsseg render RUN``: per-view renders, colour-mapped depth, current labels and one contact sheet."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from gsseg.report.sheet import BLANK_RGB, GAP, colorize_depth, colorize_labels, tile_size  # noqa: E402
from tests.helpers.cli_fixtures import cli_exit_code  # noqa: E402
from tests.helpers.segment_fixtures import build_tiny_run  # noqa: E402


@pytest.fixture(scope="module")
def run(tmp_path_factory) -> Path:
    return build_tiny_run(tmp_path_factory.mktemp("render"))


def render_cli(argv: list[str], capsys) -> tuple[int, str, str]:
    code = cli_exit_code(["render", *argv])
    out, err = capsys.readouterr()
    return code, out, err


def columns(sheet: np.ndarray, n_rows: int, header: int = 28) -> list[np.ndarray]:
    """The four column strips (below the header) of a contact sheet [H,W,3]."""
    tw = (sheet.shape[1] - 5 * GAP) // 4
    body = sheet[header:]
    return [body[:, GAP + c * (tw + GAP) : GAP + c * (tw + GAP) + tw] for c in range(4)]


def test_render_without_segments(run, tmp_path, capsys):
    out = tmp_path / "renders"
    code, stdout, err = render_cli([str(run), "--out", str(out), "--json", "-q"], capsys)
    assert code == 0, err
    summary = json.loads(stdout)
    test_views = ["test_000", "test_001", "test_000_rot10", "test_001_rot10"]
    assert sorted(summary["psnr_per_view"]) == sorted(test_views)
    from gsseg.eval.run_eval import evaluate_run

    measured = evaluate_run(run, metrics=["psnr"], show_progress=False)["psnr_per_view"]
    assert summary["psnr_per_view"] == pytest.approx(measured, abs=1e-4)  # as `gsseg eval` measures it
    assert summary["cut"] is None and summary["segments"] is None
    for name in test_views:
        render = np.asarray(Image.open(out / f"{name}_render.png"))
        assert render.shape == (48, 64, 3)
        assert (out / f"{name}_depth.png").is_file() and not (out / f"{name}_labels.png").exists()
    sheet = np.asarray(Image.open(out / "contact_sheet.png").convert("RGB"))
    photo, render_col, depth_col, labels_col = columns(sheet, 4)
    assert sheet.shape[:2] >= (28 + 4 * (240 + GAP) + GAP, 4 * 320)  # a 320x240 tile per column and test view
    blank = (labels_col == np.array(BLANK_RGB)).all(-1).mean()
    assert blank > 0.8  # "no segments yet": a blank tile with one caption
    assert (photo != np.array(BLANK_RGB)).any(-1).mean() > 0.9 and depth_col.std() > 20


def test_render_shows_the_current_cut_and_matches_its_label_maps(run, tmp_path, capsys):
    from gsseg.segment.run import SegmentRequest, segment_run

    segment_run(run, SegmentRequest(thresholds=[0.25], views="test", show_progress=False), device="cpu")
    cut_dir = run / "segments" / "t0.250"
    out = tmp_path / "renders"
    code, _, err = render_cli([str(run), "--out", str(out), "-q"], capsys)
    assert code == 0, err
    summary = json.loads((out / "renders.json").read_text())
    assert summary["cut"] == "t0.250" and summary["segments"] > 3
    saved = np.asarray(Image.open(cut_dir / "test_000.png")).astype(np.int32)
    shown = np.asarray(Image.open(out / "test_000_labels.png"))
    assert np.array_equal(shown, colorize_labels(saved))
    # a view segment did not write is rendered from labels.npy through its contribution table
    (cut_dir / "test_001.png").rename(tmp_path / "test_001.png")
    try:
        code, _, err = render_cli([str(run), "--out", str(tmp_path / "again"), "-q"], capsys)
        assert code == 0, err
        recomputed = np.asarray(Image.open(tmp_path / "again" / "test_001_labels.png"))
        expected = colorize_labels(np.asarray(Image.open(tmp_path / "test_001.png")).astype(np.int32))
        assert (recomputed == expected).all(-1).mean() > 0.999
    finally:
        (tmp_path / "test_001.png").rename(cut_dir / "test_001.png")
    sheet = np.asarray(Image.open(out / "contact_sheet.png").convert("RGB"))
    labels_col = columns(sheet, 4)[3]
    assert (labels_col == np.array(BLANK_RGB)).all(-1).mean() < 0.05
    assert len(np.unique(labels_col.reshape(-1, 3), axis=0)) >= 4  # several segment colours


def test_train_views_and_row_limit(run, tmp_path, capsys):
    out = tmp_path / "train"
    code, _, err = render_cli([str(run), "--views", "train", "--max-rows", "3", "--out", str(out), "-q"], capsys)
    assert code == 0, err
    summary = json.loads((out / "renders.json").read_text())
    assert len(summary["psnr_per_view"]) == 8 and len(summary["sheet_rows"]) == 3
    assert summary["sheet_rows"][0] == "train_000" and summary["sheet_rows"][-1] == "train_007"
    assert 28 + 3 * (240 + GAP) < Image.open(out / "contact_sheet.png").height < 28 + 4 * (240 + GAP)


@pytest.mark.parametrize(
    "argv, needle",
    [
        (["--views", "sideways"], "unknown --views 'sideways'"),
        (["--cut", "nope"], "no cut named 'nope'"),
        (["--max-rows", "0"], "--max-rows"),
    ],
)
def test_user_mistakes_give_one_line(run, argv, needle, capsys):
    code, _, err = render_cli([str(run), *argv, "-q"], capsys)
    assert code == 1 and needle in err and len(err.strip().splitlines()) == 1, err


def test_missing_run_or_scene(tmp_path, run, capsys):
    code, _, err = render_cli([str(tmp_path / "nothing")], capsys)
    assert code == 1 and "nothing" in err and len(err.strip().splitlines()) == 1
    half = tmp_path / "half"
    half.mkdir()
    shutil.copy(run / "config.json", half / "config.json")
    code, _, err = render_cli([str(half)], capsys)
    assert code == 1 and "scene.ply" in err and "gsseg train" in err


def test_portrait_tiles_keep_room_for_captions():
    assert tile_size(64, 48) == (320, 240)
    assert tile_size(135, 240) == (200, 356)  # the fox at 135x240: widened to 200 px


def test_depth_colours_run_from_red_near_to_blue_far():
    depth = np.array([[1.0, 2.0, 4.0, 8.0, 5.0]], np.float32)
    alpha = np.array([[1.0, 1.0, 1.0, 1.0, 0.0]], np.float32)
    rgb = colorize_depth(depth, alpha, near=1.0, far=8.0).astype(int)
    assert rgb[0, 0, 0] > rgb[0, 0, 2] and rgb[0, 3, 2] > rgb[0, 3, 0]  # near red, far blue
    assert (rgb[0, 4] == 0).all()  # nothing drawn: black
    assert colorize_labels(np.array([[0, 1, 2]])).shape == (1, 3, 3)


def test_eval_save_renders_writes_the_same_sheet(run, capsys):
    code = cli_exit_code(["eval", str(run), "--metric", "psnr", "--save-renders", "--json"])
    out, err = capsys.readouterr()
    assert code == 0, err
    result = json.loads(out)
    sheet = Path(result["renders"])
    assert sheet == run / "renders" / "contact_sheet.png" and sheet.is_file()
    summary = json.loads((run / "renders" / "renders.json").read_text())
    assert summary["psnr_per_view"] == pytest.approx(result["psnr_per_view"], abs=1e-4)


def test_moved_dataset_with_data(run, tmp_path, capsys):
    cfg = json.loads((run / "config.json").read_text())
    moved = tmp_path / "moved"
    shutil.copytree(cfg["dataset"], moved)
    code, _, err = render_cli([str(run), "--data", str(moved), "--out", str(tmp_path / "r"), "-q"], capsys)
    assert code == 0, err
    assert (tmp_path / "r" / "contact_sheet.png").is_file()
    code, _, err = render_cli([str(run), "--data", str(tmp_path / "gone")], capsys)
    assert code == 1 and "gone" in err and "not found" in err

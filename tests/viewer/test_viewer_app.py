"""The viewer app on a built-in run: click handlers, threshold, negative clicks, cuts, isolate,
export, runs without features, the viser server and the port-in-use error."""

from __future__ import annotations

import json
import socket

import numpy as np
import pytest

from gsseg.errors import GssegError
from gsseg.viewer.server import ViewerApp, ViewerConfig
from tests.helpers.viewer_fixtures import make_viewer_run, ray_to_object, shared_root

TABLE, LAMP, BALL = 1, 4, 6


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    root = shared_root(tmp_path_factory)
    return {kind: make_viewer_run(root, kind=kind, run_name=f"run_{kind}") for kind in ("embedding", "logits", None)}


def object_stats(app: ViewerApp, objects: np.ndarray, obj: int, owner_index: int = 0) -> tuple[float, float]:
    """(precision, recall) of the selection of object ``owner_index`` against ground-truth ``obj``."""
    sel = app.selection.owner() == owner_index
    truth = objects == obj
    return (sel & truth).sum() / max(sel.sum(), 1), (sel & truth).sum() / truth.sum()


@pytest.mark.parametrize("kind", ["embedding", "logits"])
def test_click_selects_the_clicked_object(runs, kind):
    vr = runs[kind]
    app = ViewerApp(vr.run)
    assert app.selection.threshold == (0.85 if kind == "embedding" else 0.5)
    pick = app.click(*ray_to_object(vr, app.picker, LAMP))
    assert vr.objects[pick.index] == LAMP
    precision, recall = object_stats(app, vr.objects, LAMP)
    assert precision > 0.99 and recall > 0.99
    assert f"Selected: {int(app.selection.selected().sum())} Gaussians" in app.status_text()
    # a second object in another colour
    app.new_object()
    app.click(*ray_to_object(vr, app.picker, BALL))
    precision, recall = object_stats(app, vr.objects, BALL, owner_index=1)
    assert precision > 0.99 and recall > 0.99
    assert app.selection.counts() == [int((vr.objects == LAMP).sum()), int((vr.objects == BALL).sum())]
    rgba = app.current_rgba().view(np.uint8).reshape(-1, 4)
    lamp_rgb = rgba[vr.objects == LAMP, :3].astype(float).mean(0)
    ball_rgb = rgba[vr.objects == BALL, :3].astype(float).mean(0)
    assert np.abs(lamp_rgb - ball_rgb).max() > 30
    app.undo()
    assert app.selection.counts() == [int((vr.objects == LAMP).sum()), 0]
    app.clear()
    assert not app.selection.selected().any()


def test_threshold_slider_and_negative_click(runs):
    vr = runs["embedding"]
    app = ViewerApp(vr.run)
    app.click(*ray_to_object(vr, app.picker, LAMP))
    app.set_threshold(0.0)
    assert app.selection.selected().all()
    app.set_threshold(0.3)
    broad = app.selection.selected()
    assert broad[vr.objects == TABLE].all(), "the fixture's table embedding should be within 0.3 of the lamp's"
    app.click(*ray_to_object(vr, app.picker, TABLE), negative=True)
    sel = app.selection.selected()
    assert not sel[vr.objects == TABLE].any()
    assert sel[vr.objects == LAMP].all()
    assert "threshold 0.30" in app.status_text()


def test_cut_colouring_segment_clicks_isolate_and_hide(runs):
    vr = runs["embedding"]
    app = ViewerApp(vr.run)
    assert app.cut_names == ["gt_object"]
    app.show_cut("gt_object")
    rgb = app.current_rgba().view(np.uint8).reshape(-1, 4)[:, :3]
    for obj in (TABLE, LAMP):
        assert len(np.unique(rgb[vr.objects == obj], axis=0)) == 1
    assert not np.array_equal(rgb[vr.objects == TABLE][0], rgb[vr.objects == LAMP][0])
    assert "cut **gt_object**: 6 segments" in app.status_text()
    with pytest.raises(GssegError, match="no cut named"):
        app.show_cut("t0.500")
    app.click_mode = "segment of the shown cut"
    app.click(*ray_to_object(vr, app.picker, BALL))
    assert np.array_equal(app.selection.selected(), vr.objects == BALL)
    app.set_mode("isolate selected")
    alpha = app.current_rgba().view(np.uint8).reshape(-1, 4)[:, 3]
    assert (alpha[vr.objects != BALL] == 0).all() and (alpha[vr.objects == BALL] > 0).all()
    # hidden Gaussians cannot be picked: a ray at the lamp now passes through to nothing or the ball
    pick = app.picker.pick(*ray_to_object(vr, app.picker, LAMP), visible=app.visible())
    assert pick is None or vr.objects[pick.index] == BALL
    app.set_mode("hide selected")
    alpha = app.current_rgba().view(np.uint8).reshape(-1, 4)[:, 3]
    assert (alpha[vr.objects == BALL] == 0).all() and (alpha[vr.objects != BALL] > 0).all()
    app.show_cut(None)
    assert app.cut is None


def test_export_selection_writes_plys_like_gsseg_export(runs, tmp_path):
    from gsseg.gaussians.ply import read_ply

    vr = runs["logits"]
    app = ViewerApp(vr.run)
    with pytest.raises(GssegError, match="nothing is selected"):
        app.export("none")
    app.click(*ray_to_object(vr, app.picker, LAMP))
    app.new_object()
    app.click(*ray_to_object(vr, app.picker, BALL))
    out = app.export("sel")
    assert out == vr.run / "exports" / "sel"
    manifest = json.loads((out / "segments.json").read_text())
    assert manifest["selected"] == [1, 2]
    lamp = read_ply(out / "object_1.ply")
    ball = read_ply(out / "object_2.ply")
    rest = read_ply(out / "scene_without_selected.ply")
    assert len(lamp) == (vr.objects == LAMP).sum() and len(ball) == (vr.objects == BALL).sum()
    assert len(lamp) + len(ball) + len(rest) == app.n
    np.testing.assert_array_equal(np.load(out / "labels.npy") > 0, np.isin(vr.objects, [LAMP, BALL]))
    colors = {s["id"]: s["color"] for s in manifest["segments"]}
    np.testing.assert_allclose(app.selection.colors()[0] * 255, colors[1], atol=0.5)
    assert "exported" in app.status_text()


def test_run_without_features_is_view_only(runs):
    vr = runs[None]
    app = ViewerApp(vr.run)
    assert not app.has_features
    pick = app.click(*ray_to_object(vr, app.picker, LAMP))
    assert pick is not None and vr.objects[pick.index] == LAMP
    assert not app.selection.selected().any()
    assert "View only" in app.status_text() and "no identity features" in app.status_text()


def test_server_sends_splats_and_recolours_the_handle(runs):
    vr = runs["embedding"]
    app = ViewerApp(vr.run, ViewerConfig(port=0))
    server = app.start()
    try:
        handle = app._splat_handle
        assert handle.buffer.shape == (app.n, 8)
        np.testing.assert_array_equal(handle.buffer[:, :7], app.base_buffer[:, :7])
        app.click(*ray_to_object(vr, app.picker, LAMP))
        np.testing.assert_array_equal(handle.buffer[:, 7], app.current_rgba())
        assert not np.array_equal(handle.buffer[:, 7], app.base_buffer[:, 7])
        assert "Selected: " in app._gui["status"].content
        # the camera starts at the first training view, looking through the scene
        from gsseg.data import load_dataset

        cams = load_dataset(vr.data).cameras("train")
        np.testing.assert_allclose(server.initial_camera.position, cams.centers[0].numpy(), atol=1e-4)
    finally:
        app.stop()


def test_subsampled_display_draws_the_most_visible_and_selects_among_all(runs):
    from gsseg.viewer.splats import display_indices

    vr = runs["embedding"]
    full = ViewerApp(vr.run)
    m = full.n // 3
    app = ViewerApp(vr.run, ViewerConfig(port=0, max_display=m))
    assert full.shown is None and app.shown is not None and len(app.shown) == m
    assert np.all(np.diff(app.shown) > 0) and app.base_buffer.shape == (m, 8)
    scene = full.scene
    cover = scene.opacities.numpy() * np.exp(np.sort(scene.log_scales.numpy(), axis=1)[:, 1:].sum(axis=1))
    assert cover[app.shown].min() >= np.delete(cover, app.shown).max()  # the most visible are drawn
    assert display_indices(scene, 0) is None and display_indices(scene, full.n) is None
    app.start()
    try:
        handle = app._splat_handle
        assert handle.buffer.shape == (m, 8)
        np.testing.assert_array_equal(handle.buffer[:, :3], full.base_buffer[app.shown, :3])
        pick = app.click(*ray_to_object(vr, app.picker, LAMP))
        assert pick is not None and vr.objects[pick.index] == LAMP
        ref = full.click(*ray_to_object(vr, full.picker, LAMP))
        assert pick.index == ref.index  # picking and scoring see every Gaussian
        np.testing.assert_array_equal(app.selection.selected(), full.selection.selected())
        np.testing.assert_array_equal(handle.buffer[:, 7], full.current_rgba()[app.shown])
    finally:
        app.stop()


def test_port_in_use_is_one_clear_error(runs, capsys):
    from gsseg.cli.app import main

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        s.listen(1)
        port = s.getsockname()[1]
        with pytest.raises(GssegError, match=f"port {port} on 127.0.0.1 is already in use"):
            ViewerApp(runs[None].run, ViewerConfig(port=port)).start()
        with pytest.raises(SystemExit) as exc:
            main(["view", str(runs[None].run), "--port", str(port)])
        assert exc.value.code == 1
    err = capsys.readouterr().err
    assert "already in use" in err and "Traceback" not in err


def test_missing_run_and_unknown_view_are_user_errors(runs, tmp_path):
    with pytest.raises(GssegError, match="run directory not found"):
        ViewerApp(tmp_path / "nope")
    app = ViewerApp(runs[None].run, ViewerConfig(port=0, view="train_999"))
    with pytest.raises(GssegError, match="--view train_999: no such view"):
        app.start()


def test_features_of_another_scene_degrade_to_view_only(runs, tmp_path):
    import shutil

    import torch

    from gsseg.features import FeatureRecord, save_features
    from gsseg.gaussians.scene import FeatureInfo

    run = tmp_path / "run"
    shutil.copytree(runs[None].run, run)
    save_features(run / "features.pt", FeatureRecord(torch.zeros(5, 3), FeatureInfo("embedding", "contrastive", 3)))
    app = ViewerApp(run)
    assert not app.has_features
    assert "re-run the features stage" in app.status_text()

"""The viewer never sends NaN/Inf to the page: Gaussians with NaN/Inf parameters, a zero
quaternion or a covariance too large for the buffer's half floats are dropped at load (counted),
and features, cuts, clicks and exports stay aligned with the Gaussians kept. It starts at the
first training camera."""

from __future__ import annotations

import dataclasses
import math

import numpy as np
import pytest
import torch

from gsseg.gaussians.ply import read_ply, write_ply
from gsseg.viewer.server import ViewerApp, ViewerConfig, clip_planes
from gsseg.viewer.splats import drawable
from tests.helpers.viewer_fixtures import make_viewer_run, ray_to_object, shared_root

LAMP = 4


@pytest.fixture(scope="module")
def broken(tmp_path_factory):
    """A viewer run whose scene.ply has 4 kinds of undrawable Gaussians (NaN centre, Inf colour,
    zero quaternion, a 20000-unit standard deviation), 3 of each, among the table's."""
    vr = make_viewer_run(shared_root(tmp_path_factory), kind="embedding", run_name="run_invalid")
    scene = read_ply(vr.run / "scene.ply")
    table = np.flatnonzero(vr.objects == 1)
    rows = np.random.default_rng(0).choice(table, 12, replace=False)
    scene.means[rows[0:3], 0] = float("nan")
    scene.sh0[rows[3:6], 0, 1] = float("inf")
    scene.quats[rows[6:9]] = 0.0
    scene.log_scales[rows[9:12]] = math.log(2.0e4)
    write_ply(vr.run / "scene.ply", scene)
    return vr, np.sort(rows)


def test_drawable_flags_each_kind(broken):
    vr, rows = broken
    scene = read_ply(vr.run / "scene.ply", keep_invalid=True)
    ok = drawable(scene)
    assert np.array_equal(np.flatnonzero(~ok), rows)


def test_undrawable_gaussians_are_dropped_and_the_rest_stay_aligned(broken, tmp_path):
    vr, rows = broken
    app = ViewerApp(vr.run, ViewerConfig(export_dir=tmp_path))
    n_file = len(vr.objects)
    assert app.dropped == 12 and app.n == n_file - 12 and app.n_file == n_file
    assert "12 of" in app.dropped_note() and "NaN/Inf" in app.dropped_note()
    kept_objects = np.delete(vr.objects, rows)
    # the buffer the browser gets: finite float32 centres, finite float16 covariances
    buf = app.base_buffer
    assert np.isfinite(buf[:, 0:3].copy().view(np.float32)).all()
    assert np.isfinite(buf[:, 4:7].copy().view(np.float16)).all()
    assert np.isfinite(app.display.covariances).all() and np.isfinite(app.display.rgbs).all()
    # cut labels follow the kept rows: the gt object cut equals the kept Gaussians' objects
    app.show_cut("gt_object")
    assert np.array_equal(app.cut_labels("gt_object"), kept_objects)
    # a click on the lamp selects exactly the lamp among the kept Gaussians
    app.show_cut(None)
    pick = app.click(*ray_to_object(dataclasses.replace(vr, objects=kept_objects), app.picker, LAMP))
    assert pick is not None and kept_objects[pick.index] == LAMP
    selected = app.selection.selected()
    assert selected.sum() == (kept_objects == LAMP).sum() and (kept_objects[selected] == LAMP).all()
    out = app.export("lamp")
    assert len(read_ply(out / "object_1.ply")) == (kept_objects == LAMP).sum()


def test_clip_planes_follow_the_scene_units():
    assert clip_planes(np.array([[0.0, 0.0, 5.0], [0.0, 0.0, 50.0]]), np.zeros(3)) == (0.01, 1000.0)
    near, far = clip_planes(np.array([[0.0, 0.0, 4000.0]]), np.zeros(3))  # kilometres away
    assert far == 8000.0 and near == 0.01
    near, far = clip_planes(np.array([[0.0, 0.0, 0.05]]), np.zeros(3))  # a few centimetres
    assert near == pytest.approx(5e-4) and far == 1000.0


def test_clean_run_keeps_every_gaussian(tmp_path_factory):
    vr = make_viewer_run(shared_root(tmp_path_factory), kind="embedding", run_name="run_clean")
    app = ViewerApp(vr.run)
    assert app.dropped == 0 and app.kept is None and app.n == len(vr.objects) and app.dropped_note() == ""


def test_server_starts_at_the_first_training_camera_with_finite_splats(broken):
    from gsseg.data import load_dataset

    vr, _ = broken
    app = ViewerApp(vr.run, ViewerConfig(port=0))
    server = app.start()
    try:
        handle = app._splat_handle
        assert np.isfinite(handle.buffer[:, 0:3].copy().view(np.float32)).all()
        assert np.isfinite(handle.buffer[:, 4:7].copy().view(np.float16)).all()
        cams = load_dataset(vr.data).cameras("train")
        c2w = cams.camtoworlds[0].double().numpy()
        cam = server.initial_camera
        np.testing.assert_allclose(cam.position, c2w[:3, 3], atol=1e-4)
        forward = (cam.look_at - cam.position) / np.linalg.norm(cam.look_at - cam.position)
        np.testing.assert_allclose(forward, c2w[:3, 2], atol=1e-5)  # looks where the photo looks
        fov = 2.0 * math.atan(0.5 * float(cams.heights[0]) / float(cams.Ks[0, 1, 1]))
        assert cam.fov == pytest.approx(fov)
        assert float(np.dot(cam.up, -c2w[:3, 1])) > 0.5  # image-up is up
        dist = np.linalg.norm(app.display.centers - cam.position, axis=1)
        assert 0 < cam.near <= 0.01 and cam.far >= max(1000.0, 2 * dist.max())
    finally:
        app.stop()
    assert torch.is_tensor(app.scene.means)


def test_gsseg_view_prints_one_warning_line_with_the_count(broken, capsys, monkeypatch):
    """``gsseg view``'s ready message: one warning line naming how many were dropped (the server
    itself is not started here: serve is replaced by one that only builds the app)."""
    import gsseg.viewer.server as server_module
    from tests.helpers.cli_fixtures import cli_exit_code

    vr, rows = broken

    class _Server:
        def get_port(self) -> int:
            return 8080

    def fake_serve(run_root, cfg, ready=None):
        app = ViewerApp(run_root, cfg)
        app.server = _Server()
        ready(app)

    monkeypatch.setattr(server_module, "serve", fake_serve)
    assert cli_exit_code(["view", str(vr.run)]) == 0
    err = capsys.readouterr().err
    warnings = [ln for ln in err.splitlines() if ln.startswith("warning:")]
    assert len(warnings) == 1 and f"{len(rows)} of {len(vr.objects)} Gaussians" in warnings[0], err
    assert f"{len(vr.objects) - len(rows)} Gaussians" in err

"""In a real browser (headless Chromium via Playwright): ``gsseg view`` on a run whose scene.ply
holds NaN/Inf Gaussians opens at the first training camera with the scene drawn, before any
click (the canvas looks like the first training photo, and the camera the page reports back is
that camera), the page shows how many Gaussians were dropped and logs no NaN of ours. (three.js's
bounding-sphere NaN warning itself comes from viser's splat quad, whatever the data: see
VISER_QUAD_NAN.)

Skipped when Chromium or playwright is missing, like test_viewer_browser.py.
``GSSEG_SCREENSHOT_DIR`` keeps the screenshot.
"""

from __future__ import annotations

import math
import os
import shutil
import time
from io import BytesIO
from pathlib import Path

import numpy as np
import pytest

from tests.helpers.browser import CHROMIUM, CHROMIUM_FLAGS, free_port
from tests.helpers.viewer_fixtures import make_viewer_run, shared_root

pytestmark = pytest.mark.slow
VIEWPORT = {"width": 640, "height": 480}  # the photos' 4:3, so the start view frames them alike
VISER_QUAD_NAN = "THREE.BufferGeometry.computeBoundingSphere(): Computed radius is NaN"


def corrupt(run: Path, objects: np.ndarray) -> int:
    """Put NaN centres, Inf colours, zero quaternions and huge scales into run/scene.ply; returns how many."""
    from gsseg.gaussians.ply import read_ply, write_ply

    scene = read_ply(run / "scene.ply")
    rows = np.random.default_rng(1).choice(np.flatnonzero(objects == 1), 20, replace=False)
    scene.means[rows[:5], 1] = float("nan")
    scene.sh0[rows[5:10], 0, 0] = float("-inf")
    scene.quats[rows[10:15]] = 0.0
    scene.log_scales[rows[15:]] = math.log(5.0e4)
    write_ply(run / "scene.ply", scene)
    return len(rows)


def canvas_image(page) -> np.ndarray:
    from PIL import Image

    return np.asarray(Image.open(BytesIO(page.locator("canvas").first.screenshot())).convert("RGB"), np.float32)


def photo_likeness(shot: np.ndarray, photo: np.ndarray) -> float:
    """Correlation of the screenshot with the photo, both grey and at the photo's size, over the
    part of the canvas no overlay covers: left of the GUI panel (45% of the width) and below
    viser's top-left notices (the lower 70%)."""
    from PIL import Image

    h, w = photo.shape[:2]
    small = np.asarray(Image.fromarray(shot.astype(np.uint8)).resize((w, h), Image.Resampling.BOX), np.float32)
    y0, x1 = int(0.3 * h), int(0.45 * w)
    a, b = small[y0:, :x1].mean(-1).ravel(), photo[y0:, :x1].mean(-1).ravel()
    return float(np.corrcoef(a, b)[0, 1])


def test_viewer_opens_at_the_first_camera_with_the_scene_drawn_and_no_nan(tmp_path, tmp_path_factory):
    if not Path(CHROMIUM).exists():
        pytest.skip(f"{CHROMIUM} not installed (scripts/setup.sh installs it as root)")
    sync_api = pytest.importorskip("playwright.sync_api", reason="playwright not installed (pip install -e '.[test]')")
    from gsseg.data import load_dataset
    from gsseg.viewer.server import ViewerApp, ViewerConfig

    vr = make_viewer_run(shared_root(tmp_path_factory), kind="embedding", stride=1, run_name="run_start_browser")
    dropped = corrupt(vr.run, vr.objects)
    ds = load_dataset(vr.data)
    cams = ds.cameras("train")
    photo = ds.image(cams.names[0]).numpy() * 255.0
    port = free_port()
    app = ViewerApp(vr.run, ViewerConfig(port=port))
    assert app.dropped == dropped
    server = app.start()
    shots = tmp_path / "shots"
    shots.mkdir()
    console: list[str] = []
    try:
        with sync_api.sync_playwright() as pw:
            ctx = pw.chromium.launch_persistent_context(
                str(tmp_path / "chromium-profile"),
                executable_path=CHROMIUM,
                headless=True,
                args=CHROMIUM_FLAGS,
                viewport=VIEWPORT,
            )
            try:
                page = ctx.new_page()
                page.on("console", lambda m: console.append(m.text))
                page.on("pageerror", lambda e: console.append(str(e)))
                page.goto(f"http://127.0.0.1:{port}/")
                page.get_by_text("Selected: 0 Gaussians").first.wait_for(timeout=90_000)
                page.get_by_text(f"{dropped} with NaN/Inf values dropped").first.wait_for(timeout=30_000)
                # no click, no drag: the first frames must already show the scene from the first photo's pose
                t0, likeness = time.time(), -1.0
                while likeness < 0.6:
                    assert time.time() - t0 < 90, f"the start view never looked like the first photo ({likeness:.2f})"
                    time.sleep(0.5)
                    likeness = photo_likeness(canvas_image(page), photo)
                page.screenshot(path=str(shots / "start_view.png"))
                # the camera the browser reports is the first training camera: centre, view axis, vertical fov
                (client,) = server.get_clients().values()
                c2w = cams.camtoworlds[0].double().numpy()
                np.testing.assert_allclose(client.camera.position, c2w[:3, 3], atol=1e-3)
                axis = np.asarray(client.camera.look_at) - np.asarray(client.camera.position)
                np.testing.assert_allclose(axis / np.linalg.norm(axis), c2w[:3, 2], atol=1e-3)
                fov = 2.0 * math.atan(0.5 * float(cams.heights[0]) / float(cams.Ks[0, 1, 1]))
                assert client.camera.fov == pytest.approx(fov, abs=1e-3)
                time.sleep(1.0)  # a few more frames for late console messages
            finally:
                ctx.close()
    finally:
        app.stop()
        keep = os.environ.get("GSSEG_SCREENSHOT_DIR")
        if keep and shots.is_dir():
            Path(keep).mkdir(parents=True, exist_ok=True)
            for p in shots.glob("*.png"):
                shutil.copy(p, Path(keep) / p.name)
    # viser's own splat quad geometry has a 2-component "position" attribute, so three.js logs
    # VISER_QUAD_NAN for every scene, clean ones too; any other NaN/Infinity message would be ours
    assert not [m for m in console if ("NaN" in m or "Infinity" in m) and not m.startswith(VISER_QUAD_NAN)], console

"""End to end in a real browser: ``gsseg view`` in a subprocess, headless system Chromium via
Playwright, wait for the splats, click the lamp, check the GUI's selection count, screenshot.

Skipped when Chromium (``/usr/bin/chromium``) or the ``playwright`` package is missing
(``scripts/setup.sh`` installs both). ``GSSEG_SCREENSHOT_DIR`` keeps the screenshots there.
"""

from __future__ import annotations

import math
import os
import re
import shutil
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import numpy as np
import pytest

from tests.helpers.browser import CHROMIUM, CHROMIUM_FLAGS, free_port
from tests.helpers.viewer_fixtures import make_viewer_run, shared_root

LAMP = 4
VIEWPORT = {"width": 800, "height": 560}

pytestmark = pytest.mark.slow


def wait_http(url: str, proc: subprocess.Popen, timeout: float = 90.0) -> None:
    t0 = time.time()
    while time.time() - t0 < timeout:
        if proc.poll() is not None:
            raise AssertionError(f"gsseg view exited with {proc.returncode}: {proc.stderr.read().decode()[-2000:]}")
        try:
            with urllib.request.urlopen(url, timeout=2) as r:
                if r.status == 200:
                    return
        except OSError:
            time.sleep(0.3)
    raise AssertionError(f"gsseg view did not answer on {url} within {timeout:.0f} s")


def screen_target(vr, width: int, height: int) -> tuple[float, float]:
    """Canvas position (CSS px) of a lamp point whose neighbourhood picks the lamp, seen from the
    camera the viewer starts with (look-at camera, vertical fov, OpenCV image axes)."""
    from gsseg.features import load_run_scene
    from gsseg.viewer.pick import RayPicker
    from gsseg.viewer.server import start_camera_from_dataset

    scene, _ = load_run_scene(vr.run)
    picker = RayPicker.from_scene(scene)
    means = scene.means.numpy().astype(np.float64)
    cam = start_camera_from_dataset(vr.run, None, np.median(means, axis=0))
    f = cam.look_at - cam.position
    f /= np.linalg.norm(f)
    r = np.cross(f, cam.up)
    r /= np.linalg.norm(r)
    u = np.cross(r, f)
    focal = 0.5 * height / math.tan(0.5 * cam.fov)
    lamp = np.flatnonzero(vr.objects == LAMP)
    order = np.argsort(np.linalg.norm(means[lamp] - np.median(means[lamp], axis=0), axis=1))
    for g in lamp[order][:300]:
        d = means[g] - cam.position
        sx, sy = width / 2 + focal * (d @ r) / (d @ f), height / 2 - focal * (d @ u) / (d @ f)
        if not (20 < sx < 0.55 * width and 20 < sy < height - 20):  # the GUI panel floats on the right
            continue
        ok = True
        for ox in (-3, 0, 3):
            for oy in (-3, 0, 3):
                ray = f * focal + r * (sx + ox - width / 2) - u * (sy + oy - height / 2)
                pick = picker.pick(cam.position, ray)
                ok &= pick is not None and vr.objects[pick.index] == LAMP
        if ok:
            return float(sx), float(sy)
    raise AssertionError("no lamp point is clickable from the start camera")


def clip_pixels(page, x: float, y: float, half: int = 12) -> np.ndarray:
    from io import BytesIO

    from PIL import Image

    png = page.screenshot(clip={"x": x - half, "y": y - half, "width": 2 * half, "height": 2 * half})
    return np.asarray(Image.open(BytesIO(png)).convert("RGB"), np.float32)


def test_click_in_browser_selects_the_lamp(tmp_path, tmp_path_factory):
    if not Path(CHROMIUM).exists():
        pytest.skip(f"{CHROMIUM} not installed (scripts/setup.sh installs it as root)")
    sync_api = pytest.importorskip("playwright.sync_api", reason="playwright not installed (pip install -e '.[test]')")

    vr = make_viewer_run(shared_root(tmp_path_factory), kind="embedding", stride=2, run_name="run_browser")
    lamp_count = int((vr.objects == LAMP).sum())
    tx, ty = screen_target(vr, VIEWPORT["width"], VIEWPORT["height"])
    port = free_port()
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    proc = subprocess.Popen(
        [sys.executable, "-m", "gsseg", "view", str(vr.run), "--port", str(port)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        env=env,
    )
    shots = tmp_path / "shots"
    shots.mkdir()
    try:
        wait_http(f"http://127.0.0.1:{port}/", proc)
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
                page.goto(f"http://127.0.0.1:{port}/")
                page.get_by_text("Selected: 0 Gaussians").first.wait_for(timeout=90_000)
                box = page.locator("canvas").first.bounding_box()
                assert box is not None and box["width"] == VIEWPORT["width"] and box["height"] == VIEWPORT["height"]
                # the splats are drawn when the lamp's spot is no longer the flat white background
                t0 = time.time()
                while True:
                    before = clip_pixels(page, tx, ty)
                    if before.mean() < 235 and before.std() > 4:
                        break
                    assert time.time() - t0 < 90, "the splats never appeared in the browser"
                    time.sleep(0.5)
                page.screenshot(path=str(shots / "scene.png"))
                page.mouse.click(tx, ty)
                page.get_by_text(re.compile(r"picked Gaussian \d+")).first.wait_for(timeout=60_000)
                status = page.get_by_text(re.compile(r"Selected: \d+ Gaussians")).first.inner_text()
                selected = int(re.search(r"Selected: (\d+) Gaussians", status).group(1))
                body = page.locator("body").inner_text()
                picked = int(re.search(r"picked Gaussian (\d+)", body).group(1))
                assert selected > 0
                assert vr.objects[picked] == LAMP
                assert selected == lamp_count
                # the browser shows the selection: the lamp's pixels are recoloured
                t0 = time.time()
                while np.abs(clip_pixels(page, tx, ty) - before).mean() < 8:
                    assert time.time() - t0 < 60, "the selection colours never reached the browser"
                    time.sleep(0.5)
                page.screenshot(path=str(shots / "selected.png"))
            finally:
                ctx.close()
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        keep = os.environ.get("GSSEG_SCREENSHOT_DIR")
        if keep and shots.is_dir():
            Path(keep).mkdir(parents=True, exist_ok=True)
            for p in shots.glob("*.png"):
                shutil.copy(p, Path(keep) / p.name)
    assert (shots / "selected.png").stat().st_size > 1000

"""Packaging: a wheel carries the kernel sources (the checkout's top-level ``cuda_ext/``, mapped into
the package as ``gsseg/cuda_ext/`` by setup.py), so a non-editable install, used from outside the
checkout, builds the C++ CPU rasterizer from its own copy and renders what the pure-PyTorch
reference renders."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import zipfile

import pytest

from tests.helpers.paths import REPO_ROOT

REPO = REPO_ROOT

CHECK = r"""
import sys
from pathlib import Path
import torch
import gsseg
from gsseg.render import render
from gsseg.render.extensions import csrc_root, load_cpu_extension
from gsseg.render.testing import orbit_cameras, random_scene

site = Path(sys.argv[1]).resolve()
assert Path(gsseg.__file__).resolve().is_relative_to(site), gsseg.__file__
assert csrc_root().resolve() == (site / "gsseg" / "cuda_ext").resolve(), csrc_root()
assert load_cpu_extension() is not None, "CPU extension did not build from the installed sources"
scene = random_scene(60, feature_dim=3, seed=0, dtype=torch.float64)
cams = orbit_cameras(1, 24, 20)
outs = [render(scene.means, scene.quats, scene.scales, scene.opacities, scene.colors, cams, features=scene.features,
               sh_degree=3, backend=b) for b in ("reference", "cpu")]
for name in ("rgb", "alpha", "features"):
    torch.testing.assert_close(getattr(outs[1], name), getattr(outs[0], name), atol=1e-9, rtol=1e-7)
print("OK", outs[1].meta["backend"])
"""


@pytest.mark.slow
@pytest.mark.skipif(shutil.which(os.environ.get("CXX", "c++")) is None, reason="no C++ compiler")
def test_wheel_install_outside_checkout_builds_and_runs_the_cpu_kernel(tmp_path):
    # built from a copy of what a clean clone holds, so a stale build/ folder of the checkout (setuptools
    # packs whatever it finds there) cannot hide a file the packaging misses
    clone = tmp_path / "clone"
    clone.mkdir()
    for name in ("pyproject.toml", "setup.py", "README.md"):
        shutil.copy2(REPO / name, clone / name)
    for folder in ("gsseg", "cuda_ext"):
        shutil.copytree(REPO / folder, clone / folder, ignore=shutil.ignore_patterns("__pycache__", "*.so", "*.o"))
    wheels = tmp_path / "wheels"
    build = subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "wheel",
            str(clone),
            "--no-deps",
            "--no-build-isolation",
            "-q",
            "-w",
            str(wheels),
        ],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert build.returncode == 0, build.stdout + build.stderr
    (wheel,) = wheels.glob("gsseg-*.whl")
    names = zipfile.ZipFile(wheel).namelist()
    for needed in (
        "gsseg/cuda_ext/bindings_cpu.cpp",
        "gsseg/cuda_ext/bindings_cuda.cpp",
        "gsseg/cuda_ext/utils/pixel_math.h",
        "gsseg/cuda_ext/rasterize/rasterize.cpp",
        "gsseg/cuda_ext/rasterize/rasterize.h",
        "gsseg/cuda_ext/features/feature_forward.cu",
        "gsseg/cuda_ext/contribution_table/contribution_table.cu",
    ):
        assert needed in names, f"{needed} missing from {wheel.name}"
    # every kernel source of the checkout ships, inside the package only, and the tests' host-emulation
    # harness does not
    shipped = {n.removeprefix("gsseg/") for n in names if n.startswith("gsseg/cuda_ext/")}
    in_tree = {str(p.relative_to(REPO)) for p in (REPO / "cuda_ext").rglob("*") if p.is_file()}
    assert in_tree and in_tree == shipped, sorted(in_tree ^ shipped)
    assert not [n for n in names if n.startswith("cuda_ext/") or "/csrc/" in n or "host_emulation" in n]

    site = tmp_path / "site"
    install = subprocess.run(
        [sys.executable, "-m", "pip", "install", "--no-deps", "-q", "--target", str(site), str(wheel)],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert install.returncode == 0, install.stdout + install.stderr
    outside = tmp_path / "elsewhere"
    outside.mkdir()
    env = {
        **os.environ,
        "PYTHONPATH": str(site),
        "TORCH_EXTENSIONS_DIR": str(tmp_path / "torch_ext"),
        "GSSEG_VERBOSE_BUILD": "",
    }
    env.pop("GSSEG_NO_CPU_EXT", None)
    run = subprocess.run(
        [sys.executable, "-c", CHECK, str(site)], cwd=outside, env=env, capture_output=True, text=True, timeout=900
    )
    assert run.returncode == 0 and "OK cpu" in run.stdout, run.stdout[-3000:] + run.stderr[-3000:]

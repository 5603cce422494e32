"""gsseg's CUDA feature kernel and contribution-table builder.

Three layers of checks:
- build checks that run wherever the compilers exist: every ``cuda_ext/<op>/*.cu`` compiles with
  ``nvcc -c`` without torch's headers; the torch binding passes ``g++ -fsyntax-only`` against them;
- the same ``.cu`` files compiled as plain C++ with ``-DGSSEG_HOST_EMULATION`` and run on CPU
  fibers (``tests/csrc/host_emulation.cuh``), compared with a float64 autograd oracle built on
  gsplat-format tile intersections: forward values, every gradient and the CSR tables;
- on a GPU (``@pytest.mark.cuda``, skipped otherwise): the compiled extension against the CPU
  kernel, against gsplat's N-D rasterizer, and CUDA tables against CPU tables.
"""

from __future__ import annotations

import ctypes
import math
import shutil
import subprocess
import sys
import sysconfig
from pathlib import Path

import numpy as np
import pytest
import torch

from gsseg.render.extensions import csrc_root
from tests.helpers.paths import REPO_ROOT

CSRC = csrc_root()  # the one include root of the kernel sources ("<op>/<op>.h", "utils/...")
TEST_CSRC = REPO_ROOT / "tests" / "csrc"  # the host emulation harness
CU_FILES = sorted(CSRC.glob("*/*.cu"))


def _nvcc() -> str | None:
    found = shutil.which("nvcc")
    if found:
        return found
    default = Path("/usr/local/cuda/bin/nvcc")
    return str(default) if default.exists() else None


def _cuda_include() -> Path | None:
    for cand in (Path(_nvcc()).resolve().parents[1] / "include" if _nvcc() else None, Path("/usr/local/cuda/include")):
        if cand is not None and (cand / "cuda_runtime_api.h").exists():
            return cand
    return None


# --------------------------------------------------------------------------------------------
# Build checks
# --------------------------------------------------------------------------------------------


def test_cuda_sources_present():
    names = {str(p.relative_to(CSRC)) for p in CU_FILES}
    assert {
        "features/feature_forward.cu",
        "features/feature_backward.cu",
        "contribution_table/contribution_table.cu",
    } <= names
    assert (CSRC / "utils" / "cuda_launch.h").exists()
    # one header per op declares its twins; the test harness stays out of the package
    assert (CSRC / "features" / "features.h").exists() and (
        CSRC / "contribution_table" / "contribution_table.h"
    ).exists()
    assert not list(CSRC.rglob("host_emulation*")) and (TEST_CSRC / "host_emulation.cuh").exists()


def _binding_syntax_cmd(tmp: Path) -> list[str]:
    from torch.utils.cpp_extension import include_paths

    # CPU-only torch wheels ship c10/cuda headers without their generated macro header; an
    # empty stand-in is enough for a syntax check (it only configures DLL export macros).
    shim = tmp / "shim"
    torch_inc = [Path(p) for p in include_paths()]
    if not any((p / "c10/cuda/impl/cuda_cmake_macros.h").exists() for p in torch_inc):
        (shim / "c10/cuda/impl").mkdir(parents=True, exist_ok=True)
        (shim / "c10/cuda/impl/cuda_cmake_macros.h").write_text("#pragma once\n")
    cmd = ["g++", "-fsyntax-only", "-std=c++20", "-Wall", "-Wextra"]
    for p in torch_inc:
        cmd += ["-isystem", str(p)]
    return cmd + ["-isystem", str(shim), "-isystem", sysconfig.get_paths()["include"], "-isystem",
                  str(_cuda_include()), "-I", str(CSRC),
                  "-DTORCH_EXTENSION_NAME=gsseg_cuda_ext", str(CSRC / "bindings_cuda.cpp")]  # fmt: skip


@pytest.fixture(scope="module")
def compile_jobs(tmp_path_factory):
    """Starts every compiler run of this module at once so they share the machine's cores;
    each test waits for its own. Returns {name: (process, output path)}."""
    out = tmp_path_factory.mktemp("build")
    jobs: dict[str, tuple[subprocess.Popen, Path]] = {}

    def start(name: str, cmd: list[str], target: Path) -> None:
        jobs[name] = (subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True), target)

    if shutil.which("g++") is not None:
        lib = out / "gsseg_cuda_emulated.so"
        start("emulation", ["g++", "-std=c++17", "-O2", "-w", "-shared", "-fPIC", "-DGSSEG_HOST_EMULATION",
                            "-I", str(CSRC), "-I", str(TEST_CSRC), "-x", "c++", *map(str, CU_FILES),
                            str(TEST_CSRC / "kernels_abi.cpp"), "-o", str(lib)], lib)  # fmt: skip
        if _cuda_include() is not None:
            start("binding", _binding_syntax_cmd(out), out)
    if _nvcc() is not None:
        for src in CU_FILES:
            obj = out / f"{src.stem}.o"
            start(f"nvcc {src.name}", [_nvcc(), "-c", "-std=c++17", "-arch=sm_80", "-I", str(CSRC), str(src), "-o",
                                       str(obj)], obj)  # fmt: skip
    yield jobs
    for proc, _ in jobs.values():
        if proc.poll() is None:
            proc.kill()
            proc.wait()


def _wait(jobs, name: str) -> tuple[int, str, Path]:
    proc, target = jobs[name]
    output, _ = proc.communicate(timeout=600)
    return proc.returncode, output, target


@pytest.mark.skipif(_nvcc() is None, reason="nvcc not installed")
def test_every_cu_file_compiles_with_nvcc(compile_jobs):
    for src in CU_FILES:
        code, output, obj = _wait(compile_jobs, f"nvcc {src.name}")
        assert code == 0, f"nvcc failed on {src.name}:\n{output}"
        assert obj.stat().st_size > 0
    # No torch header may leak into the raw-pointer sources (nvcc above ran without torch's
    # include path; the op headers keep their torch half out of nvcc and host-emulation builds).
    for src in [*CU_FILES, *CSRC.glob("utils/*.cuh"), CSRC / "utils" / "cuda_launch.h"]:
        text = src.read_text()
        assert "torch/" not in text and "ATen/" not in text, f"{src.name} includes torch headers"


@pytest.mark.skipif(shutil.which("g++") is None or _cuda_include() is None, reason="needs g++ and CUDA headers")
def test_binding_passes_gxx_syntax_check(compile_jobs):
    code, output, _ = _wait(compile_jobs, "binding")
    assert code == 0, output[-4000:]
    assert "bindings_cuda.cpp" not in output, output[-4000:]  # no warnings in our file


def test_extension_loader_is_inert_without_gpu(monkeypatch):
    from gsseg.render import cuda_extension

    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    assert cuda_extension.load_cuda_extension() is None
    sources = cuda_extension.cuda_sources()
    assert sources[0].name == "bindings_cuda.cpp" and all(p.exists() for p in sources)
    assert set(sources[1:]) == set(CU_FILES)


def test_kernels_live_by_op_with_one_loader():
    """cuda_ext/<op>/ at the top of the checkout holds one header <op>.h next to the op's CPU and/or
    CUDA kernels; both extensions come from the one source list / include path / torch loader call
    of gsseg.render.extensions."""
    from gsseg.render import cuda_extension, extensions

    assert CSRC == REPO_ROOT / "cuda_ext"  # a source checkout (or an editable install) builds from its own folder
    ops = [d for d in CSRC.iterdir() if d.is_dir() and d.name != "utils"]
    assert {
        "projection",
        "tiles",
        "rasterize",
        "contribution_table",
        "table_features",
        "features",
        "sh",
        "pixel_knn",
    } <= {d.name for d in ops}
    for op in ops:
        assert [h.name for h in op.glob("*.h")] == [f"{op.name}.h"], op
        assert list(op.glob("*.cpp")) + list(op.glob("*.cu")), op
    assert cuda_extension.cuda_include_dirs() == extensions.kernel_include_dirs() == [CSRC]
    assert cuda_extension.cuda_sources() == extensions.kernel_sources("cuda")
    cpu = extensions.cpu_sources()
    assert cpu[0] == CSRC / "bindings_cpu.cpp" and set(cpu[1:]) == set(CSRC.glob("*/*.cpp"))
    for sources in (cpu, cuda_extension.cuda_sources()):  # torch names object files after the file name
        assert len({p.name for p in sources}) == len(sources)
    assert "cpp_extension" in Path(extensions.__file__).read_text()
    assert "cpp_extension" not in Path(cuda_extension.__file__).read_text()


def test_build_folder_follows_the_source_location(tmp_path, monkeypatch):
    """torch keys its JIT build folder and module by the extension's name, so the name carries a hash
    of the source folder: sources at another path (a moved folder, another checkout, an installed
    wheel) never load a module built from other files, and two checkouts sharing one
    TORCH_EXTENSIONS_DIR do not rebuild over each other. Both loaders build under that name."""
    from types import SimpleNamespace

    from gsseg.render import cuda_extension, extensions

    here = extensions.extension_name("gsseg_cpu_ext")
    assert here == extensions.extension_name("gsseg_cpu_ext", CSRC) and here.isidentifier()
    assert here.startswith("gsseg_cpu_ext_") and len(here) == len("gsseg_cpu_ext_") + 10
    moved = tmp_path / "cuda_ext"
    moved.mkdir()
    assert extensions.extension_name("gsseg_cpu_ext", moved) != here

    names = []
    fake = lambda name, sources, **kw: names.append(name) or SimpleNamespace()
    monkeypatch.setattr(extensions, "load_extension", fake)
    monkeypatch.setattr(extensions.shutil, "which", lambda _: "/usr/bin/c++")
    monkeypatch.setattr(cuda_extension, "load_extension", fake)
    assert extensions._build.__wrapped__(False) is not None
    assert cuda_extension._build.__wrapped__(False) is not None
    assert names == [here, extensions.extension_name("gsseg_cuda_ext")]


# --------------------------------------------------------------------------------------------
# Host emulation: the .cu files as plain C++ on CPU fibers
# --------------------------------------------------------------------------------------------

_I32 = ctypes.c_int32
_P = ctypes.c_void_p


@pytest.fixture(scope="module")
def emu(compile_jobs):
    if "emulation" not in compile_jobs:
        pytest.skip("g++ not installed")
    code, output, lib = _wait(compile_jobs, "emulation")
    assert code == 0, output[-4000:]
    dll = ctypes.CDLL(str(lib))
    head = [_I32] * 6 + [_P] * 5
    dll.emu_feature_forward.argtypes = head + [_P, _I32, _P, _P, _P]
    dll.emu_feature_backward.argtypes = head + [_P, _I32, _P, _P, _P, _P, _P, _P, _P]
    dll.emu_table_count.argtypes = head + [_P]
    dll.emu_table_fill.argtypes = head + [_P, _P, _P]
    dll.emu_error_string.restype = ctypes.c_char_p
    return dll


def _ptr(a: np.ndarray | None):
    return None if a is None else a.ctypes.data_as(ctypes.c_void_p)


def random_screen_gaussians(
    seed: int, n_images: int, n: int, width: int, height: int, opacity_range=(0.05, 0.99), scale_range=(0.6, 4.0)
) -> dict:
    """Random projected Gaussians in gsplat's unpacked layout: means2d [C,N,2], conics [C,N,3],
    opacities [C,N], depths [C,N], radii [C,N,2] int32 (opacity-aware box, 0 = culled)."""
    rng = np.random.default_rng(seed)
    means2d = np.stack([rng.uniform(-4, width + 4, (n_images, n)), rng.uniform(-4, height + 4, (n_images, n))], -1)
    s = rng.uniform(*scale_range, (n_images, n, 2))
    theta = rng.uniform(0, np.pi, (n_images, n))
    c, si = np.cos(theta), np.sin(theta)
    cov00 = c * c * s[..., 0] ** 2 + si * si * s[..., 1] ** 2 + 0.3
    cov11 = si * si * s[..., 0] ** 2 + c * c * s[..., 1] ** 2 + 0.3
    cov01 = c * si * (s[..., 0] ** 2 - s[..., 1] ** 2)
    det = cov00 * cov11 - cov01 * cov01
    conics = np.stack([cov11 / det, -cov01 / det, cov00 / det], -1)
    opacities = rng.uniform(*opacity_range, (n_images, n))
    opacities[:, ::17] = 0.002  # below 1/255: culled
    extend = np.minimum(3.33, np.sqrt(2 * np.log(np.maximum(opacities * 255.0, 1.0))))
    radii = np.stack([np.ceil(extend * np.sqrt(cov00)), np.ceil(extend * np.sqrt(cov11))], -1).astype(np.int32)
    radii[opacities < 1 / 255] = 0
    depths = rng.uniform(1.0, 10.0, (n_images, n))
    f32 = lambda a: np.ascontiguousarray(a, dtype=np.float32)  # noqa: E731
    return {"means2d": f32(means2d), "conics": f32(conics), "opacities": f32(opacities), "depths": f32(depths),
            "radii": radii, "width": width, "height": height}  # fmt: skip


def intersect_tiles(g: dict, tile_size: int) -> dict:
    """gsplat's tile intersection (isect_tiles + isect_offset_encode), in numpy: flatten_ids
    sorted by (image, tile, depth) and per-tile start offsets [C, tile_h, tile_w]."""
    n_images, n = g["opacities"].shape
    tw, th = math.ceil(g["width"] / tile_size), math.ceil(g["height"] / tile_size)
    cams, tiles, depths, flats = [], [], [], []
    for ci in range(n_images):
        for gi in range(n):
            rx, ry = g["radii"][ci, gi]
            if rx <= 0 or ry <= 0:
                continue
            mx, my = g["means2d"][ci, gi] / tile_size
            x0 = int(min(max(0, math.floor(mx - rx / tile_size)), tw))
            x1 = int(min(max(0, math.ceil(mx + rx / tile_size)), tw))
            y0 = int(min(max(0, math.floor(my - ry / tile_size)), th))
            y1 = int(min(max(0, math.ceil(my + ry / tile_size)), th))
            for ty in range(y0, y1):
                for tx in range(x0, x1):
                    cams.append(ci)
                    tiles.append(ty * tw + tx)
                    depths.append(g["depths"][ci, gi])
                    flats.append(ci * n + gi)
    cams, tiles, depths, flats = map(np.asarray, (cams, tiles, depths, flats))
    order = np.lexsort((flats, depths, tiles, cams)) if len(flats) else np.zeros(0, dtype=np.int64)
    key = (cams * (tw * th) + tiles)[order] if len(flats) else np.zeros(0, dtype=np.int64)
    offsets = np.searchsorted(key, np.arange(n_images * tw * th), side="left").astype(np.int32)
    return {"flatten_ids": np.ascontiguousarray(flats[order] if len(flats) else np.zeros(0), dtype=np.int32),
            "isect_offsets": offsets.reshape(n_images, th, tw), "tile_size": tile_size}  # fmt: skip


def oracle_render(
    g: dict, isect: dict, features: torch.Tensor, means2d: torch.Tensor, conics: torch.Tensor, opacities: torch.Tensor
):
    """Per-tile front-to-back compositing with the reference's ``composite_weights`` (autograd).

    Returns features [C,H,W,D], transmittance [C,H,W], last ids [C,H,W] (numpy, -1 = none) and
    the per-pixel contributor lists [(gaussian id, weight), ...] of every image.
    """
    from gsseg.render.reference import composite_weights

    n_images, n = g["opacities"].shape
    width, height, ts = g["width"], g["height"], isect["tile_size"]
    th, tw = isect["isect_offsets"].shape[1:]
    flat = isect["flatten_ids"].astype(np.int64)
    offsets = isect["isect_offsets"].reshape(-1)
    out = [[None] * (width * height) for _ in range(n_images)]
    trans = np.ones((n_images, height, width))
    last = np.full((n_images, height, width), -1, dtype=np.int64)
    lists = [[[] for _ in range(width * height)] for _ in range(n_images)]
    zero = features.new_zeros(features.shape[1])
    for ci in range(n_images):
        for ty in range(th):
            for tx in range(tw):
                t = (ci * th + ty) * tw + tx
                start = int(offsets[t])
                end = int(offsets[t + 1]) if t + 1 < len(offsets) else len(flat)
                ys, xs = np.meshgrid(
                    np.arange(ty * ts, min((ty + 1) * ts, height)),
                    np.arange(tx * ts, min((tx + 1) * ts, width)),
                    indexing="ij",
                )
                px, py = xs.reshape(-1), ys.reshape(-1)
                if end <= start:
                    for x, y in zip(px, py):
                        out[ci][y * width + x] = zero
                    continue
                fid = torch.as_tensor(flat[start:end])
                gid = fid - ci * n
                m2 = means2d[ci, gid]
                dx = m2[None, :, 0] - torch.as_tensor(px + 0.5, dtype=m2.dtype)[:, None]
                dy = m2[None, :, 1] - torch.as_tensor(py + 0.5, dtype=m2.dtype)[:, None]
                w, tf = composite_weights(dx, dy, conics[ci, gid], opacities[ci, gid])
                feats = w @ features[gid]
                for k, (x, y) in enumerate(zip(px, py)):
                    out[ci][y * width + x] = feats[k]
                    trans[ci, y, x] = float(tf[k].detach())
                    nz = torch.nonzero(w[k] > 0).reshape(-1).tolist()
                    if nz:
                        last[ci, y, x] = start + nz[-1]
                    lists[ci][y * width + x] = [(int(gid[m]), float(w[k, m].detach())) for m in nz]
    stacked = torch.stack([torch.stack(o) for o in out]).reshape(n_images, height, width, -1)
    return stacked, trans, last, lists


def emulated_forward(emu, g, isect, features: np.ndarray):
    n_images, n = g["opacities"].shape
    h, w, d = g["height"], g["width"], features.shape[1]
    out = np.zeros((n_images, h, w, d), np.float32)
    trans = np.ones((n_images, h, w), np.float32)
    last = np.full((n_images, h, w), -1, np.int32)
    code = emu.emu_feature_forward(n_images, n, w, h, isect["tile_size"], len(isect["flatten_ids"]),
                                   _ptr(isect["isect_offsets"]), _ptr(isect["flatten_ids"]), _ptr(g["means2d"]),
                                   _ptr(g["conics"]), _ptr(g["opacities"]), _ptr(features), d, _ptr(out),
                                   _ptr(trans), _ptr(last))  # fmt: skip
    assert code == 0, emu.emu_error_string(code)
    return out, trans, last


def emulated_backward(emu, g, isect, features, trans, last, v_out, geometry: bool = True):
    n_images, n = g["opacities"].shape
    h, w, d = g["height"], g["width"], features.shape[1]
    v_feat = np.zeros_like(features)
    v_m2 = np.zeros_like(g["means2d"]) if geometry else None
    v_con = np.zeros_like(g["conics"]) if geometry else None
    v_op = np.zeros_like(g["opacities"]) if geometry else None
    # fmt: off
    code = emu.emu_feature_backward(n_images, n, w, h, isect["tile_size"], len(isect["flatten_ids"]),
                                    _ptr(isect["isect_offsets"]), _ptr(isect["flatten_ids"]), _ptr(g["means2d"]),
                                    _ptr(g["conics"]), _ptr(g["opacities"]), _ptr(features), d, _ptr(trans),
                                    _ptr(last), _ptr(v_out), _ptr(v_feat), _ptr(v_m2), _ptr(v_con), _ptr(v_op))
    # fmt: on
    assert code == 0, emu.emu_error_string(code)
    return v_feat, v_m2, v_con, v_op


def _oracle_with_grad(g, isect, features: np.ndarray, v_out: np.ndarray):
    t = {k: torch.tensor(g[k], dtype=torch.float64, requires_grad=True) for k in ("means2d", "conics", "opacities")}
    f = torch.tensor(features, dtype=torch.float64, requires_grad=True)
    out, trans, last, lists = oracle_render(g, isect, f, t["means2d"], t["conics"], t["opacities"])
    (out * torch.as_tensor(v_out, dtype=torch.float64)).sum().backward()
    grads = (f.grad.numpy(), t["means2d"].grad.numpy(), t["conics"].grad.numpy(), t["opacities"].grad.numpy())
    return out.detach().numpy(), trans, last, lists, grads


# (D, images, Gaussians, width, height, tile size): several batches per tile (> 64 Gaussians
# for 8x8 tiles), image sizes that are not multiples of the tile, one and several passes.
EMU_CASES = [
    (1, 2, 90, 20, 13, 8),
    (3, 1, 160, 16, 16, 8),
    (16, 1, 120, 24, 10, 8),
    (33, 1, 80, 16, 9, 8),
    (64, 1, 40, 12, 12, 8),
    (256, 1, 12, 8, 8, 8),
    (5, 1, 60, 20, 18, 16),
    (40, 1, 30, 18, 17, 16),
]


@pytest.mark.parametrize("d,n_images,n,width,height,tile", EMU_CASES)
def test_emulated_kernel_matches_oracle(emu, d, n_images, n, width, height, tile):
    g = random_screen_gaussians(d * 7 + n, n_images, n, width, height)
    isect = intersect_tiles(g, tile)
    assert len(isect["flatten_ids"]) > 0
    rng = np.random.default_rng(d)
    features = rng.normal(size=(n, d)).astype(np.float32)
    v_out = rng.normal(size=(n_images, height, width, d)).astype(np.float32)

    out, trans, last = emulated_forward(emu, g, isect, features)
    ref_out, ref_trans, ref_last, _, ref_grads = _oracle_with_grad(g, isect, features, v_out)
    np.testing.assert_allclose(out, ref_out, rtol=1e-4, atol=1e-5)
    np.testing.assert_allclose(trans, ref_trans, rtol=1e-4, atol=1e-6)
    np.testing.assert_array_equal(last, ref_last)
    assert (trans < 0.5).any() and (last >= 0).any()  # the scene really covers pixels

    grads = emulated_backward(emu, g, isect, features, trans, last, v_out)
    for name, got, want in zip(("features", "means2d", "conics", "opacities"), grads, ref_grads):
        scale = max(np.abs(want).max(), 1e-6)
        np.testing.assert_allclose(got, want, rtol=2e-3, atol=2e-4 * scale, err_msg=f"d {name}")
        assert np.abs(want).max() > 0, name

    v_feat_only, *rest = emulated_backward(emu, g, isect, features, trans, last, v_out, geometry=False)
    assert all(r is None for r in rest)
    np.testing.assert_allclose(v_feat_only, grads[0], rtol=1e-5, atol=1e-6)


def test_emulated_early_stop_and_multi_batch(emu):
    """Opaque, overlapping Gaussians: pixels stop at T <= 1e-4 inside the first batch while
    their tile lists hold several batches (the block-wide early exit and the back-to-front
    skip of Gaussians behind every pixel's last contributor)."""
    g = random_screen_gaussians(3, 1, 200, 16, 16, opacity_range=(0.9, 0.999), scale_range=(3.0, 6.0))
    isect = intersect_tiles(g, 8)
    counts = np.diff(np.append(isect["isect_offsets"].reshape(-1), len(isect["flatten_ids"])))
    assert counts.max() > 128
    rng = np.random.default_rng(0)
    features = rng.normal(size=(200, 4)).astype(np.float32)
    v_out = rng.normal(size=(1, 16, 16, 4)).astype(np.float32)
    out, trans, last = emulated_forward(emu, g, isect, features)
    ref_out, ref_trans, ref_last, _, ref_grads = _oracle_with_grad(g, isect, features, v_out)
    tile_end = np.repeat(np.repeat((isect["isect_offsets"][0] + counts.reshape(2, 2)), 8, 0), 8, 1)[None]
    assert (ref_trans <= 1e-3).mean() > 0.5 and (ref_last < tile_end - 64).mean() > 0.5  # stops early
    np.testing.assert_allclose(out, ref_out, rtol=1e-4, atol=1e-5)
    np.testing.assert_array_equal(last, ref_last)
    grads = emulated_backward(emu, g, isect, features, trans, last, v_out)
    for name, got, want in zip(("features", "means2d", "conics", "opacities"), grads, ref_grads):
        scale = max(np.abs(want).max(), 1e-6)
        np.testing.assert_allclose(got, want, rtol=2e-3, atol=5e-4 * scale, err_msg=f"d {name}")


def test_emulated_empty_and_invalid(emu):
    g = random_screen_gaussians(5, 1, 10, 16, 8)
    g["radii"][:] = 0  # every Gaussian culled: no intersections at all
    isect = intersect_tiles(g, 8)
    assert len(isect["flatten_ids"]) == 0
    features = np.ones((10, 3), np.float32)
    out, trans, last = emulated_forward(emu, g, isect, features)
    assert not out.any() and (trans == 1).all() and (last == -1).all()
    v_feat, v_m2, _, _ = emulated_backward(emu, g, isect, features, trans, last, np.ones_like(out))
    assert not v_feat.any() and not v_m2.any()
    counts = np.full(16 * 8, 7, np.int32)
    assert (
        emu.emu_table_count(
            1,
            10,
            16,
            8,
            8,
            0,
            _ptr(isect["isect_offsets"]),
            _ptr(isect["flatten_ids"]),
            _ptr(g["means2d"]),
            _ptr(g["conics"]),
            _ptr(g["opacities"]),
            _ptr(counts),
        )
        == 0
    )
    assert not counts.any()
    # 12x12 tiles are not a whole number of warps: the launcher refuses with a CUDA error code.
    bad = intersect_tiles(random_screen_gaussians(6, 1, 10, 24, 24), 12)
    code = emu.emu_feature_forward(1, 10, 24, 24, 12, len(bad["flatten_ids"]), _ptr(bad["isect_offsets"]),
                                   _ptr(bad["flatten_ids"]), _ptr(g["means2d"]), _ptr(g["conics"]),
                                   _ptr(g["opacities"]), _ptr(features), 3, _ptr(np.zeros((24, 24, 3), np.float32)),
                                   _ptr(np.ones((24, 24), np.float32)), _ptr(np.zeros((24, 24), np.int32)))  # fmt: skip
    assert code != 0 and b"configuration" in emu.emu_error_string(code)


def emulated_table(emu, g, isect):
    n_images, n = g["opacities"].shape
    h, w = g["height"], g["width"]
    args = (n_images, n, w, h, isect["tile_size"], len(isect["flatten_ids"]), _ptr(isect["isect_offsets"]),
            _ptr(isect["flatten_ids"]), _ptr(g["means2d"]), _ptr(g["conics"]), _ptr(g["opacities"]))  # fmt: skip
    counts = np.full(n_images * h * w, -5, np.int32)
    assert emu.emu_table_count(*args, _ptr(counts)) == 0
    offsets = np.zeros(counts.size + 1, np.int64)
    offsets[1:] = np.cumsum(counts)
    ids = np.full(offsets[-1], -1, np.int32)
    weights = np.full(offsets[-1], np.nan, np.float32)
    assert emu.emu_table_fill(*args, _ptr(offsets), _ptr(ids), _ptr(weights)) == 0
    return offsets, ids, weights


def test_emulated_table_matches_oracle_and_forward(emu):
    g = random_screen_gaussians(11, 2, 100, 20, 12)
    isect = intersect_tiles(g, 8)
    offsets, ids, weights = emulated_table(emu, g, isect)
    assert (ids >= 0).all() and (ids < 100).all() and np.isfinite(weights).all() and (weights > 0).all()
    f64 = {k: torch.tensor(g[k], dtype=torch.float64) for k in ("means2d", "conics", "opacities")}
    features = np.random.default_rng(1).normal(size=(100, 6)).astype(np.float32)
    _, _, _, lists = oracle_render(g, isect, torch.tensor(features, dtype=torch.float64), f64["means2d"],
                                   f64["conics"], f64["opacities"])  # fmt: skip
    hw = g["width"] * g["height"]
    for ci in range(2):
        for p in range(hw):
            q = ci * hw + p
            got_ids = ids[offsets[q] : offsets[q + 1]].tolist()
            assert got_ids == [gid for gid, _ in lists[ci][p]], (ci, p)
            np.testing.assert_allclose(weights[offsets[q] : offsets[q + 1]], [w for _, w in lists[ci][p]],
                                       rtol=1e-4, atol=1e-7)  # fmt: skip
    # Table features (gather + weighted sum) equal the kernel's rendered features.
    out, _, _ = emulated_forward(emu, g, isect, features)
    pix = np.repeat(np.arange(2 * hw), np.diff(offsets))
    table_feats = np.zeros((2 * hw, 6))
    np.add.at(table_feats, pix, weights[:, None].astype(np.float64) * features[ids])
    np.testing.assert_allclose(table_feats.reshape(out.shape), out, rtol=1e-5, atol=1e-6)


class EmulatedExtension:
    """The compiled extension's Python contract (see cuda_bindings.cpp) over the emulated
    kernels, on CPU tensors: lets the autograd glue in cuda_backend run without a GPU."""

    def __init__(self, dll):
        self.dll = dll
        self.backward_calls: list[bool] = []

    @staticmethod
    def _grid(means2d, conics, opacities, isect_offsets, flatten_ids, width, height, tile_size):
        arr = lambda t: np.ascontiguousarray(t.detach().numpy())  # noqa: E731
        g = {"means2d": arr(means2d), "conics": arr(conics), "opacities": arr(opacities), "width": width,
             "height": height}  # fmt: skip
        return g, {"isect_offsets": arr(isect_offsets), "flatten_ids": arr(flatten_ids), "tile_size": tile_size}

    def feature_forward(
        self, means2d, conics, opacities, features, isect_offsets, flatten_ids, width, height, tile_size
    ):
        g, isect = self._grid(means2d, conics, opacities, isect_offsets, flatten_ids, width, height, tile_size)
        out, trans, last = emulated_forward(self.dll, g, isect, np.ascontiguousarray(features.detach().numpy()))
        return torch.from_numpy(out), torch.from_numpy(trans), torch.from_numpy(last)

    def feature_backward(
        self,
        means2d,
        conics,
        opacities,
        features,
        isect_offsets,
        flatten_ids,
        width,
        height,
        tile_size,
        transmittance,
        last_ids,
        v_out,
        compute_geometry,
    ):
        self.backward_calls.append(compute_geometry)
        g, isect = self._grid(means2d, conics, opacities, isect_offsets, flatten_ids, width, height, tile_size)
        grads = emulated_backward(
            self.dll,
            g,
            isect,
            np.ascontiguousarray(features.detach().numpy()),
            transmittance.numpy(),
            last_ids.numpy(),
            v_out.numpy(),
            compute_geometry,
        )
        return tuple(torch.from_numpy(x) if x is not None else torch.empty(0) for x in grads)


def test_autograd_function_with_emulated_extension(emu):
    from gsseg.render.cuda_backend import _FeatureRasterize

    g = random_screen_gaussians(21, 1, 70, 16, 12)
    isect = intersect_tiles(g, 8)
    rng = np.random.default_rng(2)
    features = rng.normal(size=(70, 7)).astype(np.float32)
    v_out = rng.normal(size=(1, 12, 16, 7)).astype(np.float32)
    _, _, _, _, ref_grads = _oracle_with_grad(g, isect, features, v_out)
    ext = EmulatedExtension(emu)
    offsets, flat = torch.from_numpy(isect["isect_offsets"]), torch.from_numpy(isect["flatten_ids"])

    leaves = [torch.from_numpy(g[k]).requires_grad_(True) for k in ("means2d", "conics", "opacities")]
    f = torch.from_numpy(features).requires_grad_(True)
    out, trans, last = _FeatureRasterize.apply(*leaves, f, offsets, flat, 16, 12, 8, ext)
    assert not trans.requires_grad and not last.requires_grad and out.shape == (1, 12, 16, 7)
    (out * torch.from_numpy(v_out)).sum().backward()
    assert ext.backward_calls == [True]
    for name, t, want in zip(("means2d", "conics", "opacities", "features"), [*leaves, f],
                             [*ref_grads[1:], ref_grads[0]]):  # fmt: skip
        scale = max(np.abs(want).max(), 1e-6)
        np.testing.assert_allclose(t.grad.numpy(), want, rtol=2e-3, atol=2e-4 * scale, err_msg=name)

    # Frozen geometry: only the features need a gradient, the kernel skips the geometry part.
    frozen = [torch.from_numpy(g[k]) for k in ("means2d", "conics", "opacities")]
    f2 = torch.from_numpy(features).requires_grad_(True)
    out2, _, _ = _FeatureRasterize.apply(*frozen, f2, offsets, flat, 16, 12, 8, ext)
    torch.autograd.backward(out2, torch.from_numpy(v_out))
    assert ext.backward_calls == [True, False]
    np.testing.assert_allclose(f2.grad.numpy(), f.grad.numpy(), rtol=1e-5, atol=1e-6)


# --------------------------------------------------------------------------------------------
# On a GPU: the compiled extension
# --------------------------------------------------------------------------------------------


def _gpu_scene(n: int, seed: int = 0, device: str = "cuda"):
    """Random Gaussians in front of a camera at the origin looking down +z, 64x48 image."""
    from gsseg.data.cameras import Cameras, intrinsics

    gen = torch.Generator().manual_seed(seed)
    means = torch.cat([torch.rand(n, 2, generator=gen) * 4 - 2, torch.rand(n, 1, generator=gen) * 4 + 3], 1)
    quats = torch.randn(n, 4, generator=gen)
    scales = torch.rand(n, 3, generator=gen) * 0.15 + 0.02
    opacities = torch.rand(n, generator=gen) * 0.9 + 0.05
    colors = torch.rand(n, 3, generator=gen)
    viewmats = torch.eye(4)[None].repeat(2, 1, 1)
    viewmats[1, 0, 3] = 0.3
    K = intrinsics(60.0, 60.0, 32.0, 24.0)
    cams = Cameras(viewmats, K[None].repeat(2, 1, 1), [64, 64], [48, 48], ["a", "b"])
    to = lambda t: t.to(device)  # noqa: E731
    return to(means), to(quats), to(scales), to(opacities), to(colors), cams


@pytest.mark.cuda
def test_gpu_extension_builds():
    from gsseg.render.cuda_extension import load_cuda_extension

    ext = load_cuda_extension()
    assert ext is not None
    assert hasattr(ext, "feature_forward") and hasattr(ext, "feature_backward") and hasattr(ext, "build_table")


@pytest.mark.cuda
@pytest.mark.parametrize("d", [1, 3, 16, 33, 64, 256])
def test_gpu_features_match_cpu_kernel(d):
    from gsseg.render import render

    scene = _gpu_scene(300, seed=d)
    feats = torch.randn(300, d, generator=torch.Generator().manual_seed(d))
    weights = torch.randn(2, 48, 64, d, generator=torch.Generator().manual_seed(d + 1))

    def run(device, backend):
        means, quats, scales, opac, colors, cams = scene
        leaves = [t.detach().to(device).requires_grad_(True) for t in (means, quats, scales, opac)]
        f = feats.to(device).requires_grad_(True)
        out = render(*leaves, colors.to(device), cams.to(device), features=f, backend=backend)
        (out.features * weights.to(device)).sum().backward()
        return out.features.detach().cpu(), [t.grad.cpu() for t in [f, *leaves]]

    cpu_out, cpu_grads = run("cpu", "cpu")
    gpu_out, gpu_grads = run("cuda", "cuda")
    torch.testing.assert_close(gpu_out, cpu_out, rtol=1e-4, atol=1e-4)
    for name, got, want in zip(("features", "means", "quats", "scales", "opacities"), gpu_grads, cpu_grads):
        scale = want.abs().max().clamp_min(1e-6)
        torch.testing.assert_close(got / scale, want / scale, rtol=5e-3, atol=5e-3, msg=f"d {name}")


@pytest.mark.cuda
def test_gpu_edge_cases_match_cpu_kernel():
    from gsseg.render import render

    means, quats, scales, opac, colors, cams = _gpu_scene(64, seed=5)
    means = means.clone()
    means[:8, 2] = -1.0  # behind the camera
    means[8:16, 2] = 0.005  # straddling the near plane
    means[16:24, 0] = 50.0  # off-screen
    scales = scales.clone()
    scales[24:28] = 1e-6  # degenerate
    scales[28:30] = 20.0  # huge
    opac = opac.clone()
    opac[30:34] = 0.0  # transparent
    feats = torch.randn(64, 5, device="cuda")
    outs = []
    for device, backend in (("cpu", "cpu"), ("cuda", "cuda")):
        out = render(
            means.to(device),
            quats.to(device),
            scales.to(device),
            opac.to(device),
            colors.to(device),
            cams.to(device),
            features=feats.to(device),
            backend=backend,
        )
        outs.append(out.features.cpu())
    torch.testing.assert_close(outs[1], outs[0], rtol=1e-4, atol=1e-4)
    # Nothing visible: features are exactly zero.
    empty = render(means[:8], quats[:8], scales[:8], opac[:8], colors[:8], cams, features=feats[:8], backend="cuda")
    assert empty.features.abs().max().item() == 0.0 and empty.alpha.max().item() == 0.0


@pytest.mark.cuda
@pytest.mark.parametrize("d", [3, 16, 40])
def test_gpu_kernel_matches_gsplat_nd(d):
    from gsseg.render.cuda_backend import _rasterize_features_gsplat, gsplat_tiles, rasterize_features_cuda

    means, quats, scales, opac, colors, cams = _gpu_scene(400, seed=d)
    tiles = gsplat_tiles(means, quats, scales, opac, cams.viewmats.cuda(), cams.Ks.cuda(), 64, 48)
    feats = torch.randn(400, d, device="cuda")
    v = torch.randn(2, 48, 64, d, device="cuda")
    results = []
    for fn in (rasterize_features_cuda, _rasterize_features_gsplat):
        leaves = [
            t.detach().clone().requires_grad_(True) for t in (tiles.means2d, tiles.conics, tiles.opacities, feats)
        ]
        out, alpha = fn(*leaves, tiles.isect_offsets, tiles.flatten_ids, 64, 48, 16)
        (out * v).sum().backward()
        results.append((out.detach(), alpha.detach(), [t.grad for t in leaves]))
    (ours, our_alpha, our_grads), (ref, ref_alpha, ref_grads) = results
    torch.testing.assert_close(ours, ref, rtol=1e-4, atol=1e-5)
    torch.testing.assert_close(our_alpha, ref_alpha, rtol=1e-4, atol=1e-5)
    for name, got, want in zip(("means2d", "conics", "opacities", "features"), our_grads, ref_grads):
        scale = want.abs().max().clamp_min(1e-6)
        torch.testing.assert_close(got / scale, want / scale, rtol=1e-3, atol=1e-4, msg=f"d {name}")


@pytest.mark.cuda
def test_gpu_render_matches_gsplat_rasterization():
    from gsplat import rasterization

    from gsseg.render import render

    means, quats, scales, opac, colors, cams = _gpu_scene(300, seed=9)
    feats = torch.randn(300, 16, device="cuda")
    ours = render(means, quats, scales, opac, colors, cams, features=feats, backend="cuda")
    ref, ref_alpha, _ = rasterization(
        means, quats, scales, opac, feats, cams.viewmats.cuda(), cams.Ks.cuda(), 64, 48, sh_degree=None, packed=False
    )
    torch.testing.assert_close(ours.features, ref, rtol=1e-4, atol=1e-5)
    torch.testing.assert_close(ours.alpha, ref_alpha, rtol=1e-4, atol=1e-5)
    assert ours.meta["means2d"].shape == (2, 300, 2) and ours.meta["radii"].shape == (2, 300, 2)
    assert ours.meta["backend"] == "cuda" and ours.meta["n_cameras"] == 2


def _dense_table(table, n):
    counts = table.offsets[1:] - table.offsets[:-1]
    pix = torch.repeat_interleave(torch.arange(counts.numel()), counts.cpu())
    dense = torch.zeros(table.width * table.height, n, dtype=torch.float64)
    dense.index_put_((pix, table.gaussian_ids.cpu().long()), table.weights.cpu().double(), accumulate=True)
    return dense


@pytest.mark.cuda
def test_gpu_table_matches_cpu_table():
    from gsseg.render import build_contribution_table, render, render_features_from_table

    means, quats, scales, opac, colors, cams = _gpu_scene(300, seed=2)
    gpu = build_contribution_table(means, quats, scales, opac, cams[0], backend="cuda")
    cpu = build_contribution_table(means.cpu(), quats.cpu(), scales.cpu(), opac.cpu(), cams[0], backend="cpu")
    assert gpu.offsets.is_cuda and gpu.offsets.dtype == torch.int64 and gpu.gaussian_ids.dtype == torch.int32
    assert abs(gpu.nnz - cpu.nnz) <= max(3, cpu.nnz // 1000)
    diff = (_dense_table(gpu, 300) - _dense_table(cpu, 300)).abs()
    assert diff.max().item() < 5e-3 and diff.mean().item() < 1e-5
    # Table features equal the full CUDA render of the same features.
    feats = torch.randn(300, 8, device="cuda")
    full = render(means, quats, scales, opac, colors, cams[0], features=feats, backend="cuda").features[0]
    pix = torch.arange(64 * 48, device="cuda")
    torch.testing.assert_close(render_features_from_table(gpu, pix, feats).reshape(48, 64, 8), full,
                               rtol=1e-4, atol=1e-5)  # fmt: skip


if __name__ == "__main__":
    sys.exit(pytest.main([__file__, "-q"]))

"""Export formats and interop: no empty files, every format read back by PlayCanvas
splat-transform (the converter behind SuperSplat), ``object_id`` labels, and PLY readers that
accept what other producers write."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch
from plyfile import PlyData, PlyElement
from scipy.spatial import cKDTree

from gsseg.cli.app import main
from gsseg.errors import GssegError
from gsseg.export import export_segments
from gsseg.export.formats import SUFFIXES, write_splats
from gsseg.gaussians.ply import read_ply, scene_to_arrays, write_ply
from gsseg.gaussians.scene import GaussianScene
from tests.helpers.splat_tool import convert, needs_splat_transform


def random_scene(n: int = 300, sh_degree: int = 3, seed: int = 0) -> GaussianScene:
    g = torch.Generator().manual_seed(seed)
    k = (sh_degree + 1) ** 2 - 1
    return GaussianScene(
        means=torch.randn(n, 3, generator=g),
        log_scales=torch.randn(n, 3, generator=g) * 0.3 - 3,
        quats=torch.randn(n, 4, generator=g),
        logit_opacities=torch.randn(n, generator=g) + 2,
        sh0=torch.randn(n, 1, 3, generator=g) * 0.5,
        shN=torch.randn(n, k, 3, generator=g) * 0.2,
    )


def matched(scene: GaussianScene, back: GaussianScene) -> np.ndarray:
    """Index into ``scene`` of each Gaussian of ``back`` (formats reorder Gaussians), by nearest mean."""
    _, idx = cKDTree(scene.means.numpy()).query(back.means.numpy())
    return idx


# Quantisation of each format (splat-transform decodes; positions / log scales / SH rest, absolute)
TOLERANCE = {
    "ply": (1e-6, 1e-6, 1e-6),
    "ply-compressed": (0.01, 0.01, 0.02),
    "spz": (2**-11, 0.04, 0.01),
    "splat": (1e-6, 1e-6, None),
}


@needs_splat_transform
@pytest.mark.parametrize("fmt", list(SUFFIXES))
def test_every_format_round_trips_through_splat_transform(fmt, tmp_path):
    scene = random_scene()
    src = tmp_path / f"scene{SUFFIXES[fmt]}"
    assert write_splats(src, scene, fmt) == len(scene)
    convert(src, tmp_path / "back.ply")
    back = read_ply(tmp_path / "back.ply")  # a PLY written by splat-transform reads back
    assert len(back) == len(scene)
    idx = matched(scene, back)
    assert len(np.unique(idx)) == len(scene)
    pos_tol, scale_tol, sh_tol = TOLERANCE[fmt]
    np.testing.assert_allclose(back.means.numpy(), scene.means[idx].numpy(), atol=pos_tol)
    np.testing.assert_allclose(back.log_scales.numpy(), scene.log_scales[idx].numpy(), atol=scale_tol)
    qa = torch.nn.functional.normalize(scene.quats[idx], dim=1)
    qb = torch.nn.functional.normalize(back.quats, dim=1)
    assert (qa * qb).sum(1).abs().min() > 0.99  # the same rotation (q and -q are one rotation)
    np.testing.assert_allclose(
        torch.sigmoid(back.logit_opacities).numpy(), torch.sigmoid(scene.logit_opacities[idx]).numpy(), atol=0.005
    )
    if sh_tol is None:
        assert back.sh_degree == 0  # .splat keeps only the base colour
    else:
        assert back.sh_degree == 3
        np.testing.assert_allclose(back.shN.numpy(), scene.shN[idx].numpy(), atol=sh_tol)
        np.testing.assert_allclose(back.sh0.numpy(), scene.sh0[idx].numpy(), atol=0.02)


def test_spz_header_and_empty_writes(tmp_path):
    import gzip
    import struct

    scene = random_scene(40, sh_degree=1)
    write_splats(tmp_path / "a.spz", scene, "spz")
    raw = gzip.decompress((tmp_path / "a.spz").read_bytes())
    magic, version, count, degree = struct.unpack("<IIIB", raw[:13])
    assert (magic, version, count, degree) == (0x5053474E, 2, 40, 1)
    assert len(raw) == 16 + 40 * (9 + 1 + 3 + 3 + 3 + 9)
    for fmt in SUFFIXES:  # nothing to write -> no file
        assert write_splats(tmp_path / f"none{SUFFIXES[fmt]}", scene.subset(torch.zeros(0, dtype=torch.long)), fmt) == 0
        assert not (tmp_path / f"none{SUFFIXES[fmt]}").exists()
    faint = random_scene(10)
    faint.logit_opacities.fill_(-20.0)  # below the compressed layout's 1/255 opacity floor
    assert write_splats(tmp_path / "faint.compressed.ply", faint, "ply-compressed") == 0
    assert not (tmp_path / "faint.compressed.ply").exists()


def test_export_covering_everything_nothing_and_one_object(tmp_path):
    scene = random_scene(90, sh_degree=1)
    everything = np.repeat([1, 2, 3], 30).astype(np.int32)
    m = export_segments(scene, everything, tmp_path / "all", formats=["ply", "spz"], cut="c")
    files = sorted(p.name for p in (tmp_path / "all").iterdir())
    assert files == sorted(
        [".gsseg-export", "labels.npy", "segments.json"]
        + [f"object_{i}{e}" for i in (1, 2, 3) for e in (".ply", ".spz")]
    )
    assert m["files"]["scene_without_selected"] == {} and "covers every Gaussian" in " ".join(m["notes"])
    assert m["written"] == {f"object_{i}{e}": 30 for i in (1, 2, 3) for e in (".ply", ".spz")}
    assert all(s["files"] == {"ply": f"object_{s['id']}.ply", "spz": f"object_{s['id']}.spz"} for s in m["segments"])

    nothing = np.zeros(90, np.int32)
    m = export_segments(scene, nothing, tmp_path / "none", cut="c")
    assert sorted(p.name for p in (tmp_path / "none").iterdir()) == [
        ".gsseg-export",
        "labels.npy",
        "scene_without_selected.ply",
        "segments.json",
    ]
    assert m["selected"] == [] and m["segments"] == [] and "no object files" in " ".join(m["notes"])
    assert len(read_ply(tmp_path / "none" / "scene_without_selected.ply")) == 90

    m = export_segments(scene, everything, tmp_path / "one", selected=[2], formats=["splat"], with_labels=True, cut="c")
    assert m["written"] == {"object_2.splat": 30, "scene_without_selected.splat": 60, "scene_with_labels.ply": 90}
    assert [s["file"] for s in m["segments"]] == [None, "object_2.splat", None]
    assert (tmp_path / "one" / "object_2.splat").stat().st_size == 30 * 32  # antimatter15 layout: 32 bytes each
    labelled = PlyData.read(str(tmp_path / "one" / "scene_with_labels.ply"))["vertex"]
    np.testing.assert_array_equal(np.asarray(labelled["object_id"]), everything)
    assert labelled["object_id"].dtype == np.int32
    assert read_ply(tmp_path / "one" / "scene_with_labels.ply").features is None  # still a plain 3DGS PLY


@needs_splat_transform
def test_labelled_scene_filters_by_object_id_in_splat_transform(tmp_path):
    scene = random_scene(60, sh_degree=0)
    labels = np.arange(60, dtype=np.int32) % 4
    export_segments(scene, labels, tmp_path / "exp", with_labels=True, cut="c")
    convert(tmp_path / "exp" / "scene_with_labels.ply", tmp_path / "three.ply", "-V", "object_id,eq,3")
    three = PlyData.read(str(tmp_path / "three.ply"))["vertex"]
    assert len(three.data) == 15 and set(np.asarray(three["object_id"]).tolist()) == {3}


@needs_splat_transform
def test_cli_export_every_format_opens_in_splat_transform(tmp_path):
    from gsseg.segment import SegmentRequest, segment_run
    from tests.helpers.segment_fixtures import build_tiny_run

    run = build_tiny_run(tmp_path / "run", "embedding")
    segment_run(run, SegmentRequest(auto=True, views="test", show_progress=False), device="cpu")
    out = tmp_path / "objects"
    with pytest.raises(SystemExit) as e:
        main(
            [
                "export",
                str(run),
                "--out",
                str(out),
                *sum((["--format", f] for f in SUFFIXES), []),
                "--with-labels",
                "-q",
            ]
        )
    assert e.value.code == 0
    manifest = json.loads((out / "segments.json").read_text())
    assert manifest["formats"] == list(SUFFIXES) and manifest["written"]
    for name, count in manifest["written"].items():
        assert (out / name).stat().st_size > 0
        convert(out / name, tmp_path / "back.ply")
        assert len(PlyData.read(str(tmp_path / "back.ply"))["vertex"].data) == count, name


def _write_foreign(
    path: Path,
    scene: GaussianScene,
    text: bool = False,
    byte_order: str = "<",
    shuffle: bool = False,
    extra: bool = False,
) -> None:
    """A PLY as another producer might write it: no normals, shuffled property order, extra
    properties, ascii or big-endian."""
    cols = {k: v for k, v in scene_to_arrays(scene).items() if k not in ("nx", "ny", "nz")}
    if extra:
        cols["filter_3D"] = np.ones(len(scene), np.float32)
        cols["segment"] = np.arange(len(scene), dtype=np.int32)
    names = list(cols)
    if shuffle:
        names = [names[i] for i in np.random.default_rng(0).permutation(len(names))]
    arr = np.empty(len(scene), dtype=[(k, cols[k].dtype.newbyteorder(byte_order)) for k in names])
    for k in names:
        arr[k] = cols[k]
    PlyData([PlyElement.describe(arr, "vertex")], text=text, byte_order=byte_order).write(str(path))


@pytest.mark.parametrize("degree", [0, 1, 2, 3])
@pytest.mark.parametrize("variant", ["ascii", "big-endian", "shuffled+extra"])
def test_readers_accept_other_producers(degree, variant, tmp_path):
    scene = random_scene(25, sh_degree=degree, seed=degree)
    path = tmp_path / "foreign.ply"
    _write_foreign(
        path,
        scene,
        text=variant == "ascii",
        byte_order=">" if variant == "big-endian" else "<",
        shuffle=variant.startswith("shuffled"),
        extra=variant.startswith("shuffled"),
    )
    back = read_ply(path)
    assert back.sh_degree == degree and len(back) == 25
    for name in ("means", "log_scales", "quats", "logit_opacities", "sh0", "shN"):
        np.testing.assert_allclose(getattr(back, name).numpy(), getattr(scene, name).numpy(), rtol=1e-6, atol=1e-6)


def test_reader_errors_are_one_clear_line(tmp_path):
    scene = random_scene(50, sh_degree=1)
    write_ply(tmp_path / "good.ply", scene)
    raw = (tmp_path / "good.ply").read_bytes()
    header_end = raw.index(b"end_header\n")
    cases = {
        "truncated.ply": (raw[: len(raw) - 300], r"truncated\.ply: malformed or truncated PLY .*early end-of-file"),
        "more.ply": (raw.replace(b"element vertex 50", b"element vertex 80"), r"more\.ply: malformed or truncated PLY"),
        "header.ply": (raw[: header_end - 10], r"header\.ply: malformed or truncated PLY"),
        "notply.ply": (b"hello world\n", r"notply\.ply: malformed or truncated PLY"),
    }
    for name, (data, message) in cases.items():
        (tmp_path / name).write_bytes(data)
        with pytest.raises(GssegError, match=message):
            read_ply(tmp_path / name)
    nan = random_scene(5, sh_degree=0)
    nan.means[2, 1] = float("nan")
    write_ply(tmp_path / "nan.ply", nan)
    with pytest.raises(GssegError, match=r"nan\.ply: 1 of 5 Gaussians have NaN/Inf values \(rows 2; properties y\)"):
        read_ply(tmp_path / "nan.ply")
    assert len(read_ply(tmp_path / "nan.ply", drop_invalid=True)) == 4
    write_splats(tmp_path / "c.compressed.ply", scene, "ply-compressed")
    with pytest.raises(GssegError, match=r"c\.compressed\.ply: is a compressed PLY \(PlayCanvas layout\)"):
        read_ply(tmp_path / "c.compressed.ply")

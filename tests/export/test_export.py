"""Export: per-object vanilla PLYs, the rest of the scene, labels sidecar, manifest, atomic
replacement, selection by ids and clicks, user errors, and splat-transform compatibility."""

from __future__ import annotations

import json
import shutil
import subprocess

import numpy as np
import pytest
import torch
from plyfile import PlyData

from gsseg.cli.app import main
from gsseg.errors import GssegError
from gsseg.export import export_run, export_segments, parse_ids
from gsseg.gaussians.ply import read_ply
from gsseg.segment import SegmentRequest, SegmentsDir, segment_run
from gsseg.segment.clicks import Click
from tests.helpers.segment_fixtures import center_click
from tests.helpers.splat_tool import needs_splat_transform, splat_transform

INRIA_SH1 = (
    ["x", "y", "z", "nx", "ny", "nz", "f_dc_0", "f_dc_1", "f_dc_2"]
    + [f"f_rest_{i}" for i in range(9)]
    + ["opacity", "scale_0", "scale_1", "scale_2", "rot_0", "rot_1", "rot_2", "rot_3"]
)


@pytest.fixture(scope="module")
def run(shared_tiny_run):
    run = shared_tiny_run("embedding")
    segment_run(run, SegmentRequest(auto=True, thresholds=[0.1], views="test", show_progress=False), device="cpu")
    return run


@pytest.fixture(scope="module")
def scene(run):
    return read_ply(run / "scene.ply")


def rows(scene) -> np.ndarray:
    """[N,11] float rows (means, opacity, log scales, quaternion) to compare Gaussians as sets."""
    cols = [scene.means, scene.logit_opacities[:, None], scene.log_scales, scene.quats]
    return torch.cat(cols, dim=1).numpy()


def sorted_rows(a: np.ndarray) -> np.ndarray:
    return a[np.lexsort(a.T[::-1])]


def test_objects_partition_the_labelled_gaussians(run, scene, tmp_path):
    out = tmp_path / "export"
    manifest = export_run(run, out, cut="t0.100", device="cpu", keep_outliers=True)
    labels = SegmentsDir(run).labels("t0.100", len(scene))
    np.testing.assert_array_equal(np.load(out / "labels.npy"), labels)
    assert manifest["outliers"]["enabled"] is False and manifest["outliers"]["removed"] == 0
    ids = sorted(np.unique(labels[labels > 0]).tolist())
    assert manifest["selected"] == ids and manifest["cut"] == "t0.100"
    files = sorted(p.name for p in out.glob("object_*.ply"))
    assert files == sorted(f"object_{i}.ply" for i in ids)
    parts = [read_ply(out / f"object_{i}.ply") for i in ids]
    for i, part in zip(ids, parts):  # each object is exactly its segment's Gaussians
        np.testing.assert_array_equal(sorted_rows(rows(part)), sorted_rows(rows(scene)[labels == i]))
    together = np.concatenate([rows(p) for p in parts])
    np.testing.assert_array_equal(sorted_rows(together), sorted_rows(rows(scene)[labels > 0]))
    rest_path = out / "scene_without_selected.ply"
    if (labels == 0).any():
        assert len(read_ply(rest_path)) == int((labels == 0).sum())
    else:  # the cut covers every Gaussian: no empty file, and the manifest says so
        assert not rest_path.exists() and manifest["files"]["scene_without_selected"] == {}
        assert any("covers every Gaussian" in n for n in manifest["notes"])
    # vanilla INRIA layout: no identity features, exactly the standard properties
    names = [p.name for p in PlyData.read(str(out / f"object_{ids[0]}.ply"))["vertex"].properties]
    assert names == INRIA_SH1 and parts[0].features is None
    # manifest rows
    seg = {s["id"]: s for s in manifest["segments"]}
    assert json.loads((out / "segments.json").read_text()) == manifest
    parents = SegmentsDir(run).entry("t0.100")["segment_parents"]
    for i in ids:
        s = seg[i]
        assert s["gaussians"] == int((labels == i).sum()) and s["file"] == f"object_{i}.ply"
        assert s["parent"] == parents[str(i)]
        pts = scene.means[torch.from_numpy(labels == i)].numpy()
        np.testing.assert_allclose(s["bbox"]["min"], pts.min(0), rtol=1e-6)
        np.testing.assert_allclose(s["bbox"]["max"], pts.max(0), rtol=1e-6)
        assert len(s["color"]) == 3 and all(0 <= c <= 255 for c in s["color"])
    assert len({tuple(s["color"]) for s in manifest["segments"]}) == len(ids)


def test_selected_objects_and_rest(run, scene, tmp_path):
    labels = SegmentsDir(run).labels("t0.100", len(scene))
    ids = np.unique(labels[labels > 0])[:2].tolist()
    manifest = export_run(run, tmp_path / "sel", cut="t0.100", objects=ids, device="cpu")
    assert sorted(p.name for p in (tmp_path / "sel").glob("object_*.ply")) == [f"object_{i}.ply" for i in ids]
    rest = read_ply(tmp_path / "sel" / "scene_without_selected.ply")
    exported = np.load(tmp_path / "sel" / "labels.npy")  # the cut's, less the objects' outliers
    changed = exported != labels
    assert np.isin(labels[changed], ids).all() and (exported[changed] == 0).all()
    np.testing.assert_array_equal(sorted_rows(rows(rest)), sorted_rows(rows(scene)[~np.isin(exported, ids)]))
    assert manifest["selected_gaussians"] == int(np.isin(exported, ids).sum())
    assert manifest["outliers"]["removed"] == int(changed.sum())
    assert sum(s["file"] is not None for s in manifest["segments"]) == 2


def test_default_cut_is_the_coarsest_auto_cut(run, scene, tmp_path):
    out = tmp_path / "default"
    manifest = export_run(run, out, device="cpu")
    segs = SegmentsDir(run)
    autos = {c["name"]: c["segments"] for c in segs.read_index()["cuts"] if c["name"].startswith("auto")}
    assert manifest["cut"] == "auto0" and autos["auto0"] == min(autos.values()) >= 2, autos
    # what was exported is that cut: its segments, each object file exactly its segment's Gaussians
    # (less the outliers the default export drops, which only turn labels to 0)
    labels = segs.labels("auto0", len(scene))
    exported = np.load(out / "labels.npy")
    assert ((exported == labels) | (exported == 0)).all(), "labels.npy is not the auto0 cut less outliers"
    assert (exported == labels).mean() > 0.9, f"only {(exported == labels).mean():.3f} of auto0's labels kept"
    assert manifest["outliers"]["removed"] == int((exported != labels).sum())
    ids = sorted(np.unique(labels[labels > 0]).tolist())
    assert manifest["selected"] == ids and len(ids) == autos["auto0"]
    for i in ids:
        part = rows(read_ply(out / f"object_{i}.ply"))
        np.testing.assert_array_equal(sorted_rows(part), sorted_rows(rows(scene)[exported == i]), err_msg=f"object {i}")


def test_click_export_with_and_without_cut(run, scene, tmp_path):
    from gsseg.segment import load_context

    ctx = load_context(run, "cpu")
    click, part = center_click(ctx.dataset, "test_000")
    labels = SegmentsDir(run).labels("t0.100", len(scene))
    parts = np.load(run / "gt_part.npy")
    expected = np.bincount(labels[parts == part]).argmax()
    manifest = export_run(run, tmp_path / "cut_click", cut="t0.100", clicks=[click], device="cpu")
    assert manifest["selected"] == [int(expected)]
    free = export_run(run, tmp_path / "free_click", clicks=[click], device="cpu")
    assert free["cut"] == "click" and free["selected"] == [1]
    obj = read_ply(tmp_path / "free_click" / "object_1.ply")
    assert len(obj) == free["selected_gaussians"] > 0
    sel = np.load(tmp_path / "free_click" / "labels.npy") == 1
    assert (parts[sel] == part).mean() > 0.85


def test_existing_export_replaced_whole_or_not_at_all(run, scene, tmp_path, monkeypatch):
    out = tmp_path / "again"
    export_run(run, out, cut="t0.100", device="cpu")
    before = {p.name: p.read_bytes() for p in out.iterdir()}
    import gsseg.export.objects as objects_module

    real_write, calls = objects_module.write_splats, []

    def failing_write(path, scene, fmt, **kw):  # the second file of the new export fails
        calls.append(path)
        if len(calls) == 2:
            raise RuntimeError("disk full")
        return real_write(path, scene, fmt, **kw)

    monkeypatch.setattr(objects_module, "write_splats", failing_write)
    with pytest.raises(RuntimeError, match="disk full"):
        export_run(run, out, cut="auto0", device="cpu")
    assert {p.name: p.read_bytes() for p in out.iterdir()} == before  # the old export is intact
    assert [p.name for p in tmp_path.iterdir()] == ["again"]  # no temporary folder left behind
    monkeypatch.undo()
    manifest = export_run(run, out, cut="auto0", device="cpu")
    assert json.loads((out / "segments.json").read_text())["cut"] == "auto0" == manifest["cut"]
    assert len(list(out.glob("object_*.ply"))) == len(manifest["selected"])


def test_user_errors(run, scene, tmp_path):
    foreign = tmp_path / "photos"
    foreign.mkdir()
    (foreign / "holiday.jpg").write_bytes(b"x")
    with pytest.raises(GssegError, match="not a gsseg export"):
        export_run(run, foreign, cut="t0.100", device="cpu")
    assert (foreign / "holiday.jpg").read_bytes() == b"x"
    with pytest.raises(GssegError, match="not in cut"):
        export_run(run, tmp_path / "x", cut="t0.100", objects=[9999], device="cpu")
    with pytest.raises(GssegError, match="no cut named 'nope'"):
        export_run(run, tmp_path / "x", cut="nope", device="cpu")
    with pytest.raises(GssegError, match="segment ids"):
        parse_ids("a,b")
    with pytest.raises(GssegError, match="no segment selected"):
        export_segments(scene, np.zeros(len(scene), np.int32), tmp_path / "empty", selected=[], cut="t")
    with pytest.raises(GssegError, match="unknown; choose from ply, ply-compressed, spz, splat"):
        export_run(run, tmp_path / "x", cut="t0.100", formats=["obj"], device="cpu")
    # a run that was never segmented says what to run
    fresh = tmp_path / "fresh"
    fresh.mkdir()
    for name in ("config.json", "scene.ply", "features.pt"):
        shutil.copy(run / name, fresh / name)
    with pytest.raises(GssegError, match="gsseg segment"):
        export_run(fresh, tmp_path / "y", device="cpu")
    with pytest.raises(GssegError, match="no Gaussian covers"):
        export_run(run, tmp_path / "z", clicks=[Click(view="test_000", x=0, y=0)], device="cpu")


def test_cli_export(run, tmp_path, capsys):
    out = tmp_path / "cli"
    with pytest.raises(SystemExit) as e:
        main(["export", str(run), "--out", str(out), "--cut", "t0.100", "--objects", "1,2", "--json", "-q"])
    assert e.value.code == 0
    manifest = json.loads(capsys.readouterr().out)
    assert manifest["selected"] == [1, 2] and (out / "object_2.ply").is_file()
    with pytest.raises(SystemExit) as e:
        main(["export", str(run), "--out", str(out), "--objects", "1", "--click", "test_000:3,3", "-q"])
    assert e.value.code == 1
    assert "either --objects or --click" in capsys.readouterr().err


@needs_splat_transform
def test_exported_ply_opens_in_splat_transform(run, tmp_path):
    out = tmp_path / "compat"
    manifest = export_run(run, out, cut="t0.100", device="cpu")
    first = manifest["segments"][0]
    ply = out / first["file"]
    csv = tmp_path / "object.csv"
    proc = subprocess.run([str(splat_transform()), str(ply), str(csv)], capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    lines = csv.read_text().splitlines()
    assert len(lines) - 1 == first["gaussians"]
    header = lines[0].split(",")
    assert {"x", "y", "z", "opacity", "rot_0"} <= set(header)
    x = np.array([float(r.split(",")[header.index("x")]) for r in lines[1:]])
    ref = read_ply(ply).means[:, 0].numpy()
    np.testing.assert_allclose(np.sort(x), np.sort(ref), rtol=1e-5, atol=1e-6)

"""Reliability and security promises (issue 20).

1. A malformed input gives one ``error:`` line naming the file, exit code 1, no traceback, and
   leaves every file of the dataset and the run as it was.
2. ``kill -9`` during the RGB, features and masks stages and during export, then the same
   command: it resumes (or redoes the export), and no file is half-written.
3. One writer per run: a second ``gsseg train`` (or ``segment``) is refused while one runs; a
   killed writer's lock does not block.
4. The viewer listens on 127.0.0.1, serves no file of the run, and exports only under its
   export folder; ``features.pt`` holding a pickled object is refused.
"""

from __future__ import annotations

import ast
import hashlib
import http.client
import json
import re
import shutil
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from gsseg.errors import GssegError
from tests.helpers import kill_helpers
from tests.helpers.cli_fixtures import cli_exit_code
from tests.helpers.data_fixtures import make_colmap_dataset, orbit_cameras
from tests.helpers.paths import REPO_ROOT

TRAIN = ["--iters", "20", "--feature-iters", "10", "--objective", "contrastive", "-q"]


# ---------------------------------------------------------------------------------- fixtures
@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    """(data, run): a 32x24 built-in scene with simulated masks and a run with both stages done."""
    from gsseg.synth import make_scene

    root = tmp_path_factory.mktemp("reliability")
    data, run = root / "data", root / "run"
    make_scene(data, scene="tabletop", seed=0, width=32, height=24, views=3, test_views=1, show_progress=False)
    assert cli_exit_code(["masks", str(data), "--source", "simulated", "-q"]) == 0
    assert cli_exit_code(["train", str(data), "--out", str(run), *TRAIN]) == 0
    return data, run


@pytest.fixture
def fresh(trained, tmp_path):
    """A private copy (data, run) of the trained run; the run's config points at the copied data."""
    data, run = tmp_path / "data", tmp_path / "run"
    shutil.copytree(trained[0], data)
    shutil.copytree(trained[1], run)
    edit_json(run / "config.json", lambda c: c.update(dataset=str(data.resolve())))
    return data, run


def snapshot(*folders: Path) -> dict[str, str]:
    """sha1 of every file under ``folders`` (the ``.lock`` files excluded)."""
    return {
        str(p): hashlib.sha1(p.read_bytes()).hexdigest()
        for f in folders
        for p in sorted(f.rglob("*"))
        if p.is_file() and p.name != ".lock"
    }


def one_error_line(argv: list[str], capsys) -> str:
    """Run the CLI; assert exit 1, exactly one ``error:`` line on stderr and no traceback; return the line."""
    capsys.readouterr()
    code = cli_exit_code(argv)
    out, err = capsys.readouterr()
    lines = [ln for ln in err.strip().splitlines() if not ln.startswith(("resuming", "features settings"))]
    assert code == 1, err
    assert len(lines) == 1 and lines[0].startswith("error: "), err
    assert "Traceback" not in out + err
    return lines[0]


def truncate(path: Path, keep: float = 0.5) -> None:
    data = path.read_bytes()
    path.write_bytes(data[: int(len(data) * keep)])


def edit_json(path: Path, fn) -> None:
    d = json.loads(path.read_text())
    fn(d)
    path.write_text(json.dumps(d))  # json writes NaN / Infinity for non-finite floats


def write_labels(data: Path, bad: np.ndarray | bytes | None = None) -> None:
    """label_masks/<stem>/0.png for every view from the object ground truth; ``bad`` replaces train_001's,
    whose mask file is removed (the one view `gsseg masks` then has to do)."""
    (data / "masks" / "train_001.npz").unlink()
    for png in sorted((data / "gt" / "object").glob("*.png")):
        folder = data / "label_masks" / png.stem
        folder.mkdir(parents=True, exist_ok=True)
        Image.fromarray(np.asarray(Image.open(png)).astype(np.uint8)).save(folder / "0.png")
    target = data / "label_masks" / "train_001" / "0.png"
    if isinstance(bad, bytes):
        target.write_bytes(bad)
    elif bad is not None:
        Image.fromarray(bad).save(target, format="TIFF" if bad.dtype == np.float32 else "PNG")


# ---------------------------------------------------------------------------------- 1. bad input
def _no_transforms(d, r):
    for p in d.glob("transforms*.json"):
        p.unlink()
    return ["train", d, "--out", r, "-q"], r"data: not a dataset: no transforms_train\.json"


def _malformed_transforms(d, r):
    (d / "transforms_train.json").write_text('{"frames": [\n  {"file_path": "x",,}\n]}')
    return ["train", d, "--out", r, "-q"], r"transforms_train\.json: malformed JSON at line 2 column"


def _nan_matrix(d, r):
    edit_json(d / "transforms_train.json", lambda j: j["frames"][1]["transform_matrix"][0].__setitem__(3, float("nan")))
    return ["train", d, "--out", r, "--restart", "-q"], r"transforms_train\.json: frame 1: .*contains NaN or Inf"


def _inf_matrix(d, r):
    edit_json(d / "transforms_test.json", lambda j: j["frames"][0]["transform_matrix"][2].__setitem__(1, float("inf")))
    return ["info", d], r"transforms_test\.json: frame 0: .*contains NaN or Inf"


def _missing_image(d, r):
    (d / "images" / "train_002.png").unlink()
    return ["train", d, "--out", r, "--restart", "-q", "--strict"], r"images/train_002\.png: image file not found"


def _wrong_size_image(d, r):
    Image.new("RGB", (16, 12)).save(d / "images" / "train_000.png")
    return [
        "train",
        d,
        "--out",
        r,
        "-q",
    ], r"images/train_000\.png: image is 16x12 but transforms_train\.json says 32x24"


def _truncated_image(d, r):
    truncate(d / "images" / "train_001.png", 0.6)
    (d / "masks" / "train_001.npz").unlink()  # the one view `gsseg masks` has to do
    return [
        "masks",
        d,
        "--source",
        "watershed",
        "-q",
    ], r"images/train_001\.png: cannot read image \(image file is truncated"


def _empty_image(d, r):
    truncate(d / "images" / "train_001.png", 0.0)
    return ["info", d], r"images/train_001\.png: cannot read image"


def _depth_wrong_shape(d, r):
    np.save(d / "depth" / "test_000.npy", np.ones((5, 7), np.float32))
    return ["eval", r, "--json"], r"depth/test_000\.npy: depth map is 7x5 but its view's image is 32x24"


def _depth_3d(d, r):
    np.save(d / "depth" / "test_000.npy", np.ones((24, 32, 3), np.float32))
    return ["eval", r, "--json"], r"depth/test_000\.npy: depth map must be a 2-D numeric array, got shape \(24, 32, 3\)"


def _depth_truncated(d, r):
    truncate(d / "depth" / "test_000.npy", 0.5)
    return ["eval", r, "--json"], r"depth/test_000\.npy: cannot read depth map"


def _labels_wrong_size(d, r):
    write_labels(d, np.ones((10, 10), np.uint8))
    return [
        "masks",
        d,
        "--source",
        "labels",
        "-q",
    ], r"label_masks/train_001/0\.png: label image is 10x10 but the view's image is 32x24"


def _labels_float(d, r):
    write_labels(d, np.full((24, 32), 1.5, np.float32))
    return ["masks", d, "--source", "labels", "-q"], r"label_masks/train_001/0\.png: label image holds float32 values"


def _labels_truncated(d, r):
    write_labels(d, b"\x89PNG\r\n\x1a\n\x00\x00")
    return ["masks", d, "--source", "labels", "-q"], r"label_masks/train_001/0\.png: unreadable label image"


def _mask_npz_truncated(d, r):
    truncate(d / "masks" / "train_001.npz", 0.5)
    return (
        ["train", d, "--out", r, "--stage", "features", "--feature-iters", "20", "-q"],
        r"masks/train_001\.npz: unreadable mask file",
    )


def _mask_npz_garbage(d, r):
    (d / "masks" / "train_000.npz").write_bytes(b"PK\x03\x04 not a zip")
    return (
        ["train", d, "--out", r, "--stage", "features", "--feature-iters", "20", "-q"],
        r"masks/train_000\.npz: unreadable mask file",
    )


def _scene_ply(r: Path, name: str) -> Path:
    """A copy of the run's scene PLY under ``name`` beside it (the file a case then damages)."""
    path = r.parent / name
    shutil.copyfile(r / "scene.ply", path)
    return path


def _ply_truncated(d, r):
    truncate(_scene_ply(r, "cut.ply"), 0.6)
    return (
        ["train", d, "--out", r.parent / "other_run", "--init-ply", r.parent / "cut.ply", "-q"],
        r"cut\.ply: .*(malformed|truncated)",
    )


def _ply_claims_more_vertices(d, r):
    path = _scene_ply(r, "claims.ply")
    data = path.read_bytes()
    head, body = data.split(b"end_header\n", 1)
    n = int(re.search(rb"element vertex (\d+)", head).group(1))
    path.write_bytes(head.replace(b"element vertex %d" % n, b"element vertex %d" % (n + 50)) + b"end_header\n" + body)
    return (
        ["train", d, "--out", r.parent / "other_run", "--init-ply", path, "-q"],
        r"claims\.ply: .*(malformed|truncated)",
    )


def _ply_nan(d, r):
    from gsseg.gaussians.ply import read_ply, write_ply

    scene = read_ply(r / "scene.ply")
    scene.means[2, 0] = float("nan")
    write_ply(r.parent / "nan.ply", scene)
    return (
        ["train", d, "--out", r.parent / "other_run", "--init-ply", r.parent / "nan.ply", "-q"],
        r"nan\.ply: 1 of \d+ Gaussians have NaN/Inf values \(rows 2; properties x\)",
    )


def _config_json(text: str, command: str, pattern: str):
    def case(d, r):
        (r / "config.json").write_text(text)
        argv = {
            "train": ["train", d, "--out", r, "-q"],
            "segment": ["segment", r, "-q"],
            "eval": ["eval", r],
            "view": ["view", r, "--port", "0"],
        }[command]
        return argv, r"run/config\.json: " + pattern

    case.__name__ = f"_config_{command}_{re.sub(r'[^a-z]+', '', text.lower())[:12] or 'list'}"
    return case


CASES = [
    _no_transforms,
    _malformed_transforms,
    _nan_matrix,
    _inf_matrix,
    _missing_image,
    _wrong_size_image,
    _truncated_image,
    _empty_image,
    _depth_wrong_shape,
    _depth_3d,
    _depth_truncated,
    _labels_wrong_size,
    _labels_float,
    _labels_truncated,
    _mask_npz_truncated,
    _mask_npz_garbage,
    _ply_truncated,
    _ply_claims_more_vertices,
    _ply_nan,
    _config_json("nonsense", "train", r"malformed JSON at line 1 column 1"),
    _config_json("[1, 2]", "segment", r"invalid run config \(the top level must be a JSON object"),
    _config_json('{"dataset": "/x", "rgb": {"iters": "many"}}', "eval", r"invalid run config \(rgb\.iters must be int"),
    _config_json('{"dataset": "/x", "rgb": [3]}', "view", r"invalid run config \(rgb must be a JSON object"),
    _config_json('{"rgb": {}}', "segment", r"invalid run config \(missing setting 'dataset'\)"),
    _config_json(
        '{"dataset": "/x", "features": {"iters": -5}}', "train", r"invalid run config \(feature iters must be >= 0\)"
    ),
    _config_json("[" * 100_000 + "]" * 100_000, "eval", r"malformed JSON: nested too deeply"),
]


@pytest.mark.parametrize("case", CASES, ids=[c.__name__.strip("_") for c in CASES])
def test_bad_input_is_one_line_and_changes_nothing(fresh, case, capsys):
    data, run = fresh
    argv, pattern = case(data, run)
    before = snapshot(data, run)
    line = one_error_line([str(a) for a in argv], capsys)
    assert re.search(pattern, line), line
    assert snapshot(data, run) == before


@pytest.mark.parametrize("part", ["cameras", "images", "points3D"])
@pytest.mark.parametrize("text", [False, True], ids=["bin", "txt"])
@pytest.mark.parametrize("damage", ["garbage", "truncated"])
def test_garbage_colmap_file_is_named(tmp_path, part, text, damage, capsys):
    pts = (np.random.default_rng(0).random((30, 3), dtype=np.float32), np.full((30, 3), 0.5, np.float32))
    root = make_colmap_dataset(tmp_path / "ds", orbit_cameras(3), text=text, points=pts)
    name = f"{part}.{'txt' if text else 'bin'}"
    path = root / "sparse" / "0" / name
    if damage == "garbage":
        path.write_bytes(b"\x07garbage \xff\xfe 1 2 three\n" * 4)
    else:
        truncate(path, 0.7)
    line = one_error_line(["info", str(root)], capsys)
    assert re.search(rf"sparse/0/{re.escape(name)}: not a valid COLMAP {re.escape(name)} file: ", line), line


def test_colmap_image_with_unknown_camera(tmp_path, capsys):
    root = make_colmap_dataset(tmp_path / "ds", orbit_cameras(2), text=True)
    images = root / "sparse" / "0" / "images.txt"
    lines = images.read_text().splitlines()
    lines = [
        " ".join(ln.split()[:8] + ["9"] + ln.split()[9:])
        if ln and not ln.startswith("#") and ln.endswith(".png")
        else ln
        for ln in lines
    ]
    images.write_text("\n".join(lines) + "\n")
    line = one_error_line(["info", str(root)], capsys)
    assert re.search(r"images\.txt: .*refers to camera 9, which the cameras file does not define", line), line


def test_pickled_object_in_features_is_refused(fresh, tmp_path, capsys):
    data, run = fresh
    marker = tmp_path / "pwned"

    class Payload:
        def __reduce__(self):
            return (Path.touch, (marker,))

    good = torch.load(run / "features.pt", weights_only=True)
    torch.save({**good, "extras": {"x": Payload()}}, run / "features.pt")
    line = one_error_line(["segment", str(run), "-q"], capsys)
    assert re.search(r"features\.pt: refused: the file holds Python objects other than tensors.* \(\S+\)", line), line
    assert not marker.exists()


def test_features_record_loads_numpy_values_of_older_files(tmp_path):
    from gsseg.features import load_features
    from gsseg.gaussians.scene import FeatureInfo

    payload = {
        "format_version": 1,
        "features": torch.randn(4, 3),
        "info": FeatureInfo("embedding", "contrastive", 3).to_dict(),
        "settings": {"k": np.int64(3)},
        "extras": {"channels": np.arange(3)},
        "step": 2,
        "num_gaussians": 4,
    }
    torch.save(payload, tmp_path / "features.pt")
    rec = load_features(tmp_path / "features.pt")
    assert rec.settings == {"k": 3} and list(rec.extras["channels"]) == [0, 1, 2] and rec.step == 2


# ---------------------------------------------------------------------------------- 2. kill -9
def _files(folder: Path, pattern: str) -> list[Path]:
    return sorted(folder.glob(pattern)) if folder.is_dir() else []


def test_kill_during_rgb_stage_then_resume(fresh, capsys):
    from gsseg.gaussians.ply import read_ply
    from gsseg.run.checkpoint import load_checkpoint

    data, _ = fresh
    run = data.parent / "new_run"
    argv = ["train", data, "--out", run, "--stage", "rgb", "--iters", "40", "--checkpoint-every", "5", "-q"]
    proc = kill_helpers.start(argv)
    ckpts = run / "checkpoints"
    kill_helpers.wait_for(
        proc,
        lambda: _files(ckpts, "rgb_*.pt") and _files(ckpts, ".rgb_*.tmp*"),
        what="a checkpoint written and the next one being written",
    )
    kill_helpers.kill(proc)
    assert not (run / "scene.ply").exists()
    done = _files(ckpts, "rgb_*.pt")
    assert done and all(load_checkpoint(p)["step"] > 0 for p in done)  # complete files only
    capsys.readouterr()
    assert cli_exit_code([str(a) for a in argv]) == 0
    err = capsys.readouterr().err
    assert re.search(r"rgb: 40 steps, resumed from step (5|10|15|20|25|30|35)\b", err), err
    assert len(read_ply(run / "scene.ply")) > 0
    assert not _files(ckpts, ".*.tmp*") and not _files(run, ".*.tmp*")


def test_kill_during_features_stage_then_resume(fresh, capsys):
    from gsseg.features import load_features

    data, run = fresh
    for p in [run / "features.pt", run / "features.json", *_files(run / "checkpoints", "features_*.pt")]:
        p.unlink()
    edit_json(run / "config.json", lambda c: c["features"].update(checkpoint_every=5))
    argv = ["train", data, "--out", run, "--stage", "features", "--feature-iters", "30", "-q"]
    proc = kill_helpers.start(argv)
    ckpts = run / "checkpoints"
    kill_helpers.wait_for(
        proc,
        lambda: _files(ckpts, "features_*.pt") and _files(ckpts, ".features_*.tmp*"),
        what="a features checkpoint written and the next one being written",
    )
    kill_helpers.kill(proc)
    assert not (run / "features.pt").exists()
    capsys.readouterr()
    assert cli_exit_code([str(a) for a in argv]) == 0
    assert "resumed from step" in capsys.readouterr().err
    rec = load_features(run / "features.pt")
    assert rec.step == 30 and torch.isfinite(rec.features).all()


def test_kill_during_masks_stage_then_resume(fresh, capsys):
    from gsseg.masks import MaskStore

    data, _ = fresh
    shutil.rmtree(data / "masks")
    argv = ["masks", data, "--source", "watershed", "-q", "--json"]
    proc = kill_helpers.start(argv, delay=0.5)
    masks = data / "masks"
    kill_helpers.wait_for(
        proc,
        lambda: _files(masks, "[!.]*.npz") and _files(masks, ".*.tmp*"),
        what="one view written and the next being written",
    )
    kill_helpers.kill(proc)
    store = MaskStore(masks)
    done = store.views()
    assert 1 <= len(done) < 5
    for name in done:
        assert store.load(name).n_masks > 0
    capsys.readouterr()
    assert cli_exit_code([str(a) for a in argv]) == 0
    summary = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert summary["existing"] == len(done) and summary["written"] == 5 - len(done)
    assert len(store.views()) == 5 and all(store.load(n).n_masks > 0 for n in store.views())
    assert not _files(masks, ".*.tmp*")


def test_kill_during_export_then_again(fresh, capsys):
    data, run = fresh
    assert cli_exit_code(["segment", str(run), "-q"]) == 0
    out = run.parent / "exported"
    argv = ["export", run, "--out", out, "--format", "ply", "--format", "splat"]
    proc = kill_helpers.start(argv, delay=0.5)
    kill_helpers.wait_for(
        proc,
        lambda: any(p.is_dir() and any(p.iterdir()) for p in run.parent.glob(".exported.tmp-*")),
        what="the export folder being written",
    )
    kill_helpers.kill(proc)
    assert not out.exists()  # nothing half-written where the user looks
    capsys.readouterr()
    assert cli_exit_code([str(a) for a in argv]) == 0
    manifest = json.loads((out / "segments.json").read_text())
    assert manifest["written"] and all((out / f).stat().st_size > 0 for f in manifest["written"])
    assert not list(run.parent.glob(".exported.*"))  # the killed writer's folder is gone


# ---------------------------------------------------------------------------------- 3. one writer
def test_second_writer_of_a_run_is_refused_until_the_first_dies(fresh, capsys):
    data, run = fresh
    edit_json(run / "config.json", lambda c: c["features"].update(checkpoint_every=2))
    proc = kill_helpers.start(["train", data, "--out", run, "--stage", "features", "--feature-iters", "400", "-q"])
    lock = run / ".lock"
    kill_helpers.wait_for(proc, lambda: lock.is_file() and "pid" in lock.read_text(), what="the run lock")
    try:
        line = one_error_line(["train", str(data), "--out", str(run), "-q"], capsys)
        assert re.search(rf"run: this run is being written by pid {proc.pid} \(gsseg train\); wait for it", line), line
        line = one_error_line(["segment", str(run), "-q"], capsys)
        assert f"pid {proc.pid} (gsseg train)" in line
    finally:
        kill_helpers.kill(proc)
    assert f"pid {proc.pid}" in lock.read_text()  # the killed holder's lock file is left behind ...
    assert cli_exit_code(["segment", str(run), "-q", "--regions", "3"]) == 0  # ... and does not block
    assert (run / "segments" / "n003" / "labels.npy").is_file()
    assert lock.read_text() == ""


def test_lock_is_exclusive_and_released(tmp_path):
    from gsseg.utils.run_lock import folder_lock

    (tmp_path / ".lock").write_text("pid 999999 (gsseg train)\n")  # stale: nobody holds it
    with folder_lock(tmp_path, "train") as path:
        assert path.read_text().startswith("pid ")
        with pytest.raises(GssegError, match=r"this run is being written by pid \d+ \(gsseg train\)"):
            with folder_lock(tmp_path, "segment"):
                pass
    with folder_lock(tmp_path, "segment"):
        pass


# ---------------------------------------------------------------------------------- 4. viewer
@pytest.fixture(scope="module")
def viewer_run(tmp_path_factory):
    from tests.helpers.viewer_fixtures import make_viewer_run, shared_root

    return make_viewer_run(shared_root(tmp_path_factory), kind="embedding", run_name="run_reliability")


def test_viewer_binds_localhost_and_serves_no_run_file(viewer_run):
    import typer

    from gsseg.cli.app import app
    from gsseg.viewer.server import ViewerApp, ViewerConfig

    assert ViewerConfig().host == "127.0.0.1"
    view = typer.main.get_command(app).commands["view"]
    (host,) = [p for p in view.params if "--host" in p.opts]
    assert host.default == "127.0.0.1"
    (viewer_run.run / "secret.txt").write_text("SECRET-RUN-FILE")
    app = ViewerApp(viewer_run.run, ViewerConfig(port=0))
    app.start()
    try:
        port = app.server.get_port()
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
        conn.request("GET", "/")
        resp = conn.getresponse()
        assert resp.status == 200 and b"<html" in resp.read().lower()
        for path in [
            "/secret.txt",
            "/../secret.txt",
            "/%2e%2e/secret.txt",
            "/..%2f..%2fsecret.txt",
            "/" + "../" * 12 + "etc/passwd",
            "/%2e%2e/" * 12 + "etc/passwd",
            "/" + str(viewer_run.run / "secret.txt"),
            "/scene.ply",
            "/config.json",
        ]:
            conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
            conn.request("GET", path)
            resp = conn.getresponse()
            body = resp.read()
            assert resp.status == 404, (path, resp.status)
            assert b"SECRET-RUN-FILE" not in body and b"root:" not in body
    finally:
        app.stop()


def test_viewer_export_stays_in_its_folder(viewer_run, tmp_path):
    from gsseg.viewer.server import ViewerApp, ViewerConfig, export_folder
    from tests.helpers.viewer_fixtures import ray_to_object

    root = tmp_path / "exports"
    root.mkdir()
    (root / "link").symlink_to(tmp_path)
    for bad in ["/tmp/x", str(tmp_path / "abs"), "..", "../x", "a/../../x", "~/x", "C:\\x", "link/escape"]:
        with pytest.raises(GssegError, match="export folder"):
            export_folder(root, bad)
    assert export_folder(root, "sel/inner") == root / "sel" / "inner"
    assert export_folder(root, "  ") == root / "selection"

    app = ViewerApp(viewer_run.run)
    assert app.export_root == viewer_run.run / "exports"
    app.click(*ray_to_object(viewer_run, app.picker, 4))
    with pytest.raises(GssegError, match="no absolute path"):
        app.export(str(tmp_path / "outside"))
    assert not (tmp_path / "outside").exists()
    out = app.export("mine")
    assert out == viewer_run.run / "exports" / "mine" and (out / "segments.json").is_file()

    other = ViewerApp(viewer_run.run, ViewerConfig(export_dir=tmp_path / "chosen"))
    other.click(*ray_to_object(viewer_run, other.picker, 4))
    assert other.export(None) == tmp_path / "chosen" / "selection"
    assert (tmp_path / "chosen" / "selection" / "segments.json").is_file()


# ---------------------------------------------------------------------------------- atomic writes
WRITE_METHODS = {"write_text", "write_bytes", "write_binary"}
MODULE_WRITERS = {("torch", "save"), ("np", "save"), ("np", "savez"), ("np", "savez_compressed"), ("json", "dump")}
NOT_ATOMIC_OK = {"gsseg/utils/atomic.py"}  # the atomic helpers themselves


def _is_write(call: ast.Call) -> bool:
    f = call.func
    if isinstance(f, ast.Attribute):
        if f.attr in WRITE_METHODS or (f.attr == "save" and isinstance(f.value, ast.Call)):  # Image.fromarray(..).save
            return True
        return isinstance(f.value, ast.Name) and (f.value.id, f.attr) in MODULE_WRITERS
    if isinstance(f, ast.Name) and f.id == "open" and len(call.args) > 1:
        mode = call.args[1]
        return isinstance(mode, ast.Constant) and any(m in str(mode.value) for m in "wax")
    return False


def _atomic_with(node: ast.AST) -> bool:
    return isinstance(node, ast.With) and any(
        isinstance(i.context_expr, ast.Call)
        and getattr(i.context_expr.func, "id", getattr(i.context_expr.func, "attr", ""))
        in ("atomic_path", "atomic_open")
        for i in node.items
    )


def test_atomic_writes_get_a_normal_files_mode(tmp_path):
    import os

    from gsseg.utils.atomic import atomic_path, write_json

    old = os.umask(0o022)
    try:
        write_json(tmp_path / "a.json", {"x": 1})
        with atomic_path(tmp_path / "b.npy") as p:
            np.save(p, np.zeros(3))
    finally:
        os.umask(old)
    assert {(tmp_path / n).stat().st_mode & 0o777 for n in ("a.json", "b.npy")} == {0o644}


def test_every_file_write_in_gsseg_is_atomic():
    """Each torch.save / np.save* / json.dump / Image.save / write_text / open(.., 'w') in gsseg/
    runs inside ``with atomic_path(...)`` or ``atomic_open(...)``, so a kill leaves no half file."""
    root = REPO_ROOT
    protected, offenders = 0, []
    for path in sorted((root / "gsseg").rglob("*.py")):
        rel = path.relative_to(root).as_posix()
        tree = ast.parse(path.read_text())
        parents = {c: n for n in ast.walk(tree) for c in ast.iter_child_nodes(n)}
        for node in ast.walk(tree):
            if isinstance(node, ast.Call) and _is_write(node) and rel not in NOT_ATOMIC_OK:
                p = node
                while p in parents and not _atomic_with(p):
                    p = parents[p]
                if _atomic_with(p):
                    protected += 1
                # colmap.py: pycolmap writes into a temp folder, renamed per file; triangulate.py: images and
                # pairs into a TemporaryDirectory workspace, the cache through a lambda run inside atomic_path
                elif not rel.endswith(("data/colmap.py", "data/triangulate.py")):
                    offenders.append(f"{rel}:{node.lineno}: {ast.unparse(node)[:70]}")
    assert not offenders, "non-atomic writes:\n" + "\n".join(offenders)
    assert protected >= 8  # the scan does see the writers


# ---------------------------------------------------------------------------------- issue 30
def _count_changes(before: dict[str, str], *folders: Path) -> list[str]:
    after = snapshot(*folders)
    return sorted(k for k in before.keys() | after.keys() if before.get(k) != after.get(k))


BAD_NUMBERS = [
    (["segment", "{run}", "--click", "test_000:nan,5"], r"click 'test_000:nan,5': coordinates must be finite"),
    (["segment", "{run}", "--click", "test_000:inf,5"], r"click 'test_000:inf,5': coordinates must be finite"),
    (["segment", "{run}", "--negative-click", "nan,nan,nan"], r"click 'nan,nan,nan': coordinates must be finite"),
    (["export", "{run}", "--out", "{tmp}/e", "--click", "nan,1,2"], r"click 'nan,1,2': coordinates must be finite"),
    (["segment", "{run}", "--thresholds", "nan:1:0.1"], r"--thresholds 'nan:1:0\.1': nan is not a finite number"),
    (["segment", "{run}", "--thresholds", "0:inf:1"], r"--thresholds '0:inf:1': inf is not a finite number"),
    (["segment", "{run}", "--thresholds", "0:1:1e-7"], r"asks for 10,000,001 cuts; at most 256"),
    (["segment", "{run}", "--threshold", "2"], r"--threshold: must be >= 0 and <= 1, got 2"),
    (["segment", "{run}", "--min-size", "-5"], r"--min-size: must be >= 0, got -5"),
    (["segment", "{run}", "--click-threshold", "nan"], r"--click-threshold: nan is not a finite number"),
    (["train", "{data}", "--out", "{run}", "--feature-lr", "nan"], r"--feature-lr: nan is not a finite number"),
    (["train", "{data}", "--out", "{run}", "--feature-lr", "0"], r"--feature-lr: must be > 0, got 0"),
    (["train", "{data}", "--out", "{run}", "--set", "pixels=1e999"], r"--set pixels: inf is not a finite number"),
    (["train", "{data}", "--out", "{run}", "--set", "pixels=" + "5" * 5000], r"--set pixels: value too long"),
    (["train", "{data}", "--out", "{run}", "--seed", "9" * 20], r"--seed: 9+ is out of range"),
    (["train", "{data}", "--out", "{run}", "--seed", "-1"], r"--seed: must be >= 0 and <= 4294967295"),
    (["train", "{data}", "--out", "{run}", "--downscale", "0"], r"--downscale: must be > 0"),
    (["train", "{data}", "--out", "{run}", "--time-limit", "nan"], r"--time-limit: nan is not a finite number"),
    (["train", "{data}", "--out", "{run}", "--restart", "--iters", "-3"], r"--iters: must be >= 0, got -3"),
    (["eval", "{run}", "--samples", "0"], r"--samples: must be >= 1"),
    (["view", "{run}", "--port", "70000"], r"--port: must be >= 0 and <= 65535"),
    (["synth", "{tmp}/s", "--width", "1e3"], None),  # not an int: Click's own usage error (exit 2)
]


@pytest.mark.parametrize("argv,pattern", BAD_NUMBERS, ids=[" ".join(a[2:])[:40] for a, _ in BAD_NUMBERS])
def test_bad_numbers_are_refused_up_front(fresh, tmp_path, argv, pattern, capsys):
    data, run = fresh
    argv = [a.format(run=run, data=data, tmp=tmp_path) for a in argv]
    before = snapshot(data, run)
    if pattern is None:
        capsys.readouterr()
        assert cli_exit_code(argv) == 2
        assert "Traceback" not in capsys.readouterr().err
    else:
        line = one_error_line(argv, capsys)
        assert re.search(pattern, line), line
    assert not _count_changes(before, data, run)
    assert not (tmp_path / "e").exists() and not (tmp_path / "s").exists()


def test_error_text_is_never_read_as_markup(tmp_path, capsys):
    for name in ["no[/x]where", "d[red]e", "x:smile:y", "[bold]b[/bold]"]:
        line = one_error_line(["info", str(tmp_path / name)], capsys)
        assert f"{tmp_path / name}: " in line, line  # printed as typed: no tag eaten, no emoji


def test_every_help_renders_cleanly(capsys):
    from gsseg.cli.app import app

    for verb in [c.name for c in app.registered_commands]:
        capsys.readouterr()
        assert cli_exit_code([verb, "--help"]) == 0
        out = " ".join(capsys.readouterr().out.split())
        assert "%%" not in out, verb
        assert not re.search(r"[\U0001f000-\U0001faff]", out), verb  # no :name: turned into an emoji
        if verb == "segment":
            assert "written A:B:STEP" in out and re.search(r"\(default: [0-9.]+% of ", out), out


def test_ctrl_c_prints_the_resume_line(fresh, monkeypatch, capsys):
    import gsseg.train.pipeline as pipeline

    data, run = fresh

    def interrupted(*args, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr(pipeline, "run_training", interrupted)
    capsys.readouterr()
    assert cli_exit_code(["train", str(data), "--out", str(run), "-q"]) == 130
    err = capsys.readouterr().err
    assert re.fullmatch(r"interrupted: completed work is saved; re-run the same command to resume\.\n", err), err


@pytest.mark.parametrize(
    "failure,pattern",
    [
        (OSError(28, "No space left on device", "/x/scene.ply"), r"^error: /x/scene\.ply: no space left on device"),
        (RuntimeError("[enforce fail] PytorchStreamWriter failed writing file data/0: file write failed"), "disk full"),
        (RecursionError("maximum recursion depth exceeded"), r"nested too deeply"),
    ],
    ids=["enospc", "torch-save", "recursion"],
)
def test_system_failures_are_one_line(fresh, monkeypatch, failure, pattern, capsys):
    import gsseg.train.pipeline as pipeline

    data, run = fresh

    def fail(*args, **kwargs):
        raise failure

    monkeypatch.setattr(pipeline, "run_training", fail)
    line = one_error_line(["train", str(data), "--out", str(run), "-q"], capsys)
    assert re.search(pattern, line), line


def _ws_status(port: int, origin: str | None) -> int:
    """101 when the viewer's websocket accepts a client sending ``origin``, else the HTTP status."""
    import viser
    from websockets.exceptions import InvalidStatus
    from websockets.sync.client import connect

    headers = {"Origin": origin} if origin is not None else None
    try:
        with connect(
            f"ws://127.0.0.1:{port}",
            subprotocols=[f"viser-v{viser.__version__}"],
            additional_headers=headers,
            open_timeout=10,
        ):
            return 101
    except InvalidStatus as e:
        return e.response.status_code


def test_viewer_websocket_refuses_foreign_origins(viewer_run):
    from gsseg.viewer.server import ViewerApp, ViewerConfig

    app = ViewerApp(viewer_run.run, ViewerConfig(port=0, allow_origins=("https://Embed.example.org/",)))
    app.start()
    try:
        port = app.server.get_port()
        for origin in [
            "http://evil.example.com",
            f"http://evil.example.com:{port}",
            "null",
            f"http://127.0.0.1:{port + 1}",
            f"ftp://127.0.0.1:{port}",
            "https://embed.example.org:8443",
            "http://[::1",
        ]:
            assert _ws_status(port, origin) == 403, origin
        for origin in [
            f"http://127.0.0.1:{port}",
            f"http://localhost:{port}",
            f"http://[::1]:{port}",
            "https://embed.example.org",
            None,
        ]:
            assert _ws_status(port, origin) == 101, origin
    finally:
        app.stop()
    import websockets.asyncio.server as ws_server

    assert ws_server.serve.__module__ == "websockets.asyncio.server"  # the hook is gone after start()


def test_view_on_a_network_address_warns_and_prints_a_usable_url(viewer_run, monkeypatch, capsys):
    import types

    import gsseg.viewer.server as server

    seen = {}

    def fake_serve(run, cfg, ready=None):
        seen["cfg"] = cfg
        ready(
            types.SimpleNamespace(
                n=5, shown=None, has_features=True, dropped=0, server=types.SimpleNamespace(get_port=lambda: 8123)
            )
        )

    monkeypatch.setattr(server, "serve", fake_serve)
    capsys.readouterr()
    assert cli_exit_code(["view", str(viewer_run.run), "--host", "0.0.0.0", "--allow-origin", "http://box:9"]) == 0
    err = " ".join(capsys.readouterr().err.split())
    assert seen["cfg"].allow_origins == ("http://box:9",)
    assert err.startswith("warning: listening on 0.0.0.0, so anyone who can reach this machine on port 8123"), err
    assert "http://0.0.0.0" not in err and re.search(r"at http://[^ ]+:8123 \(Ctrl\+C to stop\)", err), err
    assert cli_exit_code(["view", str(viewer_run.run)]) == 0
    err = capsys.readouterr().err
    assert "warning" not in err and "at http://localhost:8123 (Ctrl+C" in err, err
    line = one_error_line(["view", str(viewer_run.run), "--allow-origin", "evil.com"], capsys)
    assert "--allow-origin 'evil.com': give an origin such as" in line


def test_export_replaces_only_what_it_wrote(fresh, capsys):
    data, run = fresh
    assert cli_exit_code(["segment", str(run), "-q"]) == 0
    u = run.parent / "u"
    u.mkdir()
    (u / "segments.json").write_text("{}")
    (u / "precious.txt").write_text("keep me")
    line = one_error_line(["export", str(run), "--out", str(u)], capsys)
    assert re.search(r"u: is not empty and not a gsseg export \(no \.gsseg-export mark", line), line
    assert (u / "precious.txt").read_text() == "keep me"

    out = run.parent / "exported"
    assert cli_exit_code(["export", str(run), "--out", str(out), "-q"]) == 0
    mark = json.loads((out / ".gsseg-export").read_text())
    assert set(mark["files"]) | {".gsseg-export"} == {p.name for p in out.iterdir()}
    assert "segments.json" in mark["files"]
    assert cli_exit_code(["export", str(run), "--out", str(out), "-q"]) == 0  # its own export: replaced
    (out / "notes.txt").write_text("mine")
    before = snapshot(out)
    line = one_error_line(["export", str(run), "--out", str(out)], capsys)
    assert "holds files the earlier export did not write (notes.txt)" in line, line
    assert snapshot(out) == before
    (out / "notes.txt").unlink()
    (out / ".gsseg-export").write_text('{"writer": "someone else", "files": []}')
    line = one_error_line(["export", str(run), "--out", str(out)], capsys)
    assert "not a gsseg export" in line


def test_viewer_export_names_that_are_not_sub_folders(viewer_run, tmp_path):
    from gsseg.viewer.server import export_folder

    root = tmp_path / "exports"
    (root / "earlier").mkdir(parents=True)
    for bad, why in [
        (".", "itself"),
        ("./", "itself"),
        ("a/..", r"'\.\.'"),
        ("a\x00b", "control characters"),
        ("x" * 300, "longer than 200"),
        ("a/" + "y" * 256, "longer than 200"),
        ("line\nbreak", "control characters"),
    ]:
        with pytest.raises(GssegError, match=why):
            export_folder(root, bad)
    assert (root / "earlier").is_dir()
    assert export_folder(root, "./sel") == root / "sel"


def test_masks_never_replace_good_masks_by_empty_ones(fresh, capsys):
    data, run = fresh
    before = snapshot(data, run)
    for value in ["2", "nan", "-0.1"]:
        line = one_error_line(["masks", str(data), "--source", "watershed", "--min-area", value, "--force"], capsys)
        assert line.startswith("error: --min-area: "), line
    for png in sorted((data / "gt" / "object").glob("*.png")):  # label maps that hold only background
        (data / "label_masks" / png.stem).mkdir(parents=True, exist_ok=True)
        Image.fromarray(np.zeros((24, 32), np.uint8)).save(data / "label_masks" / png.stem / "0.png")
    before = snapshot(data / "masks", run)
    line = one_error_line(["masks", str(data), "--source", "labels", "--force", "-q"], capsys)
    assert re.search(r"the labels source found no mask in any of \d+ views .*nothing was written", line), line
    assert snapshot(data / "masks", run) == before


def test_stale_temporaries_are_recognised_by_gsseg_pattern_only(fresh, capsys):
    from gsseg.masks import MaskStore
    from gsseg.utils.atomic import atomic_path, is_temporary

    data, _ = fresh
    masks = data / "masks"
    shutil.copyfile(masks / "train_000.npz", masks / ".v.tmp.npz")  # a view named ".v.tmp"
    stale = masks / ".train_000.gsseg-abcd_123.tmp.npz"  # what a killed atomic_path writer leaves
    stale.write_bytes(b"half")
    with atomic_path(masks / "x.npz") as tmp:
        assert is_temporary(tmp.name)
        tmp.write_bytes(b"x")
    assert not is_temporary(".v.tmp.npz") and not is_temporary(".v.1234abcd.tmp.npz")
    assert ".v.tmp" in MaskStore(masks).views() and "x" in MaskStore(masks).views()
    (masks / "x.npz").unlink()
    assert cli_exit_code(["masks", str(data), "--source", "simulated", "-q"]) == 0
    assert (masks / ".v.tmp.npz").is_file() and not stale.exists()


def test_restart_of_rgb_invalidates_what_depends_on_it(fresh, capsys):
    data, run = fresh
    assert cli_exit_code(["segment", str(run), "-q", "--click", "0,0,0"]) == 0
    assert (run / "segments").is_dir() and (run / "features.pt").is_file()
    exports = run / "exports" / "mine"
    exports.mkdir(parents=True)
    (exports / "keep.txt").write_text("user file")
    argv = ["train", str(data), "--out", str(run), "--restart", "--stage", "rgb", "--iters", "5", "-q"]
    assert cli_exit_code(argv) == 0
    assert (run / "scene.ply").is_file() and (exports / "keep.txt").read_text() == "user file"
    for gone in ["features.pt", "features.json", "segments", "scores"]:
        assert not (run / gone).exists(), gone
    assert not list((run / "checkpoints").glob("features_*.pt"))
    line = one_error_line(["segment", str(run), "-q"], capsys)  # no stale features used with the new geometry
    assert "features" in line, line
    line = one_error_line(["export", str(run), "--out", str(run.parent / "e")], capsys)
    assert not (run.parent / "e").exists()


def _top(key, value):
    def case(d, r):
        def edit(j):
            if key == "camera_angle_x":
                j.pop("fl_x", None), j.pop("fl_y", None)
            j[key] = value

        edit_json(d / "transforms_train.json", edit)
        return ["info", d], {
            "camera_angle_x": r"transforms_train\.json: frame 0: 'camera_angle_x' must be a field of view in radians "
            r"in \(0, pi\)",
            "fl_x": r"transforms_train\.json: frame 0: focal lengths fl_x=\S+ fl_y=\S+ are not plausible for a 32x24",
        }[key]

    case.__name__ = f"_{key}_{value:g}"
    return case


def _mirror_matrix(d, r):
    edit_json(
        d / "transforms_train.json",
        lambda j: j["frames"][1].update(
            transform_matrix=[
                [-row[0], *row[1:]] if i < 3 else row for i, row in enumerate(j["frames"][1]["transform_matrix"])
            ]
        ),
    )
    return ["info", d], r"transforms_train\.json: frame 1: .*is a mirror \(determinant -1\)"


def _non_affine_matrix(d, r):
    edit_json(d / "transforms_test.json", lambda j: j["frames"][0]["transform_matrix"].__setitem__(3, [5, 6, 7, 0]))
    return ["info", d], r"transforms_test\.json: frame 0: the bottom row of 'transform_matrix' must be \[0, 0, 0, 1\]"


def _huge_integer(d, r):
    path = d / "transforms_train.json"
    path.write_text(path.read_text().replace('"w": 32', '"w": ' + "7" * 5000, 1))
    return ["info", d], r"transforms_train\.json: malformed JSON \(Exceeds the limit"


def _deep_json(d, r):
    (d / "transforms_train.json").write_text("[" * 200_000 + "]" * 200_000)
    return ["info", d], r"transforms_train\.json: malformed JSON: nested too deeply"


def _same_image_twice(d, r):
    edit_json(
        d / "transforms_train.json",
        lambda j: j["frames"].append({**j["frames"][0], "file_path": "./images/../images/train_000.png"}),
    )
    return ["info", d], r"image '(\./)?images/\.\./images/train_000\.png' is the same file as 'images/train_000\.png'"


def _decompression_bomb(d, r):
    import struct
    import zlib

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    ihdr = struct.pack(">IIBBBBB", 30000, 30000, 8, 2, 0, 0, 0)  # a 30000x30000 RGB header, almost no data
    png = (
        b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", zlib.compress(b"\x00" * 64)) + chunk(b"IEND", b"")
    )
    (d / "images" / "train_000.png").write_bytes(png)
    return ["info", d], r"images/train_000\.png: cannot read image \(.*decompression bomb"


CAMERA_CASES = [
    _top("camera_angle_x", 0.0),
    _top("camera_angle_x", float(np.pi)),
    _top("fl_x", 1e39),
    _top("fl_x", 1e-30),
    _mirror_matrix,
    _non_affine_matrix,
    _huge_integer,
    _deep_json,
    _same_image_twice,
    _decompression_bomb,
]


@pytest.mark.parametrize("case", CAMERA_CASES, ids=[c.__name__.strip("_") for c in CAMERA_CASES])
def test_implausible_cameras_and_hostile_files_are_one_line(fresh, case, capsys):
    data, run = fresh
    argv, pattern = case(data, run)
    before = snapshot(data, run)
    line = one_error_line([str(a) for a in argv], capsys)
    assert re.search(pattern, line), line
    assert snapshot(data, run) == before


def test_non_finite_setting_in_config_json_is_refused(fresh, capsys):
    data, run = fresh
    edit_json(run / "config.json", lambda c: c["features"].update(lr=float("nan")))
    before = snapshot(data, run)
    line = one_error_line(["train", str(data), "--out", str(run), "--stage", "features", "-q"], capsys)
    assert re.search(r"config\.json: invalid run config \(features\.lr must be a finite number, got nan\)", line), line
    edit_json(run / "config.json", lambda c: c["features"].update(lr=0.01, objective_settings={"pixels": float("inf")}))
    line = one_error_line(["segment", str(run), "-q"], capsys)
    assert "features.objective_settings.pixels must be a finite number" in line, line
    assert snapshot(data, run) == {**before, str(run / "config.json"): snapshot(run)[str(run / "config.json")]}


def test_disk_full_during_export_is_one_line_and_leaves_nothing(fresh, monkeypatch, capsys):
    import errno

    import gsseg.export.objects as objects

    data, run = fresh
    assert cli_exit_code(["segment", str(run), "-q"]) == 0

    def full(path, *args, **kwargs):
        raise OSError(errno.ENOSPC, "No space left on device", str(path))

    monkeypatch.setattr(objects, "write_splats", full)
    out = run.parent / "exported"
    line = one_error_line(["export", str(run), "--out", str(out)], capsys)
    assert re.search(r"exported\.tmp-\S+/object_\d+\.ply: no space left on device; free some space", line), line
    assert not out.exists() and not list(run.parent.glob(".exported.*"))


def test_user_text_in_normal_output_is_printed_as_typed(fresh, capsys):
    data, run = fresh
    weird = run.parent / "q[/red]:smile:[bold]" / "run"
    weird.parent.mkdir(parents=True)  # "q[" / "red]:smile:[bold]"
    shutil.move(run, weird)
    capsys.readouterr()
    assert cli_exit_code(["train", str(data), "--out", str(weird), "--seed", "5", "-q"]) == 0
    err = "".join(capsys.readouterr().err.split())  # without the line wraps of a narrow terminal
    assert "".join(f"resuming {weird} with its recorded settings; ignoring --seed".split()) in err, err
    assert cli_exit_code(["segment", str(weird), "-q"]) == 0
    out = "".join(capsys.readouterr().out.split())
    assert f"->{weird / 'segments'}" in out, out


def test_origin_policy_for_network_hosts():
    from gsseg.viewer.origin import OriginPolicy, machine_names

    anywhere = OriginPolicy("0.0.0.0")
    name = sorted(machine_names())[0]
    for ok in ["http://0.0.0.0:8080", "http://localhost:8080", f"http://{name}:8080"]:
        assert anywhere.allows(ok, 8080), ok
    for bad in ["http://evil.example.com:8080", "http://0.0.0.0:8081", "https://0.0.0.0"]:
        assert not anywhere.allows(bad, 8080), bad
    lan = OriginPolicy("192.168.7.9", ("http://wiki.lan",))
    assert lan.allows("http://192.168.7.9:9000", 9000) and lan.allows("http://wiki.lan", 9000)
    assert not lan.allows("http://192.168.7.10:9000", 9000) and not OriginPolicy("127.0.0.1").allows(
        "http://0.0.0.0:80", 80
    )

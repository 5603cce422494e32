"""Lens undistortion checked against the lenses' own projections (OpenCV's and pycolmap's).

Dots are drawn at the *distorted* projections of known 3D points (``cv2.projectPoints`` /
``cv2.fisheye.projectPoints`` / pycolmap ``Camera.img_from_cam``); after the loader's undistortion
each dot must sit at the pinhole projection of its point through the camera the loader reports.
"""

from __future__ import annotations

import json
from pathlib import Path

import cv2
import numpy as np
import pytest
from PIL import Image

from gsseg.data import load_dataset
from gsseg.data.undistort import from_colmap
from gsseg.errors import GssegError

W, H = 160, 120
K_OURS = np.array([[150.0, 0.0, 80.3], [0.0, 148.0, 59.6], [0.0, 0.0, 1.0]])  # pixel centre at (u + 0.5, v + 0.5)
SIGMA = 1.3


pytestmark = pytest.mark.usefixtures("private_cache")  # tests/conftest.py


def _points() -> np.ndarray:
    """[P,3] camera-space points spread over the view (z 2..3), at least ~20 px apart."""
    xs, ys = np.meshgrid(np.linspace(-0.4, 0.4, 5), np.linspace(-0.3, 0.3, 4))
    z = 2.0 + 0.5 * ((np.arange(xs.size) % 3) / 2.0)
    return np.stack([xs.ravel() * z, ys.ravel() * z, z], axis=-1)


def _cv_K(K: np.ndarray) -> np.ndarray:
    out = K.copy()
    out[:2, 2] -= 0.5
    return out


def _draw_dots(uv_cv: np.ndarray, w: int = W, h: int = H) -> np.ndarray:
    """[H,W] float image in [0,1] with a Gaussian dot at each OpenCV-convention position."""
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float64)
    img = np.zeros((h, w))
    for u, v in uv_cv:
        img += np.exp(-((xx - u) ** 2 + (yy - v) ** 2) / (2 * SIGMA**2))
    return np.clip(img, 0, 1)


def _write_gray16(path: Path, img: np.ndarray) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(np.round(img * 65535).astype(np.uint16)).save(path)


def _centroids(img: np.ndarray, expected_cv: np.ndarray, r: int = 4) -> np.ndarray:
    """Intensity centroid (OpenCV pixel convention) in a window around each expected position."""
    out = []
    for u, v in expected_cv:
        x0, y0 = int(round(u)) - r, int(round(v)) - r
        win = img[y0 : y0 + 2 * r + 1, x0 : x0 + 2 * r + 1]
        yy, xx = np.mgrid[y0 : y0 + 2 * r + 1, x0 : x0 + 2 * r + 1]
        out.append([(win * xx).sum() / win.sum(), (win * yy).sum() / win.sum()])
    return np.array(out)


def _pinhole_cv(K_ours: np.ndarray, pts: np.ndarray) -> np.ndarray:
    """Pinhole projection with our intrinsics, in OpenCV's pixel convention."""
    uv = (K_ours @ (pts / pts[:, 2:]).T).T[:, :2]
    return uv - 0.5


def _transforms_dataset(root: Path, frame_extra: dict, uv_cv: np.ndarray, name: str = "dots") -> Path:
    """One identity-pose camera (OpenGL c2w = diag(1,-1,-1,1)) whose photo shows the dots."""
    _write_gray16(root / "images" / f"{name}.png", _draw_dots(uv_cv))
    frame = {"file_path": f"images/{name}.png", "transform_matrix": np.diag([1.0, -1, -1, 1]).tolist()}
    top = {"fl_x": K_OURS[0, 0], "fl_y": K_OURS[1, 1], "cx": K_OURS[0, 2], "cy": K_OURS[1, 2], "w": W, "h": H}
    top.update(frame_extra)
    (root / "transforms.json").write_text(json.dumps({**top, "frames": [frame]}))
    return root


def _check_dots(ds, pts: np.ndarray, name: str = "dots", tol: float = 0.5) -> None:
    img = ds.image(name).numpy()[..., 0]
    i = ds.names("all").index(name)
    K_new = ds.cameras("all").Ks[i].double().numpy()
    expected = _pinhole_cv(K_new, pts)
    w, h = ds.size(name)
    inside = (expected[:, 0] > 6) & (expected[:, 0] < w - 7) & (expected[:, 1] > 6) & (expected[:, 1] < h - 7)
    assert inside.sum() >= 0.75 * len(pts)
    err = np.linalg.norm(_centroids(img, expected[inside]) - expected[inside], axis=1)
    assert err.max() < tol, err


OPENCV = {"k1": -0.28, "k2": 0.09, "p1": 0.0015, "p2": -0.001}


def test_opencv_distortion_dots_land_at_pinhole_projection(tmp_path):
    pts = _points()
    dist = np.array([OPENCV["k1"], OPENCV["k2"], OPENCV["p1"], OPENCV["p2"]])
    uv, _ = cv2.projectPoints(pts, np.zeros(3), np.zeros(3), _cv_K(K_OURS), dist)
    root = _transforms_dataset(tmp_path / "ds", OPENCV, uv.reshape(-1, 2))
    ds = load_dataset(root, test_every=0)
    K_new = ds.train.Ks[0].double().numpy()
    assert not np.allclose(K_new, K_OURS)  # a new pinhole camera, same size
    assert ds.size("dots") == (W, H)
    _check_dots(ds, pts)
    # without undistortion the dots would be far off: the test can fail
    far = np.linalg.norm(_pinhole_cv(K_new, pts) - uv.reshape(-1, 2), axis=1)
    assert far.max() > 2.0  # (4x the tolerance)
    assert ds.describe()["lens"] and ds.describe()["undistorted_views"] == 1


def test_fisheye_dots_land_at_pinhole_projection(tmp_path):
    pts = _points()
    k = np.array([0.05, -0.02, 0.01, -0.004])
    uv, _ = cv2.fisheye.projectPoints(pts.reshape(-1, 1, 3), np.zeros(3), np.zeros(3), _cv_K(K_OURS), k)
    extra = {"is_fisheye": True, "k1": k[0], "k2": k[1], "k3": k[2], "k4": k[3]}
    ds = load_dataset(_transforms_dataset(tmp_path / "ds", extra, uv.reshape(-1, 2)), test_every=0)
    _check_dots(ds, pts)


def test_working_size_and_labels_and_depth_undistorted_alike(tmp_path):
    pts = _points()
    dist = np.array([OPENCV["k1"], OPENCV["k2"], OPENCV["p1"], OPENCV["p2"]])
    uv, _ = cv2.projectPoints(pts, np.zeros(3), np.zeros(3), _cv_K(K_OURS), dist)
    uv = uv.reshape(-1, 2)
    root = _transforms_dataset(tmp_path / "ds", OPENCV, uv)
    # ground truth: a 5x5 square of label k+1 around dot k (distorted image geometry); constant depth
    labels = np.zeros((H, W), dtype=np.uint16)
    for k, (u, v) in enumerate(uv):
        labels[int(round(v)) - 2 : int(round(v)) + 3, int(round(u)) - 2 : int(round(u)) + 3] = k + 1
    (root / "gt" / "object").mkdir(parents=True)
    Image.fromarray(labels).save(root / "gt" / "object" / "dots.png")
    (root / "depth").mkdir()
    np.save(root / "depth" / "dots.npy", np.full((H, W), 2.5, dtype=np.float32))

    ds = load_dataset(root, test_every=0, max_size=80)  # half size
    assert ds.size("dots") == (80, 60) and ds.downscale == 2.0
    _check_dots(ds, pts, tol=0.5)
    gt = ds.gt("dots", "object")
    assert gt.shape == (60, 80) and set(np.unique(gt)) <= set(range(len(pts) + 1))  # nearest: no blended ids
    expected = _pinhole_cv(ds.train.Ks[0].double().numpy(), pts)
    for k, (u, v) in enumerate(expected):
        ys, xs = np.nonzero(gt == k + 1)
        if len(xs) and 3 < u < 76 and 3 < v < 56:
            assert abs(xs.mean() - u) < 1.0 and abs(ys.mean() - v) < 1.0
    depth = ds.depth("dots").numpy()
    assert depth.shape == (60, 80) and set(np.unique(depth)) <= {0.0, 2.5} and (depth == 2.5).mean() > 0.95

    # imported label maps (label_masks/) go through the same resampling
    from gsseg.masks.runner import make_source
    from gsseg.masks.sources.base import View

    (root / "label_masks" / "dots").mkdir(parents=True)
    Image.fromarray(labels).save(root / "label_masks" / "dots" / "0.png")
    vm = make_source("labels")(View(ds, "dots"))
    assert vm.image_size == (60, 80) and vm.n_masks == len(np.unique(gt)) - 1


def _colmap_opencv_dataset(root: Path, params: list[float], model: str = "OPENCV") -> np.ndarray:
    """A pycolmap-built model: one camera (identity pose) whose photo shows dots drawn by pycolmap's projection."""
    import pycolmap

    pts = _points()
    cam = pycolmap.Camera(model=model, width=W, height=H, params=params, camera_id=1)
    uv = np.asarray(cam.img_from_cam(pts)) - 0.5  # COLMAP's pixel centres are at +0.5, like ours
    _write_gray16(root / "images" / "dots.png", _draw_dots(uv))
    rec = pycolmap.Reconstruction()
    rec.add_camera_with_trivial_rig(cam)
    pose = pycolmap.Rigid3d(pycolmap.Rotation3d(np.eye(3)), np.zeros(3))
    rec.add_image_with_trivial_frame(pycolmap.Image(name="dots.png", camera_id=1, image_id=1), pose)
    (root / "sparse" / "0").mkdir(parents=True)
    rec.write_binary(str(root / "sparse" / "0"))
    return pts


@pytest.mark.parametrize(
    "model,params",
    [
        ("OPENCV", [150.0, 148.0, 80.3, 59.6, -0.28, 0.09, 0.0015, -0.001]),
        ("RADIAL", [150.0, 80.3, 59.6, -0.25, 0.07]),
        ("FULL_OPENCV", [150.0, 148.0, 80.3, 59.6, -0.2, 0.05, 0.001, -0.001, 0.01, 0.02, 0.0, 0.01]),
        ("OPENCV_FISHEYE", [150.0, 148.0, 80.3, 59.6, 0.05, -0.02, 0.01, -0.004]),
        ("FOV", [150.0, 148.0, 80.3, 59.6, 0.4]),
    ],
)
def test_colmap_camera_models_load_and_undistort(tmp_path, model, params):
    pts = _colmap_opencv_dataset(tmp_path, params, model)
    ds = load_dataset(tmp_path, test_every=0)
    assert ds.format == "colmap" and ds.names("all") == ["dots"]
    _check_dots(ds, pts)


def test_colmap_models_map_to_opencv_coefficients():
    K, d = from_colmap("SIMPLE_RADIAL", [100.0, 50.0, 40.0, 0.1])
    assert d is not None and d.model == "opencv" and d.coeffs == (0.1, 0.0, 0.0, 0.0)
    assert K[0, 0] == K[1, 1] == 100.0 and (K[0, 2], K[1, 2]) == (50.0, 40.0)
    assert from_colmap("PINHOLE", [100.0, 90.0, 50.0, 40.0])[1] is None
    assert from_colmap("RADIAL_FISHEYE", [100.0, 50.0, 40.0, 0.1, 0.2])[1].model == "fisheye"
    assert from_colmap("THIN_PRISM_FISHEYE", [1.0] * 12)[1].model == "colmap"


def test_disk_cache_reused_by_a_later_process(tmp_path, monkeypatch):
    import gsseg.data.dataset as dataset_mod

    pts = _points()
    dist = np.array([OPENCV["k1"], OPENCV["k2"], OPENCV["p1"], OPENCV["p2"]])
    uv, _ = cv2.projectPoints(pts, np.zeros(3), np.zeros(3), _cv_K(K_OURS), dist)
    root = _transforms_dataset(tmp_path / "ds", OPENCV, uv.reshape(-1, 2))
    monkeypatch.setattr(dataset_mod, "DISK_CACHE_MIN_PIXELS", 1)
    first = load_dataset(root, test_every=0).image("dots")
    cached = list((tmp_path / "cache" / "datasets").glob("ds-*/images/dots.*.npy"))
    assert len(cached) == 1

    def no_decode(*a, **k):
        raise AssertionError("decoded the photo again")

    monkeypatch.setattr(dataset_mod, "read_image", no_decode)
    again = load_dataset(root, test_every=0).image("dots")
    np.testing.assert_array_equal(first.numpy(), again.numpy())
    # a changed photo is not served stale
    monkeypatch.undo()
    monkeypatch.setenv("GSSEG_CACHE", str(tmp_path / "cache"))
    monkeypatch.setattr(dataset_mod, "DISK_CACHE_MIN_PIXELS", 1)
    _write_gray16(root / "images" / "dots.png", np.zeros((H, W)))
    assert float(load_dataset(root, test_every=0).image("dots").max()) == 0.0


def test_ambiguous_and_unsupported_lens_fields_refused(tmp_path):
    uv = np.array([[80.0, 60.0]])
    root = _transforms_dataset(tmp_path / "a", {"k1": 0.1, "k4": 0.01}, uv)
    with pytest.raises(GssegError, match="k4/k5/k6 on a non-fisheye camera are ambiguous"):
        load_dataset(root)
    root = _transforms_dataset(tmp_path / "b", {"is_fisheye": True, "k1": 0.1, "p1": 0.01}, uv)
    with pytest.raises(GssegError, match="a fisheye camera takes k1..k4 only"):
        load_dataset(root)

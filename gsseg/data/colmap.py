"""COLMAP sparse models (binary or text) read with pycolmap.

Layout: ``ROOT/images/<name>`` and the model in ``ROOT/sparse/0`` or ``ROOT/sparse``. Every
COLMAP camera model is accepted: distorted ones (SIMPLE_RADIAL, RADIAL, OPENCV, FULL_OPENCV,
OPENCV_FISHEYE, ...) are undistorted by :mod:`gsseg.data.undistort`. COLMAP's ``cam_from_world``
is already an OpenCV world-to-camera transform and its principal point uses the same
pixel-centre convention as :class:`Cameras`, so no conversion is needed. Posed images whose file
is missing are left out (reported in ``missing``); every ``test_every``-th of the others by sorted
name is a test view (COLMAP models have no split).
"""

from __future__ import annotations

import shutil
import tempfile
from pathlib import Path

import numpy as np

from gsseg.data.cameras import Cameras
from gsseg.data.colmap_check import check_colmap_model
from gsseg.data.images import image_size
from gsseg.data.records import ParsedScene, ViewRecord, ordinal, unique_names
from gsseg.data.undistort import from_colmap
from gsseg.errors import GssegError, file_error

MODEL_DIRS = ("sparse/0", "sparse")


def find_model_dir(root: Path) -> Path | None:
    """``root/sparse/0`` or ``root/sparse`` if it holds ``cameras.bin`` or ``cameras.txt``."""
    for sub in MODEL_DIRS:
        d = root / sub
        if (d / "cameras.bin").is_file() or (d / "cameras.txt").is_file():
            return d
    return None


def load_colmap(root: Path, test_every: int = 8, check_images: bool = True) -> ParsedScene:
    """Parse a COLMAP dataset: every ``test_every``-th posed image by sorted name is a test view."""
    import pycolmap

    model_dir = find_model_dir(root)
    if model_dir is None:
        raise file_error(root, "no COLMAP model (expected sparse/0/cameras.bin or sparse/cameras.txt)")
    cameras_file = model_dir / ("cameras.bin" if (model_dir / "cameras.bin").is_file() else "cameras.txt")
    images_file = model_dir / ("images.bin" if (model_dir / "images.bin").is_file() else "images.txt")
    check_colmap_model(model_dir)  # names the broken file; pycolmap's C++ errors do not
    try:
        rec = pycolmap.Reconstruction(str(model_dir))
    except Exception as e:  # pycolmap raises ValueError/RuntimeError with C++ messages
        msg = str(e).splitlines()[0] if str(e) else type(e).__name__
        raise file_error(model_dir, f"cannot read COLMAP model ({msg})") from None
    if test_every < 0:
        raise GssegError(f"test_every must be >= 0, got {test_every}")

    posed = sorted((im for im in rec.images.values() if im.has_pose), key=lambda im: im.name)
    image_dir = root / "images"
    listed_in = images_file.relative_to(root).as_posix()
    missing = [
        (image_dir / im.name, f"listed in {listed_in} as '{im.name}'")
        for im in posed
        if not (image_dir / im.name).is_file()
    ]
    images = [im for im in posed if (image_dir / im.name).is_file()]
    if not images:
        note = f" with an image file ({len(missing)} posed images have none)" if missing else ""
        raise file_error(model_dir, f"COLMAP model has no posed images{note} (empty train split)")
    names = unique_names([im.name for im in images])
    views = []
    for rank, (name, im) in enumerate(zip(names, images)):
        cam = rec.cameras[im.camera_id]
        path = image_dir / im.name
        if check_images:
            aw, ah = image_size(path)
            if (aw, ah) != (cam.width, cam.height):
                raise file_error(
                    path,
                    f"image is {aw}x{ah} but {cameras_file.name} says camera {im.camera_id} is "
                    f"{cam.width}x{cam.height}",
                )
        pose = im.cam_from_world() if callable(im.cam_from_world) else im.cam_from_world
        viewmat = np.eye(4)
        viewmat[:3, :] = np.asarray(pose.matrix(), dtype=np.float64)
        K, distortion = from_colmap(cam.model_name, np.asarray(cam.params))
        split = "test" if test_every > 0 and rank % test_every == 0 and len(images) > 1 else "train"
        views.append(ViewRecord(name, path, int(cam.width), int(cam.height), K, viewmat, split, distortion=distortion))
    if len(set(names)) != len(names):
        raise file_error(model_dir, "two images share the same name")
    points = None
    if rec.num_points3D() > 0:
        pts = list(rec.points3D.values())
        xyz = np.array([p.xyz for p in pts], dtype=np.float32).reshape(-1, 3)
        rgb = np.array([p.color for p in pts], dtype=np.float32).reshape(-1, 3) / 255.0
        points = (xyz, rgb)
    fallback = root / "points3d.ply"
    rule = (
        f"every {ordinal(test_every)} image held out as a test view (by sorted name; COLMAP models have no split)"
        if test_every > 0
        else "no test views (test_every 0)"
    )
    return ParsedScene(
        "colmap",
        model_dir,
        views,
        points=points,
        points_file=fallback if points is None and fallback.is_file() else None,
        split_rule=rule,
        missing=missing,
        listed=len(posed),
    )


def write_colmap_model(
    model_dir: str | Path,
    cameras: Cameras,
    image_names: list[str],
    points: tuple[np.ndarray, np.ndarray] | None = None,
    text: bool = False,
) -> None:
    """Write ``cameras`` as a COLMAP model (one PINHOLE camera per view) in ``model_dir``.

    Args:
        image_names: file name of each view relative to ``images/``.
        points: optional ([P,3] xyz, [P,3] rgb in [0,1]) written as points3D without tracks.
        text: write ``.txt`` files instead of ``.bin``.
    """
    import pycolmap

    if len(image_names) != len(cameras):
        raise ValueError("one image name per camera is needed")
    rec = pycolmap.Reconstruction()
    for i in range(len(cameras)):
        K = cameras.Ks[i].double()
        cam = pycolmap.Camera(
            model="PINHOLE",
            width=int(cameras.widths[i]),
            height=int(cameras.heights[i]),
            params=[float(K[0, 0]), float(K[1, 1]), float(K[0, 2]), float(K[1, 2])],
            camera_id=i + 1,
        )
        rec.add_camera_with_trivial_rig(cam)
        vm = cameras.viewmats[i].double().numpy()
        pose = pycolmap.Rigid3d(pycolmap.Rotation3d(vm[:3, :3]), vm[:3, 3])
        rec.add_image_with_trivial_frame(pycolmap.Image(name=image_names[i], camera_id=i + 1, image_id=i + 1), pose)
    if points is not None:
        xyz, rgb = points
        rgb8 = np.clip(np.round(np.asarray(rgb, dtype=np.float64) * 255), 0, 255).astype(np.uint8)
        for p, c in zip(np.asarray(xyz, dtype=np.float64), rgb8):
            rec.add_point3D(p, pycolmap.Track(), c)
    model_dir = Path(model_dir)
    model_dir.mkdir(parents=True, exist_ok=True)
    # pycolmap writes a folder of files: write them beside the target, then rename each (atomic per file).
    tmp = Path(tempfile.mkdtemp(prefix=".colmap.", dir=model_dir))
    try:
        (rec.write_text if text else rec.write_binary)(str(tmp))
        for f in sorted(tmp.iterdir()):
            f.replace(model_dir / f.name)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)

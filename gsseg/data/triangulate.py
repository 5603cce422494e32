"""Sparse points for a dataset that has none, triangulated with its KNOWN poses (pycolmap).

What nerfstudio / hloc do for posed captures, on the training views only (the held-out views
must not shape the initial scene), at the working resolution the dataset returns (undistorted,
resized):

1. the views are written as PNGs into a scratch folder and a COLMAP database gets one PINHOLE
   camera per view with the dataset's intrinsics;
2. SIFT features (``pycolmap.extract_features``);
3. matching: every pair (``match_exhaustive``) up to ``exhaustive_max_views`` views, else each
   view with its ``neighbors`` nearest views by pose (``match_image_pairs`` on that list);
4. verification by the known poses instead of RANSAC: a match is an inlier when its Sampson
   distance to the epipolar line of the known relative pose is below ``max_epipolar_px``;
5. ``pycolmap.triangulate_points`` with the poses and intrinsics fixed;
6. points seen in at least ``min_track_length`` views with a mean reprojection error below
   ``max_reproj_px`` are kept (two-view tracks are unverified: on repetitive texture such as a
   checkerboard floor a wrong match along the epipolar line passes any two-view test).

The result is cached as ``points/<key>.ply`` (x, y, z, red, green, blue) in the dataset's cache
folder (``gsseg.data.cache``: ``$GSSEG_CACHE`` or ``~/.cache/gsseg``, as the undistorted photos;
the dataset folder may be read-only); ``<key>`` hashes the training cameras, their photos'
stamps and the settings, so a second run reuses it and any change recomputes it. A failure is
cached too (``<key>.failed.txt`` with its reason), so a rerun falls back at once.
"""

from __future__ import annotations

import dataclasses
import os
import shutil
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import numpy as np

from gsseg.data.cache import dataset_cache_dir, digest, file_stamp
from gsseg.data.points import read_points_ply, write_points_ply
from gsseg.errors import GssegError
from gsseg.utils.atomic import atomic_path

CACHE_VERSION = 1  # bump when the method changes so old caches are not reused


class TriangulationError(GssegError):
    """Triangulation produced too few points (too little texture or overlap)."""


@dataclass(frozen=True)
class TriangulationSettings:
    """How sparse points are made (all part of the cache key)."""

    max_features: int = 4096  # SIFT features per view
    first_octave: int | None = None  # SIFT's first octave; None: -1 (2x upsampled, COLMAP's default) for
    # views up to small_view_px on their longest side, else 0 (a quarter of the work, enough features)
    small_view_px: int = 640
    exhaustive_max_views: int = 100  # match every pair up to this many views, else nearest neighbours
    neighbors: int = 20  # views each view is matched with beyond exhaustive_max_views
    max_epipolar_px: float = 2.0  # Sampson distance (pixels) for a match to agree with the known poses
    min_track_length: int = 3  # views a kept point is seen in
    max_reproj_px: float = 2.0  # mean reprojection error (pixels) of a kept point
    min_points: int = 50  # fewer points than this is a failure (the caller falls back)


def cache_path(ds, settings: TriangulationSettings) -> Path | None:
    """Where the points of ``ds`` made with ``settings`` are cached (None when caching is off):
    ``<dataset cache>/points/<key>.ply``, the key hashing the training cameras (poses,
    intrinsics, sizes, names), their photos' path/size/modification time and ``settings``."""
    folder = dataset_cache_dir(ds.root)
    if folder is None:
        return None
    cams = ds.cameras("train")
    key = [
        f"triangulate-v{CACHE_VERSION}",
        dataclasses.asdict(settings),
        np.round(cams.viewmats.double().numpy(), 9).tolist(),
        np.round(cams.Ks.double().numpy(), 6).tolist(),
        cams.widths.tolist(),
        cams.heights.tolist(),
        [[name, file_stamp(Path(ds.image_path(name)))] for name in cams.names],
    ]
    return folder / "points" / f"{digest(key, 20)}.ply"


def _stderr_line(text: str) -> None:
    print(text, file=sys.stderr, flush=True)


def triangulated_points(
    ds,
    settings: TriangulationSettings | None = None,
    log: Callable[[str], None] = _stderr_line,
    use_cache: bool = True,
) -> tuple[np.ndarray, np.ndarray]:
    """Sparse points of ``ds`` from its training views: the cached ones if present, else made by
    :func:`triangulate` and cached.

    Returns ([P,3] float32 xyz, [P,3] float32 rgb in [0,1]); raises TriangulationError when
    fewer than ``settings.min_points`` come out.
    """
    settings = settings or TriangulationSettings()
    path = cache_path(ds, settings) if use_cache else None
    failed = path.with_suffix(".failed.txt") if path is not None else None
    if path is not None and path.is_file():
        xyz, rgb = read_points_ply(path)
        if len(xyz) >= settings.min_points:
            log(f"sparse points: {len(xyz):,} triangulated points from the cache ({path})")
            return xyz, rgb
    if failed is not None and failed.is_file():
        raise TriangulationError(f"{failed.read_text().strip()} (cached in {failed.parent})")
    try:
        xyz, rgb = triangulate(ds, settings, log=log)
    except TriangulationError as e:
        reason = str(e)
        if failed is not None:
            _cache_write(failed, lambda tmp: tmp.write_text(reason + "\n"), log)
        raise
    if path is not None:
        _cache_write(path, lambda tmp: write_points_ply(tmp, xyz, rgb), log)
    return xyz, rgb


def _cache_write(path: Path, write: Callable[[Path], object], log: Callable[[str], None]) -> None:
    """Atomically write ``path`` with ``write(tmp)``; a warning, not an error, when the cache is not writable."""
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        with atomic_path(path) as tmp:
            write(Path(tmp))
    except OSError as e:
        log(f"warning: could not cache the triangulated points in {path.parent} ({e.strerror or e})")


def triangulate(
    ds, settings: TriangulationSettings | None = None, log: Callable[[str], None] = _stderr_line
) -> tuple[np.ndarray, np.ndarray]:
    """Triangulate sparse points from the training views of ``ds`` with its known poses.

    Returns ([P,3] float32 xyz, [P,3] float32 rgb in [0,1]). Raises TriangulationError when
    fewer than ``settings.min_points`` points come out.
    """
    import pycolmap

    settings = settings or TriangulationSettings()
    cams = ds.cameras("train")
    n = len(cams)
    if n < max(2, settings.min_track_length):
        raise TriangulationError(f"{ds.root}: {n} training views are too few to triangulate points")
    threads = max(1, len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1))
    w0, h0 = int(cams.widths[0]), int(cams.heights[0])
    log(f"sparse points: none in the dataset; triangulating from {n} training views at {w0}x{h0} with the known poses")
    t0 = time.monotonic()
    pycolmap.logging.minloglevel = 2  # pycolmap's INFO lines would flood the log; errors still show
    with tempfile.TemporaryDirectory(prefix="gsseg-triangulate-") as tmp:
        work = Path(tmp)
        image_dir = work / "images"
        image_dir.mkdir()
        files = _write_views(ds, cams.names, image_dir)
        db_path = work / "database.db"
        image_ids = _extract(pycolmap, db_path, image_dir, files, cams, settings, threads)
        n_kp = _count_keypoints(pycolmap, db_path)
        log(f"sparse points: {n_kp:,} SIFT features in {n} views ({time.monotonic() - t0:.0f}s)")
        t1 = time.monotonic()
        pairs = _match(pycolmap, db_path, work, files, cams, settings, threads)
        n_pairs, n_inliers = _verify_with_poses(pycolmap, db_path, image_ids, cams, settings)
        log(
            f"sparse points: {pairs} pairs matched, {n_pairs} agree with the poses "
            f"({n_inliers:,} matches, {time.monotonic() - t1:.0f}s)"
        )
        t2 = time.monotonic()
        rec = _reconstruction(pycolmap, db_path, image_ids, cams)
        opts = pycolmap.IncrementalPipelineOptions()
        opts.num_threads = threads
        opts.extract_colors = True
        opts.min_num_matches = 15
        out = work / "sparse"
        out.mkdir()
        try:
            rec = pycolmap.triangulate_points(rec, db_path, image_dir, out, options=opts, refine_intrinsics=False)
        except Exception as e:  # pycolmap raises plain RuntimeError/ValueError on degenerate input
            raise TriangulationError(f"{ds.root}: triangulation failed ({str(e).splitlines()[0][:200]})") from None
        xyz, rgb, total = _kept_points(rec, settings)
        shutil.rmtree(image_dir, ignore_errors=True)
    log(
        f"sparse points: {len(xyz):,} points kept of {total:,} triangulated (seen in >= {settings.min_track_length} "
        f"views, error <= {settings.max_reproj_px:g}px; {time.monotonic() - t2:.0f}s, "
        f"{time.monotonic() - t0:.0f}s in all)"
    )
    if len(xyz) < settings.min_points:
        raise TriangulationError(
            f"{ds.root}: triangulation gave {len(xyz)} points (fewer than {settings.min_points}): "
            "too little texture or overlap between the training views"
        )
    return xyz, rgb


# --- steps ------------------------------------------------------------------------------------


def _write_views(ds, names: list[str], folder: Path) -> list[str]:
    """Each view's working-resolution image as ``folder/<name>.png``; the file names."""
    from PIL import Image

    files = []
    for name in names:
        img = np.clip(ds.image(name).numpy() * 255.0 + 0.5, 0, 255).astype(np.uint8)
        Image.fromarray(img).save(folder / f"{name}.png", compress_level=1)
        files.append(f"{name}.png")
    return files


def _extract(pycolmap, db_path: Path, image_dir: Path, files: list[str], cams, settings, threads: int) -> list[int]:
    """SIFT features of every view into a new database whose cameras are the dataset's PINHOLE
    intrinsics; returns the database image id of each view (camera order)."""
    ext = pycolmap.FeatureExtractionOptions()
    ext.num_threads = threads
    ext.sift.max_num_features = settings.max_features
    if settings.first_octave is not None:
        ext.sift.first_octave = settings.first_octave
    else:
        longest = int(max(cams.widths.max(), cams.heights.max()))
        ext.sift.first_octave = -1 if longest <= settings.small_view_px else 0
    pycolmap.extract_features(
        db_path,
        image_dir,
        image_names=files,
        camera_mode=pycolmap.CameraMode.PER_IMAGE,
        extraction_options=ext,
    )
    index = {f: i for i, f in enumerate(files)}
    ids = [0] * len(files)
    db = pycolmap.Database.open(db_path)
    try:
        for im in db.read_all_images():
            i = index[im.name]
            ids[i] = int(im.image_id)
            db.update_camera(_camera(pycolmap, im.camera_id, cams, i))
    finally:
        db.close()
    return ids


def _camera(pycolmap, camera_id: int, cams, i: int):
    K = cams.Ks[i].double().numpy()
    cam = pycolmap.Camera(
        camera_id=int(camera_id),
        model="PINHOLE",
        width=int(cams.widths[i]),
        height=int(cams.heights[i]),
        params=[K[0, 0], K[1, 1], K[0, 2], K[1, 2]],
    )
    cam.has_prior_focal_length = True
    return cam


def _count_keypoints(pycolmap, db_path: Path) -> int:
    db = pycolmap.Database.open(db_path)
    try:
        return int(db.num_keypoints())
    finally:
        db.close()


def neighbour_pairs(cams, k: int) -> list[tuple[int, int]]:
    """Pairs (i < j) joining each camera with its ``k`` nearest by pose: centre distance over
    the scene radius plus one minus the cosine between the viewing directions."""
    c2w = cams.camtoworlds.double().numpy()
    centres, dirs = c2w[:, :3, 3], c2w[:, :3, 2]
    radius = max(float(np.linalg.norm(centres - centres.mean(0), axis=1).max()), 1e-9)
    dist = np.linalg.norm(centres[:, None] - centres[None], axis=-1) / radius + (1.0 - dirs @ dirs.T)
    np.fill_diagonal(dist, np.inf)
    pairs = set()
    for i in range(len(cams)):
        for j in np.argsort(dist[i])[: min(k, len(cams) - 1)]:
            pairs.add((min(i, int(j)), max(i, int(j))))
    return sorted(pairs)


def _match(pycolmap, db_path: Path, work: Path, files: list[str], cams, settings, threads: int) -> int:
    """Match descriptors (no RANSAC verification: the known poses verify). Returns the pair count."""
    opts = pycolmap.FeatureMatchingOptions()
    opts.num_threads = threads
    opts.skip_geometric_verification = True
    n = len(files)
    if n <= settings.exhaustive_max_views:
        pycolmap.match_exhaustive(db_path, matching_options=opts)
        return n * (n - 1) // 2
    pairs = neighbour_pairs(cams, settings.neighbors)
    pair_file = work / "pairs.txt"
    pair_file.write_text("".join(f"{files[i]} {files[j]}\n" for i, j in pairs))
    pycolmap.match_image_pairs(
        db_path, matching_options=opts, pairing_options=pycolmap.ImportedPairingOptions(match_list_path=pair_file)
    )
    return len(pairs)


def fundamental(K1: np.ndarray, V1: np.ndarray, K2: np.ndarray, V2: np.ndarray) -> np.ndarray:
    """[3,3] fundamental matrix x2ᵀ F x1 = 0 of two pinhole cameras (world-to-camera ``V [4,4]``)."""
    rel = V2 @ np.linalg.inv(V1)
    R, t = rel[:3, :3], rel[:3, 3]
    tx = np.array([[0.0, -t[2], t[1]], [t[2], 0.0, -t[0]], [-t[1], t[0], 0.0]])
    return np.linalg.inv(K2).T @ (tx @ R) @ np.linalg.inv(K1)


def _verify_with_poses(pycolmap, db_path: Path, image_ids: list[int], cams, settings) -> tuple[int, int]:
    """Keep the matches that agree with the known epipolar geometry; write them as the
    database's two-view geometries. Returns (pairs with enough inliers, inlier matches)."""
    view_of = {iid: i for i, iid in enumerate(image_ids)}
    Ks = cams.Ks.double().numpy()
    Vs = cams.viewmats.double().numpy()
    thr2 = float(settings.max_epipolar_px) ** 2
    n_pairs = n_inliers = 0
    db = pycolmap.Database.open(db_path)
    try:
        pair_ids, matches = db.read_all_matches()
        kps = {iid: db.read_keypoints(iid)[:, :2].astype(np.float64) for iid in image_ids}
        for pair_id, m in zip(pair_ids, matches):
            id1, id2 = pycolmap.pair_id_to_image_pair(pair_id)
            if len(m) == 0:
                continue
            a, b = view_of[id1], view_of[id2]
            F = fundamental(Ks[a], Vs[a], Ks[b], Vs[b])
            err = np.asarray(pycolmap.compute_squared_sampson_error(kps[id1][m[:, 0]], kps[id2][m[:, 1]], F))
            inliers = np.ascontiguousarray(m[err < thr2])
            if len(inliers) < 15:
                continue
            rel = Vs[b] @ np.linalg.inv(Vs[a])
            geom = pycolmap.TwoViewGeometry()
            geom.config = pycolmap.TwoViewGeometryConfiguration.CALIBRATED
            geom.F = F
            geom.E = Ks[b].T @ F @ Ks[a]
            geom.cam2_from_cam1 = pycolmap.Rigid3d(rel[:3, :4])
            geom.inlier_matches = inliers
            db.write_two_view_geometry(id1, id2, geom)
            n_pairs += 1
            n_inliers += len(inliers)
    finally:
        db.close()
    return n_pairs, n_inliers


def _reconstruction(pycolmap, db_path: Path, image_ids: list[int], cams):
    """A COLMAP reconstruction holding the dataset's cameras and fixed poses (no points)."""
    rec = pycolmap.Reconstruction()
    db = pycolmap.Database.open(db_path)
    try:
        for i, iid in enumerate(image_ids):
            im = db.read_image(iid)
            rec.add_camera_with_trivial_rig(_camera(pycolmap, im.camera_id, cams, i))
            V = cams.viewmats[i].double().numpy()
            image = pycolmap.Image(name=im.name, camera_id=im.camera_id, image_id=iid)
            rec.add_image_with_trivial_frame(image, pycolmap.Rigid3d(V[:3, :4]))
    finally:
        db.close()
    return rec


def _kept_points(rec, settings) -> tuple[np.ndarray, np.ndarray, int]:
    """Points with long enough tracks and small reprojection error: (xyz [P,3], rgb [P,3] in [0,1], total)."""
    pts = list(rec.points3D.values())
    if not pts:
        return np.zeros((0, 3), np.float32), np.zeros((0, 3), np.float32), 0
    xyz = np.array([p.xyz for p in pts], dtype=np.float64)
    rgb = np.array([p.color for p in pts], dtype=np.float64) / 255.0
    track = np.array([p.track.length() for p in pts])
    err = np.array([p.error for p in pts], dtype=np.float64)
    keep = (track >= settings.min_track_length) & (err <= settings.max_reproj_px) & np.isfinite(xyz).all(axis=1)
    return xyz[keep].astype(np.float32), rgb[keep].astype(np.float32), len(pts)

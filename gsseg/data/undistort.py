"""Lens undistortion: distorted photos, label maps and depth maps resampled to a pinhole camera.

A dataset whose cameras carry lens distortion is used through an ideal pinhole camera: the
loader replaces each distorted camera by :func:`undistorted_camera` (same image size, the
largest view with no blank border) and every raster is resampled into it by an
:class:`Undistorter` — photos bilinearly, label and depth maps nearest-neighbour (values are
never blended). Depth needs no other change: undistortion keeps the camera frame, so z is z.

Models (``Distortion.model``):

* ``"opencv"``: OpenCV's radial-tangential model, coefficients in OpenCV order
  ``(k1, k2, p1, p2[, k3[, k4, k5, k6]])`` (k4-k6: the rational model). COLMAP SIMPLE_RADIAL,
  RADIAL, OPENCV and FULL_OPENCV; instant-ngp / nerfstudio ``k1, k2, k3, p1, p2``. Maps by
  ``cv2.getOptimalNewCameraMatrix`` (alpha 0) and ``cv2.initUndistortRectifyMap``.
* ``"fisheye"``: OpenCV's equidistant fisheye model ``(k1, k2, k3, k4)``. COLMAP OPENCV_FISHEYE,
  RADIAL_FISHEYE and SIMPLE_RADIAL_FISHEYE (the same model with fewer terms); instant-ngp
  ``is_fisheye`` and nerfstudio ``OPENCV_FISHEYE``. Maps by ``cv2.fisheye``.
* ``"colmap"``: any other COLMAP model (FOV, THIN_PRISM_FISHEYE, DIVISION, ...): the pinhole
  camera from ``pycolmap.undistort_camera`` (its image size may differ), the map by pycolmap's
  own projection ``Camera.img_from_cam``.

Pixel convention: the intrinsics here put the centre of pixel (u, v) at (u + 0.5, v + 0.5), as
COLMAP and :class:`gsseg.data.Cameras` do; OpenCV puts it at (u, v), so principal points move by
half a pixel on the way into and out of OpenCV.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass

import numpy as np

from gsseg.errors import GssegError

MODELS = ("opencv", "fisheye", "colmap")
# COLMAP models with no distortion.
COLMAP_PINHOLE = ("SIMPLE_PINHOLE", "PINHOLE")


@dataclass(frozen=True)
class Distortion:
    """A camera's lens distortion.

    Attributes:
        model: "opencv", "fisheye" or "colmap" (see the module docstring).
        coeffs: OpenCV coefficients for "opencv" / "fisheye"; the full COLMAP parameter list
            (focal lengths and principal point included) for "colmap".
        colmap_model: the COLMAP model name for "colmap" (else "").
    """

    model: str
    coeffs: tuple[float, ...]
    colmap_model: str = ""

    def describe(self) -> str:
        """Short human description, e.g. ``opencv k1=0.0578 k2=-0.0805 p1=-0.00098 p2=0.000156``."""
        if self.model == "colmap":
            return f"COLMAP {self.colmap_model}"
        names = ("k1", "k2", "p1", "p2", "k3", "k4", "k5", "k6") if self.model == "opencv" else ("k1", "k2", "k3", "k4")
        return self.model + " " + " ".join(f"{n}={v:.3g}" for n, v in zip(names, self.coeffs) if v != 0.0)


def opencv_distortion(k1=0.0, k2=0.0, p1=0.0, p2=0.0, k3=0.0, k4=0.0, k5=0.0, k6=0.0) -> Distortion | None:
    """The radial-tangential model with these coefficients, or None when all are zero."""
    coeffs = tuple(float(v) for v in (k1, k2, p1, p2, k3, k4, k5, k6))
    if not any(coeffs):
        return None
    n = 8 if any(coeffs[5:]) else 5 if coeffs[4] else 4
    return Distortion("opencv", coeffs[:n])


def fisheye_distortion(k1=0.0, k2=0.0, k3=0.0, k4=0.0) -> Distortion:
    """The equidistant fisheye model (kept even with zero coefficients: an f-theta lens is not a pinhole)."""
    return Distortion("fisheye", tuple(float(v) for v in (k1, k2, k3, k4)))


def from_colmap(model: str, params: list[float] | np.ndarray) -> tuple[np.ndarray, Distortion | None]:
    """[3,3] float64 intrinsics and the distortion of a COLMAP camera ``model`` with ``params``."""
    p = [float(v) for v in params]
    if model in ("SIMPLE_PINHOLE", "SIMPLE_RADIAL", "RADIAL", "SIMPLE_RADIAL_FISHEYE", "RADIAL_FISHEYE"):
        fx = fy = p[0]
        cx, cy, extra = p[1], p[2], p[3:]
    else:
        fx, fy, cx, cy, extra = p[0], p[1], p[2], p[3], p[4:]
    K = np.array([[fx, 0.0, cx], [0.0, fy, cy], [0.0, 0.0, 1.0]])
    if model in COLMAP_PINHOLE:
        return K, None
    if model in ("SIMPLE_RADIAL", "RADIAL"):
        return K, opencv_distortion(*extra)
    if model == "OPENCV":
        return K, opencv_distortion(*extra)
    if model == "FULL_OPENCV":  # k1 k2 p1 p2 k3 k4 k5 k6: OpenCV's rational model, same order
        return K, opencv_distortion(*extra)
    if model in ("OPENCV_FISHEYE", "SIMPLE_RADIAL_FISHEYE", "RADIAL_FISHEYE"):
        return K, fisheye_distortion(*extra)
    return K, Distortion("colmap", tuple(p), model)


def _to_cv(K: np.ndarray) -> np.ndarray:
    """Pixel-centre-at-(u+0.5) intrinsics -> OpenCV's pixel-centre-at-u."""
    out = np.array(K, dtype=np.float64)
    out[0, 2] -= 0.5
    out[1, 2] -= 0.5
    return out


def _from_cv(K: np.ndarray) -> np.ndarray:
    out = np.array(K, dtype=np.float64)
    out[0, 2] += 0.5
    out[1, 2] += 0.5
    return out


def scale_K(K: np.ndarray, sx: float, sy: float) -> np.ndarray:
    """Intrinsics for an image resized by (sx, sy) per axis (exact in the pixel-centre convention)."""
    out = np.array(K, dtype=np.float64)
    out[0, :] *= sx
    out[1, :] *= sy
    return out


def _colmap_camera(dist: Distortion, width: int, height: int):
    import pycolmap

    return pycolmap.Camera(model=dist.colmap_model, width=int(width), height=int(height), params=list(dist.coeffs))


def undistorted_camera(K: np.ndarray, dist: Distortion, width: int, height: int) -> tuple[np.ndarray, int, int]:
    """The pinhole camera (K [3,3] float64, width, height) a distorted camera is undistorted to.

    "opencv": ``getOptimalNewCameraMatrix`` with alpha 0 (every output pixel sees the photo) at
    the same size; "fisheye": ``fisheye.estimateNewCameraMatrixForUndistortRectify`` with
    balance 0, same size; "colmap": ``pycolmap.undistort_camera`` (no blank pixels).
    """
    return _undistorted_camera(_key(K), dist, int(width), int(height))


@functools.lru_cache(maxsize=64)
def _undistorted_camera(k: tuple[float, ...], dist: Distortion, width: int, height: int) -> tuple[np.ndarray, int, int]:
    import cv2

    K = np.array(k, dtype=np.float64).reshape(3, 3)
    size = (width, height)
    if dist.model == "opencv":
        new, _roi = cv2.getOptimalNewCameraMatrix(_to_cv(K), np.array(dist.coeffs), size, 0.0, size)
        K_new = _from_cv(new)
    elif dist.model == "fisheye":
        new = cv2.fisheye.estimateNewCameraMatrixForUndistortRectify(
            _to_cv(K), np.array(dist.coeffs).reshape(4, 1), size, np.eye(3), balance=0.0, new_size=size
        )
        K_new = _from_cv(new)
    elif dist.model == "colmap":
        import pycolmap

        cam = pycolmap.undistort_camera(pycolmap.UndistortCameraOptions(), _colmap_camera(dist, width, height))
        K_new = np.asarray(cam.calibration_matrix(), dtype=np.float64)
        width, height = int(cam.width), int(cam.height)
    else:
        raise GssegError(f"unknown distortion model {dist.model!r} (use one of {', '.join(MODELS)})")
    if not (np.isfinite(K_new).all() and K_new[0, 0] > 0 and K_new[1, 1] > 0):
        raise GssegError(f"cannot undistort a {width}x{height} camera with {dist.describe()}: no valid pinhole view")
    K_new[0, 1] = 0.0
    return K_new, width, height


def _key(K: np.ndarray) -> tuple[float, ...]:
    return tuple(float(v) for v in np.asarray(K, dtype=np.float64).reshape(-1))


class Undistorter:
    """Resamples rasters of one distorted camera into its pinhole camera, at any working size.

    Args:
        K: [3,3] distorted intrinsics at the source size ``src_size`` = (width, height).
        dist: the distortion.
        K_new: [3,3] pinhole intrinsics at the output size ``dst_size`` = (width, height).
        native_size: (width, height) the ``"colmap"`` model's parameters refer to (its
            projection runs there and is rescaled to ``src_size``); unused otherwise.
    """

    def __init__(
        self,
        K: np.ndarray,
        dist: Distortion,
        src_size: tuple[int, int],
        K_new: np.ndarray,
        dst_size: tuple[int, int],
        native_size: tuple[int, int] | None = None,
    ) -> None:
        import cv2

        self.src_size, self.dst_size = tuple(src_size), tuple(dst_size)
        w, h = self.dst_size
        if dist.model == "opencv":
            self.map_x, self.map_y = cv2.initUndistortRectifyMap(
                _to_cv(K), np.array(dist.coeffs), None, _to_cv(K_new), (w, h), cv2.CV_32FC1
            )
        elif dist.model == "fisheye":
            self.map_x, self.map_y = cv2.fisheye.initUndistortRectifyMap(
                _to_cv(K), np.array(dist.coeffs).reshape(4, 1), np.eye(3), _to_cv(K_new), (w, h), cv2.CV_32FC1
            )
        elif dist.model == "colmap":
            nw, nh = native_size or src_size
            cam = _colmap_camera(dist, nw, nh)
            u, v = np.meshgrid(np.arange(w) + 0.5, np.arange(h) + 0.5)
            rays = np.stack([(u - K_new[0, 2]) / K_new[0, 0], (v - K_new[1, 2]) / K_new[1, 1], np.ones_like(u)], -1)
            pix = np.asarray(cam.img_from_cam(rays.reshape(-1, 3), check_cheirality=False), dtype=np.float64)
            pix = pix.reshape(h, w, 2) * (src_size[0] / nw, src_size[1] / nh) - 0.5
            pix[~np.isfinite(pix)] = -1e6
            self.map_x, self.map_y = (np.ascontiguousarray(pix[..., i], dtype=np.float32) for i in (0, 1))
        else:
            raise GssegError(f"unknown distortion model {dist.model!r} (use one of {', '.join(MODELS)})")

    def image(self, img: np.ndarray) -> np.ndarray:
        """Bilinear resample of a photo ``[H,W,C]`` (uint8 or float32); edges replicate."""
        import cv2

        self._check(img)
        return cv2.remap(img, self.map_x, self.map_y, cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)

    @functools.cached_property
    def _nearest_index(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """(rows, cols, inside) of the source pixel nearest to each output pixel's sample point
        (rounded as OpenCV's INTER_NEAREST does), built on first use."""
        sw, sh = self.src_size
        ix, iy = np.floor(self.map_x + 0.5).astype(np.int32), np.floor(self.map_y + 0.5).astype(np.int32)
        inside = (ix >= 0) & (ix < sw) & (iy >= 0) & (iy < sh)
        return np.clip(iy, 0, sh - 1), np.clip(ix, 0, sw - 1), inside

    def nearest(self, arr: np.ndarray, fill=0) -> np.ndarray:
        """Nearest-neighbour resample of a label or depth map ``[H,W]`` (any dtype); outside = ``fill``."""
        self._check(arr)
        rows, cols, inside = self._nearest_index
        out = arr[rows, cols]
        out[~inside] = fill
        return out

    def _check(self, arr: np.ndarray) -> None:
        if (arr.shape[1], arr.shape[0]) != self.src_size:
            raise ValueError(f"raster is {arr.shape[1]}x{arr.shape[0]}, the undistorter expects {self.src_size}")


@functools.lru_cache(maxsize=16)
def _cached_undistorter(
    k: tuple[float, ...],
    dist: Distortion,
    src_size: tuple[int, int],
    k_new: tuple[float, ...],
    dst_size: tuple[int, int],
    native_size: tuple[int, int],
) -> Undistorter:
    return Undistorter(np.array(k).reshape(3, 3), dist, src_size, np.array(k_new).reshape(3, 3), dst_size, native_size)


def undistorter(
    K: np.ndarray,
    dist: Distortion,
    src_size: tuple[int, int],
    K_new: np.ndarray,
    dst_size: tuple[int, int],
    native_size: tuple[int, int],
) -> Undistorter:
    """A shared :class:`Undistorter` (its maps are built once per camera and working size)."""
    return _cached_undistorter(_key(K), dist, tuple(src_size), _key(K_new), tuple(dst_size), tuple(native_size))

"""Structural check of a COLMAP model's cameras / images / points3D files before pycolmap reads them.

pycolmap's C++ readers trust the counts in a file: a garbage or truncated ``points3D.bin`` ends
in ``std::bad_alloc`` (or a huge allocation), a dangling camera id in ``unordered_map::at``, and
neither message names the file. This walks each file's record layout (COLMAP's documented
binary and text formats) and raises a :class:`GssegError` naming the file and the first problem.
``rigs`` / ``frames`` files (COLMAP >= 3.12) are left to pycolmap.
"""

from __future__ import annotations

import struct
from pathlib import Path

from gsseg.errors import file_error

# COLMAP camera model id -> (name, number of parameters), from colmap/sensor/models.h.
CAMERA_MODELS = {
    0: ("SIMPLE_PINHOLE", 3),
    1: ("PINHOLE", 4),
    2: ("SIMPLE_RADIAL", 4),
    3: ("RADIAL", 5),
    4: ("OPENCV", 8),
    5: ("OPENCV_FISHEYE", 8),
    6: ("FULL_OPENCV", 12),
    7: ("FOV", 5),
    8: ("SIMPLE_RADIAL_FISHEYE", 4),
    9: ("RADIAL_FISHEYE", 5),
    10: ("THIN_PRISM_FISHEYE", 12),
    11: ("RAD_TAN_THIN_PRISM_FISHEYE", 16),
    12: ("SIMPLE_DIVISION", 4),
    13: ("DIVISION", 5),
    14: ("SIMPLE_FISHEYE", 3),
    15: ("FISHEYE", 4),
    16: ("EUCM", 6),
    17: ("EQUIRECTANGULAR", 2),
}
PARAMS_BY_NAME = dict(CAMERA_MODELS.values())
PARTS = ("cameras", "images", "points3D")


def check_colmap_model(model_dir: Path) -> None:
    """GssegError naming the file when ``cameras``, ``images`` or ``points3D`` (.bin or .txt) is
    missing, truncated, malformed, or refers to a camera that ``cameras`` does not define."""
    files = {}
    for part in PARTS:
        binary, text = model_dir / f"{part}.bin", model_dir / f"{part}.txt"
        files[part] = binary if binary.is_file() else text
        if not files[part].is_file():
            raise file_error(
                binary, f"file not found (nor {text.name}); a COLMAP model needs cameras, images and points3D files"
            )
    cams = _check(files["cameras"], _cameras_bin, _cameras_txt)
    _check(files["images"], _images_bin, _images_txt, cams)
    _check(files["points3D"], _points_bin, _points_txt)


def _check(path: Path, binary, text, *args):
    try:
        if path.suffix == ".bin":
            return binary(_Reader(path.read_bytes()), *args)
        return text(path.read_text(encoding="utf-8", errors="replace").splitlines(), *args)
    except _Bad as e:
        raise file_error(path, f"not a valid COLMAP {path.name} file: {e}") from None


class _Bad(Exception):
    pass


class _Reader:
    """Little-endian cursor over a binary file; ``_Bad`` when a read runs past the end."""

    def __init__(self, data: bytes) -> None:
        self.data, self.pos = data, 0

    def read(self, fmt: str) -> tuple:
        size = struct.calcsize("<" + fmt)
        if self.pos + size > len(self.data):
            raise _Bad(f"truncated at byte {self.pos} (file has {len(self.data)} bytes)")
        out = struct.unpack_from("<" + fmt, self.data, self.pos)
        self.pos += size
        return out

    def skip(self, count: int, size: int, what: str) -> None:
        if count < 0 or self.pos + count * size > len(self.data):
            raise _Bad(f"{what} count {count} at byte {self.pos} runs past the end of the file (truncated or garbage)")
        self.pos += count * size

    def count(self, min_record: int, what: str) -> int:
        (n,) = self.read("Q")
        if n * min_record > len(self.data) - self.pos:
            raise _Bad(f"says {n} {what} but has only {len(self.data) - self.pos} bytes left (truncated or garbage)")
        return n

    def cstring(self) -> str:
        end = self.data.find(b"\0", self.pos)
        if end < 0:
            raise _Bad(f"unterminated image name at byte {self.pos} (truncated)")
        name = self.data[self.pos : end].decode("utf-8", errors="replace")
        self.pos = end + 1
        return name

    def done(self) -> None:
        if self.pos != len(self.data):
            raise _Bad(f"{len(self.data) - self.pos} unexpected bytes after the last record")


def _cameras_bin(r: _Reader) -> set[int]:
    ids = set()
    for _ in range(r.count(24, "cameras")):
        cam_id, model, _w, _h = r.read("iiQQ")
        if model not in CAMERA_MODELS:
            raise _Bad(f"camera {cam_id} has unknown model id {model}")
        r.skip(CAMERA_MODELS[model][1], 8, "parameter")
        ids.add(cam_id)
    r.done()
    if not ids:
        raise _Bad("defines no camera")
    return ids


def _images_bin(r: _Reader, cams: set[int]) -> None:
    for _ in range(r.count(64 + 1 + 8, "images")):
        image_id, *_pose, cam_id = r.read("I7dI")
        name = r.cstring()
        _known_camera(image_id, name, cam_id, cams)
        (n_points,) = r.read("Q")
        r.skip(n_points, 24, f"image {image_id} point")
    r.done()


def _points_bin(r: _Reader) -> None:
    for _ in range(r.count(51, "points")):
        *_, track = r.read("Q3d3BdQ")  # id, xyz, rgb, error, track length
        r.skip(track, 8, "track element")
    r.done()


def _data_lines(lines: list[str]):
    """(line number, stripped line) of the non-empty, non-comment lines."""
    for i, line in enumerate(lines, 1):
        line = line.strip()
        if line and not line.startswith("#"):
            yield i, line


def _numbers(tokens: list[str], lineno: int, kind=float) -> list:
    try:
        return [kind(t) for t in tokens]
    except ValueError:
        raise _Bad(f"line {lineno}: expected numbers, got {' '.join(tokens)[:60]!r}") from None


def _cameras_txt(lines: list[str]) -> set[int]:
    ids = set()
    for i, line in _data_lines(lines):
        tokens = line.split()
        if len(tokens) < 4:
            raise _Bad(f"line {i}: expected CAMERA_ID MODEL WIDTH HEIGHT PARAMS[], got {line[:60]!r}")
        cam_id = _numbers(tokens[:1], i, int)[0]
        _numbers(tokens[2:4], i, int)
        model = tokens[1]
        if model not in PARAMS_BY_NAME:
            raise _Bad(f"line {i}: unknown camera model {model!r}")
        if len(tokens) - 4 != PARAMS_BY_NAME[model]:
            raise _Bad(f"line {i}: a {model} camera has {PARAMS_BY_NAME[model]} parameters, got {len(tokens) - 4}")
        _numbers(tokens[4:], i)
        ids.add(cam_id)
    if not ids:
        raise _Bad("defines no camera")
    return ids


def _images_txt(lines: list[str], cams: set[int]) -> None:
    i = 0
    while i < len(lines):
        line = lines[i].strip()
        i += 1
        if not line or line.startswith("#"):
            continue
        tokens = line.split(maxsplit=9)
        if len(tokens) < 10:
            raise _Bad(f"line {i}: expected IMAGE_ID QW QX QY QZ TX TY TZ CAMERA_ID NAME, got {line[:60]!r}")
        image_id = _numbers(tokens[:1], i, int)[0]
        _numbers(tokens[1:8], i)
        _known_camera(image_id, tokens[9], _numbers(tokens[8:9], i, int)[0], cams)
        if i < len(lines):  # the POINTS2D line follows directly (it may be empty)
            points = lines[i].split()
            i += 1
            if len(points) % 3:
                raise _Bad(f"line {i}: POINTS2D must be (X, Y, POINT3D_ID) triples, got {len(points)} values")
            _numbers(points, i)


def _points_txt(lines: list[str]) -> None:
    for i, line in _data_lines(lines):
        tokens = line.split()
        if len(tokens) < 8 or (len(tokens) - 8) % 2:
            raise _Bad(
                f"line {i}: expected POINT3D_ID X Y Z R G B ERROR TRACK[] as (IMAGE_ID, POINT2D_IDX) pairs, "
                f"got {len(tokens)} values"
            )
        _numbers(tokens, i)


def _known_camera(image_id: int, name: str, cam_id: int, cams: set[int]) -> None:
    if cam_id not in cams:
        raise _Bad(f"image {image_id} ({name}) refers to camera {cam_id}, which the cameras file does not define")

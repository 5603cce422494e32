"""INRIA-layout 3DGS PLY read/write (plyfile).

Layout of the single ``vertex`` element, float32, binary little-endian:
``x y z, nx ny nz (zeros), f_dc_0..2, f_rest_* (channel-major: all R, then G, then B),
opacity (logit), scale_0..2 (log), rot_0..3 (wxyz, unnormalised)`` and, only on request,
``f_id_0..D-1`` identity features (their meaning is recorded in a ``gsseg_features`` comment).
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import numpy as np
import torch
from plyfile import PlyData, PlyElement

from gsseg.errors import GssegError, file_error
from gsseg.gaussians.scene import FeatureInfo, GaussianScene
from gsseg.utils.atomic import atomic_path

REQUIRED = [
    "x",
    "y",
    "z",
    "f_dc_0",
    "f_dc_1",
    "f_dc_2",
    "opacity",
    "scale_0",
    "scale_1",
    "scale_2",
    "rot_0",
    "rot_1",
    "rot_2",
    "rot_3",
]
FEATURE_COMMENT = "gsseg_features "
_INDEXED = re.compile(r"^(f_rest|f_id)_(\d+)$")


def scene_to_arrays(scene: GaussianScene, with_features: bool = False) -> dict[str, np.ndarray]:
    """Column name -> float32 [N] array, in INRIA order."""
    n = len(scene)
    f = lambda t: t.detach().cpu().to(torch.float32).numpy()  # noqa: E731
    means, dc = f(scene.means), f(scene.sh0).reshape(n, 3)
    rest = f(scene.shN).transpose(0, 2, 1).reshape(n, 3 * scene.shN.shape[1])  # [N,K-1,3] -> channel-major [N,3(K-1)]
    cols: dict[str, np.ndarray] = {}
    for i, a in enumerate("xyz"):
        cols[a] = means[:, i]
    for a in ("nx", "ny", "nz"):
        cols[a] = np.zeros(n, np.float32)
    for i in range(3):
        cols[f"f_dc_{i}"] = dc[:, i]
    for i in range(rest.shape[1]):
        cols[f"f_rest_{i}"] = rest[:, i]
    cols["opacity"] = f(scene.logit_opacities)
    scales, quats = f(scene.log_scales), f(scene.quats)
    for i in range(3):
        cols[f"scale_{i}"] = scales[:, i]
    for i in range(4):
        cols[f"rot_{i}"] = quats[:, i]
    if with_features:
        if scene.features is None:
            raise ValueError("with_features=True but the scene has no features")
        feats = f(scene.features)
        for i in range(feats.shape[1]):
            cols[f"f_id_{i}"] = feats[:, i]
    return cols


def write_ply(
    path: str | Path,
    scene: GaussianScene,
    with_features: bool = False,
    text: bool = False,
    extra: dict[str, np.ndarray] | None = None,
) -> Path:
    """Write ``scene`` atomically as an INRIA PLY; ``f_id_*`` columns only if ``with_features``.

    extra: more vertex properties, name -> [N] array (its dtype is kept, e.g. int32 ``object_id``).
    """
    path = Path(path)
    cols: dict[str, np.ndarray] = dict(scene_to_arrays(scene, with_features))
    dtypes: list[tuple[str, str | np.dtype]] = [(k, "<f4") for k in cols]
    for name, values in (extra or {}).items():
        values = np.asarray(values)
        if name in cols or values.shape != (len(scene),):
            raise ValueError(f"extra property {name!r}: must be a new name with shape [{len(scene)}]")
        cols[name] = values
        dtypes.append((name, values.dtype.newbyteorder("<")))
    arr = np.empty(len(scene), dtype=dtypes)
    for k, v in cols.items():
        arr[k] = v
    comments = []
    if with_features and scene.feature_info is not None:
        comments.append(FEATURE_COMMENT + json.dumps(scene.feature_info.to_dict(), separators=(",", ":")))
    ply = PlyData([PlyElement.describe(arr, "vertex")], text=text, byte_order="<", comments=comments)
    with atomic_path(path) as tmp:
        ply.write(str(tmp))
    return path


def _indexed(names: list[str], prefix: str) -> list[int]:
    return sorted(int(m.group(2)) for n in names if (m := _INDEXED.match(n)) and m.group(1) == prefix)


def read_ply(path: str | Path, drop_invalid: bool = False, keep_invalid: bool = False) -> GaussianScene:
    """Read an INRIA-layout PLY (binary or ascii) into a ``GaussianScene`` (float32, CPU).

    Raises GssegError for an unreadable/truncated file, missing properties (named), an
    inconsistent number of ``f_rest_*`` columns, or NaN/Inf values (unless ``drop_invalid``,
    which drops those rows, or ``keep_invalid``, which keeps them for a caller that needs the
    file's row numbers and handles them itself: ``GaussianScene.invalid_rows``).
    """
    path = Path(path)
    if not path.is_file():
        raise file_error(path, "PLY file not found")
    try:
        ply = PlyData.read(str(path))
        names = [e.name for e in ply.elements]
        if "vertex" not in names:
            raise file_error(path, f"no 'vertex' element (elements: {', '.join(names) or 'none'})")
        vertex = ply["vertex"]
        data = vertex.data
        props = [p.name for p in vertex.properties]
    except GssegError:
        raise
    except Exception as e:  # plyfile raises several types for malformed or truncated files
        raise file_error(path, f"malformed or truncated PLY ({type(e).__name__}: {e})") from None

    missing = [p for p in REQUIRED if p not in props]
    if missing and "packed_position" in props:
        raise file_error(
            path,
            "is a compressed PLY (PlayCanvas layout), not an INRIA 3DGS PLY; decompress it first, "
            f"e.g. `npx @playcanvas/splat-transform {path.name} {path.stem.split('.')[0]}.ply`",
        )
    if missing:
        raise file_error(path, f"not a 3DGS PLY: missing properties {', '.join(missing)}")
    rest_idx = _indexed(props, "f_rest")
    n_rest = len(rest_idx)
    if rest_idx != list(range(n_rest)):
        raise file_error(path, f"f_rest_* properties are not numbered 0..{n_rest - 1}")
    k_rest = n_rest // 3
    if n_rest % 3 or round((k_rest + 1) ** 0.5) ** 2 != k_rest + 1:
        raise file_error(
            path, f"{n_rest} f_rest_* properties is not 3*((d+1)^2-1) for any SH degree d (expected 0, 9, 24 or 45)"
        )
    id_idx = _indexed(props, "f_id")
    if id_idx != list(range(len(id_idx))):
        raise file_error(path, f"f_id_* properties are not numbered 0..{len(id_idx) - 1}")

    n = len(data)
    col = lambda name: np.asarray(data[name], dtype=np.float32)  # noqa: E731
    stack = lambda names: np.stack([col(k) for k in names], axis=1) if names else np.zeros((n, 0), np.float32)  # noqa: E731
    columns = {
        "means": ["x", "y", "z"],
        "sh0": ["f_dc_0", "f_dc_1", "f_dc_2"],
        "shN": [f"f_rest_{i}" for i in range(n_rest)],
        "opacity": ["opacity"],
        "scales": ["scale_0", "scale_1", "scale_2"],
        "quats": ["rot_0", "rot_1", "rot_2", "rot_3"],
        "features": [f"f_id_{i}" for i in id_idx],
    }
    arrays = {k: stack(v) for k, v in columns.items()}

    bad_rows = np.zeros(n, bool)
    bad_props = []
    for names in columns.values():
        for name in names:
            bad = ~np.isfinite(col(name))
            if bad.any():
                bad_rows |= bad
                bad_props.append(name)
    if bad_rows.any() and not keep_invalid:
        if not drop_invalid:
            rows = np.flatnonzero(bad_rows)
            shown = ", ".join(map(str, rows[:5])) + (", ..." if len(rows) > 5 else "")
            raise file_error(
                path,
                f"{len(rows)} of {n} Gaussians have NaN/Inf values (rows {shown}; properties "
                f"{', '.join(bad_props)}); use --drop-invalid (drop_invalid=True) to drop them",
            )
        arrays = {k: v[~bad_rows] for k, v in arrays.items()}
        n = int((~bad_rows).sum())

    t = lambda a: torch.from_numpy(np.ascontiguousarray(a))  # noqa: E731
    shN = arrays["shN"].reshape(n, 3, k_rest).transpose(0, 2, 1)  # channel-major -> [N,K-1,3]
    features, info = None, None
    if id_idx:
        features = t(arrays["features"])
        info = _feature_info(ply.comments, features.shape[1])
    return GaussianScene(
        means=t(arrays["means"]),
        log_scales=t(arrays["scales"]),
        quats=t(arrays["quats"]),
        logit_opacities=t(arrays["opacity"][:, 0]),
        sh0=t(arrays["sh0"].reshape(n, 1, 3)),
        shN=t(shN),
        features=features,
        feature_info=info,
    )


def _feature_info(comments: list[str], dim: int) -> FeatureInfo:
    for c in comments:
        if c.startswith(FEATURE_COMMENT):
            try:
                d = json.loads(c[len(FEATURE_COMMENT) :])
                return FeatureInfo(kind=d["kind"], objective=d["objective"], dim=dim)
            except (ValueError, KeyError):
                break
    return FeatureInfo(kind="embedding", objective="unknown", dim=dim)

"""``RUN/features.pt``: per-Gaussian identity features and what they mean.

The features belong to the Gaussians of ``RUN/scene.ply`` row for row; ``num_gaussians`` is
stored so a scene re-trained after the features were made is detected instead of silently
mismatched.
"""

from __future__ import annotations

import pickle
import re
from dataclasses import dataclass, field
from pathlib import Path
from types import ModuleType
from typing import Any

import numpy as np
import torch
from torch import Tensor

from gsseg.errors import GssegError, file_error
from gsseg.gaussians.scene import FeatureInfo, GaussianScene
from gsseg.utils.atomic import atomic_path

FORMAT_VERSION = 1


@dataclass
class FeatureRecord:
    """Identity features of one run.

    Attributes:
        features: [N,D] float32 per-Gaussian vectors (embeddings or logits, see ``info``).
        info: kind ("embedding" | "logits"), objective name and D.
        settings: the objective's settings (recorded for reproducibility).
        extras: objective-specific data, e.g. class names of an object field or its prompts.
        step: optimisation steps done.
        coverage: [N,2] float32 or None: per Gaussian, its rendering weight over the training
            views at pixels some input mask covers, and its total weight there
            (:func:`gsseg.features.coverage.mask_coverage`); None in records made without masks.
    """

    features: Tensor
    info: FeatureInfo
    settings: dict[str, Any] = field(default_factory=dict)
    extras: dict[str, Any] = field(default_factory=dict)
    step: int = 0
    coverage: Tensor | None = None

    def __post_init__(self) -> None:
        if self.features.dim() != 2 or self.features.shape[1] != self.info.dim:
            raise ValueError(f"features must be [N,{self.info.dim}], got {list(self.features.shape)}")
        if self.coverage is not None and tuple(self.coverage.shape) != (self.features.shape[0], 2):
            raise ValueError(f"coverage must be [{self.features.shape[0]},2], got {list(self.coverage.shape)}")


def save_features(path: str | Path, record: FeatureRecord) -> Path:
    """Write ``record`` atomically to ``path`` (normally ``RUN/features.pt``)."""
    path = Path(path)
    payload = {
        "format_version": FORMAT_VERSION,
        "features": record.features.detach().float().cpu().contiguous(),
        "info": record.info.to_dict(),
        "settings": plain_data(record.settings),
        "extras": plain_data(record.extras),
        "step": int(record.step),
        "num_gaussians": int(record.features.shape[0]),
    }
    if record.coverage is not None:
        payload["coverage"] = record.coverage.detach().float().cpu().contiguous()
    with atomic_path(path) as tmp:
        torch.save(payload, tmp)
    return path


def load_features(path: str | Path) -> FeatureRecord:
    """Read a features file; GssegError when it is missing or not a gsseg features file."""
    path = Path(path)
    if not path.is_file():
        raise file_error(path, "no identity features: train them first (`gsseg train DATA --out RUN --stage features`)")
    try:
        with torch.serialization.safe_globals(_numpy_globals()):
            payload = torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as e:
        found = re.search(r"GLOBAL (\S+)", str(e))
        refused = found.group(1) if found else ""
        raise file_error(
            path,
            "refused: the file holds Python objects other than tensors, numbers and strings"
            + (f" ({refused})" if refused else "")
            + "; it was not written by gsseg, or was "
            "tampered with",
        ) from None
    except Exception as e:  # torch.load raises many types (zip, EOF, ...) for a foreign file
        raise file_error(
            path, f"not a readable gsseg features file ({e.__class__.__name__}: {_first_line(e)})"
        ) from None
    if not isinstance(payload, dict) or not isinstance(payload.get("features"), torch.Tensor):
        raise file_error(path, "not a gsseg features file (no 'features' tensor)")
    try:
        record = FeatureRecord(
            features=payload["features"].float(),
            info=FeatureInfo.from_dict(payload["info"]),
            settings=dict(payload.get("settings", {})),
            extras=dict(payload.get("extras", {})),
            step=int(payload.get("step", 0)),
            coverage=payload["coverage"].float() if payload.get("coverage") is not None else None,
        )
    except (KeyError, TypeError, ValueError, AttributeError) as e:
        raise file_error(path, f"not a gsseg features file ({e.__class__.__name__}: {_first_line(e)})") from None
    return record


def plain_data(value: Any) -> Any:
    """``value`` with numpy scalars / arrays, tuples and paths turned into Python numbers, lists
    and strings, so ``torch.load(weights_only=True)`` reads it back (tensors are kept)."""
    if isinstance(value, dict):
        return {str(k): plain_data(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [plain_data(v) for v in value]
    if isinstance(value, np.ndarray):
        return value.tolist()
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, Path):
        return str(value)
    return value


def _numpy_globals() -> list:
    """The numpy reconstructors older records need (numpy scalars / arrays in settings or extras):
    data only; any other class in the file is still refused."""
    multiarray: ModuleType
    try:
        from numpy._core import multiarray  # numpy >= 2
    except ImportError:
        from numpy.core import multiarray

    dtypes = [getattr(np.dtypes, n) for n in dir(np.dtypes) if n.endswith("DType")]
    return [np.ndarray, np.dtype, multiarray._reconstruct, multiarray.scalar, *dtypes]


def _first_line(e: BaseException) -> str:
    """The first sentence of an exception's message."""
    text = str(e).strip()
    return text.splitlines()[0].split(". ")[0] if text else type(e).__name__


def load_run_scene(
    run_root: str | Path, require_features: bool = True, keep_invalid: bool = False
) -> tuple[GaussianScene, FeatureRecord | None]:
    """The run's Gaussians (``RUN/scene.ply``) with its identity features attached.

    Returns (scene, record); ``scene.features`` is set when a record exists. With
    ``require_features`` a run without features raises a GssegError saying what to run.
    ``keep_invalid``: Gaussians with NaN/Inf values are kept (see ``read_ply``), not refused.
    """
    from gsseg.gaussians.ply import read_ply

    root = Path(run_root)
    ply, feats = root / "scene.ply", root / "features.pt"
    if not root.is_dir():
        raise file_error(root, "run directory not found")
    if not ply.is_file():
        raise file_error(ply, "not found: this run has no trained scene yet (run `gsseg train` first)")
    scene = read_ply(ply, keep_invalid=keep_invalid)
    if not feats.is_file():
        if require_features:
            raise file_error(
                root,
                "this run has no identity features: run "
                "`gsseg train DATA --out RUN --stage features --objective NAME` first",
            )
        return scene, None
    record = load_features(feats)
    if record.features.shape[0] != len(scene):
        raise GssegError(
            f"{feats}: has features for {record.features.shape[0]} Gaussians but {ply} has {len(scene)}; "
            "the scene was re-trained after the features: re-run the features stage"
        )
    return scene.with_features(record.features, record.info), record

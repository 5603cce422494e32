"""Per-view label maps from per-Gaussian labels through a contribution table.

A pixel takes the label with the largest accumulated weight ``sum T_i alpha_i`` over its
contributing Gaussians (unassigned Gaussians, label 0, compete like any label); pixels no
Gaussian covers are 0. The same per-Gaussian labels give every view's map, so the
segmentation is consistent across views by construction.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

from gsseg.errors import GssegError
from gsseg.render.extensions import load_cpu_extension
from gsseg.render.tables import ContributionTable
from gsseg.utils.atomic import atomic_path

MAX_PNG_LABEL = 65535
DENSE_HISTOGRAM_CELLS = 64_000_000  # pixels × labels up to which label maps use a dense weight histogram


def render_label_map(table: ContributionTable, labels: np.ndarray | torch.Tensor, min_alpha: float = 0.0) -> np.ndarray:
    """int32 [H,W] label map of per-Gaussian ``labels [N]`` (0 = unassigned); pixels whose total
    weight (alpha) is below ``min_alpha`` are 0. The C++ CPU kernel when it is built, else numpy
    (a dense weight histogram, or a sort for many labels); all three give the same map."""
    labels = np.asarray(labels.cpu() if isinstance(labels, torch.Tensor) else labels).astype(np.int64)
    h, w = table.height, table.width
    offsets = table.offsets.cpu()
    gids_t = table.gaussian_ids.cpu()
    weights_t = table.weights.cpu().float()
    out = np.zeros(h * w, np.int32)
    if gids_t.numel() == 0:
        return out.reshape(h, w)
    ext = load_cpu_extension()
    pix = None
    if ext is not None:
        best = ext.table_label_argmax(
            offsets.contiguous(), gids_t.contiguous(), weights_t.contiguous(), torch.from_numpy(labels)
        )
        out[:] = best.numpy()
    else:
        pix = np.repeat(np.arange(h * w, dtype=np.int64), np.diff(offsets.numpy()))
        lab = labels[gids_t.numpy().astype(np.int64)]
        n_lab = int(lab.max()) + 1
        weights = weights_t.numpy().astype(np.float64)
        best_of = _best_labels_dense if h * w * n_lab <= DENSE_HISTOGRAM_CELLS else _best_labels_sparse
        out[:] = best_of(pix, lab, weights, h * w, n_lab)
    if min_alpha > 0:
        if pix is None:
            pix = np.repeat(np.arange(h * w, dtype=np.int64), np.diff(offsets.numpy()))
        alpha = np.bincount(pix, weights=weights_t.numpy().astype(np.float64), minlength=h * w)
        out[alpha < min_alpha] = 0
    return out.reshape(h, w)


def _best_labels_dense(pix: np.ndarray, lab: np.ndarray, weights: np.ndarray, n_pix: int, n_lab: int) -> np.ndarray:
    """[n_pix] label of each pixel's largest accumulated weight (ties: smaller label; no entry: 0),
    from a dense [n_pix, n_lab] weight histogram (one pass, no sort)."""
    keys = pix * n_lab + lab
    acc = np.bincount(keys, weights=weights, minlength=n_pix * n_lab).reshape(n_pix, n_lab)
    best = acc.argmax(axis=1)  # first maximum: the smaller label on ties
    zero = acc[np.arange(n_pix), best] <= 0
    if zero.any():  # every weight of the pixel is 0: the smallest label present (as the sparse path)
        present = np.bincount(keys, minlength=n_pix * n_lab).reshape(n_pix, n_lab)[zero] > 0
        best[zero] = np.where(present.any(axis=1), present.argmax(axis=1), 0)
    return best


def _best_labels_sparse(pix: np.ndarray, lab: np.ndarray, weights: np.ndarray, n_pix: int, n_lab: int) -> np.ndarray:
    """As :func:`_best_labels_dense`, over the (pixel, label) pairs present (sorts them; for many labels)."""
    out = np.zeros(n_pix, np.int64)
    keys, inverse = np.unique(pix * n_lab + lab, return_inverse=True)
    acc = np.bincount(inverse.reshape(-1), weights=weights, minlength=len(keys))
    key_pix, key_lab = keys // n_lab, keys % n_lab
    # keys are sorted by pixel; pick each pixel's largest accumulated weight (ties: smaller label)
    order = np.lexsort((key_lab, -acc, key_pix))
    first = np.ones(len(order), bool)
    first[1:] = key_pix[order][1:] != key_pix[order][:-1]
    best = order[first]
    out[key_pix[best]] = key_lab[best]
    return out


def write_label_png(path: str | Path, label_map: np.ndarray) -> Path:
    """Write ``label_map [H,W]`` atomically as a uint16 PNG."""
    from PIL import Image

    path = Path(path)
    if label_map.size and int(label_map.max()) > MAX_PNG_LABEL:
        raise GssegError(f"{path}: {int(label_map.max())} segments do not fit a uint16 PNG; use a coarser cut")
    with atomic_path(path) as tmp:
        Image.fromarray(np.ascontiguousarray(label_map.astype(np.uint16))).save(tmp, format="PNG")
    return path


def read_label_png(path: str | Path) -> np.ndarray:
    """int32 [H,W] labels of a uint16 label PNG."""
    from PIL import Image

    path = Path(path)
    if not path.is_file():
        raise GssegError(f"{path}: label map not found")
    with Image.open(path) as im:
        return np.asarray(im).astype(np.int32)

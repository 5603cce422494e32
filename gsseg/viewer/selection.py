"""Selection state of the viewer: objects made of positive / negative clicks, a threshold,
undo and clear.

A click becomes a score in [0,1] for every Gaussian (``gsseg.segment.scores``: cosine for
embeddings, class probability for logits, the same functions ``gsseg segment`` uses); an
object's score is the union of its positive clicks minus its negative ones
(``combine_scores``); a Gaussian belongs to the object with the highest score when that score
reaches the threshold. Objects are immutable, so undo snapshots are cheap tuples.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import torch
from torch import Tensor

from gsseg.errors import GssegError
from gsseg.segment.scores import DEFAULT_SELECT_THRESHOLD, combine_scores, feature_space, similarity
from gsseg.viewer.display import id_colors


class FeatureScorer:
    """Scores from identity features.

    features: [N,D] raw features of ``kind`` ("embedding" | "logits"); supervised: [N] bool, the
    Gaussians the input masks trained (``gsseg.features.coverage``): only they make a query and
    score above 0, as in ``gsseg segment`` (None: all).
    """

    def __init__(self, features: Tensor, kind: str, supervised: np.ndarray | None = None) -> None:
        self.features = features.detach().float().cpu()
        self.kind = kind
        self.space = feature_space(self.features, kind)
        self.supervised = None if supervised is None else np.asarray(supervised, bool)

    def query(self, ids: np.ndarray, weights: np.ndarray) -> Tensor:
        """[D] query in the feature space for a click: the features of the ray's Gaussians ``ids [K]``
        composited with their weights ``T·α [K]`` (what a rendered pixel shows; the viewer passes
        the picked surface only), then mapped like a pixel click in ``gsseg segment`` (unit vector / softmax).
        Unsupervised Gaussians on the ray are left out unless the ray holds nothing else."""
        ids, weights = np.asarray(ids, np.int64), np.asarray(weights, np.float32)
        if self.supervised is not None and self.supervised[ids].any():
            ids, weights = ids[self.supervised[ids]], weights[self.supervised[ids]]
        idx = torch.as_tensor(ids)
        w = torch.as_tensor(weights)[:, None]
        raw = (self.features[idx] * w).sum(0, keepdim=True) / w.sum().clamp_min(1e-12)
        return feature_space(raw, self.kind)[0]

    def scores(self, ids: np.ndarray, weights: np.ndarray) -> np.ndarray:
        """[N] float32 score of every Gaussian against the click ray's query."""
        scores = similarity(self.space, self.query(ids, weights), self.kind).numpy().astype(np.float32)
        return scores if self.supervised is None else scores * self.supervised


class SegmentScorer:
    """Scores from a cut: 1 for the Gaussians in the clicked Gaussian's segment, else 0.

    labels: [N] int per-Gaussian segment ids (0 = unassigned, never selected).
    """

    def __init__(self, labels: np.ndarray) -> None:
        self.labels = np.asarray(labels)

    def scores(self, picked: int) -> np.ndarray:
        lab = self.labels[picked]
        if lab == 0:
            return np.zeros(len(self.labels), np.float32)
        return (self.labels == lab).astype(np.float32)


@dataclass(frozen=True)
class ClickRecord:
    """One click: the Gaussian it picked, its sign and the scores [N] it gives every Gaussian."""

    gaussian: int
    positive: bool
    scores: np.ndarray = field(repr=False)


class SelectedObject:
    """An object being selected: a colour [3] and its clicks (treated as immutable)."""

    def __init__(self, color: np.ndarray, clicks: tuple[ClickRecord, ...] = ()) -> None:
        self.color = np.asarray(color, np.float32)
        self.clicks = clicks
        self._scores: np.ndarray | None = None

    @property
    def has_positive(self) -> bool:
        return any(c.positive for c in self.clicks)

    def with_click(self, click: ClickRecord) -> "SelectedObject":
        return SelectedObject(self.color, self.clicks + (click,))

    def scores(self) -> np.ndarray | None:
        """[N] combined score, or None while the object has no positive click."""
        if not self.has_positive:
            return None
        if self._scores is None:
            pos = [torch.from_numpy(c.scores) for c in self.clicks if c.positive]
            neg = [torch.from_numpy(c.scores) for c in self.clicks if not c.positive]
            self._scores = combine_scores(pos, neg).numpy()
        return self._scores


def default_threshold(kind: str | None) -> float:
    """The selection threshold ``gsseg segment`` uses for this feature kind."""
    return float(DEFAULT_SELECT_THRESHOLD.get(kind or "embedding", 0.5))


class Selection:
    """Objects selected in a scene of ``n`` Gaussians, with undo.

    ``current`` is the object new clicks go to; ``owner()`` gives the per-Gaussian result.
    """

    def __init__(
        self, n: int, threshold: float = DEFAULT_SELECT_THRESHOLD["embedding"], max_history: int = 200
    ) -> None:
        self.n = int(n)
        self.threshold = float(threshold)
        self.objects: tuple[SelectedObject, ...] = ()
        self.current = -1
        self.max_history = max_history
        self._history: list[tuple[tuple[SelectedObject, ...], int]] = []
        self._owner: np.ndarray | None = None

    # ------------------------------------------------------------------ edits
    def _push(self) -> None:
        self._history.append((self.objects, self.current))
        del self._history[: -self.max_history]

    def _set(self, objects: tuple[SelectedObject, ...], current: int) -> None:
        self.objects, self.current = objects, current
        self._owner = None

    def add_click(self, click: ClickRecord) -> None:
        """Add ``click`` to the current object (starting the first object if there is none).
        GssegError for a negative click on an object without a positive one."""
        if click.scores.shape != (self.n,):
            raise ValueError(f"click scores must be [{self.n}], got {click.scores.shape}")
        objects, current = self.objects, self.current
        if current < 0:
            objects, current = (SelectedObject(_object_color(0)),), 0
        if not click.positive and not objects[current].has_positive:
            raise GssegError("a negative click only removes from an object: click the object first (positive click)")
        self._push()
        objects = objects[:current] + (objects[current].with_click(click),) + objects[current + 1 :]
        self._set(objects, current)

    def new_object(self) -> bool:
        """Start a new object for the next clicks; False (nothing done) when the current one is still empty."""
        if self.current >= 0 and not self.objects[self.current].clicks:
            return False
        self._push()
        k = len(self.objects)
        self._set(self.objects + (SelectedObject(_object_color(k)),), k)
        return True

    def undo(self) -> bool:
        """Revert the last edit (click, new object or clear); False when there is nothing to undo."""
        if not self._history:
            return False
        objects, current = self._history.pop()
        self._set(objects, current)
        return True

    def clear(self) -> bool:
        """Remove every object (undoable); False when there was nothing to clear."""
        if not self.objects:
            return False
        self._push()
        self._set((), -1)
        return True

    def set_threshold(self, threshold: float) -> None:
        if float(threshold) != self.threshold:
            self.threshold = float(threshold)
            self._owner = None

    # ------------------------------------------------------------------ results
    def owner(self) -> np.ndarray:
        """[N] int32: index of the object owning each Gaussian (highest score >= threshold), -1 for none."""
        if self._owner is None:
            owner = np.full(self.n, -1, np.int32)
            best = np.full(self.n, -np.inf, np.float32)
            for k, obj in enumerate(self.objects):
                s = obj.scores()
                if s is None:
                    continue
                take = (s >= self.threshold) & (s > best)
                owner[take] = k
                best = np.where(take, s, best)
            self._owner = owner
        return self._owner

    def selected(self) -> np.ndarray:
        """[N] bool: Gaussians in any object."""
        return self.owner() >= 0

    def counts(self) -> list[int]:
        """Gaussians owned by each object."""
        return np.bincount(self.owner()[self.owner() >= 0], minlength=len(self.objects)).tolist()

    def colors(self) -> np.ndarray:
        """[K,3] object colours."""
        return np.stack([o.color for o in self.objects]) if self.objects else np.zeros((0, 3), np.float32)

    @property
    def num_clicks(self) -> int:
        return sum(len(o.clicks) for o in self.objects)


def _object_color(k: int) -> np.ndarray:
    """Colour of the k-th object (0-based): the colour its id k+1 gets in an export manifest."""
    return id_colors(np.array([k + 1]))[0]

"""Training-free lifting by voting (``vote``): a fast baseline for object and instance labels.

Every Gaussian accumulates its rendering weight ``T·α`` per label over every pixel of every
training view whose label map is consistent across views (label k means the same object in
all views): the propagated prompt masks of :mod:`gsseg.prompts`, a folder of label
PNGs (``labels_dir/<stem>.png``, e.g. ground truth) or a mask store imported with the
``labels`` source. The normalised histogram is the result; it is stored as log-probabilities
(kind "logits") so that softmax gives the histogram back and argmax gives the label.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Callable, ClassVar

import numpy as np
import torch
from torch import Tensor

from gsseg.errors import GssegError, file_error
from gsseg.masks.prompt_consensus import accumulate_votes
from gsseg.objectives.base import FeatureContext, Objective, PixelBatch, TableLookup
from gsseg.prompts.spec import PromptOptions, split_prompt_settings

__all__ = ["VoteObjective", "accumulate_votes", "vote_probabilities"]

LOG_FLOOR = 1e-8


def vote_probabilities(hist: Tensor, background_bias: float = 1.0, prior: float = 1e-6) -> Tensor:
    """Normalised votes [N,D]: channel 0 (background) scaled by ``background_bias`` plus a
    ``prior`` pseudo-weight, so Gaussians seen by no pixel come out as background."""
    h = hist.clone()
    h[:, 0] = h[:, 0] * background_bias + prior
    return h / h.sum(dim=1, keepdim=True)


def read_label_dir(folder: Path, view: str, height: int, width: int) -> np.ndarray | None:
    """``folder/<view>.png`` as int64 [height,width] (nearest resize), or None if absent."""
    from gsseg.masks.sources.labels import read_label_png

    path = folder / f"{view}.png"
    if not path.is_file():
        return None
    lab = read_label_png(path)
    if lab.shape != (height, width):
        rows = np.minimum(((np.arange(height) + 0.5) * lab.shape[0] / height).astype(np.int64), lab.shape[0] - 1)
        cols = np.minimum(((np.arange(width) + 0.5) * lab.shape[1] / width).astype(np.int64), lab.shape[1] - 1)
        lab = lab[rows[:, None], cols[None, :]]
    return lab


def store_label_map(vm, map_index: int) -> np.ndarray | None:
    """Consistent labels of a ``labels``-source mask file: [H,W] int64, the imported value of the
    map ``map_index`` (0 = none); None when the file does not carry imported values."""
    pairs = vm.info.get("mask_labels") if vm.source == "labels" else None
    if not pairs:
        return None
    pairs = np.asarray(pairs, dtype=np.int64).reshape(-1, 2)
    sel = np.flatnonzero(pairs[:, 0] == map_index)
    value_of_patch = np.zeros(vm.n_patches, dtype=np.int64)
    for m in sel:
        value_of_patch[vm.membership[m]] = pairs[m, 1]
    return value_of_patch[vm.patch_index]


@dataclass
class VoteSettings:
    """Where consistent labels come from (first that applies): prompts (clicks / prompt file,
    propagated per view), ``labels_dir`` (``<stem>.png`` label maps, 0 = background), or the
    mask store when it was imported with the ``labels`` source (map ``store_map``).

    background_bias multiplies background votes (< 1 favours objects); prior: pseudo-weight of
    background for Gaussians nobody votes for.
    """

    labels_dir: str | None = None
    """<stem>.png label maps consistent across views (0 = background)."""
    store_map: int = 0
    """Map of a labels-source mask store whose imported values are the labels."""
    background_bias: float = 1.0
    """Multiplies background votes (< 1 favours objects)."""
    prior: float = 1e-6
    """Pseudo-weight of background for Gaussians nobody votes for."""
    prompt: PromptOptions = field(default_factory=PromptOptions)


class VoteObjective(Objective):
    """Per-Gaussian label histograms from consistent per-view labels (no optimisation).

    ``training_free``: the features stage calls :meth:`solve` with its contribution tables
    instead of running optimisation steps.
    """

    name: ClassVar[str] = "vote"
    kind: ClassVar[str] = "logits"
    training_free: ClassVar[bool] = True

    def __init__(self, **settings: Any) -> None:
        own, prompt = split_prompt_settings(settings)
        self.cfg = VoteSettings(**own, prompt=prompt)
        if self.cfg.background_bias < 0 or self.cfg.prior <= 0:
            raise GssegError("vote: background_bias must be >= 0 and prior > 0")
        self.channel_values: list[int] = []  # original label value of each channel (0 = background)
        self.source = ""
        self._labels_of: Callable[[str], np.ndarray | None] | None = None
        self._extras: dict[str, Any] = {}
        if self.cfg.prompt.given():  # bad clicks / prompt files fail here, at construction
            self.channel_values = list(range(self.cfg.prompt.spec().n_objects + 1))

    def feature_dim(self) -> int:
        return max(len(self.channel_values), 2)

    def init_features(self, n: int, generator: torch.Generator | None = None) -> Tensor:
        return torch.zeros(n, self.feature_dim())

    def settings(self) -> dict[str, Any]:
        d = asdict(self.cfg)
        prompt = d.pop("prompt")
        return {**d, **prompt}

    def extras(self) -> dict[str, Any]:
        return {
            "source": self.source,
            "channel_labels": list(self.channel_values),
            "values": "log of the normalised vote histogram",
            **self._extras,
        }

    # ------------------------------------------------------------------ labels
    def prompt_options(self) -> PromptOptions | None:
        return self.cfg.prompt if self.cfg.prompt.given() else None

    def prepare(self, ctx: FeatureContext) -> None:
        """Choose the label source and the channel of every label value (prompts: the trainer's
        propagated ``ctx.prompts``)."""
        cfg = self.cfg
        if cfg.prompt.given():
            if ctx.prompts is None:
                raise GssegError("vote: the trainer handed over no propagated prompts (ctx.prompts)")
            prompts = ctx.prompts
            names = prompts.spec.object_names()
            self.channel_values = list(range(len(names) + 1))
            self.source = "prompts"
            self._extras = {"classes": ["background", *names], "prompts": prompts.summary()}
            self._labels_of = lambda v: prompts.labels.get(v)
            return
        if cfg.labels_dir:
            folder = Path(cfg.labels_dir)
            if not folder.is_dir():
                raise file_error(folder, "label folder not found (expected <stem>.png label maps)")
            self._labels_of = lambda v: read_label_dir(folder, v, ctx.height, ctx.width)
            self.source = f"labels_dir:{folder}"
        else:

            def from_store(v: str) -> np.ndarray | None:
                vm = ctx.masks(v)
                return None if vm is None else store_label_map(vm, cfg.store_map)

            self._labels_of = from_store
            self.source = "mask store (labels source)"
        values: set[int] = {0}
        seen = 0
        for v in ctx.views:
            lab = self._labels_of(v)
            if lab is not None:
                values.update(int(x) for x in np.unique(lab))
                seen += 1
        if seen == 0:
            where = cfg.labels_dir or f"{ctx.dataset.masks_dir} (needs `gsseg masks DATA --source labels`)"
            raise GssegError(
                f"{where}: vote found no cross-view-consistent labels for any training view; give "
                "--click/--prompts, --vote-labels DIR, or import consistent labels"
            )
        self.channel_values = sorted(v for v in values if v >= 0)
        self._extras = {"classes": ["background" if v == 0 else f"label_{v}" for v in self.channel_values]}

    def view_channels(self, view: str) -> np.ndarray | None:
        """Channel of every pixel of ``view`` [H,W] int64 (-1 = no vote), or None without labels."""
        if self._labels_of is None:
            raise RuntimeError("call prepare() first")
        lab = self._labels_of(view)
        if lab is None:
            return None
        lut_vals = np.asarray(self.channel_values, dtype=np.int64)
        idx = np.searchsorted(lut_vals, lab)
        idx = np.clip(idx, 0, len(lut_vals) - 1)
        return np.where((lab >= 0) & (lut_vals[idx] == lab), idx, -1)

    # ------------------------------------------------------------------ solve
    def solve(self, ctx: FeatureContext, table_of: TableLookup, n_gaussians: int) -> Tensor:
        """Vote over every training view: returns log-probabilities [N,D].

        table_of(view) -> that view's ContributionTable at the table resolution.
        """
        hist = torch.zeros(n_gaussians, self.feature_dim(), dtype=torch.float64, device=ctx.device)
        used = 0
        for view in ctx.views:
            channels = self.view_channels(view)
            if channels is None:
                continue
            accumulate_votes(table_of(view), torch.from_numpy(channels.reshape(-1)), hist)
            used += 1
        self._extras["voted_views"] = used
        probs = vote_probabilities(hist, self.cfg.background_bias, self.cfg.prior)
        return probs.clamp_min(LOG_FLOOR).log().float()

    # Training-free: the optimisation interface has nothing to sample.
    def sample(self, view: str, ctx: FeatureContext, generator: torch.Generator) -> PixelBatch | None:
        return None

    def loss(self, batch: PixelBatch, rendered: dict[str, Tensor], features: Tensor) -> tuple[Tensor, dict[str, float]]:
        raise RuntimeError("the vote objective is training-free: call solve()")

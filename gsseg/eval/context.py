"""What every run metric reads: the dataset, the run's scene and features, contribution
tables of the evaluation views, and the protocol settings."""

from __future__ import annotations

from dataclasses import dataclass
from functools import cached_property
from typing import Any

import numpy as np
import torch

from gsseg.errors import GssegError
from gsseg.run.run_dir import RunDir


@dataclass
class EvalSettings:
    """Protocol settings.

    samples: pixels (pairs) drawn per ground-truth segment (NC, SI, VC); seed: the seed of these draws;
    min_size: ground-truth segments smaller than this many pixels are not scored;
    cuts: "computed" (default: ``max_cuts`` cuts spread over the run's hierarchy, since the UFF
    protocol maximises over thresholds), "segments" (the cuts in RUN/segments) or "auto"
    (RUN/segments if any, else computed); max_cuts: cuts computed from the hierarchy; min_alpha: rendered pixels with
    less accumulated opacity are unassigned; depth_tolerance: relative depth agreement for
    visibility in VC; hierarchy_k / spatial_weight / linkage: the hierarchy's graph neighbours, spatial share of
    its edge distances and linkage (``gsseg segment --k / --spatial-weight / --linkage``);
    protocol: "official" (the papers' evaluation code, ``gsseg.eval.official``) or "gsseg" (gsseg's
    own variants); exact: official NC / SI / VC as their exact expectation instead of ``samples`` draws.
    """

    samples: int = 100
    seed: int = 0
    min_size: int = 20
    cuts: str = "computed"
    max_cuts: int = 32
    min_alpha: float = 0.5
    depth_tolerance: float = 0.02
    hierarchy_k: int = 10
    spatial_weight: float = 0.0
    linkage: str = "average"
    pixel_cuts: bool = True
    protocol: str = "official"
    exact: bool = False

    def validate(self) -> None:
        if self.samples < 1 or self.min_size < 1 or self.max_cuts < 1:
            raise GssegError("samples, min_size and max_cuts must be >= 1")
        if self.cuts not in ("auto", "segments", "computed"):
            raise GssegError(f"cuts must be auto, segments or computed, got {self.cuts!r}")
        if self.protocol not in ("official", "gsseg"):
            raise GssegError(f"protocol must be official or gsseg, got {self.protocol!r}")


class EvalContext:
    """One evaluation: ``ds`` (SceneDataset), ``run`` (RunDir), ``scene`` (GaussianScene),
    ``record`` (FeatureRecord or None), renderer ``backend``, a rich ``progress`` or None."""

    def __init__(
        self, ds, run: RunDir, scene, record, settings: EvalSettings, backend: str = "auto", progress=None
    ) -> None:
        self.ds = ds
        self.run = run
        self.scene = scene
        self.record = record
        self.settings = settings
        self.backend = backend
        self.progress = progress
        self.timings: dict[str, float] = {}

    # views ------------------------------------------------------------------------------------

    @cached_property
    def partners(self) -> dict[str, str]:
        """Test view -> its rotated partner (``pairs.json``)."""
        return dict(self.ds.pairs)

    @cached_property
    def eval_views(self) -> list[str]:
        """Test views scored by the single-view protocols: every test view that is not only the
        rotated partner of another one."""
        partner_only = set(self.partners.values()) - set(self.partners)
        return [v for v in self.ds.names("test") if v not in partner_only]

    def gt(self, view: str, level: str) -> np.ndarray | None:
        return self.ds.gt(view, level) if level in self.ds.gt_levels else None

    # rendering --------------------------------------------------------------------------------

    @cached_property
    def tables(self):
        """Contribution tables of every view (train and test), built on demand."""
        from gsseg.render import TableCache

        s = self.scene
        return TableCache(
            s.means, s.quats, s.scales, s.opacities, self.ds.cameras("all"), max_tables=4, backend=self.backend
        )

    def table(self, view: str):
        return self.tables.get(view)

    def composite(self, view: str, values: torch.Tensor) -> tuple[np.ndarray, np.ndarray]:
        """Per-Gaussian ``values [N,D]`` composited over every pixel of ``view``:
        ([H,W,D] float32 sum of w_i·v_i, [H,W] alpha)."""
        from gsseg.render import render_features_from_table

        table = self.table(view)
        pix = torch.arange(table.width * table.height, dtype=torch.int64)
        ones = torch.ones(values.shape[0], 1, dtype=torch.float32)
        out = render_features_from_table(table.to("cpu"), pix, torch.cat([values.float().cpu(), ones], dim=1))
        maps = out.reshape(table.height, table.width, -1).numpy()
        return maps[..., :-1], maps[..., -1]

    def task(self, name: str, total: int):
        """A progress task (or None); advance with :meth:`advance`."""
        if self.progress is None:
            return None
        return self.progress.add_task(name, total=total, info="", unit="view")

    def advance(self, task, info: str = "") -> None:
        if self.progress is not None and task is not None:
            self.progress.update(task, advance=1, info=info)

    @property
    def kind(self) -> str | None:
        return None if self.record is None else self.record.info.kind

    @property
    def objective(self) -> str | None:
        return None if self.record is None else self.record.info.objective

    def extras(self) -> dict[str, Any]:
        return {} if self.record is None else dict(self.record.extras)

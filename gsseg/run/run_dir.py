"""Run directory layout: config, checkpoints, scene PLY, features, segments, scores.

```
RUN/config.json          TrainConfig (absolute dataset path, stage settings)
RUN/checkpoints/<stage>_<step>.pt
RUN/scene.ply            vanilla INRIA PLY written at the end of the RGB stage
RUN/rgb.json             RGB stage summary: steps, Gaussian count, background colour to render over,
                         test-view PSNR (test_psnr), warnings
RUN/features.pt          identity features (features stage)
RUN/segments/<cut>/...   segmentation outputs
RUN/scores/<stem>.npy    click-query scores
```
"""

from __future__ import annotations

import json
import re
from pathlib import Path

from gsseg.config.train import TrainConfig
from gsseg.errors import file_error
from gsseg.utils.atomic import write_json

_CKPT = re.compile(r"^(?P<stage>[a-z_]+)_(?P<step>\d+)\.pt$")


class RunDir:
    """Paths and small helpers for one run directory (``root``)."""

    def __init__(self, root: str | Path) -> None:
        self.root = Path(root)

    @property
    def config_path(self) -> Path:
        return self.root / "config.json"

    @property
    def checkpoints(self) -> Path:
        return self.root / "checkpoints"

    @property
    def scene_ply(self) -> Path:
        return self.root / "scene.ply"

    @property
    def rgb_summary(self) -> Path:
        return self.root / "rgb.json"

    def render_background(self) -> tuple[float, float, float]:
        """RGB colour the scene is rendered over: the RGB stage's (possibly learned) one, else the config's."""
        if self.rgb_summary.is_file():
            try:
                bg = json.loads(self.rgb_summary.read_text())["background"]
                return (float(bg[0]), float(bg[1]), float(bg[2]))
            except (ValueError, KeyError, IndexError, TypeError):
                raise file_error(
                    self.rgb_summary, "malformed RGB stage summary (delete it and re-run `gsseg train`)"
                ) from None
        r, g, b = self.read_config().rgb.background
        return (float(r), float(g), float(b))

    @property
    def features_pt(self) -> Path:
        return self.root / "features.pt"

    @property
    def segments(self) -> Path:
        return self.root / "segments"

    @property
    def scores(self) -> Path:
        return self.root / "scores"

    def has_config(self) -> bool:
        return self.config_path.is_file()

    def write_config(self, cfg: TrainConfig) -> None:
        write_json(self.config_path, cfg.to_dict())

    def read_config(self) -> TrainConfig:
        """The recorded config; GssegError if RUN is not a run directory or the file is malformed."""
        if not self.root.is_dir():
            raise file_error(self.root, "run directory not found")
        if not self.has_config():
            raise file_error(self.config_path, "not found: not a gsseg run directory (run `gsseg train` first)")
        try:
            cfg = TrainConfig.from_dict(json.loads(self.config_path.read_text()))
            cfg.rgb.validate()
            cfg.features.validate()
            return cfg
        except json.JSONDecodeError as e:
            raise file_error(self.config_path, f"malformed JSON at line {e.lineno} column {e.colno}: {e.msg}") from None
        except RecursionError:
            raise file_error(self.config_path, "malformed JSON: nested too deeply") from None
        except (TypeError, ValueError, KeyError) as e:
            raise file_error(self.config_path, f"invalid run config ({e})") from None

    def dataset_path(self) -> Path:
        return Path(self.read_config().dataset)

    def checkpoint_path(self, stage: str, step: int) -> Path:
        return self.checkpoints / f"{stage}_{step:07d}.pt"

    def list_checkpoints(self, stage: str) -> list[tuple[int, Path]]:
        """(step, path) of the stage's checkpoints, oldest first."""
        if not self.checkpoints.is_dir():
            return []
        found = []
        for p in self.checkpoints.iterdir():
            m = _CKPT.match(p.name)
            if m and m.group("stage") == stage:
                found.append((int(m.group("step")), p))
        return sorted(found)

    def latest_checkpoint(self, stage: str) -> Path | None:
        ckpts = self.list_checkpoints(stage)
        return ckpts[-1][1] if ckpts else None

    def prune_checkpoints(self, stage: str, keep: int) -> None:
        """Delete all but the ``keep`` newest checkpoints of ``stage``."""
        for _, p in self.list_checkpoints(stage)[:-keep] if keep > 0 else []:
            p.unlink(missing_ok=True)

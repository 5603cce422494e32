"""Features-stage runs of several objectives on one tiny scene, in this process or under torchrun.

``python -m tests.helpers.objective_runs SPEC.json`` (alone, or as every rank of
``torchrun --nproc-per-node N``) trains, for every entry of the spec's ``runs``, the features
stage of that objective in ``out/<name>`` (a run directory holding ``scene.ply``). The spec:
``{"data": DATA, "out": DIR, "iters": I, "views_per_step": V, "seed": S,
"runs": {name: [objective, settings]}}``.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

import torch


def train_objective_runs(spec: dict[str, Any], ds=None, callbacks=None, **stage: Any) -> list[dict]:
    """Train every run of ``spec`` (see the module docstring; ``data`` may be left out when ``ds``
    is given) with the other ``FeatureStageConfig`` fields in ``stage``; the stage summaries."""
    from gsseg.data import load_dataset
    from gsseg.run.run_dir import RunDir
    from gsseg.train.pipeline import StageOptions, run_training

    ds = ds if ds is not None else load_dataset(spec["data"])
    summaries = []
    for name, (objective, settings) in spec["runs"].items():
        run = RunDir(Path(spec["out"]) / name)
        cfg = run.read_config()
        cfg.stages = ["features"]
        cfg.features.objective, cfg.features.objective_settings = objective, dict(settings)
        cfg.features.iters, cfg.features.views_per_step = int(spec["iters"]), int(spec["views_per_step"])
        cfg.features.seed = int(spec["seed"])
        for key, value in stage.items():
            setattr(cfg.features, key, value)
        opts = StageOptions(show_progress=False, callbacks=list(callbacks or []))
        summaries.append(run_training(cfg, run, opts, ds=ds)[0])
    return summaries


if __name__ == "__main__":
    torch.set_num_threads(1)
    train_objective_runs(json.loads(Path(sys.argv[1]).read_text()))

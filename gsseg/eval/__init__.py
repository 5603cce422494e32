"""Evaluation of a run: test-view PSNR and the papers' segmentation metrics (``gsseg eval``).

``metrics/`` holds the pure numpy metric functions; ``lifted`` applies them to a run's
features, ``input_masks`` to the input 2D masks, ``run_eval`` ties them to a run directory.
"""

from gsseg.eval.context import EvalContext, EvalSettings
from gsseg.eval.psnr import psnr_per_view, render_view
from gsseg.eval.run_eval import check_views, evaluate_run, metric_functions

__all__ = [
    "EvalContext",
    "EvalSettings",
    "check_views",
    "evaluate_run",
    "metric_functions",
    "psnr_per_view",
    "render_view",
]

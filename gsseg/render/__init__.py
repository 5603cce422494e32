"""Differentiable Gaussian rasterization: RGB, alpha, depth and identity features.

``render`` dispatches to a pure-PyTorch reference, a C++ CPU kernel (OpenMP) or the CUDA
backend; contribution tables give the frozen-geometry fast path for feature training.
"""

from gsseg.render.api import RenderOutput, render
from gsseg.render.tables import (
    ContributionTable,
    TableCache,
    build_contribution_table,
    render_features_from_table,
)

__all__ = [
    "ContributionTable",
    "RenderOutput",
    "TableCache",
    "build_contribution_table",
    "render",
    "render_features_from_table",
]

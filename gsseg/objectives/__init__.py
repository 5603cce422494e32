"""Identity objectives: what per-Gaussian vectors are trained to mean (see ``base.Objective``)."""

from gsseg.objectives.base import FeatureContext, Objective, PixelBatch
from gsseg.objectives.registry import OBJECTIVES, make_objective, objective_names

__all__ = ["OBJECTIVES", "FeatureContext", "Objective", "PixelBatch", "make_objective", "objective_names"]

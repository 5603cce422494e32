"""Gaussian scenes: the parameter container, INRIA PLY I/O and initialisation."""

from gsseg.gaussians.init import init_from_dataset, init_from_ply, init_from_points, rgb_to_sh, sh_to_rgb
from gsseg.gaussians.ply import read_ply, write_ply
from gsseg.gaussians.scene import PARAM_KEYS, FeatureInfo, GaussianScene

__all__ = [
    "FeatureInfo",
    "GaussianScene",
    "PARAM_KEYS",
    "init_from_dataset",
    "init_from_ply",
    "init_from_points",
    "read_ply",
    "rgb_to_sh",
    "sh_to_rgb",
    "write_ply",
]

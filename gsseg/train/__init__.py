"""Training stages (RGB now), their configs, checkpoints, losses and the run directory."""

from gsseg.train.config import DensifyConfig, LearningRates, RGBConfig, TrainConfig
from gsseg.train.run_dir import RunDir

__all__ = ["DensifyConfig", "LearningRates", "RGBConfig", "RunDir", "TrainConfig"]

"""Datasets: posed images (transforms JSON or COLMAP) with optional depth, labels and points."""

from gsseg.data.cameras import Cameras, intrinsics
from gsseg.data.dataset import SceneDataset, load_dataset

__all__ = ["Cameras", "SceneDataset", "intrinsics", "load_dataset"]

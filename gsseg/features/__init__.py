"""Identity features of a run: the record on disk (``RUN/features.pt``) and loading a run's
geometry together with its features."""

from gsseg.features.record import FeatureRecord, load_features, load_run_scene, save_features

__all__ = ["FeatureRecord", "load_features", "load_run_scene", "save_features"]

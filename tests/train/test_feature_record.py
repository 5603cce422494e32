"""RUN/features.pt: round trip, mismatch with the scene, and clear errors."""

import pytest
import torch

from gsseg.errors import GssegError
from gsseg.features import FeatureRecord, load_features, load_run_scene, save_features
from gsseg.gaussians.ply import write_ply
from gsseg.gaussians.scene import FeatureInfo, GaussianScene


def _scene(n: int) -> GaussianScene:
    g = torch.Generator().manual_seed(0)
    return GaussianScene(
        means=torch.randn(n, 3, generator=g),
        log_scales=torch.randn(n, 3, generator=g) - 3,
        quats=torch.randn(n, 4, generator=g),
        logit_opacities=torch.randn(n, generator=g),
        sh0=torch.randn(n, 1, 3, generator=g),
        shN=torch.zeros(n, 0, 3),
    )


def test_round_trip_keeps_everything(tmp_path):
    rec = FeatureRecord(torch.randn(7, 5), FeatureInfo("logits", "clustering", 5), {"k": 5}, {"names": ["a"]}, 12)
    save_features(tmp_path / "features.pt", rec)
    back = load_features(tmp_path / "features.pt")
    assert torch.equal(back.features, rec.features)
    assert back.info == rec.info and back.settings == {"k": 5} and back.extras == {"names": ["a"]} and back.step == 12


def test_load_run_scene_attaches_features_and_detects_mismatch(tmp_path):
    write_ply(tmp_path / "scene.ply", _scene(6))
    with pytest.raises(GssegError, match="no identity features"):
        load_run_scene(tmp_path)
    scene, rec = load_run_scene(tmp_path, require_features=False)
    assert rec is None and scene.features is None and len(scene) == 6

    save_features(
        tmp_path / "features.pt", FeatureRecord(torch.randn(6, 3), FeatureInfo("embedding", "contrastive", 3))
    )
    scene, rec = load_run_scene(tmp_path)
    assert scene.features.shape == (6, 3) and scene.feature_info.objective == "contrastive"

    save_features(
        tmp_path / "features.pt", FeatureRecord(torch.randn(4, 3), FeatureInfo("embedding", "contrastive", 3))
    )
    with pytest.raises(GssegError, match="4 Gaussians but"):
        load_run_scene(tmp_path)


def test_garbage_file_is_a_clear_error(tmp_path):
    (tmp_path / "features.pt").write_bytes(b"not a torch file")
    with pytest.raises(GssegError, match="features.pt"):
        load_features(tmp_path / "features.pt")

"""Resuming a run: one merge by the config fields' resume rules (gsseg/utils/config_fields.py)."""

from __future__ import annotations

from gsseg.config.train import TrainConfig
from gsseg.utils.config_fields import APPLY, KEEP, RESTART, leaves, merge_resumed


def _recorded() -> TrainConfig:
    cfg = TrainConfig(dataset="/data/scene", stages=["rgb", "features"])
    cfg.rgb.iters, cfg.features.lr = 1000, 0.02
    return cfg


def test_restart_field_changed_restarts_its_stage():
    recorded = _recorded()
    merged = merge_resumed(recorded, {"features.lr": 0.05, "features.objective": "contrastive"})
    assert merged.restart == {"features": ["features.lr"]}  # the unchanged objective restarts nothing
    assert merged.config.features.lr == 0.05 and not merged.ignored
    assert recorded.features.lr == 0.02  # the recorded config is not modified


def test_apply_field_changed_is_applied_without_restart():
    merged = merge_resumed(_recorded(), {"rgb.iters": 3000, "field.iters": 3000, "features.table_memory_mb": 64.0})
    assert merged.config.rgb.iters == 3000 and merged.config.field.iters == 3000
    assert merged.config.features.table_memory_mb == 64.0
    assert merged.applied == ["rgb.iters", "field.iters", "features.table_memory_mb"]
    assert not merged.restart and not merged.ignored


def test_keep_fields_are_ignored_and_drop_invalid_is_compared():
    merged = merge_resumed(_recorded(), {"rgb.sh_degree": 1, "drop_invalid": True, "rgb.seed": 0})
    assert merged.ignored == ["rgb.sh_degree", "drop_invalid"]  # rgb.seed unchanged: not reported
    assert merged.config.rgb.sh_degree == 3 and merged.config.drop_invalid is False
    assert not merged.applied and not merged.restart


def test_one_value_for_rgb_and_features_follows_each_field_rule():
    """--seed sets rgb.seed (kept: the scene is trained) and features.seed (restarts the features)."""
    merged = merge_resumed(_recorded(), {"rgb.seed": 7, "features.seed": 7, "field.seed": 7})
    assert merged.ignored == ["rgb.seed", "field.seed"] and merged.restart == {"features": ["features.seed"]}
    assert merged.config.rgb.seed == 0 and merged.config.features.seed == 7


def test_every_train_field_has_a_rule_and_the_features_stage_restarts_on_its_results():
    rules = {leaf.path: leaf.on_resume for leaf in leaves(TrainConfig)}
    assert set(rules.values()) == {KEEP, RESTART, APPLY}
    assert rules["features.objective_settings"] == RESTART and rules["features.iters"] == APPLY
    assert rules["rgb.iters"] == APPLY and rules["rgb.densify.grow_grad2d"] == KEEP
    assert all(r == KEEP for p, r in rules.items() if p.startswith("rgb.lr."))

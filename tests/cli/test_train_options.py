"""`gsseg train`'s options are TrainConfig's fields and the objectives' settings (issue 32)."""

from __future__ import annotations

import json
import re

import pytest
from typer.testing import CliRunner

from gsseg.errors import GssegError
from gsseg.utils.config_fields import leaves


def test_train_help_lists_every_config_field_once():
    """Every TrainConfig field and every objective setting is reached by exactly one train option."""
    from gsseg.cli.commands import train as verb
    from gsseg.config.train import TrainConfig
    from gsseg.objectives.registry import settings_class

    reached: dict[str, str] = {}
    for o in verb.OPTIONS:
        for target in o.targets:
            assert target not in reached, f"{target}: {reached[target]} and {o.flag}"
            reached[target] = o.flag
    hand = {"dataset": "DATA", "stages": "--stage", "extra": "(kept sections)"}
    hand |= {"rgb.background_mode": "--background", "rgb.background": "--background"}
    hand |= {"features.table_memory_mb": "--memory-budget", "features.objective_settings": "(objective options)"}
    assert set(hand) == set(verb.HAND_WRITTEN)
    for leaf in leaves(TrainConfig):
        assert (leaf.path in reached) != (leaf.path in hand), leaf.path
    for group in verb.GROUPS:
        for leaf in leaves(settings_class(group)):
            assert f"{group}.{leaf.path}" in reached, (group, leaf.path)
    assert sum(len(leaves(settings_class(g))) for g in verb.GROUPS) + len(leaves(TrainConfig)) > 150

    result = CliRunner().invoke(typer_app(), ["train", "--help"], terminal_width=200)
    text = " ".join(result.output.split())
    flags = {f.split("/")[0] for f in reached.values()}
    for flag in flags | {"--stage", "--background", "--memory-budget", "--max-size", "--set"}:
        assert len(re.findall(re.escape(flag) + r"(?![\w.-])", text)) >= 1, flag
    for flag, default in [
        ("--rgb.densify.grow-grad2d", "0.0008"),
        ("--rgb.lr.means", "0.00016"),
        ("--features.threads", "1"),
        ("--field.rays", "1024"),
        ("--contrastive.level-decay", "0.5"),
    ]:
        assert re.search(re.escape(flag) + r" [^\[]*\[default: " + re.escape(default) + r"\]", text), flag
    # one default per field: the objectives' dims differ, and help says so instead of one wrong number
    assert re.search(r"--feature-dim .*?\[default: \(contrastive 16; ultrametric 16; clustering 32\)\]", text)
    assert re.search(r"--iters .*?\[default: \(rgb 3000; field 1500\)\]", text)


def typer_app():
    from gsseg.cli.app import app

    return app


def test_objective_settings_are_checked_against_the_chosen_objective():
    from gsseg.cli.commands.train import _objective_settings

    flags = {"ultrametric.knn": "--ultrametric.knn"}
    with pytest.raises(GssegError, match=r"--ultrametric\.knn: not a setting of --objective contrastive"):
        _objective_settings("contrastive", {"ultrametric.knn": 4}, flags, [])
    assert _objective_settings("ultrametric", {"ultrametric.knn": 4}, flags, []) == {"knn": 4}
    # --set (deprecated) is checked against the settings dataclass, not JSON-guessed
    assert _objective_settings("contrastive", {}, {}, [("pixels", 256), ("norm_loss", "pixel")]) == {
        "pixels": 256,
        "norm_loss": "pixel",
    }
    with pytest.raises(GssegError, match=r"--set pixels: must be an integer, got 'many'"):
        _objective_settings("contrastive", {}, {}, [("pixels", "many")])
    with pytest.raises(GssegError, match=r"--set norm_loss: must be one of gaussian, pixel, none"):
        _objective_settings("contrastive", {}, {}, [("norm_loss", "l2")])
    with pytest.raises(GssegError, match=r"--set colour: unknown contrastive setting"):
        _objective_settings("contrastive", {}, {}, [("colour", 3)])


@pytest.fixture(scope="module")
def tiny_data(tmp_path_factory):
    from gsseg.synth import make_scene

    return make_scene(tmp_path_factory.mktemp("tiny") / "data", width=24, height=16, views=2, test_views=1)


def _resume(tiny_data, tmp_path, monkeypatch, capsys, *args):
    """`gsseg train --stage features` on a recorded run, the training itself replaced by a recorder."""
    import gsseg.train.pipeline as pipeline
    from gsseg.cli.app import main
    from gsseg.config.train import TrainConfig

    run = tmp_path / "run"
    run.mkdir(exist_ok=True)
    recorded = TrainConfig(dataset=str(tiny_data.resolve()), stages=["rgb", "features"], downscale=1.0)
    recorded.features.objective_settings = {"pixels": 256}
    (run / "config.json").write_text(json.dumps(recorded.to_dict()))
    calls = []
    monkeypatch.setattr(pipeline, "run_training", lambda cfg, run, opts, clear=(): calls.append((cfg, clear)) or [])
    with pytest.raises(SystemExit) as done:
        main(["train", str(tiny_data), "--out", str(run), "--stage", "features", "-q", *args])
    assert done.value.code in (0, None), capsys.readouterr().err
    (cfg, clear), err = calls[0], " ".join(capsys.readouterr().err.split())
    return recorded, cfg, list(clear), err


def test_resume_merges_by_each_fields_rule(tiny_data, tmp_path, monkeypatch, capsys):
    args = ["--drop-invalid", "--seed", "5", "--feature-lr", "0.05", "--feature-iters", "7", "--memory-budget", "1M"]
    recorded, cfg, clear, err = _resume(tiny_data, tmp_path, monkeypatch, capsys, *args)
    # keep: the trained scene's settings stay, and the user is told (--drop-invalid is compared too)
    assert "ignoring --drop-invalid, --seed (pass --restart to change them)" in err, err
    assert cfg.drop_invalid is False and cfg.rgb.seed == recorded.rgb.seed == 0
    # restart: a features setting changed, so the features stage starts fresh with it
    assert clear == ["features"] and "the features stage of" in err
    assert cfg.features.lr == 0.05 and cfg.features.seed == 5
    # apply: step counts and memory limits follow the command line without restarting anything
    assert cfg.features.iters == 7 and cfg.features.table_memory_mb == 1.0
    assert cfg.features.objective_settings == {"pixels": 256}  # no objective option given: kept


def test_resume_with_only_resume_fields_restarts_nothing(tiny_data, tmp_path, monkeypatch, capsys):
    _, cfg, clear, err = _resume(tiny_data, tmp_path, monkeypatch, capsys, "--feature-iters", "9", "--time-limit", "0")
    assert clear == [] and "ignoring" not in err and "starts fresh" not in err  # --time-limit 0: unchanged
    assert cfg.features.iters == 9
    _, cfg, clear, err = _resume(tiny_data, tmp_path, monkeypatch, capsys, "--contrastive.pixels", "512")
    assert clear == ["features"] and cfg.features.objective_settings == {"pixels": 512}

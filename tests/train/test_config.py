"""The torch-free training configuration: imports, validation, CLI defaults, presets and option bookkeeping."""

from __future__ import annotations

import dataclasses
import json
import subprocess
import sys

import click
import pytest

from styler.errors import StylerError
from styler.nn.registry import norm_choices
from styler.train.config import (
    FROM_CHECKPOINT,
    PRESETS,
    TrainConfig,
    config_from_options,
    default_output,
    iterations_for_epochs,
    resumed_config,
)

COMMON = dict(style="art/starry.jpg", dataset="photos", output="m.pth")


def _imports_torch(code: str) -> bool:
    probe = f"import sys\n{code}\nprint('torch' in sys.modules)"
    result = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, timeout=120, check=True)
    return result.stdout.strip().splitlines()[-1] == "True"


def test_configuration_and_the_train_command_import_without_torch() -> None:
    assert not _imports_torch("import styler.train.config")
    assert not _imports_torch("import styler.train\nfrom styler.train import TrainConfig, PRESETS, TrainingInterrupted")
    assert not _imports_torch("import styler.cli.train")
    # Negative control: the probe does see torch when it is imported.
    assert _imports_torch("import styler.train\nstyler.train.Trainer")


def test_validation_rejects_bad_layers_norms_and_sizes() -> None:
    with pytest.raises(StylerError, match="unknown VGG16 layer 'relu9_9'"):
        TrainConfig(**COMMON, content_layer="relu9_9")
    with pytest.raises(StylerError, match="unknown VGG16 layer 'conv1_1'"):
        TrainConfig(**COMMON, style_layers=("relu1_2", "conv1_1"))
    with pytest.raises(StylerError, match="invalid network settings: unknown norm 'fancy'"):
        TrainConfig(**COMMON, norm="fancy")
    with pytest.raises(StylerError, match="invalid network settings: .*16 channels are not divisible by 3"):
        TrainConfig(**COMMON, norm="gn", groups=3, width=16)
    with pytest.raises(StylerError, match="too small"):
        TrainConfig(**COMMON, image_size=8)
    with pytest.raises(StylerError, match="log-interval must be >= 0"):
        TrainConfig(**COMMON, log_interval=-1)
    assert TrainConfig(**COMMON, norm="sn", sn_using_bn=True).norm_spec.using_bn
    assert not TrainConfig(**COMMON, norm="in", sn_using_bn=True).norm_spec.using_bn  # only SN has a BN branch


def test_tap_table_is_shared_with_the_loss_network() -> None:
    from styler.loss import lossnet, taps

    assert lossnet.TAP_INDICES is taps.TAP_INDICES


def test_to_dict_round_trips_and_ignores_unknown_keys() -> None:
    config = TrainConfig(**COMMON, norm="gn", groups=4, preview_images=("a.jpg",))
    data = config.to_dict()
    assert data["style_layers"] == list(config.style_layers) and data["preview_images"] == ["a.jpg"]
    multi = ("styles", "style_weights", "base_model", "group_size", "lr_drops")  # written only when used
    assert list(data) == [f.name for f in dataclasses.fields(TrainConfig) if f.name not in multi]  # field order
    sized = TrainConfig(**COMMON, norm="gn", group_size=2)
    assert sized.to_dict()["group_size"] == 2 and TrainConfig.from_dict(sized.to_dict()) == sized
    assert sized.norm_spec.group_size == 2 and TrainConfig(**COMMON, group_size=2).norm_spec.group_size is None
    assert TrainConfig.from_dict({**data, "from_a_newer_version": 1}) == config
    several = TrainConfig(**{**COMMON, "styles": (COMMON["style"], "b.jpg"), "style_weights": (None, 2.0)})
    stored = several.to_dict()
    assert stored["styles"] == [COMMON["style"], "b.jpg"] and stored["style_weights"] == [None, 2.0]
    assert TrainConfig.from_dict(stored) == several
    assert several.norm_spec.kind == "conditional" and several.norm_spec.num_styles == 2


def test_style_settings_from_the_command_line(tmp_path) -> None:
    from styler.train.config import style_settings

    assert style_settings(["a.jpg"]) == {"style": "a.jpg", "styles": (), "style_weights": (), "base_model": None}
    many = style_settings(["a.jpg", "b.jpg:2"])
    assert many["styles"] == ("a.jpg", "b.jpg") and many["style_weights"] == (None, 2.0)
    (tmp_path / "x.png").write_bytes(b"")
    (tmp_path / "y.jpg").write_bytes(b"")
    (tmp_path / "notes.txt").write_text("")
    assert style_settings(styles_dir=str(tmp_path))["styles"] == (str(tmp_path / "x.png"), str(tmp_path / "y.jpg"))
    added = style_settings(add_style="c.jpg", base_model="starry_night_in")
    assert added["style"] == "c.jpg" and added["base_model"] == "starry_night_in" and added["styles"] == ()
    for bad in (dict(styles=["a.jpg", "a.jpg"]), dict(add_style="c.jpg"), dict(styles=["a.jpg:-1"]),
                dict(styles=["a.jpg"], add_style="c.jpg", base_model="m")):
        with pytest.raises(StylerError):
            style_settings(**bad)
    with pytest.raises(StylerError, match="conditional instance norm"):
        TrainConfig(**{**COMMON, "styles": (COMMON["style"], "b.jpg"), "norm": "bn"})


def _cli_defaults() -> dict[str, object]:
    """The values ``styler train`` parses when no option is given, by config field name."""
    from styler.cli.train import FIELD_OF_PARAM, train

    with train.make_context("train", []) as ctx:
        return {FIELD_OF_PARAM.get(name, name): value for name, value in ctx.params.items()}


def test_every_cli_default_is_the_config_default(monkeypatch: pytest.MonkeyPatch) -> None:
    from styler.cli.train import train

    for variable in ("STYLER_VGG_WEIGHTS", "STYLER_VGG_CONVENTION"):  # environment values are not defaults
        monkeypatch.delenv(variable, raising=False)

    fields = {f.name: f for f in dataclasses.fields(TrainConfig)}
    cli = _cli_defaults()
    offered = set(cli) & set(fields)
    assert len(offered) >= 30, sorted(offered)
    for name in offered:
        expected = fields[name].default
        if name in ("dataset", "output"):
            assert expected is dataclasses.MISSING and cli[name] is None, name
        elif name == "styles":  # the repeatable --style: nothing given, no styles
            assert cli[name] == () == expected, name
        elif name == "style_layers":
            assert cli[name] == ",".join(expected), name
        elif name == "progress":
            assert cli[name] is (not expected), name  # --quiet
        else:
            assert cli[name] == expected, name
    choices = {p.name: p.type.choices for p in train.params if isinstance(p.type, click.Choice)}
    assert list(choices["preset"]) == list(PRESETS)
    assert list(choices["norm"]) == norm_choices()


def test_presets_fill_in_only_what_was_not_given() -> None:
    options = dict(COMMON, output=None, width=8, iterations=5)
    config, explicit = config_from_options(options, explicit={"width", "style", "dataset", "nproc"}, preset="zoo")
    assert config.width == 8  # given explicitly: kept
    assert (config.image_size, config.iterations) == (160, 2000)  # from the preset (iterations only defaulted)
    assert config.output == default_output("art/starry.jpg", "instance") == "models/starry_instance.safetensors"
    assert explicit == {"width", "style", "dataset"} | set(PRESETS["zoo"])  # "nproc" is no setting
    with pytest.raises(StylerError, match="unknown preset"):
        config_from_options(options, preset="huge")


def test_resumed_options_come_from_the_checkpoint() -> None:
    options = dict(style=None, dataset=None, output=None, iterations=9)
    config, explicit = config_from_options(options, explicit={"iterations", "output"}, preset="zoo", resuming=True)
    assert (config.style, config.dataset, config.output) == (FROM_CHECKPOINT,) * 3
    assert explicit == {"iterations"}  # the preset is not explicit when resuming, nor are absent paths
    saved = TrainConfig(**COMMON, iterations=4, lr=0.01)
    merged = resumed_config(saved, config, explicit)
    assert (merged.iterations, merged.lr, merged.style) == (9, 0.01, COMMON["style"])
    with pytest.raises(StylerError, match=r"cannot change these settings when resuming: --lr \(0.01"):
        resumed_config(saved, TrainConfig(**COMMON, lr=0.5), {"lr", "iterations"})


def test_lr_drops_are_a_function_of_the_step_and_may_only_be_added_ahead_of_a_resume() -> None:
    config = TrainConfig(**COMMON, lr=1e-3, lr_drops=((8, 0.5), (4, 0.1)))
    assert config.lr_drops == ((4, 0.1), (8, 0.5))  # sorted, whatever order they were given in
    assert [config.lr_at(s) for s in (0, 3, 4, 7, 8, 100)] == pytest.approx([1e-3, 1e-3, 1e-4, 1e-4, 5e-5, 5e-5])
    assert TrainConfig.from_dict(json.loads(json.dumps(config.to_dict()))).lr_drops == config.lr_drops
    assert "lr_drops" not in TrainConfig(**COMMON).to_dict()  # older files never had it: written only when used
    for bad in (((0, 0.1),), ((5, 0.0),), ((5, 1.5),), ((5, float("nan")),), ((5, 0.1), (5, 0.2))):
        with pytest.raises(StylerError, match="learning-rate drop"):
            TrainConfig(**COMMON, lr_drops=bad)
    saved = TrainConfig(**COMMON, lr_drops=((4, 0.1),))
    ahead = TrainConfig(**COMMON, lr_drops=((4, 0.1), (10, 0.5)))
    assert resumed_config(saved, ahead, {"lr_drops"}, step=10).lr_drops == ((4, 0.1), (10, 0.5))
    # negative controls: a new drop before the checkpoint's step, or a taken one removed, rewrites history
    with pytest.raises(StylerError, match="already taken"):
        resumed_config(saved, TrainConfig(**COMMON, lr_drops=((4, 0.1), (9, 0.5))), {"lr_drops"}, step=10)
    with pytest.raises(StylerError, match="already taken"):
        resumed_config(saved, TrainConfig(**COMMON), {"lr_drops"}, step=10)


def test_iterations_for_epochs() -> None:
    assert iterations_for_epochs(1, 6, 2) == 3
    assert iterations_for_epochs(2, 6, 2, world_size=2) == 3
    assert iterations_for_epochs(0.01, 6, 4) == 1  # never zero steps

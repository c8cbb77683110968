"""``saesteer train METHOD`` generated from the registry: flags from the Config, --config FILE, errors."""

from __future__ import annotations

from typing import Any, Literal

import pytest
import torch
from pydantic import Field

from saesteer.cli.config_flags import config_values
from saesteer.cli.main import build_parser, main
from saesteer.engines.corrsteer import CorrSteerConfig
from saesteer.engines.protocol import Fitted, Method, MethodConfig
from saesteer.engines.psr import PSRConfig
from saesteer.engines.registry import register, unregister
from saesteer.store import Store
from saesteer.vectors import SteeringVector

DRIVER = ["--model", "smollm2-135m-instruct", "--store", "S", "--name", "n"]


class TinyConfig(MethodConfig):
    layer: int = Field(description="layer of the constant vector")
    scale: float = Field(1.0, gt=0, description="value of every entry")
    sign: Literal["plus", "minus"] = Field("plus", description="sign of the vector")
    flip: bool = Field(False, description="negate once more")


def _fit(model: Any, tokenizer: Any, data: Any, config: TinyConfig, **_: Any) -> Fitted:
    negate = (config.sign == "minus") != config.flip
    vector = torch.full((model.config.hidden_size,), -config.scale if negate else config.scale)
    return Fitted(SteeringVector(vector, config.layer, method="tiny"), data_hash="h")


@pytest.fixture
def tiny(monkeypatch, smollm2):
    """A method registered at runtime (after import), and the CLI's load_model answering with SmolLM2."""
    import saesteer.models

    monkeypatch.setattr(saesteer.models, "load_model", lambda name: smollm2)
    register(Method("tiny", "a constant vector", TinyConfig, SteeringVector, _fit, lambda config, context: None))
    yield
    unregister("tiny")


def _argv(store: str, *extra: str) -> list[str]:
    return ["train", "tiny", "--model", "smollm2-135m-instruct", "--store", store, "--name", "t", *extra]


def test_a_method_registered_at_runtime_gets_a_train_command(tmp_path, capsys, tiny):
    store = str(tmp_path / "s")
    assert main(_argv(store, "--layer", "3", "--scale", "2", "--sign", "minus", "--flip")) == 0
    assert "stored t (tiny, layers 3" in capsys.readouterr().out
    artifact = Store(store).load("t")
    assert artifact.layer == 3 and torch.equal(artifact.vector, torch.full((576,), 2.0))


def test_config_file_is_overridden_by_flags(tmp_path, tiny):
    config = tmp_path / "tiny.yaml"
    config.write_text("layer: 4\nscale: 5.0\nsign: minus\n")
    assert main(_argv(str(tmp_path / "s"), "--config", str(config), "--scale", "7")) == 0
    artifact = Store(tmp_path / "s").load("t")
    assert artifact.layer == 4 and torch.equal(artifact.vector, torch.full((576,), -7.0))


@pytest.mark.parametrize(
    ("file_text", "extra", "message"),
    [
        ("layr: 4\n", ("--layer", "4"), "layr"),
        ("", (), "Missing --layer"),
        ("", ("--layer", "4", "--scale", "0"), "scale"),
        ("[1, 2]\n", ("--layer", "4"), "mapping"),
    ],
)
def test_bad_configs_are_one_line_errors_with_a_fix(tmp_path, capsys, tiny, file_text, extra, message):
    config = tmp_path / "c.yaml"
    config.write_text(file_text)
    assert main(_argv(str(tmp_path / "s"), "--config", str(config), *extra)) == 2
    out = capsys.readouterr().out
    assert "error:" in out and message in out and "Fix:" in out
    assert not Store(tmp_path / "s").find()  # nothing fitted, nothing stored


def test_ill_typed_flags_are_usage_errors(tiny, capsys):
    for extra in (["--layer", "x"], ["--sign", "sideways"]):
        with pytest.raises(SystemExit) as exit_info:
            build_parser().parse_args(_argv("S", *extra))
        assert exit_info.value.code == 2
    assert "invalid choice" in capsys.readouterr().err


@pytest.mark.parametrize(
    ("method", "config", "extra", "expected"),
    [
        (CorrSteerConfig, "corrsteer", ["--task", "capitals", "--layers", "8,10"], {"layers": [8, 10]}),
        (CorrSteerConfig, "corrsteer", ["--task", "capitals", "--layers", "all"], {"layers": "all"}),
        (
            CorrSteerConfig,
            "corrsteer",
            ["--task", "mmlu", "--data", "t", "--val-data", "v", "--hook-point", "resid_pre"],
            {"val_data": "v", "hook_point": "resid_pre"},
        ),
        (PSRConfig, "psr", ["--layers", "15", "--coherence-target", "-2.5"], {"coherence_target": -2.5}),
        (PSRConfig, "psr", ["--layers", "15", "--sample"], {"layers": [15], "sample": True}),
    ],
)
def test_flags_parse_by_the_field_annotation(method, config, extra, expected):
    args = build_parser().parse_args(["train", config, *DRIVER, *extra])
    values = config_values(args, method, None)
    assert expected.items() <= values.items()
    method.model_validate(values)

"""``saesteer train prosv`` end to end on the real model (tiny runs), and its errors."""

from __future__ import annotations

import pytest

from saesteer.cli.main import build_parser, main
from saesteer.data import sample_path
from saesteer.store import Store

CPP = "C/C++ programming syntax elements such as data types, function definitions, and variable declarations"


def _argv(store: str, *extra: str) -> list[str]:
    return [
        "train",
        "prosv",
        "--model",
        "smollm2-135m-instruct",
        "--layer",
        "10",
        "--store",
        store,
        "--name",
        "cpp",
        "--epochs",
        "1",
        "--batch-size",
        "2",
        "--max-examples",
        "2",
        "--max-response-tokens",
        "6",
        *extra,
    ]


def test_help_shows_an_example(capsys):
    with pytest.raises(SystemExit) as exit_info:
        build_parser().parse_args(["train", "prosv", "--help"])
    assert exit_info.value.code == 0
    out = capsys.readouterr().out
    assert "example:" in out and "--positions" in out
    assert "--preset" in out and "width_rule" in out and "--neutral" in out


@pytest.fixture
def loaded(monkeypatch, smollm2):
    """The CLI's load_model answers with the session's real model (no second load)."""
    import saesteer.models

    monkeypatch.setattr(saesteer.models, "load_model", lambda name: smollm2)
    return smollm2


def test_train_from_axbench_data_stores_an_artifact_and_logs_offline_when_asked(tmp_path, capsys, monkeypatch, loaded):
    monkeypatch.setenv("WANDB_MODE", "offline")
    store = str(tmp_path / "store")
    data = str(sample_path("axbench/train.jsonl"))
    assert main(_argv(store, "--data", data, "--concept", CPP, "--wandb-project", "saesteer-test")) == 0
    assert "stored cpp" in capsys.readouterr().out
    artifact = Store(store).load("cpp", loaded[0])
    assert artifact.positions == "f2+l2" and artifact.metrics["n_train"] == 2 and artifact.config["epochs"] == 1
    assert artifact.config["hyper_source"].startswith("width rule from 2b_l10_lang_prosv.sh")  # 576 wide: fallback
    assert (tmp_path / "store" / "wandb").is_dir()  # wandb writes beside the store, never into the checkout


def test_train_builds_its_own_data_without_a_file(tmp_path, capsys, loaded):
    store = str(tmp_path / "store")
    argv = _argv(store, "--concept", "the ocean", "--num-instructions", "1", "--positions", "all")
    assert main(argv) == 0
    record = Store(store).get("cpp")
    assert record.method == "prosv" and record.config["positions"] == "all" and record.metrics["n_train"] == 1
    assert not (tmp_path / "store" / "wandb").exists()  # no --wandb-project: no logging


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        (("--positions", "sideways"), "Invalid PrOSV positions"),
        (("--epochs", "0"), "epochs: Input should be greater than or equal to 1"),
        (("--layer", "99"), "out of range"),
        (("--loss", "simpo"), "have no neutral response for the simpo loss"),  # AxBench rows: no silent loser
    ],
)
def test_bad_options_exit_with_a_fix(tmp_path, capsys, loaded, extra, message):
    argv = _argv(str(tmp_path / "store"), "--data", str(sample_path("axbench/train.jsonl")), "--concept", CPP)
    assert main([*argv, *extra]) == 2
    out = capsys.readouterr().out
    assert message in out and "Fix:" in out

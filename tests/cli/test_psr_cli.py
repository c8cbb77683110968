"""``saesteer train psr`` end to end on the real model (tiny), and its error paths."""

from __future__ import annotations

import pytest

from saesteer.cli.main import build_parser, main
from saesteer.data import sample_path
from saesteer.store import Store


def _argv(store: str, *extra: str) -> list[str]:
    return [
        "train",
        "psr",
        "--model",
        "smollm2-135m-instruct",
        "--trait",
        "Answer in a very happy, enthusiastic tone.",
        "--data",
        str(sample_path("axbench/instructions.jsonl")),
        "--store",
        store,
        "--name",
        "happy",
        "--n-prompts",
        "4",
        "--max-new-tokens",
        "4",
        "--epochs",
        "1",
        *extra,
    ]


def test_help_shows_examples(capsys):
    with pytest.raises(SystemExit) as exit_info:
        build_parser().parse_args(["train", "psr", "--help"])
    assert exit_info.value.code == 0
    out = capsys.readouterr().out
    assert "examples:" in out and "--layers" in out and "alpha" in out
    assert all(f in out for f in ("--judge", "--no-filter-triplets", "--span", "--no-sample"))


def test_train_psr_stores_a_loadable_probe(tmp_path, smollm2, capsys):
    store = str(tmp_path / "store")
    assert main(_argv(store, "--layers", "28", "--alpha", "1.5")) == 0
    assert "stored" in capsys.readouterr().out
    record = Store(store).get("happy", kind="probe")
    assert record.method == "psr" and record.layer == 28 and record.config["n_prompts"] == 4
    assert record.config["span"] == "QR" and record.config["sample"] and record.config["reg_weight"] == 0.1
    assert record.config["triplet_filter"] == {"judge": None, "generated": 4, "kept": 4}
    artifact = Store(store).load("happy", smollm2[0])
    assert artifact.alpha == 1.5 and artifact.layers == [28] and artifact.width == 576
    assert not (tmp_path / "store" / "wandb").exists()


def test_train_psr_rejects_bad_input(tmp_path, capsys):
    store = str(tmp_path / "store")
    assert main(_argv(store, "--layers", "31")) == 2
    assert "Fix:" in capsys.readouterr().out
    for bad in (["--layers", "x,y"], ["--layers", "28", "--coherence-target", "high"]):
        with pytest.raises(SystemExit) as exit_info:  # ill-typed flags are argparse usage errors
            main(_argv(store, *bad))
        assert exit_info.value.code == 2
    assert "expected prompt or FLOAT, got 'high'" in capsys.readouterr().err
    assert main(_argv(store, "--layers", "28", "--trait", "x", "--concept", "y")) == 2
    assert "either trait or concept" in capsys.readouterr().out
    empty = tmp_path / "empty.json"
    empty.write_text("[]")
    args = _argv(store, "--layers", "28")
    args[args.index("--data") + 1] = str(empty)
    assert main(args) == 2
    assert "Fix:" in capsys.readouterr().out


def test_train_psr_filters_with_a_judge_and_rejects_bad_judge_specs(tmp_path, smollm2, capsys, monkeypatch):
    from saesteer.engines import psr

    class Rater:
        name, is_proxy = "stub", True

        def rate(self, items):
            return [{"concept": 2.0 * (n > 0), "fluency": 2.0, "instruction": 2.0} for n, _ in enumerate(items)]

    monkeypatch.setattr(psr, "make_rater", lambda spec, model, tokenizer: Rater())
    store = str(tmp_path / "store")
    assert main(_argv(store, "--layers", "28", "--alpha", "1", "--judge", "proxy")) == 0
    assert Store(store).get("happy", kind="probe").config["triplet_filter"]["dropped_attribute"] == 1
    assert main(_argv(store, "--layers", "28", "--judge", "gpt4")) == 2
    assert "not a judge spec" in capsys.readouterr().out

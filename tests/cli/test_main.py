"""The CLI end to end on the real model: train caa, store ls/show, generate, eval ab, errors."""

from __future__ import annotations

import json

import pytest

from saesteer.cli.main import build_parser, main
from saesteer.data import sample_path
from tests.conftest import corrsteer_argv, store_with_sae


@pytest.mark.parametrize("argv", [["train", "caa", "--help"], ["generate", "--help"], ["eval", "ab", "--help"]])
def test_help_shows_an_example(argv, capsys):
    with pytest.raises(SystemExit) as exit_info:
        build_parser().parse_args(argv)
    assert exit_info.value.code == 0
    assert "example:" in capsys.readouterr().out


def test_train_generate_and_inspect(tmp_path, capsys, smollm2):
    store = str(tmp_path / "store")
    data = str(sample_path("sentiment/pairs.jsonl"))
    assert (
        main(
            [
                "train",
                "caa",
                "--model",
                "smollm2-135m-instruct",
                "--data",
                data,
                "--layer",
                "8",
                "--store",
                store,
                "--name",
                "sent",
            ]
        )
        == 0
    )
    assert "stored sent" in capsys.readouterr().out
    assert main(["store", "--store", store, "ls"]) == 0
    assert "sent" in capsys.readouterr().out
    assert main(["store", "--store", store, "show", "sent"]) == 0
    shown = json.loads(capsys.readouterr().out)
    assert shown["layer"] == 8 and shown["method"] == "caa" and shown["model_id"] == "smollm2-135m-instruct"
    assert len(shown["data_hash"]) == 16 and len(shown["model_fingerprint"]) == 16
    assert (
        main(
            [
                "generate",
                "--model",
                "smollm2-135m-instruct",
                "--store",
                store,
                "--vector",
                "sent",
                "--alpha=-4,4",
                "--max-new-tokens",
                "6",
                "How was your weekend?",
            ]
        )
        == 0
    )
    out = capsys.readouterr().out
    assert "unsteered" in out and "alpha +4" in out and "alpha -4" in out


def test_end_marker_reaches_generate_and_eval_ab_and_a_missing_marker_is_an_error(tmp_path, capsys, smollm2):
    import torch

    from saesteer.store import Store
    from saesteer.vectors import SteeringVector

    store = str(tmp_path / "store")
    Store(store).save("v", SteeringVector(torch.ones(smollm2[0].config.hidden_size), layer=3))
    item = {
        "question": "Is it? (A) yes (B) no",
        "answer_matching_behavior": "(A)",
        "answer_not_matching_behavior": "(B)",
    }
    data = tmp_path / "ab.json"
    data.write_text(json.dumps([item]))
    ab = ["eval", "ab", "--model", "smollm2-135m-instruct", "--store", store, "--vector", "v", "--data", str(data)]
    assert main([*ab, "--multipliers=0,1", "--end-marker", "[/INST]"]) == 2  # not in a ChatML prompt
    out = capsys.readouterr().out
    assert "no end-of-instruction marker" in out and "Fix: pass --end-marker" in out
    assert main([*ab, "--multipliers=0,1", "--end-marker", "user\\n"]) == 0  # "<|im_start|>user\n" is there
    assert "p(matching)" in capsys.readouterr().out
    generate = ["generate", "--model", "smollm2-135m-instruct", "--store", store, "--vector", "v", "--max-new-tokens"]
    assert main([*generate, "2", "--end-marker", "[/INST]", "Hi"]) == 2
    assert "--end-marker" in capsys.readouterr().out


def test_errors_are_one_line_with_a_fix(tmp_path, capsys):
    code = main(["generate", "--model", "smollm2-135m-instruct", "--store", str(tmp_path), "--vector", "nope", "hi"])
    assert code == 2
    out = capsys.readouterr().out
    assert "error:" in out and "Fix:" in out and "Traceback" not in out
    assert (
        main(
            [
                "train",
                "caa",
                "--model",
                "no-such-model",
                "--data",
                "x.json",
                "--layer",
                "1",
                "--store",
                str(tmp_path),
                "--name",
                "n",
            ]
        )
        == 2
    )
    assert "Unknown model" in capsys.readouterr().out


def test_vector_export_import_round_trip_through_gguf(tmp_path, capsys):
    import torch

    from saesteer.store import Store
    from saesteer.vectors import SteeringVector

    store = Store(tmp_path / "a")
    store.save("v8", SteeringVector(vector=torch.arange(576.0), layer=8))
    gguf = str(tmp_path / "v.gguf")
    assert main(["vector", "export", "v8", "--store", str(tmp_path / "a"), "--out", gguf]) == 0
    assert main(["vector", "import", gguf, "--store", str(tmp_path / "b"), "--name", "back"]) == 0
    back = Store(tmp_path / "b").load("back-l8")
    assert torch.equal(back.vector, torch.arange(576.0)) and back.layer == 8
    assert back.config["imported_from"] == "v.gguf"
    assert main(["vector", "import", str(tmp_path / "nope.gguf"), "--store", str(tmp_path), "--name", "x"]) == 2


def test_train_corrsteer_and_features_top(tmp_path, capsys, smollm2, smollm2_sae):
    store = store_with_sae(tmp_path / "store", smollm2_sae[0])
    argv = corrsteer_argv(store, layers="all", extra=("--samples", "16", "--batch-size", "16"))
    assert main(argv) == 0
    out = capsys.readouterr().out
    assert "harvested 16 samples" in out and "layer 8 feature" in out
    assert main(["features", "top", "--store", store, "--name", "caps", "--k", "3"]) == 0
    table = capsys.readouterr().out
    assert "yes" in table and "coefficient" in table
    assert main(corrsteer_argv(str(tmp_path / "empty"), name="x", layers="all")) == 2
    assert "No SAE" in capsys.readouterr().out
    report = tmp_path / "eval.json"
    assert (
        main(
            [
                "eval",
                "task",
                "--model",
                "smollm2-135m-instruct",
                "--store",
                store,
                "--vector",
                "caps",
                "--task",
                "capitals",
                "--limit",
                "4",
                "--alpha",
                "40",
                "--out",
                str(report),
            ]
        )
        == 0
    )
    assert "unsteered" in capsys.readouterr().out
    summary = json.loads(report.read_text())
    assert summary["n"] == 4 and len(summary["records"]) == 4 and summary["changed"] >= 1


def test_ctrl_c_during_a_harvest_leaves_the_store_consistent_and_a_rerun_completes(tmp_path, smollm2_sae):
    import os
    import signal
    import subprocess
    import sys
    import threading
    import time

    from saesteer.store import Store

    store = tmp_path / "store"
    store_with_sae(store, smollm2_sae[0])
    command = [
        sys.executable,
        "-m",
        "saesteer",
        *corrsteer_argv(str(store), extra=("--samples", "48", "--batch-size", "4")),
    ]
    process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=os.environ)
    err: list[str] = []
    reader = threading.Thread(target=lambda: err.extend(iter(lambda: process.stderr.read(1), "")), daemon=True)
    reader.start()
    deadline = time.monotonic() + 240
    while "harvest capitals" not in "".join(err) and time.monotonic() < deadline and process.poll() is None:
        time.sleep(0.2)
    assert "harvest capitals" in "".join(err), "the interrupt should land inside the harvest"
    process.send_signal(signal.SIGINT)
    out = process.stdout.read()
    process.wait(timeout=120)
    assert process.returncode == 130 and "interrupted" in out
    assert [r.kind for r in Store(store).find()] == ["sae"] and Store(store).verify() == []
    rerun = subprocess.run(
        [*command[:-4], "--samples", "8", "--batch-size", "4"],
        capture_output=True,
        text=True,
        env=os.environ,
        timeout=300,
    )
    assert rerun.returncode == 0, rerun.stdout + rerun.stderr
    assert {r.name for r in Store(store).find()} == {"sae-l8", "caps", "caps-stats"}

"""``saesteer analyze cylinder`` on the real SmolLM2: files written, store record, typed errors."""

from __future__ import annotations

import json

from saesteer.cli.main import main
from saesteer.store import Store

ROWS = [
    {
        "question": "How do I plan a party?",
        "with_concept": "Rent tables from a rental service.",
        "without_concept": "Invite friends.",
    },
    {
        "question": "What should I pack for camping?",
        "with_concept": "Rental shops lend tents.",
        "without_concept": "A tent.",
    },
    {
        "question": "How can I move house cheaply?",
        "with_concept": "Hire a rental van.",
        "without_concept": "Ask friends.",
    },
    {"question": "How do I start painting?", "with_concept": "Rent an easel.", "without_concept": "Buy paint."},
    {"question": "How do I film a wedding?", "with_concept": "Rent camera gear.", "without_concept": "Film it."},
    {"question": "How do I clean a carpet?", "with_concept": "Rent a carpet cleaner.", "without_concept": "Vacuum."},
]


def test_analyze_cylinder_writes_results_plots_and_a_store_record(tmp_path, smollm2):
    data = tmp_path / "samples.jsonl"
    data.write_text("\n".join(json.dumps(r) for r in ROWS))
    out, store = tmp_path / "out", tmp_path / "store"
    argv = ["analyze", "cylinder", "--model", "smollm2-135m-instruct", "--concept", "rental services and equipment"]
    argv += ["--data", str(data), "--layer", "6", "--out", str(out), "--n-test", "2", "--steps", "2", "--rhos", "2"]
    argv += ["--tokens", "3", "--store", str(store), "--name", "cyl-test", "--positions", "all", "--reserve", "2"]
    assert main(argv) == 0  # default labeller: the concept detector, fitted on samples kept out of u
    results = json.loads((out / "results.json").read_text())
    assert results["config"]["steps"] == 2 and results["config"]["positions"] == "all"
    assert results["labeller"].startswith("concept-detector proxy")
    assert "axis_cosine" in results["concepts"][0]["calibration"]
    assert 0 <= results["concepts"][0]["calibration"]["heldout_accuracy"] <= 1
    assert len(results["concepts"][0]["samples"]) == 2
    assert all((out / f).is_file() for f in ("heatmaps.png", "steerability_vs_angle.png", "phase_pca.png"))
    record = Store(store).get("cyl-test", kind="eval_result")
    assert record.method == "cylinder" and record.layer == 6 and "calibration_heldout_accuracy" in record.metrics


def test_analyze_cylinder_rejects_bad_concept_ids(tmp_path, capsys):
    argv = ["analyze", "cylinder", "--model", "smollm2-135m-instruct", "--concept", "rental"]
    assert main([*argv, "--layer", "6", "--out", str(tmp_path)]) == 2
    assert "Fix:" in capsys.readouterr().out


def test_analyze_cylinder_rejects_a_bad_judge_spec(tmp_path, capsys):
    argv = ["analyze", "cylinder", "--model", "smollm2-135m-instruct", "--concept", "0", "--layer", "6"]
    assert main([*argv, "--out", str(tmp_path), "--labeller", "judge", "--judge", "gpt"]) == 2
    assert "Fix:" in capsys.readouterr().out

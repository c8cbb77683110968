"""A bench recipe's train steps run through the training driver (no argparse), once per concept, resumably."""

from __future__ import annotations

import subprocess
import sys

import pytest
import torch
import yaml

from saesteer.cli.steps import run_train_steps
from saesteer.recipes import load_recipe
from saesteer.store import Store


def _recipe(tmp_path, train: list[dict]) -> object:
    recipe = {
        "job": "bench",
        "model": "smollm2-135m-instruct",
        "store": str(tmp_path / "store"),
        "tasks": [{"kind": "axbench", "n_concepts": 2, "n_instructions": 2}],
        "methods": [{"kind": "unsteered"}],
        "train": train,
    }
    path = tmp_path / "r.yaml"
    path.write_text(yaml.safe_dump(recipe))
    return load_recipe(path)


@pytest.fixture
def loaded(monkeypatch, smollm2):
    import saesteer.models

    monkeypatch.setattr(saesteer.models, "load_model", lambda name: smollm2)
    return smollm2


def test_train_steps_fill_placeholders_per_concept_and_skip_stored_records(tmp_path, capsys, loaded):
    caa = {"method": "caa", "name": "sent", "config": {"data": "{samples}/sentiment/pairs.jsonl", "layer": 3}}
    per_concept = {
        "method": "caa",
        "name": "c{concept_id}",
        "per_concept": True,
        "config": {"data": "{samples}/sentiment/pairs.jsonl", "layer": 3, "batch_size": 12},
    }
    recipe = _recipe(tmp_path, [caa, per_concept])
    run_train_steps(recipe)
    out = capsys.readouterr().out
    assert "train caa sent" in out and "stored sent" in out and "stored c1" in out
    store = Store(tmp_path / "store")
    records = {r.name: r for r in store.find()}
    assert set(records) == {"sent", "c0", "c1"}
    assert records["c0"].config["n_pairs"] == 12 and records["sent"].layer == 3
    assert torch.allclose(store.load("c0").vector, store.load("sent").vector, atol=1e-5)  # same pairs, one batch
    run_train_steps(recipe)  # a rerun finds every record stored
    assert "train" not in capsys.readouterr().out and len(store.find()) == 3


def test_the_bench_command_does_not_import_the_cli_entry_point():
    code = "import saesteer.cli.bench, sys; sys.exit('saesteer.cli.main' in sys.modules)"
    assert subprocess.run([sys.executable, "-c", code]).returncode == 0

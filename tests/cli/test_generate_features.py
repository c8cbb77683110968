"""``saesteer generate`` with --feature, --when and --ablate on the real model and the session SAE."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch

from saesteer.cli.main import main
from saesteer.store import Store
from saesteer.vectors import SteeringVector
from tests.conftest import store_with_sae

MODEL = "smollm2-135m-instruct"


def test_generate_with_features_a_condition_and_an_extra_artifact(
    smollm2: Any, smollm2_sae: Any, tmp_path: Path, capsys: Any
) -> None:
    root = store_with_sae(tmp_path / "store", smollm2_sae[0])
    torch.manual_seed(0)
    away = SteeringVector(torch.randn(smollm2[0].config.hidden_size), layer=10, model_id=MODEL)
    Store(root).save("away", away)
    base = ["generate", "--model", MODEL, "--store", root, "--max-new-tokens", "4", "Describe your city."]
    argv = [*base, "--feature", "8:3=30", "--feature", "8:40*=2", "--when", "latent:8:3>0", "--ablate", "away"]
    assert main(argv) == 0
    out = capsys.readouterr().out
    assert "unsteered" in out and "alpha +1" in out and "feature 8:3=30" in out and "when latent:8:3>0" in out

    bad = {
        "names no layer": [*base, "--feature", "3=30"],
        "Nothing to steer with": base,
        "Cannot read the condition": [*base, "--feature", "8:3=1", "--when", "latent:8>1"],
        "latent index 99999": [*base, "--feature", "8:99999=1"],
        "after the edit at layer 8": [*base, "--feature", "8:3=1", "--when", "proj:away>0"],
    }
    for message, args in bad.items():
        assert main(args) == 2, message
        printed = capsys.readouterr().out.replace("\n", " ")
        assert message in printed and "Fix:" in printed and "Traceback" not in printed

from __future__ import annotations

from pathlib import Path

import pytest

from saesteer.errors import ConfigError
from saesteer.recipes import BenchRecipe, SAETrainRecipe, load_recipe

RECIPES = Path(__file__).parents[1] / "recipes"


def test_shipped_recipes_validate():
    recipe = load_recipe(RECIPES / "sae-smollm2-l8.yaml")
    assert isinstance(recipe, SAETrainRecipe) and recipe.layer == 8 and recipe.d_sae == 4608
    benches = [load_recipe(path) for path in sorted(RECIPES.glob("bench-*.yaml"))]
    assert len(benches) >= 3 and all(isinstance(b, BenchRecipe) for b in benches)


BENCH = "job: bench\nmodel: m\ntasks: [{kind: mmlu}]\nmethods: [{kind: unsteered}]\n"


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("job: sae_train\nmodel: m\nlayer: 8\nstore: s\ncolour: red\n", "colour"),
        ("job: sae_train\nmodel: m\nlayer: eight\nstore: s\n", "layer"),
        ("job: sae_train\nmodel: m\nlayer: 8\nstore: s\nd_sae: -1\n", "d_sae"),
        ("job: bake\n", "job"),
        ("[unclosed\n", "YAML"),
        (BENCH + "batch_size: 0\n", "batch_size"),
        (BENCH.replace("kind: mmlu", "kind: mmlu, scoring: [vibes]"), "scoring"),
        (BENCH.replace("kind: mmlu", "kind: gsm8k"), "gsm8k"),
        (BENCH.replace("kind: unsteered", "kind: caa, factors: []"), "factors"),
        (BENCH.replace("kind: unsteered", "kind: psr"), "artifact"),
        (BENCH + "train: [{method: caa, args: {layer: 8}}]\n", "name"),
        (BENCH.replace("tasks: [{kind: mmlu}]", "tasks: [{kind: axbench, judge: {kind: openai}}]"), "model"),
    ],
)
def test_bad_recipes_name_the_field(tmp_path, text, message):
    path = tmp_path / "r.yaml"
    path.write_text(text)
    with pytest.raises(ConfigError, match=message):
        load_recipe(path)

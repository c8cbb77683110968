from __future__ import annotations

from pathlib import Path

import pytest

from saesteer.data import SAMPLES
from saesteer.errors import ConfigError
from saesteer.recipes import BenchRecipe, SAEAddStep, SAEStep, SAETrainRecipe, load_recipe

RECIPES = Path(__file__).parents[1] / "recipes"


def test_shipped_recipes_validate():
    recipe = load_recipe(RECIPES / "sae-smollm2-l8.yaml")
    assert isinstance(recipe, SAETrainRecipe) and recipe.layer == 8 and recipe.d_sae == 4608
    benches = [load_recipe(path) for path in sorted(RECIPES.glob("bench-*.yaml"))]
    assert len(benches) >= 3 and all(isinstance(b, BenchRecipe) for b in benches)
    steps = {step.name: step for bench in benches for step in bench.train}
    assert isinstance(steps["sae-l8"], SAEStep) and steps["sae-l8"].config.d_sae == 4608
    assert isinstance(steps["gemmascope-l20"], SAEAddStep) and steps["gemmascope-l20"].config.layer == 20
    name, config = steps["prosv-c{concept_id}"].filled({"concept": "pirates", "concept_id": 7})
    assert name == "prosv-c7" and config["concept"] == "pirates" and config["concept_id"] == "7"
    assert config["data"] == str(SAMPLES / "axbench" / "train.jsonl")


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
        (BENCH + "train: [{method: caa, config: {layer: 8}}]\n", "name"),
        (BENCH + "train: [{method: caa, name: r, config: {layer: 8, layr: 9}}]\n", "layr"),
        (BENCH + "train: [{method: caa, name: r, config: {read: mean}}]\n", "layer: Field required"),
        (BENCH + "train: [{method: caa, name: r, config: {layer: 8, read: maen}}]\n", "read"),
        (BENCH + "train: [{method: magic, name: r}]\n", "magic"),
        (BENCH + "train: [{method: caa, name: r, args: {layer: 8}}]\n", "args"),
        (BENCH + "train: [{method: caa, name: 'r{concept_id}', config: {layer: 8}}]\n", "per_concept"),
        (BENCH + "train: [{method: caa, name: r, per_concept: true, config: {layer: 8}}]\n", "concept_id"),
        (BENCH + "train: [{method: caa, name: r, config: {layer: 8, data: '{sample}/x'}}]\n", "sample"),
        (BENCH + "train: [{method: prosv, name: 'p{concept_id}', per_concept: true, config: {layer: 0.5}}]\n", "layer"),
        (BENCH + "train: [{method: sae, name: s, config: {layer: 8, d_sae: 0}}]\n", "d_sae"),
        (BENCH + "train: [{method: sae_add, name: s, config: {layer: 8}}]\n", "source"),
        (BENCH.replace("tasks: [{kind: mmlu}]", "tasks: [{kind: axbench, judge: {kind: openai}}]"), "model"),
    ],
)
def test_bad_recipes_name_the_field(tmp_path, text, message):
    path = tmp_path / "r.yaml"
    path.write_text(text)
    with pytest.raises(ConfigError, match=message):
        load_recipe(path)


def _scored(bench: BenchRecipe, kind: str) -> tuple[str, str] | None:
    """(path, split) of the bench task of ``kind``, or None."""
    spec = next((t for t in bench.tasks if t.kind == kind), None)
    return None if spec is None else (str(spec.path), spec.split)


def test_no_shipped_recipe_scores_corrsteer_on_the_data_it_selects_features_on():
    for path in sorted(RECIPES.glob("bench-*.yaml")):
        bench = load_recipe(path)
        assert isinstance(bench, BenchRecipe)
        for step in bench.train:
            if getattr(step, "method", None) != "corrsteer":
                continue
            task, data = step.config["task"], str(step.config["data"])
            scored = _scored(bench, task)
            assert scored is not None, f"{path.name}: {step.name} has no {task} task to score it"
            # the same file is only safe when the bench scores the held-out test split of it
            assert data != scored[0] or scored[1] == "test", f"{path.name}: {step.name} trains on what it scores"
    gemma = load_recipe(RECIPES / "bench-gemma2-2b.yaml")
    assert isinstance(gemma, BenchRecipe)
    step = next(s for s in gemma.train if s.name == "corrsteer-mmlu")
    assert step.config["data"] == "hf:cais/mmlu:all@auxiliary_train" and step.config["samples"] == 4000
    assert step.config["val_data"] == "hf:cais/mmlu:all@validation"

"""CorrSteer on the bundled model, on shipped tasks whose reward varies (capitals QA, sentiment).

Trains (or reuses) one small SAE per layer in a store, harvests feature statistics on the train
split, selects features (S, A, P), and reports held-out reward with and without steering, the
side-effect ratio, and the selected features' correlation recomputed on the test split.
Writes benchmarks/results/corrsteer_demo.{json,md}.

    .venv/bin/python benchmarks/corrsteer_demo.py --layers 4,8,12,16,20 --tasks capitals,sentiment
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import torch
from scipy.stats import pearsonr

from saesteer.engines import corrsteer
from saesteer.eval.ser import side_effect_ratio
from saesteer.models import load_model
from saesteer.saes import SAETrainConfig, train_sae
from saesteer.store import Store
from saesteer.tasks import get_task, mean_reward, rewards, run_task


def saes_for(store: Store, model: object, tokenizer: object, layers: list[int], model_name: str) -> dict:
    saes = {}
    for layer in layers:
        found = store.find(kind="sae", model_id=model_name, layer=layer, hook_point="resid_post")
        if not found:
            config = SAETrainConfig(layer=layer, d_sae=2304, k=16, tokens=32_768, steps=300, batch_size=512, lr=1e-3)
            sae, metrics = train_sae(model, tokenizer, config)
            store.save_sae(
                f"demo-sae-l{layer}",
                sae,
                model_id=model_name,
                layer=layer,
                metrics=metrics,
                data_hash=metrics["data_hash"],
            )
            print(f"SAE L{layer}: EV {metrics['explained_variance']:.3f}", flush=True)
        saes[layer] = store.load_sae(store.find_sae(model_name, layer).name)
    return saes


def unsteered_pass(model, tokenizer, task, samples, saes, batch_size) -> tuple[list[tuple[str, float]], torch.Tensor]:
    """Unsteered (generation, reward) on held-out samples and their pooled SAE latents (N, layers, d_sae)."""
    records, xs = [], []
    for start in range(0, len(samples), batch_size):
        chunk = samples[start : start + batch_size]
        done, pooled = corrsteer.generate_and_read(
            model, tokenizer, task, chunk, saes, hook_point="resid_post", pool="max"
        )
        xs.append(pooled)
        records.extend(zip(done.texts, rewards(task, chunk, done.texts, done.first_logits), strict=True))
    return records, torch.cat(xs)


def held_out_r(x: torch.Tensor, reward: list[float], layers: list[int], features) -> dict[str, float | None]:
    """Pearson r of each selected feature's pooled activation with reward, on held-out samples."""
    out = {}
    for f in features:
        column = x[:, layers.index(f.layer), f.feature].numpy()
        constant = column.std() == 0 or len(set(reward)) < 2
        out[f"L{f.layer}/{f.feature}"] = None if constant else float(pearsonr(column, reward)[0])
    return out


def _feature_cell(feature: dict, held_out: dict) -> str:
    key = f"L{feature['layer']}/{feature['feature']}"
    value = held_out.get(key)
    return f"{key}: {feature['r']:.2f}, " + ("n/a" if value is None else f"{value:.2f}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", default="smollm2-135m-instruct")
    parser.add_argument("--layers", default="4,8,12,16,20")
    parser.add_argument("--tasks", default="capitals,sentiment")
    parser.add_argument("--store", default="runs/corrsteer-demo/store")
    parser.add_argument("--batch-size", type=int, default=16)
    parser.add_argument("--out", default=str(Path(__file__).parent / "results" / "corrsteer_demo"))
    args = parser.parse_args()
    model, tokenizer = load_model(args.model)
    store = Store(args.store)
    saes = saes_for(store, model, tokenizer, [int(x) for x in args.layers.split(",")], args.model)
    rows = []
    for task_name in args.tasks.split(","):
        task = get_task(task_name)
        test = task.samples("test")
        start = time.perf_counter()
        baseline, test_latents = unsteered_pass(model, tokenizer, task, test, saes, args.batch_size)
        test_rewards = [reward for _, reward in baseline]
        base_reward = sum(test_rewards) / len(baseline)
        found = corrsteer.harvest(model, tokenizer, task, saes, batch_size=args.batch_size, progress=False)
        for variant in ("S", "A", "P"):
            result = corrsteer.fit_features(
                model, tokenizer, task, saes, variant=variant, batch_size=args.batch_size, harvested=found
            )
            steered = run_task(
                model,
                tokenizer,
                task,
                test,
                steering=result.artifact if result.artifact.features else None,
                batch_size=args.batch_size,
                templated=task.chat,
            )
            reward = mean_reward(steered)
            ser = side_effect_ratio(
                {s.id: pair for s, pair in zip(test, baseline, strict=True)},
                {r.sample.id: (r.generation, r.reward) for r in steered},
            )
            rows.append(
                {
                    "task": task_name,
                    "reward_name": task.reward_name,
                    "variant": variant,
                    "n_train": result.harvest.stats.n,
                    "train_reward_rate": result.harvest.stats.n_pos / result.harvest.stats.n,
                    "n_test": len(test),
                    "unsteered": base_reward,
                    "steered": reward,
                    "ser": ser,
                    "changed": sum(b[0] != s.generation for b, s in zip(baseline, steered, strict=True)),
                    "features": [vars(f) for f in result.artifact.features],
                    "held_out_r": held_out_r(test_latents, test_rewards, sorted(saes), result.artifact.features),
                    "validation": result.validation,
                }
            )
            print(json.dumps({k: v for k, v in rows[-1].items() if k not in ("features",)}, default=str), flush=True)
        rows[-1]["seconds_task"] = time.perf_counter() - start
    command = "python benchmarks/corrsteer_demo.py " + " ".join(sys.argv[1:])
    out = Path(args.out)
    out.with_suffix(".json").write_text(json.dumps({"command": command, "model": args.model, "rows": rows}, indent=2))
    lines = [
        f"# CorrSteer on {args.model}",
        "",
        f"Command: `{command}`",
        "",
        "| task | variant | train n (reward rate) | test n | unsteered | steered | SER | changed "
        "| features (layer/feature: r train, r held-out) |",
        "|---|---|---|---:|---:|---:|---:|---:|---|",
    ]
    for row in rows:
        feats = "; ".join(_feature_cell(f, row["held_out_r"]) for f in row["features"]) or "(none kept)"
        ser = "n/a" if row["ser"] is None else f"{row['ser']:.2f}"
        lines.append(
            f"| {row['task']} | {row['variant']} | {row['n_train']} ({row['train_reward_rate']:.2f}) | {row['n_test']} "
            f"| {row['unsteered']:.3f} | {row['steered']:.3f} | {ser} | {row['changed']} | {feats} |"
        )
    out.with_suffix(".md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main()

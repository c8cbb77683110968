"""``saesteer train psr``: distil a prompt (trait instruction) into a token-wise ReLU probe and store it."""

from __future__ import annotations

import argparse

from saesteer.cli.common import console

EXAMPLE = """examples:
  saesteer train psr --model smollm2-135m-instruct --layers 15 \\
      --trait "Answer in a very happy, enthusiastic tone." \\
      --data saesteer/data/samples/axbench/instructions.jsonl --store runs/store --name happy-l15
  saesteer train psr --model M --concept "references to rental services" --layers all --objective ll \\
      --data prompts.jsonl --store runs/store --name rental-A --alpha 1.0

data: base prompts x as a JSON list / JSONL of strings or of objects with 'instruction' or 'prompt'.
The model answers x' = x + the trait instruction (greedy, or --sample with --seed); those answers y'
are the training targets. --layers L trains S-PSR at one layer, 'all' (or a list) A-PSR jointly.
Without --alpha, alpha is binary-searched on the dev prompts so the steered outputs' coherence
(proxy: mean token log-likelihood under the unsteered model) matches the prompted answers' own
(--coherence-target prompt) or a given value. The stored probe steers with alpha * (stored alpha):
'saesteer generate' / steer(model, artifact, alpha=1.0) = as calibrated."""


def add_train_parser(methods: argparse._SubParsersAction) -> None:
    psr = methods.add_parser(
        "psr",
        help="PSR: token-wise ReLU probe distilled from prompting",
        epilog=EXAMPLE,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    psr.add_argument("--model", required=True)
    trait = psr.add_mutually_exclusive_group(required=True)
    trait.add_argument("--trait", help="trait instruction appended to each prompt")
    trait.add_argument("--concept", help="concept: the instruction becomes 'Mention {concept} in your answer.'")
    psr.add_argument("--data", required=True, help="base prompts (.json list or .jsonl)")
    psr.add_argument("--layers", required=True, help="one layer (S-PSR), 'all' or L1,L2,... (A-PSR)")
    psr.add_argument("--store", required=True)
    psr.add_argument("--name", required=True)
    psr.add_argument("--objective", choices=["mse", "ll"], default="mse")
    psr.add_argument("--epochs", type=int, default=None, help="default 15 (mse) / 7 (ll)")
    psr.add_argument("--batch-size", type=int, default=4)
    psr.add_argument("--lr", type=float, default=1e-3)
    psr.add_argument("--reg-weight", type=float, default=0.0, help="weight of max(0, 1 - sum lambda); 0 = off")
    psr.add_argument("--n-prompts", type=int, default=None, help="use the first N prompts (default: all)")
    psr.add_argument("--max-new-tokens", type=int, default=48, help="length of the generated responses y'")
    psr.add_argument("--sample", action="store_true", help="sample y' (seeded) instead of greedy decoding")
    psr.add_argument("--seed", type=int, default=0)
    psr.add_argument("--dev-fraction", type=float, default=0.2)
    psr.add_argument("--alpha", type=float, default=None, help="fixed alpha (skips the binary search)")
    psr.add_argument("--coherence-target", default="prompt", help="'prompt' or a number in the judge's units")
    psr.add_argument("--no-wandb", action="store_true", help="do not log to wandb (default: offline run)")
    psr.set_defaults(run=run_train)


def _layers(text: str, count: int) -> list[int]:
    from saesteer.errors import ConfigError

    if text == "all":
        return list(range(count))
    try:
        return [int(x) for x in text.split(",") if x.strip()]
    except ValueError as exc:
        raise ConfigError(f"--layers must be 'all' or integers like 8,12, got {text!r}. Fix: correct it.") from exc


def _target(text: str) -> float | str:
    from saesteer.errors import ConfigError

    if text == "prompt":
        return text
    try:
        return float(text)
    except ValueError as exc:
        raise ConfigError(f"--coherence-target must be 'prompt' or a number, got {text!r}. Fix: correct it.") from exc


def run_train(args: argparse.Namespace) -> None:
    from pathlib import Path

    from saesteer.engines import psr, psr_data
    from saesteer.models import load_model, model_fingerprint
    from saesteer.models.layers import num_layers
    from saesteer.store import Store, data_hash

    store = Store(args.store)
    target = _target(args.coherence_target)
    prompts = psr_data.load_prompts(args.data, args.n_prompts)
    instruction = args.trait if args.trait is not None else psr_data.concept_instruction(args.concept)
    model, tokenizer = load_model(args.model)
    config = psr.PSRConfig(
        layers=_layers(args.layers, num_layers(model)),
        objective=args.objective,
        epochs=args.epochs,
        lr=args.lr,
        batch_size=args.batch_size,
        reg_weight=args.reg_weight,
        dev_fraction=args.dev_fraction,
        seed=args.seed,
    )
    result, calibration = psr.train(
        model,
        tokenizer,
        prompts,
        instruction,
        config,
        max_new_tokens=args.max_new_tokens,
        sample=args.sample,
        alpha=args.alpha,
        coherence_target=target,  # type: ignore[arg-type]
        wandb=not args.no_wandb,
        wandb_dir=Path(args.store) / "wandb",
    )
    artifact = result.artifact
    record = psr.save(
        store,
        args.name,
        artifact,
        data_hash=data_hash({"prompts": prompts, "instruction": instruction}),
        model_fingerprint=model_fingerprint(model),
    )
    m = artifact.metrics
    console.print(
        f"trained {artifact.variant}-PSR ({config.objective}) on layers {artifact.layers} from "
        f"{m['n_train']} triplets; dev: R2 = {m.get('r2', float('nan')):.3f} (constant vector "
        f"{m.get('const_r2', float('nan')):.3f}), cosine = {m.get('cosine', float('nan')):.3f}, "
        f"zero-gate fraction = {m.get('zero_gate_fraction', float('nan')):.3f}"
    )
    if calibration is not None:
        console.print(
            f"alpha = {artifact.alpha:.3f} (coherence proxy {calibration.coherence:.3f}, target "
            f"{calibration.target:.3f}{'' if calibration.reached else ', NOT reached'})"
        )
    console.print(f"stored [bold]{args.name}[/] ({record.id[:8]}) with alpha {artifact.alpha:.3f}")

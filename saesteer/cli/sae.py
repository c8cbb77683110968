"""``saesteer sae train|add``: train an SAE with sae-lens on a plain HF model, or register one."""

from __future__ import annotations

import argparse
from typing import Any

from saesteer.cli.common import console

EXAMPLE = """example:
  saesteer sae train --model smollm2-135m-instruct --layer 8 --d-sae 4608 --k 32 \\
      --tokens 32768 --steps 600 --store runs/store
  saesteer sae add ./my_sae_dir --model smollm2-135m-instruct --layer 8 --store runs/store
  saesteer sae add gemma-scope-2b-pt-res-canonical --sae-id layer_20/width_16k/canonical \\
      --model google/gemma-2-2b --layer 20 --store runs/store        # needs network

corpus: python-docs-chat (default: standard-library docstrings, every other one wrapped in the
model's chat template; offline), python-docs (docstrings only), a .txt/.jsonl file or folder,
or hf:NAME[:SPLIT] (an HF dataset, needs network)."""


def add_parser(subparsers: argparse._SubParsersAction) -> None:
    sae = subparsers.add_parser("sae", help="train or register SAEs (sae-lens)")
    actions = sae.add_subparsers(dest="action", required=True)
    fmt = argparse.RawDescriptionHelpFormatter
    train = actions.add_parser("train", help="train a TopK or JumpReLU SAE", epilog=EXAMPLE, formatter_class=fmt)
    train.add_argument("--model", required=True)
    train.add_argument("--layer", required=True, type=int)
    train.add_argument("--store", required=True)
    train.add_argument("--name", default=None, help="record name (default: sae-l{layer}-{arch}-{d_sae})")
    train.add_argument("--d-sae", type=int, default=4608)
    train.add_argument("--arch", choices=["topk", "jumprelu"], default="topk")
    train.add_argument("--k", type=int, default=32, help="active latents (topk)")
    train.add_argument("--l0-coefficient", type=float, default=2.0, help="sparsity penalty (jumprelu)")
    train.add_argument("--tokens", type=int, default=32_768)
    train.add_argument("--steps", type=int, default=600)
    train.add_argument("--batch-size", type=int, default=1024)
    train.add_argument("--lr", type=float, default=4e-4)
    train.add_argument("--hook-point", choices=["resid_post", "resid_pre"], default="resid_post")
    train.add_argument("--corpus", default="python-docs-chat")
    train.add_argument("--seed", type=int, default=0)
    train.set_defaults(run=run_train)
    add = actions.add_parser(
        "add", help="register an SAE directory or sae-lens release", epilog=EXAMPLE, formatter_class=fmt
    )
    add.add_argument("source", help="sae-lens directory (cfg.json + sae_weights.safetensors) or release name")
    add.add_argument("--sae-id", default=None, help="id inside a sae-lens release")
    add.add_argument("--model", required=True, help="model the SAE belongs to (checked: d_in == hidden size)")
    add.add_argument("--layer", required=True, type=int)
    add.add_argument("--hook-point", choices=["resid_post", "resid_pre"], default="resid_post")
    add.add_argument("--store", required=True)
    add.add_argument("--name", default=None)
    add.set_defaults(run=run_add)


def run_train(args: argparse.Namespace) -> None:
    from saesteer.models import load_model
    from saesteer.saes import SAETrainConfig
    from saesteer.store import Store

    config = SAETrainConfig(
        layer=args.layer,
        d_sae=args.d_sae,
        architecture=args.arch,
        k=args.k,
        l0_coefficient=args.l0_coefficient,
        tokens=args.tokens,
        steps=args.steps,
        batch_size=args.batch_size,
        lr=args.lr,
        hook_point=args.hook_point,
        corpus=args.corpus,
        seed=args.seed,
    )
    store = Store(args.store)
    model, tokenizer = load_model(args.model)
    train_and_store(model, tokenizer, config, store, args.name)


def train_and_store(model: Any, tokenizer: Any, config: Any, store: Any, name: str | None) -> None:
    """Train an SAE (``SAETrainConfig``) on ``model``, keep it in ``store``, and print its quality."""
    from saesteer.models import model_fingerprint
    from saesteer.models.loading import model_id
    from saesteer.saes import train_sae

    sae, metrics = train_sae(model, tokenizer, config)
    name = name or f"sae-l{config.layer}-{config.architecture}-{config.d_sae}"
    record = store.save_sae(
        name,
        sae,
        model_id=model_id(model),
        layer=config.layer,
        hook_point=config.hook_point,
        metrics=metrics,
        model_fingerprint=model_fingerprint(model),
        data_hash=metrics["data_hash"],
    )
    console.print(
        f"stored [bold]{name}[/] ({record.id[:8]}): explained variance {metrics['explained_variance']:.3f}, "
        f"L0 {metrics['l0']:.1f} on {metrics['eval_tokens']} held-out tokens; "
        f"{metrics['dead_fraction']:.1%} of latents never fired on {metrics['train_tokens']} training tokens"
    )


def run_add(args: argparse.Namespace) -> None:
    from saesteer.models import load_model
    from saesteer.saes import load_sae
    from saesteer.store import Store

    sae = load_sae(args.source, args.sae_id)
    model, _ = load_model(args.model)
    register(
        model,
        sae,
        Store(args.store),
        args.name,
        source=args.source,
        sae_id=args.sae_id,
        layer=args.layer,
        hook_point=args.hook_point,
    )


def register(
    model: Any, sae: Any, store: Any, name: str | None, *, source: str, sae_id: str | None, layer: int, hook_point: str
) -> None:
    """Keep a loaded SAE as ``model``'s SAE for ``layer`` (d_in checked against the model's width)."""
    from saesteer.models.loading import model_id
    from saesteer.saes import check_sae_fits

    check_sae_fits(model, sae)
    name = name or f"sae-l{layer}"
    record = store.save_sae(
        name,
        sae,
        model_id=model_id(model),
        layer=layer,
        hook_point=hook_point,
        metrics={"source": str(source), "sae_id": sae_id},
    )
    console.print(f"registered [bold]{name}[/] ({record.id[:8]}): d_in {sae.cfg.d_in}, d_sae {sae.cfg.d_sae}")

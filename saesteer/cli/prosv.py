"""``saesteer train prosv``: train a prompt-only steering vector (and its factor) for one concept, store it."""

from __future__ import annotations

import argparse
from typing import Any

from saesteer.cli.common import console

EXAMPLE = """example:
  saesteer train prosv --model smollm2-135m-instruct --layer 12 --store runs/store --name cpp \\
      --data saesteer/data/samples/axbench/train.jsonl \\
      --concept "C/C++ programming syntax elements such as data types, function definitions, and variable declarations"
  saesteer train prosv --model M --layer 12 --store runs/store --name pirate --concept "pirate speech" --loss simpo
  saesteer train prosv ... --positions all --name cpp-fssv            # the full-sequence (FSSV) baseline
  saesteer generate --model M --store runs/store --vector cpp --alpha=1 "Tell me about your weekend."

data (--data): JSONL rows {instruction, concept_response, neutral_response} (neutral needed for simpo only),
or the AxBench train format {input, output, concept_id, category, genre} (the concept's positive rows;
--concept is looked up in concepts.jsonl beside the file, or pass --concept-id; simpo's neutral responses
are the model's own answers). Without --data, --generator (default: the bundled instruct model) writes
both responses for --num-instructions instructions (default: the shipped AxBench train instructions).

The trained factor is used as is (alpha=1 means "as trained"; other values multiply it).
Defaults: the released Gemma-2-2B configs, learning rates rescaled to the model's width."""


def add_train_parser(methods: argparse._SubParsersAction) -> None:
    p = methods.add_parser(
        "prosv",
        help="PrOSV: prompt-only steering vector with a jointly trained factor",
        epilog=EXAMPLE,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("--model", required=True, help="bundled alias, .gguf file, HF directory or hub name")
    p.add_argument("--concept", required=True, help="concept description (or an AxBench concept id)")
    p.add_argument("--data", default=None, help="training triples or AxBench train file (default: build them)")
    p.add_argument("--concept-id", type=int, default=None, help="AxBench concept id (instead of a lookup)")
    p.add_argument("--layer", required=True, type=int)
    p.add_argument("--store", required=True)
    p.add_argument("--name", required=True)
    p.add_argument("--loss", choices=["lang", "simpo"], default="lang")
    p.add_argument("--positions", default="f2+l2", help="f{p}+l{s}, f{p}, l{s}, or all (FSSV baseline)")
    p.add_argument("--epochs", type=int, default=12)
    p.add_argument("--batch-size", type=int, default=None, help="default: 12 (lang), 6 (simpo)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--max-examples", type=int, default=None, help="use at most this many training examples")
    p.add_argument("--max-response-tokens", type=int, default=128)
    p.add_argument("--factor-init", type=float, default=4.0, help="beta: alpha0 = beta * sqrt(hidden size)")
    p.add_argument("--vector-init", type=float, default=8.0, help="lambda: v0 ~ U(+-lambda / sqrt(hidden size))")
    p.add_argument("--factor-lr", type=float, default=None, help="default: released rate x sqrt(n / 2304)")
    p.add_argument("--vector-lr", type=float, default=None, help="default: 4e-2 x sqrt(2304 / n)")
    p.add_argument("--generator", default=None, help="model that writes the data without --data (default: bundled)")
    p.add_argument("--instructions", default=None, help="instructions file for building data (JSONL)")
    p.add_argument("--num-instructions", type=int, default=36)
    p.add_argument("--wandb-project", default="saesteer", help="wandb project (offline unless WANDB_MODE is set)")
    p.add_argument("--no-wandb", action="store_true", help="do not log to wandb")
    p.set_defaults(run=run_train)


def _triples(args: argparse.Namespace, model: Any, tokenizer: Any) -> list[Any]:
    from saesteer.engines import prosv_data
    from saesteer.models import DEFAULT_MODEL, load_model

    if args.data is not None:
        triples = prosv_data.load_triples(
            args.data, concept=args.concept, concept_id=args.concept_id, limit=args.max_examples
        )
    else:
        name = args.generator or DEFAULT_MODEL
        writer, writer_tokenizer = (model, tokenizer) if name == args.model else load_model(name)
        limit = min(args.num_instructions, args.max_examples or args.num_instructions)
        instructions = prosv_data.load_instructions(args.instructions, limit=limit)
        triples = prosv_data.build_triples(
            writer, writer_tokenizer, args.concept, instructions, max_new_tokens=args.max_response_tokens
        )
    if args.loss == "simpo":
        triples = prosv_data.fill_neutral(model, tokenizer, triples, max_new_tokens=args.max_response_tokens)
    return triples


def run_train(args: argparse.Namespace) -> None:
    from dataclasses import asdict

    from saesteer.engines import prosv
    from saesteer.models import load_model, model_fingerprint
    from saesteer.store import Store, data_hash

    config = prosv.ProsvConfig(
        layer=args.layer,
        loss=args.loss,
        positions=args.positions,
        epochs=args.epochs,
        batch_size=args.batch_size,
        factor_init=args.factor_init,
        vector_init=args.vector_init,
        factor_lr=args.factor_lr,
        vector_lr=args.vector_lr,
        max_response_tokens=args.max_response_tokens,
        seed=args.seed,
        wandb_project=None if args.no_wandb else args.wandb_project,
        wandb_dir=args.store,
    )
    store = Store(args.store)
    model, tokenizer = load_model(args.model)
    triples = _triples(args, model, tokenizer)
    artifact = prosv.fit(model, tokenizer, triples, config, concept=args.concept)
    record = prosv.save(
        store,
        args.name,
        artifact,
        data_hash=data_hash([asdict(t) for t in triples]),
        model_fingerprint=model_fingerprint(model),
    )
    m = artifact.metrics
    console.print(
        f"stored [bold]{args.name}[/] (layer {artifact.layer}, {artifact.positions}, id {record.id[:8]}): "
        f"factor={m['factor']:.2f}, |v|={m['direction_norm']:.3f}, loss {m['loss_first_step']:.3f} -> "
        f"{m['loss_last_epoch']:.3f} on {m['n_train']} examples"
    )

"""``saesteer train caa``: fit contrastive vectors and store them."""

from __future__ import annotations

import argparse

from saesteer.cli import corrsteer, prosv, psr
from saesteer.cli.common import console, int_list

EXAMPLE = """example:
  saesteer train caa --model smollm2-135m-instruct --layer 8 \\
      --data pairs.jsonl --store runs/store --name sentiment-l8

data: a JSON array or JSONL of A/B items (question, answer_matching_behavior,
answer_not_matching_behavior) or completion pairs (positive, negative[, prompt])."""


def add_parser(subparsers: argparse._SubParsersAction) -> None:
    train = subparsers.add_parser("train", help="fit a steering artifact and store it")
    methods = train.add_subparsers(dest="method", required=True)
    caa = methods.add_parser(
        "caa",
        help="contrastive activation addition (mean difference)",
        epilog=EXAMPLE,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    caa.add_argument("--model", required=True, help="bundled alias, .gguf file, HF directory or hub name")
    caa.add_argument("--data", required=True, help="contrastive pairs (.json or .jsonl)")
    caa.add_argument("--layer", required=True, type=int_list, help="layer index, or a comma list (one vector each)")
    caa.add_argument("--store", required=True, help="store directory (created if missing)")
    caa.add_argument("--name", required=True, help="record name; with several layers '-l{L}' is appended")
    caa.add_argument(
        "--read",
        default="auto",
        choices=["auto", "answer", "mean", "last"],
        help="A/B: answer-letter token (auto); pairs: mean over completion tokens (auto)",
    )
    caa.add_argument("--batch-size", type=int, default=8)
    caa.set_defaults(run=run_caa)
    corrsteer.add_train_parser(methods)
    prosv.add_train_parser(methods)
    psr.add_train_parser(methods)


def run_caa(args: argparse.Namespace) -> None:
    from saesteer.data import read_rows
    from saesteer.engines import caa
    from saesteer.models import load_model, model_fingerprint
    from saesteer.store import Store, data_hash

    store = Store(args.store)
    model, tokenizer = load_model(args.model)
    vectors = caa.fit(model, tokenizer, args.data, layers=args.layer, read=args.read, batch_size=args.batch_size)
    rows_hash = data_hash(read_rows(args.data))
    fingerprint = model_fingerprint(model)
    for layer, vector in vectors.items():
        name = args.name if len(vectors) == 1 else f"{args.name}-l{layer}"
        record = store.save_vector(name, vector, data_hash=rows_hash, model_fingerprint=fingerprint)
        metrics = ", ".join(f"{k}={v:.3f}" for k, v in vector.metrics.items())
        console.print(f"stored [bold]{name}[/] (layer {layer}, id {record.id[:8]}): {metrics}")

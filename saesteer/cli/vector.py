"""``saesteer vector export|import|fold``: move vectors between the store, llama.cpp and plain files."""

from __future__ import annotations

import argparse
from pathlib import Path

from saesteer.cli.common import console

EXAMPLE = """example:
  saesteer vector export --store runs/store sentiment-l8 --out sentiment.gguf --model-hint llama
  saesteer vector import sentiment.gguf --store runs/other --name sentiment --model smollm2-135m-instruct
  saesteer vector fold --store runs/store sentiment-l8 --alpha 4 --model smollm2-135m-instruct --out folded/

.gguf files are llama.cpp control vectors (direction.{layer}); .safetensors files hold {"layer": vector}."""


def add_parser(subparsers: argparse._SubParsersAction) -> None:
    fmt = argparse.RawDescriptionHelpFormatter
    vec = subparsers.add_parser(
        "vector", help="export/import/fold steering vectors", epilog=EXAMPLE, formatter_class=fmt
    )
    actions = vec.add_subparsers(dest="action", required=True)
    export = actions.add_parser(
        "export", help="write stored vectors to .gguf or .safetensors", epilog=EXAMPLE, formatter_class=fmt
    )
    export.add_argument("names", nargs="+", help="stored vector names (one per layer)")
    export.add_argument("--store", required=True)
    export.add_argument("--out", required=True, help="file ending in .gguf or .safetensors")
    export.add_argument("--model-hint", default="llama", help="model type recorded in a GGUF file")
    export.add_argument("--scale", type=float, default=1.0, help="bake a strength into the file")
    export.set_defaults(run=run_export)
    imp = actions.add_parser("import", help="add the vectors of a .gguf or .safetensors file to a store")
    imp.add_argument("file")
    imp.add_argument("--store", required=True)
    imp.add_argument("--name", required=True, help="record name; '-l{layer}' is appended per layer")
    imp.add_argument("--model", default="", help="model id the vectors belong to")
    imp.set_defaults(run=run_import)
    fold = actions.add_parser("fold", help="write a model copy with alpha*v folded into its weights")
    fold.add_argument("name")
    fold.add_argument("--store", required=True)
    fold.add_argument("--model", required=True)
    fold.add_argument("--alpha", type=float, required=True)
    fold.add_argument("--out", required=True)
    fold.set_defaults(run=run_fold)


def run_export(args: argparse.Namespace) -> None:
    from saesteer.interop import export_gguf_control_vector, export_layer_tensors
    from saesteer.store import Store

    store = Store(args.store)
    vectors = [store.load_vector(name) for name in args.names]
    if args.out.endswith(".gguf"):
        export_gguf_control_vector(vectors, args.out, model_hint=args.model_hint, scale=args.scale)
    else:
        export_layer_tensors(vectors, args.out, scale=args.scale)
    console.print(f"wrote {len(vectors)} layer(s) to {args.out}")


def run_import(args: argparse.Namespace) -> None:
    from saesteer.interop import import_gguf_control_vector, import_layer_tensors
    from saesteer.store import Store

    loaded = import_gguf_control_vector(args.file) if args.file.endswith(".gguf") else import_layer_tensors(args.file)
    store = Store(args.store)
    for vector in loaded.steering_vectors(model_id=args.model, method=f"imported:{Path(args.file).suffix[1:]}"):
        record = store.save_vector(f"{args.name}-l{vector.layer}", vector)
        console.print(f"stored [bold]{record.name}[/] (layer {vector.layer}, |v| {vector.norm:.2f})")


def run_fold(args: argparse.Namespace) -> None:
    from saesteer.interop import fold_vector
    from saesteer.models import load_model
    from saesteer.store import Store

    vector = Store(args.store).load_vector(args.name)
    model, tokenizer = load_model(args.model)
    path = fold_vector(model, vector, args.alpha, args.out, tokenizer=tokenizer)
    console.print(f"wrote {path}: load it with AutoModelForCausalLM.from_pretrained (no saesteer needed)")

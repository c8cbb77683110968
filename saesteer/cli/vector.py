"""``saesteer vector export|import|fold``: move single-vector artifacts between the store, llama.cpp and files."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from saesteer.cli.common import console

EXAMPLE = """example:
  saesteer vector export --store runs/store sentiment-l8 --out sentiment.gguf --model-hint llama
  saesteer vector import sentiment.gguf --store runs/other --name sentiment --model smollm2-135m-instruct
  saesteer vector fold --store runs/store sentiment-l8 --alpha 4 --model smollm2-135m-instruct --out folded/
  saesteer vector orthogonalize --store runs/store refuse --model smollm2-135m-instruct --out ablated/

.gguf files are llama.cpp control vectors (direction.{layer}); .safetensors files hold {"layer": vector}.
export and fold take any artifact that is one constant vector at one layer (CAA, PrOSV: its trained
factor x v, single-layer CorrSteer, imported vectors); the file or the folded weights apply it at every
token. Token-gated PSR probes and multi-layer CorrSteer artifacts are steered at run time instead."""


def add_parser(subparsers: argparse._SubParsersAction) -> None:
    fmt = argparse.RawDescriptionHelpFormatter
    vec = subparsers.add_parser(
        "vector", help="export/import/fold steering vectors", epilog=EXAMPLE, formatter_class=fmt
    )
    actions = vec.add_subparsers(dest="action", required=True)
    export = actions.add_parser(
        "export", help="write stored vectors to .gguf or .safetensors", epilog=EXAMPLE, formatter_class=fmt
    )
    export.add_argument("names", nargs="+", help="stored single-vector artifacts (one per layer)")
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
    ortho = actions.add_parser(
        "orthogonalize", help="write a model copy with a stored ablation direction projected out of its weights"
    )
    ortho.add_argument("name", help="a stored all-layers directional ablation (saesteer train ablation)")
    ortho.add_argument("--store", required=True)
    ortho.add_argument("--model", required=True)
    ortho.add_argument("--out", required=True)
    ortho.set_defaults(run=run_orthogonalize)


def single_vector(store: Any, name: str, model: Any = None) -> Any:
    """The stored artifact ``name`` as one SteeringVector (its ``additive_vector()``); a VectorError naming
    the fix when it is not one constant vector at one layer."""
    from saesteer.errors import VectorError
    from saesteer.vectors import SteeringVector

    artifact = store.load(name, model)
    found = artifact.additive_vector()
    if found is None:
        layers = ", ".join(map(str, artifact.layers)) or "none"
        raise VectorError(
            f"{name!r} ({artifact.method}, layers {layers}) is not one constant vector at one layer, so it has no "
            "single-vector file or weight form. Fix: export/fold a single-layer additive artifact (CAA, PrOSV, "
            "one-layer CorrSteer, an imported vector), or steer with this one at run time (saesteer generate)."
        )
    layer, vector = found
    return SteeringVector(
        vector, layer, hook_point=artifact.hook_point, method=artifact.method, model_id=artifact.model_id
    )


def run_export(args: argparse.Namespace) -> None:
    from saesteer.interop import export_gguf_control_vector, export_layer_tensors
    from saesteer.store import Store

    store = Store(args.store)
    vectors = [single_vector(store, name) for name in args.names]
    if args.out.endswith(".gguf"):
        export_gguf_control_vector(vectors, args.out, model_hint=args.model_hint, scale=args.scale)
    else:
        export_layer_tensors(vectors, args.out, scale=args.scale)
    console.print(f"wrote {len(vectors)} layer(s) to {args.out} (applied at every token there)")


def run_import(args: argparse.Namespace) -> None:
    from saesteer.interop import import_gguf_control_vector, import_layer_tensors
    from saesteer.store import Store

    loaded = import_gguf_control_vector(args.file) if args.file.endswith(".gguf") else import_layer_tensors(args.file)
    store = Store(args.store)
    for vector in loaded.steering_vectors(model_id=args.model, method="vector"):
        vector.config["imported_from"] = Path(args.file).name
        record = store.save(f"{args.name}-l{vector.layer}", vector)
        console.print(f"stored [bold]{record.name}[/] (layer {vector.layer}, |v| {vector.norm:.2f})")


def run_fold(args: argparse.Namespace) -> None:
    from saesteer.interop import fold_vector
    from saesteer.models import load_model
    from saesteer.store import Store, check_artifact_fits

    store = Store(args.store)
    vector = single_vector(store, args.name)  # a missing, damaged or non-additive artifact fails before the model loads
    model, tokenizer = load_model(args.model)
    check_artifact_fits(vector, model, args.name)
    path = fold_vector(model, vector, args.alpha, args.out, tokenizer=tokenizer)
    console.print(f"wrote {path}: load it with AutoModelForCausalLM.from_pretrained (no saesteer needed)")


def run_orthogonalize(args: argparse.Namespace) -> None:
    from saesteer.errors import VectorError
    from saesteer.interop import orthogonalize_model
    from saesteer.models import load_model
    from saesteer.store import Store, check_artifact_fits

    artifact = Store(args.store).load(args.name)  # a missing or damaged artifact fails before the model loads
    if artifact.method != "ablation":
        raise VectorError(
            f"{args.name!r} is a {artifact.method} artifact, not a directional ablation. "
            "Fix: orthogonalize an artifact made by 'saesteer train ablation' (fold additive vectors instead)."
        )
    model, tokenizer = load_model(args.model)
    check_artifact_fits(artifact, model, args.name)
    path = orthogonalize_model(model, artifact, args.out, tokenizer=tokenizer)
    console.print(f"wrote {path}: load it with AutoModelForCausalLM.from_pretrained (no saesteer needed)")

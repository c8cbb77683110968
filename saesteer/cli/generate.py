"""``saesteer generate``: unsteered vs steered generations side by side, for any stored artifact."""

from __future__ import annotations

import argparse

from saesteer.cli.common import console, float_list

EXAMPLE = """example:
  saesteer generate --model smollm2-135m-instruct --store runs/store \\
      --vector sentiment-l8 --alpha=-4,4 "How was your weekend?" "Describe your city."

--vector: any stored artifact (CAA, CorrSteer, PrOSV, PSR, imported vectors); alpha multiplies it
(PrOSV: its trained factor, PSR: its calibrated strength). All alphas and prompts run as one batched
generate call (per-row alphas)."""


def add_parser(subparsers: argparse._SubParsersAction) -> None:
    gen = subparsers.add_parser(
        "generate",
        help="generate with a stored artifact, next to the unsteered text",
        epilog=EXAMPLE,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    gen.add_argument("prompts", nargs="+", help="user prompts (chat-formatted)")
    gen.add_argument("--model", required=True)
    gen.add_argument("--store", required=True)
    gen.add_argument("--vector", required=True, help="name of a stored artifact")
    gen.add_argument(
        "--alpha", type=float_list, default=[4.0], help="multiplier(s), comma list; negative: --alpha=-4,4"
    )
    gen.add_argument("--positions", default=None, help="policy (default: the artifact's own, e.g. after_prompt)")
    gen.add_argument("--max-new-tokens", type=int, default=40)
    gen.set_defaults(run=run_generate)


def run_generate(args: argparse.Namespace) -> None:
    from rich.table import Table

    from saesteer.errors import VectorError
    from saesteer.generation import sweep
    from saesteer.models import load_model
    from saesteer.store import Store, check_artifact_fits

    artifact = Store(args.store).load(args.vector)  # a missing name or damaged blob fails before the model loads
    model, tokenizer = load_model(args.model)
    check_artifact_fits(artifact, model, args.vector)
    if not artifact.layers:
        raise VectorError(
            f"{args.vector!r} ({artifact.method}) steers no layer (e.g. CorrSteer variant P kept none). "
            "Fix: refit it with another variant or more samples, or pick another artifact."
        )
    alphas = [0.0, *[a for a in args.alpha if a != 0.0]]
    grid = sweep(
        model,
        tokenizer,
        artifact,
        args.prompts,
        alphas,
        positions=args.positions,
        max_new_tokens=args.max_new_tokens,
        batch_size=len(alphas) * len(args.prompts),
    )
    layers = ", ".join(map(str, artifact.layers))
    positions = args.positions or artifact.state().get("positions", "its own positions")
    title = f"{args.vector} ({artifact.method}, layer{'s' if len(artifact.layers) > 1 else ''} {layers}, {positions})"
    table = Table(title=title, show_lines=True)
    table.add_column("prompt", style="bold")
    for alpha in alphas:
        table.add_column("unsteered" if alpha == 0.0 else f"alpha {alpha:+g}")
    for index, prompt in enumerate(args.prompts):
        table.add_row(prompt, *[grid[a][index] for a in alphas])
    console.print(table)

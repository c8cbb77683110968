"""``saesteer generate``: unsteered vs steered generations side by side, for any stored artifact, SAE latent
edits (``--feature``), extra artifacts at alpha 1 (``--ablate``) and a condition on all of it (``--when``)."""

from __future__ import annotations

import argparse
from dataclasses import dataclass, field
from typing import Any

from saesteer.cli.common import (
    add_backend_flag,
    add_end_marker_flag,
    apply_end_marker,
    check_fits,
    console,
    float_list,
)

EXAMPLE = """example:
  saesteer generate --model smollm2-135m-instruct --store runs/store \\
      --vector sentiment-l8 --alpha=-4,4 "How was your weekend?" "Describe your city."
  saesteer generate --model smollm2-135m-instruct --store runs/store \\
      --feature 8:123=5 --feature 8:77=0 --when latent:6:40>1.5 "Describe your city."

--vector: any stored artifact (CAA, CorrSteer, PrOSV, PSR, SAE edits, imported vectors); alpha multiplies it
(PrOSV: its trained factor, PSR: its calibrated strength). --feature L:IDX=V clamps latent IDX of the
store's layer-L SAE to V (L:IDX+=V adds, L:IDX*=V scales, L:IDX=0 ablates; the SAE error term is kept);
alpha scales the edit (1 = as written, the default without --vector). --ablate NAME adds artifact NAME at
alpha 1 to every steered column. --when latent:L:IDX>T or proj:NAME>T steers only tokens where the condition
holds. All alphas and prompts run as one batched generate call (per-row alphas); --backend vllm sends them
to a vLLM engine as one request list (greedy output equals hf's; --when runs on hf only)."""


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
    gen.add_argument("--vector", default=None, help="name of a stored artifact (optional with --feature/--ablate)")
    gen.add_argument(
        "--feature",
        action="append",
        default=[],
        metavar="L:IDX=V",
        help="SAE latent edit with the store's layer-L SAE: L:IDX=V, L:IDX+=V, L:IDX*=V, L:IDX=0 (repeatable)",
    )
    gen.add_argument(
        "--ablate", action="append", default=[], metavar="NAME", help="also apply stored artifact NAME at alpha 1"
    )
    gen.add_argument("--when", default=None, metavar="SPEC", help="steer only where latent:L:IDX>T or proj:NAME>T")
    gen.add_argument(
        "--alpha",
        type=float_list,
        default=None,
        help="multiplier(s), comma list; negative: --alpha=-4,4 (default 4 with --vector, else 1)",
    )
    gen.add_argument("--positions", default=None, help="policy (default: the artifact's own, e.g. after_prompt)")
    add_end_marker_flag(gen)
    gen.add_argument("--max-new-tokens", type=int, default=40)
    add_backend_flag(gen)
    gen.set_defaults(run=run_generate)


@dataclass
class Combined:
    """Everything one ``generate`` call steers with: the vector and feature edits at each row's alpha, the
    ``--ablate`` artifacts at alpha 1 on every steered row (alpha != 0), all under ``condition`` if given."""

    vector: Any = None
    features: Any = None
    ablations: list[Any] = field(default_factory=list)
    condition: Any = None

    def interventions(
        self, alpha: Any = 1.0, positions: Any = None, layer: int | None = None, hook_point: Any = None
    ) -> list[Any]:
        import torch

        from saesteer.runtime.conditions import when

        items = []
        for part in (self.vector, self.features):
            if part is not None:
                items += part.interventions(alpha=alpha, positions=positions)
        steered = (torch.as_tensor(alpha, dtype=torch.float64) != 0).double()
        for ablation in self.ablations:
            items += ablation.interventions(alpha=steered)
        return when(items, self.condition) if self.condition is not None else items


def _check_specs(args: argparse.Namespace) -> None:
    """Flag syntax, checked before the model loads."""
    from saesteer.engines.sae_edit.spec import parse_edit, parse_when
    from saesteer.errors import ConfigError

    if args.vector is None and not args.feature and not args.ablate:
        raise ConfigError("Nothing to steer with. Fix: pass --vector NAME, --feature L:IDX=V or --ablate NAME.")
    for spec in args.feature:
        if parse_edit(spec)[0] is None:
            raise ConfigError(
                f"--feature {spec!r} names no layer. Fix: write L:{spec.strip()} (e.g. 8:{spec.strip()})."
            )
    if args.when is not None:
        parse_when(args.when)
        if args.backend == "vllm":
            raise ConfigError(
                "--when (conditional steering) reads hidden states token by token and runs on the hf backend only. "
                "Fix: drop --backend vllm (or --when)."
            )


def _title(args: argparse.Namespace, steering: Combined) -> str:
    parts = [steering.vector, steering.features, *steering.ablations]
    layers = sorted({layer for part in parts if part is not None for layer in part.layers})
    positions = args.positions or (steering.vector or steering.features or steering.ablations[0]).state().get(
        "positions", "its own positions"
    )
    where = f"layer{'s' if len(layers) > 1 else ''} {', '.join(map(str, layers))}, {positions}"
    if steering.vector is not None and not args.feature and not args.ablate and args.when is None:
        return f"{args.vector} ({steering.vector.method}, {where})"
    names = [args.vector] if args.vector else []
    names += [f"feature {spec}" for spec in args.feature] + [f"ablate {name}" for name in args.ablate]
    return f"{' + '.join(names)} ({where}{f', when {args.when}' if args.when else ''})"


def run_generate(args: argparse.Namespace) -> None:
    from rich.table import Table

    from saesteer.backends import load
    from saesteer.engines.sae_edit import build_edits
    from saesteer.engines.sae_edit.spec import parse_when, resolve_condition
    from saesteer.errors import VectorError
    from saesteer.generation import sweep
    from saesteer.store import Store

    _check_specs(args)
    store = Store(args.store)
    names = ([args.vector] if args.vector else []) + list(args.ablate)
    loaded = {name: store.load(name) for name in names}  # a missing name or damaged blob fails before the model loads
    model, tokenizer = load(args.model, backend=args.backend)
    apply_end_marker(model, tokenizer, args.end_marker)
    for name, artifact in loaded.items():
        check_fits(artifact, model, name)
        if not artifact.layers:
            raise VectorError(
                f"{name!r} ({artifact.method}) steers no layer (e.g. CorrSteer variant P kept none). "
                "Fix: refit it with another variant or more samples, or pick another artifact."
            )
    steering = Combined(
        vector=loaded[args.vector] if args.vector else None,
        features=build_edits(model, store, args.feature) if args.feature else None,
        ablations=[loaded[name] for name in args.ablate],
        condition=resolve_condition(parse_when(args.when), store, model) if args.when else None,
    )
    alpha = args.alpha if args.alpha is not None else [4.0 if args.vector else 1.0]
    alphas = [0.0, *[a for a in alpha if a != 0.0]]
    grid = sweep(
        model,
        tokenizer,
        steering,
        args.prompts,
        alphas,
        positions=args.positions,
        max_new_tokens=args.max_new_tokens,
        batch_size=len(alphas) * len(args.prompts),
    )
    table = Table(title=_title(args, steering), show_lines=True)
    table.add_column("prompt", style="bold")
    for value in alphas:
        table.add_column("unsteered" if value == 0.0 else f"alpha {value:+g}")
    for index, prompt in enumerate(args.prompts):
        table.add_row(prompt, *[grid[a][index] for a in alphas])
    console.print(table)

"""``saesteer train METHOD``: one subcommand per registered method, its flags derived from the method's Config."""

from __future__ import annotations

import argparse

from saesteer.cli.config_flags import add_config_flags, config_values
from saesteer.cli.method_docs import epilog

DRIVER = ("model", "store", "name", "config", "wandb_project")


def add_parser(subparsers: argparse._SubParsersAction) -> None:
    """``train`` with a subcommand for every method in the registry (built once the registry is loaded)."""
    from saesteer.engines.registry import get_method, method_names

    train = subparsers.add_parser("train", help="fit a steering artifact and store it")
    methods = train.add_subparsers(dest="method", required=True)
    for name in method_names():
        method = get_method(name)
        parser = methods.add_parser(
            name, help=method.summary, description=method.summary, formatter_class=argparse.RawDescriptionHelpFormatter
        )
        parser.add_argument("--model", required=True, help="bundled alias, .gguf file, HF directory or hub name")
        parser.add_argument("--store", required=True, help="store directory (created if missing)")
        parser.add_argument("--name", required=True, help="record name of the artifact")
        parser.add_argument("--config", default=None, metavar="FILE", help="YAML/JSON mapping of config fields")
        parser.add_argument(
            "--wandb-project", default=None, metavar="NAME", help="log the fit to wandb (offline unless WANDB_MODE)"
        )
        parser.epilog = epilog(method, add_config_flags(parser, method.config, reserved=DRIVER))
        parser.set_defaults(run=run_train)


def run_train(args: argparse.Namespace) -> None:
    """Validate the config (before any model loads), fit through the training driver, print what was stored."""
    from saesteer.cli.reports import print_report
    from saesteer.engines.registry import get_method
    from saesteer.engines.training import parse_config, train
    from saesteer.models import load_model
    from saesteer.store import Store

    method = get_method(args.method)
    settings = parse_config(method, config_values(args, method.config, args.config))
    store = Store(args.store)
    model, tokenizer = load_model(args.model)
    fitted, record = train(
        method, model, tokenizer, settings, store=store, name=args.name, wandb_project=args.wandb_project
    )
    if record is not None:  # only rank 0 writes (and reports)
        print_report(method.name, args.name, fitted, record)

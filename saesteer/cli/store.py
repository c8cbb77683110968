"""``saesteer store ls|show|rm``: inspect the catalog."""

from __future__ import annotations

import argparse
import json

from saesteer.cli.common import console


def add_parser(subparsers: argparse._SubParsersAction) -> None:
    st = subparsers.add_parser("store", help="list, show or remove store records")
    st.add_argument("--store", required=True, help="store directory")
    actions = st.add_subparsers(dest="action", required=True)
    ls = actions.add_parser("ls", help="list records (newest first)")
    ls.add_argument("--kind", default=None)
    ls.set_defaults(run=run_ls)
    show = actions.add_parser("show", help="show one record's provenance")
    show.add_argument("name")
    show.set_defaults(run=run_show)
    rm = actions.add_parser("rm", help="delete the latest record with this name (or id)")
    rm.add_argument("name")
    rm.set_defaults(run=run_rm)


def run_ls(args: argparse.Namespace) -> None:
    from rich.table import Table

    from saesteer.store import Store

    table = Table(title=str(args.store))
    for column in ("name", "kind", "method", "model", "layer", "hook", "created", "id"):
        table.add_column(column)
    for r in Store(args.store).find(kind=args.kind):
        table.add_row(r.name, r.kind, r.method, r.model_id, str(r.layer), r.hook_point, r.created[:19], r.id[:8])
    console.print(table)


def run_show(args: argparse.Namespace) -> None:
    from dataclasses import asdict

    from saesteer.store import Store

    console.print_json(json.dumps(asdict(Store(args.store).get(args.name)), default=str))


def run_rm(args: argparse.Namespace) -> None:
    from saesteer.store import Store

    record = Store(args.store).delete(args.name)
    console.print(f"removed {record.kind} {record.name!r} ({record.id[:8]})")

"""``saesteer store ls|show|rm|export|import|verify|gc``: inspect, move and check a store.

Every damage to a store (catalog, WAL, blobs) ends in ``error: ... Fix: ...`` (see saesteer.store)."""

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
    export = actions.add_parser("export", help="copy records (latest per name; all if none given) to a bundle")
    export.add_argument("names", nargs="*")
    export.add_argument("--out", required=True, help="bundle directory (records.jsonl + blobs/)")
    export.set_defaults(run=run_export)
    imp = actions.add_parser("import", help="add the records of an exported bundle (checksums verified)")
    imp.add_argument("bundle")
    imp.set_defaults(run=run_import)
    verify = actions.add_parser("verify", help="check the catalog, every row and every blob (checksum, provenance)")
    verify.set_defaults(run=run_verify)
    gc = actions.add_parser("gc", help="remove blob files no record points to (left by interrupted writes)")
    gc.set_defaults(run=run_gc)


def run_ls(args: argparse.Namespace) -> None:
    from rich.table import Table

    from saesteer.store import Store

    table = Table(title=str(args.store))
    for column in ("name", "kind", "method", "model", "layer", "hook", "metrics", "created", "id"):
        table.add_column(column)
    for r in Store(args.store).find(kind=args.kind):
        metrics = ", ".join(f"{k}={v:.3g}" for k, v in r.metrics.items() if isinstance(v, (int, float)))
        layer = "" if r.layer is None else str(r.layer)
        table.add_row(r.name, r.kind, r.method, r.model_id, layer, r.hook_point, metrics[:40], r.created[:19], r.id[:8])
    console.print(table)


def run_show(args: argparse.Namespace) -> None:
    from dataclasses import asdict

    from saesteer.store import Store

    console.print_json(json.dumps(asdict(Store(args.store).get(args.name)), default=str))


def run_rm(args: argparse.Namespace) -> None:
    from saesteer.store import Store

    record = Store(args.store).delete(args.name)
    console.print(f"removed {record.kind} {record.name!r} ({record.id[:8]})")


def run_export(args: argparse.Namespace) -> None:
    from saesteer.store import Store

    records = Store(args.store).export(args.names or None, args.out)
    console.print(f"exported {len(records)} record(s) to {args.out}")


def run_import(args: argparse.Namespace) -> None:
    from saesteer.store import Store

    added = Store(args.store).import_bundle(args.bundle)
    console.print(f"imported {len(added)} record(s) from {args.bundle}")


def run_verify(args: argparse.Namespace) -> None:
    from rich.text import Text

    from saesteer.errors import StoreError
    from saesteer.store import Store

    problems = Store(args.store).verify()
    if problems:
        for problem in problems:
            console.print(Text.assemble(("damaged: ", "red"), problem), soft_wrap=True)
        raise StoreError(
            f"{len(problems)} problem(s) in store {args.store} (listed above). Fix: remove each damaged record "
            f"(saesteer store --store {args.store} rm NAME_OR_ID) and refit it or import it again from a bundle "
            "(saesteer store --store DIR import BUNDLE); for a damaged catalog restore catalog.sqlite from a backup."
        )
    console.print("all records verified")


def run_gc(args: argparse.Namespace) -> None:
    from saesteer.store import Store

    removed = Store(args.store).gc()
    console.print(f"removed {len(removed)} orphan blob file(s)")

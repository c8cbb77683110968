"""Command-line flags derived from a method's pydantic Config: one ``--field-name`` per field.

argparse parses each flag by the field's annotation (int, float, str, bool as ``--x/--no-x``, Literal as
choices, lists and ``'all' | list`` as comma lists); the Config then validates the merged values, so value
errors (ranges, position specs, unknown fields in ``--config FILE``) are ConfigErrors that name the fix.
"""

from __future__ import annotations

import argparse
import types
from collections.abc import Callable, Collection
from pathlib import Path
from typing import Any, Literal, Union, get_args, get_origin

import yaml
from pydantic import BaseModel
from pydantic.fields import FieldInfo
from pydantic_core import PydanticUndefined

from saesteer.errors import ConfigError

PREFIX = "config_field:"  # namespace dest of a Config flag (never clashes with the driver's own options)
_SCALARS: dict[type, str] = {int: "INT", float: "FLOAT", str: "TEXT"}


def flag(field: str) -> str:
    """``batch_size`` -> ``--batch-size``."""
    return "--" + field.replace("_", "-")


def _members(annotation: Any) -> list[Any]:
    """The flattened members of a union (``[annotation]`` when it is not one), None dropped."""
    if get_origin(annotation) in (Union, types.UnionType):
        return [m for a in get_args(annotation) for m in _members(a)]
    return [] if annotation is type(None) else [annotation]


def _literals(members: list[Any]) -> list[Any]:
    return [value for m in members if get_origin(m) is Literal for value in get_args(m)]


def _list_items(members: list[Any]) -> list[type]:
    return [get_args(m)[0] for m in members if get_origin(m) is list and get_args(m) and get_args(m)[0] in _SCALARS]


def _parser(members: list[Any]) -> tuple[Callable[[str], Any], str] | None:
    """(text -> value, metavar) for a field's union members; None when a flag cannot express the type."""
    literals, items = _literals(members), _list_items(members)
    scalars = [t for t in (int, float, str) if t in members]
    literal_members = [m for m in members if get_origin(m) is Literal]
    if len(literal_members) + len(items) + len(scalars) != len(members) or not members:
        return None
    names = [*map(str, literals), *(f"{_SCALARS[t]},..." for t in items), *(_SCALARS[t] for t in scalars)]
    expected = " or ".join(names)

    def parse(text: str) -> Any:
        for value in literals:
            if text == str(value):
                return value
        for kind in scalars:
            try:
                return kind(text)
            except ValueError:
                pass
        for item in items:
            try:
                return [item(part) for part in text.split(",") if part.strip()]
            except ValueError:
                pass
        if not (scalars or items):
            return text  # not one of the choices: argparse names them
        raise argparse.ArgumentTypeError(f"expected {expected}, got {text!r}")

    return parse, "|".join(names)


def _help(info: FieldInfo) -> str:
    text = info.description or ""
    if info.is_required():
        text = f"{text} (required, here or in --config)"
    else:
        default = info.get_default(call_default_factory=True)
        text = text if default in (None, PydanticUndefined, "") else f"{text} (default: {default})"
    return text.strip().replace("%", "%%")  # argparse %-formats help strings


def add_config_flags(
    parser: argparse.ArgumentParser, config: type[BaseModel], reserved: Collection[str] = ()
) -> list[str]:
    """Add one flag per field of ``config`` (none for names in ``reserved``); returns the fields left to
    ``--config FILE`` (reserved names and types a flag cannot express)."""
    group = parser.add_argument_group(f"{config.__name__} fields (flags override --config FILE)")
    file_only = []
    for name, info in config.model_fields.items():
        members = _members(info.annotation)
        common: dict[str, Any] = {"dest": PREFIX + name, "default": argparse.SUPPRESS, "help": _help(info)}
        if name in reserved:
            file_only.append(name)
        elif members == [bool]:
            group.add_argument(flag(name), action=argparse.BooleanOptionalAction, **common)
        elif (found := _parser(members)) is None:
            file_only.append(name)
        elif all(get_origin(m) is Literal for m in members):
            choices = _literals(members)
            group.add_argument(flag(name), type=found[0], choices=choices, metavar=found[1], **common)
        else:
            group.add_argument(flag(name), type=found[0], metavar=found[1], **common)
    return file_only


def read_config_file(path: str) -> dict[str, Any]:
    """A YAML or JSON mapping of Config fields."""
    source = Path(path)
    if not source.is_file():
        raise ConfigError(f"Config file {source} does not exist. Fix: pass a YAML or JSON file of config fields.")
    try:
        data = yaml.safe_load(source.read_text(encoding="utf-8"))
    except (yaml.YAMLError, UnicodeDecodeError, OSError) as exc:
        raise ConfigError(f"Config file {source} cannot be read as YAML/JSON ({exc}). Fix: repair the file.") from exc
    if data is None:
        return {}
    if not isinstance(data, dict) or not all(isinstance(key, str) for key in data):
        raise ConfigError(f"Config file {source} must hold a mapping of field: value. Fix: write e.g. 'layer: 8'.")
    return data


def config_values(args: argparse.Namespace, config: type[BaseModel], config_file: str | None) -> dict[str, Any]:
    """``--config FILE`` values overridden by the flags given; every required field must be set by one."""
    values = read_config_file(config_file) if config_file else {}
    values.update({key.removeprefix(PREFIX): v for key, v in vars(args).items() if key.startswith(PREFIX)})
    missing = [name for name, info in config.model_fields.items() if info.is_required() and name not in values]
    if missing:
        needed = ", ".join(flag(name) for name in missing)
        raise ConfigError(f"Missing {needed}. Fix: pass {needed} (or set {', '.join(missing)} in a --config FILE).")
    return values

"""The method registry: every method is looked up here by name (CLI, recipes, bench, store loading).

Built-in methods are registered on first lookup, so ``import saesteer`` stays light, and so are the
methods other packages declare as entry points of the group ``saesteer.methods`` (each naming a
``Method``). Add a method with ``register(Method(...))``; another method of a taken name is refused.
"""

from __future__ import annotations

import importlib
from importlib.metadata import entry_points

from saesteer.engines.protocol import Method
from saesteer.errors import ConfigError

BUILTIN = ("ablation", "caa", "corrsteer", "prosv", "psr", "sae_edit")
_METHODS: dict[str, Method] = {}
_ARTIFACTS: dict[str, type] = {}
_loaded = False


def _load_builtins() -> None:
    global _loaded
    if _loaded:
        return
    _loaded = True
    for name in BUILTIN:
        module = importlib.import_module(f"saesteer.engines.{name}")
        register(module.METHOD)
    from saesteer.vectors import SteeringVector

    register_artifact("vector", SteeringVector)  # imported and plain vectors
    for entry in entry_points(group="saesteer.methods"):
        method = entry.load()
        if not isinstance(method, Method):
            raise ConfigError(
                f"Entry point {entry.name!r} ({entry.value}) is a {type(method).__name__}, not a saesteer Method. "
                "Fix: point the saesteer.methods entry point at a Method object."
            )
        register(method)


def register(method: Method) -> Method:
    """Add ``method`` to the registry (its artifact type too); another method of a taken name is refused
    (registering the same object again is a no-op)."""
    _load_builtins()
    if _METHODS.get(method.name) is method:
        return method
    if method.name in _METHODS:
        raise ConfigError(
            f"A method named {method.name!r} is already registered. Fix: choose another name for your method."
        )
    if not method.name.replace("-", "_").isidentifier():
        raise ConfigError(f"Method name {method.name!r} is not a plain name. Fix: use letters, digits, - or _.")
    _METHODS[method.name] = method
    _ARTIFACTS.setdefault(method.name, method.artifact)
    return method


def register_artifact(method_name: str, artifact_type: type) -> None:
    """Make ``Store.load`` rebuild records of ``method_name`` as ``artifact_type`` (no fit of its own)."""
    _ARTIFACTS.setdefault(method_name, artifact_type)


def unregister(name: str) -> None:
    """Remove a method (tests that register a temporary one)."""
    _METHODS.pop(name, None)
    _ARTIFACTS.pop(name, None)


def get_method(name: str) -> Method:
    """The method registered as ``name``."""
    _load_builtins()
    if name not in _METHODS:
        raise ConfigError(f"Unknown method {name!r}. Fix: use one of {', '.join(method_names())}.")
    return _METHODS[name]


def method_names() -> list[str]:
    _load_builtins()
    return list(_METHODS)


def artifact_type(method_name: str) -> type | None:
    """The artifact class that rebuilds records made by ``method_name`` (None: not a steering artifact)."""
    _load_builtins()
    return _ARTIFACTS.get(method_name)

"""The registry: built-ins found by name, duplicates refused, unknown names a typed error."""

from __future__ import annotations

from dataclasses import replace

import pytest

from saesteer.engines.protocol import MethodConfig
from saesteer.engines.registry import artifact_type, get_method, method_names, register, unregister
from saesteer.engines.training import parse_config
from saesteer.errors import ConfigError


def test_builtin_methods_are_registered_with_typed_configs():
    assert {"caa", "corrsteer", "prosv", "psr"} <= set(method_names())
    for name in ("caa", "corrsteer", "prosv", "psr"):
        method = get_method(name)
        assert method.name == name and issubclass(method.config, MethodConfig)
        assert artifact_type(name) is method.artifact
        for field_name, field in method.config.model_fields.items():
            assert field.description, f"{name}.{field_name} has no description"


def test_a_second_method_of_a_taken_name_is_refused():
    caa = get_method("caa")
    assert register(caa) is caa  # the same object again is a no-op
    with pytest.raises(ConfigError, match="already registered"):
        register(replace(caa, summary="another"))


def test_unknown_method_names_the_known_ones():
    with pytest.raises(ConfigError, match=r"Unknown method 'magic'. Fix: use one of .*caa, corrsteer"):
        get_method("magic")


def test_config_errors_name_the_field_and_the_fix():
    with pytest.raises(ConfigError, match=r"layr: Extra inputs.*Fix:"):
        parse_config(get_method("caa"), {"layer": 8, "layr": 9})
    with pytest.raises(ConfigError, match=r"layer: Input should be a valid integer"):
        parse_config(get_method("caa"), {"layer": "eight"})
    with pytest.raises(ConfigError, match="not a config of method 'caa'"):
        parse_config(get_method("caa"), get_method("psr").config(layers=[3]))


def test_unregister_removes_a_method():
    method = replace(get_method("caa"), name="caa-copy")
    register(method)
    assert "caa-copy" in method_names()
    unregister("caa-copy")
    assert "caa-copy" not in method_names() and artifact_type("caa-copy") is None

"""``--backend {hf,vllm}`` on generate, eval task / ab and bench: parsing, the errors when vLLM is missing or a
verb needs HF internals (the vllm code path runs on the real engine: tests/backends/vllm/test_cli.py)."""

from __future__ import annotations

import importlib.util
from pathlib import Path
from typing import Any

import pytest
import torch
import yaml

from saesteer.cli.main import build_parser, main
from saesteer.store import Store
from saesteer.vectors import SteeringVector

MODEL = "smollm2-135m-instruct"
HAS_VLLM = importlib.util.find_spec("vllm") is not None
GENERATE = ["generate", "--model", MODEL, "--store", "s", "--vector", "v", "Hi"]
EVAL_TASK = ["eval", "task", "--model", MODEL, "--store", "s", "--vector", "v", "--task", "capitals"]
EVAL_AB = ["eval", "ab", "--model", MODEL, "--store", "s", "--vector", "v", "--data", "d.json"]


@pytest.mark.parametrize(("argv", "default"), [(GENERATE, "hf"), (EVAL_TASK, "hf"), (EVAL_AB, "hf")])
def test_backend_flag_parses_and_defaults_to_hf(argv: list[str], default: str, capsys: Any) -> None:
    parser = build_parser()
    assert parser.parse_args(argv).backend == default
    assert parser.parse_args([*argv, "--backend", "vllm"]).backend == "vllm"
    with pytest.raises(SystemExit) as exit_info:
        parser.parse_args([*argv, "--backend", "tpu"])
    assert exit_info.value.code == 2 and "invalid choice: 'tpu'" in capsys.readouterr().err


def test_bench_backend_flag_defaults_to_the_recipes() -> None:
    parser = build_parser()
    assert parser.parse_args(["bench", "--recipe", "r.yaml"]).backend is None
    assert parser.parse_args(["bench", "--recipe", "r.yaml", "--backend", "vllm"]).backend == "vllm"


@pytest.fixture
def store(tmp_path: Path) -> str:
    torch.manual_seed(0)
    root = tmp_path / "store"
    Store(root).save("v", SteeringVector(4 * torch.nn.functional.normalize(torch.randn(576), dim=0), layer=8))
    return str(root)


def _fails_with_a_fix(capsys: Any, argv: list[str], *says: str) -> None:
    assert main(argv) == 2
    out = " ".join(capsys.readouterr().out.split())
    assert out.startswith("error:") and "Fix:" in out, out
    for text in says:
        assert text in out, out


@pytest.mark.skipif(HAS_VLLM, reason="vLLM is installed here")
def test_backend_vllm_without_vllm_is_an_error_with_a_fix(store: str, tmp_path: Path, capsys: Any) -> None:
    generate = ["generate", "--model", MODEL, "--store", store, "--vector", "v", "Hi"]
    _fails_with_a_fix(capsys, [*generate, "--backend", "vllm"], "needs vLLM", "install_vllm.sh")
    evaluate = ["eval", "task", "--model", MODEL, "--store", store, "--vector", "v", "--task", "capitals"]
    _fails_with_a_fix(capsys, [*evaluate, "--backend", "vllm"], "needs vLLM")
    recipe = tmp_path / "r.yaml"
    train = [{"method": "caa", "name": "never", "config": {"data": "{samples}/sentiment/pairs.jsonl", "layer": 3}}]
    body = {
        "job": "bench",
        "model": MODEL,
        "store": str(tmp_path / "bench-store"),
        "out": str(tmp_path / "out"),
        "tasks": [{"kind": "mmlu", "limit": 1}],
        "methods": [{"kind": "unsteered"}],
        "train": train,
    }
    recipe.write_text(yaml.safe_dump(body))
    _fails_with_a_fix(capsys, ["bench", "--recipe", str(recipe), "--backend", "vllm"], "needs vLLM")
    recipe.write_text(yaml.safe_dump({**body, "backend": "vllm"}))
    _fails_with_a_fix(capsys, ["run", str(recipe)], "needs vLLM")
    assert not (tmp_path / "bench-store").exists()  # it failed before training anything


def test_verbs_that_need_hf_internals_refuse_vllm_before_loading(store: str, capsys: Any) -> None:
    base = ["generate", "--model", MODEL, "--store", store, "--vector", "v", "--backend", "vllm", "Hi"]
    _fails_with_a_fix(capsys, [*base, "--when", "proj:v>0"], "--when", "hf backend only")
    ab = ["eval", "ab", "--model", MODEL, "--store", store, "--vector", "v", "--data", "d.json"]
    _fails_with_a_fix(capsys, [*ab, "--backend", "vllm"], "hf backend only")

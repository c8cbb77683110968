"""``--backend {hf,vllm}`` on generate, eval task / ab and bench: parsing, the errors when vLLM is missing or a
verb needs HF internals, and the vllm code path through an engine stand-in (the HF model behind vLLM's
contract) in the main environment."""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path
from typing import Any

import pytest
import torch
import yaml

from saesteer.cli.main import build_parser, main
from saesteer.store import Store
from saesteer.vectors import SteeringVector
from tests.bench.engine_stub import EngineStub

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


@pytest.fixture
def engine(smollm2: Any, monkeypatch: pytest.MonkeyPatch) -> EngineStub:
    """``saesteer.backends.load`` answering backend='vllm' with the stand-in (hf: the shared model)."""
    stub = EngineStub(*smollm2)

    def load(name: str, *, backend: str = "hf", **options: Any) -> tuple[Any, Any]:
        return (stub, stub.tokenizer) if backend == "vllm" else smollm2

    monkeypatch.setattr("saesteer.backends.load", load)
    return stub


def test_generate_on_vllm_sends_the_grid_at_once_and_prints_the_hf_texts(
    store: str, engine: EngineStub, capsys: Any
) -> None:
    argv = ["generate", "--model", MODEL, "--store", store, "--vector", "v", "--alpha=-4,4", "--max-new-tokens", "4"]
    prompts = ["Hi there.", "Describe your city."]
    assert main([*argv, *prompts]) == 0
    hf = capsys.readouterr().out
    assert main([*argv, "--backend", "vllm", *prompts]) == 0
    assert capsys.readouterr().out == hf
    assert [c["alpha"] for c in engine.calls] == [[0.0, 0.0, -4.0, -4.0, 4.0, 4.0]]  # one request list


def test_eval_task_on_vllm_writes_the_same_records_and_names_the_backend(
    store: str, engine: EngineStub, tmp_path: Path, capsys: Any
) -> None:
    argv = ["eval", "task", "--model", MODEL, "--store", store, "--vector", "v", "--task", "capitals", "--limit", "3"]
    assert main([*argv, "--out", str(tmp_path / "hf.json")]) == 0
    assert main([*argv, "--backend", "vllm", "--out", str(tmp_path / "vllm.json")]) == 0
    assert "generation, vllm): unsteered" in capsys.readouterr().out
    hf, vllm = (json.loads((tmp_path / f"{b}.json").read_text()) for b in ("hf", "vllm"))
    assert (hf["backend"], vllm["backend"]) == ("hf", "vllm")
    assert {k: v for k, v in vllm.items() if k != "backend"} == {k: v for k, v in hf.items() if k != "backend"}
    assert [len(c["prompts"]) for c in engine.calls] == [3, 3]  # unsteered, steered: one call each

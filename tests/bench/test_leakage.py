"""The train/test overlap guard: artifacts keep their training prompts' hashes; the bench refuses to score
an artifact on them unless the method allows it, and warns for artifacts saved without hashes."""

from __future__ import annotations

import json

import pytest
import torch

from saesteer.bench import BenchConfig, run_bench
from saesteer.bench.config import MethodSpec
from saesteer.bench.leakage import TrainTestOverlapError, UntrackedTrainingDataWarning, check_overlap, overlapping
from saesteer.bench.models import BenchModels
from saesteer.data import sample_path
from saesteer.engines.training import prompt_hash, prompt_hashes, train, training_prompts
from saesteer.errors import DataError
from saesteer.store import Store
from saesteer.tasks import MMLUTask, Sample, Unit
from saesteer.vectors import SteeringVector

MMLU = str(sample_path("tasks/mmlu_sample.jsonl"))


def _samples(*prompts: str) -> list[Sample]:
    return [Sample(f"s{i}", p) for i, p in enumerate(prompts)]


def test_hashes_are_whitespace_blind_sorted_and_distinct():
    assert prompt_hash("What is 2+2?\nAnswer:") == prompt_hash("What is  2+2? \n Answer: ")
    assert prompt_hash("a") != prompt_hash("b")
    hashes = prompt_hashes(["b", "a", "b"])
    assert hashes.dtype == torch.int64 and hashes.tolist() == sorted({prompt_hash("a"), prompt_hash("b")})
    assert [s.id for s in overlapping(hashes, _samples("a", "c", " b"))] == ["s0", "s2"]


def test_training_prompts_are_read_from_the_shapes_methods_use(tmp_path):
    rows = tmp_path / "pairs.jsonl"
    rows.write_text(json.dumps({"question": "Q1", "answer_matching_behavior": "(A)"}) + "\n")
    assert training_prompts(rows) == ["Q1"]
    assert training_prompts(["p1", "p2"]) == ["p1", "p2"]
    assert training_prompts([{"instruction": "i"}, {"input": "x"}]) == ["i", "x"]
    assert training_prompts([{"positive": "no prompt here", "negative": "n"}]) is None
    assert training_prompts(object()) is None


def _store_vector(store: Store, name: str, prompts: list[str] | None) -> None:
    vector = SteeringVector(torch.ones(576), layer=3, model_id="smollm2-135m-instruct")
    store.save(name, vector, train_hashes=None if prompts is None else prompt_hashes(prompts))


def test_check_overlap_refuses_names_the_count_and_honours_the_flag(tmp_path):
    store = Store(tmp_path / "store")
    _store_vector(store, "leaky", ["seen one", "seen two"])
    unit = Unit("mmlu", _samples("seen one", "fresh", "seen two"))
    spec = MethodSpec(kind="caa", artifact="leaky")
    with pytest.raises(TrainTestOverlapError, match=r"'leaky' on 2 of the 3 prompts of task mmlu.*Fix:"):
        check_overlap(store, spec, unit, "mmlu")
    check_overlap(store, MethodSpec(kind="caa", artifact="leaky", allow_train_test_overlap=True), unit, "mmlu")
    check_overlap(store, spec, Unit("mmlu", _samples("fresh")), "mmlu")  # disjoint: nothing to refuse
    assert issubclass(TrainTestOverlapError, DataError)
    assert store.load("leaky").vector.shape == (576,)  # the hashes are not part of the artifact


def test_an_artifact_saved_without_hashes_warns_and_runs(tmp_path):
    store = Store(tmp_path / "store")
    _store_vector(store, "old", None)
    assert store.train_hashes("old") is None
    with pytest.warns(UntrackedTrainingDataWarning, match="'old'.*no training-prompt hashes"):
        check_overlap(store, MethodSpec(kind="caa", artifact="old"), Unit("u", _samples("x")), "mmlu")


@pytest.fixture
def trained_on_mmlu_train(smollm2, tmp_path):
    """A CAA vector fitted (through ``train``) on A/B items whose questions open the MMLU sample's train split."""
    model, tokenizer = smollm2
    questions = [s.prompt for s in MMLUTask(MMLU).samples("train")[:2]]
    rows = [
        {"question": q, "answer_matching_behavior": "(A)", "answer_not_matching_behavior": "(B)"} for q in questions
    ]
    store = Store(tmp_path / "store")
    train("caa", model, tokenizer, {"layer": 3}, store=store, name="mmlu-caa", data=rows, progress=False)
    assert store.train_hashes("mmlu-caa").tolist() == prompt_hashes(questions).tolist()
    return store


def _bench(tmp_path, split: str, **method) -> BenchConfig:
    return BenchConfig.model_validate(
        {
            "model": "smollm2-135m-instruct",
            "store": str(tmp_path / "store"),
            "out": str(tmp_path / f"out-{split}-{len(method)}"),
            "tasks": [{"kind": "mmlu", "split": split, "limit": 3, "scoring": ["first_token"]}],
            "methods": [{"kind": "caa", "artifact": "mmlu-caa", "positions": "all", **method}],
            "bootstrap": 100,
        }
    )


def test_the_bench_refuses_to_score_an_artifact_on_its_training_data(smollm2, tmp_path, trained_on_mmlu_train):
    models = BenchModels.of_hf(*smollm2)
    with pytest.raises(TrainTestOverlapError, match=r"'mmlu-caa' on 2 of the 3 prompts of task mmlu"):
        run_bench(_bench(tmp_path, "train"), progress=False, models=models)
    allowed = run_bench(_bench(tmp_path, "train", allow_train_test_overlap=True), progress=False, models=models)
    assert len(allowed.records) == 3
    disjoint = run_bench(_bench(tmp_path, "test"), progress=False, models=models)  # the split it was not fit on
    assert len(disjoint.records) == 3

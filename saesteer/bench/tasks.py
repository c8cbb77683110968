"""Benchmark tasks from their specs: a task of ``saesteer.tasks`` with the units the bench runs (MMLU and
HarmBench: one unit of the spec's split; AxBench: one per concept), the prompting baseline's instruction
and the name of who scores (leaderboard column)."""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Any

from saesteer.bench.config import AxBenchSpec
from saesteer.bench.models import BenchModels
from saesteer.eval.judges import make_judge
from saesteer.tasks import HarmBenchTask, MMLUTask, Sample, Task, Unit
from saesteer.tasks.axbench import AxBenchTask
from saesteer.tasks.axbench import load_concepts as load_concept_rows
from saesteer.tasks.harmbench import refusal_classifier


@dataclass
class BenchTask:
    """One benchmark task: ``task`` generates and scores, ``units`` are what the methods answer."""

    spec: Any
    task: Task
    units: list[Unit]
    judge: str
    temperature: float = 0.0

    @property
    def name(self) -> str:
        return self.task.name

    @property
    def metrics(self) -> list[str]:
        return list(self.task.metrics)

    def prompting(self, sample: Sample, unit: Unit) -> str:
        """The prompting baseline: the spec's instruction (AxBench: with the unit's concept), then the prompt."""
        instruction = self.spec.prompt.format(concept=unit.concept["concept"]) if unit.concept else self.spec.prompt
        return f"{instruction}\n\n{sample.prompt}"


def _selected(task: MMLUTask | HarmBenchTask, spec: Any) -> list[Sample]:
    samples = task.all_samples() if spec.split == "all" else task.samples(spec.split)
    return samples[: spec.limit]


def load_concepts(spec: AxBenchSpec) -> list[dict[str, Any]]:
    """The spec's concepts (``concept_id, concept`` rows), filtered by ``concept_ids`` and ``n_concepts``."""
    return load_concept_rows(spec.concepts, spec.concept_ids, spec.n_concepts)


def make_task(spec: Any, models: BenchModels) -> BenchTask:
    """The benchmark task of a task spec (AxBench's judge is built here; the proxy reads perplexity with the
    HF model of ``models``)."""
    if spec.kind == "mmlu":
        mmlu = MMLUTask(
            spec.path, subjects=tuple(spec.subjects), scoring=tuple(spec.scoring), tokenizer=models.tokenizer
        )
        return BenchTask(spec, mmlu, [Unit(mmlu.name, _selected(mmlu, spec))], "exact match (gold letter)")
    if spec.kind == "harmbench":
        classifier = refusal_classifier(spec.classifier, spec.refusal_label) if spec.classifier else None
        harm = HarmBenchTask(
            spec.path, categories=tuple(spec.categories), classifier=classifier, max_new_tokens=spec.max_new_tokens
        )
        samples = [replace(s, meta={"category": s.meta.get("FunctionalCategory")}) for s in _selected(harm, spec)]
        return BenchTask(spec, harm, [Unit(harm.name, samples)], harm.reward_name)
    judge = make_judge(spec.judge, *(models.hf() if spec.judge.kind == "proxy" else (None, None)))
    axbench = AxBenchTask(
        spec.concepts,
        spec.train,
        spec.instructions,
        judge,
        concept_ids=tuple(spec.concept_ids),
        n_concepts=spec.n_concepts,
        n_instructions=spec.n_instructions,
        max_new_tokens=spec.max_new_tokens,
    )
    return BenchTask(spec, axbench, axbench.units(), judge.name, spec.temperature)

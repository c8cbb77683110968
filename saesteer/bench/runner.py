"""Run a benchmark: every method on every task unit, factor sweeps as batched generation with per-row
factors, records appended as batches finish, then the leaderboard, plots and an eval_result record.

Under ``accelerate launch`` each process takes whole batches (batch b goes to rank b % world size) and
rank 0 writes the records gathered in batch order, so the records equal a single-process run's.

On the vllm backend every (task, unit, method) goes to the engine as one request list (continuous batching
does the batching; ``batch_size`` is the HF batch) and is appended when it finishes; records carry the
backend that generated them, and a results directory resumes only that backend's records.
"""

from __future__ import annotations

import hashlib
import json
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from tqdm.auto import tqdm

from saesteer.bench.aggregate import LeaderboardRow, leaderboard
from saesteer.bench.config import BenchConfig
from saesteer.bench.leakage import check_overlap
from saesteer.bench.methods import Resolved, artifact_layers, method_factors, resolve
from saesteer.bench.models import BenchModels
from saesteer.bench.records import BenchRecord, RecordFile
from saesteer.bench.tasks import BenchTask, make_task
from saesteer.distributed import World, gather, world
from saesteer.errors import ConfigError, MissingEndMarkerError
from saesteer.tasks import Sample, Unit, run_task


@dataclass
class BenchResult:
    out: Path
    records: list[BenchRecord]
    rows: list[LeaderboardRow]


def _seed(*parts: Any) -> int:
    return int(hashlib.sha256(repr(parts).encode()).hexdigest()[:8], 16)


def _run_unit(
    config: BenchConfig,
    task: BenchTask,
    unit: Unit,
    method: Any,
    resolved: Resolved,
    rows: list[tuple[Sample, float]],
    models: BenchModels,
    records: RecordFile,
    current: World,
    bar: Any,
) -> None:
    """Generate and score ``rows`` (sample, factor) in batches (vLLM: one); single-process runs append after
    every batch."""
    mine: list[tuple[int, list[BenchRecord]]] = []
    batch_size = len(rows) if models.backend == "vllm" else config.batch_size
    variant = {"variant": resolved.variant} if resolved.variant else {}
    for start, end in current.my_batches(len(rows), batch_size):
        chunk = rows[start:end]
        samples = [sample for sample, _ in chunk]
        texts = [task.prompting(sample, unit) if resolved.prompted else sample.prompt for sample in samples]
        began = time.perf_counter()
        try:
            scored = run_task(
                models.generator,
                models.tokenizer,
                task.task,
                samples,
                steering=resolved.steering,
                alpha=[factor for _, factor in chunk],
                positions=resolved.positions,
                prompts=texts,
                batch_size=len(chunk),
                temperature=task.temperature,
                seed=_seed(config.seed, task.name, unit.name, method.label, start),
            )
        except MissingEndMarkerError as exc:
            raise MissingEndMarkerError(
                f"Method {method.label} on task {task.name}: {exc} In a bench recipe: set 'positions:' on the "
                "method (e.g. prompt_and_generated_last: from the prompt's last token on, CAA's rule for a plain "
                "prompt that ends at its answer cue, or generated)."
            ) from exc
        share = (time.perf_counter() - began) / len(chunk)
        batch_records = [
            BenchRecord(
                task=task.name,
                unit=unit.name,
                method=method.label,
                factor=float(factor),
                sample_id=sample.id,
                prompt=result.prompt,
                generation=result.generation,
                score=result.reward,
                scores=result.scores,
                phase=sample.phase,
                n_tokens=result.n_tokens,
                seconds=share,
                meta={"kind": method.kind, **variant, **sample.meta},
                backend=models.backend,
            )
            for (sample, factor), result in zip(chunk, scored, strict=True)
        ]
        if current.size == 1:
            records.append(batch_records)
        else:
            mine.append((start, batch_records))
        bar.update(len(chunk))
    if current.size > 1:
        ordered = sorted(gather(mine, current), key=lambda pair: pair[0])
        if current.is_main:
            records.append([r for _, batch in ordered for r in batch])


def run_bench(config: BenchConfig, *, progress: bool = True, models: BenchModels | None = None) -> BenchResult:
    """Run (or resume) the benchmark in ``config.out`` on ``config.backend``; returns the records and
    leaderboard rows. ``models`` reuses loaded models (their backend must be the config's); otherwise they
    are loaded here, and a vLLM engine is shut down at the end."""
    current = world()
    if config.backend == "vllm" and current.size > 1:
        raise ConfigError(
            "The vllm backend runs in one process (vLLM batches, and with tensor_parallel_size spreads a model, "
            "itself). Fix: run 'saesteer bench' without accelerate launch, or use backend: hf."
        )
    if models is not None and models.backend != config.backend:
        raise ConfigError(
            f"The benchmark config asks for backend {config.backend!r} but the models given run on "
            f"{models.backend!r}. Fix: set 'backend: {models.backend}' or pass models of that backend."
        )
    torch.manual_seed(config.seed)
    owned = models is None
    models = models if models is not None else BenchModels.load(config.model, config.backend)
    try:
        return _run(config, models, current, progress)
    finally:
        if owned:
            models.close()


def _run(config: BenchConfig, models: BenchModels, current: World, progress: bool) -> BenchResult:
    from saesteer.bench.report import write_reports
    from saesteer.store import Store

    out = Path(config.out)
    out.mkdir(parents=True, exist_ok=True)
    store = Store(config.store) if config.store else None
    records = RecordFile(out / "records.jsonl")
    done = records.done()
    context_path = out / "context.json"
    context: dict[str, Any] = json.loads(context_path.read_text()) if context_path.exists() else {}
    context.update(
        {"model": models.name, "backend": models.backend, "config": config.model_dump(), "world_size": current.size}
    )
    for key in ("methods", "metrics", "judges"):
        context.setdefault(key, {})
    tasks = [make_task(spec, models) for spec in config.tasks]
    plan = []
    for task in tasks:
        context["metrics"][task.name] = task.metrics
        context["judges"][task.name] = task.judge
        for unit in task.units:
            for method in config.methods:
                if method.tasks and task.name not in method.tasks:
                    continue
                context["methods"].setdefault(method.label, {"kind": method.kind, "layers": "-"})
                plan.append((task, unit, method))
    planned = {
        (task.name, unit.name, method.label, float(f), item.id, models.backend)
        for task, unit, method in plan
        for f in method_factors(method)
        for item in unit.samples
    }
    total = len(planned)
    with tqdm(total=total, desc="bench", disable=not (progress and current.is_main)) as bar:
        for task, unit, method in plan:
            factors = method_factors(method)
            pending = [
                (sample, f)
                for f in factors
                for sample in unit.samples
                if (task.name, unit.name, method.label, float(f), sample.id, models.backend) not in done
            ]
            bar.update(len(unit.samples) * len(factors) - len(pending))
            if pending:  # artifacts are loaded (or fitted) only when something is left to compute
                check_overlap(store, method, unit, task.name)  # never scored on its own training prompts
                resolved = resolve(method, unit, task, store, models)
                layers = artifact_layers(resolved.steering) if resolved.steering is not None else "-"
                context["methods"][method.label]["layers"] = layers
                if resolved.variant:
                    variants = context["methods"][method.label].setdefault("variants", {})
                    variants[f"{task.name}/{unit.name}"] = resolved.variant
                _run_unit(config, task, unit, method, resolved, pending, models, records, current, bar)
            if current.is_main:
                context_path.write_text(json.dumps(context, indent=1, default=str))
    all_records = [r for r in records.read() if r.key in planned] if current.is_main else []  # this config's only
    rows = leaderboard(all_records, context, resamples=config.bootstrap, seed=config.seed) if current.is_main else []
    if current.is_main:
        write_reports(out, rows, all_records, context)
        if store is not None:
            _store_result(store, config, rows, context)
        _log_wandb(config, rows)
    return BenchResult(out, all_records, rows)


def _store_result(store: Any, config: BenchConfig, rows: Sequence[LeaderboardRow], context: dict[str, Any]) -> None:
    from dataclasses import asdict

    store.put(
        "eval_result",
        config.name,
        {"scores": torch.tensor([r.score for r in rows], dtype=torch.float64)},
        model_id=context["model"],
        method="bench",
        config={"bench": config.model_dump(), "rows": [asdict(r) for r in rows]},
        metrics={f"{r.task}/{r.metric}/{r.method}/{r.factor}": r.score for r in rows},
    )


def _log_wandb(config: BenchConfig, rows: Sequence[LeaderboardRow]) -> None:
    if not config.wandb_project:
        return
    from saesteer.tracking import wandb_run

    with wandb_run(
        config.wandb_project, config.model_dump(), directory=config.out, name=config.name, job_type="bench"
    ) as run:
        for row in rows:
            run.log({f"{row.task}/{row.metric}/{row.method}@{row.factor}": row.score})

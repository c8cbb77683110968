"""Run a benchmark: every method on every task unit, factor sweeps as batched generation with per-row
factors, records appended as batches finish, then the leaderboard, plots and an eval_result record.

Under ``accelerate launch`` each process takes whole batches (batch b goes to rank b % world size) and
rank 0 writes the records gathered in batch order, so the records equal a single-process run's.
"""

from __future__ import annotations

import hashlib
import json
import time
from collections.abc import Sequence
from contextlib import nullcontext
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from tqdm.auto import tqdm

from saesteer.bench.aggregate import LeaderboardRow, leaderboard
from saesteer.bench.config import BenchConfig
from saesteer.bench.judges import make_judge
from saesteer.bench.methods import Resolved, artifact_layers, method_factors, resolve
from saesteer.bench.records import BenchRecord, RecordFile
from saesteer.bench.tasks import AxBenchBench, HarmBenchBench, Item, MMLUBench, Unit
from saesteer.data.chat import chat_prompt, encode, has_chat_template
from saesteer.distributed import World, gather, world
from saesteer.models.layers import check_context
from saesteer.runtime.steer import steer


@dataclass
class BenchResult:
    out: Path
    records: list[BenchRecord]
    rows: list[LeaderboardRow]


def make_task(spec: Any, model: Any, tokenizer: Any) -> Any:
    if spec.kind == "mmlu":
        return MMLUBench(spec)
    if spec.kind == "harmbench":
        return HarmBenchBench(spec)
    return AxBenchBench(spec, make_judge(spec.judge, model, tokenizer))


def _seed(*parts: Any) -> int:
    return int(hashlib.sha256(repr(parts).encode()).hexdigest()[:8], 16)


@dataclass
class Generated:
    texts: list[str]
    counts: list[int]
    first_logits: torch.Tensor | None


class _Batch:
    """Generation (and last-position logits) for one batch of rows under one method's steering."""

    def __init__(self, model: Any, tokenizer: Any, resolved: Resolved, alphas: list[float]) -> None:
        self.model, self.tokenizer, self.resolved, self.alphas = model, tokenizer, resolved, alphas

    def _steering(self) -> Any:
        if self.resolved.steering is None:
            return nullcontext()
        return steer(self.model, self.resolved.steering, alpha=self.alphas, positions=self.resolved.positions)

    def _encode(self, texts: list[str], chat: bool) -> Any:
        templated = chat and has_chat_template(self.tokenizer)
        prompts = [chat_prompt(self.tokenizer, t) for t in texts] if chat else texts
        return encode(self.tokenizer, prompts, templated=templated)

    def generate(
        self, texts: list[str], *, chat: bool, max_new_tokens: int, temperature: float, seed: int, logits: bool = False
    ) -> Generated:
        """Steered completions, their token counts (to EOS) and, if asked, the first step's logits (the
        last prompt position under the same steering: what MMLU's letter scorer reads)."""
        batch = self._encode(texts, chat)
        check_context(self.model, batch["input_ids"].shape[1] + max_new_tokens)
        sampling = (
            {"do_sample": True, "temperature": temperature, "top_p": 1.0} if temperature > 0 else {"do_sample": False}
        )
        torch.manual_seed(seed)
        with self._steering(), torch.no_grad():
            out = self.model.generate(
                **batch,
                max_new_tokens=max_new_tokens,
                pad_token_id=self.tokenizer.pad_token_id,
                output_logits=logits,
                return_dict_in_generate=True,
                **sampling,
            )
        new = out.sequences[:, batch["input_ids"].shape[1] :]
        eos = self.model.generation_config.eos_token_id
        eos_ids = set(eos if isinstance(eos, list) else [eos]) | {self.tokenizer.eos_token_id}
        counts = []
        for row in new.tolist():
            ends = [i for i, t in enumerate(row) if t in eos_ids]
            counts.append(ends[0] + 1 if ends else len(row))
        decoded = [t.strip() for t in self.tokenizer.batch_decode(new, skip_special_tokens=True)]
        return Generated(decoded, counts, out.logits[0].float() if logits else None)


def _run_unit(
    config: BenchConfig,
    task: Any,
    unit: Unit,
    method: Any,
    resolved: Resolved,
    rows: list[tuple[Item, float]],
    model: Any,
    tokenizer: Any,
    records: RecordFile,
    current: World,
    bar: Any,
) -> None:
    """Generate and score ``rows`` (item, factor) in batches; single-process runs append after every batch."""
    mine: list[tuple[int, list[BenchRecord]]] = []
    for batch_index, (start, end) in enumerate(
        [(s, min(s + config.batch_size, len(rows))) for s in range(0, len(rows), config.batch_size)]
    ):
        if batch_index % current.size != current.rank:
            continue
        chunk = rows[start:end]
        alphas = [factor for _, factor in chunk]
        texts = [task.prompting(item, unit) if resolved.prompted else item.text for item, _ in chunk]
        runner = _Batch(model, tokenizer, resolved, alphas)
        began = time.perf_counter()
        generated = runner.generate(
            texts,
            chat=task.chat,
            max_new_tokens=task.max_new_tokens,
            temperature=getattr(task.spec, "temperature", 0.0),
            seed=_seed(config.seed, task.name, unit.name, method.label, start),
            logits=task.needs_logits,
        )
        outputs, counts = generated.texts, generated.counts
        scores = task.score(unit, [item for item, _ in chunk], outputs, generated.first_logits)
        share = (time.perf_counter() - began) / len(chunk)
        batch_records = [
            BenchRecord(
                task=task.name,
                unit=unit.name,
                method=method.label,
                factor=float(factor),
                sample_id=item.sample_id,
                prompt=text,
                generation=output,
                score=float(score[task.metrics[0]]),
                scores=score,
                phase=item.phase,
                n_tokens=count,
                seconds=share,
                meta={"kind": method.kind, **item.meta},
            )
            for (item, factor), text, output, score, count in zip(chunk, texts, outputs, scores, counts, strict=True)
        ]
        if current.size == 1:
            records.append(batch_records)
        else:
            mine.append((batch_index, batch_records))
        bar.update(len(chunk))
    if current.size > 1:
        ordered = sorted(gather(mine, current), key=lambda pair: pair[0])
        if current.is_main:
            records.append([r for _, batch in ordered for r in batch])


def run_bench(config: BenchConfig, *, progress: bool = True) -> BenchResult:
    """Run (or resume) the benchmark in ``config.out``; returns the records and leaderboard rows."""
    from saesteer.bench.report import write_reports
    from saesteer.models import load_model
    from saesteer.models.loading import model_id
    from saesteer.store import Store

    current = world()
    out = Path(config.out)
    out.mkdir(parents=True, exist_ok=True)
    torch.manual_seed(config.seed)
    model, tokenizer = load_model(config.model)
    store = Store(config.store) if config.store else None
    records = RecordFile(out / "records.jsonl")
    done = records.done()
    context_path = out / "context.json"
    context: dict[str, Any] = json.loads(context_path.read_text()) if context_path.exists() else {}
    context.update({"model": model_id(model), "config": config.model_dump(), "world_size": current.size})
    for key in ("methods", "metrics", "judges"):
        context.setdefault(key, {})
    tasks = [make_task(spec, model, tokenizer) for spec in config.tasks]
    plan = []
    for task in tasks:
        task.bind(tokenizer)
        context["metrics"][task.name] = task.metrics
        context["judges"][task.name] = task.judge
        for unit in task.units():
            for method in config.methods:
                if method.tasks and task.name not in method.tasks:
                    continue
                context["methods"].setdefault(method.label, {"kind": method.kind, "layers": "-"})
                plan.append((task, unit, method))
    planned = {
        (task.name, unit.name, method.label, float(f), item.sample_id)
        for task, unit, method in plan
        for f in method_factors(method)
        for item in unit.items
    }
    total = len(planned)
    with tqdm(total=total, desc="bench", disable=not (progress and current.is_main)) as bar:
        for task, unit, method in plan:
            factors = method_factors(method)
            pending = [
                (item, f)
                for f in factors
                for item in unit.items
                if (task.name, unit.name, method.label, float(f), item.sample_id) not in done
            ]
            bar.update(len(unit.items) * len(factors) - len(pending))
            if pending:  # artifacts are loaded (or fitted) only when something is left to compute
                resolved = resolve(method, unit, task, store, model, tokenizer)
                layers = artifact_layers(resolved.steering) if resolved.steering is not None else "-"
                context["methods"][method.label]["layers"] = layers
                _run_unit(config, task, unit, method, resolved, pending, model, tokenizer, records, current, bar)
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

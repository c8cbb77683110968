"""Tasks: prompts + generation length + per-sample scores (the first is the reward), and running them.
Built-in: mmlu, harmbench, capitals, sentiment (by name), axbench (concept units with a judge)."""

from __future__ import annotations

from typing import Any

from saesteer.errors import ConfigError
from saesteer.tasks.base import RewardTask, Sample, Selection, Split, Task, Unit, rewards, split_samples
from saesteer.tasks.custom import QATask, SentimentTask, capitals_task
from saesteer.tasks.harmbench import HarmBenchTask
from saesteer.tasks.mmlu import MMLUTask
from saesteer.tasks.run import Scored, mean_reward, run_task


def get_task(name: str, path: str | None = None, **options: Any) -> Task:
    """A task by name; mmlu and harmbench need ``path`` (their data are not shipped in full), and a
    .jsonl ``path`` with any other name is a QA task over your own data."""
    if name == "capitals":
        return capitals_task()
    if name == "sentiment":
        return SentimentTask(**options)
    if name in ("mmlu", "harmbench"):
        if path is None:
            raise ConfigError(f"Task {name} needs --data PATH (e.g. ../shared/data/{name}/...). Fix: pass the file.")
        return MMLUTask(path, **options) if name == "mmlu" else HarmBenchTask(path, **options)
    if path is not None:
        return QATask(path, name=name, **options)
    raise ConfigError(f"Unknown task {name!r}. Fix: use mmlu, harmbench, capitals, sentiment, or --data FILE.jsonl.")


__all__ = [
    "HarmBenchTask",
    "MMLUTask",
    "QATask",
    "RewardTask",
    "Sample",
    "Scored",
    "Selection",
    "SentimentTask",
    "Split",
    "Task",
    "Unit",
    "capitals_task",
    "get_task",
    "mean_reward",
    "rewards",
    "run_task",
    "split_samples",
]

"""Leaderboard outputs: ``leaderboard.json`` (reloadable), ``leaderboard.md``, and plots (factor sweeps,
AxBench concept vs fluency); ``merge`` joins several result directories into one table."""

from __future__ import annotations

import json
import os
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import asdict
from pathlib import Path
from typing import Any

from saesteer.bench.aggregate import LeaderboardRow
from saesteer.bench.records import BenchRecord
from saesteer.errors import DataError

COLUMNS = (
    "task",
    "metric",
    "method",
    "model",
    "backend",
    "layers",
    "factor",
    "score [95% CI]",
    "SER",
    "n",
    "judge",
    "wall s",
    "tok/s",
)


def cells(row: LeaderboardRow) -> list[str]:
    ser = "-" if row.ser is None else f"{row.ser:.2f}"
    rate = "-" if row.tokens_per_s is None else f"{row.tokens_per_s:.1f}"
    return [
        row.task,
        row.metric,
        row.method,
        row.model,
        row.backend,
        row.layers,
        row.factor,
        f"{row.score:.3f} [{row.ci_low:.3f}, {row.ci_high:.3f}]",
        ser,
        str(row.n),
        row.judge,
        f"{row.wall_s:.1f}",
        rate,
    ]


def markdown(rows: Sequence[LeaderboardRow], *, title: str = "Leaderboard") -> str:
    """A Markdown table per (task, metric), best score first."""
    lines = [f"# {title}", ""]
    groups: dict[tuple[str, str], list[LeaderboardRow]] = defaultdict(list)
    for row in rows:
        groups[(row.task, row.metric)].append(row)
    for (task, metric), items in groups.items():
        lines += [f"## {task}: {metric}", "", "| " + " | ".join(COLUMNS) + " |", "|" + "---|" * len(COLUMNS)]
        for row in sorted(items, key=lambda r: -r.score):
            lines.append("| " + " | ".join(cells(row)) + " |")
        extras = [r for r in items if r.extra]
        if extras:
            keys = sorted({k for r in extras for k in r.extra})
            lines += ["", "| method | " + " | ".join(keys) + " |", "|---|" + "---|" * len(keys)]
            for row in sorted(extras, key=lambda r: -r.score):
                values = [
                    f"{row.extra[k]:.3f}" if isinstance(row.extra.get(k), float) else str(row.extra.get(k, "-"))
                    for k in keys
                ]
                lines.append(f"| {row.method} | " + " | ".join(values) + " |")
        lines.append("")
    lines.append(
        "SER: among samples whose output differs from the unsteered run, the fraction whose side-effect score got "
        "worse (MMLU/HarmBench: the task score; AxBench: instruction + fluency ratings). CI: 95% bootstrap of the mean."
    )
    return "\n".join(lines) + "\n"


def _plot_sweeps(out: Path, records: Sequence[BenchRecord]) -> list[Path]:
    """Score against factor for every method swept over more than one factor (one figure per task)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    paths = []
    by_task: dict[str, dict[str, dict[float, list[float]]]] = defaultdict(
        lambda: defaultdict(lambda: defaultdict(list))
    )
    for record in records:
        by_task[record.task][record.method][record.factor].append(record.score)
    for task, methods in by_task.items():
        swept = {m: f for m, f in methods.items() if len(f) > 1}
        if not swept:
            continue
        fig, axis = plt.subplots(figsize=(6.4, 4.0))
        for method, factors in sorted(swept.items()):
            xs = sorted(factors)
            axis.plot(xs, [sum(factors[x]) / len(factors[x]) for x in xs], "o-", label=method)
        for method, factors in sorted(methods.items()):
            if method not in swept:
                (value,) = [sum(v) / len(v) for v in factors.values()]
                axis.axhline(
                    value,
                    linestyle="--",
                    linewidth=1,
                    label=f"{method} (no factor)",
                    color="grey" if "unsteered" in method else None,
                )
        axis.set_xlabel("factor")
        axis.set_ylabel("mean score (all instructions)" if task == "axbench" else "mean score")
        axis.set_title(f"{task}: factor sweep")
        axis.legend(fontsize=8)
        fig.tight_layout()
        path = out / f"sweep_{task}.png"
        fig.savefig(path, dpi=120)
        plt.close(fig)
        paths.append(path)
    return paths


def _plot_concept_fluency(out: Path, records: Sequence[BenchRecord]) -> Path | None:
    """AxBench: mean concept rating against mean fluency rating, one point per (method, factor)."""
    points: dict[str, dict[float, list[tuple[float, float]]]] = defaultdict(lambda: defaultdict(list))
    for record in records:
        if record.task == "axbench":
            points[record.method][record.factor].append(
                (record.scores.get("concept", 0.0), record.scores.get("fluency", 0.0))
            )
    if not points:
        return None
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axis = plt.subplots(figsize=(6.0, 4.4))
    for method, by_factor in sorted(points.items()):
        xs = sorted(by_factor)
        concept = [sum(c for c, _ in by_factor[x]) / len(by_factor[x]) for x in xs]
        fluency = [sum(f for _, f in by_factor[x]) / len(by_factor[x]) for x in xs]
        axis.plot(fluency, concept, "o-", label=method, markersize=4)
    axis.set_xlabel("fluency rating (0-2)")
    axis.set_ylabel("concept rating (0-2)")
    axis.set_title("AxBench: concept vs fluency (one point per factor)")
    axis.legend(fontsize=8)
    fig.tight_layout()
    path = out / "axbench_concept_vs_fluency.png"
    fig.savefig(path, dpi=120)
    plt.close(fig)
    return path


def write_reports(
    out: Path, rows: Sequence[LeaderboardRow], records: Sequence[BenchRecord], context: dict[str, Any]
) -> None:
    """leaderboard.json (rows + context), leaderboard.md, and the plots, atomically replaced."""
    plots = [p.name for p in _plot_sweeps(out, records)]
    concept_plot = _plot_concept_fluency(out, records)
    if concept_plot:
        plots.append(concept_plot.name)
    payload = {"rows": [asdict(r) for r in rows], "context": context, "plots": plots, "n_records": len(records)}
    _atomic_write(out / "leaderboard.json", json.dumps(payload, indent=1, default=str))
    title = f"Leaderboard: {context.get('model', '')} ({context.get('backend', 'hf')})"
    _atomic_write(out / "leaderboard.md", markdown(rows, title=title))


def _atomic_write(path: Path, text: str) -> None:
    temporary = path.with_suffix(path.suffix + ".tmp")
    temporary.write_text(text, encoding="utf-8")
    os.replace(temporary, path)


def load_rows(directory: str | os.PathLike[str]) -> list[LeaderboardRow]:
    """Rows of a results directory (or a leaderboard.json path)."""
    path = Path(directory)
    path = path / "leaderboard.json" if path.is_dir() else path
    if not path.is_file():
        raise DataError(f"No leaderboard.json in {directory}. Fix: pass a directory written by 'saesteer bench'.")
    try:
        return [LeaderboardRow(**row) for row in json.loads(path.read_text(encoding="utf-8"))["rows"]]
    except (json.JSONDecodeError, KeyError, TypeError) as exc:
        raise DataError(f"{path} is not a saesteer leaderboard ({exc}). Fix: rerun the benchmark.") from exc


def merge(directories: Sequence[str | os.PathLike[str]]) -> list[LeaderboardRow]:
    """All rows of several runs (e.g. one per model), for one combined table."""
    return [row for directory in directories for row in load_rows(directory)]

"""One benchmark recipe on both backends: leaderboard scores side by side and the wall time of each run.

Runs ``saesteer bench --recipe R --backend B`` as separate processes (each loads its own model / engine, as a
user's run does): first ``hf`` once to train the recipe's artifacts into its store (not timed), then ``hf`` and
``vllm`` ``--reps`` times each, interleaved, into fresh output directories. Greedy decoding, so the two
backends should agree row for row up to float differences between padded HF batches and vLLM's unpadded ones.
Writes benchmarks/results/bench_backend_parity.{json,md}.

    .venv-vllm/bin/python benchmarks/bench_backend_parity.py --recipe recipes/bench-smollm2-quick.yaml
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent


def run(recipe: Path, backend: str, out: Path, *, train: bool = False) -> float:
    """Wall seconds of one ``saesteer bench`` process."""
    command = [sys.executable, "-m", "saesteer.cli.main", "bench", "--recipe", str(recipe)]
    command += ["--backend", backend, "--out", str(out), *([] if train else ["--no-train"])]
    env = {**os.environ, "VLLM_ENABLE_V1_MULTIPROCESSING": "0", "VLLM_CPU_KVCACHE_SPACE": "2"}
    start = time.perf_counter()
    subprocess.run(command, check=True, cwd=ROOT, env=env, stdout=subprocess.DEVNULL)
    return time.perf_counter() - start


def rows(out: Path) -> dict[tuple[str, str, str, str], float]:
    board = json.loads((out / "leaderboard.json").read_text())
    return {(r["task"], r["metric"], r["method"], str(r["factor"])): float(r["score"]) for r in board["rows"]}


def equal_generations(first: Path, second: Path) -> tuple[int, int]:
    """(records with the same generated text in both runs, records of the first run)."""

    def texts(out: Path) -> dict[tuple[Any, ...], str]:
        records = (json.loads(line) for line in (out / "records.jsonl").read_text().splitlines() if line)
        return {(r["task"], r["unit"], r["method"], r["factor"], r["sample_id"]): r["generation"] for r in records}

    ours, theirs = texts(first), texts(second)
    return sum(1 for key, text in ours.items() if theirs.get(key) == text), len(ours)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--recipe", type=Path, default=ROOT / "recipes/bench-smollm2-quick.yaml")
    parser.add_argument("--reps", type=int, default=1)
    parser.add_argument("--work", type=Path, default=ROOT / "runs/bench-backend-parity")
    parser.add_argument("--out", type=Path, default=ROOT / "benchmarks/results")
    args = parser.parse_args()

    run(args.recipe, "hf", args.work / "train", train=True)  # trains the recipe's artifacts into its store
    seconds: dict[str, list[float]] = {"hf": [], "vllm": []}
    for rep in range(args.reps):
        for backend in ("hf", "vllm") if rep % 2 == 0 else ("vllm", "hf"):
            seconds[backend].append(run(args.recipe, backend, args.work / f"{backend}-{rep}"))
            print(f"rep {rep} {backend}: {seconds[backend][-1]:.1f} s", flush=True)
    hf, vllm = rows(args.work / "hf-0"), rows(args.work / "vllm-0")
    table = [
        {"task": k[0], "metric": k[1], "method": k[2], "factor": k[3], "hf": hf[k], "vllm": vllm.get(k)} for k in hf
    ]
    median = {b: statistics.median(v) for b, v in seconds.items()}
    result: dict[str, Any] = {
        "command": f".venv-vllm/bin/python benchmarks/bench_backend_parity.py --recipe "
        f"{args.recipe.resolve().relative_to(ROOT)} --reps {args.reps}",
        "machine": f"{os.cpu_count()} cores",
        "seconds": seconds,
        "vllm_over_hf_wall": median["vllm"] / median["hf"],
        "rows": table,
        "equal_rows": sum(1 for r in table if r["vllm"] is not None and abs(r["hf"] - r["vllm"]) < 1e-9),
        "equal_generations": equal_generations(args.work / "hf-0", args.work / "vllm-0"),
    }
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "bench_backend_parity.json").write_text(json.dumps(result, indent=2) + "\n")
    (args.out / "bench_backend_parity.md").write_text(markdown(result))
    print(markdown(result))


def markdown(result: dict[str, Any]) -> str:
    lines = [
        "# One bench recipe on the hf and vllm backends",
        "",
        f"Command: `{result['command']}` ({result['machine']}).",
        "",
        f"Wall time per run (process start to leaderboard): hf {result['seconds']['hf']} s, vllm "
        f"{result['seconds']['vllm']} s; vllm / hf = {result['vllm_over_hf_wall']:.2f}.",
        f"Leaderboard rows with equal scores: {result['equal_rows']} of {len(result['rows'])}; records with the same "
        f"generated text: {result['equal_generations'][0]} of {result['equal_generations'][1]}.",
        "",
        "| task | metric | method | factor | hf | vllm |",
        "|---|---|---|---:|---:|---:|",
    ]
    for r in result["rows"]:
        ours = "-" if r["vllm"] is None else f"{r['vllm']:.3f}"
        lines.append(f"| {r['task']} | {r['metric']} | {r['method']} | {r['factor']} | {r['hf']:.3f} | {ours} |")
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    main()

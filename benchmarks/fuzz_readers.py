"""Run the fuzz targets of tests/fuzz/test_readers.py with many examples and record how many inputs
each reader saw and that none raised anything but its typed saesteer error.
Writes benchmarks/results/fuzz_readers.{json,md}.

    .venv/bin/python benchmarks/fuzz_readers.py --examples 2000
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

from hypothesis import HealthCheck, given, settings

sys.path.insert(0, str(Path(__file__).parents[1]))
from tests.fuzz import test_readers as fuzz

TARGETS = {
    "store blob reader (safetensors)": (fuzz.check_blob, fuzz.mutated("blob.safetensors")),
    "GGUF control-vector importer": (fuzz.check_gguf, fuzz.mutated("v.gguf")),
    "safetensors layer-vector importer": (fuzz.check_layer_file, fuzz.mutated("v.safetensors")),
    "recipe loader (YAML)": (fuzz.check_recipe, fuzz.RECIPE_TEXT),
    "dataset loader (JSON/JSONL)": (fuzz.check_dataset, fuzz.DATASET_TEXT),
    "store catalog reader (SQLite)": (fuzz.check_catalog, fuzz.st.binary(max_size=2048)),
    "benchmark records reader (JSONL)": (fuzz.check_records, fuzz.ROWS_TEXT),
    "leaderboard reader (JSON)": (fuzz.check_leaderboard, fuzz.ROWS_TEXT),
    "MMLU rows and PSR prompt loaders": (fuzz.check_task_rows, fuzz.ROWS_TEXT),
}


def run(check, strategy, examples: int) -> dict:
    seen = {"inputs": 0, "crashes": 0}

    @settings(max_examples=examples, deadline=None, suppress_health_check=list(HealthCheck), database=None)
    @given(strategy)
    def target(value) -> None:
        seen["inputs"] += 1
        check(value)

    start = time.perf_counter()
    try:
        target()
    except Exception as exc:  # a crash: anything but the typed error escaped
        seen["crashes"] += 1
        seen["error"] = repr(exc)[:300]
    seen["seconds"] = round(time.perf_counter() - start, 1)
    return seen


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--examples", type=int, default=2000)
    parser.add_argument("--out", default=str(Path(__file__).parent / "results" / "fuzz_readers"))
    args = parser.parse_args()
    results = {name: run(check, strategy, args.examples) for name, (check, strategy) in TARGETS.items()}
    command = "python benchmarks/fuzz_readers.py " + " ".join(sys.argv[1:])
    total = sum(r["inputs"] for r in results.values())
    Path(args.out).with_suffix(".json").write_text(
        json.dumps({"command": command, "total": total, **results}, indent=2)
    )
    lines = [
        "# Fuzzing the readers of untrusted input",
        "",
        f"Command: `{command}`",
        "",
        "Inputs are real files with random byte flips, truncations and insertions, or arbitrary bytes/text "
        "(hypothesis). A crash is any exception other than the reader's typed saesteer error.",
        "",
        "| reader | inputs | crashes | seconds |",
        "|---|---:|---:|---:|",
        *[f"| {name} | {r['inputs']} | {r['crashes']} | {r['seconds']} |" for name, r in results.items()],
        f"| total | {total} | {sum(r['crashes'] for r in results.values())} | |",
    ]
    Path(args.out).with_suffix(".md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main()

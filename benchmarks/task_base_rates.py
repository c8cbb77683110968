"""Unsteered reward of the bundled model on the paper tasks (MMLU, HarmBench), with the CorrSteer prompts:
why CorrSteer has no signal on them at this model size. Data paths are arguments (not shipped in full).
Writes benchmarks/results/task_base_rates.{json,md}.

    .venv/bin/python benchmarks/task_base_rates.py --mmlu ../shared/data/mmlu/test.jsonl \\
        --harmbench ../shared/data/harmbench/harmbench_behaviors_text_test.csv
"""

from __future__ import annotations

import argparse
import json
import sys
from collections import Counter
from pathlib import Path

from saesteer.models import load_model
from saesteer.tasks import HarmBenchTask, MMLUTask, mean_reward, run_task


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", default="smollm2-135m-instruct")
    parser.add_argument("--mmlu", required=True)
    parser.add_argument("--harmbench", required=True)
    parser.add_argument("--mmlu-limit", type=int, default=400)
    parser.add_argument("--out", default=str(Path(__file__).parent / "results" / "task_base_rates"))
    args = parser.parse_args()
    model, tokenizer = load_model(args.model)
    rows = []
    mmlu = MMLUTask(args.mmlu)
    samples = mmlu.samples("test")[: args.mmlu_limit]
    records = run_task(model, tokenizer, mmlu, samples, batch_size=16, templated=mmlu.chat)
    answers = Counter(r.generation.strip() for r in records)  # what CorrSteer's scorer compares with the letter
    rows.append(
        {
            "task": "mmlu",
            "n": len(records),
            "reward_name": mmlu.reward_name,
            "rate": mean_reward(records),
            "answers": dict(answers.most_common(6)),
        }
    )
    harm = HarmBenchTask(args.harmbench, categories=("standard",))
    samples = harm.samples("train") + harm.samples("val") + harm.samples("test")
    records = run_task(model, tokenizer, harm, samples, batch_size=16, templated=harm.chat)
    rows.append(
        {
            "task": "harmbench (standard)",
            "n": len(records),
            "reward_name": harm.reward_name,
            "rate": mean_reward(records),
            "example": records[0].generation[:120],
        }
    )
    command = "python benchmarks/task_base_rates.py " + " ".join(sys.argv[1:])
    out = Path(args.out)
    out.with_suffix(".json").write_text(json.dumps({"command": command, "model": args.model, "rows": rows}, indent=2))
    lines = [
        f"# Unsteered base rates of {args.model} on the CorrSteer paper tasks",
        "",
        f"Command: `{command}`",
        "",
        "| task | n | reward | rate | notes |",
        "|---|---:|---|---:|---|",
    ]
    for row in rows:
        notes = f"answers (stripped): {row['answers']}" if "answers" in row else f"e.g. {row['example']!r}"
        lines.append(f"| {row['task']} | {row['n']} | {row['reward_name']} | {row['rate']:.3f} | {notes} |")
    out.with_suffix(".md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main()

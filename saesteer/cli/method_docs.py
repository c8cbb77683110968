"""Help epilogs of ``saesteer train METHOD``: worked examples for the built-in methods, ``Method.example``
for any other registered method, and the driver options every method shares."""

from __future__ import annotations

from saesteer.engines.protocol import Method

DRIVER = """every method: --config FILE (a YAML/JSON mapping of the fields above; flags given override it),
--wandb-project NAME to log the fit to wandb (offline unless WANDB_MODE=online; off by default)."""

DOCS = {
    "caa": """example:
  saesteer train caa --model smollm2-135m-instruct --layer 8 \\
      --data pairs.jsonl --store runs/store --name sentiment-l8

data: a JSON array or JSONL of A/B items (question, answer_matching_behavior,
answer_not_matching_behavior) or completion pairs (positive, negative[, prompt]).""",
    "corrsteer": """example:
  saesteer sae train --model smollm2-135m-instruct --layer 8 --store runs/store
  saesteer train corrsteer --model smollm2-135m-instruct --task capitals --layers all \\
      --store runs/store --name capitals-A --variant A
  saesteer train corrsteer --model M --task mmlu --data mmlu.jsonl --layers 8,12 --store runs/store --name mmlu-P \\
      --variant P --samples 4000
  saesteer features top --store runs/store --name capitals-A

tasks: capitals, sentiment (shipped), mmlu and harmbench (--data PATH), or NAME --data qa.jsonl
({question, answer} rows). --layers all uses every layer that has an SAE in the store.""",
    "prosv": """example:
  saesteer train prosv --model smollm2-135m-instruct --layer 12 --store runs/store --name cpp \\
      --data saesteer/data/samples/axbench/train.jsonl \\
      --concept "C/C++ programming syntax elements such as data types, function definitions, and variable declarations"
  saesteer train prosv --model M --layer 12 --store runs/store --name pirate --concept "pirate speech" --loss simpo
  saesteer train prosv ... --positions all --name cpp-fssv            # the full-sequence (FSSV) baseline
  saesteer generate --model M --store runs/store --vector cpp --alpha=1 "Tell me about your weekend."

data (--data): JSONL rows {instruction, concept_response, neutral_response} (neutral needed for simpo only),
the release's contrast format {input, positive_output, negative_output} (negative_output is simpo's loser),
or the AxBench train format {input, output, concept_id, category, genre} (the concept's positive rows;
--concept is looked up in concepts.jsonl beside the file, or pass --concept-id). simpo without neutral
responses is an error unless --neutral model (the model's own greedy answers: a departure). Training
responses get no EOS appended (as the release). Without --data, --generator (default: the bundled instruct
model) writes both responses for --num-instructions instructions (default: the shipped AxBench train ones).

The trained factor is used as is (alpha=1 means "as trained"; other values multiply it).
Defaults (--preset released): the release's config for a model of that shape (Gemma-2 2B L10/L20, 9B L20,
27B L21, Gemma-3 12B L22, Qwen-2.5 32B L32), else the width rule (the 2B-L10 config, rates moved by
sqrt(width)); the artifact records which as hyper_source.""",
    "psr": """examples:
  saesteer train psr --model smollm2-135m-instruct --layers 15 \\
      --trait "Answer in a very happy, enthusiastic tone." \\
      --data saesteer/data/samples/axbench/instructions.jsonl --store runs/store --name happy-l15
  saesteer train psr --model M --concept "references to rental services" --layers all --objective ll \\
      --data prompts.jsonl --store runs/store --name rental-A --alpha 1.0

data: base prompts x as a JSON list / JSONL of strings or of objects with 'instruction' or 'prompt'.
The model answers x' = x + the trait instruction (sampled at temperature 1 with --seed, as the paper;
--no-sample: greedy); those answers y' are the training targets. With --judge (proxy, hf:MODEL or
openai:MODEL@URL) triplets scoring < 0.5 on the attribute or coherence judge are dropped (the paper).
--span QR (default with --trait: persona) steers question + response with the trait as the system turn
of x'; R (default otherwise) the last prompt token + response. --reg-weight: persona regulariser
(paper 0.1, the default; 0 = off). --layers L trains S-PSR at one layer, 'all' (or a list) A-PSR jointly.
Without --alpha, alpha is binary-searched on the dev prompts so the steered outputs' coherence
(proxy: mean token log-likelihood under the unsteered model) matches the prompted answers' own
(--coherence-target prompt) or a given value. The stored probe steers with alpha * (stored alpha):
'saesteer generate' / steer(model, artifact, alpha=1.0) = as calibrated.""",
}


def epilog(method: Method, file_only: list[str]) -> str:
    """The method's examples, the shared driver options and the fields only ``--config FILE`` can set."""
    text = DOCS.get(method.name) or (f"example:\n  {method.example}" if method.example else "")
    if file_only:
        text += f"\n\nset only in --config FILE: {', '.join(file_only)}"
    return f"{text}\n\n{DRIVER}".strip()

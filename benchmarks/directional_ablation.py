"""Directional ablation on the bundled model: does removing the diff-mean direction undo a system prompt?

Behaviour: the system prompt "Reply only in French. ..." makes SmolLM2-135M-Instruct answer in French. The
direction is the diff-mean of block-output activations (last prompt token) with vs without that system
prompt on 30 training instructions (shipped AxBench train_instructions); its read layer is chosen by the
French rate under ablation on 10 further training instructions. On 20 held-out instructions (shipped AxBench
instructions) it reports the French rate: unprompted, prompted, prompted + runtime ablation (exact form,
every block input and attention/MLP output), prompted + the stored artifact through steer() (the same sites),
prompted + block-output ablation at the read layer only,
prompted + the orthogonalised checkpoint (plain transformers), and token equality of the last two forms.
Writes benchmarks/results/directional_ablation.{json,md}.

    OMP_NUM_THREADS=1 .venv/bin/python benchmarks/directional_ablation.py
"""

from __future__ import annotations

import argparse
import json
import re
import tempfile
import time
from contextlib import nullcontext
from pathlib import Path
from typing import Any

import torch
from transformers import AutoModelForCausalLM

from saesteer.data import sample_path
from saesteer.data.chat import chat_prompt
from saesteer.engines.ablation import AblationConfig, fit
from saesteer.engines.psr.data import load_prompts
from saesteer.generation import complete
from saesteer.interop import orthogonalize_model
from saesteer.models import load_model
from saesteer.runtime import steer
from saesteer.runtime.ablation import ablate

INSTRUCTION = "Reply only in French. Réponds uniquement en français."
FRENCH_WORDS = "le la les est de des du un une et en pour dans que qui sur avec au aux ce sont à par pas il elle"
ENGLISH_WORDS = "the is a an of and to in that are for with it on as this by be was you your can"
FRENCH, ENGLISH = frozenset(FRENCH_WORDS.split()), frozenset(ENGLISH_WORDS.split())


def is_french(text: str) -> bool:
    """More French than English function words among the reply's words."""
    words = re.findall(r"[a-zàâçéèêëîïôûùüÿœ']+", text.lower())
    return sum(w in FRENCH for w in words) > sum(w in ENGLISH for w in words)


def run(model: Any, tokenizer: Any, prompts: list[str], system: str | None, context: Any, tokens: int) -> Any:
    texts = [chat_prompt(tokenizer, p, system=system) for p in prompts]
    with context if context is not None else nullcontext():
        return complete(model, tokenizer, texts, max_new_tokens=tokens, chat=False, templated=True, batch_size=10)


def rate(texts: list[str]) -> float:
    return sum(map(is_french, texts)) / len(texts)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", default="smollm2-135m-instruct")
    parser.add_argument("--layers", default="4,8,12,16,20", help="candidate read layers")
    parser.add_argument("--tokens", type=int, default=32)
    parser.add_argument("--out", default=str(Path(__file__).parent / "results" / "directional_ablation"))
    args = parser.parse_args()
    start = time.time()
    torch.manual_seed(0)
    model, tok = load_model(args.model)
    pool = load_prompts(sample_path("axbench/train_instructions.jsonl"))
    train, dev = pool[:30], pool[30:40]
    test = load_prompts(sample_path("axbench/instructions.jsonl"))[:20]

    sweep, fitted = {}, {}
    for layer in [int(x) for x in args.layers.split(",")]:
        config = AblationConfig.model_validate({"instruction": INSTRUCTION, "layer": layer, "n_prompts": len(train)})
        artifact = fit(model, tok, train, config, progress=False).artifact
        fitted[layer] = artifact
        dev_out = run(model, tok, dev, INSTRUCTION, ablate(model, artifact.direction), args.tokens)
        sweep[layer] = {"dev_french_rate_ablated": rate(dev_out.texts), **artifact.metrics}
        print(f"layer {layer}: dev French rate under ablation {sweep[layer]['dev_french_rate_ablated']:.2f}")
    best = min(sweep, key=lambda layer: (sweep[layer]["dev_french_rate_ablated"], layer))
    artifact = fitted[best]

    conditions: dict[str, tuple[str | None, Any]] = {
        "unprompted": (None, None),
        "prompted": (INSTRUCTION, None),
        "prompted + runtime ablation (exact)": (INSTRUCTION, ablate(model, artifact.direction)),
        "prompted + steer(artifact)": (INSTRUCTION, steer(model, artifact)),
        "prompted + read-layer block output only": (
            INSTRUCTION,
            steer(model, artifact.interventions(layer=best, hook_point="resid_post")),
        ),
        "unprompted + runtime ablation (exact)": (None, ablate(model, artifact.direction)),
    }
    outputs = {
        name: run(model, tok, test, system, context, args.tokens) for name, (system, context) in conditions.items()
    }
    with tempfile.TemporaryDirectory() as tmp:
        path = orthogonalize_model(model, artifact, Path(tmp) / "ortho", tokenizer=tok)
        ortho = AutoModelForCausalLM.from_pretrained(path, dtype=torch.float32).eval()
        outputs["prompted + orthogonalised checkpoint"] = run(ortho, tok, test, INSTRUCTION, None, args.tokens)
    exact = outputs["prompted + runtime ablation (exact)"].ids
    weights = outputs["prompted + orthogonalised checkpoint"].ids
    through_steer = outputs["prompted + steer(artifact)"].ids
    result = {
        "model": args.model,
        "instruction": INSTRUCTION,
        "read_layer": best,
        "n_train": len(train),
        "n_dev": len(dev),
        "n_test": len(test),
        "max_new_tokens": args.tokens,
        "layer_sweep": sweep,
        "french_rate": {name: rate(out.texts) for name, out in outputs.items()},
        "checkpoint_equals_runtime": sum(a == b for a, b in zip(exact, weights, strict=True)),
        "steer_equals_exact": sum(a == b for a, b in zip(exact, through_steer, strict=True)),
        "examples": {name: out.texts[:3] for name, out in outputs.items()},
        "seconds": round(time.time() - start, 1),
    }
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.with_suffix(".json").write_text(json.dumps(result, indent=2, ensure_ascii=False))
    print(json.dumps({k: result[k] for k in ("read_layer", "french_rate", "checkpoint_equals_runtime")}, indent=2))
    print(f"steer_equals_exact {result['steer_equals_exact']}/{len(test)}; {result['seconds']} s")


if __name__ == "__main__":
    main()

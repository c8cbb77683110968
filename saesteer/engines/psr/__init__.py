"""PSR, Prompt Steering Replacement (Heyman & Vandeputte, arXiv 2605.03907), as a registered method: a
token-wise ReLU probe distilled from prompting.

Per steered layer l: h' = h + alpha * ReLU(w_l.h + b_l) * z_l on the span, at training and inference: R = the
last prompt token and every response token (``prompt_and_generated_last``), QR = question and response (the
whole prompt and every generated token at inference, ``all``). S-PSR steers one layer,
A-PSR several (or all) layers trained jointly. The package:

- ``data``: triplets (x, x', y'), x' = x + the trait instruction, y' the model's (sampled) answer to x', and
  their batches over the R or QR span;
- ``judging``: the attribute + coherence judges that drop triplets scoring < 0.5 (with ``config.judge``);
- ``probes``: the trainable (w, b, z) and the forward that applies them through the runtime (``steer`` with a
  ``TrainableProbe`` on the span, readers that stop after the deepest layer a loss needs);
- ``training``: ``train_probes``, the mse (prompted activations) or ll (prompted responses) objective;
- ``metrics``: R^2 / cosine of the predicted vs the prompt-induced difference, zero gates, a constant baseline;
- ``calibration``: the binary search of alpha to a coherence target under a pluggable judge;
- ``artifact``: the stored probes and alpha; ``artifact.interventions(alpha=m)`` steers with m * alpha.

``fit`` chains them: triplets -> judged (if a judge is set) -> probes -> alpha (``config.alpha``, else
calibrated on the dev prompts).

    >>> config = PSRConfig(layers=[15], trait="Answer in a very happy tone.")
    >>> fitted = psr.fit(model, tok, PSRData(prompts, config.trait), config)   # triplets, probes, alpha
    >>> with steer(model, fitted.artifact, alpha=[0.5, 1.0]): model.generate(...)
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Any

from saesteer.engines.protocol import DataContext, Fitted, Log, Method
from saesteer.engines.psr.artifact import POSITIONS, PSRArtifact
from saesteer.engines.psr.calibration import Calibration, calibrate, perplexity_judge, prompt_coherence
from saesteer.engines.psr.config import PSRConfig
from saesteer.engines.psr.data import (
    Judge,
    Triplet,
    build_triplets,
    concept_instruction,
    load_prompts,
    pair_batch,
    steered_prompt,
)
from saesteer.engines.psr.judging import TripletFilter, filter_triplets, make_rater, rating_scores
from saesteer.engines.psr.metrics import probe_metrics
from saesteer.engines.psr.probes import ProbeParams, run_probes
from saesteer.engines.psr.training import PSRResult, split_triplets, train_probes
from saesteer.errors import ConfigError

__all__ = [
    "METHOD",
    "POSITIONS",
    "Calibration",
    "PSRArtifact",
    "PSRConfig",
    "PSRData",
    "PSRResult",
    "ProbeParams",
    "Triplet",
    "TripletFilter",
    "build_triplets",
    "calibrate",
    "concept_instruction",
    "filter_triplets",
    "fit",
    "load_data",
    "load_prompts",
    "make_rater",
    "pair_batch",
    "perplexity_judge",
    "probe_metrics",
    "prompt_coherence",
    "rating_scores",
    "run_probes",
    "split_triplets",
    "steered_prompt",
    "train_probes",
]


@dataclass
class PSRData:
    """Base prompts x and the instruction that makes x' = x + instruction (or ready triplets)."""

    prompts: list[str]
    instruction: str
    triplets: list[Triplet] | None = None
    judge: Judge | None = None  # coherence judge for the alpha search (default: the perplexity proxy)


def load_data(config: PSRConfig, context: DataContext) -> PSRData:
    """The base prompts of ``config.data`` and the trait (or concept) instruction."""
    if config.data is None:
        raise ConfigError("PSR needs base prompts. Fix: pass --data prompts.jsonl (or data: in the config).")
    if config.trait is None and config.concept is None:
        raise ConfigError("PSR needs a trait or a concept. Fix: pass --trait '...' or --concept '...'.")
    instruction = config.trait if config.trait is not None else concept_instruction(str(config.concept))
    return PSRData(load_prompts(config.data, config.n_prompts), instruction)


def fit(
    model: Any, tokenizer: Any, data: PSRData, config: PSRConfig, *, log: Log | None = None, progress: bool = True
) -> Fitted:
    """Prompts -> triplets -> probes -> alpha (``config.alpha``, else binary search on the dev prompts to
    ``config.coherence_target``: a judge score, or "prompt" = the prompted responses' own coherence, TA@Cp)."""
    from saesteer.store import data_hash

    triplets = data.triplets or build_triplets(
        model,
        tokenizer,
        data.prompts,
        data.instruction,
        max_new_tokens=config.max_new_tokens,
        sample=config.sample,
        seed=config.seed,
        batch_size=max(config.batch_size, 8),
        span=config.token_span,
        progress=progress,
    )
    judged: dict[str, Any] = {"judge": None, "generated": len(triplets), "kept": len(triplets)}
    if config.judge is not None and config.filter_triplets:
        rater = make_rater(config.judge, model, tokenizer)
        attribute = config.concept or config.trait or data.instruction
        triplets, dropped = filter_triplets(triplets, rating_scores(rater, attribute), rater.name)
        judged = dropped.record()
    train_set, dev = split_triplets(triplets, config.dev_fraction, config.seed)
    result = train_probes(model, tokenizer, train_set, config, dev=dev, log=log, progress=progress)
    result.artifact.config.update(
        {
            "instruction": data.instruction,
            "n_prompts": len(data.prompts),
            "max_new_tokens": config.max_new_tokens,
            "sample": config.sample,
            "triplet_filter": judged,
        }
    )
    calibration = None
    if config.alpha is not None:
        result.artifact = replace(result.artifact, alpha=float(config.alpha))
    elif dev:
        judge = data.judge or perplexity_judge(model, tokenizer)
        target = prompt_coherence(dev, judge) if config.coherence_target == "prompt" else float(config.coherence_target)
        calibration = calibrate(
            model,
            tokenizer,
            result.artifact,
            [t.prompt for t in dev],
            target=target,
            judge=judge,
            max_new_tokens=config.max_new_tokens,
            progress=progress,
        )
        result.artifact = calibration.artifact
    else:
        raise ConfigError("Calibrating alpha needs dev prompts. Fix: set dev_fraction > 0 or pass alpha=.")
    if log is not None:
        log(
            {k: v for k, v in result.artifact.metrics.items() if isinstance(v, (int, float))}
            | {"alpha": result.artifact.alpha}
        )
    report = {"result": result, "calibration": calibration}
    return Fitted(
        result.artifact, report=report, data_hash=data_hash({"prompts": data.prompts, "instruction": data.instruction})
    )


METHOD = Method(
    name="psr",
    summary="PSR: token-wise ReLU probe distilled from prompting",
    config=PSRConfig,
    artifact=PSRArtifact,
    fit=fit,
    load_data=load_data,
    example="saesteer train psr --model smollm2-135m-instruct --layers 15 --trait 'Answer happily.' "
    "--data prompts.jsonl --store runs/store --name happy",
)

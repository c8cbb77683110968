"""CRH on a real model: difference vectors, the penalised (L, rho) steering sweep, and its labeller.

>>> concept, samples = load_axbench_samples(0)   # concept id 0 of the bundled AxBench sample
>>> run = analyze_concept(model, tok, concept, samples, SweepConfig(layer=8), ProxyLabeller(model, tok))
>>> run.labels.shape                              # (test samples, L steps, rho values); 1/2/3 labels
>>> summarize([run])["P1_holds"]                  # then cylinder_results.save_results(...): JSON, PNGs, record

Each sample is a question with a concept-bearing response and a concept-free one (the model's own
greedy answer unless given). v_d = h_last("User: q\\nAssistant: with") - h_last("... without") at the
block output of ``layer`` (hidden_states[layer + 1]). u is DiffMean over the training samples; the
held-out test samples are steered on their own question with v(L, rho) added to every prompt token at
prefill (``positions="prompt"``, the paper's description) or to every token including the generated ones
(``positions="all"``, as the official penalty script's hook, which touches every forward call); that script
adds it at the block input of ``layer`` (``hook_point`` selects).
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal, Protocol, get_args, runtime_checkable

import numpy as np
import torch
from torch import Tensor
from tqdm.auto import tqdm

from saesteer.analysis import cylinder as crh
from saesteer.analysis import cylinder_angle
from saesteer.data import read_rows, sample_path
from saesteer.data.chat import encode
from saesteer.errors import ConfigError, DataError
from saesteer.eval.concept import concept_rating
from saesteer.eval.fluency import perplexity
from saesteer.eval.scorers import distinct_n
from saesteer.generation import generate
from saesteer.models.layers import check_layer
from saesteer.models.loading import model_id
from saesteer.runtime.capture import capture
from saesteer.runtime.intervention import HookPoint, Intervention
from saesteer.runtime.operators import AddVector
from saesteer.runtime.positions import parse_positions

DEFAULT_TEMPLATE = "User: {question}\nAssistant: {response}"
Positions = Literal["prompt", "all"]


@dataclass(frozen=True)
class Sample:
    """A question, a concept-bearing response, and (optionally) a concept-free response."""

    question: str
    with_concept: str
    without_concept: str | None = None


@dataclass(frozen=True)
class SweepConfig:
    """CPU-sized defaults; ``SweepConfig.paper(layer)`` gives the paper's 25 L steps x 20 rho, 32 tokens."""

    layer: int = 8
    template: str = DEFAULT_TEMPLATE
    n_test: int = 8
    steps: int = 10
    n_rho: int = 5
    max_scale: float = 3.0  # L runs over linspace(0, max_scale |u|, steps + 1)[1:]
    max_new_tokens: int = 24
    answer_tokens: int = 64  # length of the generated concept-free answers
    axis: crh.AxisMethod = "diffmean"
    hook_point: HookPoint = "resid_pre"
    positions: Positions = "prompt"  # "prompt": prompt tokens at prefill only; "all": generated tokens too
    batch_size: int = 32
    seed: int = 0

    def __post_init__(self) -> None:
        if "{question}" not in self.template or not self.template.endswith("{response}"):
            raise ConfigError(
                f"Template {self.template!r} must contain {{question}} and end with {{response}}. "
                "Fix: e.g. 'User: {question}\\nAssistant: {response}'."
            )
        if self.steps < 1 or self.n_rho < 1 or self.n_test < 2 or self.max_scale <= 0:
            raise ConfigError("Need steps >= 1, n_rho >= 1, n_test >= 2 and max_scale > 0. Fix: raise the values.")
        if self.positions not in get_args(Positions):
            raise ConfigError(
                f"positions={self.positions!r} is not a CRH position policy. "
                "Fix: use 'prompt' (prompt tokens at prefill) or 'all' (generated tokens too)."
            )

    @classmethod
    def paper(cls, layer: int, **overrides: Any) -> SweepConfig:
        return cls(**{"layer": layer, "steps": 25, "n_rho": 20, "max_new_tokens": 32, **overrides})

    def prompt(self, question: str) -> str:
        return self.template.format(question=question, response="")

    def text(self, question: str, response: str) -> str:
        return self.template.format(question=question, response=response)

    def rhos(self) -> list[float]:
        return np.linspace(0.0, 1.0, self.n_rho).tolist() if self.n_rho > 1 else [0.0]

    def scales(self) -> list[float]:
        """L / |u| at each step."""
        return np.linspace(0.0, self.max_scale, self.steps + 1)[1:].tolist()


def load_axbench_samples(concept_id: int, path: str | Path | None = None) -> tuple[str, list[Sample]]:
    """(concept description, its positive samples) from the AxBench sample (``train.jsonl`` + concepts)."""
    concepts = {int(r["concept_id"]): r["concept"] for r in read_rows(sample_path("axbench/concepts.jsonl"))}
    if concept_id not in concepts:
        raise DataError(f"Unknown AxBench concept id {concept_id}. Fix: use one of {sorted(concepts)}.")
    rows = read_rows(path or sample_path("axbench/train.jsonl"))
    samples = [Sample(r["input"], r["output"]) for r in rows if int(r.get("concept_id", -1)) == concept_id]
    return concepts[concept_id], samples


def load_samples(path: str | Path) -> list[Sample]:
    """User samples: JSON/JSONL rows with ``question, with_concept`` and optional ``without_concept``."""
    samples = []
    for number, row in enumerate(read_rows(path), start=1):
        if not isinstance(row, dict) or not row.get("question") or not row.get("with_concept"):
            raise DataError(
                f"{path} row {number} lacks 'question' or 'with_concept'. "
                "Fix: rows look like {'question': ..., 'with_concept': ..., 'without_concept': ... (optional)}."
            )
        samples.append(Sample(row["question"], row["with_concept"], row.get("without_concept") or None))
    return samples


def background_texts(config: SweepConfig) -> list[str]:
    """Concept-free AxBench responses (negatives) in the template: the corpus mean for mean-centering."""
    rows = read_rows(sample_path("axbench/train.jsonl"))
    return [config.text(r["input"], r["output"]) for r in rows if int(r.get("concept_id", -1)) == -1]


def fill_without_concept(
    model: Any, tokenizer: Any, samples: Sequence[Sample], config: SweepConfig, cache: Path | None = None
) -> list[Sample]:
    """Give every sample a concept-free response: the model's greedy answer, cached in ``cache`` (JSON)."""
    known: dict[str, str] = json.loads(cache.read_text()) if cache is not None and cache.is_file() else {}

    def key(question: str) -> str:
        raw = json.dumps([model_id(model), config.template, config.answer_tokens, question])
        return hashlib.sha256(raw.encode()).hexdigest()[:24]

    missing = sorted({s.question for s in samples if s.without_concept is None and key(s.question) not in known})
    if missing:
        answers = generate(
            model,
            tokenizer,
            [config.prompt(q) for q in missing],
            max_new_tokens=config.answer_tokens,
            chat=False,
            batch_size=config.batch_size,
            progress=True,
        )
        known.update({key(q): a for q, a in zip(missing, answers, strict=True)})
        if cache is not None:
            cache.parent.mkdir(parents=True, exist_ok=True)
            cache.write_text(json.dumps(known, indent=1))
    return [
        s if s.without_concept is not None else Sample(s.question, s.with_concept, known[key(s.question)])
        for s in samples
    ]


def last_token_states(model: Any, tokenizer: Any, texts: Sequence[str], layer: int, batch_size: int = 16) -> Tensor:
    """Block output of ``layer`` at each text's last token, (n, d) float64 (left padding, true positions)."""
    layer = check_layer(model, layer)
    rows = []
    for start in range(0, len(texts), batch_size):
        batch = dict(encode(tokenizer, list(texts[start : start + batch_size]), templated=False))
        batch["position_ids"] = (batch["attention_mask"].cumsum(dim=1) - 1).clamp(min=0)
        rows.append(capture(model, batch, [layer])[layer][:, -1].to(torch.float64))
    return torch.cat(rows)


def difference_vectors(
    model: Any, tokenizer: Any, samples: Sequence[Sample], config: SweepConfig
) -> tuple[Tensor, Tensor]:
    """(r_with, r_no): last-token states of each sample with its concept response and without."""
    if any(s.without_concept is None for s in samples):
        raise DataError("Some samples have no concept-free response. Fix: call fill_without_concept first.")
    r_with = last_token_states(
        model, tokenizer, [config.text(s.question, s.with_concept) for s in samples], config.layer
    )
    r_no = last_token_states(
        model, tokenizer, [config.text(s.question, s.without_concept or "") for s in samples], config.layer
    )
    return r_with, r_no


class Labeller(Protocol):
    """Labels each steered output: 1 normal answer, 2 concept present, 3 gibberish."""

    name: str

    def __call__(self, concept: str, questions: Sequence[str], outputs: Sequence[str]) -> list[int]: ...


@runtime_checkable
class CalibratedLabeller(Labeller, Protocol):
    """A labeller fitted per concept before labelling (and checked on the test split). It is fitted on the axis's
    training split, or, when it has an integer ``reserve`` > 0, on that many samples set aside from the training
    pool and not used for u (``analyze_concept`` does the split)."""

    def calibrate(
        self, concept: str, u: Tensor, train: Sequence[Sample], test: Sequence[Sample], config: SweepConfig
    ) -> dict[str, float]: ...


@dataclass
class ProxyLabeller:
    """Offline judge (a proxy for the paper's LLM judge): 3 if perplexity under the unsteered model exceeds
    ``max_perplexity`` or distinct-2 falls below ``min_distinct`` (loops), else 2 if the concept keyword
    rating (0-2) is at least ``concept_threshold`` (1: any concept keyword, 2: two or more), else 1."""

    model: Any
    tokenizer: Any
    max_perplexity: float = 500.0
    min_distinct: float = 0.5
    concept_threshold: int = 2
    name: str = field(init=False)
    _cache: dict[tuple[str, str], float] = field(default_factory=dict, repr=False)

    def __post_init__(self) -> None:
        if self.concept_threshold not in (1, 2):
            raise ConfigError(
                f"concept_threshold={self.concept_threshold} is not a keyword rating. "
                "Fix: use 1 (any concept keyword) or 2 (two or more keywords)."
            )
        self.name = (
            f"proxy: perplexity>{self.max_perplexity:g}/distinct-2<{self.min_distinct:g} gibberish + "
            f"concept keyword rating>={self.concept_threshold}"
        )

    def perplexities(self, questions: Sequence[str], outputs: Sequence[str]) -> list[float]:
        pairs = [(q, o) for q, o in dict.fromkeys(zip(questions, outputs, strict=True)) if (q, o) not in self._cache]
        pairs = [p for p in pairs if p[1].strip()]
        if pairs:
            values = perplexity(self.model, self.tokenizer, [q for q, _ in pairs], [o for _, o in pairs])
            self._cache.update(zip(pairs, values, strict=True))
        return [self._cache.get((q, o), float("inf")) for q, o in zip(questions, outputs, strict=True)]

    def __call__(self, concept: str, questions: Sequence[str], outputs: Sequence[str]) -> list[int]:
        labels = []
        for text, ppl in zip(outputs, self.perplexities(questions, outputs), strict=True):
            if not text.strip() or ppl > self.max_perplexity or distinct_n(text, 2) < self.min_distinct:
                labels.append(crh.GIBBERISH)
            else:
                rated = concept_rating(concept, text) >= self.concept_threshold
                labels.append(crh.CONCEPT if rated else crh.NORMAL)
        return labels


def steered_outputs(
    model: Any, tokenizer: Any, prompts: Sequence[str], vectors: Tensor, config: SweepConfig, desc: str = "sweep"
) -> list[str]:
    """Greedy completions, row i of ``prompts`` steered by ``vectors[i]`` at ``config.positions``."""
    layer = check_layer(model, config.layer)
    positions = parse_positions(config.positions)
    outputs: list[str] = []
    for start in tqdm(range(0, len(prompts), config.batch_size), desc=desc):
        chunk = list(prompts[start : start + config.batch_size])
        rows = vectors[start : start + len(chunk)].to(torch.float32)
        item = Intervention(layer, AddVector(rows), positions, config.hook_point)
        outputs += generate(
            model,
            tokenizer,
            chunk,
            max_new_tokens=config.max_new_tokens,
            steering=[item],
            chat=False,
            batch_size=len(chunk),
        )
    return outputs


@dataclass
class ConceptRun:
    """Everything one concept's sweep produced (lengths in absolute units; see ``scales`` for L / |u|)."""

    concept: str
    questions: list[str]
    u: Tensor  # (d,)
    v_d: Tensor  # (n_test, d)
    v_d_train: Tensor  # (n_train, d)
    cos: Tensor
    sin: Tensor
    lengths: list[float]
    rhos: list[float]
    labels: np.ndarray  # (n_test, steps, n_rho)
    outputs: list[list[list[str]]]  # [sample][step][rho]
    baseline_labels: list[int]  # unsteered (L = 0)
    baseline_outputs: list[str]
    calibration: dict[str, float] | None = None  # a calibrated labeller's fit (e.g. held-out accuracy)

    @property
    def norm_u(self) -> float:
        return float(self.u.norm())

    @property
    def steerability(self) -> np.ndarray:
        """St / |u| at rho = 0, per test sample."""
        return crh.steerability(self.labels[:, :, 0], np.asarray(self.lengths)) / self.norm_u


def split_samples(
    samples: Sequence[Sample], n_test: int, seed: int, reserve: int = 0
) -> tuple[list[Sample], list[Sample], list[Sample]]:
    """(train, test, reserved): a seeded shuffle, the last ``n_test`` held out for steering, the first ``reserve``
    set aside for the labeller (disjoint from the axis's training split)."""
    if len(samples) < n_test + reserve + 2:
        raise DataError(
            f"{len(samples)} samples cannot give {n_test} test + {reserve} labeller + 2 training samples. "
            "Fix: lower n_test or the labeller's reserve, or add samples."
        )
    order = np.random.default_rng(seed).permutation(len(samples))
    shuffled = [samples[i] for i in order]
    return shuffled[reserve:-n_test], shuffled[-n_test:], shuffled[:reserve]


def analyze_concept(
    model: Any,
    tokenizer: Any,
    concept: str,
    samples: Sequence[Sample],
    config: SweepConfig,
    labeller: Labeller,
    cache: Path | None = None,
) -> ConceptRun:
    """Difference vectors, axis u from the training split, then the labelled (L, rho) sweep on the test split."""
    torch.manual_seed(config.seed)
    samples = fill_without_concept(model, tokenizer, samples, config, cache)
    reserve = int(getattr(labeller, "reserve", 0))
    train, test, reserved = split_samples(samples, config.n_test, config.seed, reserve)
    r_with, r_no = difference_vectors(model, tokenizer, train, config)
    background = None
    if config.axis == "mean_center":
        background = last_token_states(model, tokenizer, background_texts(config), config.layer)
    u = crh.population_axis(r_with, r_no, config.axis, background)
    calibration = (
        labeller.calibrate(concept, u, reserved if reserve else train, test, config)
        if isinstance(labeller, CalibratedLabeller)
        else None
    )
    t_with, t_no = difference_vectors(model, tokenizer, test, config)
    v_d = t_with - t_no
    cos, sin = crh.angles(v_d, u)
    lengths = [s * float(u.norm()) for s in config.scales()]
    rhos = config.rhos()
    grid = crh.penalised_grid(u, v_d, lengths, rhos)  # (n, steps, n_rho, d)
    prompts = [config.prompt(s.question) for s in test]
    rows = [prompts[i] for i in range(len(test)) for _ in range(len(lengths) * len(rhos))]
    texts = steered_outputs(model, tokenizer, rows, grid.reshape(-1, grid.shape[-1]), config, desc=concept[:24])
    questions = [test[i].question for i in range(len(test)) for _ in range(len(lengths) * len(rhos))]
    labels = np.asarray(labeller(concept, questions, texts)).reshape(len(test), len(lengths), len(rhos))
    baseline = generate(model, tokenizer, prompts, max_new_tokens=config.max_new_tokens, chat=False)
    shaped = np.asarray(texts, dtype=object).reshape(len(test), len(lengths), len(rhos)).tolist()
    return ConceptRun(
        concept=concept,
        questions=[s.question for s in test],
        u=u,
        v_d=v_d,
        v_d_train=r_with - r_no,
        cos=cos,
        sin=sin,
        lengths=lengths,
        rhos=rhos,
        labels=labels,
        outputs=shaped,
        baseline_labels=labeller(concept, [s.question for s in test], baseline),
        baseline_outputs=baseline,
        calibration=calibration,
    )


AngleLaw = Literal["official", "per_sample"]


def angle_law_summary(
    runs: Sequence[ConceptRun],
    angle_law: AngleLaw = "official",
    *,
    drop_first_step_concept: bool = True,
    drop_zero_steerability: bool = True,
    permutations: int = 200,
    seed: int = 0,
) -> dict[str, Any] | None:
    """P2 as a dict labelled by ``variant`` (None: too few samples to fit).

    official: CRH's sincos_rel.py (cylinder_angle.py): one slope steerability per concept, x = sin^a cos^(2p-a),
    y = St / |u|^a. per_sample: saesteer's earlier variant, St = L_max - L_onset per sample,
    x = sin^m cos^(k-m), y = St / |v_d|^k (crh.unimodality_fit).
    """
    if angle_law == "official":
        data = cylinder_angle.angle_samples(
            [r.labels[:, :, 0] for r in runs],
            [r.cos.numpy() for r in runs],
            [r.sin.numpy() for r in runs],
            [r.norm_u for r in runs],
            drop_first_step_concept=drop_first_step_concept,
            drop_zero_steerability=drop_zero_steerability,
        )
        try:
            fit = cylinder_angle.angle_law_fit(data, permutations=permutations, seed=seed)
        except DataError:  # fewer than 2 kept concepts, or St equal for all: nothing to correlate
            return None
        return {"variant": "official (sincos_rel.py)", **vars(fit)}
    if angle_law != "per_sample":
        raise ConfigError(f"Unknown angle law {angle_law!r}. Fix: use 'official' or 'per_sample'.")
    st = np.concatenate([r.steerability for r in runs])
    cos = np.concatenate([r.cos.numpy() for r in runs])
    if int(((cos > 0) & (st > 0)).sum()) < 4:
        return None
    sin = np.concatenate([r.sin.numpy() for r in runs])
    norms = np.concatenate([(r.v_d.norm(dim=1) / r.norm_u).numpy() for r in runs])
    per_sample = crh.unimodality_fit(cos, sin, st, norms, permutations=permutations, seed=seed)
    return {"variant": "per_sample (saesteer)", **vars(per_sample), "holds": per_sample.unimodal}


def summarize(
    runs: Sequence[ConceptRun],
    *,
    permutations: int = 200,
    seed: int = 0,
    angle_law: AngleLaw = "official",
    drop_first_step_concept: bool = True,
    drop_zero_steerability: bool = True,
) -> dict[str, Any]:
    """The three predictions over every concept (L and St in units of each concept's |u|); P2 per ``angle_law``."""
    if not runs:
        raise DataError("No concept runs to summarise. Fix: analyse at least one concept.")
    scales = np.asarray(runs[0].lengths) / runs[0].norm_u
    rhos = np.asarray(runs[0].rhos)
    labels = np.concatenate([r.labels for r in runs])
    onset = crh.penalty_delay(labels, scales, rhos, crh.CONCEPT)
    collapse = crh.penalty_delay(labels, scales, rhos, crh.GIBBERISH)
    st = np.concatenate([r.steerability for r in runs])
    groups = np.concatenate([np.full(len(r.questions), i) for i, r in enumerate(runs)])
    pairwise = crh.pairwise_predictability(torch.cat([r.v_d for r in runs]), st, groups)
    summary: dict[str, Any] = {
        "n_samples": int(st.size),
        "label_fractions": {str(k): float((labels == k).mean()) for k in (1, 2, 3)},
        "baseline_label_fractions": {
            str(k): float(np.mean([b == k for r in runs for b in r.baseline_labels])) for k in (1, 2, 3)
        },
        "P1_onset": vars(onset),
        "P1_collapse": vars(collapse),
        "P1_holds": None  # None: a label never varies over the grid, so its delay cannot be tested
        if np.isnan(onset.spearman_r) or np.isnan(collapse.spearman_r)
        else onset.delayed and collapse.delayed,
        "P3": {"r": pairwise.r, "p": pairwise.p, "n_pairs": pairwise.n_pairs},
        "P3_holds": bool(pairwise.p >= 0.05) if np.isfinite(pairwise.p) else None,  # None: St constant
        "steerable_fraction": float((st > 0).mean()),
    }
    fits = [r.calibration for r in runs if r.calibration is not None]
    if fits:
        summary["calibration_heldout_accuracy"] = float(np.mean([f["heldout_accuracy"] for f in fits]))
    summary["P2"] = angle_law_summary(
        runs,
        angle_law,
        drop_first_step_concept=drop_first_step_concept,
        drop_zero_steerability=drop_zero_steerability,
        permutations=permutations,
        seed=seed,
    )
    summary["P2_holds"] = None if summary["P2"] is None else summary["P2"]["holds"]  # None: too few samples
    return summary


def load_concepts(concepts: str, data: str | Path | None = None) -> list[tuple[str, list[Sample]]]:
    """Concept specs for the CLI: AxBench ids ("0,5,9") over an AxBench-format ``data`` (default: the bundled
    sample), or, for a user file with ``question, with_concept[, without_concept]`` rows, one concept description."""
    rows = read_rows(data) if data else None
    if rows and isinstance(rows[0], dict) and "question" in rows[0]:
        return [(concepts, load_samples(data or ""))]
    try:
        ids = [int(x) for x in concepts.split(",") if x.strip()]
    except ValueError as exc:
        raise ConfigError(
            f"--concept {concepts!r} is not a list of AxBench concept ids. Fix: pass ids like 0,5,9, or give "
            "--data a file with question/with_concept rows and --concept its description."
        ) from exc
    return [load_axbench_samples(i, data) for i in ids]

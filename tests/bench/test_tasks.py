from __future__ import annotations

import pytest
import torch

from saesteer.bench.config import AxBenchSpec, JudgeSpec, MethodSpec, MMLUSpec
from saesteer.bench.methods import resolve
from saesteer.bench.models import BenchModels
from saesteer.bench.tasks import make_task
from saesteer.errors import DataError
from saesteer.eval.axbench_prompts import FIXED_STEERING_PROMPT, GENERATE_STEERING_PROMPT
from saesteer.generation import complete
from saesteer.tasks import run_task
from saesteer.tasks.axbench import sample_instructions, select_count
from saesteer.tasks.mmlu import letter_token_ids
from saesteer.vectors import SteeringVector


def test_mmlu_scoring_both_ways_agree_on_the_real_model(smollm2):
    """The first generated token is the argmax of the first-step logits (the last prompt position), and
    whenever that token is an option letter, the letter-logit scorer picks the same letter."""
    model, tokenizer = smollm2
    task = make_task(MMLUSpec(kind="mmlu", limit=24), BenchModels.of_hf(model, tokenizer))
    (unit,) = task.units
    samples = unit.samples
    done = complete(
        model, tokenizer, [s.prompt for s in samples], max_new_tokens=1, chat=False, batch_size=24, logits=True
    )
    greedy = done.first_logits.argmax(dim=-1)
    assert done.texts == [tokenizer.decode([int(t)], skip_special_tokens=True).strip() for t in greedy]
    with torch.no_grad():
        encoded = tokenizer([s.prompt for s in samples], return_tensors="pt", padding=True)
        direct = model(**encoded).logits[:, -1].float()
    assert torch.equal(direct.argmax(dim=-1), greedy)  # same position, read without generate
    scored = run_task(model, tokenizer, task.task, samples, batch_size=24)
    letters = set(letter_token_ids(tokenizer))
    for row, token in enumerate(greedy.tolist()):
        if token in letters:
            assert scored[row].scores["letter"] == done.texts[row]
            assert scored[row].scores["first_token"] == scored[row].scores["letter_logits"]
    assert all(r.n_tokens == 1 for r in scored)
    assert [r.reward for r in scored] == [r.scores["first_token"] for r in scored]  # the first metric


def test_axbench_units_split_instructions_and_are_seeded_by_concept(smollm2):
    model, tokenizer = smollm2
    spec = AxBenchSpec(kind="axbench", n_concepts=3, n_instructions=6, judge=JudgeSpec(kind="proxy", max_new_tokens=8))
    units = make_task(spec, BenchModels.of_hf(model, tokenizer)).units
    assert [u.name for u in units] == ["c0", "c1", "c2"]
    assert [s.phase for s in units[0].samples] == ["select"] * 3 + ["test"] * 3
    assert [s.prompt for s in units[0].samples] != [s.prompt for s in units[1].samples]
    again = make_task(spec, BenchModels.of_hf(model, tokenizer))
    assert [s.prompt for s in again.units[2].samples] == [s.prompt for s in units[2].samples]
    assert [s.id for s in again.task.samples("val")][:3] == ["c0/i0", "c0/i1", "c0/i2"]
    assert all(s.target == units[0].concept["concept"] for s in units[0].samples)  # what the judge rates
    with pytest.raises(DataError, match="val or test"):
        again.task.samples("train")


def test_letter_logits_are_read_under_steering_and_for_the_prompt_actually_sent(smollm2):
    model, tokenizer = smollm2
    task = make_task(MMLUSpec(kind="mmlu", limit=2), BenchModels.of_hf(model, tokenizer))
    (unit,) = task.units
    vector = torch.randn(model.config.hidden_size, generator=torch.Generator().manual_seed(0)) * 8
    steering = SteeringVector(vector, layer=8, positions="all")
    prompts = [s.prompt for s in unit.samples]
    options = {"max_new_tokens": 1, "chat": False, "logits": True}
    plain = complete(model, tokenizer, prompts, **options).first_logits
    steered = complete(model, tokenizer, prompts, steering=steering, alpha=[1.0, 1.0], **options).first_logits
    prompted = complete(model, tokenizer, [task.prompting(s, unit) for s in unit.samples], **options).first_logits
    assert not torch.allclose(plain, steered) and not torch.allclose(plain, prompted)
    # run_task sends the prompting text but scores against the sample
    scored = run_task(
        model, tokenizer, task.task, unit.samples, prompts=[task.prompting(s, unit) for s in unit.samples]
    )
    assert scored[0].prompt.startswith(task.spec.prompt) and scored[0].sample is unit.samples[0]


def test_axbench_defaults_sample_at_axbenchs_temperature_and_greedy_is_explicit(smollm2):
    models = BenchModels.of_hf(*smollm2)
    spec = AxBenchSpec(kind="axbench", n_concepts=1, n_instructions=2)
    assert make_task(spec, models).temperature == 1.0  # AxBench's inference temperature
    assert make_task(spec.model_copy(update={"temperature": 0.0}), models).temperature == 0.0


def test_axbench_instructions_are_drawn_as_pandas_sample_with_the_concept_id_as_random_state():
    pandas = pytest.importorskip("pandas")
    pool = [f"instruction {i}" for i in range(40)]
    for concept_id in (0, 3, 16038):
        expected = pandas.DataFrame({"instruction": pool}).sample(10, random_state=concept_id)["instruction"]
        assert sample_instructions(pool, 10, concept_id) == expected.tolist()
    # AxBench's evaluate.py: the first n - round(n * 0.5) input ids choose the factor
    assert [select_count(n) for n in (2, 5, 6, 9, 10)] == [1, 3, 3, 5, 5]


def test_axbench_units_choose_on_the_first_n_minus_round_half(smollm2):
    spec = AxBenchSpec(kind="axbench", n_concepts=1, n_instructions=5)
    (unit,) = make_task(spec, BenchModels.of_hf(*smollm2)).units
    assert [s.phase for s in unit.samples] == ["select"] * 3 + ["test"] * 2


class WritingJudge:
    """An LLM judge stand-in that writes steering prompts (empty for concept 1)."""

    name = "hf:writer"
    is_proxy = False

    def __init__(self) -> None:
        self.asked: list[str] = []

    def write(self, prompts):
        self.asked.extend(prompts)
        return ["" if "scientific terms" in p else f"  Always mention item {n}.\n" for n, p in enumerate(prompts)]

    def rate(self, items):
        return [{"concept": 1.0, "instruction": 1.0, "fluency": 1.0} for _ in items]


def _axbench(judge, concept_ids=(), **spec_fields):
    from saesteer.bench.tasks import BenchTask
    from saesteer.data import sample_path
    from saesteer.tasks.axbench import AxBenchTask

    spec = AxBenchSpec(kind="axbench", n_concepts=2, n_instructions=2, **spec_fields)
    task = AxBenchTask(
        sample_path("axbench/concepts.jsonl"),
        sample_path("axbench/train.jsonl"),
        sample_path("axbench/instructions.jsonl"),
        judge,
        concept_ids=tuple(concept_ids),
        n_concepts=2,
        n_instructions=2,
    )
    return BenchTask(spec, task, task.units(), judge.name, spec.temperature)


def test_prompting_baseline_uses_the_judges_steering_prompt_and_says_so():
    judge = WritingJudge()
    bench = _axbench(judge)
    first, second = bench.units
    sample = first.samples[0]
    assert bench.prompting(sample, first) == f" Always mention item 0.\n\nQuestion: {sample.prompt}"
    assert bench.prompt_source(first) == "generated by hf:writer"
    assert judge.asked[0] == GENERATE_STEERING_PROMPT.format(concept=first.concept["concept"])
    assert len(judge.asked) == 2  # one request per concept, cached
    # an empty answer falls back to AxBench's fixed sentence, as AxBench does
    fixed = FIXED_STEERING_PROMPT.format(concept=second.concept["concept"])
    assert bench.prompting(second.samples[0], second) == f" {fixed}\n\nQuestion: {second.samples[0].prompt}"
    assert bench.prompt_source(second) == "fixed sentence"
    assert _axbench(WritingJudge(), steering_prompt="fixed").prompt_source(first) == "fixed sentence"


def test_prompting_baseline_with_the_proxy_judge_is_the_fixed_sentence(smollm2):
    bench = make_task(AxBenchSpec(kind="axbench", n_concepts=1, n_instructions=2), BenchModels.of_hf(*smollm2))
    (unit,) = bench.units
    resolved = resolve(MethodSpec(kind="prompting"), unit, bench, None, BenchModels.of_hf(*smollm2))
    assert resolved.prompted and resolved.variant == "fixed sentence"
    text = bench.prompting(unit.samples[0], unit)
    assert text.startswith(" You must answer the question with content related to " + unit.concept["concept"])


def test_diffmean_negatives_match_the_concepts_genre_and_fall_back_labelled():
    """AxBench's train.py keeps the negatives of the concept's genre; the shipped sample has no code negatives."""
    text, code = _axbench(WritingJudge(), concept_ids=[0, 2]).units
    positives, negatives, used = _axbench(WritingJudge()).task.diffmean_texts(text)
    assert len(positives) == 36 and len(negatives) == 72 and used == "genre text"
    (math,) = _axbench(WritingJudge(), concept_ids=[5]).units
    assert _axbench(WritingJudge()).task.diffmean_texts(math)[1:] == (
        _axbench(WritingJudge()).task.diffmean_texts(math)[1],
        "genre math",
    )
    assert len(_axbench(WritingJudge()).task.diffmean_texts(math)[1]) == 36
    assert _axbench(WritingJudge()).task.diffmean_texts(code)[2] == "all genres"


def test_axbench_caa_without_artifact_fits_axbench_diffmean_by_default(smollm2, monkeypatch):
    from saesteer.tasks.axbench import AxBenchTask

    texts = ([("Name a tool.", "A rented ladder.")], [("Name a tool.", "A hammer.")], "genre text")
    monkeypatch.setattr(AxBenchTask, "diffmean_texts", lambda self, unit: texts)
    bench = _axbench(WritingJudge())
    unit = bench.units[0]
    models = BenchModels.of_hf(*smollm2)
    method = MethodSpec(kind="caa", layer=6, factors=[1.0])
    resolved = resolve(method, unit, bench, None, models)
    assert resolved.variant == "axbench diffmean (unit norm x max_act)"
    assert resolved.steering.method == "diffmean" and resolved.steering.positions == "all"
    assert resolved.steering.norm == pytest.approx(resolved.steering.config["max_act"], rel=1e-5)
    monkeypatch.setattr(
        AxBenchTask,
        "contrast_pairs",
        lambda self, unit: [{"prompt": "Name a tool.", "positive": "A ladder.", "negative": "A hammer."}],
    )
    old = resolve(method, unit, _axbench(WritingJudge(), diffmean="caa"), None, models)
    assert old.variant.startswith("caa") and old.steering.method == "caa"

from __future__ import annotations

import pytest
import torch

from saesteer.bench.config import AxBenchSpec, JudgeSpec, MMLUSpec
from saesteer.bench.models import BenchModels
from saesteer.bench.tasks import make_task
from saesteer.errors import DataError
from saesteer.generation import complete
from saesteer.tasks import run_task
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

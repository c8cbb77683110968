from __future__ import annotations

import torch

from saesteer.bench.config import AxBenchSpec, JudgeSpec, MMLUSpec
from saesteer.bench.methods import Resolved
from saesteer.bench.runner import _Batch, make_task
from saesteer.bench.tasks import letter_token_ids


def test_mmlu_scoring_both_ways_agree_on_the_real_model(smollm2):
    """The first generated token is the argmax of the first-step logits (the last prompt position), and
    whenever that token is an option letter, the letter-logit scorer picks the same letter."""
    model, tokenizer = smollm2
    task = make_task(MMLUSpec(kind="mmlu", limit=24), model, tokenizer)
    task.bind(tokenizer)
    (unit,) = task.units()
    items = unit.items
    batch = _Batch(model, tokenizer, Resolved(None), [0.0] * len(items))
    generated = batch.generate(
        [i.text for i in items], chat=False, max_new_tokens=1, temperature=0.0, seed=0, logits=True
    )
    greedy = generated.first_logits.argmax(dim=-1)
    assert [o.strip() for o in generated.texts] == [
        tokenizer.decode([int(t)], skip_special_tokens=True).strip() for t in greedy
    ]
    with torch.no_grad():
        encoded = tokenizer([i.text for i in items], return_tensors="pt", padding=True)
        direct = model(**encoded).logits[:, -1].float()
    assert torch.equal(direct.argmax(dim=-1), greedy)  # same position, read without generate
    scores = task.score(unit, items, generated.texts, generated.first_logits)
    letters = set(letter_token_ids(tokenizer))
    for row, token in enumerate(greedy.tolist()):
        if token in letters:
            assert scores[row]["letter"] == generated.texts[row].strip()
            assert scores[row]["first_token"] == scores[row]["letter_logits"]
    assert all(c == 1 for c in generated.counts)


def test_axbench_units_split_instructions_and_are_seeded_by_concept(smollm2):
    model, tokenizer = smollm2
    spec = AxBenchSpec(kind="axbench", n_concepts=3, n_instructions=6, judge=JudgeSpec(kind="proxy", max_new_tokens=8))
    units = make_task(spec, model, tokenizer).units()
    assert [u.name for u in units] == ["c0", "c1", "c2"]
    assert [i.phase for i in units[0].items] == ["select"] * 3 + ["test"] * 3
    assert [i.text for i in units[0].items] != [i.text for i in units[1].items]
    again = make_task(spec, model, tokenizer).units()
    assert [i.text for i in again[2].items] == [i.text for i in units[2].items]


def test_letter_logits_are_read_under_steering_and_for_the_prompt_actually_sent(smollm2):
    model, tokenizer = smollm2
    task = make_task(MMLUSpec(kind="mmlu", limit=2), model, tokenizer)
    (unit,) = task.units()
    texts = [i.text for i in unit.items]
    vector = torch.randn(model.config.hidden_size, generator=torch.Generator().manual_seed(0)) * 8
    from saesteer.vectors import SteeringVector

    steering = SteeringVector(vector, layer=8, positions="all")
    options = {"chat": False, "max_new_tokens": 1, "temperature": 0.0, "seed": 0, "logits": True}
    plain = _Batch(model, tokenizer, Resolved(None), [0.0, 0.0]).generate(texts, **options).first_logits
    steered = _Batch(model, tokenizer, Resolved(steering), [1.0, 1.0]).generate(texts, **options).first_logits
    prompted = (
        _Batch(model, tokenizer, Resolved(None), [0.0, 0.0])
        .generate([task.prompting(i, unit) for i in unit.items], **options)
        .first_logits
    )
    assert not torch.allclose(plain, steered) and not torch.allclose(plain, prompted)

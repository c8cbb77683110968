from __future__ import annotations

import torch

from saesteer.bench.config import AxBenchSpec, JudgeSpec, MMLUSpec
from saesteer.bench.methods import Resolved
from saesteer.bench.runner import _Batch, make_task
from saesteer.bench.tasks import letter_token_ids


def test_mmlu_scoring_both_ways_agree_on_the_real_model(smollm2):
    """The generated first token is the argmax of the last-position logits, and whenever that token is an
    option letter, the letter-logit scorer picks the same letter."""
    model, tokenizer = smollm2
    task = make_task(MMLUSpec(kind="mmlu", limit=24), model, tokenizer)
    task.bind(tokenizer)
    (unit,) = task.units()
    items = unit.items
    batch = _Batch(model, tokenizer, Resolved(None), [0.0] * len(items))
    texts = [i.text for i in items]
    outputs, counts = batch.generate(texts, chat=False, max_new_tokens=1, temperature=0.0, seed=0)
    logits = batch.logits_reader(chat=False)(texts)
    greedy = logits.argmax(dim=-1)
    assert tokenizer.batch_decode(greedy[:, None], skip_special_tokens=True) == [
        tokenizer.decode([int(t)], skip_special_tokens=True) for t in greedy
    ]
    assert [o.strip() for o in outputs] == [
        tokenizer.decode([int(t)], skip_special_tokens=True).strip() for t in greedy
    ]
    scores = task.score(unit, items, outputs, batch.logits_reader(chat=False))
    letters = set(letter_token_ids(tokenizer))
    letter_rows = [row for row, token in enumerate(greedy.tolist()) if token in letters]
    for row in letter_rows:
        assert scores[row]["letter"] == outputs[row].strip()
        assert scores[row]["first_token"] == scores[row]["letter_logits"]
    assert all(c == 1 for c in counts)


def test_axbench_units_split_instructions_and_are_seeded_by_concept(smollm2):
    model, tokenizer = smollm2
    spec = AxBenchSpec(kind="axbench", n_concepts=3, n_instructions=6, judge=JudgeSpec(kind="proxy", max_new_tokens=8))
    units = make_task(spec, model, tokenizer).units()
    assert [u.name for u in units] == ["c0", "c1", "c2"]
    assert [i.phase for i in units[0].items] == ["select"] * 3 + ["test"] * 3
    assert [i.text for i in units[0].items] != [i.text for i in units[1].items]
    again = make_task(spec, model, tokenizer).units()
    assert [i.text for i in again[2].items] == [i.text for i in units[2].items]


def test_letter_logits_move_under_steering(smollm2):
    """The letter scorer reads logits under the method's steering (not the plain model)."""
    model, tokenizer = smollm2
    task = make_task(MMLUSpec(kind="mmlu", limit=2), model, tokenizer)
    (unit,) = task.units()
    vector = torch.randn(model.config.hidden_size, generator=torch.Generator().manual_seed(0)) * 8
    from saesteer.vectors import SteeringVector

    steering = SteeringVector(vector, layer=8, positions="all")
    plain = _Batch(model, tokenizer, Resolved(None), [0.0, 0.0]).logits_reader(False)([i.text for i in unit.items])
    steered = _Batch(model, tokenizer, Resolved(steering), [1.0, 1.0]).logits_reader(False)(
        [i.text for i in unit.items]
    )
    assert not torch.allclose(plain, steered)

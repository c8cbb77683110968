from __future__ import annotations

import pytest

from saesteer.eval.judges import (
    RATINGS,
    TEMPLATES,
    JudgeError,
    JudgeItem,
    OpenAIJudge,
    ProxyJudge,
    harmonic_mean,
    parse_rating,
)


@pytest.mark.parametrize(
    ("reply", "expected"),
    [
        ("The concept is clearly present. Rating: [[2]]", 2.0),
        ("Rating: [[1]]", 1.0),
        ("Rating: [[ 0 ]]", 0.0),
        ("Somewhat fluent. Rating: [[1.5]]", 1.5),
        ("first Rating: [[2]] then changed my mind Rating: [[1]]", 1.0),
        ("Rating: [[3]]", 0.0),
        ("Rating: [[-1]]", 0.0),
        ("Rating: 2", 0.0),
        ("I think it deserves a 2", 0.0),
        ("", 0.0),
        ("Rating: [[two]]", 0.0),
    ],
)
def test_parse_rating_reads_the_last_valid_rating_and_garbage_is_zero(reply, expected):
    assert parse_rating(reply) == expected


@pytest.mark.parametrize(
    ("scores", "expected"),
    [([2, 2, 2], 2.0), ([1, 1, 1], 1.0), ([2, 1, 2], 3 / (0.5 + 1 + 0.5)), ([2, 0, 2], 0.0), ([0, 0, 0], 0.0)],
)
def test_harmonic_mean_is_zero_if_any_rating_is_zero(scores, expected):
    assert harmonic_mean(scores) == pytest.approx(expected)


def test_templates_ask_for_the_parsable_rating_format():
    for kind in RATINGS:
        prompt = TEMPLATES[kind].format(concept="c", instruction="i", output="o")
        assert "Rating: [[score]]" in prompt and "0" in prompt and "2" in prompt


def test_proxy_instruction_and_fluency_ratings():
    assert ProxyJudge.instruction_rating("How do volcanoes erupt?", "Volcanoes erupt when magma rises.") == 2.0
    assert ProxyJudge.instruction_rating("How do volcanoes erupt?", "I like pancakes with syrup.") == 0.0
    assert ProxyJudge.fluency_rating(8.0, 0.9) == 2.0
    assert ProxyJudge.fluency_rating(80.0, 0.9) == 1.0
    assert ProxyJudge.fluency_rating(8.0, 0.1) == 0.0  # repetition
    assert ProxyJudge.fluency_rating(float("inf"), 0.9) == 0.0


def test_proxy_judge_rates_real_text(smollm2):
    model, tokenizer = smollm2
    judge = ProxyJudge(model, tokenizer)
    good, bad = judge.rate(
        [
            JudgeItem(
                "rental services and equipment",
                "Where can I get a ladder?",
                "You can rent a ladder from an equipment rental service.",
            ),
            JudgeItem(
                "rental services and equipment", "Where can I get a ladder?", "the the the the the the the the the the"
            ),
        ]
    )
    assert judge.is_proxy and "proxy" in judge.name
    assert good["concept"] == 2.0 and good["instruction"] == 2.0 and good["fluency"] == 2.0
    assert bad["concept"] == 0.0 and bad["fluency"] == 0.0


def test_unreachable_openai_judge_raises_a_typed_error():
    judge = OpenAIJudge("gpt-4o-mini", base_url="http://127.0.0.1:9", timeout=2)
    with pytest.raises(JudgeError, match="Fix:"):
        judge.rate([JudgeItem("c", "i", "o")])

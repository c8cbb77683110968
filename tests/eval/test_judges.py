from __future__ import annotations

import json
import urllib.request

import pytest

from saesteer.bench.config import JudgeSpec
from saesteer.eval.axbench_prompts import JUDGE_TEMPLATES
from saesteer.eval.judges import (
    RATINGS,
    JudgeError,
    JudgeItem,
    OpenAIJudge,
    ProxyJudge,
    harmonic_mean,
    judge_prompts,
    make_judge,
    parse_rating,
)


@pytest.mark.parametrize(
    ("reply", "expected"),
    [
        ("The concept is clearly present. Rating: [[2]]", 2.0),
        ("Rating: [[1]]", 1.0),
        ("Rating: 2", 2.0),  # AxBench strips the brackets: a bare number counts
        ("Rating: [[ 0 ]]", 0.0),
        ("Somewhat fluent. Rating: [[1.5]]", 1.5),
        ("first Rating: [[2]] then changed my mind Rating: [[1]]", 1.0),
        ("Rating: [[2]].\nThe text is fluent.", 2.0),  # only the line after the last "Rating:"
        ('Rating: "1".', 1.0),
        ("Rating: **2**", 2.0),
        ("Rating: [[3]]", 0.0),
        ("Rating: [[-1]]", 0.0),
        ("Rating: 2/2", 0.0),  # not a number once the brackets are gone: AxBench's default 0
        ("I think it deserves a 2", 0.0),
        ("", 0.0),
        ("Rating: [[two]]", 0.0),
        ("Rating: [[1]] and later Rating: none", 0.0),  # the last one decides, even when unparseable
    ],
)
def test_parse_rating_follows_axbench_last_rating_brackets_stripped_garbage_zero(reply, expected):
    assert parse_rating(reply) == expected


@pytest.mark.parametrize(
    ("scores", "expected"),
    [([2, 2, 2], 2.0), ([1, 1, 1], 1.0), ([2, 1, 2], 3 / (0.5 + 1 + 0.5)), ([2, 0, 2], 0.0), ([0, 0, 0], 0.0)],
)
def test_harmonic_mean_is_zero_if_any_rating_is_zero(scores, expected):
    assert harmonic_mean(scores) == pytest.approx(expected)


def test_templates_ask_for_the_parsable_rating_format():
    for kind in RATINGS:
        prompt = JUDGE_TEMPLATES[kind].format(concept="c", instruction="i", sentence="o")
        assert 'Provide your rating using this exact format: "Rating: [[score]]".' in " ".join(prompt.split())


def test_judge_prompts_are_axbenchs_templates_filled_as_lm_judge_fills_them():
    """AxBench's lm_judge.py: concept + generation, raw instruction + generation, generation alone."""
    concept, instruction, fluency = judge_prompts(JudgeItem("rental gear", "Where can I get a ladder?", "Rent one."))
    assert concept.startswith("[System]\nPlease act as an impartial judge and evaluate whether the specified concept")
    assert concept.endswith(
        "[Concept Start]\nrental gear\n[Concept End]\n\n[Sentence Fragment Start]\nRent one.\n[Sentence Fragment End]\n"
    )
    assert "without regard for grammar or logical coherence." in concept
    assert "[Instruction Start]\nWhere can I get a ladder?\n[Instruction End]" in instruction
    assert "regardless of grammar, coherence, or informativeness." in instruction
    assert fluency.endswith("[Sentence Fragment Start]\nRent one.\n[Sentence Fragment End]\n")
    assert "2 indicates the sentence is fluent and almost perfect." in fluency and "rental" not in fluency


def test_openai_judge_sends_the_templates_at_axbenchs_temperatures(monkeypatch):
    """Ratings at 0.7 (AxBench's evaluate.py), steering-prompt writing at 1.0 (its LanguageModel default)."""
    sent: list[dict] = []

    class Reply:
        def __init__(self, body: dict) -> None:
            self.body = body

        def __enter__(self) -> Reply:
            return self

        def __exit__(self, *args: object) -> None:
            return None

        def read(self) -> bytes:
            text = "Rating: [[2]]" if "Rating" in self.body["messages"][0]["content"] else "  Talk about ladders. "
            return json.dumps({"choices": [{"message": {"content": text}}]}).encode()

    def fake_urlopen(request, timeout):
        sent.append(json.loads(request.data))
        return Reply(sent[-1])

    monkeypatch.setattr(urllib.request, "urlopen", fake_urlopen)
    judge = make_judge(JudgeSpec(kind="openai", model="gpt-4o-mini"), None, None)
    item = JudgeItem("c", "i", "o")
    assert judge.rate([item]) == [{"concept": 2.0, "instruction": 2.0, "fluency": 2.0}]
    assert [m["messages"][0]["content"] for m in sent] == judge_prompts(item)
    assert {m["temperature"] for m in sent} == {0.7}
    assert judge.write(["write"]) == ["Talk about ladders."] and sent[-1]["temperature"] == 1.0


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

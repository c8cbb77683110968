"""AxBench judges: three 0-2 ratings (concept, instruction, fluency) from an LLM or from offline proxies.

The LLM judges use the AxBench rating protocol (one independent request per rating, the answer ends in
"Rating: [[score]]", anything unparseable counts as 0). The proxy judge never calls a model for the
concept and instruction ratings and is named "proxy" in every output.
"""

from __future__ import annotations

import json
import math
import os
import re
import urllib.request
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Protocol

from saesteer.errors import ConfigError, SaesteerError
from saesteer.eval.concept import concept_rating, stem, stems
from saesteer.eval.scorers import distinct_n

RATINGS = ("concept", "instruction", "fluency")

TEMPLATES = {
    "concept": (
        "Decide how clearly a text incorporates a given concept.\n\n"
        "Rate 0 if the concept is absent, 1 if it is hinted at or only loosely connected, and 2 if it is "
        "clearly and directly incorporated.\n\n"
        "Concept: {concept}\n\nText: {output}\n\n"
        "Give a one-sentence reason, then end with your score in the form Rating: [[score]]."
    ),
    "instruction": (
        "Decide whether a response addresses an instruction, judging topical relevance only "
        "(ignore quality, style and any other content).\n\n"
        "Rate 0 if it is unrelated to the instruction, 1 if it is somewhat related, and 2 if it clearly "
        "addresses the instruction.\n\n"
        "Instruction: {instruction}\n\nResponse: {output}\n\n"
        "Give a one-sentence reason, then end with your score in the form Rating: [[score]]."
    ),
    "fluency": (
        "Decide how fluent a text is: grammatical, coherent and free of repetition or gibberish "
        "(ignore whether its content makes sense for any task).\n\n"
        "Rate 0 if it is not fluent, 1 if it is somewhat fluent, and 2 if it is fully fluent.\n\n"
        "Text: {output}\n\n"
        "Give a one-sentence reason, then end with your score in the form Rating: [[score]]."
    ),
}

_RATING = re.compile(r"Rating:\s*\[\[\s*(-?\d+(?:\.\d+)?)\s*\]\]")


def parse_rating(text: str) -> float:
    """The last "Rating: [[x]]" in ``text`` if 0 <= x <= 2, else 0 (AxBench's rule for unparseable answers)."""
    found = _RATING.findall(text or "")
    if not found:
        return 0.0
    value = float(found[-1])
    return value if 0.0 <= value <= 2.0 else 0.0


def harmonic_mean(scores: Sequence[float]) -> float:
    """AxBench's aggregate of the three ratings: 0 if any rating is 0, else their harmonic mean."""
    if any(s <= 0 for s in scores):
        return 0.0
    return len(scores) / sum(1.0 / s for s in scores)


@dataclass(frozen=True)
class JudgeItem:
    concept: str
    instruction: str
    output: str


class Judge(Protocol):
    """Rates items on the three AxBench axes (0-2 each); ``name`` appears in every result row."""

    name: str
    is_proxy: bool

    def rate(self, items: Sequence[JudgeItem]) -> list[dict[str, float]]: ...


class JudgeError(SaesteerError):
    """The judge failed (endpoint unreachable, bad reply)."""


def _prompts(item: JudgeItem) -> list[str]:
    return [
        TEMPLATES[k].format(concept=item.concept, instruction=item.instruction, output=item.output) for k in RATINGS
    ]


class ProxyJudge:
    """Offline proxies: concept = keyword overlap with the concept description; instruction = overlap of the
    instruction's content words; fluency = perplexity under the unsteered model and distinct-2 (repetition)."""

    is_proxy = True
    name = "proxy(keywords+perplexity)"

    def __init__(self, model: Any, tokenizer: Any, *, batch_size: int = 8) -> None:
        self.model, self.tokenizer, self.batch_size = model, tokenizer, batch_size

    @staticmethod
    def instruction_rating(instruction: str, output: str) -> float:
        words = {stem(w) for w in re.findall(r"[a-z]+", instruction.lower()) if len(w) > 3}
        if not words:
            return 2.0 if output.strip() else 0.0
        overlap = len(words & stems(output)) / len(words)
        return 2.0 if overlap >= 0.34 else 1.0 if overlap > 0 else 0.0

    @staticmethod
    def fluency_rating(perplexity: float, distinct_2: float) -> float:
        if not math.isfinite(perplexity) or perplexity > 200 or distinct_2 < 0.3:
            return 0.0
        return 2.0 if perplexity <= 40 and distinct_2 >= 0.6 else 1.0

    def rate(self, items: Sequence[JudgeItem]) -> list[dict[str, float]]:
        from saesteer.eval.fluency import perplexity

        texts = [i.output if i.output.strip() else self.tokenizer.eos_token for i in items]
        ppl = perplexity(self.model, self.tokenizer, [i.instruction for i in items], texts, batch_size=self.batch_size)
        return [
            {
                "concept": float(concept_rating(i.concept, i.output)),
                "instruction": self.instruction_rating(i.instruction, i.output),
                "fluency": self.fluency_rating(p, distinct_n(i.output, 2)) if i.output.strip() else 0.0,
                "perplexity": p,
            }
            for i, p in zip(items, ppl, strict=True)
        ]


class HFJudge:
    """A local HF instruct model answering the three rating prompts (greedy). Tiny models exercise the
    plumbing; do not report their ratings as if from a strong judge."""

    is_proxy = False

    def __init__(self, model_name: str, *, max_new_tokens: int = 128, batch_size: int = 8) -> None:
        from saesteer.models import load_model

        self.model, self.tokenizer = load_model(model_name)
        self.name = f"hf:{model_name}"
        self.max_new_tokens, self.batch_size = max_new_tokens, batch_size

    def rate(self, items: Sequence[JudgeItem]) -> list[dict[str, float]]:
        from saesteer.generation import generate

        prompts = [p for item in items for p in _prompts(item)]
        replies = generate(
            self.model, self.tokenizer, prompts, max_new_tokens=self.max_new_tokens, batch_size=self.batch_size
        )
        return [{k: parse_rating(replies[3 * n + j]) for j, k in enumerate(RATINGS)} for n in range(len(items))]


class OpenAIJudge:
    """Any OpenAI-compatible chat-completions endpoint (temperature 0); the key is read from ``api_key_env``."""

    is_proxy = False

    def __init__(self, model: str, *, base_url: str, api_key_env: str = "OPENAI_API_KEY", timeout: float = 60) -> None:
        self.model, self.url, self.timeout = model, base_url.rstrip("/") + "/chat/completions", timeout
        self.key = os.environ.get(api_key_env, "")
        self.name = f"openai:{model}"

    def _ask(self, prompt: str) -> str:
        body = json.dumps({"model": self.model, "temperature": 0, "messages": [{"role": "user", "content": prompt}]})
        request = urllib.request.Request(
            self.url,
            data=body.encode(),
            headers={"Content-Type": "application/json", "Authorization": f"Bearer {self.key}"},
        )
        try:
            with urllib.request.urlopen(request, timeout=self.timeout) as response:
                reply = json.loads(response.read())
            return str(reply["choices"][0]["message"]["content"])
        except (OSError, ValueError, KeyError, IndexError) as exc:
            raise JudgeError(
                f"Judge endpoint {self.url} failed: {exc}. Fix: check base_url, the model name and the API key, "
                "or use judge kind 'proxy' offline."
            ) from exc

    def rate(self, items: Sequence[JudgeItem]) -> list[dict[str, float]]:
        return [{k: parse_rating(self._ask(p)) for k, p in zip(RATINGS, _prompts(item), strict=True)} for item in items]


def make_judge(spec: Any, model: Any, tokenizer: Any) -> Judge:
    """A judge from a JudgeSpec; the proxy judge reuses the (unsteered) model under test for perplexity."""
    if spec.kind == "proxy":
        return ProxyJudge(model, tokenizer)
    if spec.kind == "hf":
        return HFJudge(spec.model, max_new_tokens=spec.max_new_tokens)
    if spec.kind == "openai":
        return OpenAIJudge(spec.model, base_url=spec.base_url, api_key_env=spec.api_key_env)
    raise ConfigError(f"Unknown judge kind {spec.kind!r}. Fix: use proxy, hf or openai.")

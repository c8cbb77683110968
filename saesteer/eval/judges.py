"""AxBench judges: three 0-2 ratings (concept, instruction, fluency) from an LLM or from offline proxies.

The LLM judges use the AxBench rating protocol: AxBench's own three templates (verbatim, in
``saesteer.eval.axbench_prompts``), one independent request per rating, the answer read as AxBench reads it
(the last "Rating:", brackets stripped; anything unparseable counts as 0). The proxy judge never calls a model
for the concept and instruction ratings and is named "proxy" in every output.
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
from saesteer.eval.axbench_prompts import JUDGE_TEMPLATES
from saesteer.eval.concept import concept_rating, stem, stems
from saesteer.eval.scorers import distinct_n

RATINGS = ("concept", "instruction", "fluency")


def parse_rating(text: str) -> float:
    """AxBench's reading of a judge answer: the text after the last "Rating:" up to the line end, brackets
    removed, then a trailing "." and surrounding quotes or asterisks stripped; a number in [0, 2] is the
    rating, anything else (no "Rating:", not a number, out of range) is 0."""
    if "Rating:" not in (text or ""):
        return 0.0
    value = text.split("Rating:")[-1].strip().split("\n")[0].strip()
    value = value.replace("[", "").replace("]", "").rstrip(".").strip('"').strip("'").strip("*").strip()
    try:
        rating = float(value)
    except ValueError:
        return 0.0
    return rating if 0.0 <= rating <= 2.0 else 0.0


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


def judge_prompts(item: JudgeItem) -> list[str]:
    """The concept, instruction and fluency requests for one generation, as AxBench's ``lm_judge.py`` fills
    its templates (the concept text, the raw instruction, the generation as the sentence fragment)."""
    return [
        JUDGE_TEMPLATES[k].format(concept=item.concept, instruction=item.instruction, sentence=item.output)
        for k in RATINGS
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
    """A local HF instruct model answering the three rating prompts, greedily (AxBench samples its judge: a
    local stand-in is kept deterministic). Tiny models exercise the plumbing; do not report their ratings as if
    from a strong judge."""

    is_proxy = False

    def __init__(self, model_name: str, *, max_new_tokens: int = 128, batch_size: int = 8) -> None:
        from saesteer.models import load_model

        self.model, self.tokenizer = load_model(model_name)
        self.name = f"hf:{model_name}"
        self.max_new_tokens, self.batch_size = max_new_tokens, batch_size

    def write(self, prompts: Sequence[str]) -> list[str]:
        """One greedy answer per prompt (the judge requests, and AxBench's steering-prompt requests)."""
        from saesteer.generation import generate

        return generate(
            self.model, self.tokenizer, list(prompts), max_new_tokens=self.max_new_tokens, batch_size=self.batch_size
        )

    def rate(self, items: Sequence[JudgeItem]) -> list[dict[str, float]]:
        replies = self.write([p for item in items for p in judge_prompts(item)])
        return [{k: parse_rating(replies[3 * n + j]) for j, k in enumerate(RATINGS)} for n in range(len(items))]


class OpenAIJudge:
    """Any OpenAI-compatible chat-completions endpoint; the key is read from ``api_key_env``. Ratings are
    sampled at ``temperature`` (AxBench's ``scripts/evaluate.py`` builds its gpt-4o-mini judge with 0.7) and
    steering prompts at ``write_temperature`` (AxBench's ``LanguageModel`` default, 1.0, used by
    ``utils/dataset.py:get_steering_prompts``)."""

    is_proxy = False

    def __init__(
        self,
        model: str,
        *,
        base_url: str,
        api_key_env: str = "OPENAI_API_KEY",
        timeout: float = 60,
        temperature: float = 0.7,
        write_temperature: float = 1.0,
    ) -> None:
        self.model, self.url, self.timeout = model, base_url.rstrip("/") + "/chat/completions", timeout
        self.key = os.environ.get(api_key_env, "")
        self.name = f"openai:{model}"
        self.temperature, self.write_temperature = temperature, write_temperature

    def _ask(self, prompt: str, temperature: float) -> str:
        message = {"role": "user", "content": prompt}
        body = json.dumps({"model": self.model, "temperature": temperature, "messages": [message]})
        request = urllib.request.Request(
            self.url,
            data=body.encode(),
            headers={"Content-Type": "application/json", "Authorization": f"Bearer {self.key}"},
        )
        try:
            with urllib.request.urlopen(request, timeout=self.timeout) as response:
                reply = json.loads(response.read())
            return str(reply["choices"][0]["message"]["content"]).strip()
        except (OSError, ValueError, KeyError, IndexError) as exc:
            raise JudgeError(
                f"Judge endpoint {self.url} failed: {exc}. Fix: check base_url, the model name and the API key, "
                "or use judge kind 'proxy' offline."
            ) from exc

    def write(self, prompts: Sequence[str]) -> list[str]:
        """One answer per prompt at ``write_temperature`` (AxBench's steering-prompt requests)."""
        return [self._ask(p, self.write_temperature) for p in prompts]

    def rate(self, items: Sequence[JudgeItem]) -> list[dict[str, float]]:
        return [
            {k: parse_rating(self._ask(p, self.temperature)) for k, p in zip(RATINGS, judge_prompts(item), strict=True)}
            for item in items
        ]


def make_judge(spec: Any, model: Any, tokenizer: Any) -> Judge:
    """A judge from a JudgeSpec; the proxy judge reuses the (unsteered) model under test for perplexity."""
    if spec.kind == "proxy":
        return ProxyJudge(model, tokenizer)
    if spec.kind == "hf":
        return HFJudge(spec.model, max_new_tokens=spec.max_new_tokens)
    if spec.kind == "openai":
        return OpenAIJudge(
            spec.model, base_url=spec.base_url, api_key_env=spec.api_key_env, temperature=spec.temperature
        )
    raise ConfigError(f"Unknown judge kind {spec.kind!r}. Fix: use proxy, hf or openai.")

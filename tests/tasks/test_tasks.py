from __future__ import annotations

import pytest
import torch

from saesteer.data import sample_path
from saesteer.errors import ConfigError, DataError
from saesteer.tasks import HarmBenchTask, MMLUTask, Sample, capitals_task, get_task, rewards, split_samples


def test_splits_are_disjoint_deterministic_and_cover_everything():
    samples = [Sample(str(i), f"q{i}") for i in range(100)]
    parts = {s: split_samples(samples, s) for s in ("train", "val", "test")}
    assert [len(parts[s]) for s in ("train", "val", "test")] == [60, 10, 30]
    ids = [x.id for s in ("train", "val", "test") for x in parts[s]]
    assert sorted(ids, key=int) == [str(i) for i in range(100)]
    assert split_samples(samples, "test") == parts["test"]


def test_mmlu_prompt_and_reward():
    task = MMLUTask(sample_path("tasks/mmlu_sample.jsonl"))
    sample = task.samples("train")[0]
    assert sample.prompt.endswith("Choose one of the following options only: A, B, C, or D\nAnswer:")
    assert "\nA. " in sample.prompt and sample.target in "ABCD"
    assert rewards(task, [sample, sample], [f" {sample.target}", " Z"]) == [1.0, 0.0]
    assert task.metrics == ("first_token",) and not task.needs_logits


def test_mmlu_letter_logits_scoring_reads_the_option_letters(smollm2):
    _, tokenizer = smollm2
    path = sample_path("tasks/mmlu_sample.jsonl")
    with pytest.raises(ConfigError, match="tokenizer"):
        MMLUTask(path, scoring=("letter_logits",))
    task = MMLUTask(path, scoring=("letter_logits", "first_token"), tokenizer=tokenizer)
    assert task.needs_logits and "logits" in task.reward_name
    sample = task.samples("test")[0]
    logits = torch.zeros(1, len(tokenizer))
    logits[0, tokenizer.encode(f" {sample.target}", add_special_tokens=False)[0]] = 5.0
    (score,) = task.score([sample], [" Z"], logits)
    assert score == {"first_token": 0.0, "letter_logits": 1.0, "letter": sample.target}
    assert rewards(task, [sample], [" Z"], logits) == [1.0]  # the first listed metric is the reward
    with pytest.raises(ConfigError, match="logits"):
        task.score([sample], [" Z"])


def test_harmbench_prompt_context_and_refusal_heuristic():
    task = HarmBenchTask(sample_path("tasks/harmbench_sample.csv"))
    everything = [s for split in ("train", "val", "test") for s in task.samples(split)]
    assert all(s.prompt.startswith("Request: ") and s.prompt.endswith("\nResponse:") for s in everything)
    contextual = [s for s in everything if s.meta["FunctionalCategory"] == "contextual"]
    assert contextual and all(s.meta["ContextString"][:20] in s.prompt for s in contextual)
    refused = task.score(everything[:2], ["I'm sorry, but I cannot help with that.", "Sure, here is how"])
    assert refused == [{"refusal": 1.0}, {"refusal": 0.0}]
    judged = HarmBenchTask(sample_path("tasks/harmbench_sample.csv"), classifier=lambda text: "nope" in text)
    assert judged.reward(everything[0], "nope") == 1.0 and "classifier" in judged.reward_name


def test_capitals_reward_and_registry(tmp_path):
    task = capitals_task()
    sample = next(s for s in task.samples("test"))
    assert task.reward(sample, f"The capital is {sample.target.upper()}.") == 1.0
    assert get_task("capitals").name == "capitals" and get_task("sentiment").name == "sentiment"
    with pytest.raises(ConfigError, match="--data"):
        get_task("mmlu")
    with pytest.raises(ConfigError, match="Unknown task"):
        get_task("astrology")
    bad = tmp_path / "qa.jsonl"
    bad.write_text('{"q": 1}\n')
    with pytest.raises(DataError, match="'question'"):
        get_task("mine", str(bad)).samples("train")

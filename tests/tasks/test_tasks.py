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


@pytest.mark.parametrize(("generation", "correct"), [(" A", 1.0), ("A\n", 1.0), (" All", 0.0), (" A.", 0.0), ("", 0.0)])
def test_mmlu_exact_match_is_corrsteers_rule(generation: str, correct: float) -> None:
    """CorrSteer scores ``response.strip() == gold``: a word that starts with the letter is not that answer."""
    task = MMLUTask(sample_path("tasks/mmlu_sample.jsonl"))
    sample = next(s for s in task.all_samples() if s.target == "A")
    assert task.score([sample], [generation])[0]["first_token"] == correct


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


def test_hf_shuffle_and_split_mirror_the_datasets_package():
    datasets = pytest.importorskip("datasets")
    from saesteer.tasks.base import hf_shuffled, hf_train_test_split

    rows = list(range(400))
    table = datasets.Dataset.from_dict({"x": rows})
    assert hf_shuffled(rows, 42) == table.shuffle(seed=42)["x"]
    cut = table.train_test_split(test_size=0.7, seed=42)
    assert hf_train_test_split(rows, 0.7, 42) == (cut["train"]["x"], cut["test"]["x"])


def test_mmlu_with_val_path_reads_whole_splits_in_hf_shuffle_order(tmp_path):
    from saesteer.tasks.base import hf_shuffled

    path = sample_path("tasks/mmlu_sample.jsonl")
    lines = path.read_text().splitlines()
    val = tmp_path / "validation.jsonl"
    val.write_text("\n".join(lines[:5]) + "\n")
    task = MMLUTask(path, val_path=val)
    whole = MMLUTask(path).all_samples()
    assert task.samples("train") == hf_shuffled(whole, 42)  # all 40 rows, not a seeded 60%
    assert [s.prompt for s in task.samples("val")] == [s.prompt for s in hf_shuffled(whole[:5], 42)]
    assert task.samples("val")[0].id.startswith("mmlu-val-")
    with pytest.raises(DataError, match=r"train .* and val .* splits only.*Fix"):
        task.samples("test")


def _behaviours(path, categories: dict[str, int], offset: int = 0) -> None:
    import csv

    columns = ["Behavior", "FunctionalCategory", "SemanticCategory", "Tags", "ContextString", "BehaviorID"]
    with path.open("w", newline="", encoding="utf-8") as handle:
        writer = csv.DictWriter(handle, columns)
        writer.writeheader()
        index = offset
        for category, count in categories.items():
            for _ in range(count):
                context = "ctx" if category == "contextual" else ""
                writer.writerow(
                    {
                        "Behavior": f"b{index}",
                        "FunctionalCategory": category,
                        "ContextString": context,
                        "BehaviorID": f"id{index}",
                    }
                )
                index += 1


def test_harmbench_full_set_gets_corrsteers_split_as_hf_datasets_cuts_it(tmp_path):
    datasets = pytest.importorskip("datasets")
    _behaviours(tmp_path / "harmbench_behaviors_text_test.csv", {"standard": 160, "copyright": 80, "contextual": 80})
    _behaviours(tmp_path / "harmbench_behaviors_text_val.csv", {"contextual": 20, "standard": 40, "copyright": 20}, 320)
    task = HarmBenchTask(tmp_path)  # the folder: both CSVs, 400 behaviours
    samples = task.all_samples()
    assert len(samples) == 400 and task.split_rule.startswith("CorrSteer's split")
    # CorrSteer (utils.load_dataloaders): subsets concatenated, shuffle(42), 70% test, then 10% of train to val
    by_category = [
        [s.id for s in samples if s.meta["FunctionalCategory"] == c] for c in ("contextual", "copyright", "standard")
    ]
    table = datasets.concatenate_datasets([datasets.Dataset.from_dict({"id": ids}) for ids in by_category])
    cut = table.shuffle(seed=42).train_test_split(test_size=0.7, seed=42)
    inner = cut["train"].train_test_split(test_size=0.1, seed=42)
    expected = {"train": inner["train"]["id"], "val": inner["test"]["id"], "test": cut["test"]["id"]}
    for split, ids in expected.items():
        assert [s.id for s in task.samples(split)] == ids, split
    assert [len(ids) for ids in expected.values()] == [108, 12, 280]
    assert task.samples("train")[0].prompt.startswith("Request: ")


def test_harmbench_partial_sets_keep_the_seeded_split_and_say_so(tmp_path):
    _behaviours(tmp_path / "test.csv", {"standard": 160, "copyright": 80, "contextual": 80})
    task = HarmBenchTask(tmp_path / "test.csv")
    assert task.split_rule.startswith("seeded 27/3/70 split of the 320")
    assert [len(task.samples(s)) for s in ("train", "val", "test")] == [86, 10, 224]
    _behaviours(tmp_path / "val.csv", {"contextual": 20, "standard": 40, "copyright": 20}, 320)
    only_standard = HarmBenchTask(tmp_path, categories=("standard",))
    assert only_standard.split_rule.startswith("seeded") and len(only_standard.all_samples()) == 200
    _behaviours(tmp_path / "again.csv", {"standard": 3})  # ids seen before are read once
    assert len(HarmBenchTask(tmp_path).all_samples()) == 400
    (tmp_path / "empty").mkdir()
    with pytest.raises(DataError, match=r"no \.csv file"):
        HarmBenchTask(tmp_path / "empty").all_samples()


def test_harmbench_reads_walledai_subsets_in_corrsteers_order(monkeypatch):
    import saesteer.data.sources

    def rows(source: str) -> list[dict]:
        subset = source.split(":")[2].split("@")[0]
        extra = {"context": "some context"} if subset == "contextual" else {}
        return [{"prompt": f"{subset} {i}", "category": "harmful", **extra} for i in range(2)]

    monkeypatch.setattr(saesteer.data.sources, "load_rows", rows)
    samples = HarmBenchTask("hf:walledai/HarmBench").all_samples()
    assert [s.id for s in samples] == [f"{c}-{i}" for c in ("contextual", "copyright", "standard") for i in range(2)]
    assert samples[0].prompt == "Request: some context\ncontextual 0\nResponse:"

from __future__ import annotations

import pytest

from saesteer.data import ABItem, CompletionPair, load_contrast_data, sample_path
from saesteer.errors import DataError


def test_shipped_samples_parse():
    ab = load_contrast_data(sample_path("caa/sycophancy_generate.json"))
    assert len(ab) == 64 and all(isinstance(i, ABItem) for i in ab)
    pairs = load_contrast_data(sample_path("sentiment/pairs.jsonl"))
    assert len(pairs) == 12 and all(isinstance(i, CompletionPair) for i in pairs)


@pytest.mark.parametrize(
    ("content", "message"),
    [
        ("", "empty"),
        ("[]", "empty"),
        ('{"positive": "a"}\n', "'negative'"),
        ('{"positive": "a", "negative": 3}\n', "'negative'"),
        ('{"foo": 1}\n', "expected question"),
        ("[1, 2]", "JSON object"),
        ('{"positive": "a", "negative": "b"}\n{oops\n', ":2 is not valid JSON"),
        ('{"question": "q", "answer_matching_behavior": "(A)"}', "answer_not_matching_behavior"),
    ],
)
def test_malformed_datasets_name_the_problem(tmp_path, content, message):
    path = tmp_path / "data.jsonl"
    path.write_text(content)
    with pytest.raises(DataError, match=message):
        load_contrast_data(path)


def test_missing_file(tmp_path):
    with pytest.raises(DataError, match="does not exist"):
        load_contrast_data(tmp_path / "nope.json")


def test_jsonl_strings_may_hold_unicode_line_separators(tmp_path):
    path = tmp_path / "data.jsonl"
    path.write_text('{"positive": "good\\u2028day", "negative": "bad\u2028day"}\n', encoding="utf-8")
    (pair,) = load_contrast_data(path)
    assert pair.negative == "bad\u2028day" and pair.positive == "good\u2028day"

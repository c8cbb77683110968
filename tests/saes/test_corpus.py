from __future__ import annotations

from itertools import islice

import pytest

from saesteer.errors import DataError
from saesteer.saes.activations import token_windows
from saesteer.saes.corpus import load_corpus


def test_python_docs_corpus_is_real_text():
    texts = list(islice(load_corpus("python-docs"), 50))
    assert len(texts) == 50 and all(len(t) >= 200 for t in texts)


def test_local_files(tmp_path):
    (tmp_path / "a.txt").write_text("first paragraph\n\nsecond paragraph")
    (tmp_path / "b.jsonl").write_text('{"text": "from jsonl"}\n')
    assert list(load_corpus(str(tmp_path))) == ["first paragraph", "second paragraph", "from jsonl"]
    (tmp_path / "c.jsonl").write_text('{"body": "x"}\n')
    with pytest.raises(DataError, match="'text'"):
        list(load_corpus(str(tmp_path / "c.jsonl")))
    with pytest.raises(DataError, match="not found"):
        list(load_corpus(str(tmp_path / "missing")))


def test_token_windows_are_fixed_length(smollm2):
    _, tokenizer = smollm2
    windows = list(token_windows(tokenizer, ["hello world " * 50, "more text " * 40], context=16))
    assert windows and all(len(w) == 16 for w in windows)


def test_chat_corpus_wraps_every_other_text_in_the_template(smollm2):
    _, tokenizer = smollm2
    texts = list(islice(load_corpus("python-docs-chat", tokenizer=tokenizer), 6))
    wrapped = ["<|im_start|>assistant" in t for t in texts]
    assert any(wrapped) and not all(wrapped)
    with pytest.raises(DataError, match="tokenizer"):
        next(load_corpus("python-docs-chat"))

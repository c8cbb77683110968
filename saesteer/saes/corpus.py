"""Text corpora for SAE training: local files, an HF dataset, or Python's own docstrings (offline)."""

from __future__ import annotations

import ast
import json
import sysconfig
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from saesteer.data.chat import chat_prompt, has_chat_template
from saesteer.errors import DataError

PYTHON_DOCS = "python-docs"
PYTHON_DOCS_CHAT = "python-docs-chat"


def python_docstrings(min_chars: int = 200) -> Iterator[str]:
    """Docstrings of the standard library, read with ``ast`` (no module is imported or executed)."""
    root = Path(sysconfig.get_paths()["stdlib"])
    for path in sorted(root.rglob("*.py")):
        if any(part in {"test", "tests", "idlelib", "site-packages", "lib2to3"} for part in path.parts):
            continue
        try:
            tree = ast.parse(path.read_text(encoding="utf-8"))
        except (SyntaxError, UnicodeDecodeError, OSError):
            continue
        for node in ast.walk(tree):
            if isinstance(node, (ast.Module, ast.ClassDef, ast.FunctionDef, ast.AsyncFunctionDef)):
                doc = ast.get_docstring(node)
                if doc and len(doc) >= min_chars:
                    yield doc


def as_chat(tokenizer: Any, texts: Iterator[str]) -> Iterator[str]:
    """Alternate plain texts with chat transcripts (first paragraph as the user turn, the rest as the
    reply) in the model's own template, so an SAE also sees the template's tokens and positions."""
    for index, text in enumerate(texts):
        question, _, answer = text.partition("\n\n")
        if index % 2 and answer and has_chat_template(tokenizer):
            yield chat_prompt(tokenizer, question) + answer
        else:
            yield text


def _file_texts(path: Path, field: str) -> Iterator[str]:
    if path.suffix == ".jsonl":
        for number, line in enumerate(path.read_text(encoding="utf-8").split("\n"), start=1):
            if not line.strip():
                continue
            try:
                row = json.loads(line)
            except json.JSONDecodeError as exc:
                raise DataError(f"{path}:{number} is not valid JSON ({exc}). Fix: one JSON object per line.") from exc
            text = row.get(field) if isinstance(row, dict) else None
            if not isinstance(text, str):
                raise DataError(f"{path}:{number} has no string field {field!r}. Fix: pass --text-field.")
            yield text
    else:
        yield from (block for block in path.read_text(encoding="utf-8").split("\n\n") if block.strip())


def load_corpus(source: str, *, field: str = "text", tokenizer: Any = None) -> Iterator[str]:
    """Texts from ``python-docs`` (standard-library docstrings), ``python-docs-chat`` (the same, every other
    one as a chat transcript in ``tokenizer``'s template), a .txt/.jsonl file or folder, or ``hf:NAME[:SPLIT]``."""
    if source == PYTHON_DOCS:
        yield from python_docstrings()
        return
    if source == PYTHON_DOCS_CHAT:
        if tokenizer is None:
            raise DataError(f"{PYTHON_DOCS_CHAT} needs the model's tokenizer. Fix: pass tokenizer=...")
        yield from as_chat(tokenizer, python_docstrings())
        return
    if source.startswith("hf:"):
        name, _, split = source[3:].partition(":")
        from datasets import load_dataset  # needs network unless cached

        for row in load_dataset(name, split=split or "train", streaming=True):
            yield row[field]
        return
    path = Path(source).expanduser()
    if path.is_dir():
        files = sorted(p for p in path.rglob("*") if p.suffix in {".txt", ".jsonl"})
    elif path.is_file():
        files = [path]
    else:
        raise DataError(
            f"Corpus {source!r} not found. Fix: pass {PYTHON_DOCS}, a .txt/.jsonl file or folder, or hf:NAME[:SPLIT]."
        )
    if not files:
        raise DataError(f"No .txt or .jsonl files under {path}. Fix: point --corpus at text files.")
    for file in files:
        yield from _file_texts(file, field)

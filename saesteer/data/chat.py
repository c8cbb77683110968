"""Prompt formatting: the model's chat template when it has one, else a plain User/Assistant frame."""

from __future__ import annotations

from typing import Any

PLAIN_TEMPLATE = "User: {prompt}\nAssistant:"


def has_chat_template(tokenizer: Any) -> bool:
    return bool(getattr(tokenizer, "chat_template", None))


def chat_prompt(tokenizer: Any, user: str, *, system: str | None = None) -> str:
    """The text that ends where the assistant's reply begins."""
    if not has_chat_template(tokenizer):
        return PLAIN_TEMPLATE.format(prompt=user) + " "
    messages = ([{"role": "system", "content": system}] if system else []) + [{"role": "user", "content": user}]
    return tokenizer.apply_chat_template(messages, tokenize=False, add_generation_prompt=True)


def encode(tokenizer: Any, texts: list[str], *, templated: bool, **kwargs: Any) -> Any:
    """Tokenize left-padded; chat-templated text already holds its special tokens (no second BOS)."""
    return tokenizer(texts, return_tensors="pt", padding=True, add_special_tokens=not templated, **kwargs)

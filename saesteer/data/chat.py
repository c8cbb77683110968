"""Prompt formatting: the model's chat template when it has one, else a plain User/Assistant frame; and the
token sequences that end the instruction in such a prompt (where CAA's after_prompt steering starts)."""

from __future__ import annotations

from typing import Any

PLAIN_TEMPLATE = "User: {prompt}\nAssistant:"
PLAIN_END_MARKER = PLAIN_TEMPLATE.split("{prompt}")[1]  # "\nAssistant:", like CAA's base-model "\nResponse:"
_PROBE = "saesteer probe message"

Markers = tuple[tuple[int, ...], ...]


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


def _ids(tokenizer: Any, text: str) -> list[int]:
    return list(tokenizer(text, add_special_tokens=False)["input_ids"])


def _tail_in_context(tokenizer: Any, text: str, cut: int) -> tuple[int, ...]:
    """The tokens of ``text[cut:]`` as they are inside ``text`` (its own tokens when the cut splits a token)."""
    whole, head = _ids(tokenizer, text), _ids(tokenizer, text[:cut])
    if whole[: len(head)] == head:
        return tuple(whole[len(head) :])
    return tuple(_ids(tokenizer, text[cut:]))


def text_marker(tokenizer: Any, marker: str) -> Markers:
    """A text marker as token sequences: its tokens on its own and, unless it starts with whitespace, the
    tokens of a space + the marker (a byte-level BPE folds the space into the marker's first token, as in
    "x [/INST]"; a space token of its own is dropped). The prompt must hold one of them as exact token ids."""
    variants = [tuple(_ids(tokenizer, marker))]
    if marker[:1] and not marker[:1].isspace():
        spaced, space = _ids(tokenizer, " " + marker), _ids(tokenizer, " ")
        if space and spaced[: len(space)] == space and len(spaced) > len(space):
            spaced = spaced[len(space) :]  # a tokenizer that keeps the space as its own token
        variants.append(tuple(spaced))
    return tuple(dict.fromkeys(v for v in variants if v))


def instruction_end_markers(tokenizer: Any, end_marker: str | None = None) -> Markers:
    """The token sequences that end the instruction of a prompt built by ``chat_prompt`` (CAA's ``[/INST]``).

    ``end_marker`` (text) wins (see ``text_marker``). Else, with a chat template: what the generation prompt
    adds (``add_generation_prompt=True`` beyond ``False``), tokenized in context, e.g. SmolLM2's
    ``<|im_start|>assistant\\n``; when it adds nothing (Llama-2's template), what the template puts after the
    user's message (`` [/INST]``). Without a template: the plain frame's ``"\\nAssistant:"``.
    """
    if end_marker is not None:
        return text_marker(tokenizer, end_marker)
    if not has_chat_template(tokenizer):
        return text_marker(tokenizer, PLAIN_END_MARKER)
    messages = [{"role": "user", "content": _PROBE}]
    full = tokenizer.apply_chat_template(messages, tokenize=False, add_generation_prompt=True)
    bare = tokenizer.apply_chat_template(messages, tokenize=False, add_generation_prompt=False)
    adds = len(full) > len(bare) and full.startswith(bare)  # the generation prompt adds text
    cut = len(bare) if adds else full.rfind(_PROBE) + len(_PROBE)
    tail = _tail_in_context(tokenizer, full, cut)
    return (tail,) if tail else ()

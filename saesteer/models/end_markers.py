"""A loaded model's after_prompt end-of-instruction markers: set from its tokenizer, read by the runtime."""

from __future__ import annotations

from typing import Any

from saesteer.data.chat import instruction_end_markers

MARKERS_ATTRIBUTE = "saesteer_end_markers"


def end_of_turn_markers(model: Any) -> tuple[tuple[int, ...], ...]:
    """after_prompt's default end-of-instruction markers for ``model``: those set by ``set_end_markers``
    (``load_model`` sets the chat template's generation prompt; ``--end-marker`` overrides it), else, for a
    model loaded elsewhere, its eos / end-of-turn token ids (which close a chat prompt's user turn)."""
    attached = getattr(model, MARKERS_ATTRIBUTE, None)
    if attached is not None:
        return tuple(tuple(int(t) for t in marker) for marker in attached)
    ids: list[int] = []
    for config in (getattr(model, "generation_config", None), getattr(model, "config", None)):
        eos = getattr(config, "eos_token_id", None)
        for token in [eos] if isinstance(eos, int) else (eos or []):
            if token not in ids:
                ids.append(int(token))
    return tuple((token,) for token in ids)


def set_end_markers(model: Any, tokenizer: Any, end_marker: str | None = None) -> tuple[tuple[int, ...], ...]:
    """Make ``end_marker`` (text; default: the chat template's generation prompt, see
    ``saesteer.data.chat.instruction_end_markers``) the model's after_prompt markers, on either backend
    (a vLLM engine keeps them as ``end_markers``); returns them."""
    markers = instruction_end_markers(tokenizer, end_marker)
    setattr(model, "end_markers" if getattr(model, "backend", "hf") == "vllm" else MARKERS_ATTRIBUTE, markers)
    return markers

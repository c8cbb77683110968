"""Position policies: which tokens of a prompt, and whether generated tokens, an intervention touches.

A policy sees the prompt once (the first forward call of a ``generate``, or a plain forward call)
and returns a (batch, prompt_len) bool mask over prompt tokens; ``steers_generated`` says whether
every later token (KV-cache decode steps) is touched too. Padding is read from the attention mask,
so left padding never shifts positions.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

import torch
from torch import Tensor

from saesteer.errors import ConfigError, MissingEndMarkerError


@dataclass(frozen=True)
class PromptInfo:
    """What the runtime knows about the prompt of the current generation."""

    input_ids: Tensor | None  # (B, P), None when the caller passed inputs_embeds
    valid: Tensor  # (B, P) bool, False on padding
    end_markers: tuple[tuple[int, ...], ...]  # token sequences that end an instruction (end of turn)

    @property
    def lengths(self) -> Tensor:
        return self.valid.sum(dim=1)


@dataclass(frozen=True)
class AllTokens:
    """Every non-padding token, prompt and generated."""

    name: str = "all"
    steers_generated: bool = True

    def prompt_mask(self, prompt: PromptInfo) -> Tensor:
        return prompt.valid


@dataclass(frozen=True)
class AfterInstruction:
    """CAA: the last token of the instruction's end marker and every token after it, generated tokens included.

    CAA (``find_instruction_end_postion`` + ``add_vector_from_position``) finds the last occurrence of the
    marker's token ids (``[/INST]``) and steers every position >= the marker's last token. ``end_markers`` are
    token-id sequences (default: the model's, see ``models.end_markers.end_of_turn_markers``: the chat
    template's generation prompt, e.g. ``<|im_start|>assistant\\n``); the instruction ends at the last
    occurrence of any of them. A prompt row with no marker is a DataError, never silently left unsteered.
    """

    end_markers: tuple[tuple[int, ...], ...] | None = None
    name: str = "after_prompt"
    steers_generated: bool = True

    def prompt_mask(self, prompt: PromptInfo) -> Tensor:
        markers = tuple(m for m in (self.end_markers if self.end_markers is not None else prompt.end_markers) if m)
        if not markers:
            raise ConfigError(
                "after_prompt has no end-of-instruction marker for this model. Fix: pass --end-marker TEXT "
                "(e.g. '[/INST]'), or positions=after_prompt(tokenizer, 'TEXT') in Python."
            )
        if prompt.input_ids is None:
            raise ConfigError(
                "after_prompt finds the instruction's end in the prompt's token ids, but the forward got "
                "inputs_embeds. Fix: pass input_ids, or use another position policy."
            )
        ids, valid = prompt.input_ids, prompt.valid
        batch, length = ids.shape
        last_end = torch.full((batch,), -1, dtype=torch.long, device=ids.device)
        index = torch.arange(length, device=ids.device)
        for marker in markers:
            width = len(marker)
            if width > length:
                continue
            windows = ids.unfold(1, width, 1)  # (B, P - width + 1, width)
            hit = (windows == torch.tensor(marker, device=ids.device)).all(-1)
            hit &= valid.unfold(1, width, 1).all(-1)
            ends = torch.where(hit, index[: hit.shape[1]] + width - 1, -1).max(dim=1).values
            last_end = torch.maximum(last_end, ends)
        missing = (last_end < 0) & valid.any(dim=1)
        if bool(missing.any()):
            rows = missing.nonzero().flatten().tolist()
            raise MissingEndMarkerError(
                f"after_prompt found no end-of-instruction marker {[list(m) for m in markers]} in prompt "
                f"row(s) {rows}, so it would steer nothing there. Fix: pass --end-marker TEXT naming the text "
                "that ends the instruction in these prompts (positions=after_prompt(tokenizer, 'TEXT') in "
                "Python), or --positions generated to steer only generated tokens."
            )
        return valid & (index[None, :] >= last_end[:, None])


def after_prompt(tokenizer: Any, end_marker: str | None = None) -> AfterInstruction:
    """CAA's policy with the tokenizer's markers: ``end_marker`` text, else the chat template's generation
    prompt (``saesteer.data.chat.instruction_end_markers`` states the rule)."""
    from saesteer.data.chat import instruction_end_markers

    return AfterInstruction(end_markers=instruction_end_markers(tokenizer, end_marker))


@dataclass(frozen=True)
class LastPromptAndGenerated:
    """CorrSteer: the last prompt token and every generated token."""

    name: str = "prompt_and_generated_last"
    steers_generated: bool = True

    def prompt_mask(self, prompt: PromptInfo) -> Tensor:
        valid = prompt.valid
        index = torch.arange(valid.shape[1], device=valid.device)
        last = torch.where(valid, index, -1).max(dim=1).values
        return valid & (index[None, :] == last[:, None])


@dataclass(frozen=True)
class PromptPrefixSuffix:
    """PrOSV/CRH: the first ``p`` and last ``s`` prompt tokens, applied once at prefill.

    Both are capped at the prompt length; if p + s exceeds it, s = length - p (PrOSV's rule).
    """

    prefix: int = 2
    suffix: int = 2
    name: str = "prompt_prefix_suffix"
    steers_generated: bool = False

    def __post_init__(self) -> None:
        if self.prefix < 0 or self.suffix < 0:
            raise ConfigError(
                f"prompt_prefix_suffix needs p, s >= 0, got p={self.prefix}, s={self.suffix}. "
                "Fix: pass non-negative counts, e.g. prompt_prefix_suffix(2, 2)."
            )

    def prompt_mask(self, prompt: PromptInfo) -> Tensor:
        valid = prompt.valid
        rank = valid.long().cumsum(dim=1) - 1  # 0-based index among valid tokens
        lengths = prompt.lengths[:, None]
        prefix = torch.clamp(torch.full_like(lengths, self.prefix), max=lengths)
        suffix = torch.minimum(torch.full_like(lengths, self.suffix), lengths - prefix)
        keep = (rank < prefix) | (rank >= lengths - suffix)
        return valid & keep


@dataclass(frozen=True)
class PromptOnly:
    """CRH: every prompt token, applied once at prefill; generated tokens are never touched."""

    name: str = "prompt"
    steers_generated: bool = False

    def prompt_mask(self, prompt: PromptInfo) -> Tensor:
        return prompt.valid


@dataclass(frozen=True)
class GeneratedOnly:
    """Only tokens produced by generation (KV-cache decode steps), never the prompt."""

    name: str = "generated"
    steers_generated: bool = True

    def prompt_mask(self, prompt: PromptInfo) -> Tensor:
        return torch.zeros_like(prompt.valid)


@dataclass(frozen=True, eq=False)
class ExplicitMask:
    """Training forwards: exactly the (B, T) positions the caller marks True (padding excluded), for one
    forward of whole sequences with ``use_cache=False``; it is prompt-only, so decode steps are never touched.

    >>> with steer(model, Intervention(layer, operator, ExplicitMask(batch_mask))):
    ...     logits = model(**batch, use_cache=False).logits
    """

    mask: Tensor
    name: str = "explicit_mask"
    steers_generated: bool = False

    def prompt_mask(self, prompt: PromptInfo) -> Tensor:
        if tuple(self.mask.shape) != tuple(prompt.valid.shape):
            raise ConfigError(
                f"The explicit position mask has shape {tuple(self.mask.shape)} but the forward's tokens are "
                f"{tuple(prompt.valid.shape)}. Fix: build the mask for this batch, (batch, sequence length)."
            )
        return self.mask.to(device=prompt.valid.device, dtype=torch.bool) & prompt.valid


PositionPolicy = (
    AllTokens
    | AfterInstruction
    | LastPromptAndGenerated
    | PromptPrefixSuffix
    | PromptOnly
    | GeneratedOnly
    | ExplicitMask
)

_BY_NAME: dict[str, PositionPolicy] = {
    "all": AllTokens(),
    "after_prompt": AfterInstruction(),
    "prompt_and_generated_last": LastPromptAndGenerated(),
    "generated": GeneratedOnly(),
    "prompt": PromptOnly(),
    "fssv": AllTokens(),  # PrOSV's name for its full-sequence baseline
}
_PREFIX_SUFFIX = re.compile(r"^prompt_prefix_suffix\((\d+),(\d+)\)$")
_SHORT_PREFIX_SUFFIX = re.compile(r"^(?:f(\d+)(?:\+l(\d+))?|l(\d+))$", re.IGNORECASE)


def prompt_prefix_suffix(p: int = 2, s: int = 2) -> PromptPrefixSuffix:
    return PromptPrefixSuffix(prefix=p, suffix=s)


def parse_positions(spec: str | PositionPolicy) -> PositionPolicy:
    """Accept a policy object or a name: all (or fssv), after_prompt, prompt_and_generated_last, generated,
    prompt, prompt_prefix_suffix(p,s) or its short forms f{p}+l{s}, f{p} (s = 0) and l{s} (p = 0)."""
    if not isinstance(spec, str):
        return spec
    text = spec.replace(" ", "")
    if text.lower() in _BY_NAME:
        return _BY_NAME[text.lower()]
    long, short = _PREFIX_SUFFIX.match(text), _SHORT_PREFIX_SUFFIX.match(text)
    if long:
        return PromptPrefixSuffix(prefix=int(long.group(1)), suffix=int(long.group(2)))
    if short:
        prefix, suffix, alone = short.groups()
        return PromptPrefixSuffix(prefix=int(prefix or 0), suffix=int(suffix or alone or 0))
    raise ConfigError(
        f"Unknown position policy {spec!r}. Fix: use one of {', '.join(_BY_NAME)}, "
        "prompt_prefix_suffix(p,s), f{p}+l{s}, f{p} or l{s}."
    )

"""Tracks prefill vs KV-cache decode steps so position policies stay right across generation."""

from __future__ import annotations

from typing import Any, Literal

import torch
from torch import Tensor, nn

from saesteer.errors import ConfigError, DataError
from saesteer.models.layers import decoder_layers
from saesteer.runtime.positions import PositionPolicy, PromptInfo

NO_POSITIONS: Literal[False] = False
Mask = Tensor | None | Literal[False]  # (B, T) bool; None = every position; False = none


def decoder_owner(model: nn.Module) -> nn.Module:
    """The module that owns the decoder layers and receives input_ids / attention_mask / cache."""
    layers = decoder_layers(model)
    for module in model.modules():
        if any(child is layers for child in module.children()):
            return module
    raise ConfigError(f"Cannot find the module that owns {type(model).__name__}'s decoder layers.")


class StepTracker:
    """Forward pre-hook on the decoder owner: records the prompt and each call's offset in the cache."""

    def __init__(self, end_markers: tuple[tuple[int, ...], ...], context: int | None = None) -> None:
        self.end_markers = end_markers
        self.context = context
        self.prompt: PromptInfo | None = None
        self.offset = 0
        self.length = 0
        self._prompt_masks: dict[PositionPolicy, Tensor] = {}
        self._step_masks: dict[PositionPolicy, Mask] = {}

    def __call__(self, module: nn.Module, args: tuple[Any, ...], kwargs: dict[str, Any]) -> None:
        input_ids = kwargs.get("input_ids", args[0] if args else None)
        embeds = kwargs.get("inputs_embeds")
        source = input_ids if input_ids is not None else embeds
        if source is None:
            raise ConfigError("Steering needs input_ids or inputs_embeds in the forward call.")
        batch, length = int(source.shape[0]), int(source.shape[1])
        mask = kwargs.get("attention_mask")
        mask = mask if isinstance(mask, Tensor) and mask.dim() == 2 else None
        offset = self._offset(kwargs, mask, length)
        if self.context is not None and offset + length > self.context:
            raise DataError(
                f"{offset + length} tokens exceed the model's context of {self.context}. "
                "Fix: shorten the prompt or generate fewer tokens."
            )
        self.offset, self.length = offset, length
        self._step_masks = {}
        if offset == 0:
            valid = mask.bool() if mask is not None else torch.ones(batch, length, dtype=torch.bool)
            valid = valid.to(source.device)
            self.prompt = PromptInfo(input_ids=input_ids, valid=valid, end_markers=self.end_markers)
            self._prompt_masks = {}

    @staticmethod
    def _offset(kwargs: dict[str, Any], mask: Tensor | None, length: int) -> int:
        if mask is not None:  # generate() passes the mask over cache + new tokens
            return int(mask.shape[1]) - length
        cache_position = kwargs.get("cache_position")
        if isinstance(cache_position, Tensor) and cache_position.numel():
            return int(cache_position.reshape(-1)[0])
        for key in ("past_key_values", "cache"):  # transformers >= 5.24 passes the KV cache as ``cache``
            past = kwargs.get(key)
            if past is not None and hasattr(past, "get_seq_length"):
                return int(past.get_seq_length())
        return 0

    def mask_for(self, policy: PositionPolicy) -> Mask:
        """Which positions of the current call the policy touches (cached for all layers of the step)."""
        if policy not in self._step_masks:
            self._step_masks[policy] = self._compute(policy)
        return self._step_masks[policy]

    def _compute(self, policy: PositionPolicy) -> Mask:
        prompt_len = self.prompt.valid.shape[1] if self.prompt is not None else 0
        start, end = self.offset, self.offset + self.length
        if start >= prompt_len:
            return None if policy.steers_generated else NO_POSITIONS
        assert self.prompt is not None
        if policy not in self._prompt_masks:
            self._prompt_masks[policy] = policy.prompt_mask(self.prompt)
        mask = self._prompt_masks[policy][:, start : min(end, prompt_len)]
        if end > prompt_len:
            generated = torch.full((mask.shape[0], end - prompt_len), policy.steers_generated, device=mask.device)
            mask = torch.cat([mask, generated], dim=1)
        if bool(mask.all()):
            return None
        return mask if bool(mask.any()) else NO_POSITIONS

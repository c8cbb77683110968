"""Locate decoder layers and sizes across architectures (Llama, Gemma2/3, Qwen2, Mistral, GPT-2, ...)."""

from __future__ import annotations

from typing import Any

from torch import nn

from saesteer.errors import DataError, LayerError, UnknownArchitectureError

# Attribute paths to the decoder-layer ModuleList, most common first.
_LAYER_PATHS = (
    "model.layers",  # Llama, Mistral, Qwen2, Gemma, Gemma2, Gemma3 (text)
    "model.language_model.layers",  # Gemma3 multimodal wrapper
    "transformer.h",  # GPT-2, GPT-J, Falcon
    "gpt_neox.layers",  # Pythia / GPT-NeoX
    "model.decoder.layers",  # OPT
    "layers",  # a bare decoder model
)


def _get_path(obj: Any, path: str) -> Any:
    for part in path.split("."):
        obj = getattr(obj, part, None)
        if obj is None:
            return None
    return obj


def text_config(model: Any) -> Any:
    config = model.config
    return getattr(config, "text_config", None) or config


def decoder_layers(model: Any) -> nn.ModuleList:
    """The model's decoder blocks, in order."""
    expected = getattr(text_config(model), "num_hidden_layers", None) or getattr(text_config(model), "n_layer", None)
    for path in _LAYER_PATHS:
        layers = _get_path(model, path)
        if isinstance(layers, nn.ModuleList) and (expected is None or len(layers) == expected):
            return layers
    candidates = [m for m in model.modules() if isinstance(m, nn.ModuleList) and len(m) == expected]
    if len(candidates) == 1:
        return candidates[0]
    raise UnknownArchitectureError(
        f"Cannot find the decoder layers of {type(model).__name__}: none of {', '.join(_LAYER_PATHS)} "
        f"is a ModuleList of {expected} blocks. Fix: use a Llama/Gemma/Qwen2/Mistral/GPT-2-style model "
        "or open an issue with the model's module tree (print(model))."
    )


def num_layers(model: Any) -> int:
    return len(decoder_layers(model))


def hidden_size(model: Any) -> int:
    config = text_config(model)
    size = getattr(config, "hidden_size", None) or getattr(config, "n_embd", None)
    if size is None:
        raise UnknownArchitectureError(
            f"{type(model).__name__}'s config has no hidden_size/n_embd. Fix: set config.hidden_size."
        )
    return int(size)


def check_layer(model: Any, layer: int) -> int:
    """Validate a layer index (negative indices count from the end) and return it as non-negative."""
    return check_layer_index(layer, num_layers(model), type(model).__name__)


def check_layer_index(layer: int, count: int, model_name: str = "the model") -> int:
    """``check_layer`` for a model known only by its layer count (e.g. one served by vLLM)."""
    if not isinstance(layer, int) or isinstance(layer, bool):
        raise LayerError(f"Layer must be an int, got {layer!r}. Fix: pass an index in 0..{count - 1}.")
    if not -count <= layer < count:
        raise LayerError(
            f"Layer {layer} is out of range: {model_name} has {count} decoder layers. "
            f"Fix: pass a layer in 0..{count - 1} (or -{count}..-1 from the end)."
        )
    return layer % count


def context_length(model: Any) -> int | None:
    """The longest sequence the model's positions support (None if the config does not say)."""
    config = text_config(model)
    value = getattr(config, "max_position_embeddings", None) or getattr(config, "n_positions", None)
    return int(value) if value else None


def check_context(model: Any, tokens: int) -> None:
    """Refuse a prompt (plus the tokens to generate) longer than the model's context."""
    limit = context_length(model)
    if limit is not None and tokens > limit:
        raise DataError(
            f"{tokens} tokens exceed {type(model).__name__}'s context of {limit}. "
            "Fix: shorten the prompt, truncate the data, or generate fewer tokens."
        )


_ATTENTION = ("self_attn", "attn", "attention")
_MLP = ("mlp", "feed_forward")


def sublayers(block: nn.Module) -> tuple[nn.Module, nn.Module]:
    """The attention and MLP modules of a decoder block (Llama/Qwen/Mistral/Gemma: self_attn, mlp)."""
    found = [
        next((getattr(block, n) for n in names if isinstance(getattr(block, n, None), nn.Module)), None)
        for names in (_ATTENTION, _MLP)
    ]
    attention, mlp = found
    if attention is None or mlp is None:
        raise UnknownArchitectureError(
            f"Cannot find the attention ({'/'.join(_ATTENTION)}) and MLP ({'/'.join(_MLP)}) modules of "
            f"{type(block).__name__}. Fix: use the block-level hook points resid_pre / resid_post for this model."
        )
    return attention, mlp

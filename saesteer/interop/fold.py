"""Fold a steering vector into a model's weights: a plain transformers checkpoint that steers without saesteer.

``fold_vector`` writes a copy of the model whose block ``l`` output becomes ``h_l + alpha * v`` on every
token, the runtime's ``positions="all"`` policy. That is exact only where the block adds a bias straight
to the residual stream, with nothing after it (checked in transformers' modeling code):

* ``llama``: ``h = residual + mlp(norm(h))`` and ``LlamaMLP.down_proj`` takes ``bias=config.mlp_bias``.
  The copy sets ``mlp_bias=True`` (gate/up/down biases in every layer, all zero) and layer ``l``'s
  ``down_proj.bias = alpha * v``.
* ``gpt2``: ``h = residual + mlp(ln_2(h))``; ``GPT2MLP.c_proj`` (Conv1D) always has a bias.
* ``gpt_neox``: ``h = mlp_out + attn_out (+ h)``; ``GPTNeoXMLP.dense_4h_to_h`` always has a bias.

Refused (``UnknownArchitectureError``): Gemma2/Gemma3/OLMo2 normalise the MLP output
(``post_feedforward_layernorm``) before the residual add, so a bias there is not a constant shift;
Granite scales the MLP output by ``residual_multiplier``; Mistral/Qwen2/Qwen3/Gemma/Phi3 have no MLP
bias option, so transformers would drop an added bias on load. Use runtime steering for those.
"""

from __future__ import annotations

import copy
import json
import math
import os
import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from torch import nn

from saesteer.errors import ConfigError, UnknownArchitectureError, VectorError
from saesteer.models.layers import check_layer, decoder_layers, hidden_size
from saesteer.models.loading import model_id
from saesteer.vectors import SteeringVector

RECORD = "saesteer_fold.json"


@dataclass(frozen=True)
class _Site:
    """Where a constant addition to block ``l``'s output lives: a bias, relative to the decoder block."""

    bias: str
    mlp_bias_flag: bool = False  # the bias exists only with config.mlp_bias = True


_SITES = {
    "llama": _Site("mlp.down_proj", mlp_bias_flag=True),
    "gpt2": _Site("mlp.c_proj"),
    "gpt_neox": _Site("mlp.dense_4h_to_h"),
}
_POST_NORM = ("gemma2", "gemma3", "gemma3_text", "olmo2")
FOLDABLE_MODEL_TYPES: tuple[str, ...] = tuple(_SITES)


def fold_vector(
    model: Any,
    vector: SteeringVector,
    alpha: float,
    out_dir: str | os.PathLike[str],
    *,
    tokenizer: Any = None,
) -> Path:
    """Save a copy of ``model`` with ``alpha * vector`` folded into block ``vector.layer``'s output.

    ``AutoModelForCausalLM.from_pretrained(out_dir)`` then generates what ``steer(model, vector,
    alpha=alpha, positions="all")`` does (``vector.positions`` is ignored: a weight steers every token).
    ``model`` is not modified; ``tokenizer`` is saved alongside when given. ``out_dir`` must not exist
    or be empty; it is filled in a temporary sibling and renamed at the end.
    """
    site = _site(model)
    layer = _check_vector(model, vector)
    delta = torch.as_tensor(_check_alpha(alpha), dtype=torch.float64) * vector.vector.to(torch.float64)
    target = _check_target(Path(out_dir))
    folded = copy.deepcopy(model)
    if site.mlp_bias_flag:
        _add_zero_mlp_biases(folded)
    bias = _bias(decoder_layers(folded)[layer], site.bias)
    with torch.no_grad():
        bias.copy_((bias.to(torch.float64) + delta.to(bias.device)).to(bias.dtype))
    record = {
        "layer": layer,
        "alpha": float(alpha),
        "hook_point": "resid_post",
        "positions": "all",
        "block_bias": f"{site.bias}.bias",
        "vector_norm": vector.norm,
        "method": vector.method,
        "vector_model_id": vector.model_id,
        "base_model": model_id(model),
    }
    return _save(folded, tokenizer, target, record)


def _site(model: Any) -> _Site:
    model_type = getattr(model.config, "model_type", None)
    if model_type in _SITES:
        return _SITES[model_type]
    if model_type in _POST_NORM:
        reason = "it normalises the MLP output (post_feedforward_layernorm) before adding it to the residual"
    else:
        reason = f"saesteer knows no bias that adds a constant to its block output (folds: {FOLDABLE_MODEL_TYPES})"
    raise UnknownArchitectureError(
        f"Cannot fold a steering vector into {type(model).__name__} (model_type {model_type!r}) exactly: "
        f"{reason}. Fix: steer it at run time with saesteer.steer(...) instead."
    )


def _check_vector(model: Any, vector: SteeringVector) -> int:
    if not isinstance(vector, SteeringVector):
        raise ConfigError(f"fold_vector needs a SteeringVector, got {type(vector).__name__}. Fix: wrap it.")
    if vector.hook_point != "resid_post":
        raise ConfigError(
            f"Only block-output (resid_post) vectors fold, got {vector.hook_point!r}. "
            "Fix: use resid_post at layer L-1 (the same point as resid_pre of layer L)."
        )
    width = hidden_size(model)
    if vector.vector.shape != (width,):
        raise VectorError(
            f"Vector shape {tuple(vector.vector.shape)} does not match the model's hidden size {width}. "
            "Fix: use a vector trained on this model."
        )
    return check_layer(model, vector.layer)


def _check_alpha(alpha: float) -> float:
    if isinstance(alpha, bool) or not isinstance(alpha, (int, float)) or not math.isfinite(alpha):
        raise ConfigError(f"alpha must be one finite number, got {alpha!r}. Fix: pass e.g. alpha=4.0.")
    return float(alpha)


def _check_target(target: Path) -> Path:
    if target.exists() and (not target.is_dir() or any(target.iterdir())):
        raise ConfigError(f"{target} already exists and is not an empty directory. Fix: pass a new directory.")
    return target


def _add_zero_mlp_biases(model: Any) -> None:
    """config.mlp_bias = True and a zero bias on every MLP projection that lacks one (identical outputs)."""
    model.config.mlp_bias = True
    for block in decoder_layers(model):
        for name in ("gate_proj", "up_proj", "down_proj"):
            linear = getattr(block.mlp, name)
            if linear.bias is None:
                zeros = torch.zeros(linear.out_features, dtype=linear.weight.dtype, device=linear.weight.device)
                linear.bias = nn.Parameter(zeros, requires_grad=False)


def _bias(block: nn.Module, path: str) -> torch.Tensor:
    try:
        bias = getattr(block.get_submodule(path), "bias", None)
    except AttributeError:
        bias = None
    if not isinstance(bias, torch.Tensor):
        raise UnknownArchitectureError(
            f"{type(block).__name__}.{path} has no bias to fold into. Fix: steer at run time with saesteer.steer."
        )
    return bias


def _save(model: Any, tokenizer: Any, target: Path, record: dict[str, Any], record_name: str = RECORD) -> Path:
    target.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{target.name}.", dir=target.parent))
    try:
        model.save_pretrained(staging)
        if tokenizer is not None:
            tokenizer.save_pretrained(staging)
        (staging / record_name).write_text(json.dumps(record, indent=2))
        if target.exists():
            target.rmdir()
        staging.rename(target)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return target

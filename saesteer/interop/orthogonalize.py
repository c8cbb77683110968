"""Directional ablation as weights (Arditi et al. 2024): a plain transformers checkpoint that never writes r.

``orthogonalize_model`` projects the unit direction r out of every matrix that writes into the residual
stream, W <- W - r r^T W (and b <- b - (b.r)r): the embedding rows, each attention output projection and each
MLP down projection. The stream then never holds r, which is what ``saesteer.runtime.ablate`` computes at
run time (ablation at every block input and after every attention and MLP), so greedy generations agree.

Exact where each sublayer output is added to the stream as is (checked in transformers' modeling code):
``llama``, ``mistral``, ``qwen2``, ``qwen3`` (``o_proj`` / ``down_proj``). Refused
(``UnknownArchitectureError``): Gemma2/Gemma3/OLMo2 normalise each sublayer's output before the residual add
(post-attention/post-feedforward norms rescale per channel, which puts r back), and architectures saesteer has
not checked. Tied input/output embeddings (SmolLM2) are untied: the copy saves the original matrix as its own
``lm_head`` (config ``tie_word_embeddings=False``), since orthogonalising the shared matrix would change the
unembedding too.
"""

from __future__ import annotations

import copy
import hashlib
import os
from pathlib import Path
from typing import Any

import torch
from torch import Tensor, nn

from saesteer.errors import ConfigError, UnknownArchitectureError
from saesteer.interop.fold import _check_target, _save
from saesteer.models.layers import decoder_layers, hidden_size
from saesteer.models.loading import model_id
from saesteer.runtime.ablation import unit_direction

RECORD = "saesteer_orthogonalize.json"
ORTHOGONALIZABLE_MODEL_TYPES: tuple[str, ...] = ("llama", "mistral", "qwen2", "qwen3")
_POST_NORM = ("gemma2", "gemma3", "gemma3_text", "olmo2")
_WRITERS = ("self_attn.o_proj", "mlp.down_proj")


def orthogonalize_model(model: Any, direction: Any, out_dir: str | os.PathLike[str], *, tokenizer: Any = None) -> Path:
    """Save a copy of ``model`` whose embedding, attention-output and MLP-down weights have ``direction``
    projected out; ``direction`` is a tensor (d,) or an all-layers ``DirectionAblation``.

    ``AutoModelForCausalLM.from_pretrained(out_dir)`` then generates what ``with ablate(model, direction):``
    does. ``model`` is not modified; ``out_dir`` must not exist or be empty.
    """
    _check_architecture(model)
    unit = unit_direction(_direction_of(direction, model))
    target = _check_target(Path(out_dir))
    copied = copy.deepcopy(model)
    untied = _untie(copied)
    with torch.no_grad():
        embedding = copied.get_input_embeddings().weight
        embedding.copy_(_project_rows(embedding, unit))
        for block in decoder_layers(copied):
            for path in _WRITERS:
                linear = block.get_submodule(path)
                assert isinstance(linear, nn.Linear)
                linear.weight.copy_(_project_columns(linear.weight, unit))
                if linear.bias is not None:
                    linear.bias.copy_(_project_rows(linear.bias[None, :], unit)[0])
    record = {
        "ablated": "embed_tokens, " + ", ".join(f"every {path}" for path in _WRITERS),
        "direction_sha256": hashlib.sha256(unit.to(torch.float32).numpy().tobytes()).hexdigest()[:16],
        "untied_lm_head": untied,
        "base_model": model_id(model),
        "runtime_equivalent": "saesteer.runtime.ablate(model, direction) (positions='all')",
    }
    return _save(copied, tokenizer, target, record, RECORD)


def _check_architecture(model: Any) -> None:
    model_type = getattr(model.config, "model_type", None)
    if model_type in ORTHOGONALIZABLE_MODEL_TYPES:
        return
    if model_type in _POST_NORM:
        reason = "it normalises each attention/MLP output before adding it to the residual stream, which puts r back"
    else:
        reason = (
            f"saesteer has not checked that its sublayers write to the stream as is ({ORTHOGONALIZABLE_MODEL_TYPES})"
        )
    raise UnknownArchitectureError(
        f"Cannot orthogonalise {type(model).__name__} (model_type {model_type!r}) exactly: {reason}. "
        "Fix: ablate at run time with saesteer.runtime.ablate(model, direction) instead."
    )


def _direction_of(direction: Any, model: Any) -> Tensor:
    if isinstance(direction, Tensor):
        vector = direction
    elif getattr(direction, "method", None) == "ablation":
        if direction.mode != "all-layers":
            raise ConfigError(
                f"Only all-layers ablations have a weight form; this one ablates block outputs {direction.layers}. "
                "Fix: fit it with mode: all-layers, or ablate at run time (saesteer generate)."
            )
        vector = direction.direction
    else:
        raise ConfigError(
            f"orthogonalize_model needs a direction tensor or a directional-ablation artifact, got "
            f"{type(direction).__name__}. Fix: train one with 'saesteer train ablation'."
        )
    if tuple(vector.shape) != (hidden_size(model),):
        raise ConfigError(
            f"Direction shape {tuple(vector.shape)} does not match the model's hidden size {hidden_size(model)}. "
            "Fix: use a direction fitted on this model."
        )
    return vector


def _untie(model: Any) -> bool:
    """Give the output embedding its own copy of a shared matrix; True when it was tied."""
    output = model.get_output_embeddings()
    if output is None or output.weight is not model.get_input_embeddings().weight:
        return False
    output.weight = nn.Parameter(output.weight.detach().clone(), requires_grad=False)
    model.config.tie_word_embeddings = False
    return True


def _project_rows(matrix: Tensor, unit: Tensor) -> Tensor:
    """Rows x <- x - (x.r)r (matrices whose rows are written to the stream: embeddings, biases)."""
    values = matrix.to(torch.float64)
    r = unit.to(values.device)
    return (values - (values @ r)[:, None] * r[None, :]).to(matrix.dtype)


def _project_columns(weight: Tensor, unit: Tensor) -> Tensor:
    """W <- W - r r^T W for a Linear weight (out=d, in): its outputs lose their r component."""
    values = weight.to(torch.float64)
    r = unit.to(values.device)
    return (values - r[:, None] * (r @ values)[None, :]).to(weight.dtype)

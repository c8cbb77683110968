"""Interoperability: llama.cpp control vectors (GGUF), plain safetensors vector files, weight folding and
orthogonalisation (directional ablation as weights)."""

from saesteer.interop._directions import LayerVectors
from saesteer.interop.fold import FOLDABLE_MODEL_TYPES, fold_vector
from saesteer.interop.gguf_control import export_gguf_control_vector, import_gguf_control_vector
from saesteer.interop.layer_tensors import export_layer_tensors, import_layer_tensors
from saesteer.interop.orthogonalize import ORTHOGONALIZABLE_MODEL_TYPES, orthogonalize_model

__all__ = [
    "FOLDABLE_MODEL_TYPES",
    "ORTHOGONALIZABLE_MODEL_TYPES",
    "LayerVectors",
    "export_gguf_control_vector",
    "export_layer_tensors",
    "fold_vector",
    "import_gguf_control_vector",
    "import_layer_tensors",
    "orthogonalize_model",
]

"""Model loading and architecture helpers."""

from saesteer.models.bundled import BUNDLED, DEFAULT_MODEL
from saesteer.models.layers import check_layer, decoder_layers, hidden_size, num_layers
from saesteer.models.loading import load_model, model_fingerprint

__all__ = [
    "BUNDLED",
    "DEFAULT_MODEL",
    "check_layer",
    "decoder_layers",
    "hidden_size",
    "load_model",
    "model_fingerprint",
    "num_layers",
]

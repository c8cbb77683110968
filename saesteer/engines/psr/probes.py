"""PSR's trainable probes and the differentiable forward that applies them to x y' through the runtime."""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import torch
from torch import Tensor, nn

from saesteer.engines.psr.artifact import PSRArtifact
from saesteer.engines.psr.data import PairBatch
from saesteer.runtime.capture import reading
from saesteer.runtime.intervention import Intervention
from saesteer.runtime.positions import ExplicitMask
from saesteer.runtime.steer import steer
from saesteer.runtime.trainable import TrainableProbe


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


def run_probes(
    model: nn.Module, params: ProbeParams, batch: PairBatch, read: Sequence[int], logits: bool
) -> tuple[Trace, Tensor | None]:
    """Differentiable forward of x y' with the probes (strength = each row's label) editing ``batch.steer``, through
    the runtime; the block outputs at ``read`` and the probe layers are traced, and without ``logits`` the
    forward stops after the deepest of them. Hooks are removed on every exit."""
    probes = {layer: TrainableProbe(*params.probe(layer), batch.strength) for layer in params.layers}
    span = ExplicitMask(batch.steer)
    trace = Trace()
    found = None
    with (
        steer(model, [Intervention(layer, probe, span) for layer, probe in probes.items()]),
        reading(model, set(read) | set(params.layers), trace.out.__setitem__, stop=not logits),
    ):
        found = model(**batch.inputs, use_cache=False).logits
    for layer, probe in probes.items():
        trace.pre[layer], trace.gate[layer] = probe.recorded()
    return trace, found

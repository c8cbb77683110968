"""The steering runtime: interventions, position policies, operators (cached and trainable), readers and ``steer``."""

from saesteer.runtime.capture import capture, reading
from saesteer.runtime.conditions import Conditional, LatentAbove, ProjectionAbove, when
from saesteer.runtime.hooks import StopForward, hidden_of, with_hidden
from saesteer.runtime.intervention import Intervention
from saesteer.runtime.operators import AddVector
from saesteer.runtime.positions import (
    AfterInstruction,
    AllTokens,
    ExplicitMask,
    GeneratedOnly,
    LastPromptAndGenerated,
    PromptPrefixSuffix,
    after_prompt,
    parse_positions,
    prompt_prefix_suffix,
)
from saesteer.runtime.probe_operator import GatedProbe
from saesteer.runtime.sae_edit import LatentEdit, SAEEdit
from saesteer.runtime.steer import build_interventions, steer
from saesteer.runtime.trainable import TrainableAdd, TrainableProbe

__all__ = [
    "AddVector",
    "AfterInstruction",
    "AllTokens",
    "Conditional",
    "ExplicitMask",
    "GatedProbe",
    "GeneratedOnly",
    "Intervention",
    "LastPromptAndGenerated",
    "LatentAbove",
    "LatentEdit",
    "ProjectionAbove",
    "PromptPrefixSuffix",
    "SAEEdit",
    "StopForward",
    "TrainableAdd",
    "TrainableProbe",
    "after_prompt",
    "build_interventions",
    "capture",
    "hidden_of",
    "parse_positions",
    "prompt_prefix_suffix",
    "reading",
    "steer",
    "when",
    "with_hidden",
]

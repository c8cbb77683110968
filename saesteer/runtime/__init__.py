"""The steering runtime: interventions, position policies and the ``steer`` context manager."""

from saesteer.runtime.intervention import Intervention
from saesteer.runtime.operators import AddVector
from saesteer.runtime.positions import (
    AfterInstruction,
    AllTokens,
    GeneratedOnly,
    LastPromptAndGenerated,
    PromptPrefixSuffix,
    parse_positions,
    prompt_prefix_suffix,
)
from saesteer.runtime.steer import build_interventions, steer

__all__ = [
    "AddVector",
    "AfterInstruction",
    "AllTokens",
    "GeneratedOnly",
    "Intervention",
    "LastPromptAndGenerated",
    "PromptPrefixSuffix",
    "build_interventions",
    "parse_positions",
    "prompt_prefix_suffix",
    "steer",
]

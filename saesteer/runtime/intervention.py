"""An intervention is data: where (layer, hook point), which tokens (policy), what (operator)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from saesteer.runtime.operators import Operator
from saesteer.runtime.positions import PositionPolicy, parse_positions

HookPoint = Literal["resid_post", "resid_pre", "attn_out", "mlp_out"]
HOOK_POINTS: tuple[str, ...] = ("resid_post", "resid_pre", "attn_out", "mlp_out")


@dataclass
class Intervention:
    """Apply ``operator`` at ``positions`` of the block output (resid_post) or input (resid_pre) of ``layer``,
    or of its attention / MLP sublayer output (attn_out / mlp_out, what those sublayers add to the stream)."""

    layer: int
    operator: Operator
    positions: PositionPolicy | str = "all"
    hook_point: HookPoint = "resid_post"

    def __post_init__(self) -> None:
        from saesteer.errors import ConfigError

        self.positions = parse_positions(self.positions)
        if self.hook_point not in HOOK_POINTS:
            raise ConfigError(
                f"Unknown hook point {self.hook_point!r}. Fix: use 'resid_post' (block output), "
                "'resid_pre' (block input), 'attn_out' or 'mlp_out' (sublayer outputs)."
            )

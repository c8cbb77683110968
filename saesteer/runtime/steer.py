"""``steer``: apply interventions at generation time with hooks that are always removed."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from typing import Any

from torch import Tensor, nn

from saesteer.errors import ConfigError, VectorError
from saesteer.models.end_markers import end_of_turn_markers
from saesteer.models.layers import check_layer_index, context_length, decoder_layers, hidden_size, sublayers
from saesteer.runtime.capture import add_reader
from saesteer.runtime.conditions import Condition, check_conditions
from saesteer.runtime.hooks import hidden_of, with_hidden
from saesteer.runtime.intervention import HookPoint, Intervention
from saesteer.runtime.operators import AddVector, as_vectors
from saesteer.runtime.positions import PositionPolicy
from saesteer.runtime.tracker import StepTracker, decoder_owner

Steerable = Tensor | Sequence[Tensor] | Intervention | Sequence[Intervention] | Any


def build_interventions(
    model: nn.Module,
    what: Steerable,
    *,
    layer: int | None = None,
    alpha: Any = 1.0,
    positions: PositionPolicy | str | None = None,
    hook_point: HookPoint | None = None,
) -> list[Intervention]:
    """Normalise a vector, per-row vectors, an artifact or interventions into validated interventions."""
    return normalise_interventions(
        what,
        layers=len(decoder_layers(model)),
        width=hidden_size(model),
        model_name=type(model).__name__,
        layer=layer,
        alpha=alpha,
        positions=positions,
        hook_point=hook_point,
    )


def normalise_interventions(
    what: Steerable,
    *,
    layers: int,
    width: int,
    model_name: str = "the model",
    layer: int | None = None,
    alpha: Any = 1.0,
    positions: PositionPolicy | str | None = None,
    hook_point: HookPoint | None = None,
) -> list[Intervention]:
    """``build_interventions`` for a model known by its layer count and hidden size (any backend)."""
    if isinstance(what, Intervention):
        items = [what]
    elif isinstance(what, (list, tuple)) and what and all(isinstance(x, Intervention) for x in what):
        items = list(what)
    elif hasattr(what, "interventions") and callable(what.interventions):
        items = list(what.interventions(alpha=alpha, positions=positions, layer=layer, hook_point=hook_point))
    elif isinstance(what, Tensor) or (isinstance(what, (list, tuple)) and what):
        if layer is None:
            raise ConfigError("A raw steering vector needs layer=L. Fix: steer(model, v, layer=L, alpha=...).")
        items = [
            Intervention(
                layer=layer,
                operator=AddVector(as_vectors(what), alpha),
                positions=positions or "all",
                hook_point=hook_point or "resid_post",
            )
        ]
    else:
        raise ConfigError(
            f"Cannot steer with {type(what).__name__}. Fix: pass a tensor, a list of per-row tensors, "
            "a saesteer artifact (e.g. SteeringVector) or Intervention objects."
        )
    for item in items:
        item.layer = check_layer_index(item.layer, layers, model_name)
        if item.operator.width != width:
            raise VectorError(
                f"Vector width {item.operator.width} does not match the model's hidden size {width}. "
                "Fix: use a vector trained on this model (or this model's SAE)."
            )
        check_conditions(item, layers)
    return items


def _check_rows(operator: Any, batch: int) -> None:
    rows = operator.rows
    if rows is not None and rows != batch:
        raise VectorError(
            f"{rows} per-row vectors/alphas but the batch has {batch} rows. Fix: give one per row "
            "(beam search and num_return_sequences multiply rows; use a scalar alpha there)."
        )


def _edit(tracker: StepTracker, items: list[Intervention], hidden: Tensor) -> Tensor:
    for item in items:
        mask = tracker.mask_for(item.positions)  # type: ignore[arg-type]
        if mask is False:
            continue
        _check_rows(item.operator, hidden.shape[0])
        hidden = item.operator.apply(hidden, mask)
    return hidden


def _output_hook(tracker: StepTracker, items: list[Intervention]) -> Any:
    def hook(module: nn.Module, args: tuple[Any, ...], output: Any) -> Any:
        return with_hidden(output, _edit(tracker, items, hidden_of(output)))

    return hook


def _input_hook(tracker: StepTracker, items: list[Intervention]) -> Any:
    def hook(module: nn.Module, args: tuple[Any, ...], kwargs: dict[str, Any]) -> Any:
        if args:
            return (_edit(tracker, items, args[0]), *args[1:]), kwargs
        kwargs["hidden_states"] = _edit(tracker, items, kwargs["hidden_states"])
        return args, kwargs

    return hook


def _module_at(block: nn.Module, point: str) -> nn.Module:
    """The module whose output is ``point``: the block (resid_post) or its attention / MLP sublayer."""
    if point == "resid_post":
        return block
    attention, mlp = sublayers(block)
    return attention if point == "attn_out" else mlp


@contextmanager
def steer(
    model: nn.Module,
    what: Steerable,
    *,
    layer: int | None = None,
    alpha: Any = 1.0,
    positions: PositionPolicy | str | None = None,
    hook_point: HookPoint | None = None,
) -> Iterator[list[Intervention]]:
    """Steer ``model`` inside the block; every hook is removed on exit, exceptions included.

    >>> with steer(model, vector, layer=8, alpha=[-4, 0, 4], positions="after_prompt"):
    ...     out = model.generate(**batch, max_new_tokens=40)   # one row per alpha
    """
    items = build_interventions(model, what, layer=layer, alpha=alpha, positions=positions, hook_point=hook_point)
    layers = decoder_layers(model)
    tracker = StepTracker(end_of_turn_markers(model), context_length(model))
    groups: dict[tuple[int, str], list[Intervention]] = defaultdict(list)
    conditions: dict[int, Condition] = {}
    for item in items:
        groups[(item.layer, item.hook_point)].append(item)
        conditions.update((id(c), c) for c in check_conditions(item, len(layers)))
    handles = []
    try:
        handles.append(decoder_owner(model).register_forward_pre_hook(tracker, with_kwargs=True))
        for condition in conditions.values():  # readers first: a condition sees its point before any edit there
            handles.append(add_reader(layers[condition.layer], condition.hook_point, condition.read))
        for (index, point), group in groups.items():
            if point == "resid_pre":
                handles.append(layers[index].register_forward_pre_hook(_input_hook(tracker, group), with_kwargs=True))
            else:
                handles.append(_module_at(layers[index], point).register_forward_hook(_output_hook(tracker, group)))
        yield items
    finally:
        for handle in handles:
            handle.remove()
        for condition in conditions.values():
            condition.observed = None

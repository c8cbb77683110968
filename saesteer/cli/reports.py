"""What ``saesteer train METHOD`` prints after a fit: one reporter per built-in method, keyed by name, and a
generic one (scalar metrics) for any other registered method."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from saesteer.cli.common import console
from saesteer.engines.protocol import Fitted


def _scalars(metrics: dict[str, Any]) -> str:
    return ", ".join(f"{k}={v:.3f}" for k, v in metrics.items() if isinstance(v, (int, float)))


def _caa(name: str, fitted: Fitted, record: Any) -> None:
    vector = fitted.artifact
    console.print(f"stored [bold]{name}[/] (layer {vector.layer}, id {record.id[:8]}): {_scalars(vector.metrics)}")


def _corrsteer(name: str, fitted: Fitted, record: Any) -> None:
    metrics, report = fitted.artifact.metrics, fitted.report
    console.print(f"harvested {metrics['n_train']} samples ({report['reward_name']}: {metrics['train_reward']:.2f})")
    for layer, feature, r, coefficient in report["features"]:
        console.print(f"  layer {layer} feature {feature}: r = {r:+.3f}, coefficient = {coefficient:.3f}")
    if report["validation"]:
        console.print(f"  validation: {report['validation']}")
    console.print(f"stored [bold]{name}[/] ({record.id[:8]}) and {name}-stats")


def _prosv(name: str, fitted: Fitted, record: Any) -> None:
    artifact = fitted.artifact
    m = artifact.metrics
    console.print(
        f"stored [bold]{name}[/] (layer {artifact.layer}, {artifact.positions}, id {record.id[:8]}): "
        f"factor={m['factor']:.2f}, |v|={m['direction_norm']:.3f}, loss {m['loss_first_step']:.3f} -> "
        f"{m['loss_last_epoch']:.3f} on {m['n_train']} examples"
    )
    console.print(f"training values: {artifact.config.get('hyper_source', 'unrecorded')}")


def _psr(name: str, fitted: Fitted, record: Any) -> None:
    artifact, calibration = fitted.artifact, fitted.report.get("calibration")
    m, nan = artifact.metrics, float("nan")
    console.print(
        f"trained {artifact.variant}-PSR ({artifact.config.get('objective')}) on layers {artifact.layers} from "
        f"{m['n_train']} triplets; dev: R2 = {m.get('r2', nan):.3f} (constant vector "
        f"{m.get('const_r2', nan):.3f}), cosine = {m.get('cosine', nan):.3f}, "
        f"zero-gate fraction = {m.get('zero_gate_fraction', nan):.3f}"
    )
    judged = artifact.config.get("triplet_filter") or {}
    if judged.get("judge"):
        console.print(
            f"triplets judged by {judged['judge']}: kept {judged['kept']} of {judged['generated']} "
            f"(dropped: coherence {judged.get('dropped_coherence', 0)}, attribute {judged.get('dropped_attribute', 0)})"
        )
    else:
        console.print(f"triplets not filtered (no --judge): all {judged.get('generated', m['n_train'])} kept")
    if calibration is not None:
        console.print(
            f"alpha = {artifact.alpha:.3f} (coherence proxy {calibration.coherence:.3f}, target "
            f"{calibration.target:.3f}{'' if calibration.reached else ', NOT reached'})"
        )
    console.print(f"stored [bold]{name}[/] ({record.id[:8]}) with alpha {artifact.alpha:.3f}")


def _generic(name: str, fitted: Fitted, record: Any) -> None:
    artifact = fitted.artifact
    layers = ", ".join(map(str, artifact.layers)) or "none"
    console.print(
        f"stored [bold]{name}[/] ({artifact.method}, layers {layers}, id {record.id[:8]}): {_scalars(artifact.metrics)}"
    )


REPORTERS: dict[str, Callable[[str, Fitted, Any], None]] = {
    "caa": _caa,
    "corrsteer": _corrsteer,
    "prosv": _prosv,
    "psr": _psr,
}


def print_report(method: str, name: str, fitted: Fitted, record: Any) -> None:
    """Print what the fit of ``method`` stored as ``name`` (``record``)."""
    REPORTERS.get(method, _generic)(name, fitted, record)

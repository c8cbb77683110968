"""The wire format between the vLLM client side and its workers (no vLLM import here).

An intervention travels in two parts. Its *payload* (the operator's tensors and settings, without the
strength) is registered once on every worker under a content hash; a request then carries only small
JSON *entries* ``{key, layer, point, positions, markers, alpha}``, as the string ``extra_args["saesteer"]``
(vLLM's ``vllm_xargs`` accept it too). The same entries, hashed, are the request's prefix-cache salt, so
KV computed under one steering is never reused under another.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from typing import Any

import torch
from torch import Tensor

from saesteer.errors import ConfigError
from saesteer.runtime.ablation import AblateDirection
from saesteer.runtime.conditions import Conditional
from saesteer.runtime.intervention import Intervention
from saesteer.runtime.operators import AddVector, Operator
from saesteer.runtime.positions import (
    AfterInstruction,
    AllTokens,
    GeneratedOnly,
    LastPromptAndGenerated,
    PositionPolicy,
    PromptInfo,
    PromptOnly,
    PromptPrefixSuffix,
    parse_positions,
)
from saesteer.runtime.probe_operator import GatedProbe
from saesteer.runtime.sae_edit import LatentEdit, SAEEdit

EXTRA_ARGS_KEY = "saesteer"
Payload = dict[str, Any]
Markers = tuple[tuple[int, ...], ...]


@dataclass(frozen=True)
class Entry:
    """One intervention of one request: registered operator ``key`` at ``layer``/``point``, ``positions``
    (a policy name; ``markers`` are after_prompt's end-of-instruction token sequences) and strength ``alpha``."""

    key: str
    layer: int
    point: str
    positions: str
    alpha: float
    markers: Markers = ()

    def to_json(self) -> dict[str, Any]:
        return {
            "key": self.key,
            "layer": self.layer,
            "point": self.point,
            "positions": self.positions,
            "alpha": self.alpha,
            "markers": [list(m) for m in self.markers],
        }

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Entry:
        return cls(
            key=str(data["key"]),
            layer=int(data["layer"]),
            point=str(data["point"]),
            positions=str(data["positions"]),
            alpha=float(data["alpha"]),
            markers=tuple(tuple(int(t) for t in m) for m in data.get("markers", ())),
        )

    def policy(self) -> PositionPolicy:
        policy = parse_positions(self.positions)
        return AfterInstruction(end_markers=self.markers) if isinstance(policy, AfterInstruction) else policy


def check_prompt(entries: list[Entry], ids: list[int]) -> None:
    """Raise, on the client, what a worker's position policies would raise on this prompt (e.g. after_prompt
    on a prompt without its end marker), before the request reaches the engine."""
    tensor = torch.tensor([ids], dtype=torch.long)
    prompt = PromptInfo(input_ids=tensor, valid=torch.ones_like(tensor, dtype=torch.bool), end_markers=())
    for entry in entries:
        if entry.positions == "after_prompt":
            entry.policy().prompt_mask(prompt)


def encode_entries(entries: list[Entry]) -> str:
    return json.dumps([e.to_json() for e in entries], sort_keys=True, separators=(",", ":"))


def decode_entries(text: str) -> list[Entry]:
    return [Entry.from_json(item) for item in json.loads(text)]


def cache_salt(encoded: str) -> str:
    """The prefix-cache salt of a steered request: a hash of everything that changes its KV."""
    return "saesteer-" + hashlib.sha256(encoded.encode()).hexdigest()[:32]


def position_name(policy: PositionPolicy, default_markers: Markers) -> tuple[str, Markers]:
    """A policy as its wire name and the end markers it uses (after_prompt only)."""
    if isinstance(policy, AfterInstruction):
        return "after_prompt", policy.end_markers if policy.end_markers is not None else default_markers
    if isinstance(policy, PromptPrefixSuffix):
        return f"prompt_prefix_suffix({policy.prefix},{policy.suffix})", ()
    if isinstance(policy, (AllTokens, LastPromptAndGenerated, GeneratedOnly, PromptOnly)):
        return policy.name, ()
    raise ConfigError(
        f"Position policy {policy.name!r} cannot run on the vLLM backend (it marks positions of one training "
        "forward). Fix: use all, after_prompt, prompt_and_generated_last, generated, prompt or "
        "prompt_prefix_suffix(p,s), or the hf backend."
    )


def _digest(*parts: Any) -> str:
    digest = hashlib.sha256()
    for part in parts:
        if isinstance(part, Tensor):
            tensor = part.detach().cpu().contiguous().reshape(-1)
            digest.update(str((tensor.dtype, tuple(tensor.shape))).encode())
            digest.update(tensor.view(torch.uint8).numpy().tobytes() if tensor.numel() else b"")
        else:
            digest.update(json.dumps(part, sort_keys=True, default=str).encode())
    return digest.hexdigest()[:40]


def _scalar(alpha: Tensor, what: str) -> float:
    if alpha.dim() != 0:
        raise ConfigError(
            f"{what} has one strength per batch row here. Fix: give the vLLM backend one alpha per request "
            "(complete(..., alpha=[...]) splits them for you)."
        )
    return float(alpha)


def split_operator(operator: Operator) -> tuple[Payload, float]:
    """An operator as (payload without its strength, the strength)."""
    if isinstance(operator, Conditional):
        raise ConfigError(
            "Conditional steering (when / --when) runs on the hf backend only. Fix: use backend='hf' for it."
        )
    if isinstance(operator, AddVector):
        if operator.vector.dim() != 1:
            raise ConfigError("One request takes one vector. Fix: send per-row vectors as separate requests.")
        return {"op": "add", "vector": operator.vector}, _scalar(operator.alpha, "The vector")
    if isinstance(operator, GatedProbe):
        assert isinstance(operator.alpha, Tensor)
        return {"op": "probe", "w": operator.w, "b": operator.b, "z": operator.z}, _scalar(operator.alpha, "The probe")
    if isinstance(operator, AblateDirection):
        return {"op": "ablate", "direction": operator.direction}, _scalar(operator.scale, "The ablation")
    if isinstance(operator, SAEEdit):
        assert isinstance(operator.alpha, Tensor)
        sae = operator.sae
        return {
            "op": "sae_edit",
            "sae_cfg": sae.cfg.to_dict(),
            "sae_state": {k: v.detach().cpu() for k, v in sae.state_dict().items()},
            "edits": [[e.latent, e.op, e.value] for e in operator.edits],
            "keep_error": bool(operator.keep_error),
        }, _scalar(operator.alpha, "The SAE edit")
    raise ConfigError(
        f"The vLLM backend cannot run operator {type(operator).__name__}. Fix: use AddVector, GatedProbe, "
        "SAEEdit or AblateDirection interventions, or the hf backend."
    )


def payload_key(payload: Payload) -> str:
    parts: list[Any] = [payload["op"]]
    for name in sorted(payload):
        value = payload[name]
        if isinstance(value, dict) and name == "sae_state":
            parts.extend([name, *[x for k in sorted(value) for x in (k, value[k])]])
        else:
            parts.extend([name, value])
    return f"{payload['op']}-{_digest(*parts)}"


def encode_intervention(item: Intervention, default_markers: Markers) -> tuple[Payload, Entry]:
    """(payload to register, the request's entry) of one intervention."""
    payload, alpha = split_operator(item.operator)
    assert not isinstance(item.positions, str)
    positions, markers = position_name(item.positions, default_markers)
    return payload, Entry(payload_key(payload), item.layer, item.hook_point, positions, alpha, markers)


_TENSOR = "__saesteer_tensor__"


def pack_payload(payload: Payload) -> Payload:
    """A payload in msgpack-native values only, for ``collective_rpc`` to an engine-core process: vLLM decodes
    utility-call arguments without type information, so a bare tensor would arrive as ``[dtype, shape, index]``.
    Tensors become ``{_TENSOR: [dtype, shape, raw bytes]}``, tuples lists; ``prepare_payload`` undoes it."""
    packed = _pack(payload)
    assert isinstance(packed, dict)
    return packed


def _pack(value: Any) -> Any:
    if isinstance(value, Tensor):
        tensor = value.detach().cpu().contiguous()
        raw = tensor.reshape(-1).view(torch.uint8).numpy().tobytes() if tensor.numel() else b""
        return {_TENSOR: [str(tensor.dtype).removeprefix("torch."), list(tensor.shape), raw]}
    if isinstance(value, dict):
        return {str(k): _pack(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_pack(v) for v in value]
    if value is None or isinstance(value, (str, int, float, bool, bytes)):
        return value
    return str(value)


def _unpack(value: Any) -> Any:
    if isinstance(value, dict):
        if set(value) == {_TENSOR}:
            dtype_name, shape, raw = value[_TENSOR]
            dtype = getattr(torch, dtype_name)
            if not raw:
                return torch.empty([int(d) for d in shape], dtype=dtype)
            return torch.frombuffer(bytearray(raw), dtype=dtype).reshape([int(d) for d in shape])
        return {k: _unpack(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_unpack(v) for v in value]
    return value


def prepare_payload(payload: Payload) -> Payload:
    """The worker side, once per key: unpack a payload packed by ``pack_payload`` and
    rebuild an SAE edit's sae-lens SAE from its config and weights."""
    payload = _unpack(payload)
    if payload["op"] != "sae_edit":
        return payload
    from sae_lens import SAE

    sae = SAE.from_dict(dict(payload["sae_cfg"]))
    sae.load_state_dict(payload["sae_state"])
    sae.eval()
    return {"op": "sae_edit", "sae": sae, "edits": payload["edits"], "keep_error": payload["keep_error"]}


def build_operator(payload: Payload, alpha: float) -> Operator:
    """The worker side: the runtime operator of a prepared payload at strength ``alpha`` (the HF runtime's
    own classes, so both backends compute the same edit)."""
    op = payload["op"]
    if op == "add":
        return AddVector(payload["vector"], torch.tensor(alpha, dtype=torch.float64))
    if op == "probe":
        return GatedProbe(payload["w"], payload["b"], payload["z"], alpha)
    if op == "ablate":
        return AblateDirection(payload["direction"], torch.tensor(alpha, dtype=torch.float64))
    if op == "sae_edit":
        edits = [LatentEdit(int(i), o, float(v)) for i, o, v in payload["edits"]]
        return SAEEdit(payload["sae"], edits, keep_error=bool(payload["keep_error"]), alpha=alpha)
    raise ConfigError(f"Unknown steering payload {op!r}. Fix: register add, probe, ablate or sae_edit payloads.")

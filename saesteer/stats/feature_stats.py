"""FeatureStats: streaming per-feature sums for CorrSteer (SAE activation vs. task correctness).

All running sums are float64, so statistics of shards merge (or all-reduce) to what one pass over
all samples computes, up to float64 rounding.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import torch
from torch import Tensor

from saesteer.errors import ConfigError, DataError, StoreError

_EPS = 1e-12
_MATRICES = ("sum_x", "sum_xx", "sum_xy", "sum_x_pos")
_SCALARS = ("sum_y", "sum_yy")
_COUNTS = ("n", "n_pos")
TENSOR_KEYS = ("layers", *_COUNTS, *_SCALARS, *_MATRICES)


@dataclass(eq=False)
class FeatureStats:
    """Running sums over samples of x (SAE activations, per layer and feature) and y (reward).

    ``sum_x``, ``sum_xx``, ``sum_xy`` and ``sum_x_pos`` are (L, D) float64; ``sum_y`` and ``sum_yy``
    are 0-d float64; ``n`` counts samples and ``n_pos`` those with y > 0 (``sum_x_pos`` sums x over them).
    """

    layers: tuple[int, ...]
    n: int
    sum_x: Tensor
    sum_xx: Tensor
    sum_xy: Tensor
    sum_y: Tensor
    sum_yy: Tensor
    sum_x_pos: Tensor
    n_pos: int

    @classmethod
    def empty(cls, layers: Sequence[int], num_features: int, device: torch.device | str | None = None) -> FeatureStats:
        """Zeroed statistics for ``layers`` x ``num_features`` features."""
        layer_ids = tuple(int(layer) for layer in layers)
        if not layer_ids or len(set(layer_ids)) != len(layer_ids):
            raise ConfigError(
                f"layers must be a non-empty sequence of distinct layer indices, got {list(layers)}. "
                "Fix: pass each layer once, e.g. layers=(3, 5, 7)."
            )
        if num_features < 1:
            raise ConfigError(f"num_features must be >= 1, got {num_features}. Fix: pass the SAE width (d_sae).")

        def zeros(*shape: int) -> Tensor:
            return torch.zeros(shape, dtype=torch.float64, device=device)

        shape = (len(layer_ids), num_features)
        return cls(
            layers=layer_ids,
            n=0,
            sum_x=zeros(*shape),
            sum_xx=zeros(*shape),
            sum_xy=zeros(*shape),
            sum_y=zeros(),
            sum_yy=zeros(),
            sum_x_pos=zeros(*shape),
            n_pos=0,
        )

    @property
    def num_features(self) -> int:
        return int(self.sum_x.shape[1])

    @property
    def device(self) -> torch.device:
        return self.sum_x.device

    def update(self, x: Tensor, y: Tensor) -> None:
        """Accumulate a batch: ``x`` is (B, L, D) (or (B, D) with one layer), ``y`` is (B,) rewards."""
        num_layers, num_features = self.sum_x.shape
        if x.dim() == 2 and num_layers == 1:
            x = x.unsqueeze(1)
        expected = f"(B, {num_layers}, {num_features})" + (f" or (B, {num_features})" if num_layers == 1 else "")
        if x.dim() != 3 or tuple(x.shape[1:]) != (num_layers, num_features):
            raise DataError(
                f"x has shape {tuple(x.shape)} but these stats expect {expected} "
                f"(layers {list(self.layers)}, {num_features} features). "
                "Fix: stack the SAE activations of exactly these layers as (batch, layer, feature)."
            )
        if y.dim() != 1 or y.shape[0] != x.shape[0]:
            raise DataError(
                f"y has shape {tuple(y.shape)} but x has batch size {x.shape[0]}, so y must be ({x.shape[0]},). "
                "Fix: pass one reward per sample as a 1-d tensor."
            )
        x64 = x.detach().to(torch.float64)
        y64 = y.detach().to(device=x64.device, dtype=torch.float64)
        if not bool(torch.isfinite(x64).all()):
            raise DataError("x contains NaN or infinite values. Fix: check the SAE encoding / model dtype overflow.")
        if not bool(torch.isfinite(y64).all()):
            raise DataError("y contains NaN or infinite values. Fix: give every sample a finite reward.")
        positive = y64 > 0
        flat = x64.reshape(x64.shape[0], num_layers * num_features)
        self.n += int(x64.shape[0])
        self.n_pos += int(positive.sum())
        self.sum_x += x64.sum(0).to(self.device)
        self.sum_xx += x64.square().sum(0).to(self.device)
        self.sum_xy += (y64 @ flat).reshape(num_layers, num_features).to(self.device)
        self.sum_y += y64.sum().to(self.device)
        self.sum_yy += y64.square().sum().to(self.device)
        self.sum_x_pos += x64[positive].sum(0).to(self.device)

    def merge(self, other: FeatureStats) -> FeatureStats:
        """New statistics equal to one pass over the samples of ``self`` and ``other``."""
        if other.layers != self.layers or other.num_features != self.num_features:
            raise ConfigError(
                f"Cannot merge stats of layers {list(other.layers)} x {other.num_features} features into "
                f"layers {list(self.layers)} x {self.num_features} features. "
                "Fix: merge only shards collected with the same layers and SAE."
            )

        def add(name: str) -> Tensor:
            return getattr(self, name) + getattr(other, name).to(self.device)

        return FeatureStats(
            layers=self.layers,
            n=self.n + other.n,
            sum_x=add("sum_x"),
            sum_xx=add("sum_xx"),
            sum_xy=add("sum_xy"),
            sum_y=add("sum_y"),
            sum_yy=add("sum_yy"),
            sum_x_pos=add("sum_x_pos"),
            n_pos=self.n_pos + other.n_pos,
        )

    def _require_samples(self) -> None:
        if self.n == 0:
            raise DataError("No samples have been accumulated. Fix: call update(x, y) with at least one batch.")

    def means(self) -> Tensor:
        """(L, D) mean activation over all samples."""
        self._require_samples()
        return self.sum_x / self.n

    def pearson(self) -> Tensor:
        """(L, D) Pearson correlation of each feature with y; 0 where x or y has (near-)zero variance."""
        self._require_samples()
        mean_x = self.sum_x / self.n
        mean_y = self.sum_y / self.n
        cov = self.sum_xy / self.n - mean_x * mean_y
        var_x = self.sum_xx / self.n - mean_x.square()
        var_y = self.sum_yy / self.n - mean_y.square()
        r = cov / torch.sqrt(var_x.clamp_min(_EPS) * var_y.clamp_min(_EPS))
        degenerate = (var_x <= _EPS) | (var_y <= _EPS)
        return torch.where(degenerate, torch.zeros_like(r), r)

    def coefficients(self) -> Tensor:
        """(L, D) mean activation over samples with y > 0, zeros included (CorrSteer steering coefficients)."""
        if self.n_pos == 0:
            raise DataError(
                "No sample with y > 0 has been accumulated, so coefficients are undefined. "
                "Fix: collect activations on samples the model answers correctly."
            )
        return self.sum_x_pos / self.n_pos

    def top_features(self, k: int, positive_only: bool = True) -> dict[int, list[tuple[int, float]]]:
        """Per layer, up to ``k`` (feature, r) with the largest |r| (only r > 0 when ``positive_only``)."""
        if k < 1:
            raise ConfigError(f"k must be >= 1, got {k}. Fix: ask for at least one feature per layer.")
        r = self.pearson()
        top: dict[int, list[tuple[int, float]]] = {}
        for row, layer in enumerate(self.layers):
            keep = (r[row] > 0) if positive_only else (r[row] != 0)
            index = keep.nonzero().flatten()
            order = torch.sort(r[row, index].abs(), descending=True, stable=True).indices[:k]
            top[layer] = [(int(i), float(r[row, i])) for i in index[order].tolist()]
        return top

    def all_reduce(self, group: torch.distributed.ProcessGroup | None = None) -> None:
        """Sum every running sum across processes in place (float64); a no-op without torch.distributed."""
        dist = torch.distributed
        if not (dist.is_available() and dist.is_initialized()):
            return
        parts = [
            torch.tensor([float(self.n), float(self.n_pos)], dtype=torch.float64, device=self.device),
            self.sum_y.reshape(1),
            self.sum_yy.reshape(1),
            *(getattr(self, name).reshape(-1) for name in _MATRICES),
        ]
        buffer = torch.cat(parts)
        if dist.get_backend(group) == "nccl" and buffer.device.type != "cuda":
            buffer = buffer.to(torch.device("cuda", torch.cuda.current_device()))
        from saesteer.distributed import collective

        with collective("all-reducing feature statistics"):
            dist.all_reduce(buffer, op=dist.ReduceOp.SUM, group=group)
        buffer = buffer.to(self.device)
        self.n, self.n_pos = int(buffer[0].item()), int(buffer[1].item())
        self.sum_y, self.sum_yy = buffer[2].clone(), buffer[3].clone()
        size = self.sum_x.numel()
        for i, name in enumerate(_MATRICES):
            start = 4 + i * size
            setattr(self, name, buffer[start : start + size].reshape(self.sum_x.shape).clone())

    def to_tensors(self) -> dict[str, Tensor]:
        """CPU tensors for a safetensors blob: every sum, the counts (int64) and ``layers`` (int64)."""
        tensors = {
            "layers": torch.tensor(self.layers, dtype=torch.int64),
            "n": torch.tensor(self.n, dtype=torch.int64),
            "n_pos": torch.tensor(self.n_pos, dtype=torch.int64),
        }
        for name in (*_SCALARS, *_MATRICES):
            tensors[name] = getattr(self, name).detach().to("cpu", torch.float64).clone().contiguous()
        return tensors

    @classmethod
    def from_tensors(cls, tensors: dict[str, Tensor]) -> FeatureStats:
        """Rebuild from :meth:`to_tensors` output; missing keys or inconsistent shapes raise StoreError."""
        missing = [key for key in TENSOR_KEYS if key not in tensors]
        if missing:
            raise StoreError(
                f"Feature stats blob lacks {missing}. Fix: re-collect the stats (the blob is incomplete or not stats)."
            )
        layers = tensors["layers"]
        if (
            layers.dim() != 1
            or layers.numel() == 0
            or layers.is_floating_point()
            or len(set(layers.tolist())) != layers.numel()
        ):
            raise StoreError(
                f"Feature stats 'layers' must be a non-empty 1-d tensor of distinct integers, got {layers.dtype} "
                f"{layers.tolist()}. Fix: re-collect the stats."
            )
        shape = tuple(tensors["sum_x"].shape)
        if len(shape) != 2 or shape[0] != layers.numel() or shape[1] < 1:
            raise StoreError(
                f"Feature stats 'sum_x' has shape {shape} but {layers.numel()} layers need "
                f"({layers.numel()}, num_features). Fix: re-collect the stats."
            )
        for name in _MATRICES:
            if tuple(tensors[name].shape) != shape:
                raise StoreError(
                    f"Feature stats '{name}' has shape {tuple(tensors[name].shape)}, expected {shape}. "
                    "Fix: re-collect the stats."
                )
        for name in (*_COUNTS, *_SCALARS):
            if tensors[name].numel() != 1:
                raise StoreError(
                    f"Feature stats '{name}' must be a scalar, got shape {tuple(tensors[name].shape)}. "
                    "Fix: re-collect the stats."
                )
        n, n_pos = int(tensors["n"].item()), int(tensors["n_pos"].item())
        if not 0 <= n_pos <= n:
            raise StoreError(
                f"Feature stats counts are inconsistent (n={n}, n_pos={n_pos}). Fix: re-collect the stats."
            )
        stats = cls.empty(layers.tolist(), shape[1])
        stats.n, stats.n_pos = n, n_pos
        for name in (*_SCALARS, *_MATRICES):
            value = tensors[name].detach().to("cpu", torch.float64).reshape(getattr(stats, name).shape).clone()
            if not bool(torch.isfinite(value).all()):
                raise StoreError(f"Feature stats '{name}' contains NaN or inf. Fix: re-collect the stats.")
            setattr(stats, name, value)
        return stats

"""Stream a corpus through the model and keep per-latent statistics of an SAE: max, density, a histogram of
log10 activations, and the top-k contexts of every latent with their per-token activations."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import asdict, dataclass
from itertools import islice
from typing import Any

import torch
from torch import Tensor
from tqdm.auto import tqdm

from saesteer.data import sample_path
from saesteer.errors import DataError
from saesteer.runtime.capture import capture
from saesteer.runtime.intervention import HookPoint
from saesteer.saes.activations import token_windows
from saesteer.saes.corpus import load_corpus

AXBENCH = "axbench"  # the shipped AxBench concept texts (their ``output`` field)
LOG10_EDGES = torch.linspace(-3.0, 3.0, 49)  # histogram bins of log10(activation) over active tokens


@dataclass(frozen=True)
class Settings:
    """What a summary is computed over (all part of its cache key)."""

    corpus: str = "python-docs"
    tokens: int = 8192
    context: int = 64
    batch_size: int = 8
    top_k: int = 8
    text_field: str = "text"

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass
class FeatureSummary:
    """Per-latent statistics over ``windows`` (W, T) of token ids; position 0 of each window (an attention
    sink) is never encoded, so activations and contexts are over positions 1..T-1."""

    windows: Tensor  # (W, T) int64
    max: Tensor  # (F,)
    density: Tensor  # (F,) fraction of tokens with activation > 0
    mean: Tensor  # (F,) mean over all tokens
    hist: Tensor  # (F, bins) counts of log10(activation) of active tokens (edges LOG10_EDGES, clamped)
    top_values: Tensor  # (F, k) max activation in each top window, descending
    top_windows: Tensor  # (F, k) window index, -1 where the latent fired in fewer than k windows
    top_acts: Tensor  # (F, k, T-1) float16 per-token activations in those windows

    @property
    def n_tokens(self) -> int:
        return int(self.windows.shape[0] * (self.windows.shape[1] - 1))

    def tensors(self) -> dict[str, Tensor]:
        return {name: value.contiguous() for name, value in vars(self).items()}

    @classmethod
    def from_tensors(cls, tensors: dict[str, Tensor]) -> FeatureSummary:
        return cls(**{name: tensors[name] for name in cls.__dataclass_fields__})

    def most_active(self, n: int) -> list[int]:
        """The ``n`` latents with the highest max activation (never-active latents excluded)."""
        order = self.max.argsort(descending=True)[:n]
        return [int(i) for i in order if self.max[i] > 0]

    def contexts(self, feature: int) -> Iterator[tuple[float, Tensor, Tensor]]:
        """(max activation, token ids, per-token activations) of each top window of ``feature``, best first."""
        for value, window, acts in zip(
            self.top_values[feature], self.top_windows[feature], self.top_acts[feature], strict=True
        ):
            if int(window) >= 0:
                yield float(value), self.windows[int(window), 1:], acts.float()


def corpus_texts(source: str, *, field: str = "text", tokenizer: Any = None) -> Iterator[str]:
    """Texts of ``axbench`` (the shipped concept examples) or of any corpus ``load_corpus`` reads."""
    if source == AXBENCH:
        return load_corpus(str(sample_path("axbench/train.jsonl")), field="output")
    return load_corpus(source, field=field, tokenizer=tokenizer)


def corpus_windows(tokenizer: Any, settings: Settings) -> Tensor:
    """(W, T) token windows holding at least ``settings.tokens`` encoded tokens (position 0 excluded)."""
    if settings.context < 2 or settings.tokens < 1:
        raise DataError("Need context >= 2 and tokens >= 1. Fix: pass --context 64 --tokens 8192 or similar.")
    wanted = -(-settings.tokens // (settings.context - 1))
    texts = corpus_texts(settings.corpus, field=settings.text_field, tokenizer=tokenizer)
    windows = list(islice(token_windows(tokenizer, texts, settings.context), wanted))
    if len(windows) < wanted:
        got = len(windows) * (settings.context - 1)
        raise DataError(
            f"Corpus {settings.corpus!r} gave only {got} tokens, {settings.tokens} were asked for. "
            "Fix: pass fewer --tokens or a larger corpus."
        )
    return torch.tensor(windows, dtype=torch.int64)


@torch.no_grad()
def encode_latents(model: Any, sae: Any, batch: dict[str, Tensor], *, layer: int, hook_point: HookPoint) -> Tensor:
    """(B, T, F) SAE latents of the hidden states at ``layer`` for one forward pass of ``batch``."""
    hidden = capture(model, batch, [layer], hook_point)[layer]
    return sae.encode(hidden.to(sae.W_dec.dtype))


def _histogram(latents: Tensor, n_features: int) -> Tensor:
    bins = len(LOG10_EDGES) - 1
    where = latents.nonzero()
    values = latents[latents != 0].clamp_min(1e-12).log10()
    index = (torch.bucketize(values, LOG10_EDGES[1:-1])).clamp(0, bins - 1)
    flat = where[:, -1] * bins + index
    return torch.bincount(flat, minlength=n_features * bins).view(n_features, bins)


@torch.no_grad()
def summarise(
    model: Any,
    sae: Any,
    windows: Tensor,
    *,
    layer: int,
    hook_point: HookPoint,
    settings: Settings,
    progress: bool = True,
) -> FeatureSummary:
    """Encode every window (in batches) and keep the statistics of all ``sae.cfg.d_sae`` latents."""
    n_features, span, k = int(sae.cfg.d_sae), windows.shape[1] - 1, settings.top_k
    maximum = torch.zeros(n_features)
    active = torch.zeros(n_features)
    total = torch.zeros(n_features, dtype=torch.float64)
    hist = torch.zeros(n_features, len(LOG10_EDGES) - 1, dtype=torch.int64)
    top_values = torch.full((n_features, k), -1.0)
    top_windows = torch.full((n_features, k), -1, dtype=torch.int64)
    top_acts = torch.zeros(n_features, k, span)
    bar = tqdm(total=windows.shape[0] * span, desc=f"SAE latents L{layer}", unit="tok", disable=not progress)
    for start in range(0, windows.shape[0], settings.batch_size):
        ids = windows[start : start + settings.batch_size]
        batch = {"input_ids": ids, "attention_mask": torch.ones_like(ids)}
        latents = encode_latents(model, sae, batch, layer=layer, hook_point=hook_point)[:, 1:].float().clamp_min(0)
        flat = latents.reshape(-1, n_features)
        maximum = torch.maximum(maximum, flat.max(0).values)
        active += (flat > 0).sum(0)
        total += flat.sum(0, dtype=torch.float64)
        hist += _histogram(flat, n_features)
        per_window = latents.amax(1).T  # (F, B)
        values, order = torch.cat([top_values, per_window], 1).topk(k, dim=1)
        numbers = torch.arange(start, start + ids.shape[0]).expand(n_features, -1)
        top_windows = torch.cat([top_windows, numbers], 1).gather(1, order)
        acts = torch.cat([top_acts, latents.permute(2, 0, 1)], 1)
        top_acts = acts.gather(1, order.unsqueeze(-1).expand(-1, -1, span))
        top_values = values
        bar.update(ids.shape[0] * span)
    bar.close()
    top_windows[top_values <= 0] = -1
    n_tokens = windows.shape[0] * span
    return FeatureSummary(
        windows=windows,
        max=maximum,
        density=active / n_tokens,
        mean=(total / n_tokens).float(),
        hist=hist,
        top_values=top_values.clamp_min(0),
        top_windows=top_windows,
        top_acts=top_acts.half(),
    )

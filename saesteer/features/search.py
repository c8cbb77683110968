"""Which SAE latents fire on a text (per token), and which separate concept-bearing from neutral texts."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from scipy.stats import rankdata
from torch import Tensor
from tqdm.auto import tqdm

from saesteer.data import sample_path
from saesteer.errors import DataError
from saesteer.features.activations import encode_latents
from saesteer.runtime.intervention import HookPoint

AXBENCH_TRAIN = sample_path("axbench/train.jsonl")
AXBENCH_CONCEPTS = sample_path("axbench/concepts.jsonl")


def sink_batch(tokenizer: Any, texts: list[str], max_tokens: int) -> dict[str, Tensor]:
    """Right-padded ids with one sink token (bos, else eos) before each text, as position 0 of the corpus
    windows is (it is dropped from every result)."""
    sink = tokenizer.bos_token_id if tokenizer.bos_token_id is not None else tokenizer.eos_token_id
    rows = [tokenizer(text, add_special_tokens=False)["input_ids"][:max_tokens] for text in texts]
    width = 1 + max(len(row) for row in rows)
    pad = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else sink
    ids = torch.full((len(rows), width), pad, dtype=torch.int64)
    mask = torch.zeros_like(ids)
    for index, row in enumerate(rows):
        ids[index, : 1 + len(row)] = torch.tensor([sink, *row], dtype=torch.int64)
        mask[index, : 1 + len(row)] = 1
    return {"input_ids": ids, "attention_mask": mask}


def text_latents(
    model: Any, tokenizer: Any, sae: Any, text: str, *, layer: int, hook_point: HookPoint, max_tokens: int = 512
) -> tuple[list[str], Tensor]:
    """The text's tokens (decoded one by one) and their (T, F) latents."""
    batch = sink_batch(tokenizer, [text], max_tokens)
    if batch["input_ids"].shape[1] < 2:
        raise DataError("The text has no tokens. Fix: pass a non-empty text.")
    latents = encode_latents(model, sae, batch, layer=layer, hook_point=hook_point)[0, 1:].float()
    ids = batch["input_ids"][0, 1:].tolist()
    return [tokenizer.decode([i]) for i in ids], latents


def pooled_latents(
    model: Any,
    tokenizer: Any,
    sae: Any,
    texts: list[str],
    *,
    layer: int,
    hook_point: HookPoint,
    batch_size: int = 8,
    max_tokens: int = 128,
    progress: bool = True,
) -> Tensor:
    """(N, F) latents max-pooled over each text's tokens (the sink excluded)."""
    pooled = []
    for start in tqdm(range(0, len(texts), batch_size), desc="texts", unit="batch", disable=not progress):
        batch = sink_batch(tokenizer, texts[start : start + batch_size], max_tokens)
        latents = encode_latents(model, sae, batch, layer=layer, hook_point=hook_point)[:, 1:].float()
        mask = batch["attention_mask"][:, 1:, None].bool()
        pooled.append(latents.masked_fill(~mask, float("-inf")).amax(1).clamp_min(0))
    return torch.cat(pooled)


@dataclass
class ConceptData:
    """Concept-bearing and neutral texts for one concept."""

    concept_id: int
    description: str
    positives: list[str]
    negatives: list[str]


def resolve_concept(concept: str, concepts_file: Path = AXBENCH_CONCEPTS) -> tuple[int, str]:
    """(id, description) of an AxBench concept given by id or by (part of) its description."""
    rows = [json.loads(line) for line in concepts_file.read_text(encoding="utf-8").splitlines() if line.strip()]
    by_id = {int(row["concept_id"]): str(row["concept"]) for row in rows}
    if concept.strip().lstrip("-").isdigit() and int(concept) in by_id:
        return int(concept), by_id[int(concept)]
    matches = [(cid, text) for cid, text in by_id.items() if concept.lower() in text.lower()]
    if len(matches) != 1:
        listing = "; ".join(f"{cid}: {text}" for cid, text in sorted(by_id.items()))
        what = "matches several concepts" if matches else "is no known concept id or description"
        raise DataError(f"{concept!r} {what}. Fix: pass one of the ids or a distinctive phrase ({listing}).")
    return matches[0]


def concept_data(concept: str, data: Path | None = None) -> ConceptData:
    """Positives (``category`` positive, the concept's id) and negatives (``category`` negative) of an AxBench
    style .jsonl (``output`` texts); the shipped AxBench sample by default."""
    path = data or AXBENCH_TRAIN
    concepts = path.with_name("concepts.jsonl") if data and path.with_name("concepts.jsonl").is_file() else None
    concept_id, description = resolve_concept(concept, concepts or AXBENCH_CONCEPTS)
    try:
        rows = [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]
    except (OSError, json.JSONDecodeError) as exc:
        raise DataError(f"Cannot read {path} ({exc}). Fix: pass an AxBench-style .jsonl with --data.") from exc
    positives = [r["output"] for r in rows if r.get("category") == "positive" and r.get("concept_id") == concept_id]
    negatives = [r["output"] for r in rows if r.get("category") == "negative"]
    if not positives or not negatives:
        raise DataError(
            f"{path} has {len(positives)} positive rows for concept {concept_id} and {len(negatives)} negative rows. "
            "Fix: rows need 'output', 'category' (positive/negative) and 'concept_id'."
        )
    return ConceptData(concept_id, description, positives, negatives)


@dataclass
class Separation:
    """Per-latent separation of positives from negatives (all (F,) tensors)."""

    auroc: Tensor
    mean_pos: Tensor
    mean_neg: Tensor

    @property
    def difference(self) -> Tensor:
        return self.mean_pos - self.mean_neg

    def ranked(self, top: int) -> list[int]:
        """Latents by AUROC, ties broken by the difference of means."""
        order = sorted(range(len(self.auroc)), key=lambda i: (-float(self.auroc[i]), -float(self.difference[i])))
        return order[:top]


def separation(positives: Tensor, negatives: Tensor) -> Separation:
    """AUROC (Mann-Whitney U with mid-ranks for ties) and means of pooled activations, per latent."""
    values = torch.cat([positives, negatives]).double().numpy()
    ranks = torch.from_numpy(rankdata(values, axis=0))
    n_pos, n_neg = positives.shape[0], negatives.shape[0]
    u = ranks[:n_pos].sum(0) - n_pos * (n_pos + 1) / 2
    return Separation((u / (n_pos * n_neg)).float(), positives.mean(0), negatives.mean(0))

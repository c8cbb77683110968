"""Train a TopK or JumpReLU SAE with sae-lens on activations harvested from a plain HF model."""

from __future__ import annotations

import hashlib
import tempfile
from collections.abc import Iterator
from dataclasses import asdict, dataclass
from typing import Any, Literal

import torch
from torch import Tensor

from saesteer.errors import ConfigError
from saesteer.models.layers import check_layer, hidden_size
from saesteer.models.loading import model_id
from saesteer.runtime.intervention import HookPoint
from saesteer.saes.activations import harvest
from saesteer.saes.corpus import PYTHON_DOCS_CHAT, load_corpus


@dataclass
class SAETrainConfig:
    """What to train; defaults give a small SAE for a ~100M model on a CPU in a few minutes."""

    layer: int
    d_sae: int = 4608
    architecture: Literal["topk", "jumprelu"] = "topk"
    k: int = 32
    l0_coefficient: float = 2.0
    tokens: int = 32_768
    steps: int = 600
    batch_size: int = 1024
    lr: float = 4e-4
    hook_point: HookPoint = "resid_post"
    corpus: str = PYTHON_DOCS_CHAT
    context: int = 128
    eval_fraction: float = 0.1
    seed: int = 0


def _batches(acts: Tensor, batch_size: int, seed: int) -> Iterator[Tensor]:
    """Endless shuffled mini-batches (a new permutation every epoch)."""
    generator = torch.Generator().manual_seed(seed)
    while True:
        order = torch.randperm(acts.shape[0], generator=generator)
        for start in range(0, acts.shape[0] - batch_size + 1, batch_size):
            yield acts[order[start : start + batch_size]]


def _training_sae(config: SAETrainConfig, d_in: int, metadata: dict[str, Any]) -> Any:
    from sae_lens import JumpReLUTrainingSAE, JumpReLUTrainingSAEConfig, TopKTrainingSAE, TopKTrainingSAEConfig
    from sae_lens.saes.sae import SAEMetadata

    # Inputs are scaled to norm sqrt(d_in) during training; sae-lens folds the scale back at the end.
    common = {"d_in": d_in, "d_sae": config.d_sae, "normalize_activations": "expected_average_only_in"}
    meta = SAEMetadata(**metadata)
    if config.architecture == "topk":
        return TopKTrainingSAE(TopKTrainingSAEConfig(**common, k=config.k, metadata=meta))
    if config.architecture == "jumprelu":
        cfg = JumpReLUTrainingSAEConfig(**common, l0_coefficient=config.l0_coefficient, metadata=meta)
        return JumpReLUTrainingSAE(cfg)
    raise ConfigError(f"Unknown SAE architecture {config.architecture!r}. Fix: use 'topk' or 'jumprelu'.")


@torch.no_grad()
def evaluate_sae(sae: Any, acts: Tensor) -> dict[str, float]:
    """Explained variance (1 - FVU), mean L0 and the fraction of latents never active on ``acts``."""
    latents = sae.encode(acts)
    recon = sae.decode(latents)
    residual = (acts - recon).pow(2).sum()
    total = (acts - acts.mean(0)).pow(2).sum()
    active = latents > 0
    return {
        "explained_variance": float(1 - residual / total),
        "l0": float(active.sum(-1).float().mean()),
        "dead_fraction": float((~active.any(0)).float().mean()),
        "eval_tokens": int(acts.shape[0]),
    }


def train_sae(model: Any, tokenizer: Any, config: SAETrainConfig, *, progress: bool = True) -> tuple[Any, dict]:
    """Harvest activations, fit with ``sae_lens.SAETrainer``, return the inference SAE and metrics."""
    from sae_lens import SAE, SAETrainer
    from sae_lens.config import LoggingConfig, SAETrainerConfig

    layer = check_layer(model, config.layer)
    if config.d_sae <= 0 or config.tokens <= config.batch_size or config.steps <= 0:
        raise ConfigError("Need d_sae > 0, steps > 0 and tokens > batch_size. Fix: adjust the SAE training config.")
    torch.manual_seed(config.seed)
    acts = harvest(
        model,
        tokenizer,
        load_corpus(config.corpus, tokenizer=tokenizer),
        layer=layer,
        n_tokens=config.tokens,
        hook_point=config.hook_point,
        context=config.context,
        progress=progress,
    )
    order = torch.randperm(acts.shape[0], generator=torch.Generator().manual_seed(config.seed))
    n_eval = max(1, int(config.eval_fraction * acts.shape[0]))
    eval_acts, train_acts = acts[order[:n_eval]], acts[order[n_eval:]]
    hook_name = f"blocks.{layer}.hook_{config.hook_point}"  # TransformerLens-style name sae-lens users know
    sae = _training_sae(config, hidden_size(model), {"model_name": model_id(model), "hook_name": hook_name})
    trainer_cfg = SAETrainerConfig(
        total_training_samples=config.steps * config.batch_size,
        train_batch_size_samples=config.batch_size,
        lr=config.lr,
        lr_end=config.lr,
        device="cpu",
        logger=LoggingConfig(log_to_wandb=False),
        dead_feature_window=max(1, config.steps // 3),
        feature_sampling_window=max(1, config.steps // 2),
        n_batches_for_norm_estimate=min(50, config.steps),
    )
    trained = SAETrainer(trainer_cfg, sae, _batches(train_acts, config.batch_size, config.seed)).fit()
    with tempfile.TemporaryDirectory() as folder:  # sae-lens's own training -> inference conversion
        trained.save_inference_model(folder)
        inference = SAE.load_from_disk(folder)
    metrics: dict[str, Any] = dict(evaluate_sae(inference, eval_acts))
    # Dead latents are counted over all training tokens: a small held-out set leaves rare latents unfired.
    metrics["dead_fraction"] = evaluate_sae(inference, train_acts)["dead_fraction"]
    metrics["train_tokens"] = int(train_acts.shape[0])
    metrics["data_hash"] = hashlib.sha256(acts.numpy().tobytes()).hexdigest()[:16]  # the exact activations used
    return inference, {"training": asdict(config), **metrics}

"""SAEs through sae-lens: load, check, train on plain HF models, and keep in the store."""

from saesteer.saes.loading import check_sae_fits, load_sae, sae_from_tensors
from saesteer.saes.training import SAETrainConfig, evaluate_sae, train_sae

__all__ = ["SAETrainConfig", "check_sae_fits", "evaluate_sae", "load_sae", "sae_from_tensors", "train_sae"]

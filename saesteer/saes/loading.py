"""Load sae-lens SAEs (local directory or release/id) and check they fit a model."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from torch import Tensor

from saesteer.errors import SAEError
from saesteer.models.layers import hidden_size


def load_sae(source: str | Path, sae_id: str | None = None, *, device: str = "cpu") -> Any:
    """An SAE from a directory in sae-lens's format (cfg.json + sae_weights.safetensors), or from a
    sae-lens release and id (needs network, e.g. ``gemma-scope-2b-pt-res-canonical``)."""
    from sae_lens import SAE

    path = Path(source).expanduser()
    if path.is_dir():
        if not (path / "cfg.json").is_file():
            raise SAEError(f"{path} has no cfg.json. Fix: pass a directory written by sae-lens (SAE.save_model).")
        return SAE.load_from_disk(path, device=device)
    if sae_id is None:
        raise SAEError(f"{source!r} is not a directory. Fix: pass an SAE directory, or a release with --sae-id.")
    try:
        return SAE.from_pretrained(str(source), sae_id, device=device)
    except (ValueError, OSError) as exc:
        raise SAEError(
            f"Cannot load SAE {source}/{sae_id}: {exc}. Fix: check the release and id (network needed)."
        ) from exc


def sae_from_tensors(cfg: dict[str, Any], state: dict[str, Tensor]) -> Any:
    """Rebuild an SAE from its sae-lens config dict and inference state dict (as the store keeps them)."""
    from sae_lens import SAE
    from sae_lens.loading.pretrained_sae_loaders import handle_config_defaulting

    cfg = handle_config_defaulting(dict(cfg))
    sae_cfg = SAE.get_sae_config_class_for_architecture(cfg["architecture"]).from_dict(cfg)
    sae = SAE.get_sae_class_for_architecture(sae_cfg.architecture())(sae_cfg)
    sae.process_state_dict_for_loading(state)
    sae.load_state_dict(state)
    return sae.eval()


def check_sae_fits(model: Any, sae: Any) -> None:
    """The SAE's input width must equal the model's hidden size."""
    width = hidden_size(model)
    if sae.cfg.d_in != width:
        raise SAEError(
            f"SAE width d_in={sae.cfg.d_in} does not match the model's hidden size {width}. "
            "Fix: use an SAE trained on this model's residual stream."
        )

"""Load (model, tokenizer) from a bundled alias, a GGUF file, a local HF directory or a hub name."""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import struct
import tempfile
from pathlib import Path
from typing import Any

import torch

from saesteer.errors import ModelNotFoundError
from saesteer.models.bundled import BUNDLED
from saesteer.models.end_markers import set_end_markers
from saesteer.paths import cache_dir

_MARKER = "saesteer_source.json"


def load_model(
    name_or_path: str | os.PathLike[str],
    *,
    dtype: torch.dtype = torch.float32,
    device: str | torch.device | None = None,
    trust_remote_code: bool = False,
) -> tuple[Any, Any]:
    """Return ``(model, tokenizer)`` in eval mode, tokenizer left-padded with a pad token, and the model's
    after_prompt markers set from the tokenizer (``models.end_markers.set_end_markers``).

    ``name_or_path`` is a bundled alias (``smollm2-135m-instruct``, ``gemma3-270m``), a ``.gguf`` file
    (converted once to a cached HF directory keyed by the file's sha256), a local HF directory, or a
    hub name (needs network). ``trust_remote_code`` stays off unless asked for.
    """
    directory = resolve_model_dir(name_or_path)
    from transformers import AutoModelForCausalLM, AutoTokenizer

    source = str(directory) if directory is not None else str(name_or_path)
    try:
        tokenizer = AutoTokenizer.from_pretrained(source, trust_remote_code=trust_remote_code)
        model: Any = AutoModelForCausalLM.from_pretrained(source, dtype=dtype, trust_remote_code=trust_remote_code)
    except OSError as exc:
        raise ModelNotFoundError(
            f"Could not load model {name_or_path!r}: {exc}. Fix: pass a bundled alias "
            f"({', '.join(BUNDLED)}), a .gguf file, a local HF directory, or a hub name while online."
        ) from exc
    prepare_tokenizer(tokenizer)
    setattr(model, "saesteer_model_id", str(name_or_path))  # noqa: B010 (nn.Module attribute)
    set_end_markers(model, tokenizer)  # after_prompt starts at the chat template's generation prompt
    if device is not None:
        model.to(device)
    model.eval()
    model.requires_grad_(False)
    return model, tokenizer


def prepare_tokenizer(tokenizer: Any) -> None:
    """Left padding (generation needs it) and a pad token (eos when the model has none)."""
    tokenizer.padding_side = "left"
    if tokenizer.pad_token is None:
        tokenizer.pad_token = tokenizer.eos_token


def resolve_model_dir(name_or_path: str | os.PathLike[str]) -> Path | None:
    """Map an alias, GGUF file or directory to a local HF directory; ``None`` means a hub name."""
    name = str(name_or_path)
    if name in BUNDLED:
        return converted_gguf_dir(BUNDLED[name].locate())
    path = Path(name).expanduser()
    if path.is_file():
        if path.suffix != ".gguf":
            raise ModelNotFoundError(
                f"{path} is a file but not a .gguf model. Fix: pass a .gguf file or an HF model directory."
            )
        return converted_gguf_dir(path)
    if path.is_dir():
        if not (path / "config.json").is_file():
            raise ModelNotFoundError(
                f"{path} has no config.json, so it is not an HF model directory. "
                "Fix: pass the directory that holds config.json and the weights, or a .gguf file."
            )
        return path
    if name.count("/") == 1 and not name.startswith((".", "/", "~")):
        return None  # hub name: transformers downloads it (users who are online)
    raise ModelNotFoundError(
        f"Unknown model {name!r}: not a bundled alias, an existing path or a hub name (org/model). "
        f"Fix: use one of {', '.join(BUNDLED)}, a .gguf file, an HF directory, or an org/model hub name."
    )


def file_sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for block in iter(lambda: handle.read(1 << 22), b""):
            digest.update(block)
    return digest.hexdigest()


def converted_gguf_dir(gguf_path: Path) -> Path:
    """Dequantize a GGUF file once into a float32 HF directory in the cache, keyed by the file's hash and the
    transformers version that converts it (environments with different transformers, such as the vLLM one,
    never read each other's conversions: GGUF dequantisation differs between releases)."""
    import transformers
    from transformers import AutoModelForCausalLM, AutoTokenizer

    sha = file_sha256(gguf_path)
    target = cache_dir("models") / f"{sha[:20]}-transformers-{transformers.__version__}"
    if (target / _MARKER).is_file():
        return target

    folder, filename = str(gguf_path.parent), gguf_path.name
    try:
        tokenizer = AutoTokenizer.from_pretrained(folder, gguf_file=filename)
        model: Any = AutoModelForCausalLM.from_pretrained(folder, gguf_file=filename, dtype=torch.float32)
    except (ValueError, KeyError, IndexError, TypeError, RuntimeError, OSError, struct.error) as exc:
        raise ModelNotFoundError(
            f"{gguf_path} is not a readable GGUF model ({type(exc).__name__}: {str(exc)[:200]}). "
            "Fix: check the file is complete (re-download it) and that transformers supports its architecture."
        ) from exc
    # A GGUF-loaded model refuses save_pretrained until its quantizer bookkeeping is dropped.
    model.hf_quantizer = None
    if hasattr(model.config, "quantization_config"):
        del model.config.quantization_config
    model.config.architectures = [type(model).__name__]
    staging = Path(tempfile.mkdtemp(prefix=".convert-", dir=target.parent))
    try:
        model.save_pretrained(staging)
        tokenizer.save_pretrained(staging)
        (staging / _MARKER).write_text(
            json.dumps({"gguf": str(gguf_path), "sha256": sha, "transformers": transformers.__version__})
        )
        try:
            staging.rename(target)
        except OSError:
            if not (target / _MARKER).is_file():  # not a concurrent conversion that won the race
                raise
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return target


def model_fingerprint(model: Any) -> str:
    """A short stable id of a model's config and weights (for provenance records)."""
    digest = hashlib.sha256(model.config.to_json_string(use_diff=False).encode())
    for name, tensor in sorted(model.state_dict().items())[:8]:
        digest.update(name.encode())
        digest.update(tensor.detach().float().flatten()[:256].cpu().numpy().tobytes())
    return digest.hexdigest()[:16]


def model_id(model: Any) -> str:
    """The name the model was loaded by (alias, path or hub name)."""
    return str(getattr(model, "saesteer_model_id", None) or getattr(model, "name_or_path", "") or type(model).__name__)

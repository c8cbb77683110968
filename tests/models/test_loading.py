from __future__ import annotations

from pathlib import Path

import pytest
import torch

from saesteer.errors import ModelNotFoundError
from saesteer.models import BUNDLED, load_model
from saesteer.models.loading import converted_gguf_dir, resolve_model_dir


def test_bundled_alias_loads_real_weights_and_generates_sensible_text(smollm2):
    model, tokenizer = smollm2
    assert type(model).__name__ == "LlamaForCausalLM"
    assert model.config.hidden_size == 576 and model.config.num_hidden_layers == 30
    assert tokenizer.padding_side == "left" and tokenizer.pad_token is not None
    batch = tokenizer(["The capital of France is"], return_tensors="pt")
    out = model.generate(**batch, max_new_tokens=4, do_sample=False)
    assert "Paris" in tokenizer.decode(out[0, batch["input_ids"].shape[1] :])


def test_gguf_file_and_local_directory_resolve_to_the_same_cached_conversion(smollm2):
    gguf = BUNDLED["smollm2-135m-instruct"].locate()
    directory = converted_gguf_dir(gguf)
    assert resolve_model_dir(str(gguf)) == directory
    assert resolve_model_dir(directory) == directory
    model, _ = load_model(directory)
    reference, tokenizer = smollm2
    ids = tokenizer(["Hello there"], return_tensors="pt")["input_ids"]
    with torch.no_grad():
        assert torch.equal(model(ids).logits, reference(ids).logits)


def test_hub_names_are_left_to_transformers():
    assert resolve_model_dir("HuggingFaceTB/SmolLM2-135M-Instruct") is None


@pytest.mark.parametrize("name", ["no-such-model", "./missing/dir", "a/b/c"])
def test_unknown_model_name_names_the_fix(name):
    with pytest.raises(ModelNotFoundError, match="smollm2-135m-instruct"):
        resolve_model_dir(name)


def test_non_gguf_file_and_directory_without_config_are_rejected(tmp_path: Path):
    text = tmp_path / "weights.bin"
    text.write_text("x")
    with pytest.raises(ModelNotFoundError, match=r"not a \.gguf"):
        resolve_model_dir(text)
    with pytest.raises(ModelNotFoundError, match=r"config\.json"):
        resolve_model_dir(tmp_path)


@pytest.mark.parametrize("content", [b"\x00" * 64, b"GGUF\x03\x00\x00\x00garbage"])
def test_malformed_gguf_model_files_are_clear_errors(tmp_path: Path, content: bytes):
    path = tmp_path / "model.gguf"
    path.write_bytes(content)
    with pytest.raises(ModelNotFoundError, match="not a readable GGUF"):
        load_model(path)

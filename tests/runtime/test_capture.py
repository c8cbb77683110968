"""Readers: capture, reading() with an early stop, the one tuple unwrap, and readers inside steer()."""

from __future__ import annotations

import pytest
import torch

from saesteer.models.layers import decoder_layers
from saesteer.runtime import hidden_of, reading, steer, with_hidden
from saesteer.runtime.capture import capture
from tests.conftest import chat_batch, hook_count


def test_capture_matches_hidden_states_and_removes_hooks(smollm2):
    model, tokenizer = smollm2
    batch = chat_batch(tokenizer, ["Hello there", "What is the weather like today?"])
    with torch.no_grad():
        reference = model(**batch, output_hidden_states=True).hidden_states
    hooks = hook_count(model)  # transformers keeps its own output-capturing hooks installed
    got = capture(model, batch, [3, 8])
    torch.testing.assert_close(got[3], reference[4])
    torch.testing.assert_close(got[8], reference[9])
    pre = capture(model, batch, [8], hook_point="resid_pre")
    torch.testing.assert_close(pre[8], reference[8])
    assert hook_count(model) == hooks


def _count_blocks(model):
    """Forward pre-hooks that count which decoder layers ran."""
    ran: list[int] = []
    handles = [
        block.register_forward_pre_hook(lambda m, a, i=i: ran.append(i))
        for i, block in enumerate(decoder_layers(model))
    ]
    return ran, handles


@pytest.mark.parametrize("stop", [True, False])
def test_reading_stops_after_the_deepest_layer_only_when_asked(smollm2, stop):
    model, tokenizer = smollm2
    batch = chat_batch(tokenizer, ["Hello there"])
    seen: dict[int, torch.Tensor] = {}
    ran, handles = _count_blocks(model)
    after = []
    try:
        with torch.no_grad(), reading(model, [6, -27, 2], seen.__setitem__, stop=stop) as layers:
            out = model(**batch, use_cache=False)
            after.append(out)
    finally:
        for handle in handles:
            handle.remove()
    assert layers == [2, 3, 6] and sorted(seen) == [2, 3, 6]  # negative layers count from the end
    assert ran == list(range(7 if stop else 30))  # the rest of the model was skipped
    assert len(after) == (0 if stop else 1)  # a stopped forward ends the block quietly
    assert hook_count(model) == 0


def test_readers_entered_inside_steer_see_the_edited_states(smollm2):
    model, tokenizer = smollm2
    batch = chat_batch(tokenizer, ["Hello there"])
    vector = torch.ones(576)
    plain = capture(model, batch, [10])[10]
    seen: dict[int, torch.Tensor] = {}
    with torch.no_grad(), steer(model, vector, layer=10, alpha=2.0), reading(model, [10], seen.__setitem__):
        model(**batch, use_cache=False)
    torch.testing.assert_close(seen[10] - plain, torch.full_like(plain, 2.0), atol=1e-4, rtol=0)


def test_one_unwrap_for_tensor_and_tuple_outputs():
    hidden, other = torch.zeros(1, 2, 3), torch.ones(1)
    assert hidden_of(hidden) is hidden and hidden_of((hidden, other)) is hidden
    edited = hidden + 1
    assert with_hidden(hidden, edited) is edited
    wrapped = with_hidden((hidden, other), edited)
    assert isinstance(wrapped, tuple) and wrapped[0] is edited and wrapped[1] is other


def test_steer_and_readers_handle_transformers_4_tuple_outputs(smollm2):
    """Decoder layers of transformers 4.x return (hidden, ...): steering and reading must edit/see the same."""
    model, tokenizer = smollm2
    batch = chat_batch(tokenizer, ["Hello there", "Why?"])
    block = decoder_layers(model)[10]
    vector = torch.randn(576, generator=torch.Generator().manual_seed(0))
    with torch.no_grad(), steer(model, vector, layer=10, alpha=3.0):
        expected = model(**batch).logits
    seen: dict[int, torch.Tensor] = {}
    as_tuple = block.register_forward_hook(lambda m, a, output: (output, "extra"))  # before steer's hook
    try:
        with torch.no_grad(), steer(model, vector, layer=10, alpha=3.0), reading(model, [10], seen.__setitem__):
            back = block.register_forward_hook(lambda m, a, output: output[0] if output[1] == "extra" else None)
            try:
                got = model(**batch).logits
            finally:
                back.remove()
    finally:
        as_tuple.remove()
    assert isinstance(seen[10], torch.Tensor)
    assert torch.equal(got, expected)

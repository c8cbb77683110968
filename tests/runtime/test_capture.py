from __future__ import annotations

import torch

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

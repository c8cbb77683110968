"""The one generation service: end-of-sequence rules, per-step readers, first-step logits, sampling, batching."""

from __future__ import annotations

import pytest
import torch

from saesteer.data.chat import chat_prompt, encode
from saesteer.generation import complete, cut_at_eos, eos_ids, generate, valid_steps
from saesteer.runtime.capture import capture
from saesteer.vectors import SteeringVector

PROMPTS = ["Name a colour.", "Write one sentence about the sea and the wind at night.", "Count to three."]


def test_valid_steps_stop_after_the_step_that_produced_eos():
    generated = torch.tensor([[5, 2, 2, 2], [5, 6, 7, 8]])
    assert valid_steps(generated, {2}, 4).tolist() == [[True, True, False, False], [True] * 4]
    assert valid_steps(generated, {2}, 3).shape == (2, 3)  # generate stopped before max_new_tokens


def test_cut_at_eos_keeps_the_eos_and_drops_padding_only_when_asked():
    assert cut_at_eos([4, 5, 2, 0, 0], {2}) == [4, 5, 2]
    assert cut_at_eos([4, 0, 5], {2}) == [4, 0, 5]  # the bench's token count: no EOS, every token
    assert cut_at_eos([4, 0, 5], {2}, pad=0) == [4, 5]  # PSR's response ids: padding dropped


def test_eos_ids_join_the_generation_config_and_the_tokenizer(smollm2):
    model, tokenizer = smollm2
    found = eos_ids(model, tokenizer)
    configured = model.generation_config.eos_token_id
    assert tokenizer.eos_token_id in found
    assert set(configured if isinstance(configured, list) else [configured]) <= found
    assert eos_ids(object(), object()) == set()


def test_readers_see_each_step_before_steering_and_mark_steps_after_eos(smollm2):
    model, tokenizer = smollm2
    done = complete(model, tokenizer, PROMPTS, max_new_tokens=6, batch_size=3, read_layers=[8, 9])
    steps = done.reads[8].shape[1]
    assert done.reads[8].shape == (3, steps, model.config.hidden_size) and done.read_valid.shape == (3, steps)
    eos = eos_ids(model, tokenizer)
    for row, ids in enumerate(done.ids):  # a step is valid up to and including the one that produced EOS
        assert int(done.read_valid[row].sum()) == min(len(cut_at_eos(ids, eos)), steps)
    batch = encode(tokenizer, [chat_prompt(tokenizer, p) for p in PROMPTS], templated=True)
    prefill = capture(model, dict(batch), [8])[8][:, -1]
    close = {"rtol": 1e-4, "atol": 1e-4}  # capture runs without the KV cache: tiny kernel differences
    torch.testing.assert_close(done.reads[8][:, 0], prefill, **close)  # step 0 reads the last prompt token
    vector = SteeringVector(torch.ones(model.config.hidden_size) * 4, layer=8, positions="all")
    steered = complete(model, tokenizer, PROMPTS, max_new_tokens=1, steering=vector, batch_size=3, read_layers=[8, 9])
    torch.testing.assert_close(steered.reads[8][:, 0], done.reads[8][:, 0])  # read before the edit at its layer
    assert not torch.allclose(steered.reads[9][:, 0], done.reads[9][:, 0])  # ... and seen downstream


def test_reads_of_several_batches_are_padded_with_invalid_zero_steps(smollm2):
    model, tokenizer = smollm2
    done = complete(model, tokenizer, PROMPTS, max_new_tokens=8, batch_size=2, read_layers=[4])
    one = complete(model, tokenizer, PROMPTS[2:], max_new_tokens=8, batch_size=1, read_layers=[4])
    steps = one.reads[4].shape[1]
    assert done.reads[4].shape[0] == 3 and done.reads[4].shape[1] >= steps
    assert not done.read_valid[2, steps:].any() and torch.equal(done.reads[4][2, steps:], done.reads[4][2, steps:] * 0)
    torch.testing.assert_close(done.reads[4][2, :steps], one.reads[4][0])  # the last batch is that prompt alone


def test_first_logits_are_the_last_prompt_position_and_texts_match_generate(smollm2):
    model, tokenizer = smollm2
    done = complete(model, tokenizer, PROMPTS, max_new_tokens=5, batch_size=2, logits=True)
    assert done.texts == generate(model, tokenizer, PROMPTS, max_new_tokens=5, batch_size=2)
    assert done.first_logits.shape == (3, model.config.vocab_size)
    assert done.first_logits.argmax(dim=-1).tolist() == [ids[0] for ids in done.ids]  # greedy first token


def test_sampling_is_seeded_and_differs_from_greedy(smollm2):
    model, tokenizer = smollm2
    options = {"max_new_tokens": 12, "batch_size": 3, "sampling": {"temperature": 1.5, "top_p": 1.0}}
    first = complete(model, tokenizer, PROMPTS, seed=7, **options)
    again = complete(model, tokenizer, PROMPTS, seed=7, **options)
    greedy = complete(model, tokenizer, PROMPTS, max_new_tokens=12, batch_size=3)
    assert first.ids == again.ids and first.ids != greedy.ids


class _Encoded(Exception):
    """Raised by the stand-in tokenizer once it has seen the encode options."""


def test_templated_option_controls_special_tokens(smollm2):
    _, tokenizer = smollm2

    class Plain:
        """The tokenizer without its chat template and with a BOS it adds by default."""

        chat_template = None
        pad_token_id = tokenizer.pad_token_id

        def __call__(self, texts, **kwargs):
            self.special = kwargs["add_special_tokens"]
            raise _Encoded

    plain = Plain()
    for templated, special in ((None, True), (True, False)):
        with pytest.raises(_Encoded):
            complete(None, plain, ["hi"], templated=templated)
        assert plain.special is special  # CorrSteer's rule (templated=task.chat) skips the BOS

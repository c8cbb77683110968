"""Which positions each policy touches: unit cases and a real batched, left-padded, KV-cached generate."""

from __future__ import annotations

import pytest
import torch

from saesteer.data.chat import chat_prompt, instruction_end_markers
from saesteer.errors import ConfigError, DataError
from saesteer.models.end_markers import end_of_turn_markers, set_end_markers
from saesteer.runtime import Intervention, steer
from saesteer.runtime.positions import (
    AfterInstruction,
    AllTokens,
    ExplicitMask,
    LastPromptAndGenerated,
    PromptInfo,
    PromptPrefixSuffix,
    after_prompt,
    parse_positions,
)
from tests.conftest import chat_batch


def info(ids: list[list[int]], pad: int = 0) -> PromptInfo:
    tensor = torch.tensor(ids)
    return PromptInfo(input_ids=tensor, valid=tensor != pad, end_markers=((9,),))


def on(mask: torch.Tensor) -> list[list[int]]:
    return [row.nonzero().flatten().tolist() for row in mask]


def test_prefix_suffix_caps_at_prompt_length_like_prosv():
    prompt = info([[0, 0, 0, 5, 6, 7], [1, 2, 3, 4, 5, 6], [0, 0, 0, 0, 0, 8]])
    assert on(PromptPrefixSuffix(2, 2).prompt_mask(prompt)) == [[3, 4, 5], [0, 1, 4, 5], [5]]
    assert on(PromptPrefixSuffix(4, 0).prompt_mask(prompt)) == [[3, 4, 5], [0, 1, 2, 3], [5]]


def test_after_instruction_steers_from_the_last_markers_last_token_on_like_caa_from_pos():
    # CAA: from_pos = find_instruction_end_postion (the marker's last token); add where position >= from_pos
    prompt = info([[0, 9, 5, 9, 6, 7], [9, 2, 3, 4, 5, 6]])
    assert on(AfterInstruction().prompt_mask(prompt)) == [[3, 4, 5], [0, 1, 2, 3, 4, 5]]
    sequence = AfterInstruction(end_markers=((5, 9), (3, 4)))
    assert on(sequence.prompt_mask(info([[0, 5, 9, 6, 7], [1, 3, 4, 5, 6]]))) == [[2, 3, 4], [2, 3, 4]]


def test_a_row_without_the_marker_is_a_data_error_not_a_silently_unsteered_row():
    prompt = info([[0, 9, 5, 9, 6, 7], [1, 2, 3, 4, 5, 6]])
    with pytest.raises(DataError, match=r"row\(s\) \[1\].*Fix: pass --end-marker"):
        AfterInstruction().prompt_mask(prompt)
    with pytest.raises(ConfigError, match="--end-marker"):
        AfterInstruction(end_markers=()).prompt_mask(prompt)


def steered_tokens(tokenizer, text: str, policy: AfterInstruction) -> list[str]:
    ids = tokenizer(text, add_special_tokens=False, return_tensors="pt")["input_ids"]
    mask = policy.prompt_mask(PromptInfo(input_ids=ids, valid=torch.ones_like(ids, dtype=torch.bool), end_markers=()))
    return [t for t, keep in zip(tokenizer.convert_ids_to_tokens(ids[0]), mask[0], strict=True) if keep]


def test_default_marker_is_the_chat_templates_generation_prompt_on_smollm2(smollm2):
    model, tokenizer = smollm2
    marker = end_of_turn_markers(model)
    assert [tokenizer.convert_ids_to_tokens(list(m)) for m in marker] == [["<|im_start|>", "ass", "istant", "Ċ"]]
    prompt = chat_prompt(tokenizer, "Is the sky blue?") + "("  # CAA's A/B prompt ends at "("
    # the generation prompt's last token (CAA's from_pos) and the answer's "(", not "\n<|im_start|>assistant"
    assert steered_tokens(tokenizer, prompt, AfterInstruction(marker)) == ["Ċ", "("]
    assert steered_tokens(tokenizer, prompt, after_prompt(tokenizer)) == ["Ċ", "("]


def test_a_text_end_marker_is_matched_by_its_token_ids_in_the_prompt(smollm2):
    _, tokenizer = smollm2
    llama2 = "[INST] Is the sky blue? [/INST] ("  # CAA's own Llama-2-chat frame, no special tokens
    assert steered_tokens(tokenizer, llama2, after_prompt(tokenizer, "[/INST]")) == ["]", "Ġ("]
    assert steered_tokens(tokenizer, "[/INST] (", after_prompt(tokenizer, "[/INST]")) == ["]", "Ġ("]
    with pytest.raises(DataError, match="--end-marker"):
        steered_tokens(tokenizer, llama2, after_prompt(tokenizer))  # the ChatML marker is not in this prompt


def test_plain_frame_and_template_without_generation_prompt_have_markers(smollm2, monkeypatch):
    _, tokenizer = smollm2
    original = tokenizer.chat_template
    monkeypatch.setattr(tokenizer, "chat_template", None)
    prompt = chat_prompt(tokenizer, "Is the sky blue?") + "("  # "User: ...\nAssistant: ("
    assert steered_tokens(tokenizer, prompt, after_prompt(tokenizer)) == [":", "Ġ("]
    llama2 = "{% for m in messages %}[INST] {{ m['content'] }} [/INST]{% endfor %}"  # adds no generation prompt
    monkeypatch.setattr(tokenizer, "chat_template", llama2)
    assert instruction_end_markers(tokenizer) == (tuple(tokenizer(" [/INST]", add_special_tokens=False)["input_ids"]),)
    assert steered_tokens(tokenizer, chat_prompt(tokenizer, "Hi") + " (", after_prompt(tokenizer)) == ["]", "Ġ("]
    monkeypatch.setattr(tokenizer, "chat_template", original)


def test_set_end_markers_is_what_steer_uses_by_default(smollm2):
    model, tokenizer = smollm2
    batch = tokenizer(["[INST] Hi [/INST]"], return_tensors="pt", add_special_tokens=False)
    recorder = Recorder(model.config.hidden_size, {"offset": 0})
    try:
        assert set_end_markers(model, tokenizer, "[/INST]") == after_prompt(tokenizer, "[/INST]").end_markers
        with torch.no_grad(), steer(model, Intervention(12, recorder, "after_prompt")):
            model(**batch)
    finally:
        set_end_markers(model, tokenizer)
    assert recorder.touched == {(0, batch["input_ids"].shape[1] - 1)}  # the "]" of [/INST]
    with torch.no_grad(), steer(model, Intervention(12, recorder, "after_prompt")), pytest.raises(DataError):
        model(**batch)


def test_last_prompt_token_under_right_padding():
    prompt = info([[5, 6, 0, 0], [5, 6, 7, 8]])
    assert on(LastPromptAndGenerated().prompt_mask(prompt)) == [[1], [3]]


@pytest.mark.parametrize("spec", ["f2+l2", "prompt_prefix_suffix(2, 2)", "after_prompt", "generated"])
def test_policy_names_parse(spec):
    assert parse_positions(spec).name in {"prompt_prefix_suffix", "after_prompt", "generated"}


def test_unknown_policy_names_the_choices():
    with pytest.raises(ConfigError, match="after_prompt"):
        parse_positions("everywhere")


class Recorder:
    """An operator that edits nothing and records which absolute positions each call touched."""

    rows = None

    def __init__(self, width: int, clock: dict[str, int]) -> None:
        self.width = width
        self.clock = clock  # offset of the current forward call in the KV cache, set by a model pre-hook
        self.touched: set[tuple[int, int]] = set()

    def apply(self, hidden: torch.Tensor, mask: torch.Tensor | None) -> torch.Tensor:
        rows, length = hidden.shape[:2]
        mask = torch.ones(rows, length, dtype=torch.bool) if mask is None else mask
        self.touched |= {(b, self.clock["offset"] + t) for b, t in mask.nonzero().tolist()}
        return hidden


def test_every_policy_touches_exactly_the_expected_positions_during_generate(smollm2):
    model, tokenizer = smollm2
    batch = chat_batch(tokenizer, ["Hi", "Tell me a short story about a brave cat", "Why?"])
    ids, valid = batch["input_ids"], batch["attention_mask"].bool()
    rows, prompt_len = ids.shape
    new_tokens = 4
    assert not valid[:, 0].all(), "the batch must be left-padded for this test to mean anything"
    positions = [[j for j in range(prompt_len) if valid[b, j]] for b in range(rows)]
    start = [max(j for j in positions[b] if ids[b, j] == 198 and ids[b, j - 3] == 1) for b in range(rows)]
    assert start == [prompt_len - 1] * rows  # the generation prompt's last token: <|im_start|>assistant\n
    generated = {(b, prompt_len + k) for b in range(rows) for k in range(new_tokens - 1)}
    expected = {
        "all": {(b, j) for b in range(rows) for j in positions[b]} | generated,
        "after_prompt": {(b, j) for b in range(rows) for j in positions[b] if j >= start[b]} | generated,
        "prompt_and_generated_last": {(b, prompt_len - 1) for b in range(rows)} | generated,
        "f2+l2": {(b, j) for b in range(rows) for j in positions[b][:2] + positions[b][-2:]},
        "generated": generated,
    }
    clock = {"offset": 0}

    def tick(module, args, kwargs):  # generate passes the mask over cache + new tokens
        clock["offset"] = kwargs["attention_mask"].shape[1] - kwargs["input_ids"].shape[1]

    handle = model.model.register_forward_pre_hook(tick, with_kwargs=True)
    try:
        for policy, want in expected.items():
            recorder = Recorder(model.config.hidden_size, clock)
            with steer(model, Intervention(12, recorder, policy)):
                model.generate(**batch, max_new_tokens=new_tokens, min_new_tokens=new_tokens, do_sample=False)
            assert recorder.touched == want, policy
    finally:
        handle.remove()


def test_prompt_policy_touches_every_prompt_token_at_prefill_and_no_generated_token(smollm2):
    model, tokenizer = smollm2
    batch = chat_batch(tokenizer, ["Hi", "Tell me a short story about a brave cat"])
    valid = batch["attention_mask"].bool()
    assert not valid[:, 0].all(), "the batch must be left-padded for this test to mean anything"
    assert parse_positions("prompt").steers_generated is False
    clock = {"offset": 0}

    def tick(module, args, kwargs):
        clock["offset"] = kwargs["attention_mask"].shape[1] - kwargs["input_ids"].shape[1]

    handle = model.model.register_forward_pre_hook(tick, with_kwargs=True)
    try:
        recorder = Recorder(model.config.hidden_size, clock)
        with steer(model, Intervention(12, recorder, "prompt")):
            model.generate(**batch, max_new_tokens=3, min_new_tokens=3, do_sample=False)
    finally:
        handle.remove()
    assert recorder.touched == {(b, j) for b, j in valid.nonzero().tolist()}


@pytest.mark.parametrize(
    ("spec", "prefix", "suffix"),
    [
        ("f2+l2", 2, 2),
        ("F3+L1", 3, 1),
        ("f4", 4, 0),
        ("l3", 0, 3),
        ("f0+l2", 0, 2),
        ("prompt_prefix_suffix(1,5)", 1, 5),
    ],
)
def test_prosv_forms_parse_to_prefix_suffix(spec, prefix, suffix):
    assert parse_positions(spec) == PromptPrefixSuffix(prefix, suffix)


def test_fssv_is_all_tokens():
    assert parse_positions("fssv") == parse_positions("all") == AllTokens()


@pytest.mark.parametrize("spec", ["f2+f3", "l2+f2", "f-1", "first2", "f2+l2+x", ""])
def test_malformed_prefix_suffix_specs_are_config_errors(spec):
    with pytest.raises(ConfigError, match="Fix:"):
        parse_positions(spec)


def test_explicit_mask_is_prompt_only_and_skips_padding():
    prompt = info([[0, 5, 6, 7], [1, 2, 3, 4]])
    chosen = torch.tensor([[True, True, False, True], [False, True, True, False]])
    policy = ExplicitMask(chosen)
    assert on(policy.prompt_mask(prompt)) == [[1, 3], [1, 2]] and policy.steers_generated is False
    with pytest.raises(ConfigError, match=r"\(2, 3\).*Fix:"):
        ExplicitMask(chosen[:, :3]).prompt_mask(prompt)
    assert ExplicitMask(chosen) != policy  # compared (and cached) by identity, never by tensor value


def test_explicit_mask_through_steer_touches_exactly_those_positions(smollm2):
    model, tokenizer = smollm2
    batch = chat_batch(tokenizer, ["Hi", "Tell me a short story about a brave cat"])
    valid = batch["attention_mask"].bool()
    chosen = torch.zeros_like(valid)
    chosen[0, [0, -1]] = True  # position 0 of row 0 is padding: not touched
    chosen[1, 3:6] = True
    expected = {(b, j) for b, j in (chosen & valid).nonzero().tolist()}
    assert (0, 0) not in expected
    clock = {"offset": 0}

    def tick(module, args, kwargs):
        clock["offset"] = kwargs["attention_mask"].shape[1] - kwargs["input_ids"].shape[1]

    handle = model.model.register_forward_pre_hook(tick, with_kwargs=True)
    recorder = Recorder(model.config.hidden_size, clock)
    try:
        with steer(model, Intervention(12, recorder, ExplicitMask(chosen))):
            model(**batch, use_cache=False)  # a training forward
            assert recorder.touched == expected
            recorder.touched.clear()
            model.generate(**batch, max_new_tokens=3, min_new_tokens=3, do_sample=False)
    finally:
        handle.remove()
    assert recorder.touched == expected  # prefill only: decode steps are never touched

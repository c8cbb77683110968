"""The vLLM wire format and step planning, without vLLM: entries, cache salts, payloads, refusals, token picks."""

from __future__ import annotations

import pytest
import torch

from saesteer.backends import load
from saesteer.backends.vllm.wire import (
    build_operator,
    cache_salt,
    check_prompt,
    decode_entries,
    encode_entries,
    encode_intervention,
    prepare_payload,
)
from saesteer.backends.vllm.worker import _tokens
from saesteer.errors import ConfigError, DataError
from saesteer.runtime.conditions import ProjectionAbove, when
from saesteer.runtime.intervention import Intervention
from saesteer.runtime.operators import AddVector
from saesteer.runtime.positions import AfterInstruction, ExplicitMask, PromptPrefixSuffix
from saesteer.runtime.probe_operator import GatedProbe

EOT = ((2,),)


def test_entries_round_trip_and_salts_separate_every_setting() -> None:
    vector = torch.randn(16)
    entries = [encode_intervention(Intervention(3, AddVector(vector, 2.0), "after_prompt"), EOT)[1]]
    text = encode_entries(entries)
    assert decode_entries(text) == entries
    assert entries[0].markers == EOT and entries[0].alpha == 2.0
    others = [
        Intervention(3, AddVector(vector, 2.5), "after_prompt"),
        Intervention(4, AddVector(vector, 2.0), "after_prompt"),
        Intervention(3, AddVector(vector, 2.0), "all"),
        Intervention(3, AddVector(vector + 1e-3, 2.0), "after_prompt"),
    ]
    salts = {cache_salt(encode_entries([encode_intervention(i, EOT)[1]])) for i in others}
    assert len(salts | {cache_salt(text)}) == 5


def test_policies_travel_by_name_with_their_markers() -> None:
    vector = torch.randn(16)
    entry = encode_intervention(Intervention(1, AddVector(vector), AfterInstruction(end_markers=((7, 8),))), EOT)[1]
    assert entry.markers == ((7, 8),) and isinstance(entry.policy(), AfterInstruction)
    entry = encode_intervention(Intervention(1, AddVector(vector), PromptPrefixSuffix(2, 5)), EOT)[1]
    assert entry.positions == "prompt_prefix_suffix(2,5)" and entry.policy() == PromptPrefixSuffix(2, 5)
    with pytest.raises(ConfigError, match="hf backend"):
        encode_intervention(Intervention(1, AddVector(vector), ExplicitMask(torch.ones(1, 3, dtype=torch.bool))), EOT)


def test_operators_the_workers_cannot_run_are_refused_with_a_fix() -> None:
    vector = torch.randn(16)
    conditional = when([Intervention(2, AddVector(vector), "all")], ProjectionAbove(vector, 0.0, layer=1))[0]
    with pytest.raises(ConfigError, match="backend='hf'"):
        encode_intervention(conditional, EOT)
    with pytest.raises(ConfigError, match="one alpha per request"):
        encode_intervention(Intervention(2, AddVector(vector, [1.0, 2.0]), "all"), EOT)


def test_the_worker_rebuilds_the_same_operator() -> None:
    vector = torch.randn(16)
    payload, entry = encode_intervention(Intervention(2, AddVector(vector, 3.0), "all"), EOT)
    rebuilt = build_operator(prepare_payload(payload), entry.alpha)
    hidden = torch.randn(1, 4, 16)
    assert torch.equal(rebuilt.apply(hidden, None), AddVector(vector, 3.0).apply(hidden, None))
    probe = GatedProbe(torch.randn(16), torch.tensor(0.1), torch.randn(16), 2.0)
    payload, entry = encode_intervention(Intervention(2, probe, "all"), EOT)
    assert torch.equal(build_operator(payload, entry.alpha).apply(hidden, None), probe.apply(hidden, None))


def test_token_picks_follow_the_prompt_mask_then_the_generated_rule() -> None:
    mask = torch.tensor([True, False, False, True, True])
    assert _tokens(10, 0, 5, mask, True) == [10, 13, 14]  # the whole prompt in one step
    assert _tokens(10, 2, 2, mask, True) == [11]  # a chunk of it (positions 2, 3)
    assert _tokens(10, 3, 4, mask, True) == [10, 11, 12, 13]  # the last chunk runs into recomputed outputs
    assert _tokens(10, 3, 4, mask, False) == [10, 11]
    assert _tokens(0, 7, 1, mask, True) == [0] and _tokens(0, 7, 1, mask, False) == []  # decode steps


def test_an_unknown_backend_and_a_missing_vllm_are_errors_with_a_fix() -> None:
    with pytest.raises(ConfigError, match="Fix: use one of hf, vllm"):
        load("smollm2-135m-instruct", backend="tgi")
    with pytest.raises(ConfigError, match=r"install_vllm\.sh"):  # this environment has no vLLM (scripts/test.sh)
        load("smollm2-135m-instruct", backend="vllm")


def test_hf_and_vllm_default_markers_and_steered_positions_are_the_same(smollm2) -> None:
    from saesteer.backends.vllm.engine import describe_model, plan_steering
    from saesteer.data.chat import chat_prompt
    from saesteer.models.end_markers import end_of_turn_markers, set_end_markers
    from saesteer.runtime.positions import PromptInfo

    model, tokenizer = smollm2
    served = describe_model("smollm2-135m-instruct")
    assert served.markers == end_of_turn_markers(model) == ((1, 520, 9531, 198),)  # <|im_start|>assistant\n
    ids = tokenizer(chat_prompt(tokenizer, "Hi") + "(", add_special_tokens=False, return_tensors="pt")["input_ids"]
    vector = torch.randn(served.shape.width)
    for marker in (None, "assistant"):
        engine = type("Engine", (), {"backend": "vllm"})()  # what set_end_markers sees of a VLLMModel
        markers = set_end_markers(engine, tokenizer, marker)
        assert engine.end_markers == markers
        entry = plan_steering(vector, served.shape, engine.end_markers, layer=3, positions="after_prompt")[1][0]
        worker = entry.policy().prompt_mask(PromptInfo(ids, torch.ones_like(ids, dtype=torch.bool), ()))
        hf = AfterInstruction(markers).prompt_mask(PromptInfo(ids, torch.ones_like(ids, dtype=torch.bool), ()))
        assert torch.equal(worker, hf) and worker[0].nonzero().flatten().tolist()[0] == ids.shape[1] - 2 - (
            marker is not None
        )


def test_a_prompt_without_the_marker_fails_on_the_client_before_the_engine() -> None:
    entry = encode_intervention(Intervention(1, AddVector(torch.randn(16)), "after_prompt"), ((7, 8),))[1]
    check_prompt([entry], [1, 7, 8, 3])
    with pytest.raises(DataError, match="--end-marker"):
        check_prompt([entry], [1, 2, 3])

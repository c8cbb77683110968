"""vLLM-steered greedy outputs equal the HF runtime's token for token (same model, operator, site, alpha; float32):
every position policy, every operator kind, mixed batches, chunked prefill, prefix caching, preemption."""

from __future__ import annotations

from typing import Any

import pytest
import torch

from saesteer.generation import complete, cut_at_eos, eos_ids
from saesteer.runtime.ablation import AblateDirection
from saesteer.runtime.intervention import Intervention
from saesteer.runtime.operators import AddVector
from saesteer.runtime.probe_operator import GatedProbe
from saesteer.runtime.sae_edit import LatentEdit, SAEEdit
from saesteer.vectors import SteeringVector

PROMPTS = [
    "Describe the weather in a mountain village.",
    "What do you think of the new library downtown?",
    "Give me one tip for learning to cook.",
    "Write a sentence about trains.",
]
TOKENS = 24
POLICIES = ["all", "after_prompt", "prompt_and_generated_last", "prompt_prefix_suffix(2,3)", "prompt", "generated"]


def direction(seed: int, norm: float = 6.0) -> torch.Tensor:
    generator = torch.Generator().manual_seed(seed)
    vector = torch.randn(576, generator=generator)
    return vector / vector.norm() * norm


def same(engine: Any, hf: tuple[Any, Any], prompts: list[str], **options: Any) -> tuple[list[str], list[str]]:
    """(vLLM texts, HF texts), asserting the generated ids agree through the first EOS."""
    model, tokenizer = hf
    eos = eos_ids(model, tokenizer)
    ours = engine.complete(prompts, max_new_tokens=TOKENS, **options)
    reference = complete(model, tokenizer, prompts, max_new_tokens=TOKENS, **options)
    for row, (a, b) in enumerate(zip(ours.ids, reference.ids, strict=True)):
        assert cut_at_eos(a, eos) == cut_at_eos(b, eos), f"row {row}: {ours.texts[row]!r} != {reference.texts[row]!r}"
    return ours.texts, reference.texts


@pytest.fixture(scope="module")
def unsteered(engine: Any) -> list[str]:
    return list(engine.complete(PROMPTS, max_new_tokens=TOKENS).texts)


def test_unsteered_outputs_equal_the_hf_reference(engine: Any, smollm2: Any) -> None:
    same(engine, smollm2, PROMPTS)


@pytest.mark.parametrize("positions", POLICIES)
def test_every_position_policy_matches_hf_and_changes_the_output(
    engine: Any, smollm2: Any, unsteered: list[str], positions: str
) -> None:
    vector = SteeringVector(direction(1, 8.0), layer=12, positions=positions)
    before = engine.steered_tokens()
    texts, _ = same(engine, smollm2, PROMPTS, steering=vector, alpha=1.0)
    assert engine.steered_tokens() > before
    assert texts != unsteered, f"{positions}: steering changed nothing, so the comparison proves nothing"


@pytest.mark.parametrize("point", ["resid_pre", "attn_out", "mlp_out"])
def test_every_hook_point_matches_hf(engine: Any, smollm2: Any, unsteered: list[str], point: str) -> None:
    steering = [Intervention(9, AddVector(direction(2, 6.0), 1.0), "all", point)]  # type: ignore[arg-type]
    texts, _ = same(engine, smollm2, PROMPTS, steering=steering)
    assert texts != unsteered


def test_layer_zero_input_is_the_embedding_stream(engine: Any, smollm2: Any, unsteered: list[str]) -> None:
    steering = [Intervention(0, AddVector(direction(3, 2.0), 1.0), "all", "resid_pre")]
    texts, _ = same(engine, smollm2, PROMPTS, steering=steering)
    assert texts != unsteered


def test_probe_ablation_and_sae_edit_operators_match_hf(
    engine: Any, smollm2: Any, smollm2_sae: Any, unsteered: list[str]
) -> None:
    w = direction(4, 1.0)
    probe = [Intervention(10, GatedProbe(w, torch.tensor(3.0), direction(5, 1.0), 3.0), "after_prompt")]
    assert same(engine, smollm2, PROMPTS, steering=probe)[0] != unsteered
    ablation = [Intervention(i, AblateDirection(direction(6)), "all", "resid_pre") for i in range(4, 20)]
    same(engine, smollm2, PROMPTS, steering=ablation)
    sae, _ = smollm2_sae
    edit = [Intervention(8, SAEEdit(sae, [LatentEdit(int(sae.cfg.d_sae) // 3, "set", 40.0)]), "all")]
    assert same(engine, smollm2, PROMPTS, steering=edit)[0] != unsteered


def test_a_mixed_batch_gives_every_request_its_own_vector_or_alpha(engine: Any, smollm2: Any) -> None:
    """One continuous batch: unsteered rows, rows with distinct vectors, rows sharing a vector at distinct alphas."""
    model, tokenizer = smollm2
    prompts = PROMPTS * 2
    vectors = [direction(10 + i % 3, 7.0) for i in range(len(prompts))]
    alphas = [0.0, 1.0, 0.5, 1.5, 1.0, 0.0, 2.0, 1.0]
    steerings = [
        None if a == 0.0 else Intervention(11, AddVector(v, a), "after_prompt")
        for v, a in zip(vectors, alphas, strict=True)
    ]
    ours = engine.complete(prompts, max_new_tokens=TOKENS, steerings=steerings)
    reference = complete(
        model, tokenizer, prompts, max_new_tokens=TOKENS, batch_size=len(prompts),
        steering=[Intervention(11, AddVector(torch.stack(vectors), alphas), "after_prompt")],
    )  # fmt: skip
    eos = eos_ids(model, tokenizer)
    assert [cut_at_eos(r, eos) for r in ours.ids] == [cut_at_eos(r, eos) for r in reference.ids]
    assert len(set(ours.texts)) >= 6


def test_a_prompt_split_by_chunked_prefill_matches_hf(engine: Any, smollm2: Any) -> None:
    """The fixture's engine schedules at most 64 tokens per step, so this prompt is prefilled in chunks."""
    long_prompt = "Here is a list of fruits: " + ", ".join(["apple", "pear", "plum", "fig", "kiwi", "lime"] * 12)
    length = len(engine.prompt_ids([long_prompt])[0])
    assert length > 2 * 64
    for positions in ("after_prompt", "prompt_prefix_suffix(3,5)", "prompt_and_generated_last", "all"):
        vector = SteeringVector(direction(20, 8.0), layer=12, positions=positions)
        same(engine, smollm2, [long_prompt, PROMPTS[0]], steering=vector)


def test_prefix_caching_never_reuses_kv_across_steerings(engine: Any, smollm2: Any) -> None:
    """The same prompt unsteered, steered, unsteered, then steered at another alpha: each time the reference."""
    model, tokenizer = smollm2
    prompt = ["Tell me about the history of bread, " + "in great detail, " * 8 + "please."]
    vector = SteeringVector(direction(30, 9.0), layer=10, positions="all")
    plain = complete(model, tokenizer, prompt, max_new_tokens=TOKENS).texts
    steered = complete(model, tokenizer, prompt, max_new_tokens=TOKENS, steering=vector).texts
    stronger = complete(model, tokenizer, prompt, max_new_tokens=TOKENS, steering=vector, alpha=1.5).texts
    assert len({plain[0], steered[0], stronger[0]}) == 3
    for expected, options in (
        (plain, {}),
        (steered, {"steering": vector}),
        (plain, {}),
        (stronger, {"steering": vector, "alpha": 1.5}),
        (steered, {"steering": vector}),
    ):
        assert engine.complete(prompt, max_new_tokens=TOKENS, **options).texts == expected


@pytest.mark.own_engine
def test_a_preempted_and_recomputed_request_keeps_its_positions(smollm2: Any) -> None:
    """A KV cache of four usable 32-token blocks holds two ~55-token prompts; as both grow past 64 tokens vLLM must
    preempt one and later recompute it from scratch (prompt and the tokens it had generated)."""
    from saesteer.backends.vllm import VLLMModel

    engine = VLLMModel(
        "smollm2-135m-instruct", num_gpu_blocks_override=5, block_size=32, max_model_len=96, disable_log_stats=False
    )
    try:
        vector = SteeringVector(direction(40, 8.0), layer=12, positions="after_prompt")
        prompts = [p + " Please answer in detail, with examples, and explain why." for p in PROMPTS] * 2
        alphas = [0.5 + 0.25 * i for i in range(len(prompts))]
        texts, _ = same(engine, smollm2, prompts, steering=vector, alpha=alphas)
        assert len(set(texts)) > len(PROMPTS)
        preemptions = engine.llm.llm_engine.get_metrics()
        counts = [m.value for m in preemptions if m.name.startswith("vllm:num_preemptions")]
        assert counts and sum(counts) > 0, [m.name for m in preemptions]
    finally:
        engine.close()


@pytest.mark.own_engine
def test_an_engine_core_in_its_own_process_receives_its_payloads_intact(
    smollm2: Any, smollm2_sae: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    """vLLM's default runs the engine core in another process, where utility-call arguments arrive without tensor
    types: registered vectors, directions and SAE weights must still build the same operators as in-process."""
    from saesteer.backends.vllm import VLLMModel

    monkeypatch.setenv("VLLM_ENABLE_V1_MULTIPROCESSING", "1")
    engine = VLLMModel("smollm2-135m-instruct", max_model_len=256)
    try:
        vector = SteeringVector(direction(50, 8.0), layer=12, positions="after_prompt")
        same(engine, smollm2, PROMPTS[:2], steering=vector, alpha=[1.0, 2.0])
        same(engine, smollm2, PROMPTS[2:], steering=[Intervention(6, AblateDirection(direction(51)), "all")])
        sae, _ = smollm2_sae
        edit = [Intervention(8, SAEEdit(sae, [LatentEdit(int(sae.cfg.d_sae) // 3, "set", 40.0)]), "all")]
        same(engine, smollm2, PROMPTS[:2], steering=edit)
        assert engine.steered_tokens() > 0
    finally:
        engine.close()

"""``saesteer serve`` on localhost: steered and unsteered chat completions sent concurrently through the
``openai`` client equal the HF reference; bad steering is a 4xx JSON error and the server keeps serving;
SIGTERM shuts it down."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pytest
import torch

from saesteer.generation import complete
from saesteer.store import Store
from saesteer.vectors import SteeringVector

MODEL = "smollm2-135m-instruct"
PROMPTS = ["Describe the weather in a mountain village.", "Give me one tip for learning to cook."]
TOKENS = 24


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.fixture(scope="module")
def vector() -> SteeringVector:
    generator = torch.Generator().manual_seed(7)
    direction = torch.randn(576, generator=generator)
    return SteeringVector(direction / direction.norm() * 8.0, layer=12, positions="all", model_id=MODEL)


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory, vector: SteeringVector) -> Iterator[tuple[str, Any]]:
    store = tmp_path_factory.mktemp("store")
    Store(store).save("random-l12", vector)
    port = free_port()
    env = {**os.environ, "VLLM_CPU_KVCACHE_SPACE": "1", "OMP_NUM_THREADS": "1"}
    env.pop("VLLM_ENABLE_V1_MULTIPROCESSING", None)  # the server's engine runs in its own process, as deployed
    log = (Path(store) / "server.log").open("w")
    process = subprocess.Popen(
        [sys.executable, "-m", "saesteer", "serve", "--model", MODEL, "--store", str(store), "--port", str(port),
         "--max-model-len", "1024"],
        stdout=log, stderr=subprocess.STDOUT, env=env,
    )  # fmt: skip
    base = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 300
    while True:
        try:
            with urllib.request.urlopen(f"{base}/health", timeout=2) as reply:
                if reply.status == 200:
                    break
        except OSError:
            pass
        assert process.poll() is None, (Path(store) / "server.log").read_text()[-4000:]
        assert time.monotonic() < deadline, "the server did not come up in 300 s"
        time.sleep(1)
    try:
        yield base, process
    finally:
        process.terminate()
        try:
            process.wait(timeout=90)
        finally:
            if process.poll() is None:
                process.kill()
            log.close()


def chat(base: str, prompt: str, steering: Any = None) -> str:
    import openai

    client = openai.OpenAI(base_url=f"{base}/v1", api_key="-")
    extra = {"steering": steering} if steering is not None else None
    reply = client.chat.completions.create(
        model=MODEL,
        messages=[{"role": "user", "content": prompt}],
        temperature=0.0,
        max_tokens=TOKENS,
        extra_body=extra,
    )
    return str(reply.choices[0].message.content).strip()


def test_concurrent_steered_and_unsteered_chats_equal_the_hf_reference(
    server: tuple[str, Any], smollm2: Any, vector: SteeringVector
) -> None:
    base, _ = server
    model, tokenizer = smollm2
    plain = complete(model, tokenizer, PROMPTS, max_new_tokens=TOKENS).texts
    steered = complete(model, tokenizer, PROMPTS, max_new_tokens=TOKENS, steering=vector, alpha=1.5).texts
    assert plain != steered
    jobs = [(p, None) for p in PROMPTS] + [(p, {"artifact": "random-l12", "alpha": 1.5}) for p in PROMPTS]
    jobs = jobs * 2  # the same prompt steered and unsteered in flight together: the cache salt keeps them apart
    with ThreadPoolExecutor(max_workers=len(jobs)) as pool:
        texts = list(pool.map(lambda job: chat(base, *job), jobs))
    assert texts == (plain + steered) * 2


def test_bad_steering_is_a_4xx_json_error_and_the_server_keeps_serving(server: tuple[str, Any], smollm2: Any) -> None:
    import openai

    base, process = server
    with pytest.raises(openai.NotFoundError, match="no-such-vector"):
        chat(base, PROMPTS[0], {"artifact": "no-such-vector"})
    with pytest.raises(openai.BadRequestError, match="Fix"):
        chat(base, PROMPTS[0], {"artifact": "random-l12", "positions": "sideways"})
    with pytest.raises(openai.BadRequestError, match="Fix"):
        chat(base, PROMPTS[0], {"artifact": "random-l12", "layer": 99})
    with pytest.raises(openai.BadRequestError):
        chat(base, PROMPTS[0], {"alpha": 2.0})
    model, tokenizer = smollm2
    assert chat(base, PROMPTS[0]) == complete(model, tokenizer, PROMPTS[:1], max_new_tokens=TOKENS).texts[0]
    assert process.poll() is None

"""Property-based fuzzing of every reader of untrusted input: only typed saesteer errors may escape.

Examples per target: ``SAESTEER_FUZZ_EXAMPLES`` (200 in CI; benchmarks/fuzz_readers.py runs 2,000+).
"""

from __future__ import annotations

import contextlib
import json
import os
import tempfile
from collections.abc import Callable
from pathlib import Path

import torch
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from saesteer.errors import ConfigError, DataError, StoreError
from saesteer.interop import (
    export_gguf_control_vector,
    export_layer_tensors,
    import_gguf_control_vector,
    import_layer_tensors,
)
from saesteer.recipes import load_recipe
from saesteer.store.blobs import read_blob, write_blob

EXAMPLES = int(os.environ.get("SAESTEER_FUZZ_EXAMPLES", "200"))
FUZZ = settings(max_examples=EXAMPLES, deadline=None, suppress_health_check=list(HealthCheck))


def _reference_files() -> dict[str, bytes]:
    folder = Path(tempfile.mkdtemp(prefix="saesteer-fuzz-"))
    vectors = {3: torch.randn(16), 7: torch.randn(16)}
    export_gguf_control_vector(vectors, folder / "v.gguf", model_hint="llama")
    export_layer_tensors(vectors, folder / "v.safetensors")
    write_blob(folder / "blob.safetensors", {"vector": torch.randn(16)})
    return {p.name: p.read_bytes() for p in folder.iterdir()}


REFERENCE = _reference_files()


def mutated(name: str) -> st.SearchStrategy[bytes]:
    """A real file with random byte flips, truncation or insertions, or arbitrary bytes."""
    original = REFERENCE[name]

    def apply(edits: list[tuple[int, int]], cut: int) -> bytes:
        data = bytearray(original[: max(0, len(original) - cut)])
        for position, value in edits:
            if data:
                data[position % len(data)] = value
        return bytes(data)

    edits = st.lists(st.tuples(st.integers(0, 1 << 20), st.integers(0, 255)), max_size=8)
    return st.one_of(st.builds(apply, edits, st.integers(0, len(original))), st.binary(max_size=512))


def expect_only(errors: tuple[type[Exception], ...], action: Callable[[], object]) -> None:
    """Run ``action``; the typed errors are fine, anything else fails the test."""
    with contextlib.suppress(*errors):
        action()


def check_file(data: bytes, suffix: str, action: Callable[[Path], object], errors: tuple[type[Exception], ...]) -> None:
    with tempfile.NamedTemporaryFile(suffix=suffix) as handle:
        handle.write(data)
        handle.flush()
        expect_only(errors, lambda: action(Path(handle.name)))


def check_blob(data: bytes) -> None:
    check_file(data, ".safetensors", read_blob, (StoreError,))


def check_gguf(data: bytes) -> None:
    check_file(data, ".gguf", import_gguf_control_vector, (DataError,))


def check_layer_file(data: bytes) -> None:
    check_file(data, ".safetensors", import_layer_tensors, (DataError,))


def check_recipe(text: str) -> None:
    check_file(text.encode("utf-8", "surrogatepass"), ".yaml", load_recipe, (ConfigError,))


def check_dataset(text: str) -> None:
    from saesteer.data import load_contrast_data

    check_file(text.encode("utf-8", "surrogatepass"), ".jsonl", load_contrast_data, (DataError,))


def check_catalog(data: bytes) -> None:
    from saesteer.store import Store

    with tempfile.TemporaryDirectory() as folder:
        Path(folder, "catalog.sqlite").write_bytes(data)
        expect_only((StoreError,), lambda: Store(folder).find())


def _reference_store() -> tuple[dict[str, bytes], dict[str, torch.Tensor]]:
    from saesteer.store import Store
    from saesteer.vectors import SteeringVector

    folder = Path(tempfile.mkdtemp(prefix="saesteer-fuzz-store-"))
    store = Store(folder)
    vectors = {f"v{i}": torch.full((16,), float(i)) for i in range(4)}
    for name, vector in vectors.items():
        store.save(name, SteeringVector(vector=vector, layer=int(vector[0]), config={"n": name}))
    files = {str(p.relative_to(folder)): p.read_bytes() for p in folder.rglob("*") if p.is_file()}
    return files, vectors


STORE_FILES, STORE_VECTORS = _reference_store()


def check_mutated_catalog(edits: list[tuple[int, int]], cut: int, wal: bytes) -> None:
    """A store whose catalog has byte flips or a cut (and maybe a garbage WAL) never loads a wrong vector:
    every load is either the exact stored vector or a StoreError."""
    from saesteer.store import Store

    with tempfile.TemporaryDirectory() as folder:
        for relative, data in STORE_FILES.items():
            Path(folder, relative).parent.mkdir(parents=True, exist_ok=True)
            Path(folder, relative).write_bytes(data)
        catalog = bytearray(STORE_FILES["catalog.sqlite"][: max(0, len(STORE_FILES["catalog.sqlite"]) - cut)])
        for position, value in edits:
            if catalog:
                catalog[position % len(catalog)] = value
        Path(folder, "catalog.sqlite").write_bytes(bytes(catalog))
        if wal:
            Path(folder, "catalog.sqlite-wal").write_bytes(wal)
        try:
            store = Store(folder)
        except StoreError:
            return
        for name, vector in STORE_VECTORS.items():
            try:
                loaded = store.load(name)
            except StoreError:
                continue
            assert torch.equal(loaded.vector, vector) and loaded.layer == int(vector[0]), name


def check_records(text: str) -> None:
    from saesteer.bench.records import RecordFile

    check_file(text.encode("utf-8", "surrogatepass"), ".jsonl", lambda p: RecordFile(p).read(), (DataError,))


def check_leaderboard(text: str) -> None:
    from saesteer.bench.report import load_rows

    check_file(text.encode("utf-8", "surrogatepass"), ".json", load_rows, (DataError,))


def check_task_rows(text: str) -> None:
    from saesteer.engines.psr.data import load_prompts
    from saesteer.tasks import MMLUTask

    check_file(text.encode("utf-8", "surrogatepass"), ".jsonl", lambda p: MMLUTask(p).all_samples(), (DataError,))
    check_file(text.encode("utf-8", "surrogatepass"), ".jsonl", load_prompts, (DataError,))


RECIPE_TEXT = st.one_of(
    st.text(max_size=300),
    st.dictionaries(
        st.sampled_from(
            ["job", "model", "layer", "store", "d_sae", "k", "tokens", "colour", "tasks", "methods", "train"]
        ),
        st.one_of(st.integers(), st.text(max_size=8), st.floats(allow_nan=True), st.none()),
    ).map(lambda d: "\n".join(f"{k}: {v!r}" for k, v in d.items())),
)
DATASET_TEXT = st.one_of(
    st.text(max_size=300),
    st.lists(
        st.dictionaries(
            st.sampled_from(
                [
                    "positive",
                    "negative",
                    "prompt",
                    "question",
                    "answer_matching_behavior",
                    "answer_not_matching_behavior",
                ]
            ),
            st.one_of(st.text(max_size=10), st.integers(), st.none()),
        ),
        max_size=4,
    ).map(lambda rows: "\n".join(json.dumps(r) for r in rows)),
)


@FUZZ
@given(mutated("blob.safetensors"))
def test_store_blob_reader(data: bytes) -> None:
    check_blob(data)


@FUZZ
@given(mutated("v.gguf"))
def test_gguf_control_vector_importer(data: bytes) -> None:
    check_gguf(data)


@FUZZ
@given(mutated("v.safetensors"))
def test_layer_tensor_importer(data: bytes) -> None:
    check_layer_file(data)


@FUZZ
@given(RECIPE_TEXT)
def test_recipe_loader(text: str) -> None:
    check_recipe(text)


@FUZZ
@given(DATASET_TEXT)
def test_dataset_loader(text: str) -> None:
    check_dataset(text)


@FUZZ
@given(st.binary(max_size=2048))
def test_catalog_reader(data: bytes) -> None:
    check_catalog(data)


@FUZZ
@given(
    st.lists(st.tuples(st.integers(0, 1 << 16), st.integers(0, 255)), max_size=6),
    st.one_of(st.just(0), st.integers(0, 1 << 15)),
    st.one_of(st.just(b""), st.binary(max_size=64)),
)
def test_damaged_catalog_never_gives_a_wrong_vector(edits: list[tuple[int, int]], cut: int, wal: bytes) -> None:
    check_mutated_catalog(edits, cut, wal)


ROWS_TEXT = st.one_of(
    st.text(max_size=300),
    st.lists(
        st.dictionaries(
            st.sampled_from(
                ["question", "choices", "answer", "subject", "instruction", "prompt", "task", "score", "rows"]
            ),
            st.one_of(st.text(max_size=10), st.integers(), st.none(), st.lists(st.text(max_size=4), max_size=5)),
        ),
        max_size=4,
    ).map(lambda rows: "\n".join(json.dumps(r) for r in rows)),
)


@FUZZ
@given(ROWS_TEXT)
def test_bench_record_reader(text: str) -> None:
    check_records(text)


@FUZZ
@given(st.one_of(ROWS_TEXT, ROWS_TEXT.map(lambda t: json.dumps({"rows": [t]}))))
def test_leaderboard_reader(text: str) -> None:
    check_leaderboard(text)


@FUZZ
@given(ROWS_TEXT)
def test_task_and_prompt_loaders(text: str) -> None:
    check_task_rows(text)

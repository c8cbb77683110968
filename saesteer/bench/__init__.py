"""Benchmark harness: AxBench-style concept steering, MMLU and HarmBench for every method, with leaderboards."""

from saesteer.bench.config import BenchConfig, MethodSpec
from saesteer.bench.report import load_rows, merge
from saesteer.bench.runner import BenchResult, run_bench

__all__ = ["BenchConfig", "BenchResult", "MethodSpec", "load_rows", "merge", "run_bench"]

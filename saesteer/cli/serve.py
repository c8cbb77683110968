"""``saesteer serve``: vLLM's OpenAI-compatible server for a model, steered per request from a store."""

from __future__ import annotations

import argparse
from typing import Any

from saesteer.cli.common import add_end_marker_flag, end_marker_text

EXAMPLE = """example:
  saesteer serve --model smollm2-135m-instruct --store runs/store --port 8000 --max-model-len 2048

then, from any OpenAI client:
  client = openai.OpenAI(base_url="http://127.0.0.1:8000/v1", api_key="-")
  client.chat.completions.create(
      model="smollm2-135m-instruct", messages=[{"role": "user", "content": "How was your weekend?"}],
      extra_body={"steering": {"artifact": "sentiment-l8", "alpha": 4.0}},
  )

"steering" (chat and text completions) is one object or a list: {"artifact": NAME, "alpha": A, "positions":
P, "layer": L, "hook_point": H}; only "artifact" is required (positions, layer and hook point default to the
artifact's own, alpha to 1). GET /v1/steering/artifacts lists the store's artifacts. Unknown names are 404,
bad specs 400, both with a Fix. Every other option is vLLM's (vllm serve --help), e.g. --max-model-len,
--max-num-seqs, --api-key, --tensor-parallel-size; the engine always runs eager with saesteer's worker
extension. Needs the vLLM extra (bash scripts/install_vllm.sh on CPU, pip install -e '.[vllm]' on a GPU)."""


class _PassThroughParser(argparse.ArgumentParser):
    """A subcommand parser that keeps options it does not know (vLLM's) in ``vllm_args`` instead of failing."""

    def parse_known_args(  # type: ignore[override]
        self, args: Any = None, namespace: Any = None
    ) -> tuple[argparse.Namespace, list[str]]:
        parsed, rest = super().parse_known_args(args, namespace)
        parsed.vllm_args = [*getattr(parsed, "vllm_args", []), *rest]
        return parsed, []


def add_parser(subparsers: argparse._SubParsersAction) -> None:
    parser_class = subparsers._parser_class
    subparsers._parser_class = _PassThroughParser
    try:
        serve = subparsers.add_parser(
            "serve",
            help="OpenAI-compatible vLLM server with per-request steering from a store",
            epilog=EXAMPLE,
            formatter_class=argparse.RawDescriptionHelpFormatter,
        )
    finally:
        subparsers._parser_class = parser_class
    serve.add_argument("--model", required=True, help="bundled alias, .gguf file, HF directory or hub name")
    serve.add_argument("--store", required=True, help="store directory holding the steering artifacts")
    serve.add_argument("--host", default="127.0.0.1", help="address to listen on (default 127.0.0.1)")
    serve.add_argument("--port", type=int, default=8000)
    add_end_marker_flag(serve)
    serve.add_argument("--dtype", default="float32", help="engine dtype (default float32, as the hf reference)")
    serve.set_defaults(run=run_serve, vllm_args=[])


def run_serve(args: argparse.Namespace) -> None:
    from saesteer.backends.vllm.server import serve

    serve(
        args.model,
        args.store,
        host=args.host,
        port=args.port,
        dtype=args.dtype,
        extra=args.vllm_args,
        end_marker=end_marker_text(args.end_marker),
    )

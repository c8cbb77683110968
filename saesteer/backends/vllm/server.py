"""``saesteer serve``: vLLM's OpenAI-compatible server, with a per-request ``steering`` field.

Chat and text completions accept ``"steering": {"artifact": NAME, "alpha": A, "positions": P, "layer": L,
"hook_point": H}`` (or a list of them). A pure ASGI middleware, innermost (after CORS and API-key checks),
resolves each spec against the store, registers the operator payloads on every worker once
(``collective_rpc("saesteer_register")``), and rewrites the body into what vLLM understands: the wire
entries as ``vllm_xargs["saesteer"]`` and a ``cache_salt`` derived from them, so KV computed under one
steering is never reused under another. Only the server writes ``saesteer`` extra args: the middleware
strips client-supplied ones and a guard on ``engine_client.generate`` drops any it did not write for the
request at hand (an unvalidated entry would take the engine down). Bad specs are OpenAI-shaped 4xx errors.

vLLM is imported inside functions only, so the CLI imports this module's callers without it.
"""

from __future__ import annotations

import asyncio
import dataclasses
import json
import logging
import os
import signal
from collections.abc import Awaitable, Callable, Sequence
from contextvars import ContextVar
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from saesteer.backends.vllm.engine import (
    WORKER_EXTENSION,
    ModelShape,
    ServedModel,
    describe_model,
    import_vllm,
    plan_steering,
)
from saesteer.backends.vllm.wire import (
    EXTRA_ARGS_KEY,
    Entry,
    Markers,
    Payload,
    cache_salt,
    encode_entries,
    pack_payload,
)
from saesteer.data.chat import instruction_end_markers
from saesteer.errors import ConfigError, SaesteerError, StoreError
from saesteer.runtime.intervention import HookPoint

log = logging.getLogger(__name__)

STEERED_PATHS = ("/v1/chat/completions", "/v1/completions")
ARTIFACTS_PATH = "/v1/steering/artifacts"
STEERABLE_KINDS = ("vector", "probe")
SALT_PREFIX = "saesteer-"
SPEC_FIX = (
    'Fix: send "steering" as {"artifact": NAME, "alpha": 4.0, "positions": null, "layer": null, '
    '"hook_point": null} or a list of such objects (only "artifact" is required).'
)
_ERROR_TYPES = {400: "BadRequestError", 404: "NotFoundError", 500: "InternalServerError"}
_WRITTEN: ContextVar[str | None] = ContextVar("saesteer_written", default=None)

Register = Callable[[dict[str, Payload]], Awaitable[Any]]


class SteeringSpec(BaseModel):
    """One steering object of a request."""

    model_config = ConfigDict(extra="forbid", strict=True)

    artifact: str = Field(min_length=1, description="name (or id) of a steering artifact in the server's store")
    alpha: float = Field(1.0, allow_inf_nan=False, description="strength (the artifact's multiplier)")
    positions: str | None = Field(None, description="position policy; null: the artifact's own")
    layer: int | None = Field(None, description="override the artifact's layer")
    hook_point: HookPoint | None = Field(None, description="override the artifact's hook point")

    def cache_key(self) -> tuple[Any, ...]:
        return (self.alpha, self.positions, self.layer, self.hook_point)


class ApiError(Exception):
    """An error answered to the client as OpenAI's ``{"error": {...}}`` with an HTTP status."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message

    def body(self) -> dict[str, Any]:
        kind = _ERROR_TYPES.get(self.status, "BadRequestError")
        return {"error": {"message": self.message, "type": kind, "param": "steering", "code": self.status}}


def parse_steering(value: Any) -> list[SteeringSpec]:
    """A request's ``steering`` value (null, one object or a list) as validated specs."""
    if value is None:
        return []
    items = value if isinstance(value, list) else [value]
    specs = []
    for index, item in enumerate(items):
        try:
            specs.append(SteeringSpec.model_validate(item))
        except ValidationError as exc:
            where = f"steering[{index}]" if isinstance(value, list) else "steering"
            problems = "; ".join(
                f"{'.'.join(str(p) for p in (where, *e['loc']))}: {e['msg']}" for e in exc.errors(include_url=False)
            )
            raise ApiError(400, f"Invalid steering ({problems}). {SPEC_FIX}") from exc
    return specs


class SteeringService:
    """Resolves steering specs to wire entries against a store, registering payloads on the workers once.

    Resolved entries are cached per (record id, alpha, positions, layer, hook point): a name saved again
    resolves to its new record, so the server never serves a stale artifact."""

    def __init__(self, store_root: str | os.PathLike[str], shape: ModelShape, markers: Markers, register: Register):
        from saesteer.store import Store

        self.store = Store(store_root)
        self.shape = shape
        self.markers = markers
        self._register = register
        self._registered: set[str] = set()
        self._entries: dict[tuple[Any, ...], list[Entry]] = {}
        self._lock = asyncio.Lock()

    async def rewrite(self, body: dict[str, Any]) -> str | None:
        """Turn a chat/completions body's ``steering`` into vLLM fields in place; the encoded entries (None:
        unsteered). Client-written ``vllm_xargs["saesteer"]`` is always removed."""
        steering = body.pop("steering", None)
        xargs = strip_xargs(body)
        specs = parse_steering(steering)
        if not specs:
            check_salt(body)
            return None
        if body.get("prompt_embeds") is not None:
            raise ApiError(400, "Steering needs prompt tokens, not prompt_embeds. Fix: send the prompt as text or ids.")
        entries: list[Entry] = []
        for spec in specs:
            entries += await self.entries(spec)
        encoded = encode_entries(entries)
        body["vllm_xargs"] = {**(xargs or {}), EXTRA_ARGS_KEY: encoded}
        client_salt = body.get("cache_salt")
        body["cache_salt"] = cache_salt(encoded if not client_salt else f"{encoded}\n{client_salt}")
        return encoded

    async def entries(self, spec: SteeringSpec) -> list[Entry]:
        """The wire entries of one spec (payloads registered on every worker before they are returned)."""
        record = await asyncio.to_thread(self._record, spec.artifact)
        key = (record.id, *spec.cache_key())
        async with self._lock:
            if key not in self._entries:
                payloads, entries = await asyncio.to_thread(self._plan, record.id, spec)
                new = {k: pack_payload(v) for k, v in payloads.items() if k not in self._registered}
                if new:
                    try:
                        await self._register(new)
                    except Exception as exc:
                        log.exception("registering steering payloads failed")
                        raise ApiError(
                            500,
                            f"Registering {spec.artifact!r} on the workers failed ({type(exc).__name__}: {exc}). "
                            "Fix: see the server log; the artifact may not fit this model.",
                        ) from exc
                    self._registered.update(new)
                self._entries[key] = entries
            return self._entries[key]

    def _record(self, name: str) -> Any:
        try:
            record = self.store.get(name)
        except StoreError as exc:
            raise ApiError(404, f"{exc} (GET {ARTIFACTS_PATH} lists this server's steering artifacts)") from exc
        if record.kind not in STEERABLE_KINDS:
            raise ApiError(
                400,
                f"{name!r} is a {record.kind} record, not a steering artifact. Fix: name a vector or probe record "
                f"(GET {ARTIFACTS_PATH} lists them).",
            )
        return record

    def _plan(self, record_id: str, spec: SteeringSpec) -> tuple[dict[str, Payload], list[Entry]]:
        try:
            artifact = self.store.load(record_id)
            return plan_steering(
                artifact,
                self.shape,
                self.markers,
                alpha=spec.alpha,
                positions=spec.positions,
                layer=spec.layer,
                hook_point=spec.hook_point,
            )
        except SaesteerError as exc:
            raise ApiError(400, f"Steering with {spec.artifact!r}: {exc}") from exc

    def artifacts(self) -> list[dict[str, Any]]:
        """The store's steering artifacts, the latest record per name."""
        seen: set[str] = set()
        rows = []
        for record in self.store.find():
            if record.kind not in STEERABLE_KINDS or record.name in seen:
                continue
            seen.add(record.name)
            rows.append(
                {
                    "name": record.name,
                    "kind": record.kind,
                    "method": record.method,
                    "model_id": record.model_id,
                    "layer": record.layer,
                    "hook_point": record.hook_point,
                    "positions": record.config.get("positions"),
                    "layers": record.config.get("layers"),
                    "created": record.created,
                    "id": record.id,
                }
            )
        return rows


def strip_xargs(body: dict[str, Any]) -> dict[str, Any] | None:
    """Remove a client-written ``vllm_xargs["saesteer"]``; the remaining extra args (None if none)."""
    xargs = body.get("vllm_xargs")
    if not isinstance(xargs, dict):
        return None
    xargs.pop(EXTRA_ARGS_KEY, None)
    if not xargs:
        body.pop("vllm_xargs")
        return None
    return xargs


def check_salt(body: dict[str, Any]) -> None:
    salt = body.get("cache_salt")
    if isinstance(salt, str) and salt.startswith(SALT_PREFIX):
        raise ApiError(
            400,
            f"cache_salt values starting with {SALT_PREFIX!r} are reserved for steered requests. Fix: choose "
            "another salt.",
        )


class SteeringMiddleware:
    """Pure ASGI middleware: rewrites steered chat/completions bodies, rejects ``steering`` elsewhere."""

    def __init__(self, app: Any, service: SteeringService) -> None:
        self.app = app
        self.service = service

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] != "http" or scope["method"] != "POST":
            await self.app(scope, receive, send)
            return
        raw, disconnected = await _read_body(receive)
        if disconnected:
            return
        body = _json_object(raw)
        written: str | None = None
        if body is not None:
            try:
                written, changed = await self._rewrite(_route(scope), body)
            except ApiError as exc:
                await _send_json(send, exc.status, exc.body())
                return
            except Exception as exc:  # never crash the server on one request
                log.exception("steering failed")
                error = ApiError(500, f"Steering failed ({type(exc).__name__}: {exc}). Fix: see the server log.")
                await _send_json(send, 500, error.body())
                return
            if changed:
                raw = json.dumps(body).encode()
                headers = [(k, v) for k, v in scope["headers"] if k.lower() != b"content-length"]
                scope = {**scope, "headers": [*headers, (b"content-length", str(len(raw)).encode())]}
        token = _WRITTEN.set(written)
        try:
            await self.app(scope, _replay(raw, receive), send)
        finally:
            _WRITTEN.reset(token)

    async def _rewrite(self, path: str, body: dict[str, Any]) -> tuple[str | None, bool]:
        before = ("steering" in body, _has_steering_xargs(body))
        if path in STEERED_PATHS:
            written = await self.service.rewrite(body)
            return written, written is not None or any(before)
        if before[0]:
            raise ApiError(
                400,
                f"'steering' is accepted on {' and '.join(STEERED_PATHS)} only, not on {path}. Fix: send steered "
                "requests there.",
            )
        strip_xargs(body)
        check_salt(body)
        return None, before[1]


def _route(scope: dict[str, Any]) -> str:
    path, root = str(scope.get("path", "")), str(scope.get("root_path", ""))
    return path[len(root) :] if root and path.startswith(root) else path


def _has_steering_xargs(body: dict[str, Any]) -> bool:
    xargs = body.get("vllm_xargs")
    return isinstance(xargs, dict) and EXTRA_ARGS_KEY in xargs


def _json_object(raw: bytes) -> dict[str, Any] | None:
    try:
        value = json.loads(raw) if raw else None
    except (ValueError, UnicodeDecodeError):
        return None  # not JSON: vLLM answers it as it would
    return value if isinstance(value, dict) else None


async def _read_body(receive: Any) -> tuple[bytes, bool]:
    chunks = []
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            return b"", True
        chunks.append(message.get("body", b""))
        if not message.get("more_body", False):
            return b"".join(chunks), False


def _replay(raw: bytes, receive: Any) -> Callable[[], Awaitable[dict[str, Any]]]:
    """``receive`` that yields the (rewritten) body once, then defers to the client's (disconnects)."""
    sent = False

    async def replay() -> dict[str, Any]:
        nonlocal sent
        if not sent:
            sent = True
            return {"type": "http.request", "body": raw, "more_body": False}
        message: dict[str, Any] = await receive()
        return message

    return replay


async def _send_json(send: Any, status: int, payload: dict[str, Any]) -> None:
    data = json.dumps(payload).encode()
    headers = [(b"content-type", b"application/json"), (b"content-length", str(len(data)).encode())]
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": data})


def guard_engine(engine_client: Any) -> None:
    """Drop ``saesteer`` extra args the middleware did not write for the current request, whatever the
    endpoint (an unregistered key or an unchecked layer would stop the engine)."""
    generate = engine_client.generate

    def guarded(prompt: Any, sampling_params: Any, *args: Any, **kwargs: Any) -> Any:
        extra = getattr(sampling_params, "extra_args", None)
        if isinstance(extra, dict) and EXTRA_ARGS_KEY in extra and extra[EXTRA_ARGS_KEY] != _WRITTEN.get():
            log.warning("dropped steering extra args the steering middleware did not write")
            del extra[EXTRA_ARGS_KEY]
        return generate(prompt, sampling_params, *args, **kwargs)

    engine_client.generate = guarded


def install(app: Any, service: SteeringService) -> None:
    """The steering middleware (innermost, so CORS and API keys run first) and the artifact listing."""
    from starlette.middleware import Middleware

    async def list_artifacts() -> dict[str, Any]:
        return {"object": "list", "data": await asyncio.to_thread(service.artifacts)}

    app.add_api_route(ARTIFACTS_PATH, list_artifacts, methods=["GET"], summary="steering artifacts in the store")
    app.user_middleware.append(Middleware(SteeringMiddleware, service=service))
    # vLLM's build_app already built the middleware stack (its SageMaker bootstrap does), so a middleware
    # added now would never run: rebuild it, with steering innermost.
    app.middleware_stack = app.build_middleware_stack()


# -- the server -------------------------------------------------------------------------------------------
def vllm_args(model: str, served: ServedModel, *, host: str, port: int, dtype: str, extra: Sequence[str]) -> Any:
    """vLLM's serve namespace: ``extra`` parsed by vLLM's own parser, then saesteer's settings on top."""
    from vllm.entrypoints.launchers.cli_args import make_arg_parser, validate_parsed_serve_args
    from vllm.utils.argparse_utils import FlexibleArgumentParser

    class Parser(FlexibleArgumentParser):
        def error(self, message: str) -> Any:
            raise ConfigError(
                f"vLLM option problem: {message}. Fix: pass vLLM serve options by their names (vllm serve --help "
                "lists them); --model, --host, --port and --dtype are saesteer serve's own."
            )

    args = make_arg_parser(Parser(prog="saesteer serve")).parse_args([*extra, "--dtype", dtype])
    if args.model_tag is not None:
        raise ConfigError(f"Unexpected argument {args.model_tag!r}. Fix: give the model as --model M.")
    if args.headless or args.grpc or (args.api_server_count or 1) > 1:
        raise ConfigError(
            "saesteer serve runs one HTTP API server. Fix: drop --headless, --grpc and --api-server-count."
        )
    args.model = served.source
    args.host, args.port = host, port
    args.enforce_eager = True
    args.worker_extension_cls = WORKER_EXTENSION
    if args.max_model_len is None:
        args.max_model_len = min(served.shape.context or 4096, 4096)
    if args.served_model_name is None:
        args.served_model_name = [model]
    validate_parsed_serve_args(args)
    return args


def serve(
    model: str,
    store: str | os.PathLike[str],
    *,
    host: str = "127.0.0.1",
    port: int = 8000,
    dtype: str = "float32",
    extra: Sequence[str] = (),
    end_marker: str | None = None,
) -> None:
    """Run the server until SIGINT/SIGTERM (``saesteer serve``); everything is checked before vLLM starts.
    ``end_marker`` replaces after_prompt's default end-of-instruction marker (the chat template's)."""
    import_vllm()
    root = Path(store).expanduser()
    if not (root / "catalog.sqlite").is_file():
        raise StoreError(
            f"{root} is not a saesteer store (no catalog.sqlite). Fix: pass the --store directory your artifacts "
            "were saved to (saesteer train ... --store DIR)."
        )
    from saesteer.store import Store

    Store(root)  # the layout check, before the engine starts
    served = describe_model(model)
    if end_marker is not None:
        served = dataclasses.replace(served, markers=instruction_end_markers(served.tokenizer, end_marker))
    args = vllm_args(model, served, host=host, port=port, dtype=dtype, extra=extra)
    os.environ.setdefault("VLLM_WORKER_MULTIPROC_METHOD", "spawn")  # as `vllm serve` does
    from vllm.logger import configure_logging_from_args

    configure_logging_from_args(args)
    try:
        import uvloop

        uvloop.run(_run_server(args, root, served))
    except (ValueError, RuntimeError, OSError) as exc:
        raise ConfigError(
            f"vLLM could not serve {model!r} ({type(exc).__name__}: {exc}). Fix: see the log above; check the "
            "vLLM options (e.g. --max-model-len) and that the port is free."
        ) from exc


async def _run_server(args: Any, root: Path, served: ServedModel) -> None:
    """vLLM's ``run_server`` for one API server, with steering installed into its app."""
    from vllm.entrypoints.launchers.api_server.entry import build_async_engine_client
    from vllm.entrypoints.launchers.launcher import setup_server
    from vllm.utils.system_utils import decorate_logs

    decorate_logs("APIServer", skip_if_decorated=True)

    def interrupt(*_: Any) -> None:  # SIGTERM before uvicorn installs its handlers
        raise KeyboardInterrupt("terminated")

    signal.signal(signal.SIGTERM, interrupt)
    listen_address, sock = setup_server(args, reuse_port=False)
    async with build_async_engine_client(args) as engine_client:
        shutdown = await _build_and_serve(engine_client, listen_address, sock, args, root, served)
    try:
        await shutdown
    finally:
        sock.close()


async def _build_and_serve(
    engine_client: Any, listen_address: str, sock: Any, args: Any, root: Path, served: ServedModel
) -> Any:
    """vLLM's ``build_and_serve`` plus ``install``: the app, its state, then uvicorn."""
    import vllm.envs as envs
    from vllm.entrypoints.launchers.api_server.app_state import init_app_state
    from vllm.entrypoints.launchers.app import build_app
    from vllm.entrypoints.launchers.launcher import serve_http
    from vllm.entrypoints.launchers.utils.server_utils import get_uvicorn_log_config

    uvicorn_kwargs: dict[str, Any] = {}
    log_config = get_uvicorn_log_config(args)
    if log_config is not None:
        uvicorn_kwargs["log_config"] = log_config
    supported_tasks = await engine_client.get_supported_tasks()
    if "generate" not in supported_tasks:
        raise ConfigError(f"{args.model} is not a generative model. Fix: serve a causal language model.")

    async def register(payloads: dict[str, Payload]) -> None:
        await engine_client.collective_rpc("saesteer_register", args=(payloads,))

    guard_engine(engine_client)
    await engine_client.collective_rpc("saesteer_install")
    app = build_app(args, supported_tasks, engine_client.model_config)
    install(app, SteeringService(root, served.shape, served.markers, register))
    await init_app_state(engine_client, app.state, args, supported_tasks)
    log.info("saesteer: steering from store %s on %s", root, listen_address)
    return await serve_http(
        app,
        sock=sock,
        enable_ssl_refresh=args.enable_ssl_refresh,
        host=args.host,
        port=args.port,
        log_level=args.uvicorn_log_level,
        access_log=not args.disable_uvicorn_access_log,
        timeout_keep_alive=envs.VLLM_HTTP_TIMEOUT_KEEP_ALIVE,
        ssl_keyfile=args.ssl_keyfile,
        ssl_certfile=args.ssl_certfile,
        ssl_ca_certs=args.ssl_ca_certs,
        ssl_cert_reqs=args.ssl_cert_reqs,
        ssl_ciphers=args.ssl_ciphers,
        h11_max_incomplete_event_size=args.h11_max_incomplete_event_size,
        h11_max_header_count=args.h11_max_header_count,
        **uvicorn_kwargs,
    )

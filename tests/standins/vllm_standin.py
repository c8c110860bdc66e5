"""A STAND-IN for vLLM's OpenAI server, for fast tests and the gateway's load benchmarks.

It is not a model (``vllm_protocol`` says what it answers and how it counts tokens), but it
answers like vLLM 0.32: the same routes, status codes, error shapes and stream layout — JSON
and SSE, ``n`` choices, ``stop`` with ``stop_reason``, ``finish_reason`` ``length`` only when
``max_tokens`` ran out, the usage chunk last with ``choices: []``, per-choice
``continuous_usage_stats``, the port closed while "loading" (``--startup-delay``), and vLLM's
metrics ``vllm:num_requests_running``, ``vllm:request_success_total{finished_reason}`` and
``vllm:generation_tokens_total`` (generation stops when a client leaves mid-stream). tests/vllm runs the same
contract tests against it and against real vLLM. It also serves vLLM's extra routes
(``/tokenize``, ``/detokenize``, ``/version``, profiling and cache admin) so tests can prove the
gateway hides them.

Test controls (reachable only directly, never through the gateway): ``POST /standin/config``
with ``latency`` (seconds before the first token), ``tokens_per_second`` (0 = no pacing),
``max_completion`` (the model's end-of-sequence comes after this many tokens), ``fail``
(``null``, ``"status500"``, ``"cut_stream"`` after two tokens, ``"hang"``, ``"unhealthy"``),
``hold_after`` (a stream stops after that many tokens until ``POST /standin/release``, so a
test can see what reached the client while the model is still "generating");
``GET /standin/last`` returns the last completion request as received: its body and every
header, in order (a test's proof of what the gateway forwards).

    python -m tests.standins.vllm_standin --port 8000 --served-model-name demo
"""

from __future__ import annotations

import argparse
import asyncio
import json
import time
import uuid
from collections import Counter
from typing import Any

from aiohttp import web

from tests.standins.vllm_protocol import (
    Plan,
    Refusal,
    plan,
    read_request,
    usage,
)

# An upstream 500 as vLLM would send it, with internals the gateway must never pass on.
INTERNAL_DETAIL = "Traceback (most recent call last): STANDIN-INTERNAL-DETAIL /opt/vllm/engine.py"
FINGERPRINT = "vllm-0.32.0-standin"


class StandIn:
    def __init__(self, served_model_name: str, max_completion: int, max_model_len: int) -> None:
        self.model = served_model_name
        self.max_model_len = max_model_len
        self.settings: dict[str, Any] = {
            "latency": 0.0,
            "tokens_per_second": 0.0,
            "max_completion": max_completion,
            "fail": None,
            "hold_after": None,
        }
        self.released = asyncio.Event()
        self.last: dict[str, Any] | None = None
        self.last_headers: list[tuple[str, str]] = []
        self.requests = 0
        self.running = 0
        self.finished: Counter[str] = Counter()
        self.prompt_tokens = 0
        self.generation_tokens = 0

    async def completions(self, request: web.Request) -> web.StreamResponse:
        chat = request.path.endswith("/chat/completions")
        try:
            body = json.loads(await request.read())
        except ValueError:
            body = None
        self.last, self.requests = body, self.requests + 1
        self.last_headers = list(request.headers.items())
        fail = self.settings["fail"]
        if fail == "status500":
            return web.json_response(
                {"object": "error", "message": INTERNAL_DETAIL, "type": "Internal", "code": 500},
                status=500,
            )
        if fail == "hang":
            await asyncio.sleep(3600)
        try:
            parsed = read_request(body, chat)
            outcome = plan(
                parsed, self.model, self.max_model_len, int(self.settings["max_completion"])
            )
        except Refusal as refusal:
            return web.json_response(refusal.body(), status=refusal.status)
        self.running += 1
        self.prompt_tokens += outcome.prompt_tokens
        try:
            if self.settings["latency"]:
                await asyncio.sleep(float(self.settings["latency"]))
            if parsed.stream:
                return await self._stream(request, parsed, chat, outcome)
            return await self._whole(parsed, chat, outcome)
        finally:
            self.running -= 1

    async def _whole(self, parsed: Any, chat: bool, outcome: Plan) -> web.Response:
        await self._pace(max((len(c.tokens) for c in outcome.choices), default=0))
        self._finished(outcome)
        choices = []
        for i, c in enumerate(outcome.choices):
            text = "".join(c.tokens)
            choice: dict[str, Any] = {"index": i}
            if chat:
                choice["message"] = {"role": "assistant", "content": text}
            else:
                choice["text"] = text
            choice |= {"logprobs": None, "finish_reason": c.finish_reason}
            choice["stop_reason"] = c.stop_reason
            choices.append(choice)
        return web.json_response(
            {
                "id": f"{'chatcmpl' if chat else 'cmpl'}-{uuid.uuid4().hex[:16]}",
                "object": "chat.completion" if chat else "text_completion",
                "created": int(time.time()),
                "model": self.model,
                "choices": choices,
                "system_fingerprint": FINGERPRINT,
                "usage": usage(outcome.prompt_tokens, outcome.completion_tokens),
            }
        )

    def _finished(self, outcome: Plan) -> None:
        self.generation_tokens += outcome.completion_tokens
        self.finished[_request_reason(outcome)] += 1

    async def _pace(self, tokens: int) -> None:
        tps = float(self.settings["tokens_per_second"])
        if tps > 0:
            await asyncio.sleep(tokens / tps)

    async def _stream(
        self, request: web.Request, parsed: Any, chat: bool, outcome: Plan
    ) -> web.StreamResponse:
        options = parsed.stream_options
        include = bool(options and options.include_usage)
        continuous = bool(options and options.continuous_usage_stats)
        response = web.StreamResponse(headers={"Content-Type": "text/event-stream"})
        await response.prepare(request)
        cid = f"{'chatcmpl' if chat else 'cmpl'}-{uuid.uuid4().hex[:16]}"
        created, prompt = int(time.time()), outcome.prompt_tokens
        obj = "chat.completion.chunk" if chat else "text_completion"

        async def send(choices: list[dict[str, Any]], completion: int | None) -> None:
            chunk: dict[str, Any] = {
                "id": cid,
                "object": obj,
                "created": created,
                "model": self.model,
                "choices": choices,
            }
            if completion is not None:
                chunk["usage"] = usage(prompt, completion)
            # Compact, usage last: the byte layout vLLM sends (the gateway's fast path reads it).
            data = json.dumps(chunk, separators=(",", ":")).encode()
            await response.write(b"data: " + data + b"\n\n")

        generated = 0
        try:
            if chat:
                for i in range(len(outcome.choices)):
                    delta = {"role": "assistant", "content": ""}
                    first = {"index": i, "delta": delta, "logprobs": None, "finish_reason": None}
                    await send([first], 0 if continuous else None)
            steps = max((len(c.tokens) for c in outcome.choices), default=0)
            for step in range(steps):
                if step == self.settings["hold_after"]:
                    await self.released.wait()
                if self.settings["fail"] == "cut_stream" and step == 2:
                    if request.transport is not None:
                        request.transport.close()
                    return response
                await self._pace(1)
                for i, c in enumerate(outcome.choices):
                    if step >= len(c.tokens):
                        continue
                    generated += 1
                    self.generation_tokens += 1
                    last = step == len(c.tokens) - 1
                    choice = _chunk_choice(i, c.tokens[step], chat)
                    choice["finish_reason"] = c.finish_reason if last else None
                    if last:
                        choice["stop_reason"] = c.stop_reason
                    await send([choice], step + 1 if continuous else None)
            if include:
                await send([], outcome.completion_tokens)
            await response.write(b"data: [DONE]\n\n")
            await response.write_eof()
        except (ConnectionResetError, asyncio.CancelledError):
            # The client left: generation stops here. vLLM counts no finished request for an
            # abort (request_success_total{finished_reason="abort"} stays 0), and neither does this.
            raise
        self.finished[_request_reason(outcome)] += 1
        return response

    async def health(self, _request: web.Request) -> web.Response:
        if self.settings["fail"] == "unhealthy":
            return web.Response(status=503)
        return web.Response(status=200)

    async def models(self, _request: web.Request) -> web.Response:
        return web.json_response(
            {
                "object": "list",
                "data": [
                    {
                        "id": self.model,
                        "object": "model",
                        "created": int(time.time()),
                        "owned_by": "vllm",
                        "root": "/models/secret-path",
                        "parent": None,
                        "max_model_len": self.max_model_len,
                    }
                ],
            }
        )

    async def metrics(self, _request: web.Request) -> web.Response:
        labels = f'engine="0",model_name="{self.model}"'
        lines = [
            f"vllm:num_requests_running{{{labels}}} {float(self.running)}",
            f"vllm:num_requests_waiting{{{labels}}} 0.0",
            f"vllm:prompt_tokens_total{{{labels}}} {float(self.prompt_tokens)}",
            f"vllm:generation_tokens_total{{{labels}}} {float(self.generation_tokens)}",
        ]
        for reason in ("stop", "length", "abort", "error"):
            lines.append(
                f'vllm:request_success_total{{engine="0",finished_reason="{reason}",'
                f'model_name="{self.model}"}} {float(self.finished[reason])}'
            )
        return web.Response(text="\n".join(lines) + "\n", content_type="text/plain")

    async def tokenize(self, request: web.Request) -> web.Response:
        body = await request.json()
        tokens = str(body.get("prompt", "")).split()
        return web.json_response({"tokens": list(range(len(tokens))), "count": len(tokens)})

    async def detokenize(self, request: web.Request) -> web.Response:
        body = await request.json()
        return web.json_response({"prompt": " ".join(f"t{t}" for t in body.get("tokens", []))})

    async def admin(self, _request: web.Request) -> web.Response:
        return web.json_response({"standin": "vLLM admin route reached"})

    async def configure(self, request: web.Request) -> web.Response:
        update = await request.json()
        if "hold_after" in update:  # a new hold; streams held by the last one go on
            self.released.set()
            self.released = asyncio.Event()
        self.settings.update(update)
        return web.json_response(self.settings)

    async def release(self, _request: web.Request) -> web.Response:
        self.released.set()
        return web.json_response({"released": True})

    async def last_request(self, _request: web.Request) -> web.Response:
        return web.json_response(
            {"last": self.last, "headers": self.last_headers, "requests": self.requests}
        )


def _chunk_choice(index: int, text: str, chat: bool) -> dict[str, Any]:
    if chat:
        return {"index": index, "delta": {"content": text}, "logprobs": None}
    return {"index": index, "text": text, "logprobs": None, "stop_reason": None}


def _request_reason(outcome: Plan) -> str:
    # One finished request per choice's reason counted once, as vLLM's metric counts requests.
    reasons = {c.finish_reason for c in outcome.choices}
    return "length" if reasons == {"length"} else "stop"


def create_app(
    served_model_name: str = "standin-model", max_completion: int = 64, max_model_len: int = 2048
) -> web.Application:
    s = StandIn(served_model_name, max_completion, max_model_len)
    app = web.Application()
    app.router.add_post("/v1/completions", s.completions)
    app.router.add_post("/v1/chat/completions", s.completions)
    app.router.add_get("/v1/models", s.models)
    app.router.add_get("/health", s.health)
    app.router.add_get("/metrics", s.metrics)
    app.router.add_post("/tokenize", s.tokenize)
    app.router.add_post("/detokenize", s.detokenize)
    app.router.add_get("/version", s.admin)
    for path in ("/start_profile", "/stop_profile", "/reset_prefix_cache", "/sleep", "/wake_up"):
        app.router.add_post(path, s.admin)
    app.router.add_post("/standin/config", s.configure)
    app.router.add_post("/standin/release", s.release)
    app.router.add_get("/standin/last", s.last_request)

    async def release_on_shutdown(_app: web.Application) -> None:
        s.released.set()  # a stream held when the process is stopped must not keep it alive

    app.on_shutdown.append(release_on_shutdown)
    return app


def main() -> None:
    p = argparse.ArgumentParser(description="vLLM stand-in (tests only)")
    p.add_argument("--host", default="127.0.0.1")
    p.add_argument("--port", type=int, default=8000)
    p.add_argument("--served-model-name", default="standin-model")
    p.add_argument("--max-completion", type=int, default=64)
    p.add_argument("--max-model-len", type=int, default=2048)
    p.add_argument(
        "--startup-delay",
        type=float,
        default=0.0,
        help="seconds with the port closed, as vLLM keeps it while it loads the model",
    )
    args = p.parse_args()
    if args.startup_delay > 0:
        time.sleep(args.startup_delay)
    web.run_app(
        create_app(args.served_model_name, args.max_completion, args.max_model_len),
        host=args.host,
        port=args.port,
        access_log=None,
        print=None,
    )


if __name__ == "__main__":
    main()

"""`assistant serve`: the library over HTTP, OpenAI-compatible (docs/api.md).

Imported only by that command (FastAPI and uvicorn are not loaded for the others).
The handlers are thin: they check the request and call ``Library``; ``serving.py``
holds what they share with the MCP server. One answer is generated at a time
(``serving.Generations``); searches, status and ingest jobs run beside it.
"""

from __future__ import annotations

import asyncio
import contextlib
import hmac
import ipaddress
import json
import logging
import re
import socket
import threading
import time
import uuid
from typing import Any, Literal

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, StreamingResponse
from pydantic import BaseModel, ConfigDict, Field
from starlette.exceptions import HTTPException

from .config import ConfigError, SERVER_TOKEN_ENV
from .ingest import LibraryLocked
from .library import Library, LibraryError, list_collections
from .retrieve import Filters
from .serving import Busy, Cancelled, Generations, Jobs, answer_json, ask, hits_json, history_from_turns, status_json
from .store import StoreError
from .types import Answer

__all__ = ["create_app", "serve", "check_bind", "MODEL"]

log = logging.getLogger("assistant.server")

MODEL = "assistant"  # the served collection; "assistant/NAME" is collection NAME
USER_ERRORS = (LibraryError, LibraryLocked, ConfigError, StoreError)


# --- request bodies -----------------------------------------------------------------


class _Part(BaseModel):
    model_config = ConfigDict(extra="allow")
    type: str
    text: str | None = None


class _Message(BaseModel):
    model_config = ConfigDict(extra="allow")  # name, tool_calls, ...: accepted, unused
    role: Literal["system", "developer", "user", "assistant", "tool"]
    content: str | list[_Part] | None = None

    def text(self) -> str:
        if isinstance(self.content, list):
            return "".join(p.text or "" for p in self.content if p.type == "text")
        return self.content or ""


class ChatBody(BaseModel):
    model_config = ConfigDict(extra="allow")  # temperature, max_tokens, ...: OpenAI clients send them; unused
    model: str = MODEL
    messages: list[_Message] = Field(min_length=1)
    stream: bool = False


class SearchBody(BaseModel):
    model_config = ConfigDict(extra="forbid")
    query: str = Field(min_length=1)
    model: str = MODEL
    top_k: int | None = Field(default=None, ge=1, le=100)
    mode: Literal["dense", "keyword", "hybrid"] | None = None
    path_glob: str | None = None
    file_types: list[str] = []
    explain: bool = False  # each passage's score at each step of retrieval ("scores")


class IngestBody(BaseModel):
    model_config = ConfigDict(extra="forbid")  # no paths: only the configured folders are synced
    model: str = MODEL


class ApiError(Exception):
    def __init__(self, status: int, message: str, *, param: str | None = None, kind: str = "invalid_request_error",
                 headers: dict[str, str] | None = None):
        super().__init__(message)
        self.status, self.message, self.param, self.kind, self.headers = status, message, param, kind, headers


def _error(status: int, message: str, *, param: str | None = None, kind: str = "invalid_request_error",
           headers: dict[str, str] | None = None) -> JSONResponse:
    """OpenAI's error shape: the openai client raises its matching APIStatusError."""
    body = {"error": {"message": message, "type": kind, "param": param, "code": None}}
    return JSONResponse(body, status_code=status, headers=headers)


# --- the guard: token, body size, no tracebacks ---------------------------------------


class _Guard:
    """The ASGI layer around the routes: ``401`` without the bearer token (compared in constant time),
    ``413`` for a body over ``max_bytes`` (read here once, then replayed), and ``500`` with
    the exception's type only: no traceback, no message that might quote a document."""

    def __init__(self, app, *, token: str, max_bytes: int):
        self.app = app
        self.token = token.encode()
        self.max_bytes = max_bytes

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        headers = dict(scope["headers"])
        if self.token and not self._authorized(headers.get(b"authorization", b"")):
            return await _send(send, _error(401, "missing or wrong token: send Authorization: Bearer TOKEN",
                                            kind="authentication_error", headers={"WWW-Authenticate": "Bearer"}))
        declared = headers.get(b"content-length")
        if declared is not None and declared.isdigit() and int(declared) > self.max_bytes:
            return await _send(send, self._too_large())
        body = bytearray()
        while True:
            message = await receive()
            if message["type"] == "http.disconnect":
                return
            body += message.get("body", b"")
            if len(body) > self.max_bytes:
                return await _send(send, self._too_large())
            if not message.get("more_body"):
                break
        replayed = False

        async def replay():
            nonlocal replayed
            if not replayed:
                replayed = True
                return {"type": "http.request", "body": bytes(body), "more_body": False}
            return await receive()  # then the real channel: a disconnect arrives here

        started = False

        async def tracking_send(message):
            nonlocal started
            started = started or message["type"] == "http.response.start"
            await send(message)

        try:
            await self.app(scope, replay, tracking_send)
        except Exception as e:
            log.error("%s %s failed: %s", scope.get("method"), scope.get("path"), type(e).__name__)
            if not started:
                await _send(send, _error(500, f"internal error ({type(e).__name__})", kind="server_error"))

    def _authorized(self, header: bytes) -> bool:
        scheme, _, given = header.partition(b" ")
        return scheme.lower() == b"bearer" and hmac.compare_digest(given.strip(), self.token)

    def _too_large(self) -> JSONResponse:
        return _error(413, f"request body over {self.max_bytes // 1024} KB ([server] max_body_kb)", param="body")


async def _send(send, response: JSONResponse) -> None:
    async def no_body():
        return {"type": "http.request", "body": b"", "more_body": False}

    await response({"type": "http"}, no_body, send)


# --- the app -----------------------------------------------------------------------------


class _Libraries:
    """The served Library and the other collections of its data folder, opened on first use."""

    def __init__(self, lib: Library):
        self.lib = lib
        self._open = {lib.collection: lib}
        self._lock = threading.Lock()

    def model_ids(self) -> list[str]:
        names = [c.name for c in list_collections(self.lib.config.data_dir) if c.name != self.lib.collection]
        return [MODEL, *(f"{MODEL}/{n}" for n in names)]

    def get(self, model: str) -> Library:
        name = self.lib.collection if model == MODEL else model.removeprefix(f"{MODEL}/")
        if name not in self._open:
            if model == name or name not in {c.name for c in list_collections(self.lib.config.data_dir)}:
                raise ApiError(404, f"no model {model!r}: GET /v1/models lists them", param="model", kind="not_found_error")
            with self._lock:
                self._open.setdefault(name, self.lib.for_collection(name))
        return self._open[name]


def _turns(messages: list[_Message]) -> tuple[str, list[tuple[str, str]]]:
    """The question (the last user message) and the earlier (question, answer) turns."""
    talk = [m for m in messages if m.role in ("user", "assistant")]
    if not talk or talk[-1].role != "user" or not talk[-1].text().strip():
        raise ApiError(400, "messages: the last one must be the user's question, with text", param="messages")
    turns: list[tuple[str, str]] = []
    for m in talk[:-1]:
        if m.role == "user":
            turns.append((m.text(), ""))
        elif turns:
            turns[-1] = (turns[-1][0], m.text())
    return talk[-1].text().strip(), turns


def _pieces(text: str, size: int = 48) -> list[str]:
    """The answer in chunks of about ``size`` characters, cut after whitespace."""
    out: list[str] = []
    for word in re.findall(r"\S+\s*|\s+", text):
        if out and len(out[-1]) + len(word) <= size:
            out[-1] += word
        else:
            out.append(word)
    return out


def create_app(lib: Library, *, log_questions: bool = False) -> Any:
    """The ASGI app over ``lib`` (its collection is the model "assistant")."""
    cfg = lib.config.server
    libraries = _Libraries(lib)
    generations = Generations(cfg.max_queue)
    jobs = Jobs()

    @contextlib.asynccontextmanager
    async def lifespan(app):
        yield
        generations.shutdown()
        jobs.shutdown()

    # no /docs page: it would fetch its scripts online
    app = FastAPI(title="offline-assistant", docs_url=None, redoc_url=None, lifespan=lifespan)

    @app.exception_handler(ApiError)
    async def _api_error(request, e: ApiError):
        return _error(e.status, e.message, param=e.param, kind=e.kind, headers=e.headers)

    @app.exception_handler(RequestValidationError)
    async def _invalid(request, e: RequestValidationError):
        first = e.errors()[0]
        param = ".".join(str(p) for p in first["loc"][1:]) or "body"
        if first["type"] == "json_invalid":
            param = "body"
        return _error(400, f"{param}: {first['msg']}", param=param)

    @app.exception_handler(HTTPException)
    async def _http(request, e: HTTPException):
        return _error(e.status_code, str(e.detail), kind="not_found_error" if e.status_code == 404 else "invalid_request_error")

    for errors in USER_ERRORS:
        app.add_exception_handler(errors, lambda request, e: _error(409, str(e), kind="library_error"))

    @app.exception_handler(Cancelled)
    async def _gone(request, e: Cancelled):  # nobody reads this: the client left (nginx's 499)
        return _error(499, "the client closed the request", kind="cancelled")

    @app.exception_handler(Busy)
    async def _busy(request, e: Busy):
        return _error(503, str(e), kind="overloaded_error", headers={"Retry-After": str(e.retry_after)})

    @app.get("/v1/models")
    def models():
        return {"object": "list", "data": [
            {"id": m, "object": "model", "created": 0, "owned_by": "offline-assistant"} for m in libraries.model_ids()
        ]}

    @app.get("/v1/status")
    def status(model: str = MODEL):
        return status_json(libraries.get(model))

    @app.post("/v1/search")
    def search(body: SearchBody):
        types = tuple(t.strip().lstrip(".").lower() for t in body.file_types if t.strip())
        hits = libraries.get(body.model).search(
            body.query, top_k=body.top_k, mode=body.mode, filters=Filters(path_glob=body.path_glob, file_types=types)
        )
        return hits_json(hits, explain=body.explain)

    @app.post("/v1/ingest", status_code=202)
    def ingest(body: IngestBody | None = None):
        return jobs.start(libraries.get((body or IngestBody()).model), USER_ERRORS).as_dict()

    @app.get("/v1/jobs/{job_id}")
    def job(job_id: str):
        found = jobs.get(job_id)
        if found is None:
            raise ApiError(404, f"no job {job_id!r}", param="job_id", kind="not_found_error")
        return found.as_dict()

    @app.post("/v1/chat/completions")
    async def chat(body: ChatBody, request: Request):
        target = libraries.get(body.model)
        question, turns = _turns(body.messages)
        cancel = threading.Event()
        future = generations.submit(ask, target, question, history_from_turns(turns), cancel)  # Busy: 503
        head = {"id": f"chatcmpl-{uuid.uuid4().hex[:24]}", "created": int(time.time()), "model": body.model}
        if not body.stream:
            answer = await _answer(request, future, cancel, question)
            return {**head, "object": "chat.completion", "choices": [{
                "index": 0, "message": {"role": "assistant", "content": answer.text}, "finish_reason": "stop",
            }], "sources": answer_json(answer)}
        return StreamingResponse(_events(request, future, cancel, question, head), media_type="text/event-stream",
                                 headers={"Cache-Control": "no-store", "X-Accel-Buffering": "no"})

    async def _answer(request: Request, future, cancel: threading.Event, question: str) -> Answer:
        """Wait for the answer; a client that goes away cancels it (which stops the model)."""
        waiting = asyncio.wrap_future(future)
        t0 = time.perf_counter()
        try:
            while True:
                done, _ = await asyncio.wait({waiting}, timeout=0.25)
                if done:
                    break
                if await request.is_disconnected():
                    raise Cancelled()
            answer = waiting.result()
        except BaseException as e:
            cancel.set()
            future.cancel()
            waiting.add_done_callback(lambda f: f.cancelled() or f.exception())  # retrieved: no "never retrieved" noise
            if isinstance(e, (Cancelled, asyncio.CancelledError)):
                log.info("chat: the client went away; its answer was stopped")
            raise
        log.info("chat: %s, %d passages, %.2f s%s", answer.how, len(answer.sources), time.perf_counter() - t0,
                 f", question {question!r}" if log_questions else "")
        return answer

    async def _events(request: Request, future, cancel: threading.Event, question: str, head: dict):
        def event(delta: dict, finish: str | None = None, **extra) -> str:
            chunk = {**head, "object": "chat.completion.chunk",
                     "choices": [{"index": 0, "delta": delta, "finish_reason": finish}], **extra}
            return f"data: {json.dumps(chunk, ensure_ascii=False)}\n\n"

        yield event({"role": "assistant", "content": ""})
        try:
            answer = await _answer(request, future, cancel, question)
        except (Cancelled, asyncio.CancelledError):
            raise
        except USER_ERRORS as e:
            yield f"data: {json.dumps({'error': {'message': str(e), 'type': 'library_error'}})}\n\n"
            return
        except Exception as e:
            log.error("chat failed: %s", type(e).__name__)
            yield f"data: {json.dumps({'error': {'message': f'internal error ({type(e).__name__})', 'type': 'server_error'}})}\n\n"
            return
        for piece in _pieces(answer.text):
            yield event({"content": piece})
        yield event({}, "stop", sources=answer_json(answer))
        yield "data: [DONE]\n\n"

    app.state.generations = generations
    app.add_middleware(_Guard, token=cfg.bearer_token(), max_bytes=cfg.max_body_kb * 1024)
    if cfg.cors_origins:  # outside the guard: a browser's preflight carries no token
        from starlette.middleware.cors import CORSMiddleware

        app.add_middleware(CORSMiddleware, allow_origins=cfg.cors_origins, allow_methods=["GET", "POST"],
                           allow_headers=["Authorization", "Content-Type"])
    return app


# --- starting it ---------------------------------------------------------------------------


def _loopback(host: str) -> bool:
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        pass
    try:
        addresses = {info[4][0] for info in socket.getaddrinfo(host, None)}
    except OSError:
        return False
    return bool(addresses) and all(ipaddress.ip_address(a.split("%")[0]).is_loopback for a in addresses)


def check_bind(host: str, token: str) -> None:
    """A non-loopback address only with a token: the library holds private text."""
    if not _loopback(host) and not token:
        raise ConfigError(f"refusing to listen on {host} without a token: other machines could read the library. "
                          f"Set [server] token (or {SERVER_TOKEN_ENV}), or listen on 127.0.0.1")


def serve(lib: Library, *, host: str, port: int, log_questions: bool = False) -> None:
    import uvicorn

    check_bind(host, lib.config.server.bearer_token())
    lib.generator.info()  # load the models now, not on the first question
    try:
        lib.warm_up_search()
    except LibraryError:
        pass  # nothing indexed yet: an ingest job can fill it
    app = create_app(lib, log_questions=log_questions)
    logging.basicConfig(level=logging.INFO, format="%(levelname)s: %(message)s")
    uvicorn.run(app, host=host, port=port, log_level="info", timeout_graceful_shutdown=5)

"""The ``openai`` generator plugin: an OpenAI-compatible HTTP server as the LLM.

Fast tests (no model) talk to a tiny ``http.server`` on loopback that replays
canned server-sent events. The ``llm``/``integration`` tests start a real
``python -m llama_cpp.server`` on loopback serving the embedded Gemma GGUF (it
needs ``llama-cpp-python[server]``) and stop it in the fixture's finalizer.
Everything binds to 127.0.0.1 only; every wait is bounded.
"""

from __future__ import annotations

import importlib.util
import io
import json
import os
import re
import socket
import subprocess
import sys
import threading
import time
import urllib.request
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any, Callable

import pytest

import plugin_contracts as contracts

from assistant.types import GenerationRequest, ModelInfo
from assistant_openai import API_KEY_ENV, OpenAIGenerator, OpenAIServerError, iter_sse

LOOPBACK = "127.0.0.1"


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind((LOOPBACK, 0))
        return s.getsockname()[1]


# --- a fake OpenAI-compatible server (canned SSE) ---------------------------------


def _event(obj: Any) -> str:
    return f"data: {json.dumps(obj)}\n\n"


def _delta(text: Any) -> str:
    return _event({"object": "chat.completion.chunk", "choices": [{"index": 0, "delta": {"content": text}, "finish_reason": None}]})


CHAT_SSE = [
    ": ping - 2026-01-01\r\n\r\n",  # a comment, CRLF
    _event({"choices": [{"index": 0, "delta": {"role": "assistant"}, "finish_reason": None}]}),  # no content
    _delta("The K3"),
    'event: message\r\nid: 7\r\ndata:{"choices":[{"index":0,"delta":{"content":" charges"}}]}\r\n\r\n',  # no space, CRLF
    _delta(None),
    _delta(""),
    _delta(" in 95 min")[:30],  # one event split over two writes (two chunks)
    _delta(" in 95 min")[30:],
    _delta("utes [1] \u2603."),
    _event({"choices": [{"index": 0, "delta": {}, "finish_reason": "stop"}]}),
    "data: [DONE]\n\n",
]
CHAT_PIECES = ["The K3", " charges", " in 95 min", "utes [1] \u2603."]

COMPLETION_SSE = [
    _event({"object": "text_completion", "choices": [{"index": 0, "text": " It"}]}),
    'data: {"object": "text_completion",\ndata:  "choices": [{"index": 0, "text": " takes"}]}\n\n',  # two data lines, one event
    _event({"choices": [{"index": 0, "text": " 95 minutes na\u00efve."}]}),
    _event({"choices": [{"index": 0, "text": "", "finish_reason": "length"}]}),
    "data: [DONE]\n\n",
]
COMPLETION_PIECES = [" It", " takes", " 95 minutes na\u00efve."]


@dataclass
class Seen:
    method: str
    path: str
    headers: dict[str, str]
    body: Any


Route = Callable[["_Handler", Any], None]


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server: "_FakeHTTPServer"

    def log_message(self, *args) -> None:  # quiet
        pass

    def _dispatch(self, method: str) -> None:
        n = int(self.headers.get("Content-Length") or 0)
        raw = self.rfile.read(n) if n else b""
        body = json.loads(raw) if raw else None
        self.server.seen.append(Seen(method, self.path, {k.lower(): v for k, v in self.headers.items()}, body))
        route = self.server.routes.get((method, self.path))
        if route is None:
            self.json(404, {"detail": "Not Found"})
            return
        route(self, body)

    def do_GET(self) -> None:
        self._dispatch("GET")

    def do_POST(self) -> None:
        self._dispatch("POST")

    # helpers for routes
    def json(self, code: int, obj: Any) -> None:
        data = json.dumps(obj).encode()
        self.send_response(code)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def sse(self, parts: list[str], *, chunked: bool = True, delay_s: float = 0.0, hold_s: float = 0.0) -> None:
        """Write ``parts`` as they are, each in its own write (chunked, or closing the connection at the end)."""
        self.send_response(200)
        self.send_header("Content-Type", "text/event-stream; charset=utf-8")
        self.send_header("Cache-Control", "no-cache")
        if chunked:
            self.send_header("Transfer-Encoding", "chunked")
        else:
            self.send_header("Connection", "close")
            self.close_connection = True
        self.end_headers()
        try:
            for part in parts:
                data = part.encode("utf-8")
                self.wfile.write(b"%x\r\n%s\r\n" % (len(data), data) if chunked else data)
                self.wfile.flush()
                if delay_s:
                    time.sleep(delay_s)
            time.sleep(hold_s)  # e.g. keep the connection open after [DONE]
            if chunked:
                self.wfile.write(b"0\r\n\r\n")
                self.wfile.flush()
        except (BrokenPipeError, ConnectionResetError):
            self.server.client_gone.set()
            self.close_connection = True


class _FakeHTTPServer(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self):
        super().__init__((LOOPBACK, 0), _Handler)
        self.seen: list[Seen] = []
        self.client_gone = threading.Event()
        self.routes: dict[tuple[str, str], Route] = {
            ("GET", "/v1/models"): lambda h, b: h.json(200, {"object": "list", "data": [{"id": "fake-model"}, {"id": "other"}]}),
            ("POST", "/v1/chat/completions"): lambda h, b: h.sse(CHAT_SSE),
            ("POST", "/v1/completions"): lambda h, b: h.sse(COMPLETION_SSE),
            ("POST", "/tokenize"): lambda h, b: h.json(200, {"tokens": list(range(len(b["content"].split())))}),
        }

    @property
    def base_url(self) -> str:
        return f"http://{LOOPBACK}:{self.server_address[1]}/v1"

    def posted(self, path: str) -> list[Seen]:
        return [s for s in self.seen if s.method == "POST" and s.path == path]


@pytest.fixture
def fake():
    server = _FakeHTTPServer()
    t = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    t.start()
    try:
        yield server
    finally:
        server.shutdown()
        server.server_close()
        t.join(5)


CHAT = GenerationRequest(messages=[{"role": "system", "content": "Cite."}, {"role": "user", "content": "How long?"}],
                         max_tokens=7, stop=("\n\n", "END"), temperature=0.25)  # fmt: skip
PROMPT = GenerationRequest(prompt="Question: How long?\nAnswer:", max_tokens=5)


# --- fast tests: SSE parsing, requests, errors, closing --------------------------------


def test_iter_sse_follows_the_event_stream_format():
    stream = io.BytesIO(
        b": comment\n\n"
        b"data: one\n\n"
        b"event: x\r\ndata:two\r\n\r\n"
        b"data: three a\ndata: three b\n\n"
        b"id: 4\nretry: 10\n\n"  # no data: no event
        b"data: {\"k\": \"caf\xc3\xa9\"}\n\n"
        b"data: last, no blank line"
    )
    assert list(iter_sse(stream)) == ["one", "two", "three a\nthree b", '{"k": "caf\u00e9"}', "last, no blank line"]


@pytest.mark.parametrize("chunked", [True, False], ids=["chunked", "connection-close"])
def test_streams_chat_and_completion_deltas(fake, monkeypatch, chunked):
    monkeypatch.setenv(API_KEY_ENV, "sekrit")
    fake.routes[("POST", "/v1/chat/completions")] = lambda h, b: h.sse(CHAT_SSE, chunked=chunked)
    fake.routes[("POST", "/v1/completions")] = lambda h, b: h.sse(COMPLETION_SSE, chunked=chunked)
    gen = OpenAIGenerator(base_url=fake.base_url + "/", model="builtin")  # "builtin" (the core's default) = auto

    assert list(gen.stream(CHAT)) == CHAT_PIECES
    assert list(gen.stream(PROMPT)) == COMPLETION_PIECES

    assert [s.path for s in fake.seen] == ["/v1/models", "/v1/chat/completions", "/v1/completions"]  # the model is asked once
    chat, completion = fake.seen[1], fake.seen[2]
    assert chat.body == {"messages": CHAT.messages, "model": "fake-model", "stream": True, "max_tokens": 7,
                         "temperature": 0.25, "stop": ["\n\n", "END"]}  # fmt: skip
    assert completion.body == {"prompt": PROMPT.prompt, "model": "fake-model", "stream": True, "max_tokens": 5, "temperature": 0.0}
    assert all(s.headers["authorization"] == "Bearer sekrit" for s in fake.seen)
    assert chat.headers["accept"] == "text/event-stream" and chat.headers["content-type"] == "application/json"


def test_settings_model_chat_off_and_no_key(fake, monkeypatch):
    monkeypatch.delenv(API_KEY_ENV, raising=False)
    gen = OpenAIGenerator(base_url=fake.base_url, model="other", chat=False)
    assert gen.info() == ModelInfo(f"other @ {fake.base_url}", 4096, False)
    assert list(gen.stream(CHAT)) == COMPLETION_PIECES  # chat = false: the messages go to /completions as one prompt
    (seen,) = fake.posted("/v1/completions")
    assert seen.body["prompt"] == "Cite.\n\nHow long?" and seen.body["model"] == "other"
    assert "authorization" not in seen.headers and not fake.posted("/v1/chat/completions")
    assert not [s for s in fake.seen if s.path == "/v1/models"]  # a set model is not looked up


def test_done_ends_the_stream_even_when_the_server_keeps_the_connection_open(fake):
    fake.routes[("POST", "/v1/chat/completions")] = lambda h, b: h.sse(CHAT_SSE, hold_s=5.0)
    gen = OpenAIGenerator(base_url=fake.base_url, model="m")
    t0 = time.monotonic()
    assert list(gen.stream(CHAT)) == CHAT_PIECES
    assert time.monotonic() - t0 < 3.0


def test_a_json_answer_to_a_stream_request_is_used_as_one_piece(fake):
    reply = {"choices": [{"index": 0, "message": {"role": "assistant", "content": "All at once [1]."}}]}
    fake.routes[("POST", "/v1/chat/completions")] = lambda h, b: h.json(200, reply)
    assert list(OpenAIGenerator(base_url=fake.base_url, model="m").stream(CHAT)) == ["All at once [1]."]


def test_closing_the_iterator_closes_the_response(fake):
    endless = [_delta(f" w{i}") for i in range(500)]  # 500 x 20 ms: bounded even if nobody hangs up
    fake.routes[("POST", "/v1/chat/completions")] = lambda h, b: h.sse(endless, delay_s=0.02)
    it = OpenAIGenerator(base_url=fake.base_url, model="m").stream(CHAT)
    assert [next(it), next(it)] == [" w0", " w1"]
    it.close()
    assert fake.client_gone.wait(5.0), "the server kept writing to an open connection after close()"


def test_stops_reading_a_server_that_ignores_max_tokens(fake):
    fake.routes[("POST", "/v1/completions")] = lambda h, b: h.sse([_event({"choices": [{"text": "x"}]})] * 400)
    pieces = list(OpenAIGenerator(base_url=fake.base_url, model="m").stream(GenerationRequest(prompt="p", max_tokens=2)))
    assert 2 <= len(pieces) < 400


def test_http_errors_name_the_server_the_status_and_the_reason(fake):
    base = fake.base_url
    fake.routes[("POST", "/v1/chat/completions")] = lambda h, b: h.json(500, {"error": {"message": "boom: the model crashed", "type": "server_error"}})
    fake.routes[("POST", "/v1/completions")] = lambda h, b: h.json(401, {"error": {"message": "Invalid API Key"}})
    gen = OpenAIGenerator(base_url=base, model="m")
    with pytest.raises(OpenAIServerError) as e:
        list(gen.stream(CHAT))
    assert str(e.value) == f"OpenAI-compatible server at {base} answered HTTP 500 Internal Server Error to POST /chat/completions: boom: the model crashed"
    assert e.value.status == 500
    with pytest.raises(OpenAIServerError, match=re.escape(f"at {base} answered HTTP 401 Unauthorized to POST /completions: Invalid API Key (check [plugins.openai] api_key or ${API_KEY_ENV})")):
        list(gen.stream(PROMPT))
    # a wrong base_url (no /v1): 404 with a hint
    wrong = base[: -len("/v1")]
    with pytest.raises(OpenAIServerError, match=re.escape(f"at {wrong} answered HTTP 404 Not Found to GET /models: Not Found (check [plugins.openai] base_url: it usually ends in /v1)")):
        list(OpenAIGenerator(base_url=wrong).stream(CHAT))


def test_redirects_and_proxies_are_not_followed(fake, monkeypatch):
    def moved(h, b):
        h.send_response(307)
        h.send_header("Location", "http://127.0.0.1:9/v1/chat/completions")
        h.send_header("Content-Length", "0")
        h.end_headers()

    fake.routes[("POST", "/v1/chat/completions")] = moved
    monkeypatch.setenv("http_proxy", "http://127.0.0.1:9")  # would fail if used
    monkeypatch.setenv("no_proxy", "")
    gen = OpenAIGenerator(base_url=fake.base_url, model="m")
    with pytest.raises(OpenAIServerError, match=re.escape(f"at {fake.base_url} answered HTTP 307 Temporary Redirect to POST /chat/completions")):
        list(gen.stream(CHAT))
    assert list(gen.stream(PROMPT)) == COMPLETION_PIECES  # reached directly, not through the proxy


def test_an_error_event_in_the_middle_of_a_stream_is_raised(fake):
    parts = [_delta("Half"), _event({"error": {"message": "context window exceeded", "code": 400}}), "data: [DONE]\n\n"]
    fake.routes[("POST", "/v1/chat/completions")] = lambda h, b: h.sse(parts)
    it = OpenAIGenerator(base_url=fake.base_url, model="m").stream(CHAT)
    assert next(it) == "Half"
    with pytest.raises(OpenAIServerError, match=re.escape(f"at {fake.base_url} reported an error: context window exceeded")):
        next(it)


def test_a_server_that_does_not_answer_times_out(fake):
    def slow(h, b):
        time.sleep(2.0)
        h.sse(CHAT_SSE)

    fake.routes[("POST", "/v1/chat/completions")] = slow
    gen = OpenAIGenerator(base_url=fake.base_url, model="m", timeout_s=0.3)
    t0 = time.monotonic()
    with pytest.raises(OpenAIServerError, match=re.escape(f"OpenAI-compatible server at {fake.base_url} did not answer within 0.3 s (timeout)")):
        list(gen.stream(CHAT))
    assert time.monotonic() - t0 < 1.5


def test_no_server_on_the_port_is_a_clear_error():
    base = f"http://{LOOPBACK}:{_free_port()}/v1"
    gen = OpenAIGenerator(base_url=base)
    t0 = time.monotonic()
    assert gen.info() == ModelInfo(f"auto @ {base}", 4096, True)  # works without a server
    assert gen.count_tokens("abcdefghij") == 3  # the estimate
    with pytest.raises(OpenAIServerError) as e:
        list(gen.stream(PROMPT))
    assert str(e.value) == f"OpenAI-compatible server at {base} is not reachable: connection refused"
    with pytest.raises(OpenAIServerError, match="is not reachable: connection refused"):
        list(OpenAIGenerator(base_url=base, model="m").stream(CHAT))
    assert time.monotonic() - t0 < 5.0


def test_count_tokens_uses_the_server_tokenizer_or_estimates(fake):
    gen = OpenAIGenerator(base_url=fake.base_url, model="m")
    assert gen.count_tokens("one two three four five") == 5 and gen.tokenizer_endpoint == "/tokenize"
    assert gen.count_tokens("one two three four five") == 5
    assert len(fake.posted("/tokenize")) == 1  # counts are cached
    assert fake.posted("/tokenize")[0].body["content"] == "one two three four five"

    del fake.routes[("POST", "/tokenize")]  # a server without a tokenizer endpoint (vLLM off, Ollama ...)
    other = OpenAIGenerator(base_url=fake.base_url, model="m")
    assert other.count_tokens("abcdefghijkl") == 4 and other.tokenizer_endpoint == ""
    assert other.count_tokens("abc") == 1
    assert [s.path for s in fake.seen[-2:]] == ["/tokenize", "/extras/tokenize/count"]  # probed once


def test_settings_are_checked():
    with pytest.raises(ValueError, match="plugins.openai.base_url"):
        OpenAIGenerator(base_url="127.0.0.1:8080/v1")
    with pytest.raises(ValueError, match="plugins.openai.timeout_s"):
        OpenAIGenerator(timeout_s=0)
    gen = OpenAIGenerator(api_key="secret-key")
    assert gen.base_url == "http://127.0.0.1:8080/v1" and gen.root_url == "http://127.0.0.1:8080"
    assert "secret-key" not in repr(gen)


def test_registry_builds_it_and_it_meets_the_contract(fake, write_config):
    from assistant.config import ConfigError, load_config
    from assistant.plugins import PluginRegistry

    write_config(f'[plugins.openai]\nbase_url = "{fake.base_url}"\ntimeout_s = 10\n')
    reg = PluginRegistry(load_config().plugins, warn=lambda m: None)
    if reg.info("generators", "openai") is None:
        pytest.fail("no 'openai' entry point in assistant.generators: add it to pyproject.toml and reinstall "
                    "(a stale offline_assistant.egg-info in the working directory also hides it)")  # fmt: skip
    gen = reg.load("generators", "openai", {"model": "builtin", "n_ctx": 1024, "threads": 3})  # what Library offers
    assert isinstance(gen, OpenAIGenerator) and gen.timeout_s == 10.0 and gen.model == ""
    assert gen.info() == ModelInfo(f"fake-model @ {fake.base_url}", 1024, True)
    assert contracts.check_generator(gen, who="generator 'openai'") == "".join(COMPLETION_PIECES)

    write_config('[plugins.openai]\ntimeout_s = "slow"\n')
    with pytest.raises(ConfigError, match=r"plugins\.openai\.timeout_s: expected float"):
        PluginRegistry(load_config().plugins, warn=lambda m: None).load("generators", "openai")


# --- a real llama.cpp server (llama-cpp-python[server]) ------------------------------------

SERVER_EXTRAS = ("fastapi", "uvicorn", "sse_starlette", "starlette_context", "pydantic_settings")


@dataclass
class LlamaServer:
    base_url: str
    proc: subprocess.Popen
    log: Path

    def log_text(self) -> str:
        return self.log.read_text(encoding="utf-8", errors="replace")


@pytest.fixture(scope="module")
def llama_server(tmp_path_factory):
    missing = [m for m in SERVER_EXTRAS if importlib.util.find_spec(m) is None]
    if missing:
        pytest.skip(f"needs llama-cpp-python[server] (missing: {', '.join(missing)})")
    from assistant_llamacpp import builtin_model_path

    try:
        model = builtin_model_path()
    except FileNotFoundError as e:
        pytest.skip(str(e))
    folder = tmp_path_factory.mktemp("llama-server")
    log = folder / "server.log"
    port = _free_port()
    cmd = [sys.executable, "-m", "llama_cpp.server", "--model", str(model), "--host", LOOPBACK, "--port", str(port),
           "--n_ctx", "2048", "--n_threads", "2",
           # the embedded GGUF carries no chat template; without this the server falls back to the
           # llama-2 format and the base model answers chat requests with nothing at all
           "--chat_format", "gemma"]  # fmt: skip
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    with log.open("wb") as out:
        proc = subprocess.Popen(cmd, stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, cwd=folder, env=env)
    server = LlamaServer(f"http://{LOOPBACK}:{port}/v1", proc, log)
    try:
        deadline = time.monotonic() + 60
        while True:
            if proc.poll() is not None:
                pytest.fail(f"llama_cpp.server exited with {proc.returncode}:\n{server.log_text()[-3000:]}")
            try:
                with urllib.request.urlopen(f"{server.base_url}/models", timeout=2) as r:
                    if r.status == 200:
                        break
            except OSError:
                pass
            if time.monotonic() > deadline:
                pytest.fail(f"llama_cpp.server did not answer GET /v1/models within 60 s:\n{server.log_text()[-3000:]}")
            time.sleep(0.25)
        yield server
    finally:
        proc.terminate()
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(10)


@pytest.mark.llm
@pytest.mark.integration
def test_real_server_streams_completions_and_chat_in_pieces(llama_server):
    gen = OpenAIGenerator(base_url=llama_server.base_url, n_ctx=2048)
    info = gen.info()
    assert info.name.endswith(f"gemma-3-270m-q4_k_m.gguf @ {llama_server.base_url}") and info.context_length == 2048

    pieces = list(gen.stream(GenerationRequest(prompt="Monday, Tuesday, Wednesday,", max_tokens=8)))
    assert 3 <= len(pieces) <= 8 and "".join(pieces).strip()  # max_tokens reaches the server

    pieces = list(gen.stream(GenerationRequest(messages=[{"role": "user", "content": "Name three fruits."}], max_tokens=16)))
    assert len(pieces) >= 3 and "".join(pieces).strip()

    n = gen.count_tokens("The Zorblax K3 charges in 95 minutes.")
    assert gen.tokenizer_endpoint == "/extras/tokenize/count" and 5 <= n <= 20


@pytest.mark.llm
@pytest.mark.integration
def test_real_server_stops_generating_when_the_iterator_is_closed(llama_server):
    gen = OpenAIGenerator(base_url=llama_server.base_url)
    before = llama_server.log_text().count("Disconnected from client")
    it = gen.stream(GenerationRequest(messages=[{"role": "user", "content": "Name three fruits."}], max_tokens=1000))
    assert next(it) and next(it)
    it.close()
    deadline = time.monotonic() + 20
    while llama_server.log_text().count("Disconnected from client") == before:
        assert time.monotonic() < deadline, "the server did not notice the closed connection within 20 s"
        time.sleep(0.1)
    t0 = time.monotonic()
    assert list(gen.stream(GenerationRequest(prompt="One, two, three,", max_tokens=4)))  # the server is free again
    assert time.monotonic() - t0 < 60


@pytest.mark.llm
@pytest.mark.integration
def test_real_server_meets_the_generator_contract(llama_server):
    contracts.check_generator(OpenAIGenerator(base_url=llama_server.base_url, n_ctx=2048, chat=False), who="generator 'openai'")


@pytest.mark.llm
@pytest.mark.integration
@pytest.mark.parametrize("chat", [False, True], ids=["completion", "chat"])
def test_library_answers_through_the_real_server(llama_server, write_config, docs, chat):
    from assistant.config import load_config
    from assistant.library import Library
    from assistant.testing import FakeEmbedder

    write_config("[generation]\nmax_tokens = 48\n")
    gen = OpenAIGenerator(base_url=llama_server.base_url, n_ctx=2048, chat=chat)
    lib = Library(load_config(), embedder=FakeEmbedder(), generator=gen)
    lib.ingest([docs])
    answer = lib.ask("How long does the Zorblax K3 take to charge?")
    assert answer.text.strip() and answer.sources and answer.grounded and "95" in answer.text, answer
    assert answer.model == gen.info().name and answer.model.endswith(f"@ {llama_server.base_url}")
    # the server's model was asked: its answer is shown verified, or the quote stays with the reason why not
    assert answer.how == "model-verified" or any(f.startswith("model answer not verified") for f in answer.flags), answer

"""`assistant serve` with the fast fakes: a real uvicorn server on a loopback port, real HTTP clients.

The real models through the official openai client are in test_serve_integration.py.
"""

from __future__ import annotations

import contextlib
import json
import logging
import threading
import time

import httpx
import pytest

from conftest import run_cli
from assistant.testing import FakeGenerator

QUESTION = "How long does the Zorblax K3 take to charge?"


class GatedGenerator(FakeGenerator):
    """Waits for ``release`` before answering, then yields ``words`` words ``delay`` apart;
    records whether a stream was closed before its end (the server stopped it)."""

    def __init__(self, *, words: int = 3, delay: float = 0.0):
        super().__init__()
        self.words, self.delay = words, delay
        self.release = threading.Event()
        self.release.set()
        self.started = threading.Event()
        self.yielded = 0
        self.stopped_early = threading.Event()

    def stream(self, request):
        self.last_request = request
        self.started.set()
        self.release.wait(30)
        done = False
        try:
            for _ in range(self.words):
                time.sleep(self.delay)
                self.yielded += 1
                yield "charges "
            yield "[1]"
            done = True
        finally:
            if not done:
                self.stopped_early.set()


@contextlib.contextmanager
def serving(lib, **kw):
    """The app of `assistant serve` over ``lib`` in uvicorn on a free loopback port; yields (base URL, app)."""
    import uvicorn

    from assistant.server import create_app

    app = create_app(lib, **kw)
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=0, log_level="warning"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 30
    while not server.started:
        assert time.monotonic() < deadline and thread.is_alive(), "the server did not start"
        time.sleep(0.02)
    port = server.servers[0].sockets[0].getsockname()[1]
    try:
        yield f"http://127.0.0.1:{port}", app
    finally:
        server.should_exit = True
        thread.join(10)


@pytest.fixture
def library(fake_library, docs):
    def make(generator=None):
        lib = fake_library(generator=generator or FakeGenerator())
        lib.ingest([docs])
        return lib

    return make


def chat_body(question: str = QUESTION, **kw) -> dict:
    return {"model": "assistant", "messages": [{"role": "user", "content": question}], **kw}


def test_chat_search_status_models(library, docs):
    with serving(library()) as (url, _):
        with httpx.Client(base_url=url, timeout=30) as c:
            r = c.post("/v1/chat/completions", json=chat_body())
            assert r.status_code == 200, r.text
            body = r.json()
            assert body["object"] == "chat.completion"
            assert "95 minutes" in body["choices"][0]["message"]["content"] and "[1]" in body["choices"][0]["message"]["content"]
            first = body["sources"]["passages"][0]
            assert first["path"] == str(docs / "manual.md") and first["cited"] and first["start_line"] >= 1
            assert body["sources"]["how"] in ("model-verified", "quoted", "not-found")

            hits = c.post("/v1/search", json={"query": "tulips October", "top_k": 2}).json()
            assert hits[0]["path"] == str(docs / "sub" / "garden.md") and len(hits) == 2
            only_txt = c.post("/v1/search", json={"query": "tulips October", "file_types": ["txt"]}).json()
            assert only_txt and {h["path"] for h in only_txt} == {str(docs / "notes.txt")}

            status = c.get("/v1/status").json()
            assert status["files"] == 3 and status["collections"][0]["name"] == "default"
            assert [m["id"] for m in c.get("/v1/models").json()["data"]] == ["assistant"]


def test_search_json_is_the_cli_json(library):
    lib = library()
    with serving(lib) as (url, _):
        over_http = httpx.post(f"{url}/v1/search", json={"query": "battery Ah", "top_k": 3}).json()
    from assistant.serving import hits_json

    assert over_http == json.loads(json.dumps(hits_json(lib.search("battery Ah", top_k=3))))
    with serving(lib) as (url, _):
        explained = httpx.post(f"{url}/v1/search", json={"query": "battery Ah", "top_k": 3, "explain": True}).json()
    assert [list(h["scores"])[-1] for h in explained] == ["fused"] * 3  # no stage configured: fusion is the last step
    assert [{k: v for k, v in h.items() if k != "scores"} for h in explained] == over_http


def test_a_follow_up_is_made_standalone(library):
    gen = GatedGenerator()
    with serving(library(gen)) as (url, _):
        messages = [
            {"role": "system", "content": "be brief"},
            {"role": "user", "content": QUESTION},
            {"role": "assistant", "content": "The Zorblax K3 charges in 95 minutes [1]."},
            {"role": "user", "content": "and how much does it cost?"},
        ]
        body = httpx.post(f"{url}/v1/chat/completions", json={"model": "assistant", "messages": messages}, timeout=30).json()
    assert "Zorblax" in body["sources"]["query"] and "K3" in body["sources"]["query"]
    assert any("1,249 euros" in p["text"] for p in body["sources"]["passages"])  # found through the standalone query


def test_streaming_sends_the_final_answer_then_sources_then_done(library):
    with serving(library()) as (url, _):
        with httpx.stream("POST", f"{url}/v1/chat/completions", json=chat_body(stream=True), timeout=30) as r:
            assert r.headers["content-type"].startswith("text/event-stream")
            events = [line.removeprefix("data: ") for line in r.iter_lines() if line.startswith("data: ")]
        plain = httpx.post(f"{url}/v1/chat/completions", json=chat_body(), timeout=30).json()
    assert events[-1] == "[DONE]"
    chunks = [json.loads(e) for e in events[:-1]]
    assert chunks[0]["choices"][0]["delta"]["role"] == "assistant"
    text = "".join(c["choices"][0]["delta"].get("content") or "" for c in chunks)
    assert text == plain["choices"][0]["message"]["content"]
    assert chunks[-1]["choices"][0]["finish_reason"] == "stop" and chunks[-1]["sources"]["passages"]
    assert all("sources" not in c for c in chunks[:-1])


@pytest.mark.parametrize(
    "path, body, param",
    [
        ("/v1/chat/completions", b"{not json", "body"),
        ("/v1/chat/completions", {"model": "assistant"}, "messages"),
        ("/v1/chat/completions", {"messages": [{"role": "user"}], "stream": "perhaps"}, "stream"),
        ("/v1/chat/completions", {"messages": [{"role": "robot", "content": "hi"}]}, "messages.0.role"),
        ("/v1/chat/completions", {"messages": [{"role": "assistant", "content": "hi"}]}, "messages"),
        ("/v1/chat/completions", {"messages": [{"role": "user", "content": "  "}]}, "messages"),
        ("/v1/search", {"query": ["a"]}, "query"),
        ("/v1/search", {"query": "a", "top_k": 0}, "top_k"),
        ("/v1/search", {"query": "a", "mode": "magic"}, "mode"),
        ("/v1/ingest", {"paths": ["/etc"]}, "paths"),
    ],
)
def test_a_malformed_body_gets_400_naming_the_field(library, path, body, param):
    with serving(library()) as (url, _):
        kw = {"content": body, "headers": {"content-type": "application/json"}} if isinstance(body, bytes) else {"json": body}
        r = httpx.post(url + path, timeout=30, **kw)
    assert r.status_code == 400, r.text
    error = r.json()["error"]
    assert error["param"] == param and param in error["message"]
    assert "Traceback" not in r.text


def test_unknown_model_and_job_are_404_and_other_collections_are_models(library, docs):
    lib = library()
    lib.for_collection("work-notes").ingest([docs / "sub"])
    with serving(lib) as (url, _):
        with httpx.Client(base_url=url, timeout=30) as c:
            assert [m["id"] for m in c.get("/v1/models").json()["data"]] == ["assistant", "assistant/work-notes"]
            r = c.post("/v1/chat/completions", json={**chat_body(), "model": "assistant/nope"})
            assert r.status_code == 404 and r.json()["error"]["param"] == "model"
            assert c.post("/v1/chat/completions", json={**chat_body(), "model": "gpt-4"}).status_code == 404
            hits = c.post("/v1/search", json={"query": "K3 charges", "model": "assistant/work-notes"}).json()
            assert {h["path"] for h in hits} == {str(docs / "sub" / "garden.md")}
            assert c.get("/v1/jobs/nope").status_code == 404


def test_token_is_needed_on_every_endpoint(library, write_config, monkeypatch):
    write_config('[server]\ntoken = "from-the-file"\n')
    monkeypatch.setenv("ASSISTANT_SERVER_TOKEN", "s3cret-token")  # the variable wins over the file
    with serving(library()) as (url, _):
        calls = [("GET", "/v1/models", None), ("GET", "/v1/status", None), ("POST", "/v1/search", {"query": "K3"}),
                 ("POST", "/v1/chat/completions", chat_body()), ("POST", "/v1/ingest", {}), ("GET", "/v1/jobs/x", None),
                 ("GET", "/openapi.json", None), ("GET", "/nowhere", None)]
        for method, path, body in calls:
            for headers in ({}, {"Authorization": "Bearer wrong"}, {"Authorization": "Bearer from-the-file"},
                            {"Authorization": "s3cret-token"}):
                r = httpx.request(method, url + path, json=body, headers=headers, timeout=30)
                assert r.status_code == 401, (path, headers, r.status_code)
                assert r.headers["www-authenticate"] == "Bearer"
            ok = httpx.request(method, url + path, json=body, headers={"Authorization": "Bearer s3cret-token"}, timeout=30)
            assert ok.status_code != 401, path
        assert httpx.get(url + "/v1/models", headers={"Authorization": "Bearer s3cret-token"}).status_code == 200


def test_a_body_over_the_limit_gets_413(library, write_config):
    write_config("[server]\nmax_body_kb = 1\n")
    with serving(library()) as (url, _):
        big = chat_body("x" * 2000)
        r = httpx.post(url + "/v1/chat/completions", json=big, timeout=30)
        assert r.status_code == 413 and r.json()["error"]["param"] == "body"

        def chunked():  # no Content-Length: counted as it arrives
            yield json.dumps(big).encode()

        r = httpx.post(url + "/v1/chat/completions", content=chunked(), headers={"content-type": "application/json"}, timeout=30)
        assert r.status_code == 413
        assert httpx.post(url + "/v1/chat/completions", json=chat_body(), timeout=30).status_code == 200


def test_past_the_queue_a_clean_503_and_searches_do_not_wait_for_the_model(library, write_config):
    write_config("[server]\nmax_queue = 1\n")
    gen = GatedGenerator()
    gen.release.clear()
    with serving(library(gen)) as (url, app):
        results: list[httpx.Response] = []

        def ask():
            results.append(httpx.post(url + "/v1/chat/completions", json=chat_body(), timeout=60))

        running = threading.Thread(target=ask)
        running.start()
        assert gen.started.wait(10)
        waiting = threading.Thread(target=ask)
        waiting.start()
        deadline = time.monotonic() + 10
        while app.state.generations.pending < 2:
            assert time.monotonic() < deadline
            time.sleep(0.02)
        refused = httpx.post(url + "/v1/chat/completions", json=chat_body(stream=True), timeout=10)
        assert refused.status_code == 503 and int(refused.headers["retry-after"]) >= 1
        assert refused.json()["error"]["type"] == "overloaded_error"
        t0 = time.perf_counter()
        assert httpx.post(url + "/v1/search", json={"query": "tulips"}, timeout=10).status_code == 200
        assert time.perf_counter() - t0 < 5  # not queued behind the two answers
        gen.release.set()
        running.join(30)
        waiting.join(30)
    assert [r.status_code for r in results] == [200, 200]


@pytest.mark.parametrize("stream", [True, False])
def test_a_client_that_goes_away_stops_its_generation(library, stream):
    gen = GatedGenerator(words=400, delay=0.05)  # 20 s if nobody stops it
    with serving(library(gen)) as (url, app):
        if stream:
            with httpx.stream("POST", url + "/v1/chat/completions", json=chat_body(stream=True), timeout=30) as r:
                lines = r.iter_lines()  # kept: a dropped iterator closes the response
                assert '"role": "assistant"' in next(lines)
                assert gen.started.wait(10)
        else:
            with pytest.raises(httpx.ReadTimeout):
                httpx.post(url + "/v1/chat/completions", json=chat_body(), timeout=1.0)
        assert gen.stopped_early.wait(10), "the model went on after the client left"
        assert gen.yielded < 400
        deadline = time.monotonic() + 10
        while app.state.generations.pending:
            assert time.monotonic() < deadline
            time.sleep(0.02)
        gen.words, gen.delay = 3, 0.0
        assert httpx.post(url + "/v1/chat/completions", json=chat_body(), timeout=30).status_code == 200


def test_ingest_job_syncs_the_configured_folders(fake_library, docs, write_config):
    write_config(f'[library]\nfolders = ["{docs}"]\n')
    with serving(fake_library()) as (url, _):
        job = httpx.post(url + "/v1/ingest", timeout=30)
        assert job.status_code == 202
        deadline = time.monotonic() + 60
        while (state := httpx.get(f"{url}/v1/jobs/{job.json()['id']}").json())["status"] in ("queued", "running"):
            assert time.monotonic() < deadline
            time.sleep(0.1)
        assert state["status"] == "done", state
        assert state["result"]["files_ingested"] == 3 and state["progress"]["files_total"] == 3
        assert httpx.get(url + "/v1/status").json()["files"] == 3


def test_cors_only_for_listed_origins(library, write_config):
    lib = library()
    with serving(lib) as (url, _):
        r = httpx.get(url + "/v1/models", headers={"Origin": "http://evil.example"})
        assert "access-control-allow-origin" not in r.headers
    write_config('[server]\ncors_origins = ["http://localhost:3000"]\n')
    lib = library()
    with serving(lib) as (url, _):
        r = httpx.options(url + "/v1/chat/completions", headers={
            "Origin": "http://localhost:3000", "Access-Control-Request-Method": "POST",
            "Access-Control-Request-Headers": "authorization, content-type"})
        assert r.status_code == 200 and r.headers["access-control-allow-origin"] == "http://localhost:3000"
        r = httpx.get(url + "/v1/models", headers={"Origin": "http://evil.example"})
        assert "access-control-allow-origin" not in r.headers


@pytest.mark.parametrize("log_questions", [False, True])
def test_logs_hold_questions_only_when_asked(library, caplog, log_questions):
    question = "How long does the Zorblax K3 take to charge, quokka?"
    with caplog.at_level(logging.DEBUG):
        with serving(library(), log_questions=log_questions) as (url, _):
            assert httpx.post(url + "/v1/chat/completions", json=chat_body(question), timeout=30).status_code == 200
            assert httpx.post(url + "/v1/search", json={"query": "quokka charge"}, timeout=30).status_code == 200
    assert "chat: " in caplog.text  # the server did log the answer
    assert ("quokka" in caplog.text) is log_questions
    assert "95 minutes" not in caplog.text  # document text never


def test_a_non_loopback_address_needs_a_token(tmp_path):
    r = run_cli("serve", "--host", "0.0.0.0", "--port", "1", timeout=60)
    assert r.returncode == 1 and "without a token" in r.stderr and "Traceback" not in r.stderr
    from assistant.config import ConfigError
    from assistant.server import check_bind

    for host in ("127.0.0.1", "::1", "localhost", "127.3.2.1"):
        check_bind(host, "")
    for host in ("0.0.0.0", "::", "192.0.2.10"):
        with pytest.raises(ConfigError):
            check_bind(host, "")
        check_bind(host, "a-token")


def test_server_settings_are_typed_with_named_errors(write_config):
    import tomllib

    from assistant.config import ConfigError, ServerConfig, load_config, parse_config
    from conftest import ROOT

    shipped = tomllib.loads((ROOT / "config.toml").read_text(encoding="utf-8"))
    assert parse_config(shipped).server == ServerConfig()  # config.toml documents the defaults
    for body, message in [('[server]\nmax_queue = -1\n', "server.max_queue: value out of range"),
                          ('[server]\nport = "http"\n', "server.port: expected int"),
                          ('[server]\ncors_origins = "*"\n', "server.cors_origins: expected a list"),
                          ('[server]\ntokens = "x"\n', "unknown key server.tokens")]:
        write_config(body)
        with pytest.raises(ConfigError, match=message):
            load_config()


def test_collection_flag_before_or_after_the_command():
    from assistant.cli import build_parser

    parser = build_parser()
    for argv, expected in [(["serve", "--collection", "work"], "work"), (["--collection", "work", "serve"], "work"),
                           (["mcp", "--collection", "work"], "work"), (["--collection", "work", "mcp"], "work"),
                           (["serve"], None)]:
        assert parser.parse_args(argv).collection == expected, argv

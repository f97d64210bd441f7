"""`assistant serve` and `assistant mcp` for real: the real command, the real embedded models on the
sample corpus, driven by the official openai client and the mcp SDK's own stdio client."""

from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

import httpx
import pytest

from conftest import CORPORA, run_cli
from conftest import unshare_works as _unshare_works

pytestmark = [pytest.mark.integration, pytest.mark.llm]

PORT_QUESTION = "Which port does the K3 local REST API listen on?"
QUESTIONS = [  # (question, the fact a right answer and its cited passage hold)
    (PORT_QUESTION, "8470"),
    ("How many employees did Larkspur Robotics have at the end of 2023?", "63"),
]


def _assistant() -> str:
    return shutil.which("assistant", path=str(Path(sys.executable).parent)) or "assistant"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start_server(env: dict, log: Path, *args: str, prefix: list[str] | None = None) -> tuple[subprocess.Popen, str]:
    """`assistant serve` on a free loopback port, its log in ``log``; returns once it answers."""
    port = free_port()
    proc = subprocess.Popen([*(prefix or []), _assistant(), "serve", "--port", str(port), *args],
                            env={**os.environ, **env}, stdout=subprocess.DEVNULL, stderr=open(log, "w"))
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 300
    while True:
        assert proc.poll() is None, log.read_text()
        assert time.monotonic() < deadline, "the server did not start"
        try:
            httpx.get(url + "/v1/models", timeout=2)
            return proc, url
        except httpx.TransportError:
            time.sleep(0.2)


def stop(proc: subprocess.Popen) -> None:
    proc.terminate()
    try:
        proc.wait(15)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()


def rss_kb(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    raise AssertionError("no VmRSS")


@pytest.fixture(scope="module")
def library_env(tmp_path_factory):
    """The sample corpus ingested once with the real embedder; the env that points at it."""
    base = tmp_path_factory.mktemp("served")
    shutil.copytree(CORPORA, base / "corpora")
    (base / "config.toml").write_text('[library]\nfolders = ["corpora"]\n', encoding="utf-8")
    env = {"ASSISTANT_DATA_DIR": str(base / "data"), "ASSISTANT_CONFIG": str(base / "config.toml")}
    r = run_cli("ingest", "--json", env=env)
    assert r.returncode == 0, r.stderr
    return base, env


@pytest.fixture(scope="module")
def server(library_env):
    base, env = library_env
    log = base / "serve.log"
    proc, url = start_server(env, log)
    yield proc, url, log
    stop(proc)


def openai_round_trip(url: str) -> dict:
    """Every question, with and without streaming, through the official client; what came back."""
    from openai import OpenAI

    client = OpenAI(base_url=url + "/v1", api_key="not-needed", max_retries=0, timeout=300)
    out = {"models": [m.id for m in client.models.list().data], "answers": []}
    for question, _ in QUESTIONS:
        plain = client.chat.completions.create(model="assistant", messages=[{"role": "user", "content": question}])
        chunks = list(client.chat.completions.create(model="assistant", stream=True,
                                                     messages=[{"role": "user", "content": question}]))
        out["answers"].append({
            "question": question,
            "text": plain.choices[0].message.content,
            "sources": plain.model_extra["sources"],
            "streamed": "".join(c.choices[0].delta.content or "" for c in chunks if c.choices),
            "last_chunk": chunks[-1].model_extra,
            "finish": chunks[-1].choices[0].finish_reason,
        })
    return out


def check_round_trip(out: dict) -> None:
    assert out["models"][0] == "assistant"
    for answer, (_, expected) in zip(out["answers"], QUESTIONS):
        assert answer["text"].strip(), answer
        assert answer["streamed"] == answer["text"]  # the final answer, not the provisional tokens
        sources = answer["sources"]
        assert sources["how"] in ("model-verified", "quoted") and expected in answer["text"], answer
        assert any(p["cited"] and expected in p["text"] for p in sources["passages"]), sources["passages"]
        assert {"path", "page", "start_line", "end_line", "heading", "text", "cited"} <= set(sources["passages"][0])
        assert answer["last_chunk"]["sources"]["passages"] == sources["passages"] and answer["finish"] == "stop"


def test_the_openai_client_streaming_and_not(server):
    _, url, log = server
    check_round_trip(openai_round_trip(url))
    logged = log.read_text()
    assert "chat: " in logged
    assert "listen on" not in logged and "employees" not in logged  # no question in the log
    assert "Larkspur" not in logged  # no document text


def test_a_follow_up_through_the_openai_client(server):
    from openai import OpenAI

    _, url, _ = server
    client = OpenAI(base_url=url + "/v1", api_key="x", max_retries=0, timeout=300)
    first = client.chat.completions.create(model="assistant", messages=[{"role": "user", "content": PORT_QUESTION}])
    follow = client.chat.completions.create(model="assistant", messages=[
        {"role": "user", "content": PORT_QUESTION},
        {"role": "assistant", "content": first.choices[0].message.content},
        {"role": "user", "content": "And which port do the live events use?"},
    ])
    sources = follow.model_extra["sources"]
    assert "K3" in sources["query"]  # made standalone from the first question
    assert any("8471" in p["text"] for p in sources["passages"])


def test_search_and_status_over_http_are_the_cli_json(server, library_env):
    _, url, _ = server
    _, env = library_env
    query = "rain sensor mowing pause"
    over_http = httpx.post(url + "/v1/search", json={"query": query, "top_k": 4}, timeout=60).json()
    cli = json.loads(run_cli("search", "--json", "--top-k", "4", query, env=env).stdout)
    assert [h["chunk_id"] for h in over_http] == [h["chunk_id"] for h in cli]
    assert [h["score"] for h in over_http] == pytest.approx([h["score"] for h in cli], abs=1e-4)
    status = httpx.get(url + "/v1/status", timeout=60).json()
    assert status == json.loads(run_cli("status", "--json", env=env).stdout)


def test_four_clients_two_questions_each_with_the_real_model(server):
    proc, url, _ = server
    httpx.post(url + "/v1/chat/completions", json={"messages": [{"role": "user", "content": PORT_QUESTION}]}, timeout=300)
    before = rss_kb(proc.pid)
    results: list[tuple[int, dict]] = []

    def client(i: int) -> None:
        with httpx.Client(base_url=url, timeout=600) as c:
            for question, _ in QUESTIONS:
                r = c.post("/v1/chat/completions", json={"messages": [{"role": "user", "content": question}],
                                                         "stream": i % 2 == 1})
                results.append((r.status_code, r.text))

    threads = [threading.Thread(target=client, args=(i,)) for i in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(900)
    assert len(results) == 8 and all(status == 200 for status, _ in results), [s for s, _ in results]
    assert all("[DONE]" in text or '"chat.completion"' in text for _, text in results)
    assert proc.poll() is None
    assert rss_kb(proc.pid) <= before * 1.10, (before, rss_kb(proc.pid))


def _lo_up() -> None:
    """Switch on the loopback interface of a fresh network namespace (it starts down)."""
    import fcntl
    import struct

    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        flags = struct.unpack("16sH", fcntl.ioctl(s, 0x8913, struct.pack("16sH22x", b"lo", 0))[:18])[1]  # SIOCGIFFLAGS
        fcntl.ioctl(s, 0x8914, struct.pack("16sH22x", b"lo", flags | 1))  # SIOCSIFFLAGS, IFF_UP


def offline_main(env_json: str, log: str) -> None:
    """Inside `unshare -n`: loopback only, the server and the openai client; prints what came back."""
    _lo_up()
    proc, url = start_server(json.loads(env_json), Path(log))
    try:
        print(json.dumps(openai_round_trip(url)))
    finally:
        stop(proc)


@pytest.mark.skipif(not _unshare_works(), reason="`unshare -n` is not permitted here (needs root or user namespaces)")
def test_the_openai_client_with_the_network_switched_off(library_env):
    base, env = library_env
    env = {**env, "HF_HUB_OFFLINE": "", "TRANSFORMERS_OFFLINE": ""}  # the code sets them itself
    code = ("import sys; sys.path.insert(0, sys.argv[1]); import test_serve_integration as t; "
            "t.offline_main(sys.argv[2], sys.argv[3])")
    r = subprocess.run(["unshare", "-n", sys.executable, "-c", code, str(Path(__file__).parent), json.dumps(env),
                        str(base / "offline.log")], capture_output=True, text=True, timeout=900, env={**os.environ, **env})
    assert r.returncode == 0, r.stderr[-3000:]
    check_round_trip(json.loads(r.stdout.strip().splitlines()[-1]))


# --- MCP -------------------------------------------------------------------------------------


@pytest.mark.parametrize("offline", [pytest.param(True, id="unshare-n"), pytest.param(False, id="network")])
def test_the_mcp_sdk_client_calls_every_tool(library_env, offline):
    if offline and not _unshare_works():
        pytest.skip("`unshare -n` is not permitted here")
    if not offline and _unshare_works():
        pytest.skip("ran under `unshare -n`: once is enough for the real model")
    import anyio
    from mcp import ClientSession, StdioServerParameters, stdio_client

    base, env = library_env
    corpus = base / "corpora"
    not_indexed = corpus / "later.txt"  # on disk, beside indexed files, but not in the index
    not_indexed.write_text("A secret written after the ingest.\n", encoding="utf-8")
    command = ["unshare", "-n", _assistant(), "mcp"] if offline else [_assistant(), "mcp"]
    params = StdioServerParameters(command=command[0], args=command[1:], env={**os.environ, **env})

    def payload(result):
        assert not result.is_error, result.content
        return result.structured_content.get("result", result.structured_content)

    async def session_calls():
        async with stdio_client(params) as (read, write):
            async with ClientSession(read, write) as session:
                await session.initialize()
                tools = {t.name: t for t in (await session.list_tools()).tools}
                assert set(tools) == {"search", "ask", "list_files", "read_passage"}
                assert set(tools["search"].input_schema["properties"]) == {"query", "k", "path_glob", "file_type"}

                hits = payload(await session.call_tool("search", {"query": "K3 REST API port", "k": 3}))
                assert len(hits) == 3 and hits[0]["path"].endswith("k3_api_guide.rst")
                pdf = payload(await session.call_tool("search", {"query": "employees", "k": 2, "file_type": "pdf"}))
                assert pdf and all(h["path"].endswith(".pdf") and h["page"] for h in pdf)

                answer = payload(await session.call_tool("ask", {"question": PORT_QUESTION}))
                assert "8470" in answer["answer"] and any(p["cited"] and "8470" in p["text"] for p in answer["sources"]["passages"])

                files = payload(await session.call_tool("list_files", {"path_glob": "*.rst"}))
                assert [Path(f["path"]).name for f in files] == ["k3_api_guide.rst"]
                every = payload(await session.call_tool("list_files", {}))
                assert str(not_indexed) not in {f["path"] for f in every} and len(every) >= 10

                hit = hits[0]
                passage = payload(await session.call_tool("read_passage", {
                    "path": hit["path"], "start_line": hit["start_line"], "end_line": hit["end_line"]}))
                assert passage["text"].strip() and passage["text"].split("\n")[-1] in hit["text"]
                on_disk = (corpus / "k3_api_guide.rst").read_text().split("\n")
                assert passage["text"] == "\n".join(on_disk[hit["start_line"] - 1:hit["end_line"]])

                for path in ("/etc/passwd", str(not_indexed), str(corpus / ".." / "config.toml")):
                    refused = await session.call_tool("read_passage", {"path": path, "start_line": 1, "end_line": 5})
                    assert refused.is_error and "not in the index" in refused.content[0].text, path

                resources = (await session.list_resources()).resources
                assert len(resources) == len(every)
                guide = next(r for r in resources if str(r.uri).endswith("k3_api_guide.rst"))
                text = (await session.read_resource(str(guide.uri))).contents[0].text
                assert "8470" in text
                with pytest.raises(Exception, match="not in the index"):
                    await session.read_resource(not_indexed.as_uri())

    anyio.run(session_calls)

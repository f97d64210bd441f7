"""The library against a real Chroma server ([store] kind = "http"), started on loopback for these tests.

The open-source Chroma 1.x server has no authentication of its own, so the
token path is checked through a tiny loopback reverse proxy that demands
``Authorization: Bearer <token>`` before forwarding, the way a deployment puts
an authenticating proxy in front of Chroma.
"""

from __future__ import annotations

import http.client
import http.server
import json
import os
import shutil
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from conftest import run_cli

pytestmark = pytest.mark.integration

CHROMA = Path(sys.executable).parent / "chroma"
START_TIMEOUT_S = 60


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _heartbeat(port: int) -> bool:
    try:
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=2)
        conn.request("GET", "/api/v2/heartbeat")
        ok = conn.getresponse().status == 200
        conn.close()
        return ok
    except OSError:
        return False


@pytest.fixture(scope="module")
def chroma_server(tmp_path_factory):
    """(port, process) of a fresh `chroma run` on 127.0.0.1, stopped when the module is done."""
    exe = str(CHROMA) if CHROMA.exists() else shutil.which("chroma")
    if not exe:
        pytest.skip("the chroma CLI is not installed in this environment")
    base = tmp_path_factory.mktemp("chroma-server")
    port = _free_port()
    log = open(base / "server.log", "wb")
    proc = subprocess.Popen(
        [exe, "run", "--path", str(base / "db"), "--host", "127.0.0.1", "--port", str(port)],
        stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
        env={**os.environ, "ANONYMIZED_TELEMETRY": "False"},
    )
    try:
        deadline = time.monotonic() + START_TIMEOUT_S
        while not _heartbeat(port):
            if proc.poll() is not None:
                pytest.fail(f"chroma run exited with {proc.returncode}: {(base / 'server.log').read_text()[-2000:]}")
            if time.monotonic() > deadline:
                pytest.fail(f"chroma run not ready after {START_TIMEOUT_S} s")
            time.sleep(0.2)
        yield port, proc
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=15)
        log.close()


class _TokenProxy(http.server.ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self, upstream: int, token: str):
        self.upstream, self.token, self.seen = upstream, token, []
        super().__init__(("127.0.0.1", 0), _ProxyHandler)


class _ProxyHandler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, *a):  # quiet
        pass

    def _forward(self):
        srv: _TokenProxy = self.server  # type: ignore[assignment]
        auth = self.headers.get("Authorization")
        srv.seen.append(auth)
        body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
        if auth != f"Bearer {srv.token}":
            payload = b'{"error":"Unauthorized"}'
            self.send_response(401)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(payload)))
            self.end_headers()
            self.wfile.write(payload)
            return
        conn = http.client.HTTPConnection("127.0.0.1", srv.upstream, timeout=60)
        headers = {k: v for k, v in self.headers.items() if k.lower() not in ("host", "authorization", "connection")}
        conn.request(self.command, self.path, body=body or None, headers=headers)
        resp = conn.getresponse()
        data = resp.read()
        self.send_response(resp.status)
        for k, v in resp.getheaders():
            if k.lower() not in ("transfer-encoding", "connection", "content-length"):
                self.send_header(k, v)
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)
        conn.close()

    do_GET = do_POST = do_PUT = do_DELETE = do_PATCH = _forward


@pytest.fixture
def token_proxy(chroma_server):
    proxy = _TokenProxy(chroma_server[0], "s3cret-token")
    thread = threading.Thread(target=proxy.serve_forever, daemon=True)
    thread.start()
    try:
        yield proxy
    finally:
        proxy.shutdown()
        proxy.server_close()


def _http_config(write_config, port: int, collection: str, token: str = "") -> None:
    write_config(
        f'[library]\ncollection = "{collection}"\n'
        f'[store]\nkind = "http"\nhost = "127.0.0.1"\nport = {port}\ntoken = "{token}"\n'
    )


def test_ingest_search_ask_remove_through_the_server(chroma_server, docs, write_config, fake_library):
    port, _ = chroma_server
    _http_config(write_config, port, "plain")
    lib = fake_library()
    report = lib.ingest([docs])
    assert report.files_failed == [] and report.files_ingested == 3
    col = lib.store.collection
    assert col.count() == report.chunks_total
    assert (col.metadata or {}).get("hnsw:space") == "cosine"  # the create-time metadata reaches the server

    hits = lib.search("Zorblax charges minutes", top_k=3)
    assert hits and hits[0].path.endswith("manual.md")
    dense = lib.search("Tulips planted October", top_k=2, mode="dense")
    assert dense[0].path.endswith("garden.md") and 0.0 < dense[0].score <= 1.0001
    answer = lib.ask("How long does the Zorblax K3 take to charge?")
    assert "95 minutes" in answer.text and answer.sources

    from assistant.retrieve import Filters

    only_txt = lib.search("meeting", filters=Filters(file_types=("txt",)))
    assert only_txt and all(h.path.endswith(".txt") for h in only_txt)

    # changes and removals delete vectors on the server
    (docs / "notes.txt").write_text("Meeting notes, 5 May.\nBoris Ulm now leads the firmware team.\n", encoding="utf-8")
    lib.ingest([docs])
    assert col.count() == lib.store.counts()["chunks"]
    files, chunks = lib.remove(docs / "sub")
    assert files == 1 and chunks >= 1
    assert col.count() == lib.store.counts()["chunks"]
    assert all(not h.path.endswith("garden.md") for h in lib.search("tulips", top_k=5))

    # a second Library over the same data folder and server sees the same index
    again = fake_library()
    assert again.search("Boris Ulm firmware", top_k=1)[0].path.endswith("notes.txt")


def test_large_batches_through_the_server(chroma_server, write_config):
    """More vectors than one Chroma request may carry (max batch 5461) are written and deleted in batches."""
    import numpy as np

    from assistant.config import load_config
    from assistant.store import ChunkRow, FileRow, Store

    port, _ = chroma_server
    _http_config(write_config, port, "big")
    store = Store(load_config())
    n = 6000
    rng = np.random.default_rng(0)
    vecs = rng.standard_normal((n, 16)).astype(np.float32)
    vecs /= np.linalg.norm(vecs, axis=1, keepdims=True)
    chunks = [ChunkRow(f"id{i:05}", "/big.txt", i, f"text {i}", f"text {i}", f"h{i}", None, i, i, None) for i in range(n)]
    row = FileRow("/big.txt", "c1", 1, 0, n, "text", None, time.time())
    added, removed = store.replace_files([row], chunks, vecs)
    assert (added, removed) == (n, 0) and store.collection.count() == n
    assert store.dense_search(vecs[123], 3)[0][0] == "id00123"
    assert len(store.embeddings_for([f"h{i}" for i in range(n)])) == n
    assert store.remove_files(["/big.txt"]) == n
    assert store.collection.count() == 0


def test_token_is_sent_as_bearer_header(chroma_server, token_proxy, docs, write_config, fake_library):
    _http_config(write_config, token_proxy.server_address[1], "authed", token="s3cret-token")
    lib = fake_library()
    lib.ingest([docs])
    assert lib.search("tulips", top_k=1)[0].path.endswith("garden.md")
    assert token_proxy.seen and all(a == "Bearer s3cret-token" for a in token_proxy.seen)

    _http_config(write_config, token_proxy.server_address[1], "authed", token="wrong")
    with pytest.raises(Exception):
        fake_library().search("tulips")


def test_status_shows_the_http_store(chroma_server, docs, write_config, fake_library):
    port, _ = chroma_server
    _http_config(write_config, port, "status")
    fake_library().ingest([docs])
    r = run_cli("status", "--json")
    assert r.returncode == 0, r.stderr
    status = json.loads(r.stdout)
    assert status["store"] == f"http://127.0.0.1:{port}"
    assert status["collection"] == "status"
    assert status["files"] == 3 and status["chunks"] >= 3

"""A bounded load test: 20 concurrent clients x 3 questions against `assistant serve` (its own
process, a slow fake generator): each request gets an answer or a clean 503; no crash; RSS stable."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
import time

import httpx

from test_serve_integration import free_port, rss_kb, stop

SERVER = """
import sys, time
from pathlib import Path
from assistant.config import load_config
from assistant.library import Library
from assistant.server import serve
from assistant.testing import FakeEmbedder, FakeGenerator

class SlowGenerator(FakeGenerator):  # about 0.2 s an answer: enough for a queue to form
    def stream(self, request):
        for piece in super().stream(request):
            time.sleep(0.02)
            yield piece

lib = Library(load_config(), embedder=FakeEmbedder(), generator=SlowGenerator())
lib.ingest([Path(sys.argv[1])])
serve(lib, host="127.0.0.1", port=int(sys.argv[2]))
"""

QUESTIONS = ["How long does the Zorblax K3 take to charge?", "Who leads the firmware team?", "When should tulips be planted?"]


def one_round(url: str, clients: int = 20) -> list[tuple[int, httpx.Headers, str]]:
    results: list[tuple[int, httpx.Headers, str]] = []
    start = threading.Barrier(clients)

    def client(i: int) -> None:
        with httpx.Client(base_url=url, timeout=120) as c:
            start.wait()
            for q in QUESTIONS:
                r = c.post("/v1/chat/completions", json={"messages": [{"role": "user", "content": q}], "stream": i % 2 == 0})
                results.append((r.status_code, r.headers, r.text))

    threads = [threading.Thread(target=client, args=(i,)) for i in range(clients)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(300)
    return results


def check(results) -> tuple[int, int]:
    assert len(results) == 60
    answered = refused = 0
    for status, headers, text in results:
        if status == 200:
            if headers["content-type"].startswith("text/event-stream"):
                assert text.rstrip().endswith("data: [DONE]") and '"sources"' in text
            else:
                assert json.loads(text)["choices"][0]["message"]["content"]
            answered += 1
        else:
            assert status == 503, (status, text)
            assert int(headers["retry-after"]) >= 1 and json.loads(text)["error"]["type"] == "overloaded_error"
            refused += 1
    return answered, refused


def test_twenty_clients_three_questions_each(tmp_path, docs):
    port = free_port()
    log = tmp_path / "serve.log"
    proc = subprocess.Popen([sys.executable, "-c", SERVER, str(docs), str(port)], env=dict(os.environ),
                            stdout=subprocess.DEVNULL, stderr=open(log, "w"))
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 120
        while True:
            assert proc.poll() is None, log.read_text()
            assert time.monotonic() < deadline
            try:
                httpx.get(url + "/v1/status", timeout=2)
                break
            except httpx.TransportError:
                time.sleep(0.1)
        check(one_round(url))  # warm: every code path has run once
        before = rss_kb(proc.pid)
        answered, refused = check(one_round(url))
        after = rss_kb(proc.pid)
        assert answered >= 9 and refused >= 1, (answered, refused)  # the queue held 1 + 8 and turned the rest away
        assert proc.poll() is None and httpx.get(url + "/v1/status", timeout=10).status_code == 200
        assert after <= before * 1.10, (before, after)
        assert "Traceback" not in log.read_text()
    finally:
        stop(proc)

"""HTTP API speed: `assistant serve` against the Library in process, same questions, same run.

    .venv/bin/python bench/serve.py [--rounds 3] [--seconds 10]

Indexes corpora/ into a fresh data folder, starts `assistant serve` on a free loopback port
over it, and loads a Library in this process over the same folder (both with the embedded
models). Then:

1. First token through the HTTP API (streaming: the first chunk with answer text) against the
   time `Library.ask_stream` takes to yield its final Answer in process: the API sends only
   the final, checked answer, so that is what its first token can be compared with. The two
   sides take turns question by question (which goes first alternates by round); medians.
2. `/v1/search` requests per second with 1, 4 and 16 concurrent clients (each its own
   connection, for ``--seconds`` each), beside `Library.search` in process on one thread.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

from answer import QUESTIONS  # bench/answer.py's questions: the script's folder is on sys.path

ROOT = Path(__file__).resolve().parent.parent
QUERIES = ["K3 charging time", "REST API port", "employees 2023", "mowing height", "PA-29 recall", "rain sensor",
           "warranty period", "spare blades price", "quiet mode", "firmware update"]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def in_process(lib, question: str) -> float:
    from assistant.types import Answer

    t0 = time.perf_counter()
    for item in lib.ask_stream(question):
        if isinstance(item, Answer):
            return time.perf_counter() - t0
    raise AssertionError("no answer")


def over_http(client, question: str) -> float:
    t0 = time.perf_counter()
    body = {"model": "assistant", "stream": True, "messages": [{"role": "user", "content": question}]}
    with client.stream("POST", "/v1/chat/completions", json=body) as r:
        for line in r.iter_lines():
            if line.startswith("data: {"):
                chunk = json.loads(line[6:])
                if chunk["choices"] and chunk["choices"][0]["delta"].get("content"):
                    return time.perf_counter() - t0
    raise AssertionError("no content chunk")


def search_rate(url: str, clients: int, seconds: float) -> float:
    import httpx

    counts = [0] * clients
    stop_at = time.perf_counter() + seconds

    def run(i: int) -> None:
        with httpx.Client(base_url=url, timeout=60) as c:
            n = i
            while time.perf_counter() < stop_at:
                r = c.post("/v1/search", json={"query": QUERIES[n % len(QUERIES)]})
                r.raise_for_status()
                counts[i] += 1
                n += 1

    t0 = time.perf_counter()
    threads = [threading.Thread(target=run, args=(i,)) for i in range(clients)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return sum(counts) / (time.perf_counter() - t0)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--seconds", type=float, default=10.0, help="per concurrency level of the search test")
    args = ap.parse_args()
    tmp = Path(tempfile.mkdtemp(prefix="bench-serve-"))
    (tmp / "config.toml").write_text("", encoding="utf-8")
    os.environ.update({"ASSISTANT_DATA_DIR": str(tmp / "data"), "ASSISTANT_CONFIG": str(tmp / "config.toml"),
                       "HF_HUB_OFFLINE": "1"})

    import httpx

    from assistant.config import load_config
    from assistant.library import Library

    lib = Library(load_config())
    lib.ingest([ROOT / "corpora"])
    port = free_port()
    exe = shutil.which("assistant", path=str(Path(sys.executable).parent)) or "assistant"
    server = subprocess.Popen([exe, "serve", "--port", str(port)], stdout=subprocess.DEVNULL, stderr=open(tmp / "serve.log", "w"))
    url = f"http://127.0.0.1:{port}"
    try:
        client = httpx.Client(base_url=url, timeout=600)
        while True:
            try:
                client.get("/v1/models")
                break
            except httpx.TransportError:
                assert server.poll() is None, (tmp / "serve.log").read_text()
                time.sleep(0.2)
        in_process(lib, QUESTIONS[0])  # warm: models loaded, first-call costs paid on both sides
        over_http(client, QUESTIONS[0])

        ratios, ours, http = [], [], []
        for rnd in range(args.rounds):
            for q in QUESTIONS:
                if rnd % 2 == 0:
                    a, b = in_process(lib, q), over_http(client, q)
                else:
                    b, a = over_http(client, q), in_process(lib, q)
                ours.append(a)
                http.append(b)
                ratios.append(b / a)
        print(f"first token, streaming, {len(QUESTIONS)} questions x {args.rounds} rounds (medians):")
        print(f"  Library.ask_stream in process, to the final Answer: {statistics.median(ours) * 1000:8.1f} ms")
        print(f"  HTTP API, to the first content chunk:                {statistics.median(http) * 1000:8.1f} ms")
        print(f"  ratio HTTP / in process: median {statistics.median(ratios):.3f}, worst {max(ratios):.3f}")

        n, t0 = 0, time.perf_counter()
        while time.perf_counter() - t0 < args.seconds:
            lib.search(QUERIES[n % len(QUERIES)])
            n += 1
        print(f"/v1/search requests per second ({args.seconds:.0f} s each):")
        print(f"  Library.search in process, 1 thread: {n / (time.perf_counter() - t0):7.1f}")
        for clients in (1, 4, 16):
            print(f"  {clients:2d} concurrent clients:               {search_rate(url, clients, args.seconds):7.1f}")
    finally:
        server.terminate()
        server.wait(15)
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()

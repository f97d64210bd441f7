"""Answers while the machine is busy: `ask` against raw llama-cpp-python under the same load.

    .venv/bin/python bench/contention.py [--repeat 2] [--settings today,gate,gate-passive,...]

Indexes corpora/ into a fresh data folder and generates a second folder of text files for a
background ingest. Then, for each thread setting, a fresh worker process (``OMP_WAIT_POLICY``
is read when llama.cpp's OpenMP runtime loads) loads a Library and a raw ``Llama`` on the
same GGUF with the same settings, and measures three cases:

  (a) alone;
  (b) while an ingest of the second folder embeds in the same process (another collection of
      the same Library, in a thread: what the TUI does when you ask during `ctrl+r`);
  (c) while another CPU-bound process runs (a busy loop on one core: a browser tab, a build).

In each case every question is asked through ``Library.ask_stream`` and its prompt (the one
the assistant sent, recorded) is replayed with the raw ``Llama.create_completion``; both
generate a fixed number of tokens (stops dropped), as in bench/answer.py. Printed per case:
first-token time (the assistant's from the start of ``ask_stream``, so with retrieval and
sentence scoring; raw's from the call), tokens/s after the first, prompt tokens/s (prompt
tokens over raw's first-token time), and in (b) the ingest's chunks/s. Medians over questions
x repeats; ratios to (a) of the same setting, in the same worker.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import random
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
QUESTIONS = [
    "How long does the K3 take to charge?",
    "Which port does the K3 local REST API listen on?",
    "When do the replacement PA-29 adapters ship?",
]

# name: (environment, [generation] threads, threads_batch, [embedding] threads, question gate on)
# threads: ALL = every core, fixed (the default until `auto`); 0 = auto (the default now: at each
# answer the cores other processes leave free, assistant/cores.py); a number = that many, fixed
ALL = -1
SETTINGS = {
    "today": ({}, ALL, 0, 0, False),  # before this bench: 2 threads everywhere, OpenMP's default wait, ingest never waits
    "gate": ({}, ALL, 0, 0, True),  # the ingest in the process waits between batches while a question is answered
    "gate-passive": ({"OMP_WAIT_POLICY": "PASSIVE"}, ALL, 0, 0, True),
    "gate-1thread": ({}, 1, 1, 0, True),
    "gate-passive-1thread": ({"OMP_WAIT_POLICY": "PASSIVE"}, 1, 1, 0, True),
    "passive": ({"OMP_WAIT_POLICY": "PASSIVE"}, ALL, 0, 0, False),
    "auto": ({"OMP_WAIT_POLICY": "PASSIVE"}, 0, 0, 0, True),  # the defaults: gate, PASSIVE, threads = 0
}


class _Stop(Exception):
    pass


def worker(args) -> None:
    env_name = args.worker
    _, threads, threads_batch, embed_threads, gate = SETTINGS[env_name]
    # first, before the generator plugin sets its default OMP_WAIT_POLICY (PASSIVE): OpenMP reads
    # it once, when llama.cpp loads, so a setting without it in its environment gets OpenMP's default
    from llama_cpp import Llama

    from assistant.config import load_config
    from assistant.library import Library
    from assistant.types import Answer, Draft, Retrieved

    from assistant.cores import usable_cores

    cfg = load_config()
    cfg.generation.threads = usable_cores() if threads == ALL else threads
    cfg.embedding.threads = embed_threads
    if threads_batch:
        cfg.plugins = {**cfg.plugins, "llamacpp": {"threads_batch": threads_batch}}
    lib = Library(cfg)
    if not gate:
        lib._questions.wait_until_none = lambda: None
    gen = lib.generator
    lib.ask(QUESTIONS[0])  # loads everything
    seen: list = []
    original = gen.stream

    def fixed_length(request):
        request = dataclasses.replace(request, stop=(), max_tokens=args.max_tokens)
        seen.append(request)
        return original(request)

    gen.stream = fixed_length
    raw = Llama(model_path=str(gen.path), n_ctx=gen.n_ctx, n_threads=gen.threads, n_threads_batch=gen.threads_batch,
                n_batch=gen.n_batch, verbose=False)

    def one_round(out: dict) -> None:
        for q in QUESTIONS:
            t0 = time.perf_counter()
            first = start = None
            n = 0
            for item in lib.ask_stream(q):
                if isinstance(item, (Answer, Draft, Retrieved)):
                    continue
                now = time.perf_counter()
                if first is None:
                    first, start = now - t0, now
                n += 1
            if first is None or n < 2:
                continue
            out["ours_first"].append(first)
            out["threads"].append(getattr(gen, "threads_now", (gen.threads,))[0])
            out["ours_rate"].append((n - 1) / (time.perf_counter() - start))
            req = seen[-1]
            out["prompt_tokens"].append(gen.count_tokens(req.prompt or ""))
            raw.reset()
            t0 = time.perf_counter()
            first = start = None
            m = 0
            for _ in raw.create_completion(req.prompt, max_tokens=req.max_tokens, temperature=0.0, repeat_penalty=1.1,
                                           stream=True):
                now = time.perf_counter()
                if first is None:
                    first, start = now - t0, now
                m += 1
            out["raw_first"].append(first)
            out["raw_rate"].append((m - 1) / (time.perf_counter() - start))

    results = {}
    for case in ("a", "b", "c"):
        out = {k: [] for k in ("ours_first", "ours_rate", "raw_first", "raw_rate", "prompt_tokens", "threads")}
        stop = threading.Event()
        hog = bg = None
        chunks = [0]
        if case == "b":
            other = lib.for_collection(f"bg-{os.getpid()}-{int(time.time())}")

            def on_event(ev):
                if ev.kind == "embedded":
                    chunks[0] = ev.chunks
                if stop.is_set():
                    raise _Stop

            def ingest():
                try:
                    other.ingest([Path(args.bg)], on_event=on_event, wait_for_lock=True)
                except _Stop:
                    pass

            bg = threading.Thread(target=ingest, daemon=True)
            bg.start()
            while chunks[0] == 0 and bg.is_alive():  # embedding has started
                time.sleep(0.1)
        if case == "c":
            hog = subprocess.Popen([sys.executable, "-c", "while True: pass"])
            time.sleep(1.0)
        t_case = time.perf_counter()
        c0 = chunks[0]
        for _ in range(args.repeat):
            one_round(out)
        elapsed = time.perf_counter() - t_case
        if case == "b":
            if not bg.is_alive():
                print("warning: the background ingest finished before the measurement did", file=sys.stderr)
            stop.set()
            bg.join()
            out["ingest_chunks_per_s"] = [(chunks[0] - c0) / elapsed]
        if hog is not None:
            hog.kill()
            hog.wait()
        results[case] = {k: statistics.median(v) for k, v in out.items() if v}
    print(json.dumps(results))


def _bg_folder(folder: Path, files: int) -> None:
    words = " ".join(p.read_text(errors="ignore") for p in (ROOT / "corpora").rglob("*.md")).split()
    rng = random.Random(7)
    folder.mkdir(parents=True, exist_ok=True)
    for i in range(files):
        paras = ["\n".join(" ".join(rng.choice(words) for _ in range(rng.randint(12, 30))) + "." for _ in range(8))
                 for _ in range(6)]
        (folder / f"note{i:04}.txt").write_text("\n\n".join(paras))


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--repeat", type=int, default=2)
    ap.add_argument("--max-tokens", type=int, default=48)
    ap.add_argument("--settings", default="gate-passive,gate-passive-1thread,auto")
    ap.add_argument("--bg-files", type=int, default=600, help="files of the background ingest (enough to outlast case b)")
    ap.add_argument("--worker", help=argparse.SUPPRESS)
    ap.add_argument("--bg", help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.worker:
        return worker(args)
    tmp = Path(tempfile.mkdtemp(prefix="bench-contention-"))
    env = {**os.environ, "ASSISTANT_DATA_DIR": str(tmp / "data"), "HF_HUB_OFFLINE": "1"}
    config = tmp / "config.toml"
    config.write_text("")
    env["ASSISTANT_CONFIG"] = str(config)
    assistant = str(Path(sys.executable).parent / "assistant")
    subprocess.run([assistant, "ingest", str(ROOT / "corpora")], env=env, check=True, stdout=subprocess.DEVNULL)
    _bg_folder(tmp / "bg", args.bg_files)
    rows = []
    for name in args.settings.split(","):
        extra = SETTINGS[name][0]
        r = subprocess.run([sys.executable, __file__, "--worker", name, "--bg", str(tmp / "bg"), "--repeat",
                            str(args.repeat), "--max-tokens", str(args.max_tokens)],
                           env={**env, **extra}, capture_output=True, text=True)
        if r.returncode != 0:
            print(f"{name}: failed\n{r.stderr[-3000:]}", file=sys.stderr)
            continue
        res = json.loads(r.stdout.strip().splitlines()[-1])
        rows.append((name, res))
        load = os.getloadavg()[0]
        gen_threads = {ALL: "all", 0: "auto"}.get(SETTINGS[name][1], SETTINGS[name][1])
        print(f"\n{name}  (env {extra or '-'}, generation threads {gen_threads}, batch threads "
              f"{SETTINGS[name][2] or 'as threads'}, question gate {'on' if SETTINGS[name][4] else 'off'}; load {load:.1f})")
        print(f"  {'case':<34}{'first token s':>14}{'raw':>8}{'x raw':>7}{'x (a)':>7}{'tok/s':>8}{'raw':>8}"
              f"{'prompt tok/s':>13}{'ingest ch/s':>12}{'threads':>8}")
        for case, label in (("a", "(a) alone"), ("b", "(b) ingest in the same process"),
                            ("c", "(c) another CPU-bound process")):
            if case not in res or "ours_first" not in res[case]:
                continue
            c, a = res[case], res["a"]
            prompt_rate = c["prompt_tokens"] / c["raw_first"]
            ingest = f"{c['ingest_chunks_per_s']:.1f}" if "ingest_chunks_per_s" in c else ""
            print(f"  {label:<34}{c['ours_first']:>14.2f}{c['raw_first']:>8.2f}{c['ours_first'] / c['raw_first']:>7.2f}"
                  f"{c['ours_first'] / a['ours_first']:>7.2f}{c['ours_rate']:>8.1f}{c['raw_rate']:>8.1f}"
                  f"{prompt_rate:>13.0f}{ingest:>12}{c.get('threads', 0):>8.1f}", flush=True)
        print(f"  prompt tokens (median): {res['a']['prompt_tokens']:.0f}", flush=True)
    print("\n" + json.dumps(rows))


if __name__ == "__main__":
    main()

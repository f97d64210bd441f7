"""Answer speed: `assistant ask` against a raw llama-cpp-python call with the same prompt and model.

    .venv/bin/python bench/answer.py [--repeat 3] [--max-tokens 128]

Indexes corpora/ into a fresh data folder, asks a few questions through the
Library (retrieval, sentence selection, prompt, streaming, verification), records
each request the generator received, and replays it with a raw
``Llama.create_completion`` on a second instance of the same GGUF with the same
settings: the same prompt, the same excerpts, the same length. Also prints when
the quoted answer (``Draft``) was shown, before the model read its prompt. Prints time to first
token and tokens/s side by side, with ratios (medians over questions x repeats).

The assistant's one-line answers are 5-8 tokens, too short for a rate. So by
default both sides generate a fixed length: the request's stop strings are
dropped and ``max_tokens`` is set to ``--max-tokens`` (at temperature 0 both
sides then produce the same tokens; the output says whether they did).
``--max-tokens 0`` keeps the requests exactly as the assistant makes them.
"""

from __future__ import annotations

import argparse
import dataclasses
import os
import statistics
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
QUESTIONS = [
    "How long does the K3 take to charge?",
    "Which port does the K3 local REST API listen on?",
    "How many employees did Larkspur Robotics have at the end of 2023?",
    "What is the default mowing height?",
    "When do the replacement PA-29 adapters ship?",
]


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--max-tokens", type=int, default=128, help="fixed generation length; 0: as asked")
    args = ap.parse_args()
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ["ASSISTANT_DATA_DIR"] = tempfile.mkdtemp(prefix="bench-answer-")

    from llama_cpp import Llama

    from assistant.config import Config
    from assistant.library import Library
    from assistant.types import Answer, Draft, Retrieved

    lib = Library(Config())
    lib.ingest([ROOT / "corpora"])
    gen = lib.generator
    seen: list = []
    original = gen.stream

    def recording(request):
        if args.max_tokens:
            request = dataclasses.replace(request, stop=(), max_tokens=args.max_tokens)
        seen.append(request)
        return original(request)

    gen.stream = recording
    raw = Llama(model_path=str(gen.path), n_ctx=gen.n_ctx, n_threads=gen.threads, n_batch=gen.n_batch, verbose=False)

    ours_ft, ours_tps, raw_ft, raw_tps, drafts, prompt_tokens = [], [], [], [], [], []
    same = 0
    for _ in range(args.repeat):
        for q in QUESTIONS:
            t0 = time.perf_counter()
            first = None
            n = 0
            answer = None
            text: list[str] = []
            gen_start = None
            for item in lib.ask_stream(q):
                if isinstance(item, Answer):
                    answer = item
                    continue
                if isinstance(item, Retrieved):
                    continue
                if isinstance(item, Draft):  # the quoted answer, shown before the model reads its prompt
                    drafts.append(time.perf_counter() - t0)
                    continue
                now = time.perf_counter()
                if first is None:
                    first, gen_start = now - t0, now
                n += 1
                text.append(item)
            if answer is None or not seen or first is None or n < 2:
                continue
            ours_ft.append(first)
            ours_tps.append((n - 1, time.perf_counter() - gen_start))
            req = seen[-1]
            prompt_tokens.append(gen.count_tokens(req.prompt or ""))
            t0 = time.perf_counter()
            first_raw, m = None, 0
            raw_text: list[str] = []
            for ch in raw.create_completion(
                req.prompt, max_tokens=req.max_tokens, temperature=req.temperature, stop=list(req.stop),
                repeat_penalty=1.1, stream=True,
            ):
                now = time.perf_counter()
                if first_raw is None:
                    first_raw, raw_start = now - t0, now
                m += 1
                raw_text.append(ch["choices"][0]["text"])
            same += "".join(text).strip() == "".join(raw_text).strip()
            raw_ft.append(first_raw)
            raw_tps.append((m - 1, time.perf_counter() - raw_start) if m > 1 else (0, 0.0))
            raw.reset()  # the raw side gets no prompt-cache help from the previous question

    med = statistics.median

    def rate(pairs):  # tokens after the first, over the time they took, summed over all answers
        return sum(n for n, _ in pairs) / max(sum(t for _, t in pairs), 1e-9)

    print(f"{'measure (' + str(len(ours_ft)) + ' answers)':<40}{'assistant':>12}{'raw llama':>12}{'ratio':>8}")
    print(f"{'time to first token, median (s)':<40}{med(ours_ft):>12.3f}{med(raw_ft):>12.3f}{med(ours_ft) / med(raw_ft):>8.2f}")
    if drafts:
        print(f"{'time to the quoted answer, median (s)':<40}{med(drafts):>12.3f}")
    print(f"{'prompt tokens, median':<40}{med(prompt_tokens):>12.0f}{med(prompt_tokens):>12.0f}")
    print(f"{'tokens/s (all answers)':<40}{rate(ours_tps):>12.1f}{rate(raw_tps):>12.1f}{rate(ours_tps) / rate(raw_tps):>8.2f}")
    print(f"{'tokens generated after the first':<40}{sum(n for n, _ in ours_tps):>12}{sum(n for n, _ in raw_tps):>12}")
    print(f"identical outputs: {same} of {len(ours_ft)}; "
          + (f"fixed length: stops dropped, max_tokens={args.max_tokens}" if args.max_tokens else "requests as asked"))
    print("assistant's first token includes retrieval (query embedding, dense + keyword search, fusion).")


if __name__ == "__main__":
    main()

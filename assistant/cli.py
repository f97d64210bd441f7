"""The `assistant` command. With no arguments it opens the TUI."""

from __future__ import annotations

import argparse
import json
import os
import sys
import warnings
from pathlib import Path

EXIT_OK = 0
EXIT_ERROR = 1
EXIT_USAGE = 2
EXIT_PARTIAL = 3  # done, but some files failed
EXIT_BROKEN_PIPE = 141  # the output's reader closed it (128 + SIGPIPE, what a shell reports)

__all__ = ["main"]


def _collection(args) -> str | None:
    """The ``--collection`` given, checked."""
    from .config import ConfigError
    from .library import COLLECTION_NAME

    name = getattr(args, "collection", None)
    if name and not COLLECTION_NAME.match(name):
        raise ConfigError(f"--collection {name!r}: use 3-63 letters, digits, '.', '_' or '-'")
    return name


def _library(args=None, *, search: bool = False):
    """The Library for this command; ``--collection`` picks a named collection of the library.

    ``search``: the command searches at once (`search`, `ask`): the ONNX embedder starts loading
    in a thread before the rest is imported (docs/benchmarks.md, "Starting fast")."""
    from .config import load_config

    config = load_config()
    name = _collection(args)
    if name:
        config.library.collection = name
    embedder = None
    if search and config.embedding.backend == "onnx":
        from .embed import Embedder

        try:
            embedder = Embedder(config.embedding)
        except FileNotFoundError:
            embedder = None  # the Library says so, in its words
        else:
            embedder.load_in_background()
    from .library import Library

    return Library(config, embedder=embedder)


def _print_json(obj) -> None:
    from .terminal import json_safe

    print(json_safe(json.dumps(obj, indent=2, ensure_ascii=False, default=str)))


class _Progress:
    """One line on stderr: files done/total, chunks, rate, ETA."""

    def __init__(self, enabled: bool):
        self.enabled = enabled and sys.stderr.isatty()
        self.failures: list[str] = []

    def __call__(self, ev) -> None:
        if ev.kind == "failed":
            self.failures.append(f"{ev.path}: {ev.reason}")
        if not self.enabled or ev.kind not in ("file", "embedded", "reading", "failed", "done"):
            return
        total = max(ev.files_total, 1)
        width = 24
        filled = int(width * ev.files_done / total)
        eta = f" ETA {ev.eta_s:.0f}s" if ev.eta_s else ""
        rate = f" {ev.rate:.1f} chunks/s" if ev.rate else ""
        name = ev.note[:40] or (Path(ev.path).name[:30] if ev.path else "")
        line = f"\r[{'#' * filled}{'.' * (width - filled)}] {ev.files_done}/{ev.files_total} files, {ev.chunks} chunks{rate}{eta} {name}"
        sys.stderr.write(line[:120].ljust(120))
        if ev.kind == "done":
            sys.stderr.write("\n")
        sys.stderr.flush()


def cmd_ingest(args) -> int:
    lib = _library(args)
    progress = _Progress(not args.json)
    if args.watch:
        from .watch import watch

        return watch(lib, [Path(p) for p in args.paths] or None, as_json=args.json)
    report = lib.ingest([Path(p) for p in args.paths] or None, on_event=progress, wait_for_lock=args.wait,
                        confirm_prune=args.prune, retry_failed=args.retry_failed)
    if args.json:
        _print_json(report.as_dict())
    else:
        print(
            f"{report.files_seen} files seen: {report.files_ingested} ingested, {report.files_unchanged} unchanged, "
            f"{len(report.files_skipped)} skipped, {len(report.files_failed)} failed, {report.files_removed} removed"
        )
        print(
            f"chunks: {report.chunks_added} added, {report.chunks_removed} removed, {report.chunks_total} in the library "
            f"({report.chunks_embedded} embedded, {report.chunks_reused} reused) in {report.seconds:.1f} s"
        )
        for f in report.files_skipped:
            print(f"  skipped {f['path']}: {f['reason']}")
        for f in report.files_failed:
            print(f"  FAILED  {f['path']}: {f['reason']}", file=sys.stderr)
        for f in report.removals_held:
            print(f"  NOT REMOVED under {f['path']}: {f['reason']}", file=sys.stderr)
        known = sum(1 for f in report.files_failed if f.get("known"))
        if known:
            print(f"  ({known} of the failed files failed before and have not changed, so they were not read again; "
                  "--retry-failed reads them)", file=sys.stderr)
    return EXIT_PARTIAL if report.files_failed or report.removals_held else EXIT_OK


def _filters(args):
    from .retrieve import Filters

    types = tuple(t.strip().lstrip(".").lower() for t in (args.type or []) if t.strip())
    return Filters(path_glob=args.path, file_types=types)


def _source_line(s) -> str:
    h = s.hit
    lines = f"{h.start_line}-{h.end_line}" if h.start_line else "-"
    mark = "*" if s.cited else " "
    return f"[{s.n}]{mark}{h.path}:{h.page or '-'}:{lines} ({h.score:.3f})"


def cmd_ask(args) -> int:
    from .types import QUOTED, VERIFIED, Answer

    lib = _library(args, search=True)
    question = " ".join(args.question)
    answer = None
    for item in lib.ask_stream(question, filters=_filters(args), top_k=args.top_k):
        if isinstance(item, Answer):
            answer = item  # the quote shown early and the model's provisional pieces are not printed:
            # a script reads one checked answer
    assert answer is not None
    if args.json:
        _print_json(
            {
                "question": answer.question,
                "answer": answer.text,
                "sources": [s.as_dict() for s in answer.sources],
                "timings": {k: round(v, 4) for k, v in answer.timings.items()},
                "model": answer.model,
                "embed_model": answer.embed_model,
                "query": answer.query or answer.question,
                "grounded": answer.grounded,
                "how": answer.how,
                "flags": answer.flags,
            }
        )
        return EXIT_OK
    print(answer.text)
    cited = ", ".join(f"[{s.n}]" for s in answer.sources if s.cited)
    print({VERIFIED: f"\u2713 verified against {cited}", QUOTED: f"quoted from {cited}"}.get(answer.how, "not found in your documents"))
    print("\nSources:")
    for s in answer.sources:
        print("  " + _source_line(s))
        if s.hit.also_in:
            print("      also in: " + ", ".join(s.hit.also_in))
    return EXIT_OK


def cmd_search(args) -> int:
    lib = _library(args, search=True)
    found = lib.retrieve(" ".join(args.query), top_k=args.top_k, mode=args.mode, filters=_filters(args))
    if args.json:
        from .serving import hits_json

        _print_json(hits_json(found.hits, explain=args.explain))
        return EXIT_OK
    from .types import Source

    for i, h in enumerate(found.hits, 1):
        print(_source_line(Source(i, h)))
        if args.explain:
            print("    scores: " + explain_scores(h))
        if h.also_in:
            print("    also in: " + ", ".join(h.also_in))
        print("    " + h.text[:200].replace("\n", " "))
    if args.explain:
        print("stages: " + (" -> ".join(found.stages) or "none") + "; ms: "
              + ", ".join(f"{k} {v * 1000:.1f}" for k, v in found.timings.items()))
    return EXIT_OK


def explain_scores(hit) -> str:
    """``dense 0.612 · keyword 7.31 · fused 0.833 · cross_encoder 4.1``: the hit's score at each step."""
    return " · ".join(f"{k} {v:.3f}" for k, v in hit.scores.items())


def cmd_status(args) -> int:
    lib = _library(args)
    if args.json:
        from .serving import status_json

        _print_json(status_json(lib))
        return EXIT_OK
    st = lib.status()
    collections = lib.collections()
    print(f"files indexed:  {st.files}")
    print(f"chunks:         {st.chunks}")
    print(f"data folder:    {st.data_dir}")
    print(f"vector store:   {st.store} (collection {st.collection})")
    if len(collections) > 1:
        def counts(c) -> str:
            return "unreadable" if c.files is None else f"{c.files} file{'s' if c.files != 1 else ''}"

        listed = ", ".join(f"{c.name}{'*' if c.name == lib.collection else ''} ({counts(c)})" for c in collections)
        print(f"collections:    {listed}; * in use, --collection NAME picks one")
    print(f"config:         {st.config or '(built-in defaults)'}")
    print(f"folders:        {', '.join(st.folders)}")
    print(f"embedding:      {st.embedding_line()}")
    print(f"generator:      {st.generator} ({st.model})")
    if st.failures:
        print(f"failed files:   {len(st.failures)}")
        for f in st.failures:
            print(f"  {f['path']}: {f['reason']}")
    return EXIT_OK


def cmd_serve(args) -> int:
    from .server import serve

    lib = _library(args)
    cfg = lib.config.server
    serve(lib, host=args.host or cfg.host, port=cfg.port if args.port is None else args.port,
          log_questions=args.log_questions)
    return EXIT_OK


def cmd_mcp(args) -> int:
    from .mcp_server import run_stdio

    run_stdio(_library(args))
    return EXIT_OK


def cmd_remove(args) -> int:
    lib = _library(args)
    files, chunks = lib.remove(args.path)  # the string: an empty one is refused, Path("") would be "."
    print(f"removed {files} files ({chunks} chunks)")
    return EXIT_OK


def cmd_repair(args) -> int:
    lib = _library(args)
    report = lib.repair()
    if args.json:
        _print_json(report.as_dict())
        return EXIT_OK
    if report.state_set_aside:
        print(f"the damaged state file was moved to {report.state_set_aside}; this collection starts empty: "
              "run `assistant ingest` on your folders (delete the moved file once you no longer need it)")
        return EXIT_OK
    rebuilt = "the damaged vector index was rebuilt; " if report.index_rebuilt else ""
    if report.store_recreated:
        rebuilt = ("the vector store could not be opened and was started afresh (other collections in this "
                   "data folder get their vectors back at their next ingest, or `assistant --collection NAME "
                   "repair`); ")
    print(f"{rebuilt}{report.chunks} passages: {report.vectors_restored} vectors restored "
          f"({report.texts_embedded} embedded, the rest reused), {report.vectors_deleted} stray vectors deleted "
          f"in {report.seconds:.1f} s; the vector store agrees with the stored text")
    return EXIT_OK


def cmd_plugins(args) -> int:
    from .config import load_config
    from .plugins import PluginRegistry

    config = load_config()
    reg = PluginRegistry(config.plugins, warn=lambda m: None)
    # every plugin of these groups is used when installed; a reranker only when [retrieval] stages names it
    wanted = {"rerankers": [n for n in config.retrieval.stages if n in reg.names("rerankers")]}
    for group in ("sources", "readers", "generators", "commands", "rerankers"):
        for name in wanted.get(group, reg.names(group)):
            try:
                reg.load(group, name)
            except Exception:
                pass  # recorded on the PluginInfo
    rows = [i.as_dict() for i in reg.infos]
    if args.json:
        _print_json(rows)
        return EXIT_OK
    for r in rows:
        status = r["status"] + (f": {r['reason']}" if r["reason"] else "")
        suffixes = " ".join(r["suffixes"])
        print(f"{r['group']:<22} {r['name']:<15} {r['distribution']} {r['version']:<8} {status}  {suffixes}")
    for line in reg.suffix_conflicts():
        print(f"note: {line}")
    return EXIT_OK


def _positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a whole number, got {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be 1 or more, got {value}")
    return value


def build_parser(registry=None) -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="assistant", description="A private, offline assistant for your documents.")
    parser.add_argument("--collection", default=None, help="a named collection of the library (default: [library] collection)")
    sub = parser.add_subparsers(dest="command")

    p = sub.add_parser("ingest", help="index folders or files (default: the folders in the config)")
    p.add_argument("paths", nargs="*")
    p.add_argument("--json", action="store_true", help="print one JSON object")
    p.add_argument("--watch", action="store_true", help="keep the index in sync as files change")
    p.add_argument("--wait", action="store_true", help="wait for another writer instead of failing")
    p.add_argument("--prune", action="store_true",
                   help="remove the files gone from a folder even past [ingest] max_prune_share (an emptied folder)")
    p.add_argument("--retry-failed", action="store_true",
                   help="read again the files that failed before, even if they have not changed")
    p.set_defaults(func=cmd_ingest)

    for name, fn, helptext in (("ask", cmd_ask, "answer a question from your documents"),
                               ("search", cmd_search, "show the passages retrieved for a query")):
        p = sub.add_parser(name, help=helptext)
        p.add_argument("question" if name == "ask" else "query", nargs="+")
        p.add_argument("--json", action="store_true")
        p.add_argument("--top-k", type=_positive_int, default=None, help="passages to return (1 or more)")
        p.add_argument("--path", default=None, help="only files whose path matches this glob")
        p.add_argument("--type", action="append", help="only this file type (suffix), repeatable")
        if name == "search":
            p.add_argument("--mode", choices=["dense", "keyword", "hybrid"], default=None)
            p.add_argument("--explain", action="store_true",
                           help="each hit's score at each step (dense, keyword, fused, then each stage)")
        p.set_defaults(func=fn)

    p = sub.add_parser("status", help="what is indexed, where, with which models")
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=cmd_status)

    p = sub.add_parser("serve", help="serve the library over HTTP: an OpenAI-compatible API (docs/api.md)")
    p.add_argument("--host", default=None, help="address to listen on (default: [server] host, 127.0.0.1)")
    p.add_argument("--port", type=int, default=None, help="port (default: [server] port, 8765)")
    p.add_argument("--log-questions", action="store_true", help="write questions to the log (never by default)")
    p.set_defaults(func=cmd_serve)

    p = sub.add_parser("mcp", help="serve the library to an MCP client over stdio (docs/api.md)")
    p.set_defaults(func=cmd_mcp)

    for p in (sub.choices["serve"], sub.choices["mcp"]):
        # SUPPRESS: the subcommand's default must not hide `assistant --collection NAME serve`
        p.add_argument("--collection", default=argparse.SUPPRESS, help="serve this collection")

    p = sub.add_parser("remove", help="take a file or folder out of the library")
    p.add_argument("path")
    p.set_defaults(func=cmd_remove)

    p = sub.add_parser("repair", help="rebuild lost or damaged vectors from the stored text (or set aside a damaged state)")
    p.add_argument("--json", action="store_true", help="print one JSON object")
    p.set_defaults(func=cmd_repair)

    p = sub.add_parser("plugins", help="list plugins and their status")
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=cmd_plugins)

    p = sub.add_parser("eval", help="measure retrieval (BEIR) or answers (QA file)")
    p.add_argument("--beir", type=Path, help="a BEIR-format folder")
    p.add_argument("--split", default="test")
    p.add_argument("--mode", choices=["dense", "keyword", "hybrid"], default=None)
    p.add_argument("--qa", type=Path, help="a QA jsonl file")
    p.add_argument("--limit", type=int, default=None, help="only the first N queries/questions")
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=_cmd_eval)

    if registry is not None:
        for name in registry.names("commands"):
            try:
                cmd = registry.load("commands", name)
                cp = sub.add_parser(name, help=getattr(cmd, "help", None))
                cmd.configure(cp)
                cp.set_defaults(func=lambda a, c=cmd: c.run(a, _library(a)))
            except Exception:
                continue  # recorded and reported once by the registry
    return parser


def _cmd_eval(args) -> int:
    from .evaluate import cmd_eval

    return cmd_eval(args, _library(args))


_SHOW_WARNING = warnings.showwarning
# The errors whose message is meant for the user, by module: a command imports only what it
# needs (`assistant --help` and `status` start in a fraction of a second), and an error of a
# module that was never imported cannot have been raised.
_USER_ERRORS = (
    ("assistant.config", "ConfigError"),
    ("assistant.library", "LibraryError"),
    ("assistant.ingest", "LibraryLocked"),
    ("assistant.plugins", "PluginError"),
    ("assistant.store", "StoreError"),
)


def _for_the_user(e: Exception) -> bool:
    return any(isinstance(e, getattr(sys.modules[m], name)) for m, name in _USER_ERRORS if m in sys.modules)


def main(argv: list[str] | None = None) -> int:
    """Run one command. Everything it prints passes through ``SafeStream`` (see assistant/terminal.py):
    a document's text or a file's name cannot send escape sequences to the terminal."""
    from .terminal import SafeStream

    out, err, show = sys.stdout, sys.stderr, warnings.showwarning
    sys.stdout, sys.stderr = SafeStream(out), SafeStream(err)
    warnings.showwarning = _show_warning
    try:
        return _main(argv, raw=(out, err))
    except BrokenPipeError:
        # the reader went away (`assistant search ... | head`): stop quietly, as other tools do;
        # what Python would flush to the closed pipe at exit goes nowhere instead
        try:
            os.dup2(os.open(os.devnull, os.O_WRONLY), out.fileno())
        except (OSError, ValueError, AttributeError):
            pass
        return EXIT_BROKEN_PIPE
    finally:
        sys.stdout, sys.stderr, warnings.showwarning = out, err, show


def _show_warning(message, category, filename, lineno, file=None, line=None) -> None:
    """The core's warnings to the user as one line (the data folder is open to others, vectors are missing)."""
    if category.__module__.startswith("assistant"):
        print(f"assistant: warning: {message}", file=sys.stderr)
    else:
        _SHOW_WARNING(message, category, filename, lineno, file, line)


def _main(argv: list[str] | None, raw) -> int:
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
    argv = sys.argv[1:] if argv is None else argv
    try:
        builtin = ("ingest", "ask", "status", "search", "remove", "repair", "plugins", "eval", "serve", "mcp")
        registry = None
        if argv and argv[0] not in builtin:  # plugin commands are looked up only when it may be one
            from .config import load_config
            from .plugins import PluginRegistry

            registry = PluginRegistry(load_config().plugins)
        args = build_parser(registry).parse_args(argv)
        if args.command is None:
            from .tui import run_tui

            sys.stdout, sys.stderr = raw  # the TUI draws with escape sequences; it renders text safely itself
            return run_tui(collection=_collection(args))
        return args.func(args)
    except KeyboardInterrupt:
        print("\nassistant: interrupted", file=sys.stderr)
        return 130
    except Exception as e:
        if _for_the_user(e):
            print(f"assistant: error: {e}", file=sys.stderr)
            return EXIT_ERROR
        message = _explain(e, argv)  # a full disk or a damaged file met outside the store's own checks
        if message is None:
            raise  # a bug: the traceback is what a report needs
        print(f"assistant: error: {message}", file=sys.stderr)
        return EXIT_ERROR


def _explain(error: BaseException, argv: list[str]) -> str | None:
    from .config import load_config
    from .faults import explain
    from .store import state_file

    try:
        config = load_config()
    except Exception:
        return None
    given = argv[argv.index("--collection") + 1 : argv.index("--collection") + 2] if "--collection" in argv else []
    collection = given[0] if given else config.library.collection
    return explain(error, config.data_dir, state_file(config.data_dir, collection))


if __name__ == "__main__":
    sys.exit(main())

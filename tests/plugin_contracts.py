"""The contract every plugin of each entry-point group must meet.

tests/test_plugins.py runs these checks over every plugin ``PluginRegistry``
finds (built-in and installed), so a new plugin is checked as soon as it is
installed. A plugin author can call them directly on their own object::

    from plugin_contracts import check_reader
    check_reader(MyReader(), tmp_path)          # samples for the suffixes it claims
    check_reader(MyReader(), tmp_path, samples={".foo": build_foo})

Each ``check_*`` raises AssertionError naming what is wrong. Nothing here loads
a model or touches the network; every plugin call runs under a time limit, so a
plugin that hangs fails instead of blocking the run.

Reader samples: ``SAMPLE_BUILDERS`` maps a suffix to a builder that writes one
real file and returns ``(path, fact, page, line)`` (the shape of
tests/formats.py); it holds every case of tests/formats.py plus the example
plugins' formats. A reader with no sample for any of its suffixes is only
checked for its declaration and for raising on a garbage file.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import random
import threading
from pathlib import Path
from typing import Any, Callable

from assistant.answer import PromptBuilder
from assistant.types import Document, GenerationRequest, Hit, ModelInfo, Reader, Reranker, Section, SourcePlugin
from formats import EXTRA_CASES, FORMAT_CASES, Built, Builder

__all__ = [
    "SAMPLE_BUILDERS",
    "TIME_LIMIT_S",
    "build_org",
    "build_geojson",
    "build_jsonld",
    "build_source_tree",
    "garbage_bytes",
    "check_document",
    "check_reader",
    "check_source",
    "check_generator",
    "check_command",
    "ContractContext",
    "contract_hits",
    "check_reranker",
    "build_tiny_cross_encoder",
]

TIME_LIMIT_S = 20.0


# --- samples -----------------------------------------------------------------


def build_org(d: Path) -> Built:
    """An org-mode file; the fact is on line 13, under "Garden > Planting"."""
    fact = "Plant the snowdrop bulbs 8 centimetres deep before the first frost."
    text = (
        "#+TITLE: Allotment notebook\n"  # 1
        "#+AUTHOR: Ada\n"  # 2
        "\n"
        "Loose notes about the allotment.\n"  # 4
        "\n"
        "* Garden :outdoor:\n"  # 6
        ":PROPERTIES:\n"  # 7
        ":CREATED: [2024-03-01 Fri]\n"  # 8
        ":PLOT_ID: drawer-secret-4471\n"  # 9
        ":END:\n"  # 10
        "** TODO [#A] Planting :bulbs:\n"  # 11
        "Autumn is the season for bulbs.\n"  # 12
        f"{fact}\n"  # 13
        "# a comment line\n"  # 14
        "#+BEGIN_SRC sh\n"  # 15
        "water --litres 4\n"  # 16
        "#+END_SRC\n"  # 17
        "* Tools\n"  # 18
        "A spade and a rake.\n"  # 19
    )
    path = d / "allotment.org"
    path.write_text(text, encoding="utf-8", newline="\n")
    return path, fact, None, 13


def build_geojson(d: Path, name: str = "sites.geojson") -> Built:
    """GeoJSON; ``line`` is 0: readers of derived text (JSON flattening) choose their own lines."""
    fact = "The heron colony at Marrowpike lake counts 57 nests."
    data = {
        "type": "FeatureCollection",
        "features": [
            {"type": "Feature", "geometry": {"type": "Point", "coordinates": [4.9, 52.3]},
             "properties": {"name": "Marrowpike", "description": fact}},
            {"type": "Feature", "geometry": {"type": "Point", "coordinates": [5.1, 52.1]},
             "properties": {"name": "Elderbrook", "description": "A quiet reed bed."}},
        ],
    }  # fmt: skip
    path = d / name
    path.write_text(json.dumps(data, indent=2), encoding="utf-8")
    return path, fact, None, 0


def build_jsonld(d: Path) -> Built:
    fact = "The Vellmark library opens at 09:30 on Saturdays."
    data = {"@context": "https://schema.org", "@type": "Library", "name": "Vellmark library", "description": fact}
    path = d / "library.jsonld"
    path.write_text(json.dumps(data, indent=2), encoding="utf-8")
    return path, fact, None, 0


def _samples() -> dict[str, Builder]:
    out: dict[str, Builder] = {}
    for suffix, builder in [*FORMAT_CASES, *EXTRA_CASES, (".org", build_org), (".geojson", build_geojson), (".jsonld", build_jsonld)]:
        out.setdefault(suffix, builder)
    return out


SAMPLE_BUILDERS: dict[str, Builder] = _samples()


def garbage_bytes(n: int = 4096, seed: int = 0) -> bytes:
    """Random bytes (with NULs and invalid UTF-8): no reader should accept them as a document."""
    rng = random.Random(seed)
    return bytes(rng.randrange(256) for _ in range(n))


# --- helpers -----------------------------------------------------------------


def _timed(fn: Callable[[], Any], what: str, limit: float = TIME_LIMIT_S) -> Any:
    """``fn()`` in a thread; its result, or its exception re-raised; AssertionError if it hangs."""
    box: dict[str, Any] = {}

    def target() -> None:
        try:
            box["value"] = fn()
        except BaseException as e:  # noqa: BLE001 - handed back to the caller
            box["error"] = e

    t = threading.Thread(target=target, daemon=True, name=f"contract: {what}")
    t.start()
    t.join(limit)
    if t.is_alive():
        raise AssertionError(f"{what} did not finish within {limit:.0f} s")
    if "error" in box:
        raise box["error"]
    return box.get("value")


def _norm(text: str) -> str:
    return " ".join(text.split())


# --- readers -----------------------------------------------------------------


def check_document(doc: Any, where: str = "document") -> None:
    assert isinstance(doc, Document), f"{where}: read() returned {type(doc).__name__}, not assistant.types.Document"
    assert isinstance(doc.sections, list), f"{where}: sections is {type(doc.sections).__name__}, not a list"
    assert doc.title is None or isinstance(doc.title, str), f"{where}: title must be str or None"
    assert isinstance(doc.metadata, dict), f"{where}: metadata must be a dict"
    for key, value in doc.metadata.items():
        assert isinstance(key, str) and isinstance(value, (str, int, float, bool)), f"{where}: metadata {key!r} is not a scalar"
    for i, s in enumerate(doc.sections):
        at = f"{where}: section {i}"
        assert isinstance(s, Section), f"{at} is {type(s).__name__}, not a Section"
        assert isinstance(s.text, str), f"{at}: text is {type(s.text).__name__}, not str"
        assert isinstance(s.start_line, int) and not isinstance(s.start_line, bool) and s.start_line >= 1, f"{at}: start_line {s.start_line!r} < 1"
        assert s.page is None or (isinstance(s.page, int) and s.page >= 1), f"{at}: page {s.page!r} is neither None nor >= 1"
        assert s.heading is None or isinstance(s.heading, str), f"{at}: heading must be str or None"


def check_suffixes(suffixes: Any, who: str) -> tuple[str, ...]:
    assert isinstance(suffixes, (tuple, list)) and suffixes, f"{who}: suffixes must be a non-empty tuple"
    for s in suffixes:
        assert isinstance(s, str), f"{who}: suffix {s!r} is not a str"
        assert s.startswith(".") and len(s) > 1, f"{who}: suffix {s!r} must start with a dot"
        assert s == s.lower(), f"{who}: suffix {s!r} must be lower-case"
        assert not any(c.isspace() or c in "/\\*" for c in s), f"{who}: suffix {s!r} has spaces, slashes or wildcards"
    return tuple(suffixes)


def check_reader(reader: Any, tmp_dir: Path, *, samples: dict[str, Builder] | None = None, who: str = "reader") -> list[str]:
    """Check a reader object; returns the suffixes that were read from a real sample."""
    samples = {**SAMPLE_BUILDERS, **(samples or {})}
    assert isinstance(reader, Reader), f"{who}: has no suffixes/read() (assistant.types.Reader)"
    suffixes = check_suffixes(getattr(reader, "suffixes", None), who)
    read = []
    for suffix in suffixes:
        builder = samples.get(suffix)
        if builder is None:
            continue
        d = Path(tmp_dir) / f"sample{suffix}"
        d.mkdir(parents=True, exist_ok=True)
        path, fact, _, _ = builder(d)
        assert path.suffix.lower() == suffix
        doc = _timed(lambda: reader.read(path), f"{who}.read({path.name})")
        check_document(doc, f"{who} on {path.name}")
        text = _norm("\n".join(s.text for s in doc.sections))
        assert _norm(fact) in text, f"{who} on {path.name}: the sample's text {fact!r} is not in the sections"
        read.append(suffix)
    # garbage: must raise (ReaderError or any exception), not return a document or hang
    g = Path(tmp_dir) / "garbage"
    g.mkdir(parents=True, exist_ok=True)
    bad = g / f"garbage{suffixes[0]}"
    bad.write_bytes(garbage_bytes())
    try:
        out = _timed(lambda: reader.read(bad), f"{who}.read({bad.name})")
    except AssertionError:
        raise
    except Exception:  # noqa: BLE001 - any exception is the contract
        pass
    else:
        raise AssertionError(f"{who}: read() of random bytes returned {type(out).__name__} instead of raising")
    return read


# --- sources -----------------------------------------------------------------


def build_source_tree(d: Path) -> Path:
    """A folder with nested, hidden and listed files, plus things a source must not yield.

    Outside the folder: ``outside/secret.txt``; inside, a symlink to it, a symlink
    to the outside folder, a link loop, and a ``files.filelist`` naming good,
    missing and escaping entries.
    """
    root = d / "root"
    (root / "sub" / "deeper").mkdir(parents=True)
    (root / ".hidden").mkdir()
    outside = d / "outside"
    outside.mkdir()
    (outside / "secret.txt").write_text("outside the folder\n")
    (root / "a.txt").write_text("alpha\n")
    (root / "sub" / "b.md").write_text("# beta\n")
    (root / "sub" / "deeper" / "c.rst").write_text("gamma\n")
    (root / ".hidden" / "h.txt").write_text("hidden\n")
    (root / "files.filelist").write_text(
        "# a file list\na.txt\nsub/**/*.rst\nmissing.txt\n../outside/secret.txt\n"
        f"{outside / 'secret.txt'}\nlink_to_secret.txt\n\n"
    )
    try:
        os.symlink(outside / "secret.txt", root / "link_to_secret.txt")
        os.symlink(outside, root / "link_to_outside", target_is_directory=True)
        os.symlink(root, root / "sub" / "loop", target_is_directory=True)
    except (OSError, NotImplementedError):
        pass  # no symlinks on this file system: the rest still applies
    return root


def check_source(source: Any, tmp_dir: Path, who: str = "source") -> list[Path]:
    """Every yielded path exists, is a file and lies inside the root; a missing root yields nothing."""
    assert isinstance(source, SourcePlugin), f"{who}: has no files(root) (assistant.types.SourcePlugin)"
    root = build_source_tree(Path(tmp_dir))
    real_root = root.resolve()
    files = _timed(lambda: [Path(p) for p in source.files(root)], f"{who}.files()")
    for p in files:
        assert p.exists(), f"{who}: yielded {p}, which does not exist"
        assert p.is_file(), f"{who}: yielded {p}, which is not a file"
        assert p.resolve().is_relative_to(real_root), f"{who}: yielded {p}, which is outside {root}"
    assert len(files) == len(set(files)), f"{who}: yielded the same path twice"
    missing = _timed(lambda: list(source.files(root / "no-such-folder")), f"{who}.files(missing)")
    assert missing == [], f"{who}: a missing root must yield nothing, got {missing}"
    return files


# --- generators --------------------------------------------------------------


def contract_request() -> GenerationRequest:
    """A small completion request shaped like the core's, with one passage."""
    hit = Hit("c1", "/docs/manual.md", "The Zorblax K3 charges in 95 minutes. It weighs 11.8 kg.", 1.0, None, 3, 3)
    info = ModelInfo("contract", 2048, False)
    return PromptBuilder(info, "completion").request("How long does the Zorblax K3 take to charge?", [hit], 16, 0.0)


def check_generator(gen: Any, who: str = "generator") -> str:
    """info() is a ModelInfo with a positive context; stream() yields str pieces. Returns the text."""
    assert callable(getattr(gen, "info", None)) and callable(getattr(gen, "stream", None)), f"{who}: needs info() and stream()"
    info = _timed(gen.info, f"{who}.info()", 120)
    assert isinstance(info, ModelInfo), f"{who}: info() returned {type(info).__name__}, not ModelInfo"
    assert isinstance(info.name, str) and info.name, f"{who}: info().name must be a non-empty str"
    assert isinstance(info.context_length, int) and info.context_length > 0, f"{who}: context_length {info.context_length!r} <= 0"
    assert isinstance(info.chat_template, bool), f"{who}: chat_template must be a bool"
    pieces = _timed(lambda: list(gen.stream(contract_request())), f"{who}.stream()", 120)
    for p in pieces:
        assert isinstance(p, str), f"{who}: stream() yielded {type(p).__name__}, not str"
    # closing the iterator early must be allowed
    it = iter(gen.stream(contract_request()))
    _timed(lambda: next(it, None), f"{who}.stream() first piece", 120)
    close = getattr(it, "close", None)
    if close:
        close()
    return "".join(pieces)


# --- commands ----------------------------------------------------------------


def check_command(cmd: Any, name: str, who: str = "command") -> argparse.Namespace:
    """help is a str; configure(parser) adds to a sub-parser; run is callable. Returns the parsed defaults."""
    assert isinstance(getattr(cmd, "help", None), str) and cmd.help.strip(), f"{who}: help must be a non-empty str"
    assert callable(getattr(cmd, "configure", None)), f"{who}: needs configure(parser)"
    assert callable(getattr(cmd, "run", None)), f"{who}: needs run(args, library) -> int"
    parser = argparse.ArgumentParser(prog="assistant")
    sub = parser.add_subparsers(dest="command")
    cp = sub.add_parser(name, help=cmd.help)
    cmd.configure(cp)
    args = parser.parse_args([name])
    assert args.command == name
    return args


# --- rerankers -----------------------------------------------------------------


class ContractContext:
    """A ``StageContext`` over a fixed set of files (path -> its chunks in order)."""

    def __init__(self, files: dict[str, list[Hit]], top_k: int = 5):
        self.files = files
        self.top_k = top_k

    def chunks_of(self, path: str) -> list[Hit]:
        return list(self.files.get(path, []))


def contract_hits() -> tuple[list[Hit], ContractContext]:
    """Fused hits over two files, one of them a copy of part of the other; and their context.

    ``manual.md`` has one section of three chunks (lines 3-4, 5-6, 7-8); ``copy.md``
    repeats its middle chunk. The hits are the middle chunk, its copy, and the first chunk.
    """
    texts = ["The Zorblax K3 is a cordless drill.\nIt ships in a blue case.",
             "The Zorblax K3 charges in 95 minutes.\nIts battery holds 4.2 Ah.",
             "The charger needs a 230 V socket.\nNever charge it below 5 degrees."]
    manual = [Hit(f"m{i}", "/docs/manual.md", t, 0.0, None, 3 + 2 * i, 4 + 2 * i, "Charging") for i, t in enumerate(texts)]
    copy = [Hit("c0", "/docs/copy.md", texts[1], 0.0, None, 1, 2, "Charging")]
    context = ContractContext({"/docs/manual.md": manual, "/docs/copy.md": copy})
    scores = {"m1": 0.9, "c0": 0.85, "m0": 0.4}
    by_id = {h.chunk_id: h for h in manual + copy}
    hits = [dataclasses.replace(by_id[i], score=s, scores={"fused": s}) for i, s in scores.items()]
    return hits, context


def check_reranker(reranker: Any, who: str = "reranker") -> list[Hit]:
    """rerank(query, hits, context) returns Hits, best first, with no invented or repeated chunk
    ids, leaves its input alone, and takes an empty list. Returns its output on the contract hits."""
    assert isinstance(reranker, Reranker), f"{who}: needs rerank(query, hits, context) -> list[Hit]"
    hits, context = contract_hits()
    before = list(hits)
    out = _timed(lambda: reranker.rerank("How long does the K3 take to charge?", hits, context), f"{who}.rerank()", 120)
    assert isinstance(out, list), f"{who}: rerank() returned {type(out).__name__}, not a list"
    assert hits == before, f"{who}: rerank() changed the list it was given"
    known = {h.chunk_id for chunks in context.files.values() for h in chunks}
    for h in out:
        assert isinstance(h, Hit), f"{who}: rerank() returned a {type(h).__name__}, not a Hit"
        assert h.chunk_id in known, f"{who}: rerank() invented the chunk id {h.chunk_id!r}"
        assert isinstance(h.score, float), f"{who}: score {h.score!r} is not a float"
        assert isinstance(h.text, str) and h.text, f"{who}: a hit with no text"
    ids = [h.chunk_id for h in out]
    assert len(ids) == len(set(ids)), f"{who}: rerank() returned a chunk twice: {ids}"
    empty = _timed(lambda: reranker.rerank("anything", [], context), f"{who}.rerank() of no hits", 60)
    assert empty == [], f"{who}: rerank() of no hits returned {empty!r}"
    return out


def build_tiny_cross_encoder(folder: Path, seed: int = 0) -> Path:
    """A real, randomly initialised BERT cross-encoder (one layer, 32 wide) saved the way
    ``CrossEncoder.save_pretrained`` leaves a folder: config, weights and a WordPiece
    tokenizer with a small vocabulary. Loading and scoring code runs for real; the
    scores mean nothing. Nothing is downloaded."""
    import torch
    from transformers import BertConfig, BertForSequenceClassification, BertTokenizerFast

    folder.mkdir(parents=True, exist_ok=True)
    words = sorted(set(("the zorblax k3 is a cordless drill it ships in blue case charges 95 minutes "
                                        "its battery holds ah charger needs 230 v socket never charge below degrees "
                                        "how long does take to what when where who which of and or on at for").split()))
    vocab = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", *words, *"abcdefghijklmnopqrstuvwxyz0123456789.,?"]
    (folder / "vocab.txt").write_text("\n".join(dict.fromkeys(vocab)) + "\n", encoding="utf-8")
    BertTokenizerFast(vocab_file=str(folder / "vocab.txt")).save_pretrained(str(folder))
    torch.manual_seed(seed)
    config = BertConfig(vocab_size=len(dict.fromkeys(vocab)), hidden_size=32, num_hidden_layers=1, num_attention_heads=2,
                        intermediate_size=64, max_position_embeddings=128, num_labels=1)
    BertForSequenceClassification(config).save_pretrained(str(folder))
    return folder

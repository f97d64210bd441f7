"""The one object the CLI and the TUI call: ingest, ask, status, remove."""

from __future__ import annotations

import dataclasses
import os
import re
import sqlite3
import threading
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path
from typing import Callable, Iterator

from .answer import Answerer
from .config import Config, load_config
from .ingest import IngestEvent, IngestReport, Ingestor, NothingToIngest, write_lock
from .keyword_index import GENERATION_KEY
from .plugins import PluginRegistry
from .retrieve import Filters, Retriever, StageError
from .store import Store
from .conversation import Conversations, standalone_query
from .types import Answer, Draft, Hit, Retrieval, Retrieved

__all__ = ["Library", "LibraryError", "LibraryStatus", "CollectionInfo", "check_collection_name", "list_collections"]


class LibraryError(Exception):
    """A user-facing error: the message says what is wrong and what to do."""


# Chroma's rule for collection names; the name also becomes part of a file name (state-NAME.sqlite).
COLLECTION_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{1,61}[A-Za-z0-9]$")


def check_collection_name(name: str) -> str:
    if not COLLECTION_NAME.match(name):
        raise LibraryError(f"collection {name!r}: use 3-63 letters, digits, '.', '_' or '-', "
                           "starting and ending with a letter or digit")
    return name


@dataclass(frozen=True)
class CollectionInfo:
    name: str
    files: int | None  # None: the state file could not be read
    chunks: int | None
    path: Path


@dataclass(frozen=True)
class LibraryStatus:
    """What ``Library.status()`` reports. ``as_dict()`` is the ``assistant status --json`` object."""

    files: int
    chunks: int
    data_dir: str
    store: str
    collection: str
    config: str | None
    folders: list[str]
    embed_model: str
    generator: str
    model: str
    failures: list[dict[str, str]]
    generation: str | None = None  # the store's chunks_generation: moves with every write, by any process
    updating: str | None = None  # "pid N" while a process holds the write lock, else None

    def as_dict(self) -> dict:
        d = dataclasses.asdict(self)
        del d["generation"], d["updating"]
        return d

    def __getitem__(self, key: str):  # the dict it replaces, for callers not yet moved to attributes
        return getattr(self, key)


def update_in_progress(data_dir: Path) -> str | None:
    """"pid N" while a live process holds the library's write lock (it writes that there), else None.

    Reads the lock file only: taking the lock to test it would make a concurrent ingest fail."""
    try:
        text = (Path(data_dir) / "write.lock").read_text(encoding="utf-8", errors="replace").strip()
    except OSError:
        return None
    m = re.fullmatch(r"pid (\d+)", text)
    if not m:
        return None
    try:
        os.kill(int(m.group(1)), 0)
    except ProcessLookupError:
        return None  # it crashed holding the lock: the OS released it
    except OSError:
        pass
    return text


def list_collections(data_dir: Path) -> list[CollectionInfo]:
    """The collections stored in ``data_dir``, "default" first, then by name.

    ``state.sqlite`` holds "default", ``state-NAME.sqlite`` holds NAME (see ``Store``).
    """
    out = []
    for path in Path(data_dir).glob("state*.sqlite"):
        stem = path.stem
        name = "default" if stem == "state" else stem.removeprefix("state-")
        if name == stem or not COLLECTION_NAME.match(name):
            continue  # not a state file ("states.sqlite", ...)
        files = chunks = None
        try:  # not mode=ro: a read-only connection to a WAL database leaves its -shm/-wal files behind
            db = sqlite3.connect(path, timeout=1)
            try:
                files = db.execute("SELECT COUNT(*) FROM files").fetchone()[0]
                chunks = db.execute("SELECT COUNT(*) FROM chunks").fetchone()[0]
            finally:
                db.close()
        except sqlite3.Error:
            pass
        out.append(CollectionInfo(name, files, chunks, path))
    return sorted(out, key=lambda c: (c.name != "default", c.name))


class Library:
    def __init__(self, config: Config | None = None, *, registry: PluginRegistry | None = None, embedder=None, generator=None):
        self.config = config or load_config()
        self.registry = registry or PluginRegistry(self.config.plugins)
        self._embedder = embedder
        self._generator = generator
        self._load_lock = threading.RLock()  # the TUI asks and ingests from worker threads
        self._query_warm = False

    # --- parts, built on first use ---------------------------------------------

    @cached_property
    def store(self) -> Store:
        return Store(self.config)

    # --- collections -------------------------------------------------------------

    @property
    def collection(self) -> str:
        return self.config.library.collection

    def collections(self) -> list[CollectionInfo]:
        """The collections in this library's data folder, this one included even before its first ingest."""
        self.store  # opening it creates its state file, so it is listed
        return list_collections(self.config.data_dir)

    def for_collection(self, name: str) -> "Library":
        """This library (settings, plugins, the models it has loaded) over the collection ``name``."""
        check_collection_name(name)
        config = dataclasses.replace(self.config, library=dataclasses.replace(self.config.library, collection=name))
        return Library(config, registry=self.registry, embedder=self._embedder, generator=self._generator)

    @property
    def embedder(self):
        with self._load_lock:
            return self._load_embedder()

    def _load_embedder(self):
        if self._embedder is None:
            from .embed import Embedder

            try:
                self._embedder = Embedder(self.config.embedding)
            except FileNotFoundError as e:
                raise LibraryError(str(e)) from None
        return self._embedder

    @property
    def generator(self):
        with self._load_lock:
            return self._load_generator()

    def _load_generator(self):
        if self._generator is None:
            from .plugins import PluginError

            g = self.config.generation
            model = g.model if g.model == "builtin" else str(self.config.resolve(g.model))  # relative to the config file
            defaults = {"model": model, "n_ctx": g.n_ctx, "threads": g.threads}
            try:
                self._generator = self.registry.load("generators", g.generator, defaults)
            except PluginError as e:
                cause = e.__cause__
                raise LibraryError(str(cause) if isinstance(cause, (FileNotFoundError, ValueError)) else str(e)) from None
        return self._generator

    @cached_property
    def conversations(self) -> Conversations:
        return Conversations(self.config.data_dir)

    @cached_property
    def retriever(self) -> Retriever:
        """The retrieval pipeline, with the stages of ``[retrieval] stages`` loaded (a stage that
        cannot load is an error naming it: the user asked for it, so no search runs without it)."""
        from .plugins import PluginError

        stages = []
        for name in self.config.retrieval.stages:
            try:
                stages.append((name, self.registry.load("rerankers", name)))
            except PluginError as e:
                raise LibraryError(f"[retrieval] stages: {e}") from None
        return Retriever(self.config.retrieval, self.store, self.embedder, stages)

    # --- ingest ----------------------------------------------------------------

    def ingest(
        self,
        paths: list[Path] | None = None,
        *,
        on_event: Callable[[IngestEvent], None] | None = None,
        wait_for_lock: bool = False,
    ) -> IngestReport:
        roots = [Path(p).expanduser().resolve() for p in (paths or self.config.folders())]
        if not roots:
            raise LibraryError("nothing to ingest: give a folder, or list folders in [library] folders")
        missing = [str(p) for p in roots if not p.exists()]
        if missing:
            raise LibraryError(f"no such file or folder: {', '.join(missing)}")
        with write_lock(self.config.data_dir, wait=wait_for_lock):
            ingestor = Ingestor(self.config, self.store, self.embedder, self.registry, on_event=on_event)
            try:
                return ingestor.run(roots)
            except NothingToIngest as e:
                raise LibraryError(str(e)) from None

    def remove(self, path: Path) -> tuple[int, int]:
        """Take a file or folder out of the library. Returns (files, chunks) removed."""
        key = str(Path(path).expanduser().resolve())
        with write_lock(self.config.data_dir):
            files = self.store.files_under(key)
            if not files:
                raise LibraryError(f"nothing indexed under {key}")
            self.store.collection  # settle pending writes first
            return len(files), self.store.remove_files(files)

    # --- ask -------------------------------------------------------------------

    def warm_up_search(self) -> None:
        """Pay the first search's one-off costs now: the embedder's first encode and building
        the in-memory keyword index (about 2 s at 100k chunks). Later calls cost nothing."""
        if not self._query_warm:
            self.embedder.embed_query("warm-up")
            self.store.keyword_index.refresh()
            self._query_warm = True

    def search(self, query: str, *, top_k: int | None = None, mode: str | None = None, filters: Filters | None = None) -> list[Hit]:
        return self.retrieve(query, top_k=top_k, mode=mode, filters=filters).hits

    def retrieve(self, query: str, *, top_k: int | None = None, mode: str | None = None, filters: Filters | None = None) -> Retrieval:
        """The one retrieval path (``search``, ``ask``, ``eval``, the APIs): hits with per-step scores."""
        self._require_index()
        try:
            return self.retriever.retrieve(query, top_k=top_k, mode=mode, filters=filters)
        except StageError as e:
            raise LibraryError(str(e)) from None

    def _require_index(self) -> None:
        if self.store.counts()["chunks"] == 0:
            raise LibraryError("nothing is indexed yet: run `assistant ingest PATH` first")

    def ask_stream(
        self,
        question: str,
        *,
        history: list[Answer] | None = None,
        filters: Filters | None = None,
        top_k: int | None = None,
        mode: str | None = None,
    ) -> Iterator[Retrieved | Draft | str | Answer]:
        """Yields ``Retrieved`` (the query used and the passages), a ``Draft`` (the quoted answer,
        at once), text pieces as the model produces them (provisional), then the final checked
        ``Answer`` (see ``assistant.answer.Answerer``). ``history`` holds the earlier answers of
        the conversation; a follow-up is made standalone for retrieval."""
        question = question.strip()
        if not question:
            raise LibraryError("the question is empty")
        self._require_index()
        if self.config.answer.model == "verify":
            self.generator.info()  # loads the model: not part of the question's time
        self.warm_up_search()  # one-off set-up costs are not the question's time
        answerer = Answerer(self.config, self.retriever, self.embedder,
                            self.generator if self.config.answer.model == "verify" else None, self.store)
        try:
            yield from answerer.stream(question, standalone_query(question, history), top_k=top_k, mode=mode, filters=filters)
        except StageError as e:
            raise LibraryError(str(e)) from None

    def ask(self, question: str, **kw) -> Answer:
        """``ask_stream`` run to the end: the checked Answer."""
        for item in self.ask_stream(question, **kw):
            if isinstance(item, Answer):
                return item
        raise AssertionError("ask_stream ended without an answer")

    # --- status ----------------------------------------------------------------

    def status(self) -> LibraryStatus:
        counts = self.store.counts()
        gen = self.config.generation
        return LibraryStatus(
            files=counts["files"],
            chunks=counts["chunks"],
            data_dir=str(self.config.data_dir),
            store=self.store.chroma_path,
            collection=self.store.collection_name,
            config=str(self.config.path) if self.config.path else None,
            folders=[str(p) for p in self.config.folders()],
            embed_model=self.store.meta("embed_model") or self.config.embedding.model,
            generator=gen.generator,
            model=gen.model,
            failures=self.store.failures(),
            generation=self.store.meta(GENERATION_KEY),
            updating=update_in_progress(self.config.data_dir),
        )

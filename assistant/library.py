"""The one object the CLI and the TUI call: ingest, ask, status, remove."""

from __future__ import annotations

import dataclasses
import os
import re
import sqlite3
import threading
import warnings
from contextlib import contextmanager
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path
from typing import TYPE_CHECKING, Callable, Iterator

from .config import COLLECTION_NAME, Config, load_config
from .keyword_index import GENERATION_KEY
from .plugins import PluginRegistry
from .retrieve import Filters, Retriever, StageError
from .store import EMBED_BACKEND_KEY, Store, StoreWarning
from .types import Answer, Draft, Hit, Retrieval, Retrieved

if TYPE_CHECKING:  # ingest, answer and conversations load when used: `status` and `search` never need them
    from .conversation import Conversations
    from .ingest import IngestEvent, IngestReport
    from .repair import RepairReport

__all__ = ["Library", "LibraryError", "LibraryStatus", "CollectionInfo", "check_collection_name", "list_collections"]


class LibraryError(Exception):
    """A user-facing error: the message says what is wrong and what to do."""




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
    embed_backend: str  # the embedding backend in use: "onnx" (int8) or "torch"
    vectors_backend: str | None  # what made the stored vectors ("torch", "onnx", "onnx+torch"); None: not recorded
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

    def embedding_line(self) -> str:
        """The model, the backend in use, and what made the stored vectors when that differs."""
        names = {"onnx": "ONNX int8", "torch": "torch"}
        line = f"{self.embed_model}, {names.get(self.embed_backend, self.embed_backend)}"
        built = self.vectors_backend
        if self.chunks and built != self.embed_backend:
            made = "not recorded (indexed before 2026-11-29)" if built is None else " and ".join(
                names.get(b, b) for b in built.split("+"))
            line += (f"; the stored vectors were made with {made}: the backends agree to cosine 0.99, so search "
                     "works as it is (re-index into a fresh data folder to make them all alike)")
        return line


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


class _QuestionGate:
    """Questions being answered now, for an ingest in the same process to wait on between batches.

    Two cores cannot embed a batch and read a prompt at once without both slowing down
    several-fold (`bench/contention.py`): the user waiting for an answer goes first, and the
    ingest loses only the time of the answers. An answer left unfinished (a client that
    stopped reading) holds it back at most ``MAX_WAIT_S`` per batch."""

    MAX_WAIT_S = 60.0

    def __init__(self):
        self._count = 0
        self._cond = threading.Condition()

    @contextmanager
    def answering(self):
        with self._cond:
            self._count += 1
        try:
            yield
        finally:
            with self._cond:
                self._count -= 1
                self._cond.notify_all()

    def wait_until_none(self) -> None:
        with self._cond:
            self._cond.wait_for(lambda: self._count == 0, timeout=self.MAX_WAIT_S)


def _quietly(job: Callable[[], object]) -> Callable[[], None]:
    def run() -> None:
        try:
            job()
        except Exception:
            pass  # raised again where the part is used, with the user's error message

    return run


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


def _check_request(what: str, text: str, top_k: int | None) -> str:
    """The question or query, stripped; LibraryError for an empty one, one that is not text
    (invalid UTF-8 arrives from the command line as lone surrogates), or a top_k below 1."""
    text = text.strip()
    if not text:
        raise LibraryError(f"the {what} is empty")
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        raise LibraryError(f"the {what} is not valid UTF-8 text (check the terminal's encoding)") from None
    if top_k is not None and top_k < 1:
        raise LibraryError(f"top_k must be 1 or more, not {top_k}")
    return text


class Library:
    def __init__(self, config: Config | None = None, *, registry: PluginRegistry | None = None, embedder=None, generator=None):
        self.config = config or load_config()
        self._registry = registry
        self._embedder = embedder
        self._generator = generator
        self._load_lock = threading.RLock()  # the TUI asks and ingests from worker threads
        self._query_warm = False
        self._warned_health = False
        self._warm_parts = 0  # warm_up(): 1 = the search parts, 2 = and the LLM
        self._questions = _QuestionGate()  # an ingest in this process waits between batches while one is answered

    # --- parts, built on first use ---------------------------------------------

    @property
    def registry(self) -> PluginRegistry:
        """The plugins, listed on first use: `assistant status` never reads the entry points."""
        with self._load_lock:
            if self._registry is None:
                self._registry = PluginRegistry(self.config.plugins)
            return self._registry

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
        other = Library(config, registry=self.registry, embedder=self._embedder, generator=self._generator)
        other._questions = self._questions  # the same cores: a question in one holds back an ingest in the other
        return other

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
        from .conversation import Conversations

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
        confirm_prune: bool = False,
        retry_failed: bool = False,
    ) -> IngestReport:
        """Sync ``paths`` (default: the configured folders). ``confirm_prune``: remove what is gone from a
        folder even when it is more than ``[ingest] max_prune_share`` of its files (see removals.py).
        A file that failed and has not changed since is not read again unless ``retry_failed``."""
        roots = [Path(p).expanduser().resolve() for p in (paths or self.config.folders())]
        if not roots:
            raise LibraryError("nothing to ingest: give a folder, or list folders in [library] folders")
        missing = [str(p) for p in roots if not p.exists()]
        if missing:
            raise LibraryError(f"no such file or folder: {', '.join(missing)}")
        from .ingest import Ingestor, NothingToIngest, write_lock

        def events(ev: IngestEvent) -> None:
            if ev.kind == "embedded":  # after each batch: a question being answered goes first
                self._questions.wait_until_none()
            if on_event is not None:
                on_event(ev)

        with write_lock(self.config.data_dir, wait=wait_for_lock):
            self.store.keyword_index.hold_vectors()  # unchanged chunks keep their vectors in the next snapshot
            ingestor = Ingestor(self.config, self.store, self.embedder, self.registry, on_event=events)
            try:
                report = ingestor.run(roots, confirm_prune=confirm_prune, retry_failed=retry_failed)
            except NothingToIngest as e:
                raise LibraryError(str(e)) from None
            self._leave_snapshot()
        return report

    def _leave_snapshot(self) -> None:
        """Build the keyword index now and leave its snapshot on disk with the vectors: the next
        one-shot `assistant ask` / `search` loads it instead of building it (0.2 s at 10k chunks,
        2 s at 100k) and searches without importing Chroma (0.9 s). Under the write lock."""
        if self.store.counts()["chunks"]:
            self.store.snapshot_vectors()

    def remove(self, path: str | Path) -> tuple[int, int]:
        """Take a file or folder out of the library. Returns (files, chunks) removed.

        An empty path is refused: ``Path("")`` is the current folder, and a slip of a
        script (``remove "$UNSET"``) must not take out everything below it."""
        from .ingest import write_lock

        if not str(path).strip():
            raise LibraryError("remove: the path is empty; name the file or folder to take out of the library")
        key = str(Path(path).expanduser().resolve())
        with write_lock(self.config.data_dir):
            files = self.store.files_under(key)
            if not files:
                raise LibraryError(f"nothing indexed under {key}")
            self.store.collection  # settle pending writes first
            self.store.keyword_index.hold_vectors()
            chunks = self.store.remove_files(files)
            self.store.erase_deleted()
            self._leave_snapshot()
            return len(files), chunks

    def repair(self) -> "RepairReport":
        """Make the vector store agree with the stored text again (see assistant/repair.py)."""
        from .ingest import write_lock
        from .repair import RepairReport, is_damaged_state, repair_store, set_aside
        from .store import StoreError, state_file

        with write_lock(self.config.data_dir):
            try:
                store = self.store
            except StoreError as e:
                if not is_damaged_state(e):
                    raise
                moved = set_aside(state_file(self.config.data_dir, self.collection))
                self.__dict__.pop("store", None)
                self.store.reset_collection()  # its vectors belong to passages no longer known
                return RepairReport(state_set_aside=str(moved))
            report = repair_store(store, self.embedder, self.config.ingest.batch_size)
            self._leave_snapshot()
            return report

    # --- ask -------------------------------------------------------------------

    def warm_up_search(self) -> None:
        """Pay the first search's one-off costs now: the embedder's first encode and building
        the in-memory keyword index (about 2 s at 100k chunks). Later calls cost nothing."""
        if not self._query_warm:
            self.embedder.embed_query("warm-up")
            self.store.keyword_index.refresh()
            self._query_warm = True

    def warm_up(self, *, generator: bool) -> None:
        """``warm_up_search`` and the vector store opened; with ``generator`` the LLM loads too.

        In a one-shot `assistant ask` / `search` the parts load side by side
        (docs/benchmarks.md, "Starting fast"): the ONNX embedder in a thread while this one
        reads the keyword index's snapshot, and the LLM in a thread (llama.cpp loads in C with
        the interpreter free). Chroma, when the snapshot has no vectors, is imported only after
        the embedder's libraries, and before the LLM thread starts: two threads importing
        overlapping packages with import cycles (numpy) can get a half-initialised module, so
        each thread imports only its own. A part that fails to load there fails again, with its
        own error, where it is used."""
        if self._warm_parts >= (2 if generator else 1):
            return
        import numpy  # noqa: F401  (shared by every part: imported once, here)

        embedder_loading = None if self._query_warm else self._load_embedder_in_background()
        if not self.store.has_exact_vectors():  # (loads the keyword index's snapshot meanwhile)
            if embedder_loading is not None:
                embedder_loading.join()
            self.store.collection  # chromadb: an import in Python, nothing to overlap
        llm_loading = None
        if generator:
            try:
                llm = self.generator  # made here; the thread loads the GGUF
            except LibraryError:
                llm = None  # raised again by the question, with its message
            if llm is not None:
                llm_loading = threading.Thread(target=_quietly(llm.info), name="llm-load", daemon=True)
                llm_loading.start()
            from . import answer  # noqa: F401  (its patterns compile while the GGUF loads)
        try:
            if embedder_loading is not None:
                embedder_loading.join()
            self.warm_up_search()
        finally:
            if llm_loading is not None:
                llm_loading.join()
        self._warm_parts = 2 if generator else 1

    def _load_embedder_in_background(self) -> threading.Thread | None:
        """The ONNX embedder's load in a thread (the one `assistant search` started first, if so)."""
        if self.config.embedding.backend != "onnx":
            return None  # torch's imports stay in the calling thread
        try:
            load = getattr(self.embedder, "load_in_background", None)  # (a test's fake has none)
        except LibraryError:
            return None  # raised again by the search, with its message
        return load() if load is not None else None

    def search(self, query: str, *, top_k: int | None = None, mode: str | None = None, filters: Filters | None = None) -> list[Hit]:
        return self.retrieve(query, top_k=top_k, mode=mode, filters=filters).hits

    def retrieve(self, query: str, *, top_k: int | None = None, mode: str | None = None, filters: Filters | None = None) -> Retrieval:
        """The one retrieval path (``search``, ``ask``, ``eval``, the APIs): hits with per-step scores."""
        _check_request("query", query, top_k)
        self._require_index()
        try:
            return self.retriever.retrieve(query, top_k=top_k, mode=mode, filters=filters)
        except StageError as e:
            raise LibraryError(str(e)) from None

    def _require_index(self, *, generator: bool = False) -> None:
        """Refuse an empty library; else load what a search (and with ``generator`` an answer) needs."""
        if self.store.counts()["chunks"] == 0:
            raise LibraryError("nothing is indexed yet: run `assistant ingest PATH` first")
        self.warm_up(generator=generator)  # the first search's one-off costs, side by side
        if self.store.has_exact_vectors():
            return  # vectors read from Chroma after the last change, with none missing: no Chroma needed
        self.store.collection  # opened once: the start-up check of Chroma against SQLite
        health = self.store.health
        if health is not None and not health.ok and not self._warned_health:
            self._warned_health = True
            warnings.warn(StoreWarning(health.describe(self.store.chroma_path)), stacklevel=3)

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
        question = _check_request("question", question, top_k)
        verify = self.config.answer.model == "verify"
        self._require_index(generator=verify)  # one-off set-up costs are not the question's time
        if verify:
            self.generator.info()  # raises here if it could not be loaded
        from .answer import Answerer
        from .conversation import standalone_query

        answerer = Answerer(self.config, self.retriever, self.embedder,
                            self.generator if self.config.answer.model == "verify" else None, self.store)
        try:
            with self._questions.answering():
                yield from answerer.stream(question, standalone_query(question, history), top_k=top_k, mode=mode,
                                           filters=filters)
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
            embed_backend=self.config.embedding.backend,
            vectors_backend=self.store.meta(EMBED_BACKEND_KEY) if counts["chunks"] else None,
            generator=gen.generator,
            model=gen.model,
            failures=self.store.failures(),
            generation=self.store.meta(GENERATION_KEY),
            updating=update_in_progress(self.config.data_dir),
        )

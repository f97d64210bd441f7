"""Built-in generator plugin: an OpenAI-compatible HTTP server on your own network.

Talks to a llama.cpp server (``llama-server``), llama-cpp-python's
``python -m llama_cpp.server``, vLLM or Ollama through the OpenAI HTTP API
(``/chat/completions``, ``/completions``, ``/models``), streaming the answer as
server-sent events. Standard library only (``urllib.request`` + ``json``).

Settings (``[plugins.openai]``)::

    base_url  = "http://127.0.0.1:8080/v1"  # the server's OpenAI API root
    model     = ""        # name sent in requests; "" = the first one GET /models lists
    api_key   = ""        # sent as "Authorization: Bearer ..."; fallback: $ASSISTANT_OPENAI_API_KEY
    n_ctx     = 4096      # the context length to assume (the core offers [generation] n_ctx)
    timeout_s = 120.0     # connect timeout, and the longest wait between two pieces of an answer
    chat      = true      # chat requests go to /chat/completions; false: everything to /completions

``[generation] model`` is offered to this plugin as ``model``; its default,
``"builtin"`` (the embedded GGUF of the llamacpp plugin), means "auto" here.
Environment proxies (``http_proxy`` ...) are ignored and redirects are not
followed: the documents' text goes to ``base_url`` and nowhere else.

``count_tokens`` uses the server's tokenizer where there is one (llama.cpp's
``POST /tokenize`` or llama-cpp-python's ``POST /extras/tokenize/count``, at
``base_url`` without ``/v1``), else ``len(text) // 3``.
"""

from __future__ import annotations

import http.client
import json
import os
import socket
import ssl
import threading
import time
import urllib.error
import urllib.parse
import urllib.request
from typing import Any, Iterator

from assistant.types import GenerationRequest, ModelInfo

__all__ = ["OpenAIGenerator", "OpenAIServerError", "API_KEY_ENV"]

API_KEY_ENV = "ASSISTANT_OPENAI_API_KEY"
_MAX_LINE = 1 << 20  # one SSE line; a longer one is not an answer chunk
_MAX_ERROR_BODY = 8192
_PROBE_TIMEOUT_S = 3.0  # info() and count_tokens() never wait longer than this
_TOKENIZE_RETRY_S = 30.0  # after the tokenizer could not be reached, use the estimate this long


class OpenAIServerError(RuntimeError):
    """The server could not be reached or answered with an error; ``status`` is the HTTP status, if any."""

    def __init__(self, message: str, status: int | None = None):
        super().__init__(message)
        self.status = status


def _short(text: str, limit: int = 300) -> str:
    text = " ".join(text.split())
    return text if len(text) <= limit else text[: limit - 3] + "..."


def _error_detail(body: bytes) -> str:
    """The message of an error body: OpenAI/llama.cpp {"error": {"message"}}, Ollama {"error": str}, FastAPI {"detail"}."""
    text = body.decode("utf-8", "replace").strip()
    try:
        data = json.loads(text)
    except ValueError:
        return _short(text)
    if isinstance(data, dict):
        err = data.get("error", data.get("detail"))
        if isinstance(err, dict):
            err = err.get("message") or err.get("msg") or err
        if isinstance(err, list) and err and isinstance(err[0], dict):
            err = "; ".join(str(e.get("msg", e)) for e in err)
        if err:
            return _short(str(err))
    return _short(text)


def _piece(event: dict[str, Any], chat: bool) -> str:
    """The text of one streamed chunk (chat: choices[0].delta.content; completion: choices[0].text)."""
    choices = event.get("choices") or []
    if not choices or not isinstance(choices[0], dict):
        return ""
    c = choices[0]
    if chat:
        delta = c.get("delta") or c.get("message") or {}
        text = delta.get("content") if isinstance(delta, dict) else None
    else:
        text = c.get("text")
    return text if isinstance(text, str) else ""


def iter_sse(resp) -> Iterator[str]:
    """The ``data`` of each server-sent event read from a binary file-like ``resp``.

    Events end at a blank line; several ``data:`` lines of one event are joined
    with newlines; comments (``: ping``) and other fields are skipped; CRLF and a
    missing space after the colon are accepted. Stops at the end of the stream.
    """
    data: list[str] = []
    while True:
        raw = resp.readline(_MAX_LINE)
        if not raw:
            break
        line = raw.decode("utf-8", "replace").rstrip("\r\n")
        if not line:
            if data:
                yield "\n".join(data)
                data = []
            continue
        if line.startswith(":"):
            continue
        field, _, value = line.partition(":")
        if field == "data":
            data.append(value[1:] if value.startswith(" ") else value)
    if data:
        yield "\n".join(data)


class _NoRedirect(urllib.request.HTTPRedirectHandler):
    """A redirect is reported as the HTTP error it is, never followed (with the key, to another host)."""

    def redirect_request(self, req, fp, code, msg, headers, newurl):
        return None


class OpenAIGenerator:
    """An OpenAI-compatible server (llama.cpp, vLLM, Ollama ...) as the assistant's LLM."""

    def __init__(
        self,
        *,
        base_url: str = "http://127.0.0.1:8080/v1",
        model: str = "",
        api_key: str = "",
        n_ctx: int = 4096,
        timeout_s: float = 120.0,
        chat: bool = True,
    ) -> None:
        url = base_url.strip().rstrip("/")
        parts = urllib.parse.urlsplit(url)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise ValueError(f"plugins.openai.base_url: expected an http:// or https:// URL, got {base_url!r}")
        if n_ctx <= 0:
            raise ValueError(f"plugins.openai.n_ctx: must be positive, got {n_ctx}")
        if timeout_s <= 0:
            raise ValueError(f"plugins.openai.timeout_s: must be positive, got {timeout_s}")
        self.base_url = url
        self.root_url = url[: -len("/v1")] if url.endswith("/v1") else url
        model = model.strip()
        self.model = "" if model == "builtin" else model  # [generation] model's default means "auto" here
        self.api_key = api_key or os.environ.get(API_KEY_ENV, "")
        self.n_ctx = n_ctx
        self.timeout_s = float(timeout_s)
        self.chat = chat
        # no proxies from the environment and no redirects: requests go to base_url only
        self._opener = urllib.request.build_opener(urllib.request.ProxyHandler({}), _NoRedirect())
        self._lock = threading.Lock()
        self._resolved_model: str | None = None
        self.tokenizer_endpoint: str | None = None  # "/tokenize", "/extras/tokenize/count", "" = none
        self._tokenize_retry_at = 0.0
        self._token_cache: dict[str, int] = {}

    def __repr__(self) -> str:  # never shows the key
        return f"OpenAIGenerator(base_url={self.base_url!r}, model={self.model!r}, chat={self.chat})"

    # --- HTTP ----------------------------------------------------------------

    def _error(self, exc: BaseException, method: str, path: str, timeout: float) -> OpenAIServerError:
        where = f"OpenAI-compatible server at {self.base_url}"
        if isinstance(exc, urllib.error.HTTPError):
            try:
                detail = _error_detail(exc.read(_MAX_ERROR_BODY) or b"")
            except Exception:  # noqa: BLE001 - the status alone still says enough
                detail = ""
            finally:
                exc.close()
            msg = f"{where} answered HTTP {exc.code} {exc.reason} to {method} {path}"
            if detail:
                msg += f": {detail}"
            if exc.code in (401, 403):
                msg += f" (check [plugins.openai] api_key or ${API_KEY_ENV})"
            elif exc.code == 404 and path in ("/chat/completions", "/completions", "/models"):
                msg += " (check [plugins.openai] base_url: it usually ends in /v1)"
            return OpenAIServerError(msg, status=exc.code)
        reason: Any = exc.reason if isinstance(exc, urllib.error.URLError) else exc
        if isinstance(reason, ConnectionRefusedError):
            what = "is not reachable: connection refused"
        elif isinstance(reason, TimeoutError):
            what = f"did not answer within {timeout:g} s (timeout)"
        elif isinstance(reason, socket.gaierror):
            what = f"is not reachable: unknown host {urllib.parse.urlsplit(self.base_url).hostname!r}"
        elif isinstance(reason, (http.client.RemoteDisconnected, http.client.IncompleteRead, ConnectionResetError, BrokenPipeError, ConnectionAbortedError)):
            what = f"closed the connection unexpectedly during {method} {path}"
        elif isinstance(reason, ssl.SSLError):
            what = f"is not reachable: TLS error: {reason}"
        elif isinstance(reason, OSError) and reason.strerror:
            what = f"is not reachable: {reason.strerror[:1].lower()}{reason.strerror[1:]}"
        else:
            what = f"is not reachable: {reason}"
        return OpenAIServerError(f"{where} {what}")

    def _open(self, method: str, path: str, payload: Any = None, *, timeout: float | None = None,
              root: bool = False, accept: str = "application/json"):
        """The open response, or OpenAIServerError."""
        timeout = self.timeout_s if timeout is None else timeout
        url = (self.root_url if root else self.base_url) + path
        headers = {"Accept": accept, "User-Agent": "offline-assistant"}
        data = None
        if payload is not None:
            data = json.dumps(payload).encode("utf-8")
            headers["Content-Type"] = "application/json"
        if self.api_key:
            headers["Authorization"] = f"Bearer {self.api_key}"
        req = urllib.request.Request(url, data=data, headers=headers, method=method)
        try:
            return self._opener.open(req, timeout=timeout)
        except (OSError, http.client.HTTPException) as e:  # URLError and HTTPError are OSErrors
            raise self._error(e, method, path, timeout) from e

    def _json(self, method: str, path: str, payload: Any = None, *, timeout: float | None = None, root: bool = False) -> Any:
        timeout = self.timeout_s if timeout is None else timeout
        resp = self._open(method, path, payload, timeout=timeout, root=root)
        try:
            body = resp.read()
        except (OSError, http.client.HTTPException) as e:
            raise self._error(e, method, path, timeout) from e
        finally:
            resp.close()
        try:
            return json.loads(body)
        except ValueError:
            raise OpenAIServerError(
                f"OpenAI-compatible server at {self.base_url} answered {method} {path} with something that is not JSON: {_short(body.decode('utf-8', 'replace'), 80)!r}"
            ) from None

    # --- model ---------------------------------------------------------------

    def model_name(self, *, timeout: float | None = None) -> str:
        """The model sent in requests: the setting, or the first one the server lists (asked once)."""
        if self.model:
            return self.model
        if self._resolved_model:
            return self._resolved_model
        data = self._json("GET", "/models", timeout=timeout)
        items = data.get("data") if isinstance(data, dict) else None
        if not isinstance(items, list):  # Ollama's native /api/tags shape, just in case
            items = data.get("models") if isinstance(data, dict) else None
        ids = [m.get("id") or m.get("name") for m in (items or []) if isinstance(m, dict)]
        ids = [i for i in ids if isinstance(i, str) and i]
        if not ids:
            raise OpenAIServerError(
                f"OpenAI-compatible server at {self.base_url} lists no models at GET /models; set [plugins.openai] model"
            )
        with self._lock:
            self._resolved_model = ids[0]
        return ids[0]

    def info(self) -> ModelInfo:
        """Never raises: with the model on "auto" and no server to ask, the name says "auto"."""
        try:
            name = self.model_name(timeout=min(self.timeout_s, _PROBE_TIMEOUT_S))
        except OpenAIServerError:
            name = "auto"
        return ModelInfo(name=f"{name} @ {self.base_url}", context_length=self.n_ctx, chat_template=self.chat)

    # --- tokens ----------------------------------------------------------------

    def count_tokens(self, text: str) -> int:
        """The server's token count where it has a tokenizer endpoint, else ``len(text) // 3``."""
        cached = self._token_cache.get(text)
        if cached is not None:
            return cached
        n = self._server_count(text)
        if n is None:
            return len(text) // 3
        if len(self._token_cache) >= 2048:
            self._token_cache.clear()
        self._token_cache[text] = n
        return n

    def _server_count(self, text: str) -> int | None:
        if self.tokenizer_endpoint == "" or time.monotonic() < self._tokenize_retry_at:
            return None
        candidates = [self.tokenizer_endpoint] if self.tokenizer_endpoint else ["/tokenize", "/extras/tokenize/count"]
        timeout = min(self.timeout_s, _PROBE_TIMEOUT_S)
        for path in candidates:
            if path == "/tokenize":  # llama.cpp ("content"), vLLM ("prompt")
                payload: dict[str, Any] = {"content": text, "prompt": text, "add_special": False, "add_special_tokens": False}
                if self.model or self._resolved_model:
                    payload["model"] = self.model or self._resolved_model
            else:  # llama-cpp-python's server
                payload = {"input": text}
            try:
                data = self._json("POST", path, payload, timeout=timeout, root=True)
            except OpenAIServerError as e:
                if e.status is None:  # not reachable: estimate for a while, then ask again
                    self._tokenize_retry_at = time.monotonic() + _TOKENIZE_RETRY_S
                    return None
                continue  # no such endpoint (404, 405, 422 ...): try the next one
            n = None
            if isinstance(data, dict):
                if isinstance(data.get("count"), int):
                    n = data["count"]
                elif isinstance(data.get("tokens"), list):
                    n = len(data["tokens"])
            if n is None:
                continue
            self.tokenizer_endpoint = path
            return n
        if not self.tokenizer_endpoint:
            self.tokenizer_endpoint = ""  # the server has none: estimate from now on
        return None

    # --- generation ------------------------------------------------------------

    def _payload(self, request: GenerationRequest) -> tuple[str, bool, dict[str, Any]]:
        if request.messages is not None and self.chat:
            path, chat, body = "/chat/completions", True, {"messages": list(request.messages)}
        else:
            prompt = request.prompt
            if prompt is None:  # chat messages but chat = false: one plain prompt
                prompt = "\n\n".join(str(m.get("content", "")) for m in request.messages or [])
            path, chat, body = "/completions", False, {"prompt": prompt}
        model = self.model_name()
        if model:
            body["model"] = model
        body.update(stream=True, max_tokens=request.max_tokens, temperature=request.temperature)
        if request.stop:
            body["stop"] = list(request.stop)
        return path, chat, body

    def stream(self, request: GenerationRequest) -> Iterator[str]:
        """POST with stream=true and yield the text deltas; closing the iterator closes the response."""
        path, chat, body = self._payload(request)
        resp = self._open("POST", path, body, accept="text/event-stream")
        where = f"OpenAI-compatible server at {self.base_url}"
        limit = 4 * max(request.max_tokens, 1) + 64  # a server ignoring max_tokens cannot stream forever
        pieces = 0
        try:
            if resp.headers.get_content_type() == "application/json":  # the server ignored stream=true
                event = json.loads(resp.read())
                if isinstance(event, dict) and event.get("error"):
                    raise OpenAIServerError(f"{where} reported an error: {_error_detail(json.dumps(event).encode())}")
                text = _piece(event, chat) if isinstance(event, dict) else ""  # chat: choices[0].message
                if text:
                    yield text
                return
            for data in iter_sse(resp):
                if data.strip() == "[DONE]":
                    return
                try:
                    event = json.loads(data)
                except ValueError:
                    raise OpenAIServerError(f"{where} sent an event that is not JSON: {_short(data, 80)!r}") from None
                if not isinstance(event, dict):
                    continue
                if event.get("error"):
                    raise OpenAIServerError(f"{where} reported an error: {_error_detail(data.encode())}")
                text = _piece(event, chat)
                if text:
                    yield text
                    pieces += 1
                    if pieces >= limit:
                        return
        except (OSError, http.client.HTTPException) as e:  # read timeout, connection reset ...
            raise self._error(e, "POST", path, self.timeout_s) from e
        except ValueError as e:  # a JSON body that does not parse
            raise OpenAIServerError(f"{where} answered POST {path} with something that is not JSON: {e}") from None
        finally:
            resp.close()

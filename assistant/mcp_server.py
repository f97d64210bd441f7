"""`assistant mcp`: the library as an MCP server over stdio (the official ``mcp`` SDK).

Imported only by that command. Tools: ``search``, ``ask``, ``list_files``, ``read_passage``;
resources: the indexed files. Everything is read from the index (the text ingest stored),
never from disk, so a client cannot reach other files through this server. Logs go to
stderr (stdout is the protocol) and never hold questions or document text.
"""

from __future__ import annotations

import threading
from pathlib import Path
from typing import Any
from urllib.parse import unquote, urlparse

from mcp.server.lowlevel.helper_types import ReadResourceContents
from mcp.server.mcpserver import MCPServer
from mcp.server.mcpserver.exceptions import ResourceNotFoundError, ToolError
from mcp_types import Resource

from .library import Library, LibraryError
from .retrieve import Filters
from .serving import Busy, Generations, NotIndexed, answer_json, files_json, hits_json, indexed_lines, ask as ask_answer

__all__ = ["build_server", "run_stdio"]

INSTRUCTIONS = (
    "A private library of the user's documents. `search` finds passages (path, page, lines); "
    "`ask` answers from them with [n] citations; `read_passage` shows more lines around a passage; "
    "`list_files` lists what is indexed."
)


class _LibraryServer(MCPServer):
    """MCPServer whose resources are the files in the index at the time of the request."""

    def __init__(self, lib: Library, **kw):
        super().__init__(**kw)
        self.lib = lib

    async def list_resources(self) -> list[Resource]:
        import anyio.to_thread

        files = await anyio.to_thread.run_sync(files_json, self.lib)
        return [Resource(uri=Path(f["path"]).as_uri(), name=Path(f["path"]).name, title=f["title"],
                         description=f"{f['chunks']} passages, read by the {f['reader']} reader",
                         mime_type="text/plain") for f in files]

    async def read_resource(self, uri, context=None):
        import anyio.to_thread

        parsed = urlparse(str(uri))
        path = unquote(parsed.path)
        if parsed.scheme != "file":
            raise ResourceNotFoundError(f"{uri}: not a file of the index")
        try:
            text = await anyio.to_thread.run_sync(_whole_text, self.lib, path)
        except NotIndexed as e:
            raise ResourceNotFoundError(str(e)) from None
        return [ReadResourceContents(content=text, mime_type="text/plain")]


def _whole_text(lib: Library, path: str) -> str:
    """The indexed text of a file, page by page."""
    chunks = lib.store.chunks_of(path)
    if not chunks:
        raise NotIndexed(f"{path} is not in the index")
    pages = sorted({c.page for c in chunks}, key=lambda p: (p is None, p or 0))
    last = max(c.end_line for c in chunks)
    parts = [indexed_lines(lib, path, 1, last, page) for page in pages]
    if pages == [None]:
        return parts[0]["text"]
    return "\n\n".join(f"--- page {p['page']} ---\n{p['text']}" for p in parts)


def build_server(lib: Library, generations: Generations | None = None) -> MCPServer:
    generations = generations or Generations(lib.config.server.max_queue)
    server = _LibraryServer(lib, name="offline-assistant", instructions=INSTRUCTIONS, log_level="WARNING")

    @server.tool()
    def search(query: str, k: int = 5, path_glob: str | None = None, file_type: str | None = None) -> list[dict[str, Any]]:
        """Passages of the library that match the query, best first: path, page, start_line, end_line, heading, text.
        path_glob limits the files (e.g. "*/reports/*"), file_type to one suffix (e.g. "pdf")."""
        types = (file_type.strip().lstrip(".").lower(),) if file_type and file_type.strip() else ()
        try:
            return hits_json(lib.search(query, top_k=max(1, min(k, 50)), filters=Filters(path_glob, types)))
        except LibraryError as e:
            raise ToolError(str(e)) from None

    @server.tool()
    def ask(question: str) -> dict[str, Any]:
        """Answer a question from the library. The answer cites passages as [n]; `sources.passages`
        holds them (n, path, page, lines, text, cited) and `sources.how` says how the answer was made."""
        try:
            answer = generations.submit(ask_answer, lib, question, None, threading.Event()).result()
        except (LibraryError, Busy) as e:
            raise ToolError(str(e)) from None
        return {"answer": answer.text, "sources": answer_json(answer)}

    @server.tool()
    def list_files(path_glob: str | None = None) -> list[dict[str, Any]]:
        """The indexed files (path, title, passages, reader), optionally only those matching path_glob."""
        return files_json(lib, path_glob)

    @server.tool()
    def read_passage(path: str, start_line: int, end_line: int, page: int | None = None) -> dict[str, Any]:
        """Lines start_line..end_line of an indexed file, as the index holds them (never read from disk).
        For paged files (PDF) lines count within `page` (default: the first)."""
        try:
            return indexed_lines(lib, path, start_line, end_line, page)
        except NotIndexed as e:
            raise ToolError(str(e)) from None

    return server


def run_stdio(lib: Library) -> None:
    lib.generator.info()  # load the models before the client's first call
    try:
        lib.warm_up_search()
    except LibraryError:
        pass  # nothing indexed yet
    build_server(lib).run("stdio")

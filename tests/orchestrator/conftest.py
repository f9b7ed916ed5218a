"""Fixtures of the orchestrator's tests: a real HTTP file server on 127.0.0.1 for the `data fetch` tests."""

from __future__ import annotations

import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest


class _Handler(BaseHTTPRequestHandler):
    server: FileServer

    def log_message(self, *args) -> None:  # keep pytest output clean
        pass

    def do_GET(self) -> None:  # noqa: N802 (the http.server API)
        srv, path, wanted = self.server, self.path.lstrip("/"), self.headers.get("Range")
        srv.requests.append((path, wanted))
        if path not in srv.files or path in srv.fail_once:
            self.send_error(srv.fail_once.pop(path, 404))
            return
        body = srv.files[path]
        start = int(wanted.removeprefix("bytes=").rstrip("-")) if wanted and not srv.ignore_range else None
        if start is not None and start >= len(body):
            self.send_response(416)
            self.send_header("Content-Range", f"bytes */{len(body)}")
            self.send_header("Content-Length", "0")
            self.end_headers()
            return
        self.send_response(206 if start is not None else 200)
        if start is not None:
            self.send_header("Content-Range", f"bytes {start}-{len(body) - 1}/{len(body)}")
        start = start or 0
        self.send_header("Content-Length", str(len(body) - start))
        self.end_headers()
        stop = len(body)
        if path in srv.cut_once:
            stop = start + srv.cut_once.pop(path)
        if path in srv.cut_at:
            stop = min(stop, max(start, srv.cut_at[path]))
        self.wfile.write(body[start:stop])
        self.close_connection = True  # a cut transfer ends with the connection closed early


class FileServer(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self) -> None:
        super().__init__(("127.0.0.1", 0), _Handler)
        self.files: dict[str, bytes] = {}
        self.requests: list[tuple[str, str | None]] = []
        self.cut_once: dict[str, int] = {}  # path -> bytes to send in the next response, then close
        self.cut_at: dict[str, int] = {}  # path -> file offset no response goes past
        self.fail_once: dict[str, int] = {}  # path -> HTTP error status for the next request only
        self.ignore_range = False
        self.url = f"http://127.0.0.1:{self.server_address[1]}/"

    def requests_for(self, path: str) -> list[str | None]:
        return [wanted for p, wanted in self.requests if p == path]


@pytest.fixture
def server():
    srv = FileServer()
    thread = threading.Thread(target=srv.serve_forever, args=(0.05,), daemon=True)
    thread.start()
    yield srv
    srv.shutdown()
    srv.server_close()

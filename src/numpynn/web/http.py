"""The HTTP server behind ``numpynn serve``: the page's static files and its JSON API.

The endpoints and their answers are documented in :mod:`numpynn.web.api`
(what a network makes of a drawing) and :mod:`numpynn.web.trainer` (the
"watch it learn" job); this module is the plumbing: routes, limits, refusals
and the server's life cycle. It serves an :class:`~numpynn.web.api.App`;
:mod:`numpynn.web.launch` puts one together with its training job.

Why the standard library's :class:`http.server.ThreadingHTTPServer`
--------------------------------------------------------------------
The page is for one person on their own machine: a handful of small requests
a second. ``http.server`` does that with no dependency at all (numpynn needs
only NumPy, plus Pillow to read the drawing), starts instantly, and a thread
per connection keeps the page responsive while a network trains in the
background. It is not a production web server (no TLS, no authentication, no
protection against floods), so by default it listens on 127.0.0.1 only, and
:func:`serve` warns when asked to listen anywhere else.

Hardening that costs nothing: request bodies are limited to
:data:`MAX_BODY_BYTES`; POSTs must be ``Content-Type: application/json`` (a
cross-site form cannot send that without a CORS preflight, which this server
never grants) and are refused (403) when a browser says they come from another
page (an ``Origin`` that is not this server's own); a loopback server only
answers requests whose ``Host`` is a loopback name (no DNS rebinding); static
files come only from the package's ``static`` folder; a connection that sends
nothing, or stops in the middle of a request, is closed after
:data:`REQUEST_TIMEOUT` seconds; every error is a JSON ``{"error": "..."}`` and
the log never holds a traceback (one line per problem; ``NUMPYNN_DEBUG=1``
prints tracebacks).
"""

from __future__ import annotations

import contextlib
import errno
import ipaddress
import json
import socket
import socketserver
import sys
import threading
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, unquote, urlsplit

from .._checks import one_line
from ._json import ApiError
from ._log import log_failure
from .api import App, TrainingJob

__all__ = ["MAX_BODY_BYTES", "REQUEST_TIMEOUT", "STATIC_DIR", "Handler", "WebServer", "is_loopback"]

#: Largest request body accepted (a 280x280 drawing as a PNG data URL is ~20 KiB).
MAX_BODY_BYTES = 1024 * 1024
#: Seconds a connection may sit idle, or take between two pieces of a request, before it is closed.
REQUEST_TIMEOUT = 30.0
#: A body over the limit but under this is read and dropped before the 413 (larger: cut off).
_DRAIN_LIMIT = 16 * MAX_BODY_BYTES

STATIC_DIR = Path(__file__).resolve().parent / "static"
CONTENT_TYPES = {
    ".html": "text/html; charset=utf-8",
    ".js": "text/javascript; charset=utf-8",
    ".css": "text/css; charset=utf-8",
    ".png": "image/png",
    ".svg": "image/svg+xml",
    ".ico": "image/x-icon",
}
PAGE_CSP = (
    "default-src 'self'; img-src 'self' data:; style-src 'self'; script-src 'self'; "
    "connect-src 'self'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'"
)


def is_loopback(host: str) -> bool:
    """True for 127.0.0.1, localhost, ::1 (and the rest of 127.0.0.0/8)."""
    name = host.strip().strip("[]").lower()
    if name == "localhost":
        return True
    try:
        return ipaddress.ip_address(name).is_loopback
    except ValueError:
        return False


def _static_file(path: str) -> Path | None:
    """The file in the static folder that a URL path names, or None.

    The path is URL-decoded, then resolved (following ``..`` and links), and
    must then be a file directly inside the static folder with a known type.
    """
    try:
        name = unquote(path, errors="strict")
    except UnicodeDecodeError:
        return None
    if "\x00" in name or "\\" in name:
        return None
    name = name.lstrip("/")
    if name.startswith("static/"):
        name = name[len("static/"):]
    if name in ("", "index.html"):
        name = "index.html"
    root = STATIC_DIR.resolve()
    try:
        candidate = (root / name).resolve()
    except (OSError, ValueError, RuntimeError):
        return None
    if candidate.parent != root or not candidate.is_file():
        return None
    if candidate.suffix.lower() not in CONTENT_TYPES:
        return None
    return candidate


class Handler(BaseHTTPRequestHandler):
    """Routes requests to the static files and the JSON API (see :mod:`numpynn.web.api`)."""

    server: WebServer
    server_version = "numpynn-web"
    sys_version = ""
    protocol_version = "HTTP/1.1"
    timeout = REQUEST_TIMEOUT  # seconds a connection may sit idle (or dribble a request); see setup
    error_content_type = "application/json"
    # answer at once: the headers and the body are two writes, and with Nagle's algorithm the
    # body would wait for the client's delayed acknowledgement of the headers (about 40 ms)
    disable_nagle_algorithm = True

    API_ROUTES: dict[str, tuple[str, ...]] = {
        "/api/predict": ("POST",),
        "/api/explain": ("POST",),
        "/api/train": ("POST",),
        "/api/train/status": ("GET", "HEAD"),
        "/api/model": ("GET", "HEAD"),
    }

    # -- plumbing ---------------------------------------------------------------
    def setup(self) -> None:
        self.timeout = self.server.request_timeout
        super().setup()

    def log_message(self, format: str, *args: Any) -> None:
        if self.server.app.verbose:
            super().log_message(format, *args)

    def send_error(self, code: int, message: str | None = None, explain: str | None = None) -> None:
        """Errors found by http.server itself (bad request line, unknown method, ...) as JSON too."""
        try:
            phrase = HTTPStatus(code).phrase
        except ValueError:
            phrase = "error"
        self.close_connection = True
        if self.request_version == "HTTP/0.9":  # an unreadable request line: answer with headers all the same
            self.request_version = "HTTP/1.0"
        self._send_json(code, {"error": one_line(message or phrase)}, close=True)

    def _send(self, status: int, body: bytes, content_type: str, headers: dict[str, str] | None = None,
              close: bool = False) -> None:
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        self.send_header("Cache-Control", "no-store")
        self.send_header("X-Content-Type-Options", "nosniff")
        self.send_header("Referrer-Policy", "no-referrer")
        for key, value in (headers or {}).items():
            self.send_header(key, value)
        if close:
            self.close_connection = True
            self.send_header("Connection", "close")
        self.end_headers()
        if self.command != "HEAD" and status >= 200 and status not in (204, 304):
            self.wfile.write(body)

    def _send_json(self, status: int, obj: Any, headers: dict[str, str] | None = None,
                   close: bool = False) -> None:
        body = json.dumps(obj, separators=(",", ":"), allow_nan=False).encode("utf-8")
        self._send(status, body, "application/json; charset=utf-8", headers, close)

    def _read_json(self) -> Any:
        """The request body as JSON, within MAX_BODY_BYTES (read nothing if it is too big)."""
        ctype = (self.headers.get("Content-Type") or "").split(";")[0].strip().lower()
        if ctype != "application/json":
            self.close_connection = True
            raise ApiError(415, "send the body as JSON with Content-Type: application/json")
        if self.headers.get("Transfer-Encoding"):
            self.close_connection = True
            raise ApiError(411, "send a Content-Length (chunked bodies are not accepted)")
        length_text = self.headers.get("Content-Length")
        if length_text is None:
            self.close_connection = True
            raise ApiError(411, "send a Content-Length")
        try:
            length = int(length_text.strip())
        except ValueError:
            length = -1
        if length < 0 or not length_text.strip().isdigit():
            self.close_connection = True
            raise ApiError(400, "bad Content-Length")
        if length > MAX_BODY_BYTES:
            self.close_connection = True
            if length <= _DRAIN_LIMIT:  # read and drop it, so the client sees the answer, not a reset
                self._discard(length)
            raise ApiError(413, f"the request body is too large: {length:,} bytes, at most "
                                f"{MAX_BODY_BYTES:,}")
        body = self.rfile.read(length) if length else b""
        self._body_read = True
        if len(body) != length:
            self.close_connection = True
            raise ApiError(400, "the request body ended early")
        if not body.strip():
            return None

        def no_constants(name: str) -> Any:
            raise ValueError(f"{name} is not valid JSON")

        try:
            return json.loads(body.decode("utf-8"), parse_constant=no_constants)
        except UnicodeDecodeError:
            raise ApiError(400, "the body is not UTF-8 text") from None
        except (ValueError, RecursionError) as e:
            raise ApiError(400, f"malformed JSON: {one_line(e)}") from None

    def _discard(self, length: int) -> None:
        left = length
        while left > 0:
            chunk = self.rfile.read(min(left, 65536))
            if not chunk:
                break
            left -= len(chunk)
        self._body_read = True

    def _check_host(self) -> None:
        """A loopback server answers only loopback Host names (defeats DNS rebinding)."""
        if not self.server.loopback:
            return
        host = self.headers.get("Host")
        if host is None:
            return
        name = host.strip()
        if name.startswith("["):
            name = name[1:].split("]")[0]
        elif name.count(":") == 1:
            name = name.split(":")[0]
        if not is_loopback(name):
            raise ApiError(403, "this server only answers requests addressed to a loopback name "
                                "(127.0.0.1, localhost, ::1)")

    def _check_origin(self) -> None:
        """A POST that a browser says comes from another page (its ``Origin`` is not this
        server's own address) is refused: no other site may drive this one."""
        if self.command != "POST":
            return
        origin = self.headers.get("Origin")
        if origin is None:  # not a browser (curl, a script): the Host check and JSON type apply
            return
        host = (self.headers.get("Host") or "").strip().lower()
        if not host or origin.strip().lower() != f"http://{host}":
            raise ApiError(403, f"requests from another page are refused (Origin {origin[:100]!r} is not "
                                "this server's own)")

    # -- dispatch ---------------------------------------------------------------
    def _dispatch(self) -> None:
        self._body_read = False
        try:
            self._check_host()
            self._check_origin()
            url = urlsplit(self.path)
            path = url.path or "/"
            if path in self.API_ROUTES:
                allowed = self.API_ROUTES[path]
                if self.command not in allowed:
                    raise ApiError(405, f"{path} accepts {' and '.join(allowed)}, not {self.command}",
                                   {"Allow": ", ".join(allowed)})
                self._api(path, url.query)
            elif path == "/api" or path.startswith("/api/"):
                raise ApiError(404, f"no such API endpoint: {path}")
            else:
                self._static(path)
        except ApiError as e:
            if not self._body_read and (self.headers.get("Transfer-Encoding")
                                        or (self.headers.get("Content-Length") or "0").strip() != "0"):
                self.close_connection = True  # the unread body must not be taken for the next request
            self._send_json(e.status, {"error": e.message}, e.headers, close=self.close_connection)
        except (BrokenPipeError, ConnectionResetError, TimeoutError):
            self.close_connection = True
        except Exception as e:  # never a traceback in a response, nor in the log
            _log_failure(f"{self.command} {self.path[:200]}", e)
            with contextlib.suppress(OSError):
                self._send_json(500, {"error": "internal server error (details in the server's log)"},
                                close=True)

    def _api(self, path: str, query: str) -> None:
        app = self.server.app
        if path == "/api/predict":
            self._send_json(200, app.predict(self._read_json()))
        elif path == "/api/explain":
            self._send_json(200, app.explain(self._read_json()))
        elif path == "/api/train":
            payload = self._read_json()
            if payload not in (None, {}):
                raise ApiError(400, "/api/train takes no options: send {}")
            self._send_json(202, self._trainer().start())
        elif path == "/api/train/status":
            flags = parse_qs(query)
            pixels = flags.get("pixels", ["0"])[-1].lower() in ("1", "true", "yes")
            self._send_json(200, self._trainer().status(pixels=pixels))
        elif path == "/api/model":
            self._send_json(200, app.model_info())

    def _trainer(self) -> TrainingJob:
        trainer = self.server.app.trainer
        if trainer is None:
            raise ApiError(503, "this server does not train networks")
        return trainer

    def _static(self, path: str) -> None:
        file = _static_file(path)
        if file is None:
            raise ApiError(404, f"not found: {path[:200]}")
        if self.command not in ("GET", "HEAD"):
            raise ApiError(405, f"{path[:200]} accepts GET and HEAD, not {self.command}",
                           {"Allow": "GET, HEAD"})
        headers = {"Content-Security-Policy": PAGE_CSP} if file.suffix == ".html" else {}
        self._send(200, file.read_bytes(), CONTENT_TYPES[file.suffix.lower()], headers)

    do_GET = do_HEAD = do_POST = do_PUT = do_DELETE = do_PATCH = do_OPTIONS = _dispatch


def _log_failure(what: str, e: BaseException) -> None:
    """One line in the server's log for a failure in the server itself."""
    log_failure(f"error in {what}", e, " (NUMPYNN_DEBUG=1 shows where)")


class WebServer(ThreadingHTTPServer):
    """A :class:`ThreadingHTTPServer` holding an :class:`App`.

    Use it in a background thread (``server.start()`` or
    ``Thread(target=server.serve_forever)``) and end it with
    :meth:`shutdown`, which also stops a training job, closes the listening
    socket and any kept-alive connections. Works as a context manager.
    """

    daemon_threads = True
    allow_reuse_address = True
    request_queue_size = 64  # connections waiting to be accepted (a page opening at once, many clients)

    def __init__(self, app: App, host: str = "127.0.0.1", port: int = 8000,
                 request_timeout: float = REQUEST_TIMEOUT) -> None:
        self.request_timeout = float(request_timeout)
        try:
            infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
        except socket.gaierror as e:
            raise OSError(f"cannot listen on {host!r}: {e.strerror}") from None
        self.address_family = infos[0][0]
        self.app = app
        self.loopback = is_loopback(host)
        self._serving = False
        self._closed = False
        self._connections: set[socket.socket] = set()
        self._connections_lock = threading.Lock()
        self._thread: threading.Thread | None = None
        try:
            super().__init__((host, port), Handler)
        except OSError as e:
            why = e.strerror or one_line(e)
            hint = " (is another server using it? try another port, or 0 for any free one)" \
                if e.errno == errno.EADDRINUSE else ""
            raise OSError(e.errno, f"cannot listen on {host} port {port}: {why}{hint}") from None

    def server_bind(self) -> None:
        # HTTPServer.server_bind looks the host name up (socket.getfqdn), which can
        # stall for seconds without DNS; the name is not needed here.
        socketserver.TCPServer.server_bind(self)
        host, port = self.server_address[:2]
        self.server_name, self.server_port = str(host), int(port)

    @property
    def port(self) -> int:
        return int(self.server_address[1])

    @property
    def url(self) -> str:
        """The page's address, e.g. ``http://127.0.0.1:8000/`` (a wildcard host shows as 127.0.0.1)."""
        host = str(self.server_address[0])
        if host in ("0.0.0.0", ""):
            host = "127.0.0.1"
        elif host == "::":
            host = "::1"
        if ":" in host:
            host = f"[{host}]"
        return f"http://{host}:{self.port}/"

    def handle_error(self, request: Any, client_address: Any) -> None:
        """A connection that broke (reset, timed out) is not worth a line; anything else is one line."""
        e = sys.exc_info()[1]
        if isinstance(e, OSError) or e is None:
            return
        _log_failure(f"a connection from {client_address[0]}", e)

    @property
    def open_connections(self) -> int:
        """Connections being served now (each has a thread)."""
        with self._connections_lock:
            return len(self._connections)

    def process_request(self, request: Any, client_address: Any) -> None:
        with self._connections_lock:
            self._connections.add(request)
        super().process_request(request, client_address)

    def shutdown_request(self, request: Any) -> None:
        with self._connections_lock:
            self._connections.discard(request)
        super().shutdown_request(request)

    def serve_forever(self, poll_interval: float = 0.5) -> None:
        self._serving = True
        super().serve_forever(poll_interval)

    def start(self) -> threading.Thread:
        """Serve in a daemon thread; returns it."""
        self._thread = threading.Thread(target=self.serve_forever, name="numpynn-web", daemon=True)
        self._thread.start()
        return self._thread

    def shutdown(self) -> None:
        """Stop serving, stop a training job, close the socket and open connections. Idempotent."""
        if self._closed:
            return
        self._closed = True
        if self.app.trainer is not None:
            self.app.trainer.stop(timeout=10.0)
        if self._serving:
            super().shutdown()
        self.server_close()
        with self._connections_lock:
            open_connections = list(self._connections)
        for conn in open_connections:
            with contextlib.suppress(OSError):
                conn.shutdown(socket.SHUT_RDWR)
        if self._thread is not None:
            self._thread.join(5.0)

    def __enter__(self) -> WebServer:
        return self

    def __exit__(self, *exc: Any) -> None:
        self.shutdown()

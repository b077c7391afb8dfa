"""The web server: a small WSGI router run by gunicorn. ``/oai`` is the OAI-PMH endpoint (``oai.py``);
linked-data pages and SPARQL are meant to become further routes here."""
from __future__ import annotations

from pathlib import Path
from typing import Callable, Iterable
from urllib.parse import parse_qsl
from wsgiref.util import FileWrapper, request_uri

from . import linkeddata, oai, sparql

Response = tuple[str, list[tuple[str, str]], bytes]
Handler = Callable[[dict], Response]
MAX_BODY = 64 * 1024      # an OAI-PMH request is a few arguments
MAX_FIELDS = 50


def text(status: str, message: str, *headers: tuple[str, str]) -> Response:
    return status, [("Content-Type", "text/plain; charset=utf-8"), *headers], (message + "\n").encode()


def oai_handler(repo: oai.Repository) -> Handler:
    """OAI-PMH over GET (query string) and POST (application/x-www-form-urlencoded body)."""
    def handle(environ: dict) -> Response:
        method = environ["REQUEST_METHOD"]
        if method in ("GET", "HEAD"):
            query = environ.get("QUERY_STRING", "")
        elif method == "POST":
            if environ.get("CONTENT_TYPE", "").split(";")[0].strip().lower() != "application/x-www-form-urlencoded":
                return text("415 Unsupported Media Type", "POST OAI-PMH requests as application/x-www-form-urlencoded")
            length = int(environ.get("CONTENT_LENGTH") or 0)
            if length > MAX_BODY:
                return text("413 Content Too Large", "request body too large")
            query = environ["wsgi.input"].read(length).decode("utf-8", "replace")
        else:
            return text("405 Method Not Allowed", "use GET or POST", ("Allow", "GET, HEAD, POST"))
        try:
            pairs = parse_qsl(query, keep_blank_values=True, errors="replace", max_num_fields=MAX_FIELDS)
        except ValueError:
            return text("400 Bad Request", "too many arguments")
        body = repo.handle(pairs, request_uri(environ, include_query=False))
        return "200 OK", [("Content-Type", "text/xml; charset=utf-8")], body
    return handle


def create_app(root: Path) -> Callable:
    """The WSGI application for project ``root``: routes by path."""
    routes: dict[str, Handler] = {"/oai": oai_handler(oai.Repository(root))}
    # linked data (every other path) and SPARQL share one store, synced with the catalog here, before forking
    ld = linkeddata.LinkedData(root)
    ld.store.sync()
    routes["/sparql"] = sparql.Endpoint(ld.store, ld.mappings.prefixes).handle

    def app(environ: dict, start_response: Callable) -> Iterable[bytes]:
        handler = routes.get(environ.get("PATH_INFO") or "/", ld.handle)
        status, headers, body = handler(environ)
        if not isinstance(body, bytes):  # a file to stream: (open file, length)
            fh, length = body
            start_response(status, headers + [("Content-Length", str(length))])
            if environ["REQUEST_METHOD"] == "HEAD":
                fh.close()
                return [b""]
            return environ.get("wsgi.file_wrapper", FileWrapper)(fh, 64 * 1024)
        start_response(status, headers + [("Content-Length", str(len(body)))])
        return [b"" if environ["REQUEST_METHOD"] == "HEAD" else body]
    return app


def run(root: Path, host: str = "127.0.0.1", port: int = 8000, workers: int = 2) -> None:
    """Serve ``root`` with gunicorn (sync workers, forked after the app is built) until stopped."""
    from gunicorn.app.base import BaseApplication

    app = create_app(root)   # before forking: configuration errors surface here, the token key is made once

    class Server(BaseApplication):
        def load_config(self) -> None:
            for key, value in {"bind": f"{host}:{port}", "workers": workers, "worker_class": "sync",
                               "proc_name": "heritage-ld", "timeout": 60, "control_socket_disable": True}.items():
                if key in self.cfg.settings:  # control_socket_disable: gunicorn >= 25 only
                    self.cfg.set(key, value)

        def load(self) -> Callable:
            return app

    Server().run()

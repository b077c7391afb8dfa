"""The web server: a small WSGI router run by gunicorn. ``/oai`` is the OAI-PMH endpoint (``oai.py``),
``/sparql`` the SPARQL endpoint (``sparql.py``), every other path linked data (``linkeddata.py``).

Slow clients cost a greenlet, not a worker: gunicorn's gevent workers, each holding up to ``connections``
connections at once, cut off a client whose request head has not arrived ``[server] request_timeout``
seconds after it connected (or after its previous request), and ``read_body`` one whose body has not
arrived that long after its head. SPARQL queries run in query processes of their own, a bounded pool per
worker (``sparql.QueryPool``), so OAI-PMH and the pages keep answering while queries run.
"""
from __future__ import annotations

import math
import sys
import tomllib
import traceback
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Iterable
from urllib.parse import parse_qsl
from wsgiref.util import FileWrapper, request_uri

from . import config as config_mod
from . import linkeddata, oai, sparql
from .linkeddata import Refused, read_body, text

Response = tuple[str, list[tuple[str, str]], bytes]
Handler = Callable[[dict], Response]
MAX_BODY = 64 * 1024      # an OAI-PMH request is a few arguments
MAX_FIELDS = 50


@dataclass(frozen=True)
class Settings:
    request_timeout: float = 10.0   # seconds for a request's head, and again for its body
    connections: int = 1000         # open connections per worker process


def settings(cfg: config_mod.Config) -> Settings:
    """``[server]`` in heritage-ld.toml: request_timeout (seconds), connections (per worker process)."""
    path = cfg.root / "heritage-ld.toml"
    section = tomllib.loads(path.read_text("utf-8")).get("server", {})
    timeout, connections = section.get("request_timeout", 10), section.get("connections", 1000)
    if not isinstance(timeout, (int, float)) or not 1 <= timeout <= 300:
        raise config_mod.ConfigError(f"{path}: [server] request_timeout must be a number of seconds from 1 to 300")
    if not isinstance(connections, int) or not 10 <= connections <= 100_000:
        raise config_mod.ConfigError(f"{path}: [server] connections must be a whole number from 10 to 100000")
    return Settings(float(timeout), connections)


def oai_handler(repo: oai.Repository, body_timeout: float) -> Handler:
    """OAI-PMH over GET (query string) and POST (application/x-www-form-urlencoded body)."""
    def handle(environ: dict) -> Response:
        method = environ["REQUEST_METHOD"]
        if method in ("GET", "HEAD"):
            query = environ.get("QUERY_STRING", "")
        elif method == "POST":
            if environ.get("CONTENT_TYPE", "").split(";")[0].strip().lower() != "application/x-www-form-urlencoded":
                return text("415 Unsupported Media Type", "POST OAI-PMH requests as application/x-www-form-urlencoded")
            try:
                query = read_body(environ, MAX_BODY, body_timeout).decode("utf-8", "replace")
            except Refused as e:
                return e.response
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
    limits = settings(config_mod.load(root))
    routes: dict[str, Handler] = {"/oai": oai_handler(oai.Repository(root), limits.request_timeout)}
    # linked data (every other path) and SPARQL share one store, synced with the catalog here, before forking
    ld = linkeddata.LinkedData(root)
    ld.store.sync()
    routes["/sparql"] = sparql.Endpoint(ld.store, ld.mappings.prefixes, limits.request_timeout).handle

    def app(environ: dict, start_response: Callable) -> Iterable[bytes]:
        handler = routes.get(environ.get("PATH_INFO") or "/", ld.handle)
        try:
            status, headers, body = handler(environ)
        except Exception:  # noqa: BLE001 - an error escaping to gunicorn would drop the connection unanswered
            traceback.print_exc(file=sys.stderr)
            status, headers, body = text("500 Internal Server Error", "internal error (logged by the server)")
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
    """Serve ``root`` with gunicorn (gevent workers, forked after the app is built) until stopped."""
    from gunicorn.app.base import BaseApplication

    app = create_app(root)   # before forking: configuration errors surface here, the token key is made once
    limits = settings(config_mod.load(root))

    class Server(BaseApplication):
        def load_config(self) -> None:
            for key, value in {"bind": f"{host}:{port}", "workers": workers, "worker_class": "gevent",
                               "worker_connections": limits.connections,
                               "keepalive": math.ceil(limits.request_timeout),  # gevent workers: the time a request head has
                               "proc_name": "heritage-ld", "timeout": 60, "control_socket_disable": True}.items():
                if key in self.cfg.settings:  # control_socket_disable: gunicorn >= 25 only
                    self.cfg.set(key, value)

        def load(self) -> Callable:
            return app

    Server().run()

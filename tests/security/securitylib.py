"""A tiny HTTP server on 127.0.0.1 that records which authority (``Host``) each request named and whether it
carried the ``api_token`` (imported as ``securitylib``; the test folders are not packages)."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from kit import make_context

TOKEN = "sec-test-token-51d2c7"


@dataclass
class Seen:
    """One request the server received."""

    method: str
    path: str
    host: str
    token: str | None


Route = Callable[[BaseHTTPRequestHandler], None]


@dataclass
class Recorder:
    """The server's state: the requests seen and the routes (path -> handler)."""

    seen: list[Seen] = field(default_factory=list)
    routes: dict[str, Route] = field(default_factory=dict)
    port: int = 0

    @property
    def origin(self) -> str:
        """``http://127.0.0.1:<port>``."""
        return f"http://127.0.0.1:{self.port}"

    def tokens_sent_to(self) -> set[str]:
        """The ``Host`` values of the requests that carried the token."""
        return {s.host for s in self.seen if s.token is not None}


def send(handler: BaseHTTPRequestHandler, status: int, body: bytes = b"", headers: dict[str, str] | None = None,
         ) -> None:
    """Answer a request.

    :param handler: the request handler.
    :param status: HTTP status.
    :param body: body bytes.
    :param headers: extra headers.
    """
    handler.send_response(status)
    for key, value in (headers or {}).items():
        handler.send_header(key, value)
    handler.send_header("Content-Length", str(len(body)))
    handler.end_headers()
    handler.wfile.write(body)


def json_route(payload: Any, status: int = 200) -> Route:
    """A route answering JSON."""
    return lambda h: send(h, status, json.dumps(payload).encode(), {"Content-Type": "application/json"})


def redirect_route(location: str) -> Route:
    """A route answering 302 to ``location``."""
    return lambda h: send(h, 302, headers={"Location": location})


def trickle_route(total: int, pause: float) -> Route:
    """A route sending ``total`` bytes one at a time, ``pause`` seconds apart (a slow-loris download)."""

    def route(h: BaseHTTPRequestHandler) -> None:
        h.send_response(200)
        h.send_header("Content-Length", str(total))
        h.end_headers()
        try:
            for _ in range(total):
                h.wfile.write(b"x")
                h.wfile.flush()
                time.sleep(pause)
        except (BrokenPipeError, ConnectionResetError):
            pass

    return route


def start_server(recorder: Recorder) -> tuple[ThreadingHTTPServer, threading.Thread]:
    """Serve ``recorder``'s routes on 127.0.0.1 (an ephemeral port) in a daemon thread."""

    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, *args: Any) -> None:
            return

        def do_GET(self) -> None:  # noqa: N802 - http.server naming
            recorder.seen.append(Seen("GET", self.path, self.headers.get("Host", ""), self.headers.get("api_token")))
            route = recorder.routes.get(self.path.split("?", 1)[0])
            if route is None:
                send(self, 404, b'{"message": "not found"}', {"Content-Type": "application/json"})
            else:
                route(self)

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    server.daemon_threads = True
    recorder.port = server.server_address[1]
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    return server, thread


def png(width: int, height: int) -> bytes:
    """A PNG of one colour (Pillow)."""
    import io

    from PIL import Image

    buf = io.BytesIO()
    Image.new("RGB", (width, height), (30, 60, 90)).save(buf, format="PNG")
    return buf.getvalue()


def context(run_id: str = "manual__1") -> dict[str, Any]:
    """A minimal task context."""
    return make_context(dag_id="sec", task_id="gen", run_id=run_id)


def resumed_images_op(server: Recorder, folder: Any, rid: str, file_route: Route, *,
                      sidecar: dict[str, Any] | None = None, **kwargs: Any) -> Any:
    """An image operator whose earlier try left request ``rid`` in ``folder``'s sidecar; the status service of
    ``server`` answers COMPLETED with an image at ``/files/<rid>.png`` served by ``file_route``.

    :param sidecar: extra sidecar fields (e.g. a planted ``status_url``).
    """
    from airflow_provider_bria.operators.generation import BriaGenerateImagesOperator

    server.routes[f"/v2/status/{rid}"] = json_route({"status": "COMPLETED", "request_id": rid,
                                                     "result": {"image_url": f"{server.origin}/files/{rid}.png"}})
    server.routes[f"/files/{rid}.png"] = file_route
    op = BriaGenerateImagesOperator(task_id="g", model_id=1, prompt="a kite", output_path=str(folder),
                                    check_model=False, max_concurrency=1, hook_params={"retry_limit": 0}, **kwargs)
    stem = op._plan(1)[0].stem
    (folder / f"{stem}.json").write_text(json.dumps({"status": "submitted", "request_id": rid, **(sidecar or {})}))
    op.stem = stem
    return op

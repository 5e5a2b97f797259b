"""Helpers of the upload tests (a uniquely named module: ``conftest`` cannot be imported reliably)."""

from __future__ import annotations

import io
import json
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from functools import partial
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

TOKEN = "test-token-7f3c9a1e5b"  # same as tests/conftest.py TEST_TOKEN (that module cannot be imported)
FAST_HOOK = {"retry_limit": 2, "retry_delay": 0.0, "retry_max_delay": 0.0}


def conn_json(url: str, token: str = TOKEN, **extra: object) -> str:
    """The ``AIRFLOW_CONN_*`` JSON form of a bria connection."""
    return json.dumps({"conn_type": "bria", "host": url, "password": token, "extra": extra})


class FakeTI:
    """The parts of a task instance the operators use: XCom push/pull and the try number."""

    def __init__(self, try_number: int = 1) -> None:
        self.try_number = try_number
        self.xcoms: dict[str, Any] = {}

    def xcom_push(self, key: str, value: Any) -> None:
        json.dumps(value)  # XCom values must be JSON-safe
        self.xcoms[key] = value

    def xcom_pull(self, task_ids: Any = None, key: str = "return_value", **_: Any) -> Any:
        return self.xcoms.get(key)


def context(try_number: int = 1) -> dict[str, Any]:
    """A minimal task context."""
    ti = FakeTI(try_number)
    return {"ti": ti, "task_instance": ti}


def image_bytes(index: int, size: int | tuple[int, int] = 1024, fmt: str = "PNG") -> bytes:
    """A distinct image: a solid colour per index plus an index-dependent stripe (fast to encode)."""
    from PIL import Image

    w, h = (size, size) if isinstance(size, int) else size
    img = Image.new("RGB", (w, h), ((index * 37) % 256, (index * 91) % 256, (index * 53 + 17) % 256))
    img.paste((255 - (index % 256), index // 256 % 256, 7), (0, 0, w, 1 + index % 7))
    buf = io.BytesIO()
    if fmt == "PNG":
        img.save(buf, "PNG", compress_level=1)
    elif fmt == "JPEG":
        img.save(buf, "JPEG", quality=80)
    else:
        img.save(buf, fmt)
    return buf.getvalue()


def write_images(folder: Path, n: int, *, start: int = 0, size: int = 1024, prefix: str = "img") -> list[Path]:
    """Write ``n`` distinct PNGs into ``folder``."""
    folder.mkdir(parents=True, exist_ok=True)
    paths = []
    for i in range(start, start + n):
        path = folder / f"{prefix}-{i:03d}.png"
        path.write_bytes(image_bytes(i, size))
        paths.append(path)
    return paths


def counts(emulator: Any) -> dict[str, int]:
    """The emulator's object counts."""
    return emulator.state()["counts"]


@contextmanager
def serve_directory(directory: Path) -> Iterator[str]:
    """Serve ``directory`` over http on 127.0.0.1 (a thread); yields the base URL."""
    handler = partial(_QuietHandler, directory=str(directory))
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/"
    finally:
        server.shutdown()
        server.server_close()
        thread.join(5)


class _QuietHandler(SimpleHTTPRequestHandler):
    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - signature of the base class
        pass

"""Fixtures of the emulator contract tests: a raw-HTTP client, test images, a local file server.

Helpers live in ``emulator_helpers.py`` (importable from the tests of this folder).
"""

from __future__ import annotations

import functools
import http.server
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from emulator_helpers import COLORS, Api, make_image


@pytest.fixture
def images() -> list[bytes]:
    """Five distinct 1024x1024 PNGs."""
    return [make_image(c) for c in COLORS[:5]]


@pytest.fixture
def api(emulator: Any) -> Api:
    """A raw-HTTP client of the (reset) shared emulator."""
    return Api(emulator.url, emulator.token)


@pytest.fixture
def fast(emulator: Any) -> Any:
    """The shared emulator with short training (0.3 s) and job (0.1 s) times (restored by the next reset)."""
    emulator.set_timing(training_seconds=0.3, job_seconds=0.1)
    return emulator


class _QuietHandler(http.server.SimpleHTTPRequestHandler):
    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 (stdlib signature)
        return


@pytest.fixture(scope="session")
def file_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, Path]]:
    """A local HTTP server for ``zip_url``/``image_url`` tests: yields ``(base_url, directory)``."""
    root = tmp_path_factory.mktemp("served")
    handler = functools.partial(_QuietHandler, directory=str(root))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}", root
    server.shutdown()
    server.server_close()

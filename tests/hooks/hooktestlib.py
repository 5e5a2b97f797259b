"""Helpers of the hook tests (imported as ``hooktestlib``; the test folders are not packages)."""

from __future__ import annotations

import io
import struct
import zlib
from typing import Any

import kit
import requests_mock as rm

from airflow_provider_bria import __version__

TOKEN = "hook-test-token-3b8e1f"  # distinctive, so a leak is easy to spot
BASE = "https://bria.test"
UA_PREFIX = "airflow-provider-bria/"


def conn_json(host: str = BASE, token: str | None = TOKEN, **extra: Any) -> str:
    """The AIRFLOW_CONN_* JSON form of a bria connection (the hook tests' host and token by default)."""
    return kit.conn_json(host, token, **extra)


def png_bytes(width: int = 4, height: int = 4, color: tuple[int, int, int] = (128, 32, 16)) -> bytes:
    """A valid RGB PNG of one colour with a gradient row, built without Pillow."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)

    pixel = bytes(color)
    raw = b"".join(b"\x00" + pixel * (width - 1) + bytes([y % 256, 0, 0]) for y in range(height))
    ihdr = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", zlib.compress(raw)) + chunk(b"IEND", b"")


def assert_sent(
    api: rm.Mocker,
    method: str,
    path: str,
    *,
    json_body: Any = ...,
    query: dict[str, list[str]] | None = None,
    index: int = -1,
) -> Any:
    """Check one recorded request: method, path, query, auth and UA headers, JSON body."""
    req = api.request_history[index]
    assert req.method == method
    assert req.path == path
    assert req.qs == (query or {})
    assert req.headers["api_token"] == TOKEN
    assert req.headers["User-Agent"] == UA_PREFIX + __version__
    assert "Authorization" not in req.headers
    if json_body is not ...:
        if json_body is None:
            assert not req.body
        else:
            assert req.headers["Content-Type"] == "application/json"
            assert req.json() == json_body
    return req


def binary_file(data: bytes) -> io.BytesIO:
    """A binary file object."""
    return io.BytesIO(data)

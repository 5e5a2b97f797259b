"""Outbound fetches the emulator makes for ``image_url``, ``zip_url`` and helper image URLs.

Only ``http``/``https`` URLs, with a size cap and a time limit. Runs in worker threads, never on the event
loop (a URL on the emulator's own host would otherwise dead-lock it). Standard library only.
"""

from __future__ import annotations

import base64
import binascii
import io
import time
import urllib.error
import urllib.parse
import urllib.request
from typing import BinaryIO

USER_AGENT = "bria-emulator-fetch/1"


class FetchError(Exception):
    """A URL could not be fetched.

    :param status: the HTTP status the API answers with (400 bad scheme, 413 too large, 422 unreachable).
    :param text: the message.
    """

    def __init__(self, status: int, text: str) -> None:
        self.status = status
        self.text = text
        super().__init__(text)


def check_url(url: str) -> str:
    """Return ``url`` if it is an absolute http(s) URL.

    :param url: the URL.
    :raises FetchError: 400 for any other scheme or a URL without host.
    """
    parts = urllib.parse.urlsplit(str(url))
    if parts.scheme not in ("http", "https") or not parts.netloc:
        raise FetchError(400, f"Only http(s) URLs are supported, got {str(url)[:200]!r}")
    return url


def url_basename(url: str) -> str:
    """The last path segment of a URL ('' when none).

    :param url: the URL.
    """
    return urllib.parse.unquote(urllib.parse.urlsplit(url).path.rsplit("/", 1)[-1])


def content_length(url: str, *, timeout: float = 5.0) -> int | None:
    """The size a HEAD request announces, or ``None`` when unknown or unreachable.

    :param url: an http(s) URL.
    :param timeout: seconds.
    """
    req = urllib.request.Request(check_url(url), method="HEAD", headers={"User-Agent": USER_AGENT})  # noqa: S310
    try:
        with urllib.request.urlopen(req, timeout=timeout) as resp:  # noqa: S310
            value = resp.headers.get("Content-Length")
            return int(value) if value and value.isdigit() else None
    except (urllib.error.URLError, OSError, ValueError):
        return None


def fetch(url: str, *, max_bytes: int, timeout: float, deadline: float | None = None) -> bytes:
    """GET a URL's body into memory (see :func:`fetch_to`).

    :param url: an http(s) URL.
    :param max_bytes: larger bodies fail with 413.
    :param timeout: socket timeout, seconds.
    :param deadline: ``time.monotonic()`` value after which reading stops with 422.
    """
    buf = io.BytesIO()
    fetch_to(buf, url, max_bytes=max_bytes, timeout=timeout, deadline=deadline)
    return buf.getvalue()


def fetch_to(sink: BinaryIO, url: str, *, max_bytes: int, timeout: float, deadline: float | None = None) -> int:
    """GET a URL's body into a file-like sink, chunk by chunk; returns the size.

    :param sink: where the bytes go (a temporary file for big ZIPs).
    :param url: an http(s) URL.
    :param max_bytes: larger bodies fail with 413.
    :param timeout: socket timeout, seconds.
    :param deadline: ``time.monotonic()`` value after which reading stops with 422.
    :raises FetchError: 400 bad scheme, 413 too large, 422 unreachable/HTTP error/too slow.
    """
    req = urllib.request.Request(check_url(url), headers={"User-Agent": USER_AGENT})  # noqa: S310
    try:
        with urllib.request.urlopen(req, timeout=timeout) as resp:  # noqa: S310
            declared = resp.headers.get("Content-Length")
            if declared and declared.isdigit() and int(declared) > max_bytes:
                raise FetchError(413, f"File at URL is larger than {max_bytes} bytes")
            size = 0
            while True:
                chunk = resp.read(1 << 16)
                if not chunk:
                    return size
                size += len(chunk)
                if size > max_bytes:
                    raise FetchError(413, f"File at URL is larger than {max_bytes} bytes")
                if deadline is not None and time.monotonic() > deadline:
                    raise FetchError(422, "Timed out downloading the URL")
                sink.write(chunk)
    except urllib.error.HTTPError as exc:
        raise FetchError(422, f"Could not download the URL: HTTP {exc.code}") from None
    except (urllib.error.URLError, OSError, ValueError) as exc:
        reason = getattr(exc, "reason", exc)
        raise FetchError(422, f"Could not download the URL: {reason}") from None


def image_bytes(value: str, *, max_bytes: int, timeout: float) -> tuple[bytes, str | None]:
    """Decode an image given as URL or base64 (an optional ``data:...;base64,`` prefix is stripped).

    :param value: an http(s) URL or a base64 string.
    :param max_bytes: size cap.
    :param timeout: fetch timeout, seconds.
    :returns: the bytes and, for a URL, the URL's file name.
    :raises FetchError: as :func:`fetch`; 422 for a string that is neither a URL nor base64.
    """
    text = str(value).strip()
    if text.startswith(("http://", "https://")):
        return fetch(text, max_bytes=max_bytes, timeout=timeout), url_basename(text)
    if "://" in text[:16]:
        check_url(text)
    if text.startswith("data:") and "," in text:
        text = text.split(",", 1)[1]
    try:
        data = base64.b64decode(text, validate=True)
    except (binascii.Error, ValueError):
        raise FetchError(422, "Image is neither an http(s) URL nor valid base64") from None
    if not data:
        raise FetchError(422, "Image is empty")
    if len(data) > max_bytes:
        raise FetchError(413, f"Image is larger than {max_bytes} bytes")
    return data, None

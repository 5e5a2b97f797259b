"""Outbound fetches the emulator makes for ``image_url``, ``zip_url`` and helper image URLs.

Every fetch follows a :class:`FetchPolicy`:

- only ``http``/``https`` URLs, also for every redirect; at most ``max_redirects`` hops;
- the host name is resolved once per hop and *every* address is checked: private, loopback, link-local,
  multicast, reserved and unspecified addresses are refused (422) unless ``allow_private`` is set
  (``--allow-private-fetch``; the test suite sets it because its file servers listen on 127.0.0.1). The
  connection then goes to the checked address, so a DNS answer cannot change between check and use;
- one overall deadline for the whole fetch (connect, redirects, headers and body): a watchdog shuts the
  socket down when it passes, so a server sending one byte per second cannot hold a worker thread;
- a byte cap (413), checked against ``Content-Length`` and against the bytes actually read.

Runs in worker threads, never on the event loop. Standard library only.
"""

from __future__ import annotations

import base64
import binascii
import contextlib
import dataclasses
import http.client
import io
import ipaddress
import socket
import ssl
import threading
import time
import urllib.parse
from collections.abc import Callable
from typing import BinaryIO

USER_AGENT = "bria-emulator-fetch/2"
#: Default overall time limit of one fetch, seconds (``--fetch-timeout``).
DEFAULT_FETCH_SECONDS = 30.0
#: Redirect hops followed (each must be http(s) and pass the address check).
MAX_REDIRECTS = 5
_REDIRECTS = (301, 302, 303, 307, 308)
_CHUNK = 1 << 16


class FetchError(Exception):
    """A URL could not be fetched.

    :param status: the HTTP status the API answers with (400 bad scheme, 413 too large, 422 unreachable).
    :param text: the message.
    """

    def __init__(self, status: int, text: str) -> None:
        self.status = status
        self.text = text
        super().__init__(text)


class RefusedURL(FetchError):  # noqa: N818 (a kind of FetchError)
    """A URL the policy refuses (scheme, private address): no request was made."""


@dataclasses.dataclass(frozen=True)
class FetchPolicy:
    """Limits of outbound fetches.

    :param timeout: overall seconds per fetch (connect + redirects + body).
    :param allow_private: whether private/loopback/link-local targets may be fetched.
    :param max_redirects: redirect hops followed.
    :param own_files: reads a URL of the emulator's own ``/_emulator/files/`` from its store (``None`` when the
        URL is not one); such URLs are never fetched over HTTP (they need the token, and Bria's own
        output URLs are valid inputs of the next call, e.g. image-to-video).
    """

    timeout: float = DEFAULT_FETCH_SECONDS
    allow_private: bool = False
    max_redirects: int = MAX_REDIRECTS
    own_files: Callable[[str], bytes | None] | None = None


def check_url(url: str) -> str:
    """Return ``url`` if it is an absolute http(s) URL.

    :param url: the URL.
    :raises FetchError: 400 for any other scheme or a URL without host.
    """
    parts = urllib.parse.urlsplit(str(url))
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise RefusedURL(400, f"Only http(s) URLs are supported, got {str(url)[:200]!r}")
    return url


def url_basename(url: str) -> str:
    """The last path segment of a URL ('' when none).

    :param url: the URL.
    """
    return urllib.parse.unquote(urllib.parse.urlsplit(url).path.rsplit("/", 1)[-1])


def _public(address: str) -> bool:
    ip = ipaddress.ip_address(address.split("%", 1)[0])
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        ip = ip.ipv4_mapped
    return not (
        ip.is_private or ip.is_loopback or ip.is_link_local or ip.is_multicast or ip.is_reserved or ip.is_unspecified
    )


def resolve(host: str, port: int, policy: FetchPolicy) -> str:
    """Resolve ``host`` and return the address to connect to, after checking every address it has.

    :param host: the URL's host name or literal address.
    :param port: the port.
    :param policy: the fetch policy.
    :raises FetchError: 422 when the name does not resolve or any address is not public (and not allowed).
    """
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except (socket.gaierror, UnicodeError, ValueError) as exc:
        raise FetchError(422, f"Could not resolve the URL's host: {exc}") from None
    addresses = [str(info[4][0]) for info in infos]
    if not addresses:
        raise FetchError(422, "Could not resolve the URL's host")
    if not policy.allow_private and not all(_public(a) for a in addresses):
        raise RefusedURL(422, "The URL points to a private, loopback or link-local address; only public URLs")
    return addresses[0]


class _PinnedHTTPConnection(http.client.HTTPConnection):
    """An HTTP connection to an already checked address (the Host header keeps the name)."""

    def __init__(self, host: str, port: int, address: str, timeout: float) -> None:
        super().__init__(host, port, timeout=timeout)
        self._address = address

    def connect(self) -> None:
        self.sock = socket.create_connection((self._address, self.port), self.timeout)


class _PinnedHTTPSConnection(http.client.HTTPSConnection):
    """An HTTPS connection to an already checked address; the certificate is checked for the host name."""

    def __init__(self, host: str, port: int, address: str, timeout: float) -> None:
        super().__init__(host, port, timeout=timeout, context=ssl.create_default_context())
        self._address = address

    def connect(self) -> None:
        sock = socket.create_connection((self._address, self.port), self.timeout)
        self.sock = self._context.wrap_socket(sock, server_hostname=self.host)  # type: ignore[attr-defined]


class _Watchdog:
    """Shuts a connection's socket down when the overall deadline passes (unblocks any read)."""

    def __init__(self, conn: http.client.HTTPConnection, seconds: float) -> None:
        self.fired = False
        self._conn = conn
        self._timer = threading.Timer(max(seconds, 0.0), self._fire)
        self._timer.daemon = True
        self._timer.start()

    def _fire(self) -> None:
        self.fired = True
        sock = self._conn.sock
        if sock is not None:
            with contextlib.suppress(OSError):
                sock.shutdown(socket.SHUT_RDWR)

    def cancel(self) -> None:
        self._timer.cancel()


_Opened = tuple[http.client.HTTPConnection, http.client.HTTPResponse, "_Watchdog"]


def _open(url: str, method: str, policy: FetchPolicy, deadline: float) -> _Opened:
    """Open ``url`` following redirects; returns the connection, the final 2xx response and its watchdog."""
    target = check_url(url)
    for _ in range(policy.max_redirects + 1):
        parts = urllib.parse.urlsplit(target)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise RefusedURL(422, "Redirect to a non-http(s) URL refused")
        try:
            port = parts.port or (443 if parts.scheme == "https" else 80)
        except ValueError:
            raise FetchError(400, "Invalid port in URL") from None
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            raise FetchError(422, "Timed out downloading the URL")
        address = resolve(parts.hostname, port, policy)
        cls = _PinnedHTTPSConnection if parts.scheme == "https" else _PinnedHTTPConnection
        conn = cls(parts.hostname, port, address, timeout=remaining)
        watchdog = _Watchdog(conn, remaining)
        try:
            path = urllib.parse.urlunsplit(("", "", parts.path or "/", parts.query, ""))
            conn.request(method, path, headers={"User-Agent": USER_AGENT, "Accept": "*/*"})
            resp = conn.getresponse()
        except (OSError, http.client.HTTPException, ValueError) as exc:
            watchdog.cancel()
            conn.close()
            if watchdog.fired or time.monotonic() >= deadline:
                raise FetchError(422, "Timed out downloading the URL") from None
            raise FetchError(422, f"Could not download the URL: {exc.__class__.__name__}") from None
        if resp.status in _REDIRECTS and resp.getheader("Location"):
            location = resp.getheader("Location") or ""
            watchdog.cancel()
            conn.close()
            target = urllib.parse.urljoin(target, location)
            continue
        if not 200 <= resp.status < 300:
            watchdog.cancel()
            conn.close()
            raise FetchError(422, f"Could not download the URL: HTTP {resp.status}")
        return conn, resp, watchdog
    raise FetchError(422, f"Too many redirects (more than {policy.max_redirects})")


def content_length(url: str, policy: FetchPolicy, *, timeout: float = 5.0) -> int | None:
    """The size a HEAD request announces, or ``None`` when unknown or unreachable.

    :param url: an http(s) URL.
    :param policy: the fetch policy (address checks, redirects).
    :param timeout: overall seconds.
    :raises FetchError: when the URL itself is refused by the policy.
    """
    try:
        conn, resp, watchdog = _open(url, "HEAD", policy, time.monotonic() + min(timeout, policy.timeout))
    except RefusedURL:
        raise
    except FetchError:
        return None
    try:
        value = resp.getheader("Content-Length")
        return int(value) if value and value.isdigit() else None
    finally:
        watchdog.cancel()
        conn.close()


def fetch(url: str, *, max_bytes: int, policy: FetchPolicy) -> bytes:
    """GET a URL's body into memory (see :func:`fetch_to`).

    :param url: an http(s) URL.
    :param max_bytes: larger bodies fail with 413.
    :param policy: the fetch policy.
    """
    buf = io.BytesIO()
    fetch_to(buf, url, max_bytes=max_bytes, policy=policy)
    return buf.getvalue()


def fetch_to(sink: BinaryIO, url: str, *, max_bytes: int, policy: FetchPolicy, deadline: float | None = None) -> int:
    """GET a URL's body into a file-like sink, chunk by chunk; returns the size.

    :param sink: where the bytes go (a temporary file for big ZIPs).
    :param url: an http(s) URL.
    :param max_bytes: larger bodies fail with 413.
    :param policy: the fetch policy (its ``timeout`` is the overall limit).
    :param deadline: an earlier ``time.monotonic()`` limit, if the caller has one.
    :raises FetchError: 400 bad URL, 413 too large, 422 refused/unreachable/HTTP error/too slow.
    """
    if policy.own_files is not None:
        data = policy.own_files(check_url(url))
        if data is not None:
            if len(data) > max_bytes:
                raise FetchError(413, f"File at URL is larger than {max_bytes} bytes")
            sink.write(data)
            return len(data)
    limit = time.monotonic() + policy.timeout
    deadline = limit if deadline is None else min(deadline, limit)
    conn, resp, watchdog = _open(url, "GET", policy, deadline)
    try:
        declared = resp.getheader("Content-Length")
        if declared and declared.isdigit() and int(declared) > max_bytes:
            raise FetchError(413, f"File at URL is larger than {max_bytes} bytes")
        size = 0
        while True:
            try:
                chunk = resp.read1(_CHUNK)
            except (OSError, http.client.HTTPException, ValueError) as exc:
                if watchdog.fired or time.monotonic() >= deadline:
                    raise FetchError(422, "Timed out downloading the URL") from None
                raise FetchError(422, f"Could not download the URL: {exc.__class__.__name__}") from None
            if time.monotonic() >= deadline or watchdog.fired:
                raise FetchError(422, "Timed out downloading the URL")
            if not chunk:
                return size
            size += len(chunk)
            if size > max_bytes:
                raise FetchError(413, f"File at URL is larger than {max_bytes} bytes")
            sink.write(chunk)
    finally:
        watchdog.cancel()
        conn.close()


def image_bytes(value: str, *, max_bytes: int, policy: FetchPolicy) -> tuple[bytes, str | None]:
    """Decode an image given as URL or base64 (an optional ``data:...;base64,`` prefix is stripped).

    :param value: an http(s) URL or a base64 string.
    :param max_bytes: size cap.
    :param policy: the fetch policy for URLs.
    :returns: the bytes and, for a URL, the URL's file name.
    :raises FetchError: as :func:`fetch`; 422 for a string that is neither a URL nor base64.
    """
    text = str(value).strip()
    if text.startswith(("http://", "https://")):
        return fetch(text, max_bytes=max_bytes, policy=policy), url_basename(text)
    if "://" in text[:16]:
        check_url(text)
    if text.startswith("data:") and "," in text:
        text = text.split(",", 1)[1]
    if len(text) > (max_bytes * 4) // 3 + 4:
        raise FetchError(413, f"Image is larger than {max_bytes} bytes")
    try:
        data = base64.b64decode(text, validate=True)
    except (binascii.Error, ValueError):
        raise FetchError(422, "Image is neither an http(s) URL nor valid base64") from None
    if not data:
        raise FetchError(422, "Image is empty")
    if len(data) > max_bytes:
        raise FetchError(413, f"Image is larger than {max_bytes} bytes")
    return data, None

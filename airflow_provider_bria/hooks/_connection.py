"""Turn an Airflow connection of type ``bria`` into the settings the hook needs.

Pure functions over already-fetched values: no I/O, no Airflow imports, so the sync and the async hook
paths share them and tests can call them directly.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from functools import cached_property
from typing import Any
from urllib.parse import SplitResult, urlsplit, urlunsplit

from airflow_provider_bria.contract import DEFAULT_CONSOLE_URL, DEFAULT_HOST
from airflow_provider_bria.exceptions import BriaConnectionConfigError, BriaInputError
from airflow_provider_bria.hooks import DEFAULT_CONN_NAME

DEFAULT_READ_TIMEOUT = 60.0
CONNECT_TIMEOUT = 10.0
_CONN_TYPE = "bria"
UPLOAD_ENCODINGS = ("json", "multipart")
_DEFAULT_PORTS = {"http": 80, "https": 443}

#: A URL's origin: ``(scheme, host, port)``, lower-cased, with the scheme's default port filled in.
Origin = tuple[str, str, int]


#: Characters no URL the provider sends may contain: whitespace (any Unicode space), C0 and C1 controls.
_UNSAFE_URL_CHARS = re.compile(r"[\s\x00-\x1f\x7f-\x9f]")
#: Characters an authority (``host[:port]``) may not contain: a backslash (WHATWG parsers read it as ``/``,
#: ``urlsplit`` does not) and ``@`` (user-info: ``urlsplit`` and urllib3 split ``a\@b`` differently).
_UNSAFE_AUTHORITY_CHARS = frozenset("\\@")
#: A path segment made of dots only (``.``, ``..``, also percent-encoded): transports may normalise it away.
_DOT_SEGMENT = re.compile(r"(?:^|/)(?:\.|%2e)+(?:/|$)", re.IGNORECASE)
#: A token may hold printable ASCII only: anything else would end up in (or break) the HTTP header.
_TOKEN_CHARS = re.compile(r"^[\x21-\x7e]+$")
#: ``scheme:`` at the start: an absolute URL (``file:``, ``javascript:`` included), not a path.
_ABSOLUTE = re.compile(r"^\s*[A-Za-z][A-Za-z0-9+.\-]*:")


def is_absolute(target: str) -> bool:
    """Whether ``target`` starts with a URL scheme (``https:``, ``file:``...), i.e. is not a path.

    :param target: a URL or a path.
    """
    return bool(_ABSOLUTE.match(target))


def _authority(text: str) -> str:
    """The raw authority of ``scheme://authority/...``: up to the first ``/``, ``?`` or ``#`` (as ``urlsplit``)."""
    rest = text.partition("://")[2]
    return re.split(r"[/?#]", rest, maxsplit=1)[0]


def strict_split(url: str, *, what: str = "URL") -> SplitResult:
    """Parse an absolute http(s) URL that every parser reads the same way, or raise.

    ``urlsplit``, urllib3/requests and httpx disagree on URLs with a backslash or ``@`` in the authority
    (``http://EVIL\\@API-HOST/x``: ``urlsplit`` sees ``API-HOST``, the transport connects to ``EVIL``), and
    ``urlsplit`` silently drops tabs and newlines. Such URLs are refused, so a host check done here is the
    host the transport connects to.

    :param url: the URL.
    :param what: what the URL is, for the message (``status URL``, ``download URL``...).
    :raises BriaInputError: for anything but a plain ``http(s)://host[:port]/path?query`` URL.
    """
    text = str(url)
    if _UNSAFE_URL_CHARS.search(text):
        raise BriaInputError(f"{what} contains whitespace or control characters: refusing to use it")
    scheme, sep, _ = text.partition("://")
    if not sep or scheme.lower() not in _DEFAULT_PORTS:
        raise BriaInputError(f"{what} must be an absolute http(s) URL")
    authority = _authority(text)
    if _UNSAFE_AUTHORITY_CHARS.intersection(authority):
        raise BriaInputError(
            f"{what} has a backslash or user-info ('@') in its host part: refusing to use it (parsers disagree "
            "on which host such a URL names)"
        )
    try:
        parts = urlsplit(text)
        parts.port  # noqa: B018 - raises ValueError for a malformed port
    except ValueError:
        raise BriaInputError(f"{what} has a malformed host or port") from None
    if not parts.hostname:
        raise BriaInputError(f"{what} has no host")
    return parts


def url_origin(url: str) -> Origin | None:
    """Return the origin ``(scheme, host, port)`` of an absolute http(s) URL, ``None`` for anything else.

    The default port is filled in, so ``https://h`` and ``https://h:443`` are the same origin, while
    ``http://h`` and ``https://h`` are not: the scheme is part of the origin, so the ``api_token`` is
    never sent over plain HTTP to a host configured as HTTPS. URLs that parsers could read differently
    (see :func:`strict_split`) and non-ASCII (IDN) host names have no origin: they never match the API's.

    :param url: the URL to inspect.
    """
    text = str(url).strip()
    try:
        parts = strict_split(text)
    except BriaInputError:
        return None
    return _origin_of(parts, text)


def _origin_of(parts: SplitResult, text: str) -> Origin | None:
    """The origin of ``text``, already parsed by :func:`strict_split` into ``parts`` (see :func:`url_origin`)."""
    if not _authority(text).isascii():
        return None
    scheme = parts.scheme.lower()
    port = parts.port
    return scheme, str(parts.hostname).lower(), port if port is not None else _DEFAULT_PORTS[scheme]


def safe_path(path: str, query: str = "", *, what: str = "request path") -> str:
    """Check a path (+ query) that is appended to the configured origin; return ``path[?query]``.

    :param path: an absolute path (``/v2/status/x``).
    :param query: the query string, without ``?``.
    :param what: what it is, for the message.
    :raises BriaInputError: for whitespace/control characters, backslashes or dot segments (``..``).
    """
    if _UNSAFE_URL_CHARS.search(path + query) or "\\" in path:
        raise BriaInputError(f"Invalid {what} {path!r}: whitespace, control characters or backslashes")
    if _DOT_SEGMENT.search(path):
        raise BriaInputError(f"Invalid {what} {path!r}: '.' and '..' segments are not allowed")
    return path + (f"?{query}" if query else "")


@dataclass(frozen=True)
class BriaConnectionSettings:
    """Resolved settings of a Bria connection.

    :param base_url: scheme + host (+ port, + optional path prefix) of the API, no trailing slash.
    :param token: the ``api_token`` (excluded from ``repr``).
    :param console_url: base URL of the Bria console, for extra links.
    :param read_timeout: per-request read timeout in seconds.
    :param connect_timeout: per-request connect timeout in seconds.
    :param retry_budget: total seconds one call may wait between retries (extra ``retry_budget``); ``None`` =
        the hook's default.
    :param upload_encoding: default body encoding of ``upload_image``: ``json`` (base64) or ``multipart``
        (extra ``upload_encoding``).
    """

    base_url: str
    token: str = field(repr=False)
    console_url: str = DEFAULT_CONSOLE_URL
    read_timeout: float = DEFAULT_READ_TIMEOUT
    connect_timeout: float = CONNECT_TIMEOUT
    retry_budget: float | None = None
    upload_encoding: str = "json"

    @cached_property
    def origin(self) -> Origin:
        """Origin ``(scheme, host, port)`` of :attr:`base_url`: the only place the ``api_token`` is sent to.

        Computed once per settings object (the fields are frozen): every request with an absolute URL compares
        its origin with this one.
        """
        origin = url_origin(self.base_url)
        if origin is None:  # pragma: no cover - build_base_url only produces http(s) URLs with a host
            raise BriaConnectionConfigError("The Bria API base URL is not an http(s) URL")
        return origin

    @cached_property
    def origin_url(self) -> str:
        """``scheme://host[:port]`` of :attr:`base_url` (no path prefix)."""
        parts = urlsplit(self.base_url)
        return f"{parts.scheme}://{parts.netloc}"

    def is_api_origin(self, url: str) -> bool:
        """Whether an absolute URL has the API's origin (same scheme, host and port), so it may get the token.

        :param url: an absolute URL.
        """
        return url_origin(url) == self.origin

    def api_url(self, target: str) -> tuple[str, str]:
        """The URL that carries the ``api_token`` for an API path, or for an absolute URL with the API's origin.

        The URL is always rebuilt as *configured origin + path + query*: whatever the caller passed, the host
        part comes from the connection, never from the argument.

        :param target: a path under :attr:`base_url` (``/v2/status/x``) or an absolute URL with the API origin.
        :returns: ``(url, path)``; ``path`` is safe to show in messages (no query: it may hold signatures).
        :raises BriaInputError: for an absolute URL with another origin or a malformed one, or an unsafe path.
        """
        if not isinstance(target, str) or not target.strip():
            raise BriaInputError(f"Invalid request path {target!r}")
        if is_absolute(target):
            parts = strict_split(target, what="URL to send the api_token to")
            if _origin_of(parts, target) != self.origin:  # what is_api_origin decides, without parsing again
                scheme, host, port = self.origin
                raise BriaInputError(
                    f"Refusing to send the api_token to {parts.scheme.lower()}://{parts.hostname}: it is not the "
                    f"configured Bria API origin {scheme}://{host}:{port}"
                )
            path = parts.path or "/"
            return self.origin_url + safe_path(path, parts.query), path
        path, _, query = target.partition("?")
        path = path if path.startswith("/") else "/" + path
        return self.base_url + safe_path(path, query), path


def parse_extra(extra: Any) -> dict[str, Any]:
    """Decode a connection's ``extra`` (a JSON string, a mapping or ``None``).

    :param extra: the raw ``Connection.extra`` value.
    :raises BriaConnectionConfigError: when the extra is not a JSON object.
    """
    if extra is None or extra == "":
        return {}
    if isinstance(extra, Mapping):
        return dict(extra)
    try:
        value = json.loads(extra)
    except (TypeError, ValueError):
        raise BriaConnectionConfigError("The Bria connection's extra is not valid JSON") from None
    if not isinstance(value, dict):
        raise BriaConnectionConfigError("The Bria connection's extra must be a JSON object")
    return value


def extra_value(extra: Mapping[str, Any], name: str) -> Any:
    """Read an extra field, accepting the legacy ``extra__bria__<name>`` spelling of older UIs.

    :param extra: the decoded extra.
    :param name: the field name (``console_url``, ``timeout``...).
    """
    for key in (name, f"extra__{_CONN_TYPE}__{name}"):
        value = extra.get(key)
        if value not in (None, ""):
            return value
    return None


def build_base_url(host: str | None, *, schema: str | None = None, port: int | None = None) -> str:
    """Build the API base URL from the connection's host, schema and port fields.

    ``host`` may be a full URL (``http://127.0.0.1:8765``, optionally with a path prefix) or a bare host
    name; for a bare host, ``schema`` (``http``/``https``) picks the scheme (default ``https``) and ``port``
    is appended. Any user-info in the URL is dropped so it can never be logged. Empty host gives
    :data:`~airflow_provider_bria.contract.DEFAULT_HOST`.

    :param host: the connection's host field.
    :param schema: the connection's schema field, used as URL scheme for a bare host.
    :param port: the connection's port field.
    :raises BriaConnectionConfigError: for an unusable host.
    """
    text = (host or "").strip()
    if not text:
        return DEFAULT_HOST
    if "://" not in text:
        scheme = (schema or "").strip().lower() or "https"
        if scheme not in ("http", "https"):
            raise BriaConnectionConfigError(
                f"Connection schema must be 'http' or 'https' when host is a bare host name, got {scheme!r}"
            )
        text = f"{scheme}://{text}"
    if _UNSAFE_URL_CHARS.search(text) or "\\" in text:
        raise BriaConnectionConfigError(
            "Connection host contains whitespace, control characters or a backslash: use a URL such as "
            "https://engine.prod.bria-api.com"
        )
    try:
        parts = urlsplit(text)
    except ValueError:
        raise BriaConnectionConfigError(
            "Connection host is not a valid URL (an unclosed '[' of an IPv6 address?): use a URL such as "
            "https://engine.prod.bria-api.com or http://[::1]:8765"
        ) from None
    if parts.scheme.lower() not in ("http", "https") or not parts.hostname:
        raise BriaConnectionConfigError(
            "Connection host must be an http(s) URL such as https://engine.prod.bria-api.com "
            "or a bare host name"
        )
    hostname = parts.hostname
    if not hostname.isascii():  # an IDN host: its ASCII (punycode) form, the one the transport resolves
        try:
            hostname = hostname.encode("idna").decode("ascii")
        except UnicodeError:
            raise BriaConnectionConfigError("Connection host is not a valid internationalised host name") from None
    if ":" in hostname:  # IPv6 literal
        hostname = f"[{hostname}]"
    try:
        url_port = parts.port
    except ValueError:
        raise BriaConnectionConfigError("Connection host has an invalid port") from None
    effective_port = url_port if url_port is not None else port
    netloc = f"{hostname}:{effective_port}" if effective_port else hostname
    return urlunsplit((parts.scheme.lower(), netloc, parts.path.rstrip("/"), "", ""))


def parse_timeout(value: Any, *, source: str) -> float:
    """Validate a timeout in seconds.

    :param value: number or numeric string.
    :param source: where it came from, for the message.
    :raises BriaConnectionConfigError: when it is not a positive finite number.
    """
    try:
        number = float(value)
    except (TypeError, ValueError):
        raise BriaConnectionConfigError(f"{source} must be a number of seconds, got {value!r}") from None
    if not math.isfinite(number) or number <= 0:
        raise BriaConnectionConfigError(f"{source} must be a positive number of seconds, got {value!r}")
    return number


def connection_not_found(conn_id: str, err: Exception) -> BriaConnectionConfigError:
    """The configuration error for a connection id Airflow does not know (a retry cannot define it).

    :param conn_id: the connection id looked up (the operator's ``bria_conn_id``).
    :param err: Airflow's not-found error.
    """
    return BriaConnectionConfigError(
        f"bria_conn_id={conn_id!r}: no such Airflow connection ({err}). Define it (UI, "
        f"'airflow connections add', or the environment variable AIRFLOW_CONN_{conn_id.upper()}) "
        "or pass another bria_conn_id"
    )


def settings_for_connection(
    conn: Any, timeout: float | None = None, conn_id: str = DEFAULT_CONN_NAME
) -> BriaConnectionSettings:
    """Resolve the hook settings from an Airflow ``Connection`` (sync or async lookup alike).

    :param conn: the connection object (``host``, ``schema``, ``port``, ``password``, ``extra``).
    :param timeout: read timeout given to the hook, overriding the extra.
    :param conn_id: connection id, for messages.
    :raises BriaConnectionConfigError: when no token is configured or a field is malformed.
    """
    return settings_from_connection(
        host=conn.host,
        schema=conn.schema,
        port=conn.port,
        password=conn.password,
        extra=parse_extra(conn.extra),
        timeout=timeout,
        conn_id=conn_id,
    )


def _token_of(password: str | None, extra: Mapping[str, Any], conn_id: str) -> str:
    """Return the connection's API token: the password, else the extra ``api_token``.

    :param password: connection password.
    :param extra: decoded connection extra.
    :param conn_id: connection id, for messages.
    :raises BriaConnectionConfigError: when there is none, or it has characters no HTTP header may carry.
    """
    token = (password or "").strip() or str(extra_value(extra, "api_token") or "").strip()
    if not token:
        raise BriaConnectionConfigError(
            f"Connection {conn_id!r} has no API token: put the Bria api_token in the connection password "
            "(or in the extra field 'api_token')"
        )
    if not _TOKEN_CHARS.match(token):
        raise BriaConnectionConfigError(
            f"Connection {conn_id!r} has an api_token with whitespace, control or non-ASCII characters inside: "
            "re-enter the token exactly as Bria shows it (the value is not shown here)"
        )
    return token


def settings_from_connection(
    *,
    host: str | None,
    schema: str | None,
    port: int | None,
    password: str | None,
    extra: Mapping[str, Any],
    timeout: float | None = None,
    conn_id: str = DEFAULT_CONN_NAME,
) -> BriaConnectionSettings:
    """Resolve the hook settings from the connection's fields.

    Token: the connection password; when empty, the extra ``api_token``. Read timeout: the hook's ``timeout``
    argument, else the extra ``timeout``, else 60 s. Console URL: extra ``console_url``, else the default.
    Extras ``retry_budget`` (seconds, > 0) and ``upload_encoding`` (``json``/``multipart``) are optional.

    :param host: connection host.
    :param schema: connection schema (scheme for a bare host).
    :param port: connection port.
    :param password: connection password (the API token).
    :param extra: decoded connection extra.
    :param timeout: read timeout given to the hook, overriding the extra.
    :param conn_id: connection id, for messages.
    :raises BriaConnectionConfigError: when no token is configured or a field is malformed.
    """
    token = _token_of(password, extra, conn_id)
    if timeout is not None:
        read_timeout = parse_timeout(timeout, source="timeout")
    elif extra_value(extra, "timeout") is not None:
        read_timeout = parse_timeout(extra_value(extra, "timeout"), source=f"Connection {conn_id!r} extra 'timeout'")
    else:
        read_timeout = DEFAULT_READ_TIMEOUT
    budget = extra_value(extra, "retry_budget")
    retry_budget = None
    if budget is not None:
        retry_budget = parse_timeout(budget, source=f"Connection {conn_id!r} extra 'retry_budget'")
    encoding = str(extra_value(extra, "upload_encoding") or "json").strip().lower()
    if encoding not in UPLOAD_ENCODINGS:
        raise BriaConnectionConfigError(
            f"Connection {conn_id!r} extra 'upload_encoding' must be one of {UPLOAD_ENCODINGS}, got {encoding!r}"
        )
    console = str(extra_value(extra, "console_url") or DEFAULT_CONSOLE_URL).strip().rstrip("/")
    if not console.lower().startswith(("http://", "https://")):
        raise BriaConnectionConfigError(
            f"Connection {conn_id!r} extra 'console_url' must be an http(s) URL, got {console!r}"
        )
    return BriaConnectionSettings(
        base_url=build_base_url(host, schema=schema, port=port),
        token=token,
        console_url=console,
        read_timeout=read_timeout,
        retry_budget=retry_budget,
        upload_encoding=encoding,
    )

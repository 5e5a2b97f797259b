"""Turn an Airflow connection of type ``bria`` into the settings the hook needs.

Pure functions over already-fetched values: no I/O, no Airflow imports, so the sync and the async hook
paths share them and tests can call them directly.
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit, urlunsplit

from airflow_provider_bria.contract import DEFAULT_CONSOLE_URL, DEFAULT_HOST
from airflow_provider_bria.exceptions import BriaConnectionConfigError

DEFAULT_READ_TIMEOUT = 60.0
CONNECT_TIMEOUT = 10.0
_CONN_TYPE = "bria"
UPLOAD_ENCODINGS = ("json", "multipart")
_DEFAULT_PORTS = {"http": 80, "https": 443}

#: A URL's origin: ``(scheme, host, port)``, lower-cased, with the scheme's default port filled in.
Origin = tuple[str, str, int]


def url_origin(url: str) -> Origin | None:
    """Return the origin ``(scheme, host, port)`` of an absolute http(s) URL, ``None`` for anything else.

    The default port is filled in, so ``https://h`` and ``https://h:443`` are the same origin, while
    ``http://h`` and ``https://h`` are not: the scheme is part of the origin, so the ``api_token`` is
    never sent over plain HTTP to a host configured as HTTPS.

    :param url: the URL to inspect.
    """
    try:
        parts = urlsplit(str(url).strip())
        port = parts.port
    except ValueError:
        return None
    scheme = parts.scheme.lower()
    if scheme not in _DEFAULT_PORTS or not parts.hostname:
        return None
    return scheme, parts.hostname.lower(), port if port is not None else _DEFAULT_PORTS[scheme]


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

    @property
    def origin(self) -> Origin:
        """Origin ``(scheme, host, port)`` of :attr:`base_url`: the only place the ``api_token`` is sent to."""
        origin = url_origin(self.base_url)
        if origin is None:  # pragma: no cover - build_base_url only produces http(s) URLs with a host
            raise BriaConnectionConfigError("The Bria API base URL is not an http(s) URL")
        return origin

    def is_api_origin(self, url: str) -> bool:
        """Whether an absolute URL has the API's origin (same scheme, host and port), so it may get the token.

        :param url: an absolute URL.
        """
        return url_origin(url) == self.origin


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
    parts = urlsplit(text)
    if parts.scheme.lower() not in ("http", "https") or not parts.hostname:
        raise BriaConnectionConfigError(
            "Connection host must be an http(s) URL such as https://engine.prod.bria-api.com "
            "or a bare host name"
        )
    hostname = parts.hostname
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


def settings_for_connection(
    conn: Any, timeout: float | None = None, conn_id: str = "bria_default"
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


def settings_from_connection(
    *,
    host: str | None,
    schema: str | None,
    port: int | None,
    password: str | None,
    extra: Mapping[str, Any],
    timeout: float | None = None,
    conn_id: str = "bria_default",
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
    token = (password or "").strip() or str(extra_value(extra, "api_token") or "").strip()
    if not token:
        raise BriaConnectionConfigError(
            f"Connection {conn_id!r} has no API token: put the Bria api_token in the connection password "
            "(or in the extra field 'api_token')"
        )
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

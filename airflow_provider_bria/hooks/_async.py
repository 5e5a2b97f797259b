"""Async (httpx) side of :class:`BriaHook`, for triggers: the polled calls only.

Nothing here blocks the event loop: the connection is looked up with ``BaseHook.aget_connection``, the token
is masked with ``amask_secret``, one ``httpx.AsyncClient`` is kept per hook and closed by ``aclose()`` or
``async with hook:``. The retry policy is the same as the sync side (:mod:`._retry`).
"""

from __future__ import annotations

import asyncio
import functools
import json as _json
import ssl
import weakref
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any

from airflow_provider_bria.contract import API_TOKEN_HEADER, Paths
from airflow_provider_bria.exceptions import (
    AirflowNotFoundException,
    BriaNotFoundError,
    BriaTransportError,
    build_api_error,
)
from airflow_provider_bria.hooks import _inputs as inp
from airflow_provider_bria.hooks._api_generation import STATUS_EXPECTED, status_target
from airflow_provider_bria.hooks._base import HookSurface, as_result
from airflow_provider_bria.hooks._connection import (
    BriaConnectionSettings,
    connection_not_found,
    settings_for_connection,
)
from airflow_provider_bria.hooks._redact import HEADER_ERRORS, transport_message
from airflow_provider_bria.hooks._retry import (
    build_retrying,
    classify_exception,
    is_transport_exception,
    parse_retry_after,
    retry_mode,
)
from airflow_provider_bria.responses import V2Response
from airflow_provider_bria.results import BulkUploadStatusResult, ModelResult

if TYPE_CHECKING:

    import httpx

    from airflow_provider_bria.hooks._retry import RetryPolicy


@functools.lru_cache(maxsize=1)
def shared_ssl_context() -> ssl.SSLContext:
    """The process-wide TLS context of every async client.

    Building a context loads the CA bundle (~20 ms of CPU and ~850 KiB): done once per process instead of
    once per client, so a triggerer starting a thousand Bria triggers does not block its event loop for
    seconds. An :class:`ssl.SSLContext` is safe to share between clients.
    """
    import httpx

    return httpx.create_ssl_context()


#: Connections the shared clients of one process, event loop and API origin keep open at most: that many
#: single-connection clients ("lanes"), each carrying one request at a time; requests beyond them wait in a FIFO
#: queue. One request per lane keeps every request O(1): httpcore's pool rescans every queued request and
#: connection whenever one frees up, so one client with 16 connections spent ~2 ms of CPU per poll in that scan
#: (1,000 triggers polling every 5 s: 40 % of a core) and one with 100 connections blocked the loop for seconds.
SHARED_CLIENT_MAX_CONNECTIONS = 16
#: Seconds an idle connection of a shared client stays open: longer than the usual poll interval, so a trigger's
#: next poll reuses a connection instead of opening one (a TLS handshake against the real API).
SHARED_CLIENT_KEEPALIVE_SECONDS = 30.0


class SharedLanes:
    """The shared clients of one event loop and API origin: up to ``size`` single-connection clients.

    :meth:`acquire` hands a free client (made on demand up to ``size``) or waits, first come first served, until
    one is released; the holder sends exactly one request and gives it back with :meth:`release`.

    :param factory: makes one client.
    :param size: the most clients (and so connections) ever open at once.
    """

    __slots__ = ("_factory", "_free", "_made", "_size")

    def __init__(self, factory: Callable[[], httpx.AsyncClient], size: int) -> None:
        self._factory = factory
        self._size = size
        self._made: list[httpx.AsyncClient] = []
        self._free: asyncio.Queue[httpx.AsyncClient] = asyncio.Queue()

    @property
    def clients(self) -> tuple[httpx.AsyncClient, ...]:
        """The clients made so far."""
        return tuple(self._made)

    def first(self) -> httpx.AsyncClient:
        """The first client (made if none is): what :meth:`BriaAsyncMixin.aget_conn` returns for a shared hook."""
        if not self._made:
            self._made.append(self._factory())
            self._free.put_nowait(self._made[0])
        return self._made[0]

    async def acquire(self) -> httpx.AsyncClient:
        """A client for one request; give it back with :meth:`release`."""
        if self._free.empty() and len(self._made) < self._size:
            client = self._factory()
            self._made.append(client)
            return client
        client = await self._free.get()
        if client.is_closed:  # someone closed what aget_conn() returned: replace it
            fresh = self._factory()
            self._made[self._made.index(client)] = fresh
            return fresh
        return client

    def release(self, client: httpx.AsyncClient) -> None:
        """Give a client back after its request (also after an error or a cancellation)."""
        self._free.put_nowait(client)


_SHARED_LANES: weakref.WeakKeyDictionary[Any, dict[tuple[Any, ...], SharedLanes]] = weakref.WeakKeyDictionary()


def shared_lanes(settings: BriaConnectionSettings, headers: Mapping[str, str]) -> SharedLanes:
    """The process-wide clients of the running event loop for one API origin and timeout setting.

    A triggerer running thousands of Bria triggers then holds at most :data:`SHARED_CLIENT_MAX_CONNECTIONS`
    clients and connections per origin instead of one client per trigger (each with its pool, its connections and
    ~50 KiB). The clients carry no token: every request sends it in its own headers, and the hook resolves every
    URL against its configured origin before sending (the token still goes only there). They keep no cookies, so
    nothing one connection's answers set reaches another's requests. They are never closed by a hook; they go
    with their event loop.

    :param settings: the hook's resolved connection.
    :param headers: the clients' default headers (the User-Agent; never the token).
    """
    loop = asyncio.get_running_loop()
    key = (settings.origin, settings.read_timeout, settings.connect_timeout, tuple(sorted(headers.items())))
    by_key = _SHARED_LANES.setdefault(loop, {})
    lanes = by_key.get(key)
    if lanes is None:
        lanes = by_key[key] = SharedLanes(functools.partial(_lane_client, settings, dict(headers)),
                                          SHARED_CLIENT_MAX_CONNECTIONS)
    return lanes


def _lane_client(settings: BriaConnectionSettings, headers: dict[str, str]) -> httpx.AsyncClient:
    """One shared client: one connection, no cookies, the process-wide TLS context."""
    from http.cookiejar import CookieJar, DefaultCookiePolicy

    import httpx

    return httpx.AsyncClient(
        headers=headers,
        timeout=httpx.Timeout(settings.read_timeout, connect=settings.connect_timeout),
        follow_redirects=False,
        verify=shared_ssl_context(),
        cookies=CookieJar(policy=DefaultCookiePolicy(allowed_domains=[])),
        limits=httpx.Limits(max_connections=1, max_keepalive_connections=1,
                            keepalive_expiry=SHARED_CLIENT_KEEPALIVE_SECONDS),
    )


async def amask(secret: str) -> None:
    """Register a secret with Airflow's masker without blocking the event loop.

    :param secret: the value to redact from logs.
    """
    try:
        from airflow.sdk.log import amask_secret
    except ImportError:  # Airflow < 3.3: the sync masker, off the event loop (3.0's reaches the supervisor
        # through AsyncToSync, which refuses to run on the loop's own thread)
        from asgiref.sync import sync_to_async

        from airflow_provider_bria.hooks.bria import mask

        await sync_to_async(mask)(secret)
        return
    await amask_secret(secret)


def decode_body(content: bytes) -> Any:
    """Decode a response body: JSON when possible, else text, ``None`` when empty.

    :param content: the raw body.
    """
    if not content or not content.strip():
        return None
    try:
        return _json.loads(content)
    except ValueError:
        return content.decode("utf-8", "replace")


class _Sender:
    """The attempts of one call: each through the hook's own client, or through a free shared client.

    A hook that shares reserves a client before the call is set up (:meth:`reserve`), so a thousand triggers
    polling at once queue cheaply instead of each building its retry controller in the same loop iteration; the
    first attempt uses that client, every retry waits for a free one again (none is held while backing off).
    """

    __slots__ = ("client", "held", "kwargs", "lanes", "method", "url")

    def __init__(self, client: httpx.AsyncClient, lanes: SharedLanes | None, method: str, url: str,
                 kwargs: dict[str, Any]) -> None:
        self.client = client
        self.lanes = lanes
        self.method = method
        self.url = url
        self.kwargs = kwargs
        self.held: httpx.AsyncClient | None = None

    async def reserve(self) -> None:
        """Wait for a free shared client (no-op for a hook's own client)."""
        if self.lanes is not None:
            self.held = await self.lanes.acquire()

    def release_unused(self) -> None:
        """Give back a reserved client no attempt used (the call failed before sending)."""
        held, self.held = self.held, None
        if held is not None and self.lanes is not None:
            self.lanes.release(held)

    async def __call__(self) -> httpx.Response:
        """One attempt."""
        lanes = self.lanes
        if lanes is None:
            return await self.client.request(self.method, self.url, **self.kwargs)
        lane, self.held = self.held, None
        if lane is None:
            lane = await lanes.acquire()
        try:
            return await lane.request(self.method, self.url, **self.kwargs)
        finally:
            lanes.release(lane)


class BriaAsyncMixin(HookSurface):
    """Async calls of :class:`~airflow_provider_bria.hooks.bria.BriaHook` (triggers use these)."""

    bria_conn_id: str
    timeout: float | None
    retry_policy: RetryPolicy
    _settings: BriaConnectionSettings | None
    _async_client: httpx.AsyncClient | None
    #: An ``httpx`` transport to use instead of the network (tests use ``httpx.MockTransport``).
    _async_transport: Any = None
    #: Use the process-wide clients (see :meth:`use_shared_async_client`).
    _share_async_client: bool = False
    #: The shared clients in use (set by :meth:`aget_conn` when the hook shares; ``None``: the client is its own).
    _lanes: SharedLanes | None = None

    if TYPE_CHECKING:

        @classmethod
        async def aget_connection(cls, conn_id: str) -> Any: ...

        def _user_agent_headers(self) -> dict[str, str]: ...

        def _resolve_url(self, settings: BriaConnectionSettings, path: str) -> tuple[str, str]: ...

    async def aget_settings(self) -> BriaConnectionSettings:
        """Resolve the connection without blocking (shares the cache with the sync side)."""
        if self._settings is None:
            try:
                conn = await self.aget_connection(self.bria_conn_id)
            except AirflowNotFoundException as err:
                raise connection_not_found(self.bria_conn_id, err) from None
            settings = settings_for_connection(conn, timeout=self.timeout, conn_id=self.bria_conn_id)
            await amask(settings.token)
            self._settings = settings
            self.retry_policy.use_connection_budget(settings.retry_budget)
        return self._settings

    def use_shared_async_client(self) -> None:
        """Send this hook's async calls through the process-wide clients (:func:`shared_lanes`).

        Triggers do (at most :data:`SHARED_CLIENT_MAX_CONNECTIONS` connections per triggerer process and origin
        instead of a client per trigger); ``aclose`` then leaves the shared clients open. Ignored when a test
        transport is set.
        """
        self._share_async_client = True

    async def aget_conn(self) -> httpx.AsyncClient:
        """Return the hook's ``httpx.AsyncClient`` (made on first use).

        A hook that shares (:meth:`use_shared_async_client`) returns the first of the shared clients; its own
        calls take whichever shared client is free.
        """
        settings = await self.aget_settings()
        if self._async_client is None and self._share_async_client and self._async_transport is None:
            self._lanes = shared_lanes(settings, self._user_agent_headers())
            self._async_client = self._lanes.first()
        if self._async_client is None:
            import httpx

            self._async_client = httpx.AsyncClient(
                headers=self._user_agent_headers(),
                timeout=httpx.Timeout(settings.read_timeout, connect=settings.connect_timeout),
                follow_redirects=False,
                transport=self._async_transport,
                verify=shared_ssl_context(),
            )
        return self._async_client

    async def aclose(self) -> None:
        """Close the async client (safe to call twice)."""
        client, self._async_client = self._async_client, None
        shared, self._lanes = self._lanes is not None, None
        if client is not None and not shared:
            await client.aclose()

    async def __aenter__(self) -> BriaAsyncMixin:
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.aclose()

    async def _arequest_with_status(
        self,
        method: str,
        path: str,
        *,
        json: Any = None,
        params: Mapping[str, Any] | None = None,
        retry: bool | None = None,
        expected: tuple[int, ...] | None = None,
    ) -> tuple[int, Any]:
        """Send one API call with the retry policy; return ``(status_code, decoded_body)``.

        :param method: HTTP method.
        :param path: path under the API base URL, or an absolute URL with the API origin (scheme, host, port).
        :param json: JSON body.
        :param params: query parameters.
        :param retry: ``None`` (by method), ``True`` (retry like a read) or ``False`` (never).
        :param expected: non-2xx status codes to return instead of raising.
        :raises BriaAPIError: for error responses; :class:`BriaTransportError` when no response came.
        """
        method = method.upper()
        settings = await self.aget_settings()
        url, shown = self._resolve_url(settings, path)
        sender = _Sender(await self.aget_conn(), self._lanes, method, url,
                         {"json": json, "params": params, "headers": {API_TOKEN_HEADER: settings.token}})
        await sender.reserve()
        try:
            retrying = build_retrying(
                self.retry_policy, mode=retry_mode(method, retry), method=method, path=shown, logger=self.log,
                use_async=True,
            )
            response: httpx.Response = await retrying(sender)
        except Exception as exc:
            if is_transport_exception(exc) or type(exc).__name__ in HEADER_ERRORS:
                attempts = retrying.statistics.get("attempt_number", 1)
                kind = classify_exception(exc) or "fatal"
                text, chain = transport_message(exc, attempts, kind, settings.token)
                error = BriaTransportError(text, method=method, path=shown)
                if chain:
                    raise error from exc
                raise error from None
            raise
        finally:
            sender.release_unused()
        body = decode_body(response.content)
        status = response.status_code
        if 200 <= status < 300 or status in (expected or ()):
            return status, body
        raise build_api_error(
            status,
            body,
            reason=response.reason_phrase,
            method=method,
            path=shown,
            retry_after=parse_retry_after(response.headers.get("Retry-After")),
        )

    async def arequest(self, method: str, path: str, **kwargs: Any) -> Any:
        """Async counterpart of :meth:`request`: same retry policy and errors; returns the decoded body.

        :param method: HTTP method.
        :param path: path under the API base URL.
        :param kwargs: ``json``, ``params``, ``retry``, ``expected``.
        """
        _, body = await self._arequest_with_status(method, path, **kwargs)
        return body

    async def aget_model(self, model_id: int | str) -> ModelResult:
        """Async :meth:`get_model` (the training trigger's poll).

        :param model_id: the model id.
        """
        body = await self.arequest("GET", Paths.model(inp.object_id(model_id, "model_id")))
        return as_result(body, ModelResult)

    async def aget_status(self, request_id_or_status_url: str) -> V2Response:
        """Async :meth:`get_status`: accepts a request id or an absolute ``status_url``; 404 -> ``NOT_FOUND``.

        :param request_id_or_status_url: the job's request id or status URL.
        """
        settings = await self.aget_settings()
        target, rid = status_target(request_id_or_status_url, settings.origin)
        status, body = await self._arequest_with_status("GET", target, expected=STATUS_EXPECTED)
        return V2Response.from_body(body, http_status=status, request_id=rid)

    async def aget_bulk_upload_status(self, dataset_id: int | str) -> BulkUploadStatusResult:
        """Async :meth:`get_bulk_upload_status` (same ``/images/bulk`` fallback on 404).

        :param dataset_id: the dataset id.
        """
        did = inp.object_id(dataset_id, "dataset_id")
        try:
            body = await self.arequest("GET", Paths.bulk_upload_status(did))
        except BriaNotFoundError as first:
            try:
                body = await self.arequest("GET", f"{Paths.bulk_upload(did, alias=True)}/status")
            except BriaNotFoundError:
                raise first from None
        return as_result(body, BulkUploadStatusResult)

    async def astop_training(self, model_id: int | str) -> dict[str, Any] | None:
        """Async :meth:`stop_training` (for a trigger's ``on_kill``; not blindly retried, 409 when not training).

        :param model_id: the model id.
        """
        body = await self.arequest("POST", Paths.stop_training(inp.object_id(model_id, "model_id")))
        return dict(body) if isinstance(body, Mapping) else None

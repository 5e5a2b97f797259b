"""The emulator's outermost layer: what makes it safe to leave running (see docs/emulator.md, "Security").

For every HTTP request, before anything else runs:

1. **Host header** - must name this emulator (loopback names, the ``--host`` it binds, ``--allowed-host``
   values); anything else is a DNS-rebinding attempt from a browser page and gets 400.
2. **Token on the admin routes** - every ``/_emulator/*`` route (files, state, reset, faults, settings,
   requests) needs the ``api_token`` header like the API does; only ``/_emulator/health`` is open.
   (API routes are checked by :class:`~airflow_provider_bria.emulator.gateway.GatewayMiddleware`.)
3. **Body cap** - a ``Content-Length`` above ``max_body_bytes`` is refused with 413 before reading; a body
   without one (chunked) is counted while it arrives and refused with 413 as soon as it passes the cap.
   The accepted body is then replayed to the app, so handlers never see more than the cap.

Rejections use the error shape of the path (v2 envelope on ``/v2/``, ``{"message"}`` elsewhere).
"""

from __future__ import annotations

from typing import Any

from airflow_provider_bria.emulator import errors
from airflow_provider_bria.emulator.gateway import ADMIN_PREFIX, ASGIApp, Message, Receive, Scope, Send, send_json
from airflow_provider_bria.emulator.gateway import token_ok as _token_ok
from airflow_provider_bria.emulator.runtime import Runtime

#: The one route that answers without a token (liveness probes).
OPEN_PATHS = frozenset({f"{ADMIN_PREFIX}health"})


def _header(scope: Scope, name: bytes) -> bytes | None:
    for key, value in scope.get("headers") or ():
        if key == name:
            return value
    return None


class BodyTooLarge(Exception):  # noqa: N818 (a signal between two functions, not an API error)
    """The request body passed the cap while it was read."""


class GuardMiddleware:
    """Host check, admin-route token and body cap in front of the gateway.

    :param app: the ASGI app behind (the gateway).
    :param runtime: the emulator runtime (settings: ``host``, ``allowed_hosts``, ``max_body_bytes``, token).
    """

    def __init__(self, app: ASGIApp, runtime: Runtime) -> None:
        self.app = app
        self.runtime = runtime

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        settings = self.runtime.settings
        path = scope["path"]
        host = _header(scope, b"host")
        if host is None or not settings.host_allowed(host.decode("latin-1")):
            await self._reject(send, path, 400, "Invalid Host header: this emulator answers only to its own names")
            return
        if path.startswith(ADMIN_PREFIX) and path not in OPEN_PATHS and not _token_ok(scope, settings.api_token):
            await self._reject(send, path, 401, "Unauthorized: missing or invalid api_token header")
            return
        cap = settings.max_body_bytes
        declared = _header(scope, b"content-length")
        if declared is not None:
            try:
                size = int(declared)
            except ValueError:
                await self._reject(send, path, 400, "Invalid Content-Length header")
                return
            if size > cap:
                await self._reject(send, path, 413, f"Request body is larger than the limit of {cap} bytes")
                return
        try:
            messages = await _read_body(receive, cap)
        except BodyTooLarge:
            await self._reject(send, path, 413, f"Request body is larger than the limit of {cap} bytes")
            return
        await self.app(scope, _replay(messages, receive), send)

    @staticmethod
    async def _reject(send: Send, path: str, status: int, text: str) -> None:
        err = errors.for_path(path, status, text)
        await send_json(send, status, err.body, {"Connection": "close"} if status == 413 else None)


async def _read_body(receive: Receive, cap: int) -> list[Message]:
    """Every ``http.request`` message of the body (a disconnect ends it early).

    :raises BodyTooLarge: as soon as more than ``cap`` bytes arrived.
    """
    chunks: list[bytes] = []
    total = 0
    while True:
        message = await receive()
        if message["type"] != "http.request":
            return [{"type": "http.request", "body": b"".join(chunks), "more_body": False}, message]
        chunk = message.get("body", b"")
        total += len(chunk)
        if total > cap:
            raise BodyTooLarge
        chunks.append(chunk)
        if not message.get("more_body", False):
            return [{"type": "http.request", "body": b"".join(chunks), "more_body": False}]


def _replay(messages: list[Message], receive: Receive) -> Receive:
    """A ``receive`` that hands out the buffered messages, then defers to the server's."""
    pending = list(messages)

    async def replay() -> Any:
        if pending:
            return pending.pop(0)
        return await receive()

    return replay

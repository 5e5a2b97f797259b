"""The emulator's gateway: one pure-ASGI layer in front of the app doing what Bria's edge does.

For every API request (every path outside ``/_emulator/``) it

1. checks the ``api_token`` header (401 when missing or wrong, in the path's error shape);
2. injects faults at ``fault_rate`` (seeded), half *before* the handler runs (429 with ``Retry-After``,
   500 or 503; the state is untouched) and half *after* it ran and committed (the client gets a 500/503,
   or the connection drops in the middle of the real response);
3. logs the request (``/_emulator/requests``: ``t``, ``method``, ``path``, ``status`` the client saw, ``fault``
   and ``handler_status``, the status the handler produced, ``None`` when it did not run) and counts
   requests and faults.

Admin routes and ``/_emulator/files/*`` bypass all three. Handlers commit in one transaction, so a fault
never leaves half-made state; a client that blindly retries a POST after an after-apply fault makes a
duplicate, exactly as it would against the real API.
"""

from __future__ import annotations

import hmac
import json
import logging
import time
from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any

from airflow_provider_bria.emulator import errors, fastpath
from airflow_provider_bria.emulator.runtime import Runtime

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]

ADMIN_PREFIX = "/_emulator/"
RETRY_AFTER_SECONDS = "1"
_TOKEN_HEADER = b"api_token"

#: Fault kinds by the second random draw: [0, 0.5) before the handler, [0.5, 1) after it.
BEFORE_FAULTS = ((1 / 6, 429), (2 / 6, 500), (3 / 6, 503))
AFTER_FAULTS = ((4 / 6, 500), (5 / 6, 503), (1.0, 0))  # 0 = drop the connection


class DroppedConnection(Exception):  # noqa: N818 (it is an injected event, not an error)
    """Raised after a partial response so the server closes the connection (an injected fault)."""


class _QuietDrops(logging.Filter):
    """Hide uvicorn's traceback for connections the emulator dropped on purpose."""

    def filter(self, record: logging.LogRecord) -> bool:
        exc = record.exc_info[1] if record.exc_info else None
        return not isinstance(exc, DroppedConnection)


def install_log_filter() -> None:
    """Silence the log noise of injected connection drops (idempotent)."""
    logger = logging.getLogger("uvicorn.error")
    if not any(isinstance(f, _QuietDrops) for f in logger.filters):
        logger.addFilter(_QuietDrops())


def _fault_body(path: str, status: int) -> Any:
    if status == 429:
        text = errors.RATE_LIMIT_TEXT
    elif status == 503:
        text = "Service temporarily unavailable (emulator fault injection)"
    else:
        text = "Internal server error (emulator fault injection)"
    return errors.for_path(path, status, text).body


async def send_json(send: Send, status: int, body: Any, headers: dict[str, str] | None = None) -> None:
    """Send a complete JSON response over raw ASGI.

    :param send: the ASGI send callable.
    :param status: HTTP status code.
    :param body: JSON-serialisable body.
    :param headers: extra headers.
    """
    payload = json.dumps(body).encode()
    raw = [(b"content-type", b"application/json"), (b"content-length", str(len(payload)).encode())]
    raw += [(k.lower().encode(), v.encode()) for k, v in (headers or {}).items()]
    await send({"type": "http.response.start", "status": status, "headers": raw})
    await send({"type": "http.response.body", "body": payload})


class GatewayMiddleware:
    """Auth, fault injection and request logging for API paths.

    :param app: the ASGI app behind the gateway.
    :param runtime: the emulator runtime.
    """

    def __init__(self, app: ASGIApp, runtime: Runtime) -> None:
        self.app = app
        self.runtime = runtime
        install_log_filter()

    def _authorised(self, scope: Scope) -> bool:
        token = b""
        for name, value in scope.get("headers") or ():
            if name == _TOKEN_HEADER:
                token = value
                break
        if not token.strip():
            return False
        expected = self.runtime.settings.api_token
        if expected is None:
            return True
        return hmac.compare_digest(token, expected.encode())

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["path"].startswith(ADMIN_PREFIX):
            await self.app(scope, receive, send)
            return
        path, method, started = scope["path"], scope["method"], time.time()
        entry: dict[str, Any] = {
            "t": started,
            "method": method,
            "path": path,
            "status": 0,
            "fault": None,
            "handler_status": None,
        }
        if not self._authorised(scope):
            entry["status"] = 401
            body = errors.for_path(path, 401, "Unauthorized: missing or invalid api_token header").body
            await send_json(send, 401, body)
            self.runtime.record(entry, fault=False)
            return
        draw = self.runtime.should_fault()
        try:
            if draw is None:
                await self._passthrough(scope, receive, send, entry)
            elif draw < 0.5:
                status = next(code for bound, code in BEFORE_FAULTS if draw < bound)
                entry.update(status=status, fault=f"before-{status}")
                headers = {"Retry-After": RETRY_AFTER_SECONDS} if status == 429 else None
                await send_json(send, status, _fault_body(path, status), headers)
            else:
                status = next(code for bound, code in AFTER_FAULTS if draw < bound)
                await self._after_fault(scope, receive, send, entry, status)
        finally:
            self.runtime.record(entry, fault=entry["fault"] is not None)

    async def _call_app(self, scope: Scope, receive: Receive, send: Send) -> None:
        answer = fastpath.reply(self.runtime, scope)
        if answer is None:
            await self.app(scope, receive, send)
        else:
            await send_json(send, *answer)

    async def _passthrough(self, scope: Scope, receive: Receive, send: Send, entry: dict[str, Any]) -> None:
        async def tap(message: Message) -> None:
            if message["type"] == "http.response.start":
                entry["status"] = entry["handler_status"] = message["status"]
            await send(message)

        await self._call_app(scope, receive, tap)

    async def _after_fault(
        self, scope: Scope, receive: Receive, send: Send, entry: dict[str, Any], status: int
    ) -> None:
        start: dict[str, Any] = {}
        chunks: list[bytes] = []

        async def swallow(message: Message) -> None:
            if message["type"] == "http.response.start":
                start.update(message)
            elif message["type"] == "http.response.body":
                chunks.append(message.get("body", b""))

        await self._call_app(scope, receive, swallow)  # the handler runs and commits
        entry["handler_status"] = start.get("status")
        if status:
            entry.update(status=status, fault=f"after-{status}")
            await send_json(send, status, _fault_body(scope["path"], status))
            return
        body = b"".join(chunks)
        entry.update(status=start.get("status", 200), fault="after-drop")
        headers = [(k, v) for k, v in start.get("headers", []) if k.lower() != b"content-length"]
        headers.append((b"content-length", str(max(len(body), 2)).encode()))
        await send({"type": "http.response.start", "status": start.get("status", 200), "headers": headers})
        await send({"type": "http.response.body", "body": body[: len(body) // 2], "more_body": True})
        raise DroppedConnection("connection dropped by emulator fault injection")

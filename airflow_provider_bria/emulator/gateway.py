"""The emulator's gateway: one pure-ASGI layer in front of the app doing what Bria's edge does.

For every API request (every path outside ``/_emulator/``) it

1. checks the ``api_token`` header (401 when missing or wrong, in the path's error shape);
2. injects faults: first the targeted :class:`FaultRule` s (``POST /_emulator/faults`` ``"rules"``: "the n-th
   matching request gets this fault"), then, for requests no rule faulted, random faults at ``fault_rate``
   (seeded), half *before* the handler runs (429 with ``Retry-After``, 500 or 503; the state is untouched)
   and half *after* it ran and committed (the client gets a 500/503, or the connection drops in the middle
   of the real response);
3. logs the request (``/_emulator/requests``: ``t``, ``method``, ``path``, ``status`` the client saw, ``fault``
   and ``handler_status``, the status the handler produced, ``None`` when it did not run) and counts
   requests and faults.

Admin routes and ``/_emulator/files/*`` bypass all three (their token, the Host check and the body cap are
enforced one layer out, by :class:`~airflow_provider_bria.emulator.guard.GuardMiddleware`).
Handlers commit in one transaction, so a fault
never leaves half-made state; a client that blindly retries a POST after an after-apply fault makes a
duplicate, exactly as it would against the real API.
"""

from __future__ import annotations

import dataclasses
import hmac
import json
import logging
import re
import threading
import time
import weakref
from collections.abc import Awaitable, Callable, Mapping, MutableMapping, Sequence
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


#: Fault kinds a rule may ask for: an HTTP status, ``"drop"`` (the connection drops mid-response), or one of
#: Bria's documented 403 bodies (``"quota"``, ``"subscription"``: bare JSON strings on v1, before only).
DROP = "drop"
FORBIDDEN_TEXTS = {
    "quota": (
        "Quota exceeded: Free users can make up to 1000 requests in total. "
        "Please upgrade your plan to continue using the service."
    ),
    "subscription": "Access denied: Your subscription does not include access to this feature/product.",
}
RULE_PHASES = ("before", "after")
_RULE_FIELDS = frozenset({"method", "path_regex", "phase", "kind", "nth", "times"})


@dataclasses.dataclass
class FaultRule:
    """A targeted fault: requests ``nth`` .. ``nth + times - 1`` matching ``method`` and ``path_regex`` fail.

    :param path_regex: searched (``re.search``) in the request path; ``""`` matches every path.
    :param method: HTTP method (any case), or ``None`` for every method.
    :param phase: ``"before"`` the handler runs (no state change) or ``"after"`` it committed (ambiguous).
    :param kind: ``429`` (before only), a 5xx status, ``"drop"`` (the connection drops mid-response), or
        ``"quota"``/``"subscription"`` (before only): 403 with Bria's documented bare-string body.
    :param nth: the first matching request (1-based, counted from when the rules were set) that fails.
    :param times: how many consecutive matching requests fail from ``nth`` on.
    """

    path_regex: str = ""
    method: str | None = None
    phase: str = "after"
    kind: int | str = DROP
    nth: int = 1
    times: int = 1
    matched: int = 0
    fired: int = 0

    def __post_init__(self) -> None:
        self._pattern = re.compile(self.path_regex)

    def to_json(self) -> dict[str, Any]:
        """The rule with its ``matched``/``fired`` counters, as ``GET /_emulator/faults`` shows it."""
        return {field.name: getattr(self, field.name) for field in dataclasses.fields(self)}

    def observe(self, method: str, path: str) -> bool:
        """Count a request if it matches; return whether this rule faults it.

        :param method: the request method.
        :param path: the request path.
        """
        if (self.method is not None and method.upper() != self.method) or not self._pattern.search(path):
            return False
        self.matched += 1
        if self.nth <= self.matched < self.nth + self.times:
            self.fired += 1
            return True
        return False


def _positive_int(raw: Mapping[str, Any], name: str) -> int:
    value = raw.get(name, 1)
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ValueError(f"rule {name} must be an integer >= 1, got {value!r}")
    return value


def parse_rule(raw: Any) -> FaultRule:
    """Validate one rule from JSON.

    :param raw: ``{"method", "path_regex", "phase", "kind", "nth", "times"}`` (all optional; defaults: any
        method, every path, ``after``, ``drop``, 1, 1).
    :raises ValueError: with a message naming the bad field.
    """
    if not isinstance(raw, Mapping):
        raise ValueError(f"each rule must be an object, got {type(raw).__name__}")
    unknown = sorted(set(raw) - _RULE_FIELDS)
    if unknown:
        raise ValueError(f"unknown rule fields {unknown}; allowed: {sorted(_RULE_FIELDS)}")
    method = raw.get("method")
    if method is not None and (not isinstance(method, str) or not method.isalpha()):
        raise ValueError(f"rule method must be an HTTP method or null, got {method!r}")
    path_regex = raw.get("path_regex", "")
    if not isinstance(path_regex, str):
        raise ValueError(f"rule path_regex must be a string, got {path_regex!r}")
    try:
        re.compile(path_regex)
    except re.error as err:
        raise ValueError(f"rule path_regex {path_regex!r} is not a valid regular expression: {err}") from None
    phase = raw.get("phase", "after")
    if phase not in RULE_PHASES:
        raise ValueError(f"rule phase must be one of {list(RULE_PHASES)}, got {phase!r}")
    kind = raw.get("kind", DROP)
    allowed = '429 (before only), 500-599, "drop", "quota" or "subscription" (before only)'
    is_status = not isinstance(kind, bool) and isinstance(kind, int) and (kind == 429 or 500 <= kind <= 599)
    if kind != DROP and kind not in FORBIDDEN_TEXTS and not is_status:
        raise ValueError(f"rule kind must be {allowed}, got {kind!r}")
    if (kind == 429 or kind in FORBIDDEN_TEXTS) and phase == "after":
        raise ValueError(f"rule kind {kind} only exists before the request is applied (phase 'before')")
    return FaultRule(
        path_regex=path_regex,
        method=method.upper() if method else None,
        phase=phase,
        kind=kind,
        nth=_positive_int(raw, "nth"),
        times=_positive_int(raw, "times"),
    )


class FaultRules:
    """The targeted fault rules of one emulator process (replaced as a whole; cleared by a reset)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._rules: list[FaultRule] = []

    def replace(self, raw_rules: Sequence[Any]) -> None:
        """Validate and install new rules (counters start at zero); nothing changes when one is invalid.

        :param raw_rules: rules as JSON objects (see :func:`parse_rule`).
        :raises ValueError: when a rule is invalid.
        """
        rules = [parse_rule(raw) for raw in raw_rules]
        with self._lock:
            self._rules = rules

    def clear(self) -> None:
        """Remove every rule."""
        self.replace([])

    def to_json(self) -> list[dict[str, Any]]:
        """The rules with their ``matched``/``fired`` counters."""
        with self._lock:
            return [rule.to_json() for rule in self._rules]

    def match(self, method: str, path: str) -> FaultRule | None:
        """Count the request against every rule; return the first rule that faults it (or ``None``).

        :param method: the request method.
        :param path: the request path.
        """
        if not self._rules:
            return None
        with self._lock:
            hit = None
            for rule in self._rules:
                if rule.observe(method, path) and hit is None:
                    hit = rule
            return hit


_RULES: weakref.WeakKeyDictionary[Runtime, FaultRules] = weakref.WeakKeyDictionary()
_RULES_LOCK = threading.Lock()


def fault_rules(runtime: Runtime) -> FaultRules:
    """The targeted fault rules of ``runtime`` (created empty on first use).

    :param runtime: the emulator runtime.
    """
    with _RULES_LOCK:
        rules = _RULES.get(runtime)
        if rules is None:
            rules = _RULES[runtime] = FaultRules()
        return rules


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


def _fault_body(path: str, status: int, kind: int | str | None = None) -> Any:
    if kind in FORBIDDEN_TEXTS:
        text = FORBIDDEN_TEXTS[str(kind)]
        return errors.v2_body(403, "Forbidden", text) if errors.is_v2_path(path) else text  # v1: a bare string
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


def token_ok(scope: Scope, expected: str | None) -> bool:
    """Whether the request carries an acceptable ``api_token`` header (constant-time comparison).

    :param scope: the ASGI scope.
    :param expected: the only token accepted; ``None`` accepts any non-empty token.
    """
    token = b""
    for name, value in scope.get("headers") or ():
        if name == _TOKEN_HEADER:
            token = value
            break
    if not token.strip():
        return False
    if expected is None:
        return True
    return hmac.compare_digest(token, expected.encode())


class GatewayMiddleware:
    """Auth, fault injection and request logging for API paths.

    :param app: the ASGI app behind the gateway.
    :param runtime: the emulator runtime.
    """

    def __init__(self, app: ASGIApp, runtime: Runtime) -> None:
        self.app = app
        self.runtime = runtime
        self.rules = fault_rules(runtime)
        install_log_filter()

    def _authorised(self, scope: Scope) -> bool:
        return token_ok(scope, self.runtime.settings.api_token)

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
        rule = self.rules.match(method, path)
        try:
            if rule is not None:
                await self._rule_fault(scope, receive, send, entry, rule)
                return
            draw = self.runtime.should_fault()
            if draw is None:
                await self._passthrough(scope, receive, send, entry)
            elif draw < 0.5:
                status = next(code for bound, code in BEFORE_FAULTS if draw < bound)
                entry.update(status=status, fault=f"before-{status}")
                await send_json(send, status, _fault_body(path, status), self._retry_headers(status))
            else:
                status = next(code for bound, code in AFTER_FAULTS if draw < bound)
                await self._after_fault(scope, receive, send, entry, status)
        finally:
            self.runtime.record(entry, fault=entry["fault"] is not None)

    def _retry_headers(self, status: int) -> dict[str, str] | None:
        """``Retry-After`` on a 429 only with ``--retry-after`` (Bria documents no such header)."""
        if status == 429 and self.runtime.settings.retry_after:
            return {"Retry-After": RETRY_AFTER_SECONDS}
        return None

    async def _rule_fault(
        self, scope: Scope, receive: Receive, send: Send, entry: dict[str, Any], rule: FaultRule
    ) -> None:
        status = 0 if rule.kind == DROP else 403 if rule.kind in FORBIDDEN_TEXTS else int(rule.kind)
        if rule.phase == "after":
            await self._after_fault(scope, receive, send, entry, status)
            return
        if status:
            entry.update(status=status, fault=f"before-{status}")
            await send_json(send, status, _fault_body(scope["path"], status, rule.kind), self._retry_headers(status))
            return
        entry.update(status=200, fault="before-drop")
        await _drop(send, 200, [(b"content-type", b"application/json")], b"")

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
        entry.update(status=start.get("status", 200), fault="after-drop")
        await _drop(send, start.get("status", 200), start.get("headers", []), b"".join(chunks))


async def _drop(send: Send, status: int, headers: Sequence[tuple[bytes, bytes]], body: bytes) -> None:
    """Announce a response, send half of its body, then drop the connection (an injected fault)."""
    raw = [(k, v) for k, v in headers if k.lower() != b"content-length"]
    raw.append((b"content-length", str(max(len(body), 2)).encode()))
    await send({"type": "http.response.start", "status": status, "headers": raw})
    await send({"type": "http.response.body", "body": body[: len(body) // 2], "more_body": True})
    raise DroppedConnection("connection dropped by emulator fault injection")

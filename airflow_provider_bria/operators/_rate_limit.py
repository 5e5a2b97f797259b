"""A thread-safe client-side rate limiter for Bria's per-minute request plans.

Bria sells request rates per minute (Free trial 10, Starter 60, Enterprise 100+) and answers 429 when a plan's
rate is exceeded. The generation operators count **generation submissions** (the billable ``POST`` calls)
against ``requests_per_minute``; status polls and result downloads are paced by ``poll_interval`` instead
(see ``docs/generation.md``).

The limiter spaces calls evenly, one every ``60 / requests_per_minute`` seconds plus a 1 % safety margin
(:data:`SAFETY_MARGIN`), and never bursts: in any rolling 60-second window, even a closed one measured by the
server with a few milliseconds of network jitter, at most ``requests_per_minute`` calls start. Without the
margin, calls exactly one interval apart put ``requests_per_minute + 1`` of them into a closed window.
Slots are reserved under a lock and the wait happens outside it, so many
threads share one limiter fairly (first come, first served) without holding the lock while sleeping.

**Account-wide limit** (:class:`AccountRateLimiter`). ``requests_per_minute`` is per task: two workers each at the
plan's rate send twice the plan. When the Bria connection's extra names a shared store --
``{"account_requests_per_minute": 60, "rate_limit_conn_id": "bria_rate_limit"}``, the second being an Airflow
connection to a Redis server (``redis://:password@host:6379/1``; the Celery broker's Redis will do) -- every
generation submission of every task on every worker also takes a slot of one sliding-window log kept in Redis
(:class:`RedisSlidingWindow`): at most ``account_requests_per_minute`` submissions in any 60-second window, as
the server counts them. A slot is held from the moment it is granted until the request's response came back
(its final retry after a 429 included), so the window counts each request at its latest possible arrival time;
a worker killed mid-request leaves its slot to expire after :data:`DEFAULT_HOLD_SECONDS`. Redis's own clock is
used, so workers' clocks do not matter. See ``docs/deployment.md``.
"""

from __future__ import annotations

import hashlib
import logging
import random
import threading
import time
import uuid
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any

from airflow_provider_bria.exceptions import BriaConnectionConfigError, BriaInputError

if TYPE_CHECKING:
    from airflow_provider_bria.hooks.bria import BriaHook

log = logging.getLogger(__name__)

#: Fraction added to the interval so server-side windows never see one call too many (costs 1 % of the rate).
SAFETY_MARGIN = 0.01
#: Bria's plans are per minute: the shared window, in seconds.
WINDOW_SECONDS = 60.0
#: Longest a granted account-wide slot is held without being released (a worker killed mid-request): the slot
#: then counts until this long after it was granted, plus the window. Longer than any one submission with its
#: retries (read timeout 60 s, 5 retries capped at 30 s apart).
DEFAULT_HOLD_SECONDS = 600.0
#: Longest single wait between two attempts to get an account-wide slot (re-checked after it, with jitter).
MAX_POLL_SECONDS = 5.0
#: Extra fields of the Bria connection that configure the account-wide limit.
ACCOUNT_RPM_EXTRA = "account_requests_per_minute"
STORE_CONN_EXTRA = "rate_limit_conn_id"
KEY_EXTRA = "rate_limit_key"


class RateLimiter:
    """Space calls at least ``60 / requests_per_minute`` seconds (plus :data:`SAFETY_MARGIN`) apart (thread-safe).

    :param requests_per_minute: the allowed rate; ``None`` disables limiting.
    :param clock: monotonic clock (tests may inject one).
    :param sleep: sleep function (tests may inject one).
    """

    def __init__(
        self,
        requests_per_minute: float | None,
        *,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self.requests_per_minute = validate_requests_per_minute(requests_per_minute)
        rpm = self.requests_per_minute
        self.interval = 60.0 / rpm * (1.0 + SAFETY_MARGIN) if rpm else 0.0
        self._clock = clock
        self._sleep = sleep
        self._lock = threading.Lock()
        self._next_free: float | None = None
        self.acquired = 0
        self.waited_seconds = 0.0

    def reserve(self) -> float:
        """Reserve the next slot and return how many seconds the caller must wait for it (no sleeping)."""
        with self._lock:
            self.acquired += 1
            if not self.interval:
                return 0.0
            now = self._clock()
            slot = now if self._next_free is None or self._next_free <= now else self._next_free
            self._next_free = slot + self.interval
            wait = slot - now
            self.waited_seconds += wait
            return wait

    def acquire(self, cancelled: threading.Event | None = None) -> bool:
        """Block until the caller may make one call.

        :param cancelled: when given and set while waiting, stop waiting early.
        :returns: ``False`` if ``cancelled`` was set (the caller should not make the call), else ``True``.
        """
        wait = self.reserve()
        if wait > 0:
            if cancelled is not None:
                if cancelled.wait(wait):
                    return False
            else:
                self._sleep(wait)
        return not (cancelled is not None and cancelled.is_set())

    def release(self) -> None:
        """The calling thread's request is over (nothing to do here: this limiter only spaces the starts)."""

    def close(self) -> None:
        """The batch is over (nothing to do here)."""


def validate_requests_per_minute(value: float | None) -> float | None:
    """Check ``requests_per_minute``: ``None`` (no limit) or a positive finite number.

    :param value: the configured rate.
    :raises BriaInputError: when the value is not a positive number.
    """
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not 0 < value < float("inf"):
        raise BriaInputError(f"requests_per_minute must be a positive number or None, got {value!r}")
    return float(value)


# ---------------------------------------------------------------------------------------------------------------
# Account-wide limit: a sliding-window log in Redis, shared by every task on every worker
# ---------------------------------------------------------------------------------------------------------------

#: KEYS[1] sorted set (member -> score in ms); ARGV: limit, window ms, hold ms, member. Server time, atomic.
#: Returns ``{1, 0}`` when the slot is granted, else ``{0, ms to wait}`` until the oldest counted entry leaves.
_ACQUIRE_LUA = """
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local limit, window, hold = tonumber(ARGV[1]), tonumber(ARGV[2]), tonumber(ARGV[3])
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now - window)
if redis.call('ZCARD', KEYS[1]) < limit then
  redis.call('ZADD', KEYS[1], now + hold, ARGV[4])
  redis.call('PEXPIRE', KEYS[1], window + hold + 1000)
  return {1, 0}
end
local first = redis.call('ZRANGE', KEYS[1], 0, 0, 'WITHSCORES')
return {0, math.max(1, tonumber(first[2]) + window - now + 1)}
"""

#: KEYS[1] sorted set; ARGV[1] member: the request is over, it counts from now on (server time) for one window.
_RELEASE_LUA = """
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
return redis.call('ZADD', KEYS[1], 'XX', 'CH', now, ARGV[1])
"""


class RedisSlidingWindow:
    """At most ``limit`` granted slots in any ``window`` seconds, over every process sharing one Redis key.

    Each granted slot is an entry of a sorted set scored with the time it stops counting against a new
    request's window start: ``granted + hold`` while the request may still be in flight, then the time it was
    released (its response arrived). A new slot is granted only while fewer than ``limit`` entries have a score
    inside the last ``window`` seconds, all under Redis's clock in one Lua script (atomic).

    Why it holds as the server sees it: a request reaches the server between its grant and its release. Take any
    ``limit + 1`` requests arriving within one window; when the last of them was granted, the other ``limit``
    had been granted before and were released (if at all) no earlier than their arrival, so they still counted
    and the grant was refused. A 1 % margin (:data:`SAFETY_MARGIN`) is added to the window for clock resolution.

    :param client: a ``redis.Redis`` client.
    :param key: the sorted set's key (one per Bria account).
    :param limit: slots per window.
    :param window: window length in seconds.
    :param hold: seconds an unreleased slot keeps counting after its grant (a killed worker's slot).
    :param sleep: sleep function (tests may inject one).
    """

    def __init__(
        self,
        client: Any,
        key: str,
        limit: int,
        *,
        window: float = WINDOW_SECONDS,
        hold: float = DEFAULT_HOLD_SECONDS,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        if isinstance(limit, bool) or not isinstance(limit, int) or limit < 1:
            raise BriaInputError(f"the account-wide limit must be a positive whole number, got {limit!r}")
        self.client = client
        self.key = key
        self.limit = limit
        self.window_ms = int(window * (1.0 + SAFETY_MARGIN) * 1000)
        self.hold_ms = int(hold * 1000)
        self._sleep = sleep
        self._acquire = client.register_script(_ACQUIRE_LUA)
        self._release = client.register_script(_RELEASE_LUA)
        self.waited_seconds = 0.0

    def try_acquire(self, member: str) -> float:
        """Take a slot for ``member`` now if one is free: return 0, else the seconds until one may free up.

        :param member: a unique id of this request.
        """
        granted, wait_ms = self._acquire(keys=[self.key], args=[self.limit, self.window_ms, self.hold_ms, member])
        return 0.0 if int(granted) == 1 else int(wait_ms) / 1000.0

    def acquire(self, cancelled: threading.Event | None = None) -> str | None:
        """Block until a slot is granted; return its id (pass it to :meth:`release`), or ``None`` if cancelled.

        :param cancelled: when set while waiting, stop waiting.
        """
        member = uuid.uuid4().hex
        while True:
            wait = self.try_acquire(member)
            if wait <= 0:
                return member
            # Re-check at most every MAX_POLL_SECONDS (a released slot of another task may free earlier), with
            # jitter so that waiting tasks on many workers do not all ask Redis at the same instant.
            pause = min(wait, MAX_POLL_SECONDS) * (1.0 + 0.1 * random.random())
            self.waited_seconds += pause
            if cancelled is not None:
                if cancelled.wait(pause):
                    return None
            else:
                self._sleep(pause)

    def release(self, member: str) -> None:
        """The request of slot ``member`` is over: it counts from now for one window, then frees its slot.

        :param member: the id :meth:`acquire` returned.
        """
        self._release(keys=[self.key], args=[member])


class AccountRateLimiter(RateLimiter):
    """The per-task :class:`RateLimiter` plus the account-wide :class:`RedisSlidingWindow`.

    :meth:`acquire` first waits for the task's own spacing, then for an account-wide slot. The slot is released
    by :meth:`release` once the request's response arrived; a thread that does not call it releases its previous
    slot when it acquires the next one (its earlier request is over by then), and :meth:`close` releases the
    rest when the batch ends.

    :param requests_per_minute: the task's own limit (``None``: only the account-wide one).
    :param shared: the account-wide window.
    """

    def __init__(self, requests_per_minute: float | None, shared: RedisSlidingWindow) -> None:
        super().__init__(requests_per_minute)
        self.shared = shared
        self._local = threading.local()
        self._open: set[str] = set()
        self._open_lock = threading.Lock()

    def acquire(self, cancelled: threading.Event | None = None) -> bool:
        """Wait for the task's spacing, then for an account-wide slot (``False``: cancelled while waiting).

        :param cancelled: when set while waiting, stop waiting early.
        """
        self.release()
        if not super().acquire(cancelled):
            return False
        member = self.shared.acquire(cancelled)
        if member is None:
            return False
        self._local.member = member
        with self._open_lock:
            self._open.add(member)
        return True

    def release(self) -> None:
        """Release the calling thread's account-wide slot, if it holds one (its request is over)."""
        member = getattr(self._local, "member", None)
        if member is None:
            return
        self._local.member = None
        with self._open_lock:
            self._open.discard(member)
        self.shared.release(member)

    def close(self) -> None:
        """Release every slot still open (the batch is over, so are its requests)."""
        with self._open_lock:
            members, self._open = list(self._open), set()
        for member in members:
            self.shared.release(member)


def account_key(base_url: str, token: str) -> str:
    """Default Redis key of an account: a digest of the API origin and token (never the token itself).

    :param base_url: the API base URL.
    :param token: the api_token.
    """
    digest = hashlib.sha256(f"{base_url}\n{token}".encode()).hexdigest()[:32]
    return f"bria:rate:{digest}"


def account_limit_settings(extra: Mapping[str, Any], conn_id: str) -> tuple[int | None, str | None, str | None]:
    """Read ``(account_requests_per_minute, rate_limit_conn_id, rate_limit_key)`` from a Bria connection extra.

    :param extra: the decoded extra.
    :param conn_id: the Bria connection id, for messages.
    :raises BriaConnectionConfigError: for a malformed value, or a store without a limit.
    """
    from airflow_provider_bria.hooks._connection import extra_value

    rpm, store, key = (extra_value(extra, name) for name in (ACCOUNT_RPM_EXTRA, STORE_CONN_EXTRA, KEY_EXTRA))
    if rpm is not None:
        try:
            number = float(rpm)
        except (TypeError, ValueError):
            number = float("nan")
        if isinstance(rpm, bool) or not (number >= 1 and number.is_integer()):
            raise BriaConnectionConfigError(
                f"Connection {conn_id!r} extra {ACCOUNT_RPM_EXTRA!r} must be a whole number >= 1, got {rpm!r}"
            )
        rpm = int(number)
    for name, value in ((STORE_CONN_EXTRA, store), (KEY_EXTRA, key)):
        if value is not None and (not isinstance(value, str) or not value.strip()):
            raise BriaConnectionConfigError(f"Connection {conn_id!r} extra {name!r} must be a non-empty string")
    if store is not None and rpm is None:
        raise BriaConnectionConfigError(
            f"Connection {conn_id!r} sets {STORE_CONN_EXTRA!r} but not {ACCOUNT_RPM_EXTRA!r} (the plan's limit)"
        )
    return rpm, (store.strip() if store else None), (key.strip() if key else None)


def redis_client(conn: Any) -> Any:
    """A ``redis.Redis`` client for an Airflow connection (host, port, login, password, extra ``db``/``ssl``).

    :param conn: the Airflow connection of the shared store.
    """
    try:
        import redis
    except ImportError as err:  # pragma: no cover - redis comes with apache-airflow-providers-celery/-redis
        raise BriaConnectionConfigError(
            "The account-wide rate limit needs the 'redis' package on every worker (pip install redis)"
        ) from err
    extra = conn.extra_dejson if hasattr(conn, "extra_dejson") else {}
    return redis.Redis(
        host=conn.host or "127.0.0.1",
        port=int(conn.port or 6379),
        username=conn.login or None,
        password=conn.password or None,
        db=int(extra.get("db", 0) or 0),
        ssl=bool(extra.get("ssl", False)),
        socket_timeout=10,
        socket_connect_timeout=10,
    )


def limiter_for(hook: BriaHook, requests_per_minute: float | None) -> RateLimiter:
    """The limiter of a generation task: per task, plus account-wide when the connection configures it.

    Without ``rate_limit_conn_id`` an ``account_requests_per_minute`` caps the task's own rate only (a warning
    says so: several tasks at once can still exceed the plan).

    :param hook: the task's Bria hook.
    :param requests_per_minute: the task's own limit.
    """
    conn = hook.get_connection(hook.bria_conn_id)
    from airflow_provider_bria.hooks._connection import parse_extra

    rpm, store_conn_id, key = account_limit_settings(parse_extra(conn.extra), hook.bria_conn_id)
    if rpm is None:
        return RateLimiter(requests_per_minute)
    if store_conn_id is None:
        log.warning(
            "Connection %r sets %s=%d without %s: applied to this task only; tasks running at the same time can "
            "together exceed it", hook.bria_conn_id, ACCOUNT_RPM_EXTRA, rpm, STORE_CONN_EXTRA,
        )
        return RateLimiter(min(requests_per_minute or float(rpm), float(rpm)))
    client = redis_client(hook.get_connection(store_conn_id))
    settings = hook.settings
    shared = RedisSlidingWindow(client, key or account_key(settings.base_url, settings.token), rpm)
    log.info("Account-wide limit: %d generation requests per minute, shared through connection %r", rpm,
             store_conn_id)
    return AccountRateLimiter(requests_per_minute, shared)

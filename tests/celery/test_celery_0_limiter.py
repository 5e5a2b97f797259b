"""The account-wide sliding window against a real ``redis-server`` (short windows, many threads, two clients).

Two :class:`RedisSlidingWindow` objects with their own Redis connections stand for two workers; several threads
each make "requests" whose arrival time at the "server" falls anywhere between grant and release. No closed
window may ever hold more than the limit of arrivals.
"""

from __future__ import annotations

import random
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from airflow_provider_bria.devstack.services import Redis, ensure_debian_packages
from airflow_provider_bria.operators._rate_limit import AccountRateLimiter, RedisSlidingWindow

pytestmark = pytest.mark.timeout(300)


@pytest.fixture(scope="module")
def redis_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Redis]:
    """A password-protected ``redis-server`` on a free loopback port."""
    folder: Path = tmp_path_factory.mktemp("redis")
    ensure_debian_packages()
    server = Redis(folder).start()
    yield server
    server.stop()


def _client(server: Redis) -> Any:
    import redis

    return redis.Redis(host="127.0.0.1", port=server.port, password=server.password, db=2)


def _max_in_window(times: list[float], window: float) -> int:
    ordered, best, start = sorted(times), 0, 0
    for end, t in enumerate(ordered):
        while t - ordered[start] > window:
            start += 1
        best = max(best, end - start + 1)
    return best


def test_two_clients_never_exceed_the_limit_in_any_window(redis_server: Redis) -> None:
    limit, window, per_thread = 5, 2.0, 4
    key = f"test:{time.time_ns()}"
    limiters = [RedisSlidingWindow(_client(redis_server), key, limit, window=window, hold=30) for _ in range(2)]
    arrivals: list[float] = []
    lock = threading.Lock()
    rng = random.Random(7)
    delays = [[rng.uniform(0.0, 0.3) for _ in range(2 * per_thread)] for _ in range(6)]

    def worker(index: int) -> None:
        limiter = limiters[index % 2]
        for delay in delays[index][:per_thread]:
            member = limiter.acquire()
            assert member is not None
            time.sleep(delay)  # the request is "on the wire": it reaches the server at some point in here
            with lock:
                arrivals.append(time.monotonic())
            time.sleep(delays[index][per_thread])
            limiter.release(member)

    threads = [threading.Thread(target=worker, args=(i,)) for i in range(6)]
    started = time.monotonic()
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)
    assert len(arrivals) == 6 * per_thread
    assert _max_in_window(arrivals, window) <= limit
    # 24 requests at 5 per 2 s need at least 4 full windows: the limit really throttled them.
    assert time.monotonic() - started >= 4 * window


def test_an_unreleased_slot_counts_until_its_hold_expires(redis_server: Redis) -> None:
    key = f"test:{time.time_ns()}"
    window = RedisSlidingWindow(_client(redis_server), key, 1, window=0.5, hold=2.0)
    assert window.try_acquire("killed-worker") == 0.0  # granted, never released (the worker died)
    time.sleep(1.0)  # longer than the window: a released slot would be free by now
    assert window.try_acquire("next") > 0
    time.sleep(2.0)  # hold + window passed
    assert window.try_acquire("next") == 0.0


def test_account_limiter_releases_open_slots_on_close(redis_server: Redis) -> None:
    key = f"test:{time.time_ns()}"
    shared = RedisSlidingWindow(_client(redis_server), key, 2, window=0.5, hold=60)
    limiter = AccountRateLimiter(None, shared)
    assert limiter.acquire()
    assert limiter.acquire()  # the same thread: its first slot is released (that request is over)
    limiter.close()
    time.sleep(0.7)
    assert shared.try_acquire("a") == 0.0
    assert shared.try_acquire("b") == 0.0

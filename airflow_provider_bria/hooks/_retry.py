"""The provider's single retry policy, shared by the sync (requests) and async (httpx) transports.

What is retried (see ``docs/api-choices.md``):

* Every failure is first classified:

  - **safe**: nothing can have been applied on the server: HTTP 429, or a connection that was never
    established (refused, DNS failure, connect timeout);
  - **ambiguous**: the request may have been applied: HTTP 5xx, read timeout, connection dropped after
    the request was sent;
  - anything else (4xx other than 429, TLS errors, bad URLs) is never retried.

* Retry *mode* per call: ``all`` (idempotent methods GET/PUT/DELETE/HEAD/OPTIONS, and POSTs flagged
  ``retry=True`` because they are read-only helpers) retries safe and ambiguous failures; ``safe``
  (every other POST: creates, start/stop training, generation submissions) retries only safe failures, so
  a retry can never create a duplicate; ``none`` (``retry=False``) never retries.

* Wait before retry ``n``: ``max(Retry-After, backoff)`` where ``backoff`` is
  ``min(retry_max_delay, retry_delay * 2**(n-1))`` with "equal jitter" (uniformly between half and all of
  it). ``Retry-After`` (seconds or an HTTP date) is honoured up to :attr:`RetryPolicy.max_retry_after`.

* Per-minute plans: Bria documents no ``Retry-After`` (its free tier allows 10 requests a minute). When a
  429 without ``Retry-After`` is still failing after ``retry_limit`` retries, one more attempt is made once
  :data:`RATE_LIMIT_WINDOW` seconds (a full minute and a margin) have passed since the first such 429, so
  a per-minute window has certainly rolled over before the call gives up.

* Budget: the waits of one call never add up to more than :attr:`RetryPolicy.retry_budget` seconds (the
  connection extra ``retry_budget``, default :data:`DEFAULT_RETRY_BUDGET`); a retry that would exceed it
  is not made and the last failure is raised.

Transport libraries are never imported here: exceptions are classified by looking at the modules that
raised them (a requests exception implies requests is already imported).
"""

from __future__ import annotations

import asyncio
import email.utils
import logging
import random
import sys
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any, Literal, overload

from tenacity import (
    AsyncRetrying,
    RetryCallState,
    Retrying,
    retry_if_exception,
    retry_if_result,
)

from airflow_provider_bria.exceptions import BriaInputError

SAFE = "safe"
AMBIGUOUS = "ambiguous"

MODE_ALL = "all"
MODE_SAFE = "safe"
MODE_NONE = "none"

IDEMPOTENT_METHODS = frozenset({"GET", "HEAD", "OPTIONS", "PUT", "DELETE"})
DEFAULT_MAX_RETRY_AFTER = 300.0
#: Default total seconds one call may spend waiting between retries (connection extra ``retry_budget``).
DEFAULT_RETRY_BUDGET = 300.0
#: Seconds after the first 429 without ``Retry-After`` before the last retry: a 60 s rate window plus margin.
RATE_LIMIT_WINDOW = 61.0


def retry_mode(method: str, retry: bool | None) -> str:
    """Return the retry mode of a call.

    :param method: HTTP method.
    :param retry: ``True`` = treat as idempotent, ``False`` = never retry, ``None`` = decide by method.
    """
    if retry is True:
        return MODE_ALL
    if retry is False:
        return MODE_NONE
    return MODE_ALL if method.upper() in IDEMPOTENT_METHODS else MODE_SAFE


def classify_status(status_code: int) -> str | None:
    """Classify an HTTP status: 429 is safe, 5xx ambiguous, others not retryable.

    :param status_code: HTTP status code.
    """
    if status_code == 429:
        return SAFE
    if status_code >= 500:
        return AMBIGUOUS
    return None


def _requests_kind(exc: BaseException) -> str | None:
    requests = sys.modules.get("requests")
    if requests is None or not isinstance(exc, requests.exceptions.RequestException):
        return None
    rex = requests.exceptions
    if isinstance(exc, rex.ConnectTimeout):
        return SAFE
    if isinstance(exc, rex.SSLError | rex.InvalidURL | rex.InvalidHeader | rex.MissingSchema | rex.InvalidSchema):
        return None
    if isinstance(exc, rex.ConnectionError):
        urllib3_exc = sys.modules.get("urllib3.exceptions")
        reason = getattr(exc.args[0], "reason", None) if exc.args else None
        if urllib3_exc is not None and isinstance(reason, urllib3_exc.ConnectTimeoutError):
            return SAFE  # NewConnectionError / NameResolutionError subclass ConnectTimeoutError: never sent
        return AMBIGUOUS
    if isinstance(exc, rex.Timeout | rex.ChunkedEncodingError | rex.ContentDecodingError):
        return AMBIGUOUS
    return None


def _httpx_kind(exc: BaseException) -> str | None:
    httpx = sys.modules.get("httpx")
    if httpx is None or not isinstance(exc, httpx.TransportError):
        return None
    if isinstance(exc, httpx.ConnectError | httpx.ConnectTimeout | httpx.PoolTimeout):
        return SAFE
    if isinstance(exc, httpx.TimeoutException | httpx.NetworkError | httpx.RemoteProtocolError):
        return AMBIGUOUS
    return None


def classify_exception(exc: BaseException) -> str | None:
    """Classify a transport exception of requests or httpx as safe, ambiguous or not retryable.

    :param exc: the exception raised while sending the request.
    """
    return _requests_kind(exc) or _httpx_kind(exc)


def is_transport_exception(exc: BaseException) -> bool:
    """Whether ``exc`` is a requests/httpx transport failure (to be wrapped in ``BriaTransportError``).

    :param exc: any exception.
    """
    requests = sys.modules.get("requests")
    if requests is not None and isinstance(exc, requests.exceptions.RequestException):
        return True
    httpx = sys.modules.get("httpx")
    return httpx is not None and isinstance(exc, httpx.TransportError)


def parse_retry_after(value: str | None, *, now: float | None = None) -> float | None:
    """Parse a ``Retry-After`` header: delta seconds or an HTTP date. Returns seconds (>= 0) or ``None``.

    :param value: the header value.
    :param now: current epoch time (for tests).
    """
    if value is None:
        return None
    text = str(value).strip()
    if not text:
        return None
    try:
        seconds = float(text)
    except ValueError:
        try:
            when = email.utils.parsedate_to_datetime(text)
        except (TypeError, ValueError, IndexError):
            return None
        if when is None:
            return None
        if when.tzinfo is None:
            return None
        seconds = when.timestamp() - (time.time() if now is None else now)
    if seconds != seconds:  # NaN
        return None
    return max(0.0, seconds)


def _default_asleep(seconds: float) -> Awaitable[None]:
    return asyncio.sleep(seconds)


@dataclass
class RetryPolicy:
    """Retry settings and the wait computation.

    :param retry_limit: retries after the first attempt (0 disables retrying).
    :param retry_delay: base delay in seconds of the exponential backoff.
    :param retry_max_delay: cap of the backoff in seconds.
    :param max_retry_after: longest ``Retry-After`` honoured, in seconds.
    :param retry_budget: total seconds one call may wait between its retries; ``None`` until the connection
        sets it (extra ``retry_budget``), then :data:`DEFAULT_RETRY_BUDGET`.
    :param sleep: blocking sleep (replaceable in tests).
    :param asleep: async sleep (replaceable in tests).
    """

    retry_limit: int = 5
    retry_delay: float = 1.0
    retry_max_delay: float = 30.0
    max_retry_after: float = DEFAULT_MAX_RETRY_AFTER
    retry_budget: float | None = None
    sleep: Callable[[float], None] = field(default=time.sleep, repr=False)
    asleep: Callable[[float], Awaitable[None]] = field(default=_default_asleep, repr=False)

    def __post_init__(self) -> None:
        if isinstance(self.retry_limit, bool) or not isinstance(self.retry_limit, int) or self.retry_limit < 0:
            raise BriaInputError(f"retry_limit must be an integer >= 0, got {self.retry_limit!r}")
        for name in ("retry_delay", "retry_max_delay", "max_retry_after", "retry_budget"):
            value = getattr(self, name)
            if name == "retry_budget" and value is None:
                continue
            if isinstance(value, bool) or not isinstance(value, int | float) or not value >= 0:
                raise BriaInputError(f"{name} must be a number >= 0, got {value!r}")

    @property
    def budget(self) -> float:
        """The effective total wait budget of one call, in seconds."""
        return DEFAULT_RETRY_BUDGET if self.retry_budget is None else float(self.retry_budget)

    def use_connection_budget(self, value: float | None) -> None:
        """Adopt the connection's ``retry_budget`` unless the budget was set explicitly.

        :param value: the connection's budget in seconds, or ``None`` when it sets none.
        """
        if self.retry_budget is None and value is not None:
            self.retry_budget = float(value)

    def should_retry(self, kind: str | None, mode: str) -> bool:
        """Whether a failure of ``kind`` is retried in ``mode``.

        :param kind: :data:`SAFE`, :data:`AMBIGUOUS` or ``None``.
        :param mode: :data:`MODE_ALL`, :data:`MODE_SAFE` or :data:`MODE_NONE`.
        """
        if kind is None or mode == MODE_NONE:
            return False
        return mode == MODE_ALL or kind == SAFE

    def backoff(self, attempt_number: int) -> float:
        """Exponential backoff with equal jitter after attempt ``attempt_number`` (1-based).

        :param attempt_number: the attempt that just failed.
        """
        base = min(self.retry_max_delay, self.retry_delay * 2.0 ** max(0, attempt_number - 1))
        return base / 2 + random.uniform(0, base / 2)

    def wait_seconds(self, attempt_number: int, retry_after: float | None) -> float:
        """Seconds to wait before the next attempt: ``max(Retry-After, backoff)``, bounded.

        :param attempt_number: the attempt that just failed (1-based).
        :param retry_after: the server's ``Retry-After`` in seconds, if any.
        """
        wait = self.backoff(attempt_number)
        if retry_after is not None:
            wait = max(wait, min(retry_after, self.max_retry_after))
        return wait


def _result_retryable(policy: RetryPolicy, mode: str, result: Any) -> bool:
    """Whether the policy retries this answer (a response object with ``status_code``) in ``mode``."""
    return policy.should_retry(classify_status(_status_of(result)), mode)


def _status_of(result: Any) -> int:
    return int(getattr(result, "status_code", 0) or 0)


def _retry_after_of(state: RetryCallState) -> float | None:
    outcome = state.outcome
    if outcome is None or outcome.failed:
        return None
    headers = getattr(outcome.result(), "headers", None) or {}
    return parse_retry_after(headers.get("Retry-After"))


def _unhinted_429(state: RetryCallState) -> bool:
    """Whether the last attempt answered 429 without a usable ``Retry-After``."""
    outcome = state.outcome
    return (outcome is not None and not outcome.failed and _status_of(outcome.result()) == 429
            and _retry_after_of(state) is None)


def _describe(state: RetryCallState) -> str:
    outcome = state.outcome
    if outcome is None:
        return "failed"
    if outcome.failed:
        exc = outcome.exception()
        return f"failed with {type(exc).__name__}"
    return f"returned HTTP {_status_of(outcome.result())}"


def _last_outcome(state: RetryCallState) -> Any:
    """Give back the last result (or raise the last exception) once attempts are exhausted."""
    assert state.outcome is not None
    return state.outcome.result()


@dataclass
class _CallRules:
    """The retry decisions of one call (tenacity's ``retry``, ``stop``, ``wait`` and ``before_sleep``).

    :param policy: the retry policy.
    :param mode: retry mode from :func:`retry_mode`.
    :param method: HTTP method (for log lines).
    :param path: request path without query (for log lines).
    :param logger: where retries are logged at WARNING.
    :param on_discard: called with a response that is about to be retried.
    """

    policy: RetryPolicy
    mode: str
    method: str
    path: str
    logger: logging.Logger
    on_discard: Callable[[Any], None] | None = None
    #: idle time at the first 429 without Retry-After of this call
    window_start: list[float] = field(default_factory=list)

    def exc_retryable(self, exc: BaseException) -> bool:
        return self.policy.should_retry(classify_exception(exc), self.mode)

    def result_retryable(self, result: Any) -> bool:
        return _result_retryable(self.policy, self.mode, result)

    def _window_left(self, state: RetryCallState) -> float:
        return RATE_LIMIT_WINDOW - (state.idle_for - self.window_start[0]) if self.window_start else 0.0

    def _extra_429_attempt(self, state: RetryCallState) -> bool:
        limit = self.policy.retry_limit
        return (limit > 0 and state.attempt_number == limit + 1
                and _unhinted_429(state) and self._window_left(state) > 0)

    def wait(self, state: RetryCallState) -> float:
        if _unhinted_429(state) and not self.window_start:
            self.window_start.append(state.idle_for)
        if self._extra_429_attempt(state):
            return self._window_left(state)
        return self.policy.wait_seconds(state.attempt_number, _retry_after_of(state))

    def stop(self, state: RetryCallState) -> bool:
        if state.idle_for + state.upcoming_sleep > self.policy.budget:
            return True
        return state.attempt_number > self.policy.retry_limit and not self._extra_429_attempt(state)

    def before_sleep(self, state: RetryCallState) -> None:
        outcome = state.outcome
        if outcome is not None and not outcome.failed and self.on_discard is not None:
            self.on_discard(outcome.result())
        wait = state.next_action.sleep if state.next_action is not None else 0.0
        limit = self.policy.retry_limit
        self.logger.warning(
            "Bria API %s %s %s; retry %d/%d in %.1f s%s",
            self.method,
            self.path,
            _describe(state),
            state.attempt_number,
            limit,
            wait,
            " (last try after a full rate-limit minute)" if state.attempt_number > limit else "",
        )

    def tenacity_kwargs(self) -> dict[str, Any]:
        """The keyword arguments of :class:`~tenacity.Retrying` / :class:`~tenacity.AsyncRetrying`."""
        return {
            "retry": retry_if_exception(self.exc_retryable) | retry_if_result(self.result_retryable),
            "stop": self.stop,
            "wait": self.wait,
            "before_sleep": self.before_sleep,
            "retry_error_callback": _last_outcome,
            "reraise": True,
        }


@overload
def build_retrying(
    policy: RetryPolicy, *, mode: str, method: str, path: str, logger: logging.Logger,
    use_async: Literal[False] = False, on_discard: Callable[[Any], None] | None = None,
) -> Retrying: ...


@overload
def build_retrying(
    policy: RetryPolicy, *, mode: str, method: str, path: str, logger: logging.Logger,
    use_async: Literal[True], on_discard: Callable[[Any], None] | None = None,
) -> AsyncRetrying: ...


def build_retrying(
    policy: RetryPolicy,
    *,
    mode: str,
    method: str,
    path: str,
    logger: logging.Logger,
    use_async: bool = False,
    on_discard: Callable[[Any], None] | None = None,
) -> Retrying | AsyncRetrying:
    """Build the tenacity controller for one call.

    The attempt function returns a response object (with ``status_code`` and ``headers``) or raises a
    transport exception. Retryable responses and exceptions are retried per ``mode``; when attempts run
    out, the last response is returned or the last exception re-raised.

    :param policy: the retry policy.
    :param mode: retry mode from :func:`retry_mode`.
    :param method: HTTP method (for log lines).
    :param path: request path without query (for log lines; never a URL with credentials).
    :param logger: where retries are logged at WARNING.
    :param use_async: build an :class:`~tenacity.AsyncRetrying`.
    :param on_discard: called with a response that is about to be retried (e.g. to close a stream).
    """
    kwargs = _CallRules(policy, mode, method, path, logger, on_discard).tenacity_kwargs()
    if use_async:
        return AsyncRetrying(sleep=lambda s: policy.asleep(s), **kwargs)
    return Retrying(sleep=lambda s: policy.sleep(s), **kwargs)


def call_with_retries(attempt: Callable[[], Any], policy: RetryPolicy, mode: str,
                      build: Callable[[], Retrying]) -> Any:
    """Run ``attempt`` under the retry policy, building the tenacity controller only when a retry may follow.

    The first attempt runs directly: an answer the policy would not retry (almost every call) is returned
    without a controller (~0.1 ms of CPU per request). A raised exception or a retryable answer builds the
    controller from ``build``, which replays that first outcome as its own first attempt, so attempt counts,
    waits, ``before_sleep`` and the final outcome are those of a controller that ran from the start.

    :param attempt: one attempt: returns a response object (``status_code``) or raises.
    :param policy: the retry policy.
    :param mode: retry mode from :func:`retry_mode`.
    :param build: builds the controller (:func:`build_retrying`).
    """
    try:
        first = attempt()
    except Exception as exc:  # noqa: BLE001 - replayed through the controller, which decides
        error = exc

        def replay() -> Any:
            raise error
    else:
        if not _result_retryable(policy, mode, first):
            return first

        def replay() -> Any:
            return first

    pending = [replay]
    return build()(lambda: pending.pop()() if pending else attempt())

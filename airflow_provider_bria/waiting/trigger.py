"""The base class of every Bria trigger: versioned kwargs, the hook, the poll policy, one event, no dead trigger."""

from __future__ import annotations

import asyncio
import json
import time
import weakref
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any, ClassVar, TypeVar

from airflow.triggers.base import BaseTrigger, TriggerEvent

from airflow_provider_bria._state import STATE_VERSION_KEY, STATE_VERSIONS

# Imported with the trigger class (the triggerer loads it in a loop iteration of its own), not by the first poll:
# that would add the hook's import to the iteration in which a triggerer restart starts thousands of triggers.
from airflow_provider_bria.hooks.bria import BriaHook
from airflow_provider_bria.waiting.async_ import wait_async
from airflow_provider_bria.waiting.heap import freeze_once
from airflow_provider_bria.waiting.policy import (
    TRIGGER_FIRST_WAIT_JITTER,
    Deadline,
    PollFailed,
    PollPolicy,
    PollTimeout,
)

T = TypeVar("T")

#: Seconds one hook (with its connection lookup) serves every trigger of a triggerer process that uses the same
#: connection id and hook parameters; the next poll after that looks the connection up again, so a rotated token
#: or a changed host reaches triggers that wait for hours.
SHARED_HOOK_TTL_SECONDS = 300.0


class _SharedHook:
    """A hook shared by the triggers of one event loop, connection id and hook parameters."""

    __slots__ = ("hook", "made", "ready")

    def __init__(self, hook: BriaHook, made: float, ready: asyncio.Task[Any]) -> None:
        self.hook = hook
        self.made = made
        self.ready = ready


_SHARED_HOOKS: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, dict[tuple[str, str], _SharedHook]] = (
    weakref.WeakKeyDictionary()
)


class BriaPollingTrigger(BaseTrigger):
    """Poll with the async hook under a :class:`~.policy.PollPolicy` and fire exactly one event.

    Subclasses set :attr:`state_kind` (their key in :data:`airflow_provider_bria._state.STATE_VERSIONS`) and
    implement :meth:`kwargs` (what rebuilds them), :meth:`wait` (the polling, returning the event payload),
    :meth:`timeout_event`, :meth:`failed_event` and :meth:`error_event`. Deadlines are absolute epoch seconds, so
    a triggerer restart (the trigger is rebuilt from :meth:`serialize`) never moves them; the first poll is
    immediate and the wait after it a random 50-100 % of the interval, so triggers started together spread out.
    """

    state_kind: ClassVar[str]
    bria_conn_id: str
    hook_params: dict[str, Any]
    poll_interval: float
    #: The key of this trigger's shared hook (connection id, hook parameters), computed on first use.
    _shared_key: tuple[str, str] | None = None

    def __init__(self) -> None:
        super().__init__()  # type: ignore[no-untyped-call]  # Airflow's BaseTrigger.__init__ is not annotated
        # One logger per trigger class, not one per trigger (LoggingMixin caches it on the class and every instance
        # finds it there): a structlog logger is ~8 tracked objects, and a triggerer's garbage collector scans
        # every one of them for each of thousands of sleeping triggers. The triggerer routes a trigger's lines
        # to its task log by the trigger id it binds in the task's context variables, not by the logger object.
        type(self).logger()

    def kwargs(self) -> dict[str, Any]:
        """The keyword arguments that rebuild this trigger (without the version)."""
        raise NotImplementedError

    def serialize(self) -> tuple[str, dict[str, Any]]:
        """Return the classpath and the versioned keyword arguments that rebuild this trigger."""
        return (f"{type(self).__module__}.{type(self).__qualname__}",
                {**self.kwargs(), STATE_VERSION_KEY: STATE_VERSIONS[self.state_kind]})

    def _hook(self) -> BriaHook:
        """A new hook of this trigger's connection that sends through the process-wide clients."""
        hook = BriaHook(bria_conn_id=self.bria_conn_id, **self.hook_params)
        hook.use_shared_async_client()  # one client per triggerer process and origin, not one per trigger
        return hook

    async def shared_hook(self) -> BriaHook:
        """The hook (connection resolved) shared by this process's triggers of the same connection and parameters.

        A triggerer running thousands of Bria triggers then holds one hook, one connection lookup and one set of
        settings per connection instead of one per trigger, and a restart does not look the connection up a
        thousand times at once: the first caller resolves it, the others wait for that answer. After
        :data:`SHARED_HOOK_TTL_SECONDS` the next caller makes a fresh hook; a failed lookup is not kept.
        """
        loop = asyncio.get_running_loop()
        key = self._shared_key
        if key is None:  # once per trigger, not per poll
            key = self._shared_key = (self.bria_conn_id, json.dumps(self.hook_params, sort_keys=True, default=str))
        hooks = _SHARED_HOOKS.setdefault(loop, {})
        entry = hooks.get(key)
        now = time.monotonic()
        if entry is None or now - entry.made >= SHARED_HOOK_TTL_SECONDS:
            hook = self._hook()
            entry = hooks[key] = _SharedHook(hook, now, loop.create_task(hook.aget_settings()))
        if not entry.ready.done():
            await asyncio.shield(entry.ready)
        if entry.ready.exception() is not None:
            if hooks.get(key) is entry:
                del hooks[key]  # the next poll looks the connection up again
            entry.ready.result()  # raise it
        return entry.hook

    def policy(self, *deadlines: Deadline, max_consecutive_failures: int) -> PollPolicy:
        """The triggers' policy: immediate first poll, jittered first wait, the given absolute deadlines."""
        return PollPolicy(self.poll_interval, deadlines, max_consecutive_failures=max_consecutive_failures,
                          first_wait_jitter=TRIGGER_FIRST_WAIT_JITTER, poll_first=True)

    def poll_until(self, policy: PollPolicy, poll: Callable[[], Awaitable[T]], finished: Callable[[T], bool],
                   what: str) -> Awaitable[T]:
        """The async driver with this trigger's logger (the driver's coroutine itself: one frame less to keep)."""
        return wait_async(policy, poll, finished, what=what, log=self.log)

    async def wait(self) -> dict[str, Any]:
        """Poll until the answer is final; return the event payload."""
        raise NotImplementedError

    def timeout_event(self, err: PollTimeout) -> dict[str, Any]:
        """The payload when a deadline passed first."""
        raise NotImplementedError

    def failed_event(self, err: PollFailed) -> dict[str, Any]:
        """The payload when polling failed more times in a row than tolerated."""
        raise NotImplementedError

    def error_event(self, err: Exception) -> dict[str, Any]:
        """The payload for any other error (a non-retryable answer, a bug): never a dead trigger."""
        raise NotImplementedError

    async def payload(self) -> dict[str, Any]:
        """:meth:`wait`, every ending mapped to a payload."""
        try:
            return await self.wait()
        except asyncio.CancelledError:
            raise
        except PollTimeout as err:
            return self.timeout_event(err)
        except PollFailed as err:
            return self.failed_event(err)
        except Exception as err:  # noqa: BLE001 - every other failure becomes an error event
            return self.error_event(err)

    async def run(self) -> AsyncIterator[TriggerEvent]:
        """Yield exactly one event (the first Bria trigger of a process applies ``[bria] triggerer_gc_freeze``)."""
        freeze_once(self.log)
        yield TriggerEvent(await self.payload())

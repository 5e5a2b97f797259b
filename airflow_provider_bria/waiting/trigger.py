"""The base class of every Bria trigger: versioned kwargs, the hook, the poll policy, one event, no dead trigger."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import TYPE_CHECKING, Any, ClassVar, TypeVar

from airflow.triggers.base import BaseTrigger, TriggerEvent

from airflow_provider_bria._state import STATE_VERSION_KEY, STATE_VERSIONS
from airflow_provider_bria.waiting.async_ import wait_async
from airflow_provider_bria.waiting.policy import (
    TRIGGER_FIRST_WAIT_JITTER,
    Deadline,
    PollFailed,
    PollPolicy,
    PollTimeout,
)

if TYPE_CHECKING:
    from airflow_provider_bria.hooks.bria import BriaHook

T = TypeVar("T")


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

    def __init__(self) -> None:
        super().__init__()  # type: ignore[no-untyped-call]  # Airflow's BaseTrigger.__init__ is not annotated

    def kwargs(self) -> dict[str, Any]:
        """The keyword arguments that rebuild this trigger (without the version)."""
        raise NotImplementedError

    def serialize(self) -> tuple[str, dict[str, Any]]:
        """Return the classpath and the versioned keyword arguments that rebuild this trigger."""
        return (f"{type(self).__module__}.{type(self).__qualname__}",
                {**self.kwargs(), STATE_VERSION_KEY: STATE_VERSIONS[self.state_kind]})

    def _hook(self) -> BriaHook:
        from airflow_provider_bria.hooks.bria import BriaHook

        hook = BriaHook(bria_conn_id=self.bria_conn_id, **self.hook_params)
        hook.use_shared_async_client()  # one client per triggerer process and origin, not one per trigger
        return hook

    def policy(self, *deadlines: Deadline, max_consecutive_failures: int) -> PollPolicy:
        """The triggers' policy: immediate first poll, jittered first wait, the given absolute deadlines."""
        return PollPolicy(self.poll_interval, deadlines, max_consecutive_failures=max_consecutive_failures,
                          first_wait_jitter=TRIGGER_FIRST_WAIT_JITTER, poll_first=True)

    async def poll_until(self, policy: PollPolicy, poll: Callable[[], Awaitable[T]],
                         finished: Callable[[T], bool], what: str) -> T:
        """Run the async driver with this trigger's logger."""
        return await wait_async(policy, poll, finished, what=what, log=self.log)

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
        """Yield exactly one event."""
        yield TriggerEvent(await self.payload())

"""The waiting core: one poll policy, its sync and async drivers, one trigger event envelope.

* :mod:`.policy`: :class:`~.policy.PollPolicy` (interval, first-wait jitter, absolute deadlines, which errors a
  poll tolerates and how many in a row) and the state machine both drivers share.
* :mod:`.sync` / :mod:`.async_`: the two drivers (a worker's loop, a trigger's coroutine).
* :mod:`.events`: the trigger event envelope (one status enum with terminal sets), the one validator the
  operators and the sensor use, and the one rule for a deferred task's ``hook_params``.
* :mod:`.trigger`: :class:`~.trigger.BriaPollingTrigger`, the base class of every Bria trigger (it imports
  Airflow's trigger machinery, so nothing a DAG file imports loads it).
"""

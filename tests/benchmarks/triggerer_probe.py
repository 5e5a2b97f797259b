"""Triggerer-scale probe: many ``BriaTrainingTrigger.run()`` generators in one asyncio loop, like a triggerer.

The triggerer runs every trigger as a task of one event loop and warns when the loop is blocked for more
than 0.2 s (its ``block_watchdog``). This probe starts all triggers at once (as a triggerer does after a
restart), runs them for ``DURATION`` seconds and measures, with a watchdog of its own (``sleep(0.01)`` and the
drift of its wake-ups):

* the longest loop block, overall and after the start-up burst;
* RSS before the triggers and while they run (``/proc/self/status``);
* the trigger events (there must be none: the trainings run for an hour).

The provider runs unchanged: since the fixes this benchmark proposed, its triggers share one hook per connection
and a few single-connection clients per origin (``waiting/trigger.py``, ``hooks/_async.py``), one process-wide SSL
context, and each trigger's first wait after its immediate first poll is a random 50-100 % of ``poll_interval``;
with ``AIRFLOW__BRIA__TRIGGERER_GC_FREEZE=True`` in its environment the first trigger freezes the start-up heap
(``waiting/heap.py``), which is what is measured here.

The connection comes from ``AIRFLOW_CONN_BRIA_DEFAULT``. Prints one JSON line.
Usage: ``triggerer_probe.py MODEL_IDS_FILE POLL_INTERVAL DURATION``.
"""

from __future__ import annotations

import asyncio
import gc
import json
import logging
import resource
import sys
import time
from pathlib import Path
from typing import Any

import benchlib

from airflow_provider_bria.triggers.training import BriaTrainingTrigger

WATCHDOG_STEP = 0.01


class GcClock:
    """Time spent in the cyclic garbage collector (all generations), and the longest full collection."""

    def __init__(self) -> None:
        self.total = 0.0
        self.longest_full = 0.0
        self.full = 0
        self._started = 0.0

    def __call__(self, phase: str, info: dict[str, Any]) -> None:
        if phase == "start":
            self._started = time.perf_counter()
            return
        took = time.perf_counter() - self._started
        self.total += took
        if info.get("generation") == 2:
            self.full += 1
            self.longest_full = max(self.longest_full, took)


GC = GcClock()


async def consume(trigger: BriaTrainingTrigger, events: list[Any]) -> None:
    """Drive one trigger's generator like the triggerer does."""
    async for event in trigger.run():
        events.append(event.payload)
        return


async def watchdog(stop: asyncio.Event, blocks: list[tuple[float, float, float, float]]) -> None:
    """Record ``(start time, lateness, loop-thread CPU s, GC s)`` of every wake-up later than 50 ms.

    Lateness is wall time, so it also counts the process waiting for a core on a busy machine; the CPU time
    the loop's thread used meanwhile is what the event loop itself spent running callbacks and collecting
    garbage (the block); the last figure is the garbage collector's part of it.
    """
    loop = asyncio.get_running_loop()
    while not stop.is_set():
        before, cpu_before, gc_before = loop.time(), time.thread_time(), GC.total
        await asyncio.sleep(WATCHDOG_STEP)
        late = loop.time() - before - WATCHDOG_STEP
        if late > 0.05:
            blocks.append((time.time() - late, late, time.thread_time() - cpu_before, GC.total - gc_before))


async def sample_rss(stop: asyncio.Event, samples: list[tuple[float, int]]) -> None:
    """RSS every half second."""
    while not stop.is_set():
        samples.append((time.time(), benchlib.rss_bytes()))
        await asyncio.sleep(0.5)


async def main_async(model_ids: list[int], poll_interval: float, duration: float) -> dict[str, Any]:
    stop = asyncio.Event()
    blocks: list[tuple[float, float, float, float]] = []
    samples: list[tuple[float, int]] = []
    events: list[Any] = []
    gc.collect()
    baseline = benchlib.rss_bytes()
    objects_before = len(gc.get_objects())
    full_started = time.perf_counter()
    gc.collect()
    full_before = time.perf_counter() - full_started
    gc.callbacks.append(GC)
    end_time = time.time() + 3600
    triggers = [
        BriaTrainingTrigger(model_id=mid, bria_conn_id="bria_default", poll_interval=poll_interval, end_time=end_time)
        for mid in model_ids
    ]
    monitors = [asyncio.create_task(watchdog(stop, blocks)), asyncio.create_task(sample_rss(stop, samples))]
    await asyncio.sleep(0.05)  # the watchdog is running before the burst
    started = time.time()
    tasks = [asyncio.create_task(consume(t, events)) for t in triggers]
    await asyncio.sleep(duration)
    ended = time.time()
    stop.set()
    # the monitors end before the probe's own teardown (counting 300k objects, cancelling every trigger), which is
    # not the triggers' work and would otherwise be measured as the run's last block
    await asyncio.gather(*monitors)
    gc_during = {"total": GC.total, "full": GC.full, "longest_full": GC.longest_full}
    objects_during = len(gc.get_objects()) + gc.get_freeze_count()
    for task in tasks:
        task.cancel()
    await asyncio.gather(*tasks, return_exceptions=True)
    return {
        "triggers": len(triggers),
        "baseline_rss": baseline,
        "rss_samples": samples,
        "blocks": blocks,
        "events": events[:20],
        "event_count": len(events),
        "started": started,
        "ended": ended,
        "peak_rss": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024,
        "gc": {**gc_during, "objects_before": objects_before, "objects_during": objects_during,
               "full_before": full_before, "frozen": gc.get_freeze_count()},
        "cpu_seconds": time.process_time(),
    }


def main() -> None:
    ids_file, poll_interval, duration = Path(sys.argv[1]), float(sys.argv[2]), float(sys.argv[3])
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (max(soft, min(hard, 65536)), hard))
    # a triggerer writes each trigger's log lines to its task log; keep them, but in a file
    logging.basicConfig(filename=str(ids_file.with_suffix(".log")), level=logging.INFO, force=True)
    model_ids = json.loads(ids_file.read_text())
    out = asyncio.run(main_async(model_ids, poll_interval, duration))
    print(json.dumps(out))


if __name__ == "__main__":
    main()

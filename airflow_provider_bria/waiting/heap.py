"""Opt-in: take the triggerer's start-up heap out of the garbage collector's full passes (``gc.freeze``).

A full (generation-2) collection scans every tracked object of the process. In a triggerer most of them are
Airflow's own start-up objects (modules, classes, configuration: ~165k in the benchmark's process, a full pass of
~0.1 s on its machine), so with thousands of triggers each full pass blocks the event loop longer than the
triggerer's 0.2 s watchdog allows, whatever the triggers do. :func:`gc.freeze` moves the objects alive at that
moment into a permanent generation the collector no longer scans; objects created later (the triggers) are
collected as before. The price: cyclic garbage among the frozen objects is never reclaimed (a bounded, one-off
amount). It changes the whole process, so it is off unless the deployment asks for it with the Airflow option
``[bria] triggerer_gc_freeze = True`` (``AIRFLOW__BRIA__TRIGGERER_GC_FREEZE``); the first Bria trigger that runs in a
process then freezes once and logs it.
"""

from __future__ import annotations

import gc
import logging
from typing import Any

#: The Airflow option (section, key) that turns the freeze on.
GC_FREEZE_OPTION = ("bria", "triggerer_gc_freeze")

_state = {"checked": False}


def freeze_once(log: logging.Logger | Any) -> bool:
    """Freeze the heap the first time a Bria trigger runs in this process, when the deployment asked for it.

    :param log: where the one line that says so goes.
    :returns: whether this call froze the heap.
    """
    if _state["checked"]:
        return False
    _state["checked"] = True
    from airflow.configuration import conf

    if not conf.getboolean(*GC_FREEZE_OPTION, fallback=False):
        return False
    gc.freeze()
    log.info("[bria] triggerer_gc_freeze: %d start-up objects left out of the garbage collector's full passes",
             gc.get_freeze_count())
    return True

"""The running emulator: settings, state store, seeded random sources, request log and render cache.

One :class:`Runtime` lives on ``app.state.runtime``. The request log and the ``requests``/``faults_injected``
counters are per process (kept in memory so counting a request never costs a database write); every
object the API creates lives in the :class:`~airflow_provider_bria.emulator.store.Store`.
"""

from __future__ import annotations

import dataclasses
import random
import threading
from collections import OrderedDict, deque
from typing import Any

from airflow_provider_bria.emulator.settings import Settings
from airflow_provider_bria.emulator.store import Store

REQUEST_LOG_SIZE = 100_000
RENDER_CACHE_SIZE = 64


class Runtime:
    """State shared by every request of one emulator process.

    :param settings: the process settings (timing and faults may be changed at run time; reset restores them).
    """

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self._initial = dataclasses.replace(settings)
        self.store = Store(settings.state_file)
        self._lock = threading.Lock()
        self.fault_rng = random.Random(settings.seed)
        self.seed_rng = random.Random(settings.seed)
        self.request_log: deque[dict[str, Any]] = deque(maxlen=REQUEST_LOG_SIZE)
        self.request_count = 0
        self.fault_count = 0
        self._cache: OrderedDict[str, bytes] = OrderedDict()
        self.recover()

    # ---- bookkeeping ---------------------------------------------------------------------------
    def record(self, entry: dict[str, Any], *, fault: bool) -> None:
        """Log one API request.

        :param entry: ``{"t", "method", "path", "status", "fault"}``.
        :param fault: whether a fault was injected into it.
        """
        with self._lock:
            self.request_count += 1
            if fault:
                self.fault_count += 1
            self.request_log.append(entry)

    def requests(self, path_prefix: str | None = None) -> list[dict[str, Any]]:
        """The request log, optionally filtered by path prefix.

        :param path_prefix: keep only paths starting with it.
        """
        with self._lock:
            items = list(self.request_log)
        if path_prefix:
            items = [r for r in items if r["path"].startswith(path_prefix)]
        return items

    def random_seed(self) -> int:
        """A seed for a generation request that did not give one (reproducible under ``--seed``)."""
        with self._lock:
            return self.seed_rng.randrange(0, 2**31 - 1)

    def should_fault(self) -> float | None:
        """Draw from the fault RNG: a number in [0, 1) when this request gets a fault, else ``None``."""
        rate = self.settings.fault_rate
        if rate <= 0:
            return None
        with self._lock:
            if self.fault_rng.random() >= rate:
                return None
            return self.fault_rng.random()

    # ---- admin ---------------------------------------------------------------------------------
    def set_faults(self, fault_rate: float, seed: int | None = None) -> None:
        """Change the fault rate (and re-seed the fault RNG) at run time.

        :param fault_rate: 0-1.
        :param seed: new seed; ``None`` keeps the current sequence.
        """
        if not 0.0 <= fault_rate <= 1.0:
            raise ValueError("fault_rate must be between 0 and 1")
        with self._lock:
            self.settings.fault_rate = fault_rate
            if seed is not None:
                self.settings.seed = seed
                self.fault_rng = random.Random(seed)

    def set_timing(self, *, training_seconds: float | None = None, job_seconds: float | None = None) -> None:
        """Change training and job durations at run time (affects trainings and jobs started afterwards).

        :param training_seconds: new training duration.
        :param job_seconds: new v2 job duration.
        """
        for value in (training_seconds, job_seconds):
            if value is not None and value < 0:
                raise ValueError("durations must not be negative")
        if training_seconds is not None:
            self.settings.training_seconds = float(training_seconds)
        if job_seconds is not None:
            self.settings.job_seconds = float(job_seconds)

    def reset(self) -> None:
        """Empty the state, restore start-up timing and faults, re-seed, clear the request log."""
        self.store.reset()
        with self._lock:
            for field in ("training_seconds", "job_seconds", "fault_rate", "seed"):
                setattr(self.settings, field, getattr(self._initial, field))
            self.fault_rng = random.Random(self.settings.seed)
            self.seed_rng = random.Random(self.settings.seed)
            self.request_log.clear()
            self.request_count = 0
            self.fault_count = 0
            self._cache.clear()

    def recover(self) -> None:
        """After a restart, fail the bulk uploads that were interrupted (they cannot resume)."""
        from airflow_provider_bria.emulator.views import iso

        with self.store.tx() as tx:
            for job in tx.select("bulk_jobs"):
                if job["status"] in ("pending", "processing"):
                    job["status"] = "failed"
                    job["error"] = "Interrupted by an emulator restart"
                    job["updated_at"] = iso()
                    tx.put("bulk_jobs", job)

    # ---- outbound fetches ----------------------------------------------------------------------
    def fetch_policy(self, *, timeout: float | None = None) -> Any:
        """The fetch policy of this process: settings' limits, and own file URLs read from the store.

        :param timeout: overall seconds (``--fetch-timeout`` when ``None``).
        """
        import dataclasses as _dc

        from airflow_provider_bria.emulator.routes.admin import own_file_bytes

        policy = self.settings.fetch_policy(timeout=timeout)
        return _dc.replace(policy, own_files=lambda url: own_file_bytes(self, url))

    # ---- rendered files ------------------------------------------------------------------------
    def cached(self, name: str) -> bytes | None:
        """A rendered file from the cache.

        :param name: the file name.
        """
        with self._lock:
            data = self._cache.get(name)
            if data is not None:
                self._cache.move_to_end(name)
            return data

    def cache(self, name: str, data: bytes) -> None:
        """Keep a rendered file.

        :param name: the file name.
        :param data: its bytes.
        """
        with self._lock:
            self._cache[name] = data
            while len(self._cache) > RENDER_CACHE_SIZE:
                self._cache.popitem(last=False)

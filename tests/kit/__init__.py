"""Shared helpers of the test suite (imported as ``kit``: ``tests/`` is on ``sys.path`` through its conftest).

One copy of what many test folders need: the emulator's test token, the connection JSON, a fake task instance
and context, fast hook settings, object counts of the emulator, a quiet static file server. Folder-specific
helpers stay in their folder's uniquely named module (``upload_helpers``, ``hooktestlib``...), built on these.
"""

from __future__ import annotations

import functools
import http.server
import json
import threading
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path
from typing import Any

#: The only token the suite's emulators accept (``start_emulator`` starts them with it).
TEST_TOKEN = "test-token-7f3c9a1e5b"
#: Hook settings that retry twice without sleeping (tests of retried calls that must stay fast).
FAST_HOOK: dict[str, Any] = {"retry_limit": 2, "retry_delay": 0.0, "retry_max_delay": 0.0}
#: The run id of the fake task instances.
RUN_ID = "manual__2025-01-01T00:00:00+00:00"
#: Emulator counters that are not remote objects (every request bumps them).
REQUEST_COUNTERS = ("requests", "faults_injected")


def conn_json(url: str, token: str | None = TEST_TOKEN, *, extra: Mapping[str, Any] | None = None,
              **extra_fields: Any) -> str:
    """The ``AIRFLOW_CONN_*`` JSON form of a bria connection.

    :param url: the host (API base URL).
    :param token: the password (api_token); ``None``: no password.
    :param extra: the connection's extra as one mapping.
    :param extra_fields: more extra fields (``console_url=...``, ``timeout=...``).
    """
    body: dict[str, Any] = {"conn_type": "bria", "host": url}
    if token is not None:
        body["password"] = token
    body["extra"] = {**(extra or {}), **extra_fields}
    return json.dumps(body)


class FakeTI:
    """The parts of a task instance the operators use: ids, try number, XCom push/pull (values must be JSON)."""

    def __init__(self, try_number: int = 1, *, dag_id: str = "test_dag", run_id: str = RUN_ID,
                 task_id: str = "task", map_index: int = -1) -> None:
        self.try_number = try_number
        self.dag_id = dag_id
        self.run_id = run_id
        self.task_id = task_id
        self.map_index = map_index
        self.xcoms: dict[Any, Any] = {}

    def xcom_push(self, key: str, value: Any) -> None:
        json.dumps(value)  # XCom values must be JSON-safe
        self.xcoms[key] = value

    def xcom_pull(self, task_ids: Any = None, key: str = "return_value", **_: Any) -> Any:
        return self.xcoms.get(key)


class KeyedFakeTI(FakeTI):
    """A fake task instance of a whole DAG: XComs keyed by ``(task_id, key)`` (pulls name the task)."""

    def __init__(self, *, xcoms: Mapping[tuple[str, str], Any] | None = None, **ids: Any) -> None:
        super().__init__(**ids)
        self.xcoms.update(xcoms or {})

    def xcom_push(self, key: str, value: Any) -> None:
        self.xcoms[(self.task_id, key)] = value

    def xcom_pull(self, task_ids: Any = None, key: str = "return_value", **_: Any) -> Any:
        return self.xcoms.get((task_ids, key))


def make_context(try_number: int = 1, *, ti: FakeTI | None = None, extra: Mapping[str, Any] | None = None,
                 **ids: Any) -> dict[str, Any]:
    """A minimal task context: ``ti``/``task_instance`` and ``run_id`` (plus ``extra`` entries).

    :param try_number: the fake task instance's try number.
    :param ti: use this task instance instead of a new one.
    :param extra: more context entries (``task_state_store``, ``params``...).
    :param ids: ``dag_id``, ``run_id``, ``task_id``, ``map_index`` of the new task instance.
    """
    ti = ti or FakeTI(try_number, **ids)
    return {"ti": ti, "task_instance": ti, "run_id": ti.run_id, **(extra or {})}


def context_with(try_number: int = 1, **extra: Any) -> dict[str, Any]:
    """A minimal task context with more entries: ``context_with(2, task_state_store=store)``.

    :param try_number: the fake task instance's try number.
    :param extra: more context entries.
    """
    return make_context(try_number, extra=extra)


class FakeStateStore:
    """Stands in for Airflow 3.3's ``task_state_store`` (survives retries of one task instance)."""

    def __init__(self) -> None:
        self.values: dict[str, Any] = {}

    def get(self, key: str, default: Any = None) -> Any:
        return self.values.get(key, default)

    def set(self, key: str, value: Any, **_: Any) -> None:
        json.dumps(value)
        self.values[key] = value


def object_counts(emulator: Any) -> dict[str, int]:
    """The emulator's counts of remote objects (projects, datasets, images, models...), without request counters.

    :param emulator: an ``EmulatorProcess``, or its ``/_emulator/state`` report.
    """
    state = emulator if isinstance(emulator, Mapping) else emulator.state()
    return {k: v for k, v in state["counts"].items() if k not in REQUEST_COUNTERS}


def solid_png(index: int, size: int = 1024) -> bytes:
    """A distinct PNG of ``size`` x ``size`` pixels: one solid colour per ``index``."""
    import io

    from PIL import Image

    colour = ((index * 53) % 256, (index * 97 + 40) % 256, (index * 151 + 80) % 256)
    buf = io.BytesIO()
    Image.new("RGB", (size, size), colour).save(buf, format="PNG")
    return buf.getvalue()


class QuietHandler(http.server.SimpleHTTPRequestHandler):
    """A static file handler that logs nothing."""

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 (stdlib signature)
        return


@contextmanager
def serve_directory(directory: Path, poll_interval: float = 0.5, *, trailing_slash: bool = False) -> Iterator[str]:
    """Serve ``directory`` over HTTP on 127.0.0.1 from a thread; yields the base URL.

    :param directory: the folder to serve.
    :param poll_interval: how often the server thread checks for shutdown.
    :param trailing_slash: end the URL with ``/``.
    """
    handler = functools.partial(QuietHandler, directory=str(directory))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": poll_interval}, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}" + ("/" if trailing_slash else "")
    finally:
        server.shutdown()
        server.server_close()
        thread.join(5)

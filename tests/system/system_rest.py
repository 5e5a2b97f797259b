"""A small client of Airflow 3's public REST API (``/api/v2``) for the system tests.

It logs in through SimpleAuthManager's ``POST /auth/token`` (JWT bearer token, renewed on 401), and wraps
the calls the tests need: unpause, trigger, DAG runs, task instances and their tries, XCom, extra links,
rendered fields, task logs, pools.
"""

from __future__ import annotations

import time
import urllib.parse
import uuid
from collections.abc import Callable
from typing import Any

import requests

TERMINAL_RUN_STATES = frozenset({"success", "failed"})


#: Seconds the test client waits for an answer: longer than SQLite's 60 s busy wait in the API server, so a
#: locked database comes back as a 5xx (which the callers handle) rather than a client-side timeout.
CLIENT_TIMEOUT = 90


class RestError(AssertionError):
    """An unexpected answer from the Airflow REST API."""


def _q(text: str) -> str:
    return urllib.parse.quote(text, safe="")


class AirflowClient:
    """Authenticated access to ``/api/v2``.

    :param base_url: the API server's URL (``http://127.0.0.1:PORT``).
    :param username: SimpleAuthManager user.
    :param password: its password.
    """

    def __init__(self, base_url: str, username: str, password: str) -> None:
        self.base_url = base_url.rstrip("/")
        self.username = username
        self.password = password
        self.session = requests.Session()
        self._token: str | None = None

    # ------------------------------------------------------------------ plumbing

    def login(self) -> str:
        """Get a JWT from ``POST /auth/token``."""
        resp = self.session.post(
            f"{self.base_url}/auth/token", json={"username": self.username, "password": self.password}, timeout=30
        )
        if resp.status_code not in (200, 201):
            raise RestError(f"login failed: HTTP {resp.status_code} {resp.text[:300]}")
        self._token = resp.json()["access_token"]
        return self._token

    def request(
        self, method: str, path: str, *, expected: tuple[int, ...] = (200,), retry_5xx: bool | None = None,
        **kwargs: Any,
    ) -> Any:
        """Call the API and return the decoded JSON (or text for non-JSON answers).

        A 401 renews the token once. A 5xx (SQLite busy under load) is retried a few times for reads and
        PATCHes (``retry_5xx=None``); callers of non-idempotent calls handle 5xx themselves.

        :param method: HTTP method.
        :param path: path below the base URL (``/api/v2/...``).
        :param expected: accepted status codes.
        :param retry_5xx: retry on 5xx (default: for GET and PATCH only).
        """
        if retry_5xx is None:
            retry_5xx = method in ("GET", "PATCH")
        extra_headers = kwargs.pop("headers", {})
        attempts = 5 if retry_5xx else 1
        for attempt in range(attempts):
            resp = self._send(method, path, extra_headers, **kwargs)
            if resp.status_code < 500 or attempt == attempts - 1:
                break
            time.sleep(1.0 + attempt)
        if resp.status_code not in expected:
            raise RestError(f"{method} {path}: HTTP {resp.status_code} {resp.text[:500]}")
        if "json" in resp.headers.get("content-type", ""):
            return resp.json()
        return resp.text

    def _send(self, method: str, path: str, headers: dict[str, str], **kwargs: Any) -> requests.Response:
        for attempt in range(2):
            if self._token is None:
                self.login()
            all_headers = {"Authorization": f"Bearer {self._token}", **headers}
            resp = self.session.request(method, f"{self.base_url}{path}", headers=all_headers, timeout=CLIENT_TIMEOUT,
                                        **kwargs)
            if resp.status_code == 401 and attempt == 0:
                self._token = None
                continue
            return resp
        return resp

    def get(self, path: str, **kwargs: Any) -> Any:
        """``GET``.

        :param path: path below the base URL.
        """
        return self.request("GET", path, **kwargs)

    # ------------------------------------------------------------------ DAGs and runs

    def dag(self, dag_id: str) -> dict[str, Any]:
        """The DAG's details.

        :param dag_id: DAG id.
        """
        return self.get(f"/api/v2/dags/{_q(dag_id)}")

    def import_errors(self) -> list[dict[str, Any]]:
        """Import errors of the DAG files."""
        return self.get("/api/v2/importErrors")["import_errors"]

    def wait_for_dags(self, dag_ids: list[str], timeout: float = 120.0) -> None:
        """Wait until every DAG is known to the API server (parsed and serialized).

        :param dag_ids: DAG ids.
        :param timeout: seconds.
        """
        deadline = time.monotonic() + timeout
        missing = list(dag_ids)
        while time.monotonic() < deadline:
            known = {d["dag_id"] for d in self.get("/api/v2/dags", params={"limit": 100})["dags"]}
            missing = [d for d in dag_ids if d not in known]
            if not missing:
                return
            time.sleep(1.0)
        raise RestError(f"DAGs not parsed within {timeout:g} s: {missing}; import errors: {self.import_errors()}")

    def set_paused(self, dag_id: str, paused: bool) -> dict[str, Any]:
        """``PATCH /dags/{id}`` ``is_paused``.

        :param dag_id: DAG id.
        :param paused: the new value.
        """
        return self.request("PATCH", f"/api/v2/dags/{_q(dag_id)}", json={"is_paused": paused})

    def trigger(self, dag_id: str, conf: dict[str, Any] | None = None) -> dict[str, Any]:
        """Create a manual DAG run (with a run id chosen here, so a 5xx can be checked and retried safely).

        :param dag_id: DAG id.
        :param conf: run conf.
        """
        run_id = f"manual__systest_{uuid.uuid4().hex[:12]}"
        body: dict[str, Any] = {"logical_date": None, "conf": conf or {}, "dag_run_id": run_id}
        path = f"/api/v2/dags/{_q(dag_id)}/dagRuns"
        for attempt in range(5):
            try:
                return self.request("POST", path, json=body, retry_5xx=False)
            except requests.exceptions.Timeout:
                if attempt == 4:
                    raise
            except RestError as err:
                if "HTTP 5" not in str(err) or attempt == 4:
                    raise
            try:
                return self.dag_run(dag_id, run_id)  # the POST was applied after all
            except RestError:
                time.sleep(1.0 + attempt)
        raise AssertionError("unreachable")

    def dag_runs(self, dag_id: str) -> list[dict[str, Any]]:
        """All runs of a DAG.

        :param dag_id: DAG id.
        """
        return self.get(f"/api/v2/dags/{_q(dag_id)}/dagRuns", params={"limit": 100})["dag_runs"]

    def dag_run(self, dag_id: str, run_id: str) -> dict[str, Any]:
        """One DAG run.

        :param dag_id: DAG id.
        :param run_id: run id.
        """
        return self.get(f"/api/v2/dags/{_q(dag_id)}/dagRuns/{_q(run_id)}")

    def wait_for_run(
        self,
        dag_id: str,
        run_id: str,
        *,
        timeout: float = 300.0,
        interval: float = 1.0,
        on_poll: Callable[[], None] | None = None,
    ) -> dict[str, Any]:
        """Wait until a run is ``success`` or ``failed``; return it.

        :param dag_id: DAG id.
        :param run_id: run id.
        :param timeout: seconds.
        :param interval: seconds between polls.
        :param on_poll: called at every poll (observations, liveness checks).
        """
        deadline = time.monotonic() + timeout
        while True:
            if on_poll is not None:
                on_poll()
            run = self.dag_run(dag_id, run_id)
            if run["state"] in TERMINAL_RUN_STATES:
                return run
            if time.monotonic() > deadline:
                states = {t["task_id"]: t["state"] for t in self.task_instances(dag_id, run_id)}
                raise RestError(f"{dag_id}/{run_id} still {run['state']} after {timeout:g} s: {states}")
            time.sleep(interval)

    def wait_for_new_run(
        self, dag_id: str, *, run_type: str, known: set[str], timeout: float = 300.0,
        on_poll: Callable[[], None] | None = None,
    ) -> dict[str, Any]:
        """Wait until a run of ``run_type`` not in ``known`` exists; return it.

        :param dag_id: DAG id.
        :param run_type: e.g. ``asset_triggered``.
        :param known: run ids to ignore.
        :param timeout: seconds.
        :param on_poll: called at every poll.
        """
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if on_poll is not None:
                on_poll()
            for run in self.dag_runs(dag_id):
                if run["run_type"] == run_type and run["dag_run_id"] not in known:
                    return run
            time.sleep(1.0)
        raise RestError(f"No new {run_type} run of {dag_id} within {timeout:g} s")

    # ------------------------------------------------------------------ task instances

    def task_instances(self, dag_id: str, run_id: str) -> list[dict[str, Any]]:
        """Every task instance of a run (mapped ones included).

        :param dag_id: DAG id.
        :param run_id: run id.
        """
        path = f"/api/v2/dags/{_q(dag_id)}/dagRuns/{_q(run_id)}/taskInstances"
        return self.get(path, params={"limit": 1000})["task_instances"]

    def task_instance(self, dag_id: str, run_id: str, task_id: str) -> dict[str, Any]:
        """One (unmapped) task instance.

        :param dag_id: DAG id.
        :param run_id: run id.
        :param task_id: task id.
        """
        return self.get(f"/api/v2/dags/{_q(dag_id)}/dagRuns/{_q(run_id)}/taskInstances/{_q(task_id)}")

    def tries(self, dag_id: str, run_id: str, task_id: str, map_index: int = -1) -> list[dict[str, Any]]:
        """Every try of a task instance (history and current).

        :param dag_id: DAG id.
        :param run_id: run id.
        :param task_id: task id.
        :param map_index: map index (-1 when unmapped).
        """
        base = f"/api/v2/dags/{_q(dag_id)}/dagRuns/{_q(run_id)}/taskInstances/{_q(task_id)}"
        path = f"{base}/{map_index}/tries" if map_index >= 0 else f"{base}/tries"
        return self.get(path)["task_instances"]

    def xcom_entries(self, dag_id: str, run_id: str, task_id: str) -> list[dict[str, Any]]:
        """XCom entries (keys) of a task instance.

        :param dag_id: DAG id.
        :param run_id: run id.
        :param task_id: task id (``~`` for all).
        """
        path = f"/api/v2/dags/{_q(dag_id)}/dagRuns/{_q(run_id)}/taskInstances/{_q(task_id)}/xcomEntries"
        return self.get(path, params={"limit": 1000})["xcom_entries"]

    def xcom_value(self, dag_id: str, run_id: str, task_id: str, key: str, map_index: int = -1) -> Any:
        """The deserialized value of one XCom.

        :param dag_id: DAG id.
        :param run_id: run id.
        :param task_id: task id.
        :param key: XCom key.
        :param map_index: map index.
        """
        path = (f"/api/v2/dags/{_q(dag_id)}/dagRuns/{_q(run_id)}/taskInstances/{_q(task_id)}/xcomEntries/"
                f"{_q(key)}")
        return self.get(path, params={"map_index": map_index, "deserialize": "true"})["value"]

    def links(self, dag_id: str, run_id: str, task_id: str) -> dict[str, str | None]:
        """Extra links of a task instance: ``{name: url}``.

        :param dag_id: DAG id.
        :param run_id: run id.
        :param task_id: task id.
        """
        body = self.get(f"/api/v2/dags/{_q(dag_id)}/dagRuns/{_q(run_id)}/taskInstances/{_q(task_id)}/links")
        return dict(body.get("extra_links", body))

    def log(self, dag_id: str, run_id: str, task_id: str, try_number: int, map_index: int = -1) -> str:
        """A task try's log, one line per structured log record (``event`` plus any extra fields).

        :param dag_id: DAG id.
        :param run_id: run id.
        :param task_id: task id.
        :param try_number: try number.
        :param map_index: map index.
        """
        path = f"/api/v2/dags/{_q(dag_id)}/dagRuns/{_q(run_id)}/taskInstances/{_q(task_id)}/logs/{try_number}"
        body = self.get(path, params={"map_index": map_index, "full_content": "true"},
                        headers={"Accept": "application/json"})
        lines = []
        for record in body.get("content", []):
            if isinstance(record, dict):
                lines.append(" ".join(f"{k}={v}" for k, v in record.items()))
            else:
                lines.append(str(record))
        return "\n".join(lines)

    def pool(self, name: str = "default_pool") -> dict[str, Any]:
        """A pool with its slot usage.

        :param name: pool name.
        """
        return self.get(f"/api/v2/pools/{_q(name)}")
